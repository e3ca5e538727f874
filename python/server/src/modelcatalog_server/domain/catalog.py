"""Folders, their members and their models: who may do what.

Every check returns the same PERMISSION_DENIED for a resource that does not exist and for one
the caller may not use, so identifiers reveal nothing to strangers.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from ..storage.metadata import MetadataStore, Transaction, UniqueViolation
from ..storage.records import FeedKind, FolderRecord, MemberRecord, ModelRecord, Role, UserRecord
from . import audit, validation
from .accounts import caller_account
from .errors import (
    AlreadyExists,
    FailedPrecondition,
    NotFound,
    PermissionDenied,
)
from .filters import model_query, scoped
from .paging import PageTokens, page_size
from .requests import RequestResults

T = TypeVar("T")


@dataclass(frozen=True)
class Page(Generic[T]):
    """One page of a list and the token of the next one ('' on the last page)."""

    items: list[T]
    next_page_token: str


_NEEDS = {
    Role.VIEWER: "the folder does not exist or you have no access to it",
    Role.EDITOR: "the folder does not exist or you do not have the editor role in it",
    Role.OWNER: "the folder does not exist or you do not have the owner role in it",
}
_MODEL_NEEDS = {
    Role.VIEWER: "the model does not exist or you have no access to its folder",
    Role.EDITOR: "the model does not exist or you do not have the editor role in its folder",
    Role.OWNER: "the model does not exist or you do not have the owner role in its folder",
}


def _denied(message: str) -> PermissionDenied:
    return PermissionDenied(message, reason="FOLDER_ACCESS_DENIED")


class Catalog:
    """The rules for folders and models, on top of the metadata store."""

    def __init__(
        self,
        store: MetadataStore,
        page_tokens: PageTokens,
        requests: RequestResults | None = None,
    ) -> None:
        self._store = store
        self._tokens = page_tokens
        self._requests = requests if requests is not None else RequestResults()

    # Folders

    async def create_folder(
        self, caller: str, name: str, description: str, request_id: str = ""
    ) -> FolderRecord:
        """A new folder owned by the caller; with a ``request_id`` made once (``requests``)."""
        validation.display_name("name", name)
        validation.description("description", description)
        request = self._requests.request(
            "request_id", request_id, "CreateFolder", name, description
        )

        def create(tx: Transaction) -> FolderRecord:
            made = self._requests.earlier(tx, caller, request)
            if made is not None:
                return require_folder(tx, caller, made, Role.VIEWER)
            folder = tx.insert_folder(caller_account(tx, caller), name, description)
            self._requests.remember(tx, caller, request, folder.id)
            audit.record(tx, "CreateFolder", caller, **audit.on_folder(folder.id))
            return folder

        try:
            return await self._requests.write(self._store, request, create)
        except UniqueViolation:
            raise AlreadyExists(
                f"you already have a folder named {validation.quoted(name)}",
                reason="FOLDER_NAME_TAKEN",
            ) from None

    async def get_folder(self, caller: str, folder_id: str) -> FolderRecord:
        validation.resource_id("folder_id", folder_id)
        return await self._store.read(lambda tx: require_folder(tx, caller, folder_id, Role.VIEWER))

    async def list_folders(self, caller: str, size: int, token: str) -> Page[FolderRecord]:
        limit = page_size(size)
        after = self._position(token, caller, "folders")
        rows = await self._store.read(lambda tx: tx.folders_for(caller, after, limit + 1))
        return page_of(self._tokens, rows, limit, caller, "folders", lambda f: [f.created_us, f.id])

    async def grant(self, caller: str, folder_id: str, username: str, role: Role) -> MemberRecord:
        validation.resource_id("folder_id", folder_id)
        validation.username("username", username)

        def change(tx: Transaction) -> MemberRecord:
            tx.lock_folder(folder_id)
            require_folder(tx, caller, folder_id, Role.OWNER)
            member = _user_named(tx, username)
            current = tx.role(folder_id, member.id)
            if current is Role.OWNER and role is not Role.OWNER:
                _keep_an_owner(tx, folder_id)
            changed = tx.upsert_member(folder_id, member.id, role)
            audit.record(
                tx,
                "GrantFolderAccess",
                caller,
                **audit.on_folder(folder_id),
                details={"username": member.username, "role": role.name},
                kind=FeedKind.ACCESS_GRANTED,
            )
            return MemberRecord(member.id, member.username, role, changed)

        return await self._store.write(change)

    async def revoke(self, caller: str, folder_id: str, username: str) -> None:
        """Remove a member's role: owners remove anyone, any member themself (leaving).

        Whether the username is the caller's own decides the role needed before anything
        about the folder or the user is looked up, so the answer reveals neither.
        """
        validation.resource_id("folder_id", folder_id)
        validation.username("username", username)

        def change(tx: Transaction) -> None:
            tx.lock_folder(folder_id)
            account = caller_account(tx, caller)
            leaving = username == account.username
            require_folder(tx, caller, folder_id, Role.VIEWER if leaving else Role.OWNER)
            member = account if leaving else _user_named(tx, username)
            if tx.role(folder_id, member.id) is Role.OWNER:
                _keep_an_owner(tx, folder_id)
            tx.delete_member(folder_id, member.id)
            audit.record(
                tx,
                "RevokeFolderAccess",
                caller,
                **audit.on_folder(folder_id),
                details={"username": member.username},
                kind=FeedKind.ACCESS_REVOKED,
                audience=[member.id],
            )

        await self._store.write(change)

    async def list_access(
        self, caller: str, folder_id: str, size: int, token: str
    ) -> Page[MemberRecord]:
        validation.resource_id("folder_id", folder_id)
        limit = page_size(size)
        scope = f"members:{folder_id}"
        after = self._position(token, caller, scope)

        def members(tx: Transaction) -> list[MemberRecord]:
            require_folder(tx, caller, folder_id, Role.VIEWER)
            return tx.members(folder_id, after, limit + 1)

        rows = await self._store.read(members)
        return page_of(self._tokens, rows, limit, caller, scope, lambda m: m.username)

    # Models

    async def create_model(
        self, caller: str, folder_id: str, name: str, description: str, request_id: str = ""
    ) -> ModelRecord:
        """A new model in the folder; with a ``request_id`` made once (``requests``)."""
        validation.resource_id("folder_id", folder_id)
        validation.display_name("name", name)
        validation.description("description", description)
        request = self._requests.request(
            "request_id", request_id, "CreateModel", folder_id, name, description
        )

        def create(tx: Transaction) -> ModelRecord:
            made = self._requests.earlier(tx, caller, request)
            if made is not None:
                return require_model(tx, caller, made, Role.VIEWER)
            tx.lock_folder(folder_id)  # a folder being deleted gets no new model
            folder = require_folder(tx, caller, folder_id, Role.EDITOR)
            model = tx.insert_model(folder, caller_account(tx, caller), name, description)
            self._requests.remember(tx, caller, request, model.id)
            audit.record(tx, "CreateModel", caller, **audit.on_model(model.folder_id, model.id))
            return model

        try:
            return await self._requests.write(self._store, request, create)
        except UniqueViolation:
            raise AlreadyExists(
                f"the folder already has a model named {validation.quoted(name)}",
                reason="MODEL_NAME_TAKEN",
            ) from None

    async def get_model(self, caller: str, model_id: str) -> ModelRecord:
        validation.resource_id("model_id", model_id)
        return await self._store.read(lambda tx: require_model(tx, caller, model_id, Role.VIEWER))

    async def list_models(
        self,
        caller: str,
        folder_id: str,
        size: int,
        token: str,
        filter_text: str = "",
        order_by: str = "",
    ) -> Page[ModelRecord]:
        """The caller's models (in one folder if ``folder_id``) that match ``filter_text``, in
        the order ``order_by`` (``domain.filters``), a page at a time."""
        if folder_id:
            validation.resource_id("folder_id", folder_id)
        limit = page_size(size)
        query = model_query(filter_text, order_by)
        scope = scoped(f"models:{folder_id}", filter_text, order_by)
        after = self._position(token, caller, scope)

        def models(tx: Transaction) -> list[ModelRecord]:
            if folder_id:
                require_folder(tx, caller, folder_id, Role.VIEWER)
            return tx.models_for(caller, folder_id or None, after, limit + 1, query)

        def position(model: ModelRecord) -> list[Any]:
            return [model.name if query.by_name else model.created_us, model.id]

        rows = await self._store.read(models)
        return page_of(self._tokens, rows, limit, caller, scope, position)

    # Paging

    def _position(self, token: str, caller: str, scope: str) -> Any:
        position = self._tokens.decode(token, caller=caller, scope=scope)
        return tuple(position) if isinstance(position, list) else position


def page_of(
    tokens: PageTokens,
    rows: list[T],
    limit: int,
    caller: str,
    scope: str,
    position: Callable[[T], Any],
) -> Page[T]:
    """A page of ``limit`` items from ``limit + 1`` fetched rows, with the next page's token."""
    if len(rows) <= limit:
        return Page(rows, "")
    items = rows[:limit]
    return Page(items, tokens.encode(position(items[-1]), caller=caller, scope=scope))


