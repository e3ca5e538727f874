"""UploadModelVersion, DownloadModelVersion, GetModelVersion and ListModelVersions."""

from __future__ import annotations

import asyncio
import hashlib
import os
import uuid
from collections.abc import AsyncIterator, Iterable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import betterproto
import pytest
from grpclib.const import Status
from server_testing import (
    EDITOR,
    VIEWER,
    Api,
    Caller,
    channel_for,
    expect_error,
    poll_until,
)
from upload_streams import stalled_upload

from modelcatalog import v1
from modelcatalog_server.app import build_application
from modelcatalog_server.config import Settings
from modelcatalog_server.domain.errors import (
    PermissionDenied,
    ResourceExhausted,
)
from modelcatalog_server.domain.paging import PageTokens
from modelcatalog_server.domain.uploads import PendingUploads
from modelcatalog_server.domain.versions import UploadHeader, Versions
from modelcatalog_server.storage.blobs import WRITE_BATCH_BYTES, LocalBlobStore
from modelcatalog_server.storage.faults import StorageUnavailable
from modelcatalog_server.storage.metadata import MetadataStore, Transaction, new_id, now_us
from modelcatalog_server.storage.records import ModelRecord, Role, UserRecord

MiB = 1 << 20


def request_stream(
    header: v1.UploadModelVersionHeader | None,
    chunks: Iterable[bytes],
    pulled: list[int] | None = None,
    *,
    trailer_sha256: str | None = None,
) -> AsyncIterator[v1.UploadModelVersionRequest]:
    """The messages of an upload, ending with a trailer when ``trailer_sha256`` is given;
    ``pulled`` counts the chunks the server consumed."""

    async def messages() -> AsyncIterator[v1.UploadModelVersionRequest]:
        if header is not None:
            yield v1.UploadModelVersionRequest(header=header)
        for chunk in chunks:
            if pulled is not None:
                pulled.append(len(chunk))
            yield v1.UploadModelVersionRequest(chunk=chunk)
        if trailer_sha256 is not None:
            yield v1.UploadModelVersionRequest(
                trailer=v1.UploadModelVersionTrailer(sha256=trailer_sha256)
            )

    return messages()


def split(data: bytes, size: int = MiB) -> list[bytes]:
    return [data[i : i + size] for i in range(0, len(data), size)]


async def upload(
    caller: Caller, model_id: str, data: bytes, *, declare: bool = True, **fields: object
) -> v1.ModelVersion:
    header = v1.UploadModelVersionHeader(model_id=model_id, file_name="model.onnx")
    if declare:
        header.size_bytes = len(data)
        header.sha256 = hashlib.sha256(data).hexdigest()
    for name, value in fields.items():
        setattr(header, name, value)
    response = await caller.models.upload_model_version(request_stream(header, split(data)))
    return response.version


async def download(
    caller: Caller, model_id: str, version: int, offset: int = 0
) -> tuple[v1.ModelVersion, bytes]:
    messages = [
        message
        async for message in caller.models.download_model_version(
            v1.DownloadModelVersionRequest(model_id, version, offset)
        )
    ]
    assert messages[0].version.version == version
    assert all(len(m.chunk) <= MiB for m in messages[1:])
    return messages[0].version, b"".join(m.chunk for m in messages[1:])


async def model_of(caller: Caller) -> v1.Model:
    folder = (await caller.folders.create_folder(v1.CreateFolderRequest("vision"))).folder
    return (await caller.models.create_model(v1.CreateModelRequest(folder.id, "resnet"))).model


def blob_files(settings: Settings) -> list[Path]:
    """Every file in the blob store, committed or temporary."""
    return [p for p in (settings.data_dir / "blobs").rglob("*") if p.is_file()]


def storing(settings: Settings) -> bool:
    """Whether an upload is being written (it passed its role check): a temporary file exists."""
    return any((settings.data_dir / "blobs" / "tmp").iterdir())


async def test_round_trip_is_byte_identical(api: Api) -> None:
    """What goes up comes back unchanged, with the server's size and SHA-256."""
    alice = await api.caller("alice")
    model = await model_of(alice)
    data = os.urandom(3 * MiB + 12345)
    version = await upload(
        alice, model.id, data, description="first", labels={"stage": "dev"}, content_type=""
    )
    assert (version.version, version.size_bytes) == (1, len(data))
    assert version.sha256 == hashlib.sha256(data).hexdigest()
    assert (version.file_name, version.content_type) == ("model.onnx", "application/octet-stream")
    assert (version.description, version.labels, version.creator_username) == (
        "first",
        {"stage": "dev"},
        "alice",
    )
    metadata, received = await download(alice, model.id, 1)
    assert received == data
    assert metadata == version
    got = (await alice.models.get_model_version(v1.GetModelVersionRequest(model.id, 1))).version
    assert got == version
    assert (await alice.models.get_model(v1.GetModelRequest(model.id))).model.latest_version == 1


async def test_upload_without_declared_size_or_digest(api: Api) -> None:
    """Size and SHA-256 are optional in the header; the server computes them."""
    alice = await api.caller("alice")
    model = await model_of(alice)
    data = os.urandom(MiB + 1)
    version = await upload(alice, model.id, data, declare=False)
    assert version.sha256 == hashlib.sha256(data).hexdigest()
    assert version.size_bytes == len(data)


