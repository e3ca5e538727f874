"""The sync Client is AsyncClient's methods run in a loop thread of its own: same signatures,
plain iterators, usable inside a running event loop, and Ctrl-C cancels the RPC."""

import asyncio
import collections.abc
import hashlib
import inspect
import random
import signal
import threading
import typing
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path

import betterproto
import pytest
from grpclib.const import Status
from rpc_testing import FakeTransfers, Flaky, grpc_error, sync_client_for
from test_exported_members import CLIENT_MEMBERS
from test_paging import FOLDERS, PagingFolders

from modelcatalog import AsyncClient, Client, NotFound, Unavailable, v1
from modelcatalog._transport import CHUNK_SIZE

SIZE = 2 * CHUNK_SIZE + 777


def _client_threads() -> list[threading.Thread]:
    return [thread for thread in threading.enumerate() if thread.name == "modelcatalog-client"]


def _synchronous(annotation: object) -> object:
    """The return annotation a sync method has for an async method's: AsyncIterator[T] is
    Iterator[T]; anything else is the same."""
    if typing.get_origin(annotation) is collections.abc.AsyncIterator:
        return Iterator[typing.get_args(annotation)]  # type: ignore[misc]
    return annotation


@pytest.mark.parametrize("name", sorted(CLIENT_MEMBERS - {"token"} | {"__init__"}))
def test_methods_match_the_async_client(name: str) -> None:
    """Each Client method takes exactly AsyncClient's parameters, defaults and annotations,
    returns the same type (an Iterator for an AsyncIterator), and shares its docstring."""
    async_method = getattr(AsyncClient, name)
    sync_method = getattr(Client, name)
    async_signature = inspect.signature(async_method)
    sync_signature = inspect.signature(sync_method)
    assert sync_signature.parameters == async_signature.parameters
    expected = _synchronous(async_signature.return_annotation)
    assert sync_signature.return_annotation == expected
    assert not inspect.iscoroutinefunction(sync_method)
    if name not in {"__init__", "close"}:  # these two say what differs
        assert sync_method.__doc__ == async_method.__doc__


def test_token_property_matches() -> None:
    """token is a read-write property on both clients, with the same documentation."""
    sync_token, async_token = vars(Client)["token"], vars(AsyncClient)["token"]
    assert isinstance(sync_token, property)
    assert sync_token.fset is not None
    assert sync_token.__doc__ == async_token.__doc__


@pytest.fixture
def fake() -> FakeTransfers:
    return FakeTransfers()


@pytest.fixture
def client(fake: FakeTransfers) -> Iterator[Client]:
    with sync_client_for([fake], token="tok", retry_backoff=0) as client:
        yield client


def test_upload_and_download_round_trip(client: Client, tmp_path: Path) -> None:
    """A file uploads and downloads through the sync client, byte for byte, with progress."""
    data = random.Random(3).randbytes(SIZE)
    (tmp_path / "model.onnx").write_bytes(data)
    sent: list[tuple[int, int | None]] = []
    version = client.upload("m1", tmp_path / "model.onnx", progress=lambda *p: sent.append(p))
    received: list[tuple[int, int | None]] = []
    downloaded = client.download(
        "m1", version.version, tmp_path / "copy", progress=lambda *p: received.append(p)
    )
    assert version.sha256 == hashlib.sha256(data).hexdigest()
    assert downloaded.path.read_bytes() == data
    assert (downloaded.version, downloaded.resumed_from) == (version, 0)
    assert sent[0] == received[0] == (0, SIZE)
    assert sent[-1] == received[-1] == (SIZE, SIZE)


def test_errors_are_raised_in_the_calling_thread(client: Client) -> None:
    """A server error reaches the caller as the same typed error as with AsyncClient."""
    with pytest.raises(NotFound) as caught:
        client.get_model_version("m1", 7)
    assert caught.value.reason == "VERSION_NOT_FOUND"


def test_lists_are_iterators_that_fetch_pages_lazily() -> None:
    """A list returns a plain iterator; the next page is requested only when it is reached."""
    folders = PagingFolders()
    with sync_client_for([folders]) as client:
        listed = client.list_folders(page_size=2)
        assert isinstance(listed, Iterator)
        assert folders.requests == []
        assert next(listed) == FOLDERS[0]
        assert len(folders.requests) == 1
        assert list(listed) == FOLDERS[1:]
        assert len(folders.requests) == 3


def test_reads_are_retried() -> None:
    """The sync client retries a read after UNAVAILABLE like the async one."""
    models = Flaky(v1.ModelServiceBase, failures=2)
    with sync_client_for([models], retry_backoff=0) as client:
        client.get_model("m1")
    assert models.attempts == {"/modelcatalog.v1.ModelService/GetModel": 3}


def test_works_while_the_calling_thread_runs_an_event_loop(fake: FakeTransfers) -> None:
    """Called from inside a running event loop (a notebook cell), it neither fails nor hangs."""
    fake.store(b"weights")

    async def cell() -> int:
        with sync_client_for([fake]) as client:
            return client.get_model_version("m1", 1).size_bytes

    assert asyncio.run(cell()) == len(b"weights")


