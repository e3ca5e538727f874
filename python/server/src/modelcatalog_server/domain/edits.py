"""Edits of folders, models and versions: field masks (AIP-134) and etags (AIP-154).

An update names the fields it changes in a mask; the others keep their values. With the etag
the caller read, it is a compare-and-swap: the check and the change run in one transaction
holding the resource's row (the folder's or the model's, as grants and alias moves do), so of
two clients editing from the same etag exactly one wins and the other gets ABORTED
(ETAG_MISMATCH) instead of silently overwriting it.

An etag is a digest of what the resource is and when its editable fields last changed
(``updated_us``). Each change sets that time strictly later than the one before, even if the
clock went back (another server process, a corrected clock), so the etag changes with every
change and with nothing else: an upload does not change its model's etag, nor a grant its
folder's. It is opaque on purpose, so that clients compare it and never parse it.
"""

from __future__ import annotations

import hashlib
from collections.abc import Collection, Sequence
from dataclasses import replace

from ..storage.metadata import MetadataStore, Transaction, UniqueViolation, now_us
from ..storage.records import FolderRecord, ModelRecord, Role, VersionRecord
from . import audit, validation
from .catalog import require_folder, require_model
from .errors import Aborted, AlreadyExists, InvalidArgument, NotFound

#: The mask path meaning every updatable field (AIP-134's full replacement).
EVERY_FIELD = "*"
FOLDER_FIELDS = ("name", "description")
MODEL_FIELDS = ("name", "description")
VERSION_FIELDS = ("description", "labels")


def folder_etag(folder: FolderRecord) -> str:
    """The folder's etag as clients see it (the same for every caller, whatever their role)."""
    return _etag("folder", folder.id, folder.updated_us)


def model_etag(model: ModelRecord) -> str:
    """The model's etag as clients see it."""
    return _etag("model", model.id, model.updated_us)


def version_etag(version: VersionRecord) -> str:
    """The version's etag as clients see it."""
    return _etag("version", f"{version.model_id}/{version.version}", version.updated_us)