async def test_empty_file_is_a_valid_version(api: Api) -> None:
    """A zero-byte file uploads and downloads as zero bytes."""
    alice = await api.caller("alice")
    model = await model_of(alice)
    version = await upload(alice, model.id, b"")
    assert version.sha256 == hashlib.sha256(b"").hexdigest()
    assert (await download(alice, model.id, 1))[1] == b""


async def test_download_resumes_from_an_offset(api: Api) -> None:
    """An offset returns the rest of the file; the size returns none; past the end fails."""
    alice = await api.caller("alice")
    model = await model_of(alice)
    data = os.urandom(2 * MiB + 7)
    await upload(alice, model.id, data)
    assert (await download(alice, model.id, 1, offset=MiB + 3))[1] == data[MiB + 3 :]
    assert (await download(alice, model.id, 1, offset=len(data)))[1] == b""
    await expect_error(
        download(alice, model.id, 1, offset=len(data) + 1),
        Status.OUT_OF_RANGE,
        "OFFSET_OUT_OF_RANGE",
    )
    await expect_error(
        download(alice, model.id, 1, offset=-1), Status.INVALID_ARGUMENT, "INVALID_FIELD", "offset"
    )


def _trailer(sha256: str = hashlib.sha256(b"data").hexdigest()) -> v1.UploadModelVersionRequest:
    return v1.UploadModelVersionRequest(trailer=v1.UploadModelVersionTrailer(sha256=sha256))


@pytest.mark.parametrize(
    ("messages", "field"),
    [
        ([], "header"),
        ([v1.UploadModelVersionRequest(chunk=b"data first")], "header"),
        (
            [
                v1.UploadModelVersionRequest(header=v1.UploadModelVersionHeader("m", "f")),
                v1.UploadModelVersionRequest(header=v1.UploadModelVersionHeader("m", "f")),
            ],
            "header",
        ),
        (
            [
                v1.UploadModelVersionRequest(header=v1.UploadModelVersionHeader("m", "f")),
                v1.UploadModelVersionRequest(),
            ],
            "chunk",
        ),
        (
            [_trailer()],
            "header",
        ),
        (
            [
                _trailer(),
                v1.UploadModelVersionRequest(header=v1.UploadModelVersionHeader("m", "f")),
            ],
            "header",
        ),
        (
            [
                v1.UploadModelVersionRequest(header=v1.UploadModelVersionHeader("m", "f")),
                _trailer(),
                v1.UploadModelVersionRequest(chunk=b"data"),
            ],
            "trailer",
        ),
        (
            [
                v1.UploadModelVersionRequest(header=v1.UploadModelVersionHeader("m", "f")),
                v1.UploadModelVersionRequest(chunk=b"data"),
                _trailer(),
                _trailer(),
            ],
            "trailer",
        ),
        (
            [
                v1.UploadModelVersionRequest(header=v1.UploadModelVersionHeader("m", "f")),
                v1.UploadModelVersionRequest(chunk=b"data"),
                _trailer(),
                v1.UploadModelVersionRequest(header=v1.UploadModelVersionHeader("m", "f")),
            ],
            "trailer",
        ),
    ],
    ids=[
        "empty stream",
        "no header",
        "two headers",
        "neither header nor chunk",
        "only a trailer",
        "trailer before header",
        "chunk after trailer",
        "two trailers",
        "header after trailer",
    ],
)
async def test_stream_must_be_one_header_then_chunks(
    api: Api, settings: Settings, messages: list[v1.UploadModelVersionRequest], field: str
) -> None:
    """A missing, late or repeated header, a message without content, or a trailer that is not
    the one last message: UPLOAD_OUT_OF_ORDER naming the message at fault, nothing stored."""
    alice = await api.caller("alice")
    model = await model_of(alice)
    for message in messages:
        if betterproto.which_one_of(message, "content")[0] == "header":
            message.header.model_id = model.id

    async def stream() -> AsyncIterator[v1.UploadModelVersionRequest]:
        for message in messages:
            yield message

    await expect_error(
        alice.models.upload_model_version(stream()),
        Status.INVALID_ARGUMENT,
        "UPLOAD_OUT_OF_ORDER",
        field,
    )
    assert blob_files(settings) == []
    listed = await alice.models.list_model_versions(v1.ListModelVersionsRequest(model.id))
    assert listed.versions == []


@pytest.mark.parametrize(("declared_delta", "sent"), [(1, "fewer"), (-1, "more")])
async def test_size_mismatch_stores_nothing(
    api: Api, settings: Settings, declared_delta: int, sent: str
) -> None:
    """Fewer or more bytes than declared: INVALID_ARGUMENT (SIZE_MISMATCH), no blob, no version."""
    alice = await api.caller("alice")
    model = await model_of(alice)
    data = os.urandom(MiB)
    header = v1.UploadModelVersionHeader(model.id, "f.bin", size_bytes=len(data) + declared_delta)
    await expect_error(
        alice.models.upload_model_version(request_stream(header, split(data, 4096))),
        Status.INVALID_ARGUMENT,
        "SIZE_MISMATCH",
        "header.size_bytes",
    )
    assert blob_files(settings) == []


