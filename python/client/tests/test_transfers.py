"""Uploads and downloads stream whole files in chunks, verified, resumable and without deadline."""

import asyncio
import errno
import gzip
import hashlib
import io
import itertools
import os
import random
import re
import stat
import threading
from collections.abc import AsyncIterator
from pathlib import Path
from typing import BinaryIO, cast

import betterproto
import pytest
from flushes import needs_fdatasync, record_flushes, sync_every
from grpclib.const import Status
from grpclib.events import SendRequest, listen
from grpclib.testing import ChannelFor
from rpc_testing import FakeTransfers, grpc_error

from modelcatalog import (
    AsyncClient,
    DataLoss,
    DownloadedFile,
    FailedPrecondition,
    ModelCatalogError,
    NotFound,
    PermissionDenied,
    ResourceExhausted,
    Unavailable,
    _files,
    v1,
)
from modelcatalog._transport import CHUNK_SIZE

SIZE = 3 * CHUNK_SIZE + 12345
MAX_VERSION_SIZE = 6 * CHUNK_SIZE


class FakeModels(FakeTransfers):
    """The shared fake, refusing model "denied" and files over ``MAX_VERSION_SIZE``."""

    def check_upload(self, header: v1.UploadModelVersionHeader) -> None:
        if header.model_id == "denied":
            raise grpc_error(
                Status.PERMISSION_DENIED, "folder_access_denied", "FOLDER_ACCESS_DENIED"
            )
        if (header.size_bytes or 0) > MAX_VERSION_SIZE:
            raise grpc_error(Status.RESOURCE_EXHAUSTED, "version_too_large", "VERSION_TOO_LARGE")

    def check_download(self, request: v1.DownloadModelVersionRequest) -> None:
        if request.model_id == "denied":
            raise grpc_error(
                Status.PERMISSION_DENIED, "folder_access_denied", "FOLDER_ACCESS_DENIED"
            )


class Unseekable(io.BytesIO):
    """A stream that can be read only once, like a pipe or stdin."""

    def seekable(self) -> bool:
        return False


class BadBlock(Unseekable):
    """A stream whose reads after the first one fail with ``error``, like a damaged disk."""

    def __init__(self, data: bytes, error: OSError) -> None:
        super().__init__(data)
        self.error = error
        self.reads = 0

    def read(self, size: int | None = -1, /) -> bytes:
        self.reads += 1
        if self.reads > 1:
            raise self.error
        return super().read(size)


class Progress:
    """Records progress callbacks."""

    def __init__(self) -> None:
        self.calls: list[tuple[int, int | None]] = []

    @classmethod
    def of(cls, calls: list[tuple[int, int | None]]) -> "Progress":
        progress = cls()
        progress.calls = calls
        return progress

    def __call__(self, done: int, total: int | None) -> None:
        self.calls.append((done, total))


@pytest.fixture
def fake() -> FakeModels:
    return FakeModels()


@pytest.fixture
async def client(fake: FakeModels) -> AsyncIterator[AsyncClient]:
    async with ChannelFor([fake]) as channel:
        yield AsyncClient.from_channel(channel, token="tok", retry_backoff=0)


@pytest.fixture
def opened(monkeypatch: pytest.MonkeyPatch) -> list[BinaryIO]:
    """Every file the SDK opens (through ``_files._open_binary``), in order."""
    real_open = _files._open_binary
    files: list[BinaryIO] = []

    def recording_open(path: str | os.PathLike[str], mode: _files._BinaryMode) -> BinaryIO:
        files.append(real_open(path, mode))
        return files[-1]

    monkeypatch.setattr(_files, "_open_binary", recording_open)
    return files


@pytest.fixture
def data() -> bytes:
    return random.Random(7).randbytes(SIZE)


@pytest.fixture
def source(tmp_path: Path, data: bytes) -> Path:
    path = tmp_path / "src" / "model.onnx"
    path.parent.mkdir()
    path.write_bytes(data)
    return path


def _header(fake: FakeModels) -> v1.UploadModelVersionHeader:
    return fake.uploads[-1][0].header


def _trailer(fake: FakeModels) -> v1.UploadModelVersionTrailer:
    return fake.uploads[-1][-1].trailer


class CountingReader(io.BufferedReader):
    """A file opened for reading that counts the bytes read from it."""

    def __init__(self, path: str | os.PathLike[str]) -> None:
        super().__init__(io.FileIO(path))
        self.bytes_read = 0

    def read(self, size: int | None = -1, /) -> bytes:
        block = super().read(size)
        self.bytes_read += len(block)
        return block


async def _held(fake: FakeModels) -> None:
    """Wait until a download waits for ``fake.hold`` (for at most a few seconds)."""
    async with asyncio.timeout(5):
        await fake.holding.wait()


def _assert_progress(progress: Progress, start: int, total: int) -> None:
    """Progress was (start, total) before the first chunk, then rose strictly, by at most a
    chunk at a time, to (total, total)."""
    assert progress.calls[0] == (start, total)
    done = [call[0] for call in progress.calls]
    assert all(0 < b - a <= CHUNK_SIZE for a, b in itertools.pairwise(done))
    assert progress.calls[-1] == (total, total)


