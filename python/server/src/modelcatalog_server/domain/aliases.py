"""Model aliases: names such as "production" that point at one version of their model.

Setting, moving and deleting an alias may be a compare-and-swap on the version it points at:
the check and the change run in one transaction holding the model's row (``lock_model``), so of
two deploy pipelines expecting the same version exactly one wins and the other is told where
the alias points now (ABORTED, ALIAS_MOVED) instead of silently overwriting it.
"""

from __future__ import annotations

from ..storage.metadata import MetadataStore, Transaction
from ..storage.records import AliasRecord, FeedKind, Role
from . import audit, validation
from .accounts import caller_account
from .catalog import Page, page_of, require_model
from .errors import Aborted, InvalidArgument, NotFound
from .paging import PageTokens, page_size
from .requests import RequestResults

#: The expected version meaning "the alias must not exist yet".
ABSENT = 0


class Aliases:
    """Set, move, delete and list the aliases of models; editors change, viewers read."""

    def __init__(
        self,
        store: MetadataStore,
        page_tokens: PageTokens,
        requests: RequestResults | None = None,
    ) -> None:
        self._store = store
        self._tokens = page_tokens
        self._requests = requests if requests is not None else RequestResults()

    async def set(
        self,
        caller: str,
        model_id: str,
        name: str,
        version: int,
        expected: int | None,
        request_id: str = "",
    ) -> AliasRecord:
        """Points the alias at ``version``; when ``expected`` is not None, only if the alias
        points at ``expected`` now (``ABSENT``: only if it does not exist). With a
        ``request_id``, a repeat of a request that succeeded changes nothing and returns the
        alias as it is now, whatever it expected."""
        validation.resource_id("model_id", model_id)
        validation.alias_name("name", name)
        if version < 1:
            raise InvalidArgument("version", "version must be 1 or more")
        if expected is not None and expected < 0:
            raise InvalidArgument(
                "expected_version",
                "expected_version must be 0 (the alias must not exist) or a version number",
            )

        request = self._requests.request(
            "request_id", request_id, "SetModelAlias", model_id, name, version, expected
        )

        def change(tx: Transaction) -> AliasRecord:
            tx.lock_model(model_id)
            model = require_model(tx, caller, model_id, Role.EDITOR)
            if self._requests.earlier(tx, caller, request) is not None:
                now = tx.alias(model_id, name)
                if now is None:
                    raise _no_alias(name)
                return now
            if tx.version(model_id, version) is None:
                raise NotFound(f"the model has no version {version}", reason="VERSION_NOT_FOUND")
            _expect(tx.alias(model_id, name), name, expected)
            alias = tx.put_alias(model_id, name, version, caller_account(tx, caller))
            self._requests.remember(tx, caller, request, name)
            audit.record(
                tx,
                "SetModelAlias",
                caller,
                **audit.on_alias(model, name),
                details={"alias": name, "version": str(version)},
                kind=FeedKind.ALIAS_SET,
            )
            return alias

        return await self._requests.write(self._store, request, change)

    async def delete(self, caller: str, model_id: str, name: str, expected: int | None) -> None:
        """Removes the alias; when ``expected`` is not None, only if it points there now."""
        validation.resource_id("model_id", model_id)
        validation.alias_name("name", name)
        if expected is not None and expected < 1:
            raise InvalidArgument("expected_version", "expected_version must be 1 or more")

        def change(tx: Transaction) -> None:
            tx.lock_model(model_id)
            model = require_model(tx, caller, model_id, Role.EDITOR)
            current = tx.alias(model_id, name)
            if current is None:
                raise _no_alias(name)
            _expect(current, name, expected)
            tx.delete_alias(model_id, name)
            audit.record(
                tx,
                "DeleteModelAlias",
                caller,
                **audit.on_alias(model, name),
                details={"alias": name, "version": str(current.version)},
                kind=FeedKind.ALIAS_DELETED,
            )

        await self._store.write(change)

    async def list(self, caller: str, model_id: str, size: int, token: str) -> Page[AliasRecord]:
        validation.resource_id("model_id", model_id)
        limit = page_size(size)
        scope = f"aliases:{model_id}"
        after = self._tokens.decode(token, caller=caller, scope=scope)

        def aliases(tx: Transaction) -> list[AliasRecord]:
            require_model(tx, caller, model_id, Role.VIEWER)
            return tx.aliases(model_id, after, limit + 1)

        rows = await self._store.read(aliases)
        return page_of(self._tokens, rows, limit, caller, scope, lambda a: a.name)


def aliased_version(tx: Transaction, model_id: str, name: str) -> int:
    """The number of the version the alias points at; NOT_FOUND (ALIAS_NOT_FOUND) if none.
    The caller's access to the model must have been checked in ``tx`` already."""
    alias = tx.alias(model_id, name)
    if alias is None:
        raise _no_alias(name)
    return alias.version


def _expect(current: AliasRecord | None, name: str, expected: int | None) -> None:
    if expected is None:
        return
    now = ABSENT if current is None else current.version
    if now == expected:
        return
    where = "does not exist" if current is None else f"points at version {now}"
    wanted = "not to exist" if expected == ABSENT else f"to point at version {expected}"
    raise Aborted(
        f"alias {validation.quoted(name)} {where}, but the request expected it {wanted}; "
        "nothing was changed",
        reason="ALIAS_MOVED",
        metadata={"current_version": str(now)},
    )


def _no_alias(name: str) -> NotFound:
    return NotFound(f"the model has no alias {validation.quoted(name)}", reason="ALIAS_NOT_FOUND")