def test_real_connection_is_made_in_the_clients_loop() -> None:
    """Client(target) builds its channel in its own loop: a refused connection is Unavailable,
    also when the caller runs a loop (grpclib would otherwise bind it to the caller's)."""

    async def cell() -> None:
        with Client("127.0.0.1:1", insecure=True, retries=0) as client:
            client.get_current_user()

    with pytest.raises(Unavailable, match="cannot reach"):
        asyncio.run(cell())


def test_close_stops_the_thread_and_later_calls_fail() -> None:
    """close() stops the client's thread; a call afterwards raises RuntimeError; closing twice
    is harmless."""
    before = len(_client_threads())
    client = sync_client_for([FakeTransfers()])
    assert len(_client_threads()) == before + 1
    client.close()
    client.close()
    assert len(_client_threads()) == before
    with pytest.raises(RuntimeError, match="closed"):
        client.get_model_version("m1", 1)


def test_bad_target_raises_and_leaves_no_thread() -> None:
    """A malformed target raises ValueError from the constructor and stops the new thread."""
    before = len(_client_threads())
    with pytest.raises(ValueError, match="host:port"):
        Client("no-port")
    assert len(_client_threads()) == before


def test_calling_the_client_from_its_own_callback_raises(client: Client, tmp_path: Path) -> None:
    """A sync call from a progress callback (the client's loop thread) raises, not deadlocks."""
    (tmp_path / "f").write_bytes(b"x")
    failures: list[Exception] = []

    def progress(done: int, total: int | None) -> None:
        try:
            client.get_model_version("m1", 1)
        except RuntimeError as error:
            failures.append(error)

    client.upload("m1", tmp_path / "f", progress=progress)
    assert failures
    assert "own event loop" in str(failures[0])


class Stalling(FakeTransfers):
    """Stalls uploads before reading them and downloads after their first chunk (while
    ``stalls``), calls ``on_stall`` then, and records whether the client's cancel reached the
    handler."""

    def __init__(self, on_stall: Callable[[], None]) -> None:
        super().__init__()
        self.on_stall = on_stall
        self.stalls = True
        self.cancelled = threading.Event()

    async def _stall(self) -> None:
        self.on_stall()
        try:
            await asyncio.Event().wait()
        except asyncio.CancelledError:
            self.cancelled.set()
            raise

    async def upload_model_version(
        self, upload_model_version_request_iterator: AsyncIterator[v1.UploadModelVersionRequest]
    ) -> v1.UploadModelVersionResponse:
        await self._stall()
        raise grpc_error(Status.INTERNAL, "unreachable")

    async def download_model_version(
        self, download_model_version_request: v1.DownloadModelVersionRequest
    ) -> AsyncIterator[v1.DownloadModelVersionResponse]:
        async for response in super().download_model_version(download_model_version_request):
            yield response
            if betterproto.which_one_of(response, "content")[0] == "chunk" and self.stalls:
                await self._stall()


def _interrupt_main_thread() -> None:
    """What Ctrl-C does to a program blocked in a call: SIGINT in the main thread."""
    main = threading.main_thread().ident
    assert main is not None
    signal.pthread_kill(main, signal.SIGINT)


@pytest.mark.skipif(not hasattr(signal, "pthread_kill"), reason="needs POSIX signals")
def test_ctrl_c_during_an_upload_cancels_it(tmp_path: Path) -> None:
    """KeyboardInterrupt in the caller cancels the upload's RPC: the server stores nothing."""
    fake = Stalling(on_stall=_interrupt_main_thread)
    (tmp_path / "model.onnx").write_bytes(random.Random(4).randbytes(SIZE))
    with sync_client_for([fake], token="tok") as client:
        with pytest.raises(KeyboardInterrupt):
            client.upload("m1", tmp_path / "model.onnx")
        assert fake.cancelled.wait(timeout=5)
        assert fake.versions == []
        with pytest.raises(NotFound):  # the client still works
            client.get_model_version("m1", 1)


@pytest.mark.skipif(not hasattr(signal, "pthread_kill"), reason="needs POSIX signals")
def test_ctrl_c_during_a_download_keeps_the_part_file_to_resume(tmp_path: Path) -> None:
    """KeyboardInterrupt cancels the download's RPC and leaves .part for the next call."""
    fake = Stalling(on_stall=lambda: None)
    data = random.Random(5).randbytes(SIZE)
    fake.store(data)

    def progress(done: int, total: int | None) -> None:
        if done:  # the first chunk is written: the server now stalls
            _interrupt_main_thread()

    with sync_client_for([fake], token="tok") as client:
        with pytest.raises(KeyboardInterrupt):
            client.download("m1", 1, tmp_path / "out", progress=progress)
        assert fake.cancelled.wait(timeout=5)
        assert (tmp_path / "out.part").read_bytes() == data[:CHUNK_SIZE]
        assert not (tmp_path / "out").exists()
        fake.stalls = False
        downloaded = client.download("m1", 1, tmp_path / "out")
    assert downloaded.resumed_from == CHUNK_SIZE
    assert downloaded.path.read_bytes() == data