class Edits:
    """Changes the editable fields of folders (owners), models and versions (editors)."""

    def __init__(self, store: MetadataStore) -> None:
        self._store = store

    async def update_folder(
        self,
        caller: str,
        folder_id: str,
        paths: Sequence[str],
        *,
        name: str,
        description: str,
        etag: str,
    ) -> FolderRecord:
        """Sets the fields ``paths`` names to ``name`` and ``description``; with ``etag``, only
        if the folder's is still that one."""
        validation.resource_id("folder.id", folder_id)
        fields = _masked(paths, FOLDER_FIELDS)
        if "name" in fields:
            validation.display_name("folder.name", name)
        if "description" in fields:
            validation.description("folder.description", description)
        validation.etag("folder.etag", etag)

        def change(tx: Transaction) -> FolderRecord:
            tx.lock_folder(folder_id)
            folder = require_folder(tx, caller, folder_id, Role.OWNER)
            _expect(etag, folder_etag(folder), "folder")
            edited = replace(
                folder,
                name=name if "name" in fields else folder.name,
                description=description if "description" in fields else folder.description,
            )
            if edited == folder:
                return folder
            edited = replace(edited, updated_us=_after(folder.updated_us))
            tx.update_folder(folder_id, edited.name, edited.description, edited.updated_us)
            audit.record(tx, "UpdateFolder", caller, **audit.on_folder(folder_id))
            return edited

        try:
            return await self._store.write(change)
        except UniqueViolation:
            raise AlreadyExists(
                f"the folder's creator already has another folder named {validation.quoted(name)}",
                reason="FOLDER_NAME_TAKEN",
            ) from None

    async def update_model(
        self,
        caller: str,
        model_id: str,
        paths: Sequence[str],
        *,
        name: str,
        description: str,
        etag: str,
    ) -> ModelRecord:
        """Sets the fields ``paths`` names to ``name`` and ``description``; with ``etag``, only
        if the model's is still that one."""
        validation.resource_id("model.id", model_id)
        fields = _masked(paths, MODEL_FIELDS)
        if "name" in fields:
            validation.display_name("model.name", name)
        if "description" in fields:
            validation.description("model.description", description)
        validation.etag("model.etag", etag)

        def change(tx: Transaction) -> ModelRecord:
            tx.lock_model(model_id)
            model = require_model(tx, caller, model_id, Role.EDITOR)
            _expect(etag, model_etag(model), "model")
            edited = model._replace(
                name=name if "name" in fields else model.name,
                description=description if "description" in fields else model.description,
            )
            if edited == model:
                return model
            edited = edited._replace(updated_us=_after(model.updated_us))
            tx.update_model(model_id, edited.name, edited.description, edited.updated_us)
            audit.record(tx, "UpdateModel", caller, **audit.on_model(model.folder_id, model_id))
            return edited

        try:
            return await self._store.write(change)
        except UniqueViolation:
            raise AlreadyExists(
                f"the folder already has another model named {validation.quoted(name)}",
                reason="MODEL_NAME_TAKEN",
            ) from None

    async def update_version(
        self,
        caller: str,
        model_id: str,
        number: int,
        paths: Sequence[str],
        *,
        description: str,
        labels: dict[str, str],
        etag: str,
    ) -> VersionRecord:
        """Sets the fields ``paths`` names to ``description`` and ``labels`` (the whole map);
        with ``etag``, only if the version's is still that one."""
        validation.resource_id("version.model_id", model_id)
        if number < 1:
            raise InvalidArgument("version.version", "version.version must be 1 or more")
        fields = _masked(paths, VERSION_FIELDS)
        if "description" in fields:
            validation.description("version.description", description)
        if "labels" in fields:
            labels = validation.labels("version.labels", labels)
        validation.etag("version.etag", etag)

        def change(tx: Transaction) -> VersionRecord:
            tx.lock_model(model_id)
            model = require_model(tx, caller, model_id, Role.EDITOR)
            version = tx.version(model_id, number)
            if version is None:
                raise NotFound(f"the model has no version {number}", reason="VERSION_NOT_FOUND")
            _expect(etag, version_etag(version), "version")
            edited = replace(
                version,
                description=description if "description" in fields else version.description,
                labels=labels if "labels" in fields else version.labels,
            )
            if edited == version:
                return version
            edited = replace(edited, updated_us=_after(version.updated_us))
            tx.update_version(
                model_id, number, edited.description, edited.labels, edited.updated_us
            )
            audit.record(tx, "UpdateModelVersion", caller, **audit.on_version(model, number))
            return edited

        return await self._store.write(change)


def _masked(paths: Sequence[str], updatable: Collection[str]) -> frozenset[str]:
    """The fields an update mask names: at least one, each updatable, or ``*`` alone for all."""
    allowed = ", ".join(repr(field) for field in (*updatable, EVERY_FIELD))
    if not paths:
        raise InvalidArgument(
            "update_mask", f"update_mask must name the fields to change: {allowed}"
        )
    if EVERY_FIELD in paths:
        if len(paths) > 1:
            raise InvalidArgument(
                "update_mask", f"update_mask {EVERY_FIELD!r} must be its only path"
            )
        return frozenset(updatable)
    for path in paths:
        if path not in updatable:
            raise InvalidArgument(
                "update_mask",
                f"update_mask names {validation.quoted(path)}, which cannot be changed; "
                f"it may name {allowed}",
            )
    return frozenset(paths)


def _expect(sent: str, current: str, kind: str) -> None:
    """Nothing when no etag was sent or it is the current one; else ABORTED."""
    if sent and sent != current:
        raise Aborted(
            f"the {kind} changed since its etag {validation.quoted(sent)} was read; nothing was "
            f"changed: read the {kind} again and decide on its new values",
            reason="ETAG_MISMATCH",
        )


def _after(previous_us: int) -> int:
    """The time of a change: now, but strictly later than the previous change."""
    return max(now_us(), previous_us + 1)


def _etag(kind: str, resource_id: str, updated_us: int) -> str:
    digest = hashlib.blake2b(f"{kind}\0{resource_id}\0{updated_us}".encode(), digest_size=12)
    return digest.hexdigest()