async def test_digest_mismatch_is_data_loss_and_stores_nothing(
    api: Api, settings: Settings
) -> None:
    """Bytes whose SHA-256 differs from the declared one: DATA_LOSS, nothing kept."""
    alice = await api.caller("alice")
    model = await model_of(alice)
    header = v1.UploadModelVersionHeader(model.id, "f.bin", sha256="0" * 64)
    await expect_error(
        alice.models.upload_model_version(request_stream(header, [b"some bytes"])),
        Status.DATA_LOSS,
        "DIGEST_MISMATCH",
    )
    assert blob_files(settings) == []
    model = (await alice.models.get_model(v1.GetModelRequest(model.id))).model
    assert model.latest_version == 0


async def test_a_digest_in_the_trailer_is_verified_and_kept(api: Api) -> None:
    """A stream of unknown size ending in a trailer stores the version with that digest."""
    alice = await api.caller("alice")
    model = await model_of(alice)
    data = os.urandom(2 * MiB + 5)
    header = v1.UploadModelVersionHeader(model.id, "f.bin")
    sha256 = hashlib.sha256(data).hexdigest()
    response = await alice.models.upload_model_version(
        request_stream(header, split(data), trailer_sha256=sha256.upper())
    )
    assert (response.version.size_bytes, response.version.sha256) == (len(data), sha256)
    assert (await download(alice, model.id, 1))[1] == data


async def test_an_empty_file_is_a_header_and_a_trailer(api: Api) -> None:
    """Zero chunks between header and trailer make a valid empty version."""
    alice = await api.caller("alice")
    model = await model_of(alice)
    header = v1.UploadModelVersionHeader(model.id, "empty", size_bytes=0)
    empty = hashlib.sha256(b"").hexdigest()
    response = await alice.models.upload_model_version(
        request_stream(header, [], trailer_sha256=empty)
    )
    assert (response.version.size_bytes, response.version.sha256) == (0, empty)


async def test_a_trailer_digest_mismatch_is_data_loss_and_stores_nothing(
    api: Api, settings: Settings
) -> None:
    """Bytes whose SHA-256 differs from the trailer's: DATA_LOSS, no blob, no version."""
    alice = await api.caller("alice")
    model = await model_of(alice)
    header = v1.UploadModelVersionHeader(model.id, "f.bin", size_bytes=MiB)
    await expect_error(
        alice.models.upload_model_version(
            request_stream(header, [os.urandom(MiB)], trailer_sha256="0" * 64)
        ),
        Status.DATA_LOSS,
        "DIGEST_MISMATCH",
    )
    assert blob_files(settings) == []
    assert (await alice.models.get_model(v1.GetModelRequest(model.id))).model.latest_version == 0


@pytest.mark.parametrize(
    ("header_sha256", "trailer_sha256"),
    [
        (hashlib.sha256(b"data").hexdigest(), hashlib.sha256(b"other").hexdigest()),
        ("", ""),
        ("", "not hex"),
        ("", "ab" * 31),
    ],
    ids=["differs from the header", "empty", "not hex", "too short"],
)
async def test_a_bad_trailer_digest_is_refused_naming_the_field(
    api: Api, settings: Settings, header_sha256: str, trailer_sha256: str
) -> None:
    """A trailer without a well-formed digest, or contradicting the header's, stores nothing."""
    alice = await api.caller("alice")
    model = await model_of(alice)
    header = v1.UploadModelVersionHeader(model.id, "f.bin", sha256=header_sha256)
    await expect_error(
        alice.models.upload_model_version(
            request_stream(header, [b"data"], trailer_sha256=trailer_sha256)
        ),
        Status.INVALID_ARGUMENT,
        "INVALID_FIELD",
        "trailer.sha256",
    )
    assert blob_files(settings) == []


async def test_header_and_trailer_may_both_declare_the_digest(api: Api) -> None:
    """The same digest in header and trailer (in either case) is accepted."""
    alice = await api.caller("alice")
    model = await model_of(alice)
    sha256 = hashlib.sha256(b"data").hexdigest()
    header = v1.UploadModelVersionHeader(model.id, "f.bin", size_bytes=4, sha256=sha256.upper())
    response = await alice.models.upload_model_version(
        request_stream(header, [b"data"], trailer_sha256=sha256)
    )
    assert response.version.sha256 == sha256


@pytest.fixture
async def small_limit_api(settings: Settings) -> AsyncIterator[Api]:
    """A server whose maximum version size is 1 MiB."""
    async with (
        build_application(replace(settings, max_version_size=MiB)) as app,
        channel_for(app) as channel,
    ):
        yield Api(channel)


async def test_declared_size_over_the_limit_is_refused(
    small_limit_api: Api, settings: Settings
) -> None:
    """A header declaring more than the maximum is RESOURCE_EXHAUSTED and nothing is stored."""
    alice = await small_limit_api.caller("alice")
    model = await model_of(alice)
    header = v1.UploadModelVersionHeader(model.id, "big.bin", size_bytes=MiB + 1)
    await expect_error(
        alice.models.upload_model_version(request_stream(header, [b"x" * 1024] * 2048)),
        Status.RESOURCE_EXHAUSTED,
        "VERSION_TOO_LARGE",
    )
    assert blob_files(settings) == []


