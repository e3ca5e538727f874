"""Records to messages and back: the only place that knows both shapes.

Messages are made with ``wire.new`` (the class's own parameters, type-checked as such): a page
of 100 models costs betterproto's constructors about 4 ms, more than the database query.
"""

from __future__ import annotations

import math
import operator
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

from modelcatalog import v1, wire

from ..domain.edits import folder_etag, model_etag, version_etag
from ..domain.errors import InvalidArgument
from ..domain.events import FeedItem, model_of
from ..domain.uploads import UploadStatus
from ..domain.versions import UploadHeader
from ..recent import Recent
from ..storage.records import (
    AccessTokenRecord,
    AliasRecord,
    AuditEventRecord,
    FolderRecord,
    MemberRecord,
    ModelRecord,
    Role,
    UserRecord,
    VersionRecord,
)

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
MICROSECOND = timedelta(microseconds=1)


def timestamp(microseconds: int) -> datetime:
    """An exact UTC datetime for a stored time."""
    return EPOCH + timedelta(microseconds=microseconds)


def role_from_request(value: int) -> Role:
    try:
        return Role(int(value))
    except ValueError:
        raise InvalidArgument("role", "role must be viewer, editor or owner") from None


def read_only_from_request(scope: v1.AccessTokenScope) -> bool | None:
    """Whether an AccessTokenScope is read-only; None when it is unspecified or unknown."""
    return {
        v1.AccessTokenScope.READ: True,
        v1.AccessTokenScope.READ_WRITE: False,
    }.get(scope)


def access_token(record: AccessTokenRecord) -> v1.AccessToken:
    scope = v1.AccessTokenScope.READ if record.read_only else v1.AccessTokenScope.READ_WRITE
    message = wire.new(
        v1.AccessToken,
        id=record.id,
        name=record.name,
        scope=v1.AccessTokenScope(scope),
        folder_ids=list(record.folder_ids or ()),
        create_time=timestamp(record.created_us),
        expire_time=timestamp(record.expires_us),
    )
    if record.last_used_us is not None:
        message.last_use_time = timestamp(record.last_used_us)
    return message


def user(record: UserRecord) -> v1.User:
    return wire.new(
        v1.User, id=record.id, username=record.username, create_time=timestamp(record.created_us)
    )


def folder(record: FolderRecord) -> v1.Folder:
    return wire.new(
        v1.Folder,
        id=record.id,
        name=record.name,
        description=record.description,
        creator_username=record.creator_username,
        create_time=timestamp(record.created_us),
        caller_role=v1.FolderRole(int(record.caller_role)),
        update_time=timestamp(record.updated_us),
        etag=folder_etag(record),
    )


def member(record: MemberRecord) -> v1.FolderMember:
    return wire.new(
        v1.FolderMember,
        user_id=record.user_id,
        username=record.username,
        role=v1.FolderRole(int(record.role)),
        update_time=timestamp(record.updated_us),
        granted_by_username=record.granted_by_username,
    )


def model(record: ModelRecord) -> v1.Model:
    return wire.new(
        v1.Model,
        id=record.id,
        folder_id=record.folder_id,
        name=record.name,
        description=record.description,
        creator_username=record.creator_username,
        create_time=timestamp(record.created_us),
        latest_version=record.latest_version,
        update_time=timestamp(record.updated_us),
        etag=model_etag(record),
    )


#: Model encodings remembered, the least recently listed dropped first.
REMEMBERED_MODELS = 4096
#: Only models whose name and description together are at most this many characters are
#: remembered, so the memory the encodings hold stays small (under 16 MiB) whatever is stored.
REMEMBERED_TEXT_CHARACTERS = 256
_remembered_models: Recent[tuple[object, ...], bytes] = Recent(REMEMBERED_MODELS)
#: Every field of a model's record but the caller's role: what its encoding is made of.
_encoded_fields_of: Callable[[ModelRecord], tuple[object, ...]] = operator.attrgetter(
    *(field for field in ModelRecord._fields if field != "caller_role")
)


def encoded_model(record: ModelRecord) -> bytes:
    """A model's encoding, remembered by everything it encodes (not the caller's role, which
    it does not show): lists show the same models again and again, and building and encoding
    a page of 100 costs ten times joining their remembered bytes. A changed model is another
    key; a model that is gone is dropped in its turn."""
    if len(record.name) + len(record.description) > REMEMBERED_TEXT_CHARACTERS:
        return wire.encode(model(record))
    key = _encoded_fields_of(record)
    encoded = _remembered_models.get(key, 0.0)
    if encoded is None:
        encoded = wire.encode(model(record))
        _remembered_models.put(key, encoded, math.inf)
    return encoded


def version(record: VersionRecord) -> v1.ModelVersion:
    return wire.new(
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
        update_time=timestamp(record.updated_us),
        etag=version_etag(record),
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
        request_id=message.request_id,
        offset=message.offset,
    )


def upload_status(status: VersionRecord | UploadStatus) -> v1.GetUploadStatusResponse:
    if isinstance(status, VersionRecord):
        return wire.new(v1.GetUploadStatusResponse, version=version(status))
    response = wire.new(
        v1.GetUploadStatusResponse, offset=status.offset, in_progress=status.in_progress
    )
    if status.expires_us is not None:
        response.expire_time = timestamp(status.expires_us)
    return response


def alias(record: AliasRecord) -> v1.ModelAlias:
    return wire.new(
        v1.ModelAlias,
        model_id=record.model_id,
        name=record.name,
        version=record.version,
        update_time=timestamp(record.updated_us),
        updater_username=record.updater_username,
    )


def audit_event(record: AuditEventRecord) -> v1.AuditEvent:
    return wire.new(
        v1.AuditEvent,
        id=record.id,
        time=timestamp(record.occurred_us),
        actor_user_id=record.actor_id or "",
        actor_username=record.actor_username,
        token_id=record.token_id or "",
        token_name=record.token_name or "",
        action=record.action,
        resource=record.resource,
        folder_id=record.folder_id or "",
        peer=record.peer or "",
        outcome=record.outcome,
        details=dict(record.details),
    )


def feed_item(item: FeedItem) -> v1.WatchEventsResponse:
    if item.event is None:
        return wire.new(v1.WatchEventsResponse, after_event_id=item.position)
    return wire.new(
        v1.WatchEventsResponse, event=catalog_event(item.event), after_event_id=item.position
    )


def catalog_event(record: AuditEventRecord) -> v1.CatalogEvent:
    details = record.details
    role = details.get("role")
    return wire.new(
        v1.CatalogEvent,
        id=record.feed_position,
        kind=v1.CatalogEventKind(int(record.feed_kind) if record.feed_kind else 0),
        time=timestamp(record.occurred_us),
        folder_id=record.folder_id or "",
        model_id=model_of(record),
        version=int(details.get("version", "0")),
        alias=details.get("alias", ""),
        username=details.get("username", ""),
        role=v1.FolderRole(int(Role[role]) if role else 0),
        actor_username=record.actor_username,
    )