async def test_round_trip_is_byte_identical(
    client: AsyncClient, source: Path, tmp_path: Path, data: bytes
) -> None:
    """A file uploaded from a path downloads byte for byte, leaving no .part file behind."""
    uploaded = await client.upload("m1", source)
    destination = tmp_path / "copy.onnx"
    downloaded = await client.download("m1", uploaded.version, destination)
    assert downloaded == DownloadedFile(destination, uploaded, resumed_from=0)
    assert destination.read_bytes() == data
    assert downloaded.version.sha256 == hashlib.sha256(data).hexdigest()
    assert not (tmp_path / "copy.onnx.part").exists()


async def test_header_declares_the_file(
    client: AsyncClient, fake: FakeModels, source: Path, data: bytes
) -> None:
    """A path upload declares its base name, guessed type, size and the metadata given in the
    header, and its SHA-256 in the trailer."""
    version = await client.upload("m1", source, description="nightly", labels={"stage": "dev"})
    header = _header(fake)
    assert header.model_id == "m1"
    assert header.file_name == "model.onnx"
    assert header.content_type == "application/octet-stream"
    assert (header.size_bytes, header.sha256) == (SIZE, "")
    assert _trailer(fake).sha256 == hashlib.sha256(data).hexdigest()
    assert (header.description, header.labels) == ("nightly", {"stage": "dev"})
    assert (version.file_name, version.labels) == ("model.onnx", {"stage": "dev"})


@pytest.mark.parametrize(
    ("name", "content_type"),
    [
        ("bundle.tar.gz", "application/gzip"),
        ("config.json", "application/json"),
        ("weights.pt", "application/octet-stream"),
        ("README", "application/octet-stream"),
    ],
)
async def test_content_type_is_guessed_from_the_file_name(
    client: AsyncClient, fake: FakeModels, name: str, content_type: str
) -> None:
    """Without content_type the media type comes from the name, the same on every machine."""
    await client.upload("m1", io.BytesIO(b"x"), file_name=name)
    assert _header(fake).content_type == content_type


async def test_explicit_name_and_content_type_win(
    client: AsyncClient, fake: FakeModels, source: Path
) -> None:
    """file_name and content_type given by the caller are declared as given."""
    await client.upload("m1", source, file_name="other.bin", content_type="model/x-test")
    assert (_header(fake).file_name, _header(fake).content_type) == ("other.bin", "model/x-test")


async def test_upload_is_a_header_then_chunks_of_at_most_a_mebibyte_then_a_trailer(
    client: AsyncClient, fake: FakeModels, source: Path
) -> None:
    """The first message is the header, the last the trailer, every other a chunk of at most
    CHUNK_SIZE."""
    await client.upload("m1", source)
    kinds = [betterproto.which_one_of(message, "content")[0] for message in fake.uploads[-1]]
    assert kinds == ["header"] + ["chunk"] * 4 + ["trailer"]
    chunks = fake.uploads[-1][1:-1]
    assert [len(message.chunk) for message in chunks] == [CHUNK_SIZE] * 3 + [12345]