async def test_undeclared_upload_past_the_limit_is_refused(
    small_limit_api: Api, settings: Settings
) -> None:
    """Without a declared size, going past the maximum is RESOURCE_EXHAUSTED; nothing kept."""
    alice = await small_limit_api.caller("alice")
    model = await model_of(alice)
    header = v1.UploadModelVersionHeader(model.id, "big.bin")
    await expect_error(
        alice.models.upload_model_version(request_stream(header, [b"x" * 1024] * 4096)),
        Status.RESOURCE_EXHAUSTED,
        "VERSION_TOO_LARGE",
    )
    assert blob_files(settings) == []


@dataclass
class Domain:
    """The versions domain over a fresh store holding one user and one model."""

    store: MetadataStore
    blobs_dir: Path
    user_id: str
    model_id: str

    def versions(self, **options: Any) -> Versions:
        """Versions with a 1 MiB limit and ``options`` (upload limits)."""
        blobs = LocalBlobStore(self.blobs_dir)
        return Versions(self.store, blobs, PageTokens(b"k"), max_version_bytes=MiB, **options)


@pytest.fixture
async def domain(tmp_path: Path) -> AsyncIterator[Domain]:
    store = await MetadataStore.open_sqlite(tmp_path / "catalog.sqlite3")
    try:

        def create(tx: Transaction) -> tuple[UserRecord, ModelRecord]:
            user = tx.insert_user("alice", "not a real hash")
            folder = tx.insert_folder(user, "vision", "")
            return user, tx.insert_model(folder, user, "resnet", "")

        user, model = await store.write(create)
        yield Domain(store, tmp_path / "blobs", user.id, model.id)
    finally:
        await store.close()


@pytest.fixture
def versions(domain: Domain) -> tuple[Versions, str, str]:
    """Versions over a fresh store with a 1 MiB limit, as (versions, user id, model id)."""
    return domain.versions(), domain.user_id, domain.model_id


async def counted(chunks: Iterable[bytes], pulled: list[int]) -> AsyncIterator[bytes]:
    for chunk in chunks:
        pulled.append(len(chunk))
        yield chunk


async def test_oversized_declaration_is_refused_before_reading_a_chunk(
    versions: tuple[Versions, str, str],
) -> None:
    """The declared size is checked against the limit before the first chunk is read."""
    domain, user_id, model_id = versions
    pulled: list[int] = []
    header = UploadHeader(model_id, "big.bin", size_bytes=MiB + 1)
    with pytest.raises(ResourceExhausted):
        await domain.upload(user_id, header, counted([b"x"] * 10, pulled))
    assert pulled == []


async def test_refusal_comes_at_the_first_chunk_past_the_limit(
    versions: tuple[Versions, str, str],
) -> None:
    """Without a declared size, reading stops at the chunk that crosses the limit."""
    domain, user_id, model_id = versions
    pulled: list[int] = []
    with pytest.raises(ResourceExhausted):
        await domain.upload(
            user_id, UploadHeader(model_id, "big.bin"), counted([b"x" * 1024] * 4096, pulled)
        )
    assert sum(pulled) == MiB + 1024


async def test_access_is_checked_before_reading_a_chunk(
    versions: tuple[Versions, str, str],
) -> None:
    """A caller without the editor role is refused before any byte is read."""
    domain, _, model_id = versions
    pulled: list[int] = []
    with pytest.raises(PermissionDenied):
        await domain.upload("someone-else", UploadHeader(model_id, "f"), counted([b"x"], pulled))
    assert pulled == []


async def test_a_viewer_is_refused_before_reading_a_chunk(domain: Domain) -> None:
    """A viewer of the folder (a role, but not editor) is refused before any byte is read."""

    def add_viewer(tx: Transaction) -> UserRecord:
        model = tx.model_for(domain.user_id, domain.model_id)
        assert model is not None
        viewer = tx.insert_user("vic", "not a real hash")
        tx.upsert_member(model.folder_id, viewer.id, Role.VIEWER, domain.user_id)
        return viewer

    viewer = await domain.store.write(add_viewer)
    pulled: list[int] = []
    with pytest.raises(PermissionDenied):
        await domain.versions().upload(
            viewer.id, UploadHeader(domain.model_id, "f"), counted([b"x" * MiB] * 8, pulled)
        )
    assert pulled == []
    assert [p for p in domain.blobs_dir.rglob("*") if p.is_file()] == []


async def test_exactly_the_limit_is_accepted(small_limit_api: Api) -> None:
    """A file of exactly the maximum size is stored."""
    alice = await small_limit_api.caller("alice")
    model = await model_of(alice)
    assert (await upload(alice, model.id, os.urandom(MiB))).size_bytes == MiB


