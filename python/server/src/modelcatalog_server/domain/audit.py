"""The audit trail: who did what to which resource, when, from where, and how it ended.

Every change is recorded by ``record`` inside the transaction that makes it, so the trail and
the catalog cannot disagree: a change that rolls back leaves no event, and none commits
without one. The action is the RPC's name ("DeleteFolder"); the outcome is "OK" or the
ErrorReason the caller received. A download is one small insert when it starts (not one per
chunk). A refusal of an audited call by a signed-in caller changes nothing, so it is recorded
in its own small transaction (``AuditTrail.refused``); so is a failed sign-in, in the
transaction that counts it for throttling (a throttled attempt is refused before any work and
is not recorded, so guessing cannot grow the trail faster than the throttle allows).

Who is calling (the access token's id) and from where reach ``record`` through a context
variable the per-call plumbing sets (``enter_call``); the store runs each transaction in the
caller's context. Changes that the event feed (``domain/events.py``) carries are recorded with
a ``FeedKind``, which gives them a feed position in commit order.

Listing, refusals and pruning are ``audit_trail.AuditTrail``'s.
"""

from __future__ import annotations

from collections.abc import Collection
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import TypedDict

from ..storage.metadata import Transaction, now_us
from ..storage.records import AuditEntry, FeedKind, ModelRecord

OK = "OK"
#: The calls whose refusals are recorded too (their successes record themselves where the
#: change is made): every change a signed-in user asks for, and downloads.
AUDITED_ACTIONS = frozenset(
    {
        "SignOut",
        "CreateAccessToken",
        "RevokeAccessToken",
        "ChangePassword",
        "SignOutEverywhere",
        "DeleteAccount",
        "CreateFolder",
        "UpdateFolder",
        "GrantFolderAccess",
        "RevokeFolderAccess",
        "DeleteFolder",
        "CreateModel",
        "UpdateModel",
        "UpdateModelVersion",
        "UploadModelVersion",
        "DownloadModelVersion",
        "SetModelAlias",
        "DeleteModelAlias",
        "DeleteModelVersion",
        "DeleteModel",
    }
)


@dataclass
class Call:
    """The call being handled: who makes it and from where, and what it is about once the
    rules have looked it up (for recording a refusal)."""

    action: str
    user_id: str | None = None
    token_id: str | None = None
    #: The name of the access token the call is made with; None for a sign-in token.
    token_name: str | None = None
    peer: str | None = None
    folder_id: str | None = None
    resource: str = ""
    details: dict[str, str] = field(default_factory=dict)
    #: Whether the call recorded a feed event (the feed's watchers in this process are woken
    #: once it ends).
    fed: bool = False


_call: ContextVar[Call | None] = ContextVar("modelcatalog_audit_call", default=None)


def enter_call(call: Call) -> None:
    """Makes ``call`` the current call (set by the per-call plumbing before the handler runs)."""
    _call.set(call)


def note_target(folder_id: str | None, resource: str) -> None:
    """Remembers what the current call is about, so that its refusal names it."""
    call = _call.get()
    if call is not None:
        call.folder_id = folder_id or call.folder_id
        call.resource = resource


def record(
    tx: Transaction,
    action: str,
    actor: str | None,
    *,
    folder_id: str | None = None,
    resource: str = "",
    details: dict[str, str] | None = None,
    kind: FeedKind | None = None,
    audience: Collection[str] = (),
    audience_folder: str | None = None,
    outcome: str = OK,
) -> None:
    """Records ``action`` by ``actor`` in ``tx``, with the current call's token and peer;
    ``kind`` puts it in the event feed, where the folder's members see it, and so do
    ``audience`` and the current members of ``audience_folder`` once they no longer have a
    role in it (a revoked user, the members of a folder being deleted)."""
    call = _call.get()
    if call is not None and kind is not None:
        call.fed = True
    by_caller = call is not None and call.user_id == actor
    tx.insert_audit_event(
        AuditEntry(
            occurred_us=now_us(),
            actor_id=actor,
            token_id=call.token_id if call is not None and by_caller else None,
            token_name=call.token_name if call is not None and by_caller else None,
            peer=call.peer[:64] if call is not None and call.peer else None,
            action=action,
            outcome=outcome,
            folder_id=folder_id,
            resource=resource,
            details=details or {},
            feed_kind=kind,
        ),
        audience,
        audience_folder,
    )


class Target(TypedDict):
    """Where an event happened: ``record``'s folder_id and resource."""

    folder_id: str
    resource: str


def on_folder(folder_id: str) -> Target:
    return Target(folder_id=folder_id, resource=folder_resource(folder_id))


def on_model(folder_id: str, model_id: str) -> Target:
    return Target(folder_id=folder_id, resource=model_resource(model_id))


def on_version(model: ModelRecord, number: int) -> Target:
    return Target(folder_id=model.folder_id, resource=version_resource(model.id, number))


def on_alias(model: ModelRecord, name: str) -> Target:
    return Target(folder_id=model.folder_id, resource=alias_resource(model.id, name))


def folder_resource(folder_id: str) -> str:
    return f"folders/{folder_id}"


def model_resource(model_id: str) -> str:
    return f"models/{model_id}"


def version_resource(model_id: str, version: int) -> str:
    return f"models/{model_id}/versions/{version}"


def alias_resource(model_id: str, name: str) -> str:
    return f"models/{model_id}/aliases/{name}"


def user_resource(user_id: str) -> str:
    return f"users/{user_id}"


def access_token_resource(user_id: str, token_id: str) -> str:
    return f"users/{user_id}/accessTokens/{token_id}"


def current_call() -> Call | None:
    """The call being handled, if the per-call plumbing entered one."""
    return _call.get()
