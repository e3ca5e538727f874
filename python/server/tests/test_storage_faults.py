"""A full disk or a locked database answers a declared status, leaves nothing behind, and
shows in health; the server keeps serving."""

from __future__ import annotations

import errno
import hashlib
import logging
import os
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

import pytest
from grpclib.client import Channel
from grpclib.const import Status
from grpclib.health.v1.health_grpc import HealthStub
from grpclib.health.v1.health_pb2 import HealthCheckRequest, HealthCheckResponse
from grpclib.testing import ChannelFor
from server_testing import Api, Caller, expect_error

from modelcatalog import v1
from modelcatalog_server import app as app_module
from modelcatalog_server.app import build_application
from modelcatalog_server.config import Settings
from modelcatalog_server.domain.catalog import Catalog
from modelcatalog_server.storage.faults import StorageFault, StorageFull, StorageUnavailable
from modelcatalog_server.storage.metadata import MetadataStore

MiB = 1 << 20


@dataclass(frozen=True)
class Fault:
    """A storage fault and what a client must see of it."""

    error: StorageFault
    status: Status
    reason: str


FAULTS = [
    Fault(
        StorageFull("no space left in /srv/data/catalog.sqlite3"),
        Status.RESOURCE_EXHAUSTED,
        "STORAGE_FULL",
    ),
    Fault(
        StorageUnavailable("database is locked: /srv/data"),
        Status.UNAVAILABLE,
        "STORAGE_UNAVAILABLE",
    ),
]


@pytest.mark.parametrize("fault", FAULTS, ids=lambda fault: fault.reason)
async def test_storage_faults_answer_their_declared_status_not_internal(
    api: Api, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture, fault: Fault
) -> None:
    """A fault answers its status and reason; its cause stays in the server; no traceback."""

    async def failing(*_args: object) -> None:
        raise fault.error

    alice = await api.caller("alice")
    monkeypatch.setattr(Catalog, "create_folder", failing)
    error = await expect_error(
        alice.folders.create_folder(v1.CreateFolderRequest("vision")), fault.status, fault.reason
    )
    assert "/srv/data" not in (error.message or "")
    assert "Traceback" not in caplog.text
    assert (await alice.folders.list_folders(v1.ListFoldersRequest())).folders == []


def blob_files(settings: Settings) -> list[Path]:
    return [p for p in (settings.data_dir / "blobs").rglob("*") if p.is_file()]


async def upload(alice: Caller, model_id: str, data: bytes) -> v1.ModelVersion:
    header = v1.UploadModelVersionHeader(
        model_id, "model.bin", size_bytes=len(data), sha256=hashlib.sha256(data).hexdigest()
    )

    async def messages() -> AsyncIterator[v1.UploadModelVersionRequest]:
        yield v1.UploadModelVersionRequest(header=header)
        for start in range(0, len(data), MiB):
            yield v1.UploadModelVersionRequest(chunk=data[start : start + MiB])

    response = await alice.models.upload_model_version(messages())
    return response.version


def fails_with(error: int) -> Callable[..., None]:
    def fail(*_args: object) -> None:
        raise OSError(error, os.strerror(error))

    return fail


@pytest.fixture
def full_disk(settings: Settings, monkeypatch: pytest.MonkeyPatch) -> Callable[[str], None]:
    """Makes the disk of the blob store full for writes ("write") or for fsync ("fsync")."""
    real_open = Path.open

    def open_on_full_disk(path: Path, mode: str = "r", *args: Any, **kwargs: Any) -> IO[Any]:
        if path.parent == settings.data_dir / "blobs" / "tmp" and mode == "xb":
            real_open(path, mode).close()
            return real_open(Path("/dev/full"), "wb")
        return real_open(path, mode, *args, **kwargs)

    def fill(where: str) -> None:
        if where == "write":
            monkeypatch.setattr(Path, "open", open_on_full_disk)
        else:
            monkeypatch.setattr(os, "fsync", fails_with(errno.ENOSPC))

    return fill