async def test_cancelled_upload_leaves_nothing(api: Api, settings: Settings) -> None:
    """A client that cancels mid-stream leaves no version and no temporary file."""
    alice = await api.caller("alice")
    model = await model_of(alice)
    sent_first = asyncio.Event()

    task = asyncio.create_task(
        alice.models.upload_model_version(stalled_upload(model.id, sent_first))
    )
    await sent_first.wait()
    assert await poll_until(lambda: bool(blob_files(settings))), "no upload reached the server"
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert await poll_until(lambda: not blob_files(settings))
    model = (await alice.models.get_model(v1.GetModelRequest(model.id))).model
    assert model.latest_version == 0


async def test_concurrent_uploads_get_consecutive_numbers(api: Api) -> None:
    """20 uploads at once to one model become versions 1 to 20, each with its own bytes."""
    alice = await api.caller("alice")
    model = await model_of(alice)
    files = [os.urandom(64 * 1024 + i) for i in range(20)]
    versions = await asyncio.gather(*(upload(alice, model.id, data) for data in files))
    assert sorted(v.version for v in versions) == list(range(1, 21))
    for version, data in zip(versions, files, strict=True):
        assert (await download(alice, model.id, version.version))[1] == data


async def test_identical_content_is_stored_once(api: Api, settings: Settings) -> None:
    """Two versions with the same bytes share one blob and both download intact."""
    alice = await api.caller("alice")
    model = await model_of(alice)
    data = os.urandom(100_000)
    await upload(alice, model.id, data)
    await upload(alice, model.id, data)
    assert len(blob_files(settings)) == 1
    assert (await download(alice, model.id, 2))[1] == data


async def test_roles_for_versions(api: Api) -> None:
    """Viewers download but cannot upload; strangers can do neither, as if it did not exist."""
    alice, viewer, stranger = (
        await api.caller("alice"),
        await api.caller("vic"),
        await api.caller("eve"),
    )
    model = await model_of(alice)
    await upload(alice, model.id, b"weights")
    await alice.folders.grant_folder_access(
        v1.GrantFolderAccessRequest(model.folder_id, "vic", VIEWER)
    )
    assert (await download(viewer, model.id, 1))[1] == b"weights"
    await expect_error(
        upload(viewer, model.id, b"x"), Status.PERMISSION_DENIED, "FOLDER_ACCESS_DENIED"
    )
    missing = "00000000-0000-4000-8000-000000000000"
    for model_id in (model.id, missing):
        await expect_error(
            download(stranger, model_id, 1), Status.PERMISSION_DENIED, "FOLDER_ACCESS_DENIED"
        )
    denials = [
        await expect_error(
            upload(stranger, model_id, b"x"), Status.PERMISSION_DENIED, "FOLDER_ACCESS_DENIED"
        )
        for model_id in (model.id, missing)
    ]
    assert denials[0].message == denials[1].message
    await alice.folders.grant_folder_access(
        v1.GrantFolderAccessRequest(model.folder_id, "vic", EDITOR)
    )
    assert (await upload(viewer, model.id, b"now allowed")).version == 2


async def test_versions_list_newest_first_in_pages(api: Api) -> None:
    """ListModelVersions pages through all versions, newest first."""
    alice = await api.caller("alice")
    model = await model_of(alice)
    for i in range(5):
        await upload(alice, model.id, f"v{i}".encode())
    numbers: list[int] = []
    token = ""
    while True:
        page = await alice.models.list_model_versions(
            v1.ListModelVersionsRequest(model.id, 2, token)
        )
        numbers += [v.version for v in page.versions]
        token = page.next_page_token
        if not token:
            break
    assert numbers == [5, 4, 3, 2, 1]


async def test_missing_version_and_bad_numbers(api: Api) -> None:
    """An unknown number of a visible model is NOT_FOUND; a number below 1 is INVALID_ARGUMENT."""
    alice = await api.caller("alice")
    model = await model_of(alice)
    await expect_error(
        alice.models.get_model_version(v1.GetModelVersionRequest(model.id, 1)),
        Status.NOT_FOUND,
        "VERSION_NOT_FOUND",
    )
    await expect_error(
        alice.models.get_model_version(v1.GetModelVersionRequest(model.id, 0)),
        Status.INVALID_ARGUMENT,
        "INVALID_FIELD",
        "version",
    )


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("file_name", "../../etc/passwd"),
        ("file_name", "dir\\file"),
        ("file_name", ""),
        ("file_name", ".."),
        ("sha256", "abc"),
        ("content_type", "text/\x00plain"),
        ("labels", {"Bad Key": "v"}),
        ("labels", {"k": "v" * 257}),
        ("labels", {"k": "title \x1b]0;owned\x07"}),
        ("labels", {"k": "rtl \u202e"}),
        ("labels", {"k": "two\nlines"}),
        ("file_name", "exe.\u202egnp"),
        ("file_name", "bell\x07.onnx"),
        ("description", "clipboard \x1b]52;c;Y3VybA==\x07"),
        ("description", "c1 \x85 next line"),
        ("size_bytes", -1),
    ],
)
async def test_bad_header_fields_are_named(api: Api, field: str, value: object) -> None:
    """Each malformed header field is INVALID_ARGUMENT naming header.<field>; nothing stored."""
    alice = await api.caller("alice")
    model = await model_of(alice)
    header = v1.UploadModelVersionHeader(model.id, "model.onnx")
    setattr(header, field, value)
    await expect_error(
        alice.models.upload_model_version(request_stream(header, [b"data"])),
        Status.INVALID_ARGUMENT,
        "INVALID_FIELD",
        f"header.{field}",
    )


