"""What the metadata store returns: plain immutable records, no SQL and no gRPC."""

from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import NamedTuple


class Role(enum.IntEnum):
    """A user's role in a folder; each includes everything the ones below it allow."""

    VIEWER = 1
    EDITOR = 2
    OWNER = 3


ROLE_OF_STORED_VALUE: dict[int, Role] = {role.value: role for role in Role}
"""A stored role's member: a lookup, where ``Role(value)`` runs the enum machinery (a third of
the cost of making a model's record from its row)."""


@dataclass(frozen=True)
class UserRecord:
    """An account."""

    id: str
    username: str
    created_us: int


@dataclass(frozen=True)
class Credentials:
    """An account with its password hash and token generation, for sign-in only."""

    user: UserRecord
    password_hash: str
    token_generation: int


@dataclass(frozen=True)
class TokenStanding:
    """What the database says about a token's account: its generation, and whether this very
    token was revoked."""

    token_generation: int
    revoked: bool


@dataclass(frozen=True)
class AccessTokenRecord:
    """An access token as its owner lists it (its secret is never stored)."""

    id: str
    name: str
    read_only: bool
    #: The folders it may use; None for all of its owner's.
    folder_ids: tuple[str, ...] | None
    created_us: int
    expires_us: int
    last_used_us: int | None


@dataclass(frozen=True)
class AccessTokenHolder:
    """An unexpired access token found by its secret's digest, with its owner."""

    token: AccessTokenRecord
    user_id: str
    username: str


@dataclass(frozen=True)
class FailureCounts:
    """Failed sign-ins since some moment: for one username from one address, for the username
    from every address, and from the address for every username."""

    account_from_peer: int
    account: int
    peer: int


@dataclass(frozen=True)
class FolderRecord:
    """A folder as one caller sees it, with that caller's role."""

    id: str
    name: str
    description: str
    creator_username: str
    created_us: int
    caller_role: Role
    #: When the name or the description last changed (``created_us`` until then).
    updated_us: int


@dataclass(frozen=True)
class MemberRecord:
    """One user's role in one folder."""

    user_id: str
    username: str
    role: Role
    updated_us: int
    granted_by_username: str
    """Who set the role as it stands; empty when unknown (not recorded, or their account gone)."""


class ModelRecord(NamedTuple):
    """A model, with the caller's role in its folder.

    A named tuple where the other records are frozen dataclasses: a list makes a page of 100 on
    the event loop's thread (``MetadataStore.lookup``), and a frozen dataclass, which sets each
    field through ``object.__setattr__``, costs three times as much to make (3.0 µs against
    1.0 µs with its row unpacked and its role looked up)."""

    id: str
    folder_id: str
    name: str
    description: str
    creator_username: str
    created_us: int
    latest_version: int
    caller_role: Role
    #: When the name or the description last changed (``created_us`` until then).
    updated_us: int


@dataclass(frozen=True)
class VersionRecord:
    """One committed version of a model: its bytes are immutable, its description and labels
    may be edited."""

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
    #: When the description or the labels last changed (``created_us`` until then).
    updated_us: int


@dataclass(frozen=True)
class AliasRecord:
    """A name that points at one version of a model."""

    model_id: str
    name: str
    version: int
    updater_username: str
    updated_us: int


@dataclass(frozen=True)
class LabelTest:
    """A version has the label ``key`` (any value when ``value`` is None)."""

    key: str
    value: str | None


@dataclass(frozen=True)
class TimeBound:
    """A creation time compared with ``operator`` (``<``, ``<=``, ``>``, ``>=``) to ``us``."""

    operator: str
    us: int


@dataclass(frozen=True)
class ModelQuery:
    """Which models a list wants beyond the caller's (every condition holds), in what order."""

    folder_ids: tuple[str, ...] = ()
    names: tuple[str, ...] = ()
    name_prefixes: tuple[str, ...] = ()
    name_substrings: tuple[str, ...] = ()
    """Contained in the name, ASCII letters regardless of case."""
    labels: tuple[LabelTest, ...] = ()
    """Held by at least one version of the model, each."""
    created: tuple[TimeBound, ...] = ()
    by_name: bool = False
    """Ordered by name (then creation), not by creation."""
    descending: bool = False


@dataclass(frozen=True)
class VersionQuery:
    """Which versions of a model a list wants (every condition holds), in what order."""

    labels: tuple[LabelTest, ...] = ()
    created: tuple[TimeBound, ...] = ()
    oldest_first: bool = False


@dataclass(frozen=True)
class UploadSessionRecord:
    """An upload made with a request_id, in progress or paused (see domain/uploads.py)."""

    id: str
    blob_handle: str
    fingerprint: str
    expires_us: int
    paused_bytes: int | None
    """Bytes it keeps durably since its stream broke; None while a stream sends it."""


class FeedKind(enum.IntEnum):
    """The kinds of change the event feed (WatchEvents) carries."""

    VERSION_CREATED = 1
    VERSION_DELETED = 2
    ALIAS_SET = 3
    ALIAS_DELETED = 4
    ACCESS_GRANTED = 5
    ACCESS_REVOKED = 6
    MODEL_DELETED = 7
    FOLDER_DELETED = 8


@dataclass(frozen=True)
class AuditEntry:
    """An event to record: who did what to which resource, from where, and how it ended."""

    occurred_us: int
    actor_id: str | None
    token_id: str | None
    peer: str | None
    action: str
    outcome: str
    folder_id: str | None
    resource: str
    details: dict[str, str]
    feed_kind: FeedKind | None = None
    token_name: str | None = None
    """The name of the access token the actor used; None for a sign-in token."""


@dataclass(frozen=True)
class AuditEventRecord:
    """A recorded event, with its actor's username (empty when unknown or deleted) and, for a
    feed event, its feed position (0 otherwise)."""

    id: int
    occurred_us: int
    actor_id: str | None
    actor_username: str
    token_id: str | None
    token_name: str | None
    action: str
    outcome: str
    folder_id: str | None
    resource: str
    peer: str | None
    details: dict[str, str]
    feed_position: int
    feed_kind: FeedKind | None


@dataclass(frozen=True)
class AuditQuery:
    """Which recorded events a list returns: those of one folder (``folder_id``) or those of
    one user (``own_user``: made by them or naming their account), then narrowed by the other
    fields (None: no condition)."""

    folder_id: str | None = None
    own_user: str | None = None
    actor_id: str | None = None
    action: str | None = None
    resource: str | None = None
    since_us: int | None = None
    until_us: int | None = None
