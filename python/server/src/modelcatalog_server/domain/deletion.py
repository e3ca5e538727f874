"""Deleting versions, models and folders, and reclaiming the bytes nothing uses any more.

Each deletion is one transaction that first holds the rows it deletes (``lock_model``, or
``lock_folder`` and ``lock_folder_models``), so an upload committing to the model, an alias
move or a new model in the folder either commits before it or finds the model or folder gone.
Versions are deleted whatever their number; the model's version counter is not touched, so a
deleted version's number is never given again. Blobs are content-addressed and may be shared
by versions with the same bytes: the same transaction marks only the blobs no remaining version
or upload uses, and their bytes are deleted once it has committed (``PendingUploads``), or by
a later clean-up round of any process should that fail. A forced folder deletion therefore
holds its transaction for the row deletions and marks only, never for the file deletions.

Refusals follow the catalog's rule: a model or folder the caller may not delete, including one
that no longer exists, is PERMISSION_DENIED, so deleting it again reveals nothing; a missing
version of a model the caller may see is NOT_FOUND.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

from ..storage.metadata import MetadataStore, Transaction
from ..storage.records import FeedKind, Role
from . import audit, validation
from .catalog import require_folder, require_model
from .errors import FailedPrecondition, InvalidArgument, NotFound
from .uploads import PendingUploads

T = TypeVar("T")


class Deletions:
    """Delete versions (editors), models and folders (owners), then reclaim their bytes."""

    def __init__(self, store: MetadataStore, pending: PendingUploads) -> None:
        self._store = store
        self._pending = pending

    async def delete_version(
        self, caller: str, model_id: str, number: int, *, force: bool
    ) -> list[str]:
        """Deletes version ``number``; returns the names of the aliases deleted with it, which
        only ``force`` allows (else FAILED_PRECONDITION, VERSION_HAS_ALIASES)."""
        validation.resource_id("model_id", model_id)
        if number < 1:
            raise InvalidArgument("version", "version must be 1 or more")

        def delete(tx: Transaction) -> tuple[list[str], list[str]]:
            tx.lock_model(model_id)
            model = require_model(tx, caller, model_id, Role.EDITOR)
            aliases = tx.version_aliases(model_id, number)
            if aliases and not force:
                raise _held_by_aliases(number, aliases)
            digest = tx.delete_version(model_id, number)
            if digest is None:
                raise NotFound(f"the model has no version {number}", reason="VERSION_NOT_FOUND")
            audit.record(
                tx,
                "DeleteModelVersion",
                caller,
                **audit.on_version(model, number),
                details={"version": str(number), "aliases": ",".join(aliases)},
                kind=FeedKind.VERSION_DELETED,
            )
            return aliases, self._pending.mark_unused(tx, [digest])

        return await self._reclaiming(delete)

    async def delete_model(self, caller: str, model_id: str) -> int:
        """Deletes the model with its versions and aliases; returns how many versions it had."""
        validation.resource_id("model_id", model_id)

        def delete(tx: Transaction) -> tuple[int, list[str]]:
            tx.lock_model(model_id)
            model = require_model(tx, caller, model_id, Role.OWNER)
            digests = tx.delete_model(model_id)
            audit.record(
                tx,
                "DeleteModel",
                caller,
                **audit.on_model(model.folder_id, model_id),
                details={"name": model.name},
                kind=FeedKind.MODEL_DELETED,
            )
            return len(digests), self._pending.mark_unused(tx, digests)

        return await self._reclaiming(delete)

    async def delete_folder(self, caller: str, folder_id: str, *, force: bool) -> tuple[int, int]:
        """Deletes the folder and its memberships, and with ``force`` its models with their
        versions and aliases (without it a folder with models is FAILED_PRECONDITION,
        FOLDER_NOT_EMPTY); returns how many models and versions were deleted."""
        validation.resource_id("folder_id", folder_id)

        def delete(tx: Transaction) -> tuple[tuple[int, int], list[str]]:
            tx.lock_folder(folder_id)
            folder = require_folder(tx, caller, folder_id, Role.OWNER)
            held = tx.lock_folder_models(folder_id)
            if held and not force:
                raise FailedPrecondition(
                    f"the folder still holds {held} model(s); delete them first, or delete the"
                    " folder with force to delete them with it",
                    reason="FOLDER_NOT_EMPTY",
                    metadata={"models": str(held)},
                )
            audit.record(
                tx,
                "DeleteFolder",
                caller,
                **audit.on_folder(folder_id),
                details={"name": folder.name},
                kind=FeedKind.FOLDER_DELETED,
                audience_folder=folder_id,
            )
            models, digests = tx.delete_folder(folder_id)
            return (models, len(digests)), self._pending.mark_unused(tx, digests)

        return await self._reclaiming(delete)

    async def _reclaiming(self, delete: Callable[[Transaction], tuple[T, list[str]]]) -> T:
        """Runs ``delete``, which returns its result and the blobs it marked, then deletes
        those blobs' bytes."""
        result, marked = await self._store.write(delete)
        await self._pending.delete_marked(marked)
        return result


def _held_by_aliases(number: int, aliases: list[str]) -> FailedPrecondition:
    names = ", ".join(validation.quoted(name) for name in aliases)
    return FailedPrecondition(
        f"version {number} is what alias(es) {names} point at; move or delete them first, or"
        " delete the version with force to delete them with it",
        reason="VERSION_HAS_ALIASES",
        metadata={"aliases": ",".join(aliases)},
    )