async def test_file_name_never_becomes_a_path(api: Api, settings: Settings) -> None:
    """Blobs are stored by digest; the display name appears nowhere on disk."""
    alice = await api.caller("alice")
    model = await model_of(alice)
    data = b"payload"
    await upload(alice, model.id, data, file_name="my model (final).onnx")
    (stored,) = blob_files(settings)
    assert stored.name == hashlib.sha256(data).hexdigest()


async def abandon_upload(
    store: MetadataStore, blobs: LocalBlobStore, data: bytes, expires_us: int, *, commit: bool
) -> str:
    """What a process that died mid-upload leaves: a session alive until ``expires_us`` and its
    bytes in a temporary file (or, with ``commit``, claimed and stored under their digest but
    never recorded as a version)."""
    session_id = new_id()
    handle = f"{uuid.uuid4().hex}.part"
    await store.write(lambda tx: tx.insert_upload_session(session_id, handle, expires_us))
    if commit:
        digest = hashlib.sha256(data).hexdigest()
        await store.write(lambda tx: tx.claim_blob(session_id, digest, expires_us))
        blobs.path_of(digest).parent.mkdir(parents=True, exist_ok=True)
        blobs.path_of(digest).write_bytes(data)
    else:
        (blobs.temporary_directory / handle).write_bytes(data)
    return session_id


async def test_abandoned_uploads_are_cleaned_up_after_the_grace_period(domain: Domain) -> None:
    """Uploads of a process that died (their sessions silent past the grace period) lose their
    waiting bytes and their committed-but-unrecorded blob to any process's sweep; uploads still
    within the grace period, and blobs a version uses, are kept."""
    blobs = LocalBlobStore(domain.blobs_dir)
    versions = domain.versions()
    kept = await versions.upload(
        domain.user_id, UploadHeader(domain.model_id, "kept.bin"), chunks_of(b"kept")
    )
    now = now_us()
    grace_us = 60_000_000
    half = os.urandom(WRITE_BATCH_BYTES)  # a full batch: its bytes are on disk
    await abandon_upload(domain.store, blobs, half, now - grace_us, commit=False)
    await abandon_upload(domain.store, blobs, b"orphan", now - grace_us, commit=True)
    await abandon_upload(domain.store, blobs, b"kept", now - grace_us, commit=True)
    recent = await abandon_upload(domain.store, blobs, half, now + grace_us, commit=False)
    assert len(list((domain.blobs_dir / "tmp").iterdir())) == 2
    sweeper = PendingUploads(domain.store, blobs, grace_seconds=60, clock=lambda: now)
    assert await sweeper.sweep() == 4  # three sessions, one blob
    remaining = await domain.store.read(
        lambda tx: tx.abandoned_upload_sessions(now + 2 * grace_us, 10)
    )
    assert [session_id for session_id, _ in remaining] == [recent]
    assert sorted(p.name for p in (domain.blobs_dir / "sha256").rglob("*") if p.is_file()) == [
        kept.sha256
    ]
    assert len(list((domain.blobs_dir / "tmp").iterdir())) == 1
    assert await sweeper.sweep() == 0


async def test_a_shorter_grace_period_elsewhere_does_not_cut_an_upload_short(
    domain: Domain,
) -> None:
    """Each session carries the deadline its own server set: a server sweeping with a grace
    period of 1 s leaves alone an upload of a server whose grace period is 10 minutes."""
    blobs = LocalBlobStore(domain.blobs_dir)
    now = now_us()
    patient = PendingUploads(domain.store, blobs, grace_seconds=600, clock=lambda: now)
    hasty = PendingUploads(domain.store, blobs, grace_seconds=1, clock=lambda: now + 5_000_000)
    async with patient.upload() as upload:
        await upload.writer.write(os.urandom(WRITE_BATCH_BYTES))
        assert await hasty.sweep() == 0
        remaining = await domain.store.read(
            lambda tx: tx.abandoned_upload_sessions(now + 601_000_000, 10)
        )
        assert [session_id for session_id, _ in remaining] == [upload.id]


class UnreachableForDiscards(LocalBlobStore):
    """A local store that cannot discard uploads' bytes until ``reachable`` is set."""

    reachable = False

    async def discard(self, handle: str) -> None:
        if not self.reachable:
            raise StorageUnavailable("the blob store does not answer")
        await super().discard(handle)


