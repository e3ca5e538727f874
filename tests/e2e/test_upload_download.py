"""The README scenario "upload and download", with real files, over TLS to the real server."""

from __future__ import annotations

import asyncio
import hashlib
import io
import os
import tarfile
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from modelcatalog import AsyncClient, PermissionDenied

from ..server_process import kill_during_upload, leftover_uploads
from .conftest import RunningServer, start_server, wait_for

PASSWORD = "correct horse battery"
MiB = 1 << 20


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as file:
        while block := file.read(MiB):
            digest.update(block)
    return digest.hexdigest()


def make_text(directory: Path) -> Path:
    path = directory / "notes.txt"
    path.write_text("A model card.\nTrained on cats.\n" * 100)
    return path


def make_onnx(directory: Path) -> Path:
    """A real ONNX model (y = x @ W + b) that onnx's checker accepts."""
    rng = np.random.default_rng(7)
    weights = numpy_helper.from_array(rng.standard_normal((256, 128)).astype(np.float32), "W")
    bias = numpy_helper.from_array(rng.standard_normal(128).astype(np.float32), "b")
    graph = helper.make_graph(
        [helper.make_node("MatMul", ["x", "W"], ["h"]), helper.make_node("Add", ["h", "b"], ["y"])],
        "linear",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 256])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 128])],
        [weights, bias],
    )
    model = helper.make_model(graph, producer_name="modelcatalog-e2e")
    onnx.checker.check_model(model)
    path = directory / "linear.onnx"
    onnx.save(model, path)
    return path


def make_archive(directory: Path) -> Path:
    path = directory / "checkpoint.tar.gz"
    with tarfile.open(path, "w:gz") as archive:
        for name, size in (("weights.bin", 2 * MiB), ("config.json", 200)):
            info = tarfile.TarInfo(name)
            info.size = size
            archive.addfile(info, io.BytesIO(os.urandom(size)))
    return path


def make_large(directory: Path) -> Path:
    path = directory / "checkpoint-256MiB.bin"
    with path.open("wb") as file:
        for _ in range(256):
            file.write(os.urandom(MiB))
    return path


@pytest.fixture
def connect(server: RunningServer) -> Callable[[], AsyncClient]:
    return lambda: AsyncClient(server.address, ca_cert=server.ca_cert)


async def signed_in(connect: Callable[[], AsyncClient], username: str) -> AsyncClient:
    client = connect()
    await client.sign_up(username, PASSWORD)
    await client.sign_in(username, PASSWORD)
    return client


@pytest.fixture
async def alice(connect: Callable[[], AsyncClient]) -> AsyncIterator[AsyncClient]:
    client = await signed_in(connect, "alice")
    yield client
    client.close()


@pytest.mark.parametrize(
    "make",
    [make_text, make_onnx, make_archive, make_large],
    ids=["txt", "onnx", "tar.gz", "256MiB"],
)
async def test_upload_and_download(
    alice: AsyncClient, tmp_path: Path, make: Callable[[Path], Path]
) -> None:
    """Each kind of file comes back byte-identical, with the SHA-256 the server reported."""
    source = make(tmp_path)
    folder = await alice.create_folder("vision")
    model = await alice.create_model(folder.id, "resnet")
    progress: list[int] = []
    version = await alice.upload(
        model.id, source, progress=lambda done, total: progress.append(done)
    )
    assert version.version == 1
    assert version.file_name == source.name
    assert version.size_bytes == source.stat().st_size
    assert version.sha256 == sha256_of(source)
    assert progress[-1] == source.stat().st_size
    target = tmp_path / "downloaded"
    target.mkdir()
    downloaded = await alice.download(model.id, 1, target)
    saved = target / source.name
    assert downloaded.path == saved
    assert downloaded.version.sha256 == version.sha256
    assert saved.read_bytes() == source.read_bytes()
    if source.suffix == ".onnx":
        onnx.checker.check_model(onnx.load(saved))


async def test_resumed_download_completes_a_partial_file(
    alice: AsyncClient, tmp_path: Path
) -> None:
    """A download resumes from the bytes already on disk and ends byte-identical."""
    source = tmp_path / "weights.bin"
    source.write_bytes(os.urandom(5 * MiB + 321))
    folder = await alice.create_folder("vision")
    model = await alice.create_model(folder.id, "resnet")
    await alice.upload(model.id, source)
    destination = tmp_path / "copy.bin"
    partial = Path(f"{destination}.part")
    partial.write_bytes(source.read_bytes()[: 2 * MiB + 5])
    progress: list[int] = []
    await alice.download(
        model.id, 1, destination, progress=lambda done, total: progress.append(done)
    )
    assert destination.read_bytes() == source.read_bytes()
    assert not partial.exists()
    assert progress[0] > 2 * MiB


async def test_viewer_downloads_but_cannot_upload_and_stranger_neither(
    alice: AsyncClient, connect: Callable[[], AsyncClient], tmp_path: Path
) -> None:
    """A viewer can download; only editors upload; a stranger can do neither."""
    source = tmp_path / "v1.bin"
    source.write_bytes(b"weights")
    folder = await alice.create_folder("shared")
    model = await alice.create_model(folder.id, "resnet")
    await alice.upload(model.id, source)
    viewer = await signed_in(connect, "victor")
    stranger = await signed_in(connect, "mallory")
    await alice.grant_folder_access(folder.id, "victor", "viewer")
    await viewer.download(model.id, 1, tmp_path / "viewer.bin")
    assert (tmp_path / "viewer.bin").read_bytes() == b"weights"
    for client in (viewer, stranger):
        with pytest.raises(PermissionDenied):
            await client.upload(model.id, source)
    with pytest.raises(PermissionDenied):
        await stranger.download(model.id, 1, tmp_path / "stranger.bin")
    assert not (tmp_path / "stranger.bin").exists()
    viewer.close()
    stranger.close()


async def test_killed_server_leaves_no_partial_version(tmp_path: Path, signing_key: Path) -> None:
    """SIGKILL during an upload, then a restart: no version is listed, and once the upload's
    grace period (that of the killed server) has passed the restarted one has removed what it
    left."""
    # Each upload carries the deadline of the server running it: this one's is 1 s.
    first = start_server(tmp_path, "--upload-grace-period", "1", signing_key=signing_key)
    async with AsyncClient(first.address, ca_cert=first.ca_cert) as alice:
        await alice.sign_up("alice", PASSWORD)
        await alice.sign_in("alice", PASSWORD)
        folder = await alice.create_folder("vision")
        model = await alice.create_model(folder.id, "resnet")
        token = alice.token
    await kill_during_upload(first, token, model.id)
    second = start_server(
        tmp_path,
        "--upload-grace-period",
        "1",
        data_dir=first.data_dir,
        signing_key=signing_key,
    )
    try:
        async with AsyncClient(second.address, ca_cert=second.ca_cert, token=token) as alice:
            assert [v async for v in alice.list_model_versions(model.id)] == []
            assert (await alice.get_model(model.id)).latest_version == 0
        assert await asyncio.to_thread(
            wait_for, lambda: "cleaned up 1 abandoned upload(s)" in second.log()
        )
        assert leftover_uploads(second) == []
    finally:
        assert second.stop() == 0
