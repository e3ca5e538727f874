"""Folders, their members and their models: who may do what.

Every check returns the same PERMISSION_DENIED for a resource that does not exist and for one
the caller may not use, so identifiers reveal nothing to strangers.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Generic, TypeVar

from ..storage.metadata import (
    EVERY_MODEL,
    MetadataStore,
    Transaction,
    UniqueViolation,
    now_us,
)
from ..storage.records import (
    AccessTokenRecord,
    FeedKind,
    FolderRecord,
    MemberRecord,
    ModelRecord,
    Role,
    UserRecord,
)
from . import audit, validation
from .accounts import caller_account
from .errors import (
    AlreadyExists,
    FailedPrecondition,
    InvalidArgument,
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


_WITH_ARTICLE = {Role.VIEWER: "a viewer", Role.EDITOR: "an editor", Role.OWNER: "an owner"}


@dataclass(frozen=True)
class AccessExplanation:
    """A user's access to a folder, the grant that gives it (None: no access), and the access
    token whose scope caps it (None: all the user may do)."""

    folder: FolderRecord
    username: str
    grant: MemberRecord | None
    token: AccessTokenRecord | None = None

    @property
    def role(self) -> Role | None:
        """The effective role: the grant's, capped by the token's scope; None for no access."""
        if self.grant is None or self.token is None:
            return None if self.grant is None else self.grant.role
        limited = self.token.folder_ids is not None and self.folder.id not in self.token.folder_ids
        if limited:
            return None
        return min(self.grant.role, Role.VIEWER) if self.token.read_only else self.grant.role

    def sentence(self) -> str:
        """The explanation in English, for people."""
        return self._grant_sentence() + self._token_clause()

    def _grant_sentence(self) -> str:
        folder = f"folder {validation.quoted(self.folder.name)}"
        if self.grant is None:
            return (
                f"{self.username} has no role in {folder}: only a grant by one of its owners "
                "gives access"
            )
        when = datetime.fromtimestamp(self.grant.updated_us / 1e6, UTC)
        since = when.isoformat(timespec="seconds").replace("+00:00", "Z")
        role = f"{self.username} is {_WITH_ARTICLE[self.grant.role]} of {folder}"
        granter = self.grant.granted_by_username
        if granter == self.username == self.folder.creator_username and (
            self.grant.updated_us == self.folder.created_us
        ):
            return f"{role}: they created it, at {since}"
        if not granter:
            return (
                f"{role}, a role set at {since} by an account that no longer exists or "
                "before servers recorded who grants roles"
            )
        by = "themself" if granter == self.username else granter
        return f"{role}: granted by {by} at {since}"

    def _token_clause(self) -> str:
        if self.token is None:
            return ""
        token = f"access token {validation.quoted(self.token.name)}"
        role = self.role
        if role is None and self.grant is not None:
            return f"; {token} is limited to other folders, so it has no access here"
        if role is not None and self.grant is not None and role < self.grant.role:
            return f"; {token} is read-only, so it acts as {_WITH_ARTICLE[role]}"
        if role is not None:
            return f"; {token} acts with that role"
        return ""


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
        return await self._store.lookup(
            lambda tx: require_folder(tx, caller, folder_id, Role.VIEWER)
        )

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
            changed = tx.upsert_member(folder_id, member.id, role, granted_by=caller)
            audit.record(
                tx,
                "GrantFolderAccess",
                caller,
                **audit.on_folder(folder_id),
                details={"username": member.username, "role": role.name},
                kind=FeedKind.ACCESS_GRANTED,
            )
            granter = caller_account(tx, caller).username
            return MemberRecord(member.id, member.username, role, changed, granter)

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

    async def explain_access(
        self,
        caller: str,
        folder_id: str,
        model_id: str,
        username: str,
        *,
        access_token_id: str = "",
        calling_token_id: str | None = None,
    ) -> AccessExplanation:
        """The role ``username`` (the caller's own when empty) has in a folder, or in a model's
        folder, and why. Owners may ask about anyone, other members only about themselves:
        whether the username is the caller's decides the role needed first, as in revoke.

        The answer is about an access token of the caller's when ``access_token_id`` names one,
        or when the call is made with one (``calling_token_id``) about the caller themself."""
        if folder_id:
            validation.resource_id("folder_id", folder_id)
        elif model_id:
            validation.resource_id("model_id", model_id)
        else:
            raise InvalidArgument(
                "folder_id",
                "set folder_id or model_id: the folder or model whose access to explain",
            )
        if username:
            validation.username("username", username)
        if access_token_id:
            validation.resource_id("access_token_id", access_token_id)

        def explain(tx: Transaction) -> AccessExplanation:
            account = caller_account(tx, caller)
            about_self = username in ("", account.username)
            if access_token_id and not about_self:
                raise InvalidArgument(
                    "access_token_id",
                    "access_token_id names one of your own access tokens: leave username empty",
                )
            token_id = access_token_id or (calling_token_id if about_self else None)
            token = None
            if token_id:
                token = tx.access_token(caller, token_id, now_us())
                if token is None:
                    raise NotFound(
                        "you have no unexpired access token with this id; list them with"
                        " ListAccessTokens",
                        reason="ACCESS_TOKEN_NOT_FOUND",
                    )
            needed = Role.VIEWER if about_self else Role.OWNER
            if model_id and not folder_id:
                model = require_model(tx, caller, model_id, needed)
                folder = require_folder(tx, caller, model.folder_id, needed)
            else:
                folder = require_folder(tx, caller, folder_id, needed)
            user = account if about_self else _user_named(tx, username)
            return AccessExplanation(folder, user.username, tx.member(folder.id, user.id), token)

        return await self._store.read(explain)

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
        return await self._store.lookup(lambda tx: require_model(tx, caller, model_id, Role.VIEWER))

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

        # The unfiltered list reads a short run of an index per folder, quick enough for a
        # lookup; a filter may scan every model the caller sees.
        if query == EVERY_MODEL:
            rows = await self._store.lookup(models, key=(caller, scope))
        else:
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