@pytest.mark.parametrize("where", ["write", "fsync"])
async def test_upload_to_a_full_disk_is_storage_full_and_leaves_nothing(
    api: Api,
    settings: Settings,
    monkeypatch: pytest.MonkeyPatch,
    full_disk: Callable[[str], None],
    where: str,
) -> None:
    """ENOSPC while storing an upload: RESOURCE_EXHAUSTED (STORAGE_FULL), no file, no version;
    once there is room again, the same upload succeeds."""
    alice = await api.caller("alice")
    folder = (await alice.folders.create_folder(v1.CreateFolderRequest("vision"))).folder
    model = (await alice.models.create_model(v1.CreateModelRequest(folder.id, "resnet"))).model
    data = os.urandom(3 * MiB)
    with monkeypatch.context():
        full_disk(where)
        await expect_error(upload(alice, model.id, data), Status.RESOURCE_EXHAUSTED, "STORAGE_FULL")
        assert blob_files(settings) == []
        model = (await alice.models.get_model(v1.GetModelRequest(model.id))).model
        assert model.latest_version == 0
    monkeypatch.undo()
    assert (await upload(alice, model.id, data)).version == 1


async def test_a_disk_error_while_writing_an_upload_is_a_server_fault_and_leaves_nothing(
    api: Api, settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An I/O error in the thread that writes an upload's bytes answers INTERNAL (the server's
    disk, not the client, is at fault), with no file and no version left; the next upload works."""
    alice = await api.caller("alice")
    folder = (await alice.folders.create_folder(v1.CreateFolderRequest("vision"))).folder
    model = (await alice.models.create_model(v1.CreateModelRequest(folder.id, "resnet"))).model
    data = os.urandom(3 * MiB)
    with monkeypatch.context() as patched:
        patched.setattr(os, "writev", fails_with(errno.EIO))
        await expect_error(upload(alice, model.id, data), Status.INTERNAL, "INTERNAL")
    assert blob_files(settings) == []
    assert (await alice.models.get_model(v1.GetModelRequest(model.id))).model.latest_version == 0
    assert (await upload(alice, model.id, data)).version == 1


@pytest.fixture
async def quick_health(
    settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> AsyncIterator[Channel]:
    """The application with health checks that are never reused (TTL 0)."""
    monkeypatch.setattr(app_module, "HEALTH_CHECK_TTL_SECONDS", 0.0)
    async with build_application(settings) as app, ChannelFor(app.services) as channel:
        yield channel


async def health_status(channel: Channel) -> int:
    return (await HealthStub(channel).Check(HealthCheckRequest(service=""))).status


async def test_health_is_not_serving_while_the_data_dir_cannot_be_written(
    quick_health: Channel, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """NOT_SERVING while a file in the data directory cannot be synced, SERVING again after."""
    caplog.set_level(logging.WARNING, logger="modelcatalog_server")
    assert await health_status(quick_health) == HealthCheckResponse.SERVING
    monkeypatch.setattr(os, "fsync", fails_with(errno.ENOSPC))
    assert await health_status(quick_health) == HealthCheckResponse.NOT_SERVING
    assert "cannot be written" in caplog.text
    monkeypatch.undo()
    assert await health_status(quick_health) == HealthCheckResponse.SERVING


async def test_health_is_not_serving_while_the_database_does_not_answer(
    quick_health: Channel, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """A database that stays busy past its wait makes health NOT_SERVING, logged without a
    traceback; SERVING again once it answers."""

    async def busy(_store: MetadataStore) -> None:
        raise StorageUnavailable("no database connection came free within the wait limit")

    monkeypatch.setattr(MetadataStore, "ping", busy)
    assert await health_status(quick_health) == HealthCheckResponse.NOT_SERVING
    assert "the database does not answer: no database connection" in caplog.text
    assert "Traceback" not in caplog.text
    monkeypatch.undo()
    assert await health_status(quick_health) == HealthCheckResponse.SERVING
