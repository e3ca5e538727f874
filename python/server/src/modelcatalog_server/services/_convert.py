"""Records to messages and back: the only place that knows both shapes.

Messages for responses are built by ``message``: betterproto's constructor runs a Python
``__setattr__`` per field and a ``__post_init__`` (about 60 µs for a ``Model``, 6 ms for a page
of 100), while the message itself is a plain object whose state ``message`` sets directly.
"""

from __future__ import annotations

import functools
from datetime import UTC, datetime, timedelta
from typing import Any, TypeVar

import betterproto

from modelcatalog import v1

from ..domain.errors import InvalidArgument
from ..domain.versions import UploadHeader
from ..storage.records import (
    FolderRecord,
    MemberRecord,
    ModelRecord,
    Role,
    UserRecord,
    VersionRecord,
)

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)

M = TypeVar("M", bound=betterproto.Message)


def message(cls: type[M], **fields: Any) -> M:
    """``cls(**fields)``: the same message, without betterproto's per-field bookkeeping.

    The state set here is betterproto 2.0.0b7's (pinned): the fields given, the others unset
    (its placeholder), ``_serialized_on_wire`` when any field is given, no unknown fields. A
    message with a oneof or an optional field keeps more state and is refused. The server's
    ``tests/test_convert.py`` compares the result with betterproto's own constructor.
    """
    state: dict[str, Any] = {"_serialized_on_wire": bool(fields)}
    state.update(_unset(cls))
    state.update(fields)
    state["_unknown_fields"] = b""
    state["_group_current"] = {}
    built = cls.__new__(cls)
    object.__setattr__(built, "__dict__", state)
    return built


@functools.cache
def _unset(cls: type[betterproto.Message]) -> dict[str, Any]:
    """The state of every field of a new ``cls`` before any is set."""
    meta = betterproto.ProtoClassMetadata(cls)
    if meta.oneof_field_by_group or any(m.optional for m in meta.meta_by_field_name.values()):
        raise TypeError(f"{cls.__name__} has a oneof or an optional field: use its constructor")
    return dict.fromkeys(meta.meta_by_field_name, betterproto.PLACEHOLDER)


def timestamp(microseconds: int) -> datetime:
    """An exact UTC datetime for a stored time."""
    return _EPOCH + timedelta(microseconds=microseconds)


def role_from_request(value: int) -> Role:
    try:
        return Role(int(value))
    except ValueError:
        raise InvalidArgument("role", "role must be viewer, editor or owner") from None


def user(record: UserRecord) -> v1.User:
    return message(
        v1.User, id=record.id, username=record.username, create_time=timestamp(record.created_us)
    )


def folder(record: FolderRecord) -> v1.Folder:
    return message(
        v1.Folder,
        id=record.id,
        name=record.name,
        description=record.description,
        creator_username=record.creator_username,
        create_time=timestamp(record.created_us),
        caller_role=v1.FolderRole(int(record.caller_role)),
    )


def member(record: MemberRecord) -> v1.FolderMember:
    return message(
        v1.FolderMember,
        user_id=record.user_id,
        username=record.username,
        role=v1.FolderRole(int(record.role)),
        update_time=timestamp(record.updated_us),
    )


def model(record: ModelRecord) -> v1.Model:
    return message(
        v1.Model,
        id=record.id,
        folder_id=record.folder_id,
        name=record.name,
        description=record.description,
        creator_username=record.creator_username,
        create_time=timestamp(record.created_us),
        latest_version=record.latest_version,
    )


def version(record: VersionRecord) -> v1.ModelVersion:
    return message(
        v1.ModelVersion,
        model_id=record.model_id,
        version=record.version,
        file_name=record.file_name,
        content_type=record.content_type,
        size_bytes=record.size_bytes,
        sha256=record.sha256,
        description=record.description,
        labels=dict(record.labels),
        creator_username=record.creator_username,
        create_time=timestamp(record.created_us),
    )


def upload_header(message: v1.UploadModelVersionHeader) -> UploadHeader:
    return UploadHeader(
        model_id=message.model_id,
        file_name=message.file_name,
        content_type=message.content_type,
        size_bytes=message.size_bytes,
        sha256=message.sha256,
        description=message.description,
        labels=dict(message.labels),
    )