async def test_upload_reads_the_file_once(
    client: AsyncClient,
    fake: FakeModels,
    source: Path,
    data: bytes,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The file is read exactly once: its size comes from fstat, its SHA-256 from the chunks."""
    files: list[CountingReader] = []

    def counting_open(path: str | os.PathLike[str], mode: _files._BinaryMode) -> BinaryIO:
        files.append(CountingReader(path))
        return files[-1]

    monkeypatch.setattr(_files, "_open_binary", counting_open)
    version = await client.upload("m1", source)
    assert [file.bytes_read for file in files] == [SIZE]
    assert _header(fake).size_bytes == SIZE
    assert _trailer(fake).sha256 == hashlib.sha256(data).hexdigest()
    assert fake.files[version.version] == data


async def test_upload_progress_rises_to_the_total(client: AsyncClient, source: Path) -> None:
    """Upload progress is reported at the start and after every chunk, rising to (size, size)."""
    progress = Progress()
    await client.upload("m1", source, progress=progress)
    assert len(progress.calls) == 1 + 4
    _assert_progress(progress, 0, SIZE)


async def test_seekable_file_object_uploads_from_its_position(
    client: AsyncClient, fake: FakeModels, data: bytes
) -> None:
    """A seekable file object declares its size from its position, is sent from there and left
    open."""
    file = io.BytesIO(data)
    file.seek(100)
    version = await client.upload("m1", file, file_name="model.onnx")
    assert _header(fake).size_bytes == SIZE - 100
    assert _trailer(fake).sha256 == hashlib.sha256(data[100:]).hexdigest()
    assert fake.files[version.version] == data[100:]
    assert not file.closed


async def test_unseekable_stream_declares_its_digest_in_the_trailer(
    client: AsyncClient, fake: FakeModels, data: bytes
) -> None:
    """A stream that cannot seek is sent once without a size, its SHA-256 in the trailer;
    progress has no total."""
    progress = Progress()
    version = await client.upload("m1", Unseekable(data), file_name="m.bin", progress=progress)
    assert (_header(fake).size_bytes, _header(fake).sha256) == (None, "")
    assert _trailer(fake).sha256 == hashlib.sha256(data).hexdigest()
    assert fake.files[version.version] == data
    assert progress.calls[-1] == (SIZE, None)


async def test_a_decompressing_stream_declares_no_size_of_the_file_under_it(
    client: AsyncClient, fake: FakeModels, data: bytes, tmp_path: Path
) -> None:
    """A GzipFile has the compressed file's fileno and seeks to its end only by decompressing
    it all: it declares no size (so it is not decompressed twice) and sends its SHA-256 in the
    trailer."""
    compressed = tmp_path / "model.bin.gz"
    with gzip.open(compressed, "wb") as file:
        file.write(data)
    with gzip.open(compressed, "rb") as file:
        # typeshed's GzipFile is a BufferedIOBase, not a BinaryIO; it reads as one.
        version = await client.upload("m1", cast(BinaryIO, file), file_name="model.bin")
    assert _header(fake).size_bytes is None
    assert _trailer(fake).sha256 == hashlib.sha256(data).hexdigest()
    assert fake.files[version.version] == data


async def test_file_object_needs_a_file_name(client: AsyncClient, fake: FakeModels) -> None:
    """Uploading a file object without file_name raises ValueError before any RPC."""
    with pytest.raises(ValueError, match="file_name is required"):
        await client.upload("m1", Unseekable(b"abc"))
    assert fake.uploads == []


async def test_empty_file_round_trips(client: AsyncClient, tmp_path: Path) -> None:
    """An empty file uploads as a header alone and downloads as an empty file."""
    empty = tmp_path / "empty.bin"
    empty.write_bytes(b"")
    version = await client.upload("m1", empty)
    await client.download("m1", version.version, tmp_path / "copy.bin")
    assert (tmp_path / "copy.bin").read_bytes() == b""


@pytest.mark.parametrize(
    "change",
    [b"grown", b"", None],
    ids=["grown", "rewritten in place", "truncated"],
)
async def test_file_changed_during_upload_is_refused_and_nothing_stored(
    client: AsyncClient, fake: FakeModels, source: Path, change: bytes | None
) -> None:
    """A file whose size or modification time changes while it is sent raises
    FailedPrecondition naming it; the stream is reset, so nothing is stored."""
    os.utime(source, ns=(0, 0))  # written long ago: any write now changes its mtime

    def change_file(done: int, total: int | None) -> None:
        if done == CHUNK_SIZE:
            with source.open("r+b") as file:
                if change is None:
                    file.truncate(2 * CHUNK_SIZE)
                    return
                file.seek(2 * CHUNK_SIZE)
                file.write(b"changed")
                file.seek(0, 2)
                file.write(change)

    with pytest.raises(FailedPrecondition, match="changed while it was being uploaded") as caught:
        await client.upload("m1", source, progress=change_file)
    assert str(source) in str(caught.value)
    assert fake.versions == []


@pytest.mark.parametrize("where", ["read", "progress"])
async def test_local_errors_during_upload_are_raised_as_they_are(
    client: AsyncClient, fake: FakeModels, data: bytes, where: str
) -> None:
    """A read error or an error of the progress callback cancels the upload, not Unavailable."""
    failure = OSError(errno.EIO, os.strerror(errno.EIO))

    def progress(done: int, total: int | None) -> None:
        if where == "progress":
            raise failure

    source = BadBlock(data, failure) if where == "read" else Unseekable(data)
    with pytest.raises(OSError, match="Input/output error") as caught:
        await client.upload("m1", source, file_name="m.bin", progress=progress)
    assert caught.value is failure
    assert fake.versions == []  # the stream was reset, not ended: nothing truncated is stored


@pytest.mark.parametrize(
    ("model_id", "error_class", "reason"),
    [
        ("denied", PermissionDenied, "FOLDER_ACCESS_DENIED"),
        ("huge", ResourceExhausted, "VERSION_TOO_LARGE"),
    ],
)
async def test_upload_rejected_mid_stream_raises_the_typed_error(
    client: AsyncClient,
    fake: FakeModels,
    tmp_path: Path,
    model_id: str,
    error_class: type[ModelCatalogError],
    reason: str,
) -> None:
    """A server that rejects the header while chunks are still coming surfaces its reason."""
    big = tmp_path / "big.bin"
    with big.open("wb") as file:
        file.truncate(MAX_VERSION_SIZE + 64 * CHUNK_SIZE)
    with pytest.raises(error_class) as caught:
        await client.upload(model_id, big)
    assert caught.value.reason == reason


async def test_download_progress_rises_to_the_total(
    client: AsyncClient, fake: FakeModels, data: bytes, tmp_path: Path
) -> None:
    """Download progress is reported at the start and after every chunk, up to (size, size)."""
    fake.store(data)
    progress = Progress()
    await client.download("m1", 1, tmp_path / "out", progress=progress)
    assert len(progress.calls) == 1 + 4
    _assert_progress(progress, 0, SIZE)


async def test_download_resumes_from_a_correct_part_file(
    client: AsyncClient, fake: FakeModels, data: bytes, tmp_path: Path
) -> None:
    """A .part file holding the first N bytes makes the download ask for offset N."""
    fake.store(data)
    kept = CHUNK_SIZE + 999
    (tmp_path / "out.part").write_bytes(data[:kept])
    progress = Progress()
    downloaded = await client.download("m1", 1, tmp_path / "out", progress=progress)
    assert downloaded.resumed_from == kept
    assert fake.offsets == [kept]
    assert (tmp_path / "out").read_bytes() == data
    assert not (tmp_path / "out.part").exists()
    _assert_progress(progress, kept, SIZE)


async def test_resume_false_starts_over(
    client: AsyncClient, fake: FakeModels, data: bytes, tmp_path: Path
) -> None:
    """With resume=False an existing .part file is emptied and the download starts at 0."""
    fake.store(data)
    (tmp_path / "out.part").write_bytes(b"junk")
    await client.download("m1", 1, tmp_path / "out", resume=False)
    assert fake.offsets == [0]
    assert (tmp_path / "out").read_bytes() == data


async def test_interrupted_download_keeps_the_part_file_and_resumes(
    fake: FakeModels, data: bytes, tmp_path: Path
) -> None:
    """A dropped download leaves .part with what arrived; the next call continues from there."""
    fake.store(data)
    fake.drop_after_chunks = 2
    async with ChannelFor([fake]) as channel:
        client = AsyncClient.from_channel(channel, token="tok", retries=0)
        with pytest.raises(Unavailable):
            await client.download("m1", 1, tmp_path / "out")
        assert (tmp_path / "out.part").read_bytes() == data[: 2 * CHUNK_SIZE]
        assert not (tmp_path / "out").exists()
        fake.drop_after_chunks = None
        downloaded = await client.download("m1", 1, tmp_path / "out")
    assert fake.offsets == [0, 2 * CHUNK_SIZE]
    assert downloaded.resumed_from == 2 * CHUNK_SIZE
    assert (tmp_path / "out").read_bytes() == data


async def test_broken_download_stream_is_resumed_within_the_call(
    client: AsyncClient, fake: FakeModels, data: bytes, tmp_path: Path
) -> None:
    """A stream that breaks with UNAVAILABLE is asked for again from the bytes already kept."""
    fake.store(data)
    fake.drop_after_chunks = 2
    progress = Progress()
    downloaded = await client.download("m1", 1, tmp_path / "out", progress=progress)
    assert fake.offsets == [0, 2 * CHUNK_SIZE]
    assert downloaded.path.read_bytes() == data
    assert downloaded.resumed_from == 0  # nothing was kept from an earlier call
    assert progress.calls[0] == (0, SIZE)
    assert (2 * CHUNK_SIZE, SIZE) in progress.calls


class MovingAlias(FakeModels):
    """Moves alias "production" to version 2 as soon as a second download request comes."""

    def check_download(self, request: v1.DownloadModelVersionRequest) -> None:
        if self.offsets:
            self.aliases["production"] = 2


async def test_download_by_alias_resumes_the_version_it_started_with(
    data: bytes, tmp_path: Path
) -> None:
    """A download by alias asks for the alias once; a resumed stream asks for the version it
    got by number, so an alias moved meanwhile never mixes two versions' bytes."""
    fake = MovingAlias()
    fake.store(data)
    fake.store(b"the next version")
    fake.aliases["production"] = 1
    fake.drop_after_chunks = 2
    async with ChannelFor([fake]) as channel:
        client = AsyncClient.from_channel(channel, token="tok", retry_backoff=0)
        downloaded = await client.download("m1", "production", tmp_path / "out")
    assert fake.named == ["production", 1]
    assert downloaded.version.version == 1
    assert downloaded.path.read_bytes() == data


async def test_download_by_alias_into_a_folder_names_the_file_after_the_version(
    client: AsyncClient, fake: FakeModels, data: bytes, tmp_path: Path
) -> None:
    """Into a folder, an alias is resolved first and the file of its version is saved."""
    fake.store(b"old", file_name="old.onnx")
    fake.store(data, file_name="new.onnx")
    fake.aliases["production"] = 2
    downloaded = await client.download("m1", "production", tmp_path)
    assert downloaded.path == tmp_path / "new.onnx"
    assert downloaded.path.read_bytes() == data
    assert fake.named == [2]
    with pytest.raises(NotFound):
        await client.download("m1", "staging", tmp_path / "other")


@pytest.mark.parametrize(
    ("drop_after_chunks", "retries", "offsets", "completes"),
    [
        (0, 2, [0, 0, 0], False),  # no byte: retries in a row run out
        (1, 1, [0, CHUNK_SIZE, 2 * CHUNK_SIZE, 3 * CHUNK_SIZE], True),  # each stream brings one
    ],
)
async def test_download_retries_count_only_failures_in_a_row(
    fake: FakeModels,
    data: bytes,
    tmp_path: Path,
    drop_after_chunks: int,
    retries: int,
    offsets: list[int],
    completes: bool,
) -> None:
    """Streams that break before any byte use up the retries; one that brought bytes before
    breaking starts a new row of them."""
    fake.store(data)
    fake.drop_after_chunks = drop_after_chunks
    async with ChannelFor([fake]) as channel:
        client = AsyncClient.from_channel(channel, token="tok", retries=retries, retry_backoff=0)
        if completes:
            downloaded = await client.download("m1", 1, tmp_path / "out")
            assert downloaded.path.read_bytes() == data
        else:
            with pytest.raises(Unavailable):
                await client.download("m1", 1, tmp_path / "out")
            assert list(tmp_path.iterdir()) == []
    assert fake.offsets == offsets


async def test_part_file_of_another_version_is_dropped_and_downloaded_again(
    client: AsyncClient, fake: FakeModels, data: bytes, tmp_path: Path
) -> None:
    """A .part file that fails verification after resuming is dropped; the download restarts."""
    other = fake.store(random.Random(8).randbytes(5000))
    version = fake.store(data)
    (tmp_path / "out.part").write_bytes(fake.files[other.version][:1000])
    progress = Progress()
    downloaded = await client.download("m1", version.version, tmp_path / "out", progress=progress)
    assert (downloaded.version, downloaded.resumed_from) == (version, 0)
    assert progress.calls[0] == (1000, SIZE)  # it looked like resuming, until verification
    assert progress.calls[-1] == (SIZE, SIZE)
    assert fake.offsets == [1000, 0]
    assert (tmp_path / "out").read_bytes() == data
    assert not (tmp_path / "out.part").exists()


async def test_damaged_download_from_zero_raises_data_loss_after_one_restart(
    client: AsyncClient, fake: FakeModels, data: bytes, tmp_path: Path
) -> None:
    """Only a download from offset 0 that fails verification raises DataLoss; .part is deleted."""
    fake.store(data)
    fake.damage = True
    (tmp_path / "out.part").write_bytes(data[:1000])
    with pytest.raises(DataLoss, match="damaged") as caught:
        await client.download("m1", 1, tmp_path / "out")
    assert caught.value.reason == "DIGEST_MISMATCH"
    assert fake.offsets == [1000, 0]
    assert not (tmp_path / "out").exists()
    assert not (tmp_path / "out.part").exists()


async def test_damaged_bytes_never_replace_the_destination(
    client: AsyncClient, fake: FakeModels, data: bytes, tmp_path: Path
) -> None:
    """Bytes that do not match the version's SHA-256 raise DataLoss; the old file stays."""
    fake.store(data)
    fake.damage = True
    (tmp_path / "out").write_bytes(b"previous version")
    with pytest.raises(DataLoss):
        await client.download("m1", 1, tmp_path / "out")
    assert (tmp_path / "out").read_bytes() == b"previous version"
    assert not (tmp_path / "out.part").exists()


async def test_part_file_longer_than_the_version_restarts_from_zero(
    client: AsyncClient, fake: FakeModels, data: bytes, tmp_path: Path
) -> None:
    """When the server answers OUT_OF_RANGE for the .part size, the download restarts at 0."""
    fake.store(data)
    (tmp_path / "out.part").write_bytes(data + b"tail")
    await client.download("m1", 1, tmp_path / "out")
    assert fake.offsets == [SIZE + 4, 0]
    assert (tmp_path / "out").read_bytes() == data


@pytest.mark.parametrize(
    ("file_name", "saved_as"),
    [
        ("model.onnx", "model.onnx"),
        ("../../evil.bin", "evil.bin"),
        ("..", "m1-v1"),
        (".bashrc", "m1-v1"),
        ("C:\\Users\\weights:v2.bin", "weightsv2.bin"),
    ],
)
async def test_directory_destination_saves_under_the_base_file_name(
    client: AsyncClient,
    fake: FakeModels,
    data: bytes,
    tmp_path: Path,
    file_name: str,
    saved_as: str,
) -> None:
    """A folder destination gets the version's file name, reduced to a name inside that folder."""
    fake.store(data, file_name=file_name)
    folder = tmp_path / "a" / "b"
    folder.mkdir(parents=True)
    downloaded = await client.download("m1", 1, folder)
    assert downloaded.path == folder / saved_as
    assert [path.name for path in folder.iterdir()] == [saved_as]
    assert downloaded.path.read_bytes() == data


async def test_long_names_are_shortened_so_their_part_file_fits(
    client: AsyncClient, fake: FakeModels, data: bytes, tmp_path: Path
) -> None:
    """A server name is cut to leave room for ".part" in 255 bytes, keeping its extension."""
    fake.store(data, file_name="é" * 200 + ".onnx")  # 405 bytes
    await client.download("m1", 1, tmp_path)
    (saved,) = tmp_path.iterdir()
    assert saved.name.startswith("é")
    assert saved.name.endswith(".onnx")
    assert len(os.fsencode(saved.name + ".part")) <= 255
    longest = tmp_path / ("w" * 255)  # a path given: its .part file is the one shortened
    await client.download("m1", 1, longest)
    assert longest.read_bytes() == data


async def test_server_named_download_keeps_an_existing_file_unless_overwrite(
    client: AsyncClient, fake: FakeModels, data: bytes, tmp_path: Path
) -> None:
    """A file named by the server is only replaced with overwrite=True; a path given always is."""
    fake.store(data, file_name="model.onnx")
    mine = tmp_path / "model.onnx"
    mine.write_bytes(b"mine")
    with pytest.raises(FileExistsError) as caught:
        await client.download("m1", 1, tmp_path)
    assert caught.value.filename == str(mine)
    assert mine.read_bytes() == b"mine"
    assert fake.offsets == []  # refused before any byte was sent
    await client.download("m1", 1, tmp_path, overwrite=True)
    assert mine.read_bytes() == data
    mine.write_bytes(b"mine")
    await client.download("m1", 1, mine)
    assert mine.read_bytes() == data


async def test_second_download_to_the_same_destination_fails_fast(
    client: AsyncClient, fake: FakeModels, data: bytes, tmp_path: Path
) -> None:
    """While a download runs, another to the same file raises FailedPrecondition at once."""
    fake.store(data)
    fake.hold = asyncio.Event()
    destination = tmp_path / "out"
    first = asyncio.create_task(client.download("m1", 1, destination))
    await _held(fake)
    message = f"another download to {re.escape(str(destination))} is in progress"
    with pytest.raises(FailedPrecondition, match=message):
        async with asyncio.timeout(2):
            await client.download("m1", 1, destination)
    fake.hold.set()
    await first
    assert destination.read_bytes() == data
    assert fake.offsets == [0]  # the second download never reached the server


async def test_file_created_during_a_server_named_download_is_kept(
    client: AsyncClient, fake: FakeModels, data: bytes, tmp_path: Path
) -> None:
    """The existing-file check is repeated before the rename; the verified .part file stays."""
    fake.store(data, file_name="model.onnx")
    fake.hold = asyncio.Event()
    download = asyncio.create_task(client.download("m1", 1, tmp_path))
    await _held(fake)
    (tmp_path / "model.onnx").write_bytes(b"made meanwhile")
    fake.hold.set()
    with pytest.raises(FileExistsError):
        await download
    assert (tmp_path / "model.onnx").read_bytes() == b"made meanwhile"
    assert (tmp_path / "model.onnx.part").read_bytes() == data


async def test_part_file_renamed_before_it_was_locked_is_opened_again(
    client: AsyncClient,
    fake: FakeModels,
    data: bytes,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    opened: list[BinaryIO],
) -> None:
    """A .part file renamed between its open and its lock (a download ended) is not written."""
    real_lock = _files._lock

    def racing_lock(file: BinaryIO, destination: str) -> None:
        if len(opened) == 1:
            os.replace(file.name, destination)  # the download holding the lock commits
        real_lock(file, destination)

    monkeypatch.setattr(_files, "_lock", racing_lock)
    fake.store(data)
    await client.download("m1", 1, tmp_path / "out")
    assert [file.name for file in opened] == [str(tmp_path / "out.part")] * 2
    assert (tmp_path / "out").read_bytes() == data


async def test_part_file_is_closed_when_hashing_it_fails(
    client: AsyncClient,
    fake: FakeModels,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    opened: list[BinaryIO],
) -> None:
    """An error while hashing the kept .part file closes it (and its lock) before propagating."""

    def failing_hash(file: BinaryIO, digest: object) -> int:
        raise OSError(errno.EIO, os.strerror(errno.EIO))

    monkeypatch.setattr(_files, "_hash_rest", failing_hash)
    (tmp_path / "out.part").write_bytes(b"kept by an earlier attempt")
    with pytest.raises(OSError, match="Input/output error"):
        await client.download("m1", 1, tmp_path / "out")
    assert [file.closed for file in opened] == [True]
    assert fake.offsets == []


def fill_disk_at(monkeypatch: pytest.MonkeyPatch, failing_chunk: int) -> list[int]:
    """Make the write of the download's chunk number ``failing_chunk`` fail as a full disk
    does; the sizes of the chunks written before it."""
    real_append = _files.PartialDownload._append
    appended: list[int] = []

    def append_until_full(part: _files.PartialDownload, chunk: bytes) -> None:
        if len(appended) == failing_chunk:
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        appended.append(len(chunk))
        real_append(part, chunk)

    monkeypatch.setattr(_files.PartialDownload, "_append", append_until_full)
    return appended


@pytest.mark.parametrize("failing_chunk", [0, 1, 3])
async def test_an_error_writing_a_chunk_ends_the_download_with_that_error(
    client: AsyncClient,
    fake: FakeModels,
    data: bytes,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    opened: list[BinaryIO],
    failing_chunk: int,
) -> None:
    """Chunks are written in a worker thread while the next one arrives; an error writing
    any of them (a full disk), the last included, ends the download with that error, not a
    retry: the .part file keeps what was written before (none if nothing was) and is closed,
    nothing reaches the destination."""
    fake.store(data)
    appended = fill_disk_at(monkeypatch, failing_chunk)
    with pytest.raises(OSError, match="No space left on device"):
        await client.download("m1", 1, tmp_path / "out")
    assert not (tmp_path / "out").exists()
    part = tmp_path / "out.part"
    assert (part.stat().st_size if part.exists() else None) == (sum(appended) or None)
    assert fake.offsets == [0]
    assert [file.closed for file in opened] == [True]


@needs_fdatasync
async def test_a_download_is_synced_while_it_grows(
    client: AsyncClient,
    fake: FakeModels,
    data: bytes,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The .part file is flushed to disk in steps as chunks arrive, so that the fsync before
    it replaces the destination has only the last ones left."""
    fake.store(data)
    sync_every(monkeypatch, CHUNK_SIZE)
    calls = record_flushes(monkeypatch)
    await client.download("m1", 1, tmp_path / "out")
    assert (tmp_path / "out").read_bytes() == data
    syncs = [size for call, size in calls if call == "fdatasync"]
    # A sync runs beside the write of the next chunk, so it may see that chunk written too.
    assert all(CHUNK_SIZE <= size <= SIZE for size in syncs)
    assert min(syncs, default=SIZE) < SIZE, "no sync before the end"
    assert calls[-1] == ("fsync", SIZE)


async def download_fails_leaving_no_part(
    client: AsyncClient, tmp_path: Path, opened: list[BinaryIO]
) -> None:
    """Downloads to ``out``: the download must end with EIO, its .part file closed and
    deleted, since bytes whose flush failed may be gone from the disk."""
    with pytest.raises(OSError, match="Input/output error"):
        await client.download("m1", 1, tmp_path / "out")
    assert not (tmp_path / "out.part").exists()
    assert [file.closed for file in opened] == [True]


@needs_fdatasync
async def test_a_sync_that_fails_ends_the_download_with_its_error(
    client: AsyncClient,
    fake: FakeModels,
    data: bytes,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    opened: list[BinaryIO],
) -> None:
    """A writeback that fails in a step's sync (the kernel reports it once, so the final
    fsync might not) ends the download with that error: nothing reaches the destination, and
    the .part file is closed and deleted, as its bytes may be gone from the disk."""
    fake.store(data)
    sync_every(monkeypatch, CHUNK_SIZE)

    def failing_sync(descriptor: int) -> None:
        raise OSError(errno.EIO, os.strerror(errno.EIO))

    record_flushes(monkeypatch, failing_sync)
    await download_fails_leaving_no_part(client, tmp_path, opened)
    assert not (tmp_path / "out").exists()
    assert fake.offsets == [0]


@needs_fdatasync
async def test_a_sync_that_fails_after_the_last_chunk_leaves_nothing_to_resume_from(
    client: AsyncClient,
    fake: FakeModels,
    data: bytes,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    opened: list[BinaryIO],
) -> None:
    """A step's sync that fails only once every chunk is written: the commit, which waits for
    it, ends the download with its error and the .part file is deleted."""
    fake.store(data)
    sync_every(monkeypatch, CHUNK_SIZE)
    all_written = threading.Event()
    real_append = _files.PartialDownload._append
    appended: list[int] = []

    def append(part: _files.PartialDownload, chunk: bytes) -> None:
        real_append(part, chunk)
        appended.append(len(chunk))
        if sum(appended) == SIZE:
            all_written.set()

    def sync_failing_at_the_end(descriptor: int) -> None:
        assert all_written.wait(10), "the download did not write every chunk"
        raise OSError(errno.EIO, os.strerror(errno.EIO))

    monkeypatch.setattr(_files.PartialDownload, "_append", append)
    record_flushes(monkeypatch, sync_failing_at_the_end)
    await download_fails_leaving_no_part(client, tmp_path, opened)
    assert all_written.is_set()
    assert not (tmp_path / "out").exists()


async def test_a_final_fsync_that_fails_leaves_nothing_to_resume_from(
    client: AsyncClient,
    fake: FakeModels,
    data: bytes,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    opened: list[BinaryIO],
) -> None:
    """The fsync before the rename fails: the download ends with its error, the destination
    is unchanged and the .part file is deleted (a later fsync would succeed over bytes the
    kernel dropped, so a resumed download could rename a damaged file into place)."""
    fake.store(data)
    (tmp_path / "out").write_bytes(b"the version downloaded before")
    real_fsync = os.fsync

    def failing_fsync(descriptor: int) -> None:
        if stat.S_ISREG(os.fstat(descriptor).st_mode):
            raise OSError(errno.EIO, os.strerror(errno.EIO))
        real_fsync(descriptor)

    monkeypatch.setattr(os, "fsync", failing_fsync)
    await download_fails_leaving_no_part(client, tmp_path, opened)
    assert (tmp_path / "out").read_bytes() == b"the version downloaded before"


async def test_a_download_cancelled_while_it_commits_closes_the_file_after_the_commit(
    client: AsyncClient,
    fake: FakeModels,
    data: bytes,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    opened: list[BinaryIO],
) -> None:
    """A caller that gives up while the verified file is fsynced and renamed: the download
    ends once that work is done with the .part file, which is then closed (with its lock),
    not closed under it; the file then stands at the destination, whole."""
    fake.store(data)
    release = threading.Event()
    fsyncing = threading.Event()
    real_fsync = os.fsync

    def slow_fsync(descriptor: int) -> None:
        if stat.S_ISREG(os.fstat(descriptor).st_mode):
            fsyncing.set()
            release.wait(10)
        real_fsync(descriptor)

    closed = threading.Event()
    real_close = _files.PartialDownload._close

    def recording_close(part: _files.PartialDownload) -> None:
        real_close(part)
        closed.set()

    monkeypatch.setattr(os, "fsync", slow_fsync)
    monkeypatch.setattr(_files.PartialDownload, "_close", recording_close)
    downloading = asyncio.ensure_future(client.download("m1", 1, tmp_path / "out"))
    assert await asyncio.to_thread(fsyncing.wait, 10)
    downloading.cancel()
    # Bounded, not a wait for something: the download cannot end while the fsync is held.
    await asyncio.wait({downloading}, timeout=0.5)
    assert not downloading.done()
    assert [file.closed for file in opened] == [False]
    release.set()
    with pytest.raises(asyncio.CancelledError):
        await downloading
    assert closed.is_set()
    assert [file.closed for file in opened] == [True]
    assert (tmp_path / "out").read_bytes() == data


async def test_an_error_writing_a_chunk_wins_over_the_stream_breaking(
    fake: FakeModels, data: bytes, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A chunk whose write fails while the stream breaks right after it: the full disk is
    what the caller hears, not a broken stream to retry onto the same disk."""
    fake.store(data)
    fake.drop_after_chunks = 2
    fill_disk_at(monkeypatch, 1)
    async with ChannelFor([fake]) as channel:
        client = AsyncClient.from_channel(channel, token="tok", retries=0)
        with pytest.raises(OSError, match="No space left on device"):
            await client.download("m1", 1, tmp_path / "out")
    assert fake.offsets == [0]


async def test_download_syncs_the_folder_after_the_rename(
    client: AsyncClient,
    fake: FakeModels,
    data: bytes,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The rename onto the destination is made durable by syncing its folder afterwards."""
    synced: list[tuple[str, bool]] = []

    def record(folder: str | os.PathLike[str]) -> None:
        synced.append((os.fspath(folder), (tmp_path / "out").exists()))

    monkeypatch.setattr(_files, "fsync_dir", record)
    fake.store(data)
    await client.download("m1", 1, tmp_path / "out")
    assert synced == [(str(tmp_path), True)]


@pytest.mark.parametrize(
    ("model_id", "error_class", "reason"),
    [
        ("denied", PermissionDenied, "FOLDER_ACCESS_DENIED"),
        ("m1", NotFound, "VERSION_NOT_FOUND"),
    ],
)
async def test_download_errors_are_typed_and_leave_no_files(
    client: AsyncClient,
    tmp_path: Path,
    model_id: str,
    error_class: type[ModelCatalogError],
    reason: str,
) -> None:
    """A refused download raises the typed error with its reason and leaves no empty .part."""
    with pytest.raises(error_class) as caught:
        await client.download(model_id, 1, tmp_path / "out")
    assert caught.value.reason == reason
    assert list(tmp_path.iterdir()) == []


async def test_transfers_have_no_deadline_but_other_rpcs_do(
    fake: FakeModels, source: Path, tmp_path: Path
) -> None:
    """Uploads and downloads are sent with the token and no deadline; unary RPCs keep theirs."""
    sent: dict[str, SendRequest] = {}

    async def record(event: SendRequest) -> None:
        sent[event.method_name.rpartition("/")[2]] = event

    async with ChannelFor([fake]) as channel:
        listen(channel, SendRequest, record)
        client = AsyncClient.from_channel(channel, token="tok")
        version = await client.upload("m1", source)
        await client.download("m1", version.version, tmp_path)
    assert set(sent) == {"UploadModelVersion", "GetModelVersion", "DownloadModelVersion"}
    assert sent["UploadModelVersion"].deadline is None
    assert sent["DownloadModelVersion"].deadline is None
    assert sent["GetModelVersion"].deadline is not None
    assert all(event.metadata["authorization"] == "Bearer tok" for event in sent.values())


async def test_a_broken_upload_resumes_from_the_bytes_the_server_holds(
    client: AsyncClient, fake: FakeModels, source: Path, data: bytes
) -> None:
    """An upload from a path broken off after two chunks asks what the server holds and sends
    only the rest, with the same header at that offset and the whole file's SHA-256 in the
    trailer; progress starts again at the bytes held and rises to the total."""
    fake.break_upload_after = 2 * CHUNK_SIZE
    progress = Progress()
    version = await client.upload("m1", source, progress=progress)
    assert version.sha256 == hashlib.sha256(data).hexdigest()
    assert fake.files[version.version] == data
    first, resumed = fake.uploads
    assert resumed[0].header.offset == 2 * CHUNK_SIZE
    assert resumed[0].header.request_id == first[0].header.request_id
    sent_again = b"".join(m.chunk for m in resumed[1:-1])
    assert sent_again == data[2 * CHUNK_SIZE :]
    assert resumed[-1].trailer.sha256 == version.sha256
    done = [call[0] for call in progress.calls]
    restart = next(i for i in range(1, len(done)) if done[i] <= done[i - 1])
    _assert_progress(Progress.of(progress.calls[restart:]), 2 * CHUNK_SIZE, SIZE)


async def test_a_file_changed_before_the_resume_is_refused(
    client: AsyncClient, fake: FakeModels, source: Path
) -> None:
    """A file that changes between a broken upload and its resume raises FailedPrecondition
    naming it, and no version is stored."""
    os.utime(source, ns=(0, 0))
    fake.break_upload_after = CHUNK_SIZE

    def change_when_broken(done: int, total: int | None) -> None:
        if done == CHUNK_SIZE:
            with source.open("r+b") as file:
                file.truncate(CHUNK_SIZE // 2)

    with pytest.raises(FailedPrecondition, match="changed while it was being uploaded"):
        await client.upload("m1", source, progress=change_when_broken)
    assert fake.versions == []


async def test_an_upload_from_a_file_object_is_not_resumed(
    client: AsyncClient, fake: FakeModels, data: bytes
) -> None:
    """A broken upload from a file object raises Unavailable: its bytes cannot be read again."""
    fake.break_upload_after = CHUNK_SIZE
    with pytest.raises(Unavailable):
        await client.upload("m1", io.BytesIO(data), file_name="m.bin")
    assert len(fake.uploads) == 1


async def test_an_upload_given_the_request_id_of_a_broken_one_resumes_it(
    client: AsyncClient, fake: FakeModels, source: Path, data: bytes
) -> None:
    """``upload`` called again with the request_id of an upload that broke earlier (in another
    call, or another process) sends only the bytes the server does not hold; progress starts
    there."""
    request_id = "0b7e5a9c-1111-4c4c-8d8d-000000000002"
    fake.held[request_id] = data[: 2 * CHUNK_SIZE]
    progress = Progress()
    version = await client.upload("m1", source, request_id=request_id, progress=progress)
    assert fake.files[version.version] == data
    (upload,) = fake.uploads
    assert upload[0].header.offset == 2 * CHUNK_SIZE
    _assert_progress(progress, 2 * CHUNK_SIZE, SIZE)