async def test_an_upload_whose_bytes_cannot_be_removed_now_is_removed_later(
    domain: Domain,
) -> None:
    """A failed upload whose bytes the store cannot remove at that moment keeps its session, so
    a sweep past its deadline removes them once the store answers again."""
    blobs = UnreachableForDiscards(domain.blobs_dir)
    now = now_us()
    pending = PendingUploads(domain.store, blobs, grace_seconds=60, clock=lambda: now)
    started: list[str] = []

    async def upload_that_fails() -> None:
        async with pending.upload() as upload:
            await upload.writer.write(os.urandom(WRITE_BATCH_BYTES))
            started.append(upload.id)
            raise RuntimeError("the client went away")

    with pytest.raises(RuntimeError, match="client went away"):
        await upload_that_fails()
    left = await domain.store.read(lambda tx: tx.abandoned_upload_sessions(now + 61_000_000, 10))
    assert [session_id for session_id, _ in left] == started
    blobs.reachable = True
    later = PendingUploads(domain.store, blobs, grace_seconds=60, clock=lambda: now + 61_000_000)
    assert await later.sweep() == 1
    assert (
        await domain.store.read(lambda tx: tx.abandoned_upload_sessions(now + 61_000_000, 10)) == []
    )


async def test_an_upload_never_claims_a_blob_being_deleted(domain: Domain) -> None:
    """While a blob with the same bytes is being deleted, a finished upload waits for the
    deletion to end and then stores its bytes anew: the version's file is there."""
    blobs = LocalBlobStore(domain.blobs_dir)
    data = os.urandom(1000)
    digest = hashlib.sha256(data).hexdigest()
    abandoned = await abandon_upload(domain.store, blobs, data, 0, commit=True)

    def end_and_mark(tx: Transaction) -> bool:
        tx.end_upload_session(abandoned)
        return tx.mark_blob_if_unused(digest, 0)

    assert await domain.store.write(end_and_mark)  # a sweeper stopped between mark and delete
    versions = domain.versions()
    uploading = asyncio.create_task(
        versions.upload(domain.user_id, UploadHeader(domain.model_id, "same.bin"), chunks_of(data))
    )
    temporaries = domain.blobs_dir / "tmp"
    assert await poll_until(
        lambda: any(p.stat().st_size == len(data) for p in temporaries.iterdir())
    )
    assert not uploading.done()
    await PendingUploads(domain.store, blobs, grace_seconds=1).sweep()
    version = await uploading
    assert (domain.blobs_dir / "sha256" / digest[:2] / digest).read_bytes() == data
    assert version.sha256 == digest


async def test_revoked_editor_leaves_no_blob_behind(api: Api, settings: Settings) -> None:
    """An upload whose editor loses the role before the commit stores no version and no blob."""
    alice, bob = await api.caller("alice"), await api.caller("bob")
    model = await model_of(alice)
    await alice.folders.grant_folder_access(
        v1.GrantFolderAccessRequest(model.folder_id, "bob", EDITOR)
    )
    all_sent = asyncio.Event()
    revoked = asyncio.Event()

    async def messages() -> AsyncIterator[v1.UploadModelVersionRequest]:
        yield v1.UploadModelVersionRequest(header=v1.UploadModelVersionHeader(model.id, "f.bin"))
        yield v1.UploadModelVersionRequest(chunk=os.urandom(2 * MiB))
        all_sent.set()
        await revoked.wait()

    upload_call = asyncio.create_task(bob.models.upload_model_version(messages()))
    await all_sent.wait()
    assert await poll_until(lambda: storing(settings)), "the upload was not stored"
    await alice.folders.revoke_folder_access(v1.RevokeFolderAccessRequest(model.folder_id, "bob"))
    revoked.set()
    await expect_error(upload_call, Status.PERMISSION_DENIED, "FOLDER_ACCESS_DENIED")
    assert blob_files(settings) == []


async def test_refused_upload_of_identical_bytes_keeps_the_blob_of_version_1(
    api: Api, settings: Settings
) -> None:
    """An upload refused after its blob was committed (the uploader lost the editor role
    mid-stream) does not delete the blob a committed version with the same bytes shares."""
    alice, bob = await api.caller("alice"), await api.caller("bob")
    model = await model_of(alice)
    await alice.folders.grant_folder_access(
        v1.GrantFolderAccessRequest(model.folder_id, "bob", EDITOR)
    )
    data = os.urandom(2 * MiB)
    await upload(alice, model.id, data)
    all_sent, revoked = asyncio.Event(), asyncio.Event()

    async def messages() -> AsyncIterator[v1.UploadModelVersionRequest]:
        header = v1.UploadModelVersionHeader(model.id, "same.bin", size_bytes=len(data))
        yield v1.UploadModelVersionRequest(header=header)
        for chunk in split(data):
            yield v1.UploadModelVersionRequest(chunk=chunk)
        all_sent.set()
        await revoked.wait()

    upload_call = asyncio.create_task(bob.models.upload_model_version(messages()))
    await all_sent.wait()
    assert await poll_until(lambda: storing(settings)), "the upload was not stored"
    temporaries = settings.data_dir / "blobs" / "tmp"
    assert await poll_until(lambda: any(temporaries.iterdir())), "bob's upload never started"
    await alice.folders.revoke_folder_access(v1.RevokeFolderAccessRequest(model.folder_id, "bob"))
    revoked.set()
    await expect_error(upload_call, Status.PERMISSION_DENIED, "FOLDER_ACCESS_DENIED")
    assert (await download(alice, model.id, 1))[1] == data
    assert len(blob_files(settings)) == 1