def require_model(tx: Transaction, caller: str, model_id: str, needed: Role) -> ModelRecord:
    """The model if the caller has at least ``needed`` in its folder; else PERMISSION_DENIED."""
    model = tx.model_for(caller, model_id)
    audit.note_target(model.folder_id if model else None, audit.model_resource(model_id))
    if model is None or model.caller_role < needed:
        raise _denied(_MODEL_NEEDS[needed])
    return model


def _user_named(tx: Transaction, username: str) -> UserRecord:
    credentials = tx.credentials(username)
    if credentials is None:
        raise NotFound(f"no user is named {validation.quoted(username)}", reason="USER_NOT_FOUND")
    return credentials.user


def require_folder(tx: Transaction, caller: str, folder_id: str, needed: Role) -> FolderRecord:
    """The folder if the caller has at least ``needed`` in it; else PERMISSION_DENIED."""
    folder = tx.folder_for(caller, folder_id)
    audit.note_target(folder_id, audit.folder_resource(folder_id))
    if folder is None or folder.caller_role < needed:
        raise _denied(_NEEDS[needed])
    return folder


def _keep_an_owner(tx: Transaction, folder_id: str) -> None:
    if tx.owner_count(folder_id) <= 1:
        raise FailedPrecondition(
            "the folder must keep at least one owner; make another user owner first",
            reason="LAST_OWNER",
        )
