"""What the metadata store returns: plain immutable records, no SQL and no gRPC."""

from __future__ import annotations

import enum
from dataclasses import dataclass


class Role(enum.IntEnum):
    """A user's role in a folder; each includes everything the ones below it allow."""

    VIEWER = 1
    EDITOR = 2
    OWNER = 3


@dataclass(frozen=True)
class UserRecord:
    """An account."""

    id: str
    username: str
    created_us: int


@dataclass(frozen=True)
class Credentials:
    """An account with its password hash, for sign-in only."""

    user: UserRecord
    password_hash: str


@dataclass(frozen=True)
class FolderRecord:
    """A folder as one caller sees it, with that caller's role."""

    id: str
    name: str
    description: str
    creator_username: str
    created_us: int
    caller_role: Role


@dataclass(frozen=True)
class MemberRecord:
    """One user's role in one folder."""

    user_id: str
    username: str
    role: Role
    updated_us: int


@dataclass(frozen=True)
class ModelRecord:
    """A model, with the caller's role in its folder."""

    id: str
    folder_id: str
    name: str
    description: str
    creator_username: str
    created_us: int
    latest_version: int
    caller_role: Role


@dataclass(frozen=True)
class VersionRecord:
    """One committed, immutable version of a model."""

    model_id: str
    version: int
    file_name: str
    content_type: str
    size_bytes: int
    sha256: str
    description: str
    labels: dict[str, str]
    creator_username: str
    created_us: int