async def test_truncated_blob_is_data_loss_not_a_short_success(
    api: Api, settings: Settings
) -> None:
    """A stored file shorter than its version ends the download with DATA_LOSS."""
    alice = await api.caller("alice")
    model = await model_of(alice)
    version = await upload(alice, model.id, os.urandom(MiB + 10))
    (stored,) = blob_files(settings)
    stored.write_bytes(stored.read_bytes()[:1000])
    await expect_error(download(alice, model.id, version.version), Status.DATA_LOSS, "BLOB_DAMAGED")


async def stalled(
    first: bytes, release: asyncio.Event, waiting: asyncio.Event | None = None
) -> AsyncIterator[bytes]:
    """Sends ``first``, then nothing until ``release``; ``waiting`` is set once it stalls."""
    yield first
    if waiting is not None:
        waiting.set()
    await release.wait()


async def chunks_of(data: bytes) -> AsyncIterator[bytes]:
    yield data


async def test_uploads_beyond_the_per_peer_limit_are_refused(domain: Domain) -> None:
    """With one address's upload limit reached, it is OVERLOADED while another address is not."""
    versions = domain.versions(max_uploads_per_peer=1)
    user, model = domain.user_id, domain.model_id
    release, waiting = asyncio.Event(), asyncio.Event()
    first = asyncio.create_task(
        versions.upload(
            user, UploadHeader(model, "a"), stalled(b"a", release, waiting), peer="10.0.0.1"
        )
    )
    await waiting.wait()
    with pytest.raises(ResourceExhausted) as caught:
        await versions.upload(user, UploadHeader(model, "b"), chunks_of(b"b"), peer="10.0.0.1")
    assert caught.value.reason == "OVERLOADED"
    other = await versions.upload(user, UploadHeader(model, "c"), chunks_of(b"c"), peer="10.0.0.2")
    release.set()
    assert sorted([(await first).version, other.version]) == [1, 2]


async def test_uploads_beyond_the_per_user_limit_are_refused(domain: Domain) -> None:
    """With the per-user limit reached, another upload is OVERLOADED until one finishes."""
    versions = domain.versions(max_uploads_per_user=1)
    user, model = domain.user_id, domain.model_id
    release, waiting = asyncio.Event(), asyncio.Event()
    first = asyncio.create_task(
        versions.upload(user, UploadHeader(model, "a"), stalled(b"a", release, waiting))
    )
    await waiting.wait()
    with pytest.raises(ResourceExhausted) as caught:
        await versions.upload(user, UploadHeader(model, "b"), chunks_of(b"b"))
    assert caught.value.reason == "OVERLOADED"
    release.set()
    assert (await first).version == 1
    assert (await versions.upload(user, UploadHeader(model, "c"), chunks_of(b"c"))).version == 2


async def test_an_empty_chunk_is_refused(api: Api, settings: Settings) -> None:
    """A chunk must carry bytes: empty chunks would keep an upload alive without progress."""
    alice = await api.caller("alice")
    model = await model_of(alice)
    header = v1.UploadModelVersionHeader(model_id=model.id, file_name="model.onnx")
    await expect_error(
        alice.models.upload_model_version(request_stream(header, [b"abc", b""])),
        Status.INVALID_ARGUMENT,
        "INVALID_FIELD",
        "chunk",
    )
    assert blob_files(settings) == []


async def test_downloads_beyond_the_per_user_limit_are_refused(domain: Domain) -> None:
    """With a user's download slots taken, another download is OVERLOADED until one ends."""
    versions = domain.versions(max_downloads_per_user=1)
    user, model = domain.user_id, domain.model_id
    await versions.upload(user, UploadHeader(model, "a"), chunks_of(b"weights"))
    async with versions.download(user, model, 1, 0, peer="10.0.0.1") as (_, chunks):
        with pytest.raises(ResourceExhausted) as caught:
            async with versions.download(user, model, 1, 0, peer="10.0.0.2"):
                pass
        assert caught.value.reason == "OVERLOADED"
        assert b"".join([chunk async for chunk in chunks]) == b"weights"
    async with versions.download(user, model, 1, 0) as (_, chunks):
        assert b"".join([chunk async for chunk in chunks]) == b"weights"


async def test_an_upload_cancelled_as_its_session_is_written_leaves_no_session(
    domain: Domain, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A client that goes away while its upload's session row is being written (the write
    runs to its end regardless) leaves no session behind: not one that would count as in
    progress until its grace period ends."""
    now = now_us()
    pending = PendingUploads(
        domain.store, LocalBlobStore(domain.blobs_dir), grace_seconds=60, clock=lambda: now
    )
    written, gate = asyncio.Event(), asyncio.Event()
    real_write = domain.store.write

    async def gated_write(work: Any) -> Any:
        result = await real_write(work)
        written.set()
        await gate.wait()
        return result

    monkeypatch.setattr(domain.store, "write", gated_write)

    async def upload() -> None:
        async with pending.upload():
            pytest.fail("the upload should not begin")

    task = asyncio.create_task(upload())
    await written.wait()
    task.cancel()
    monkeypatch.setattr(domain.store, "write", real_write)
    gate.set()
    with pytest.raises(asyncio.CancelledError):
        await task
    left = await domain.store.read(lambda tx: tx.abandoned_upload_sessions(now + 61_000_000, 10))
    assert left == []
