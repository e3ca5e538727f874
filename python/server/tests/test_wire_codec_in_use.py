"""The server and the SDK encode and decode every message with the compiled wire codec."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import NoReturn
from unittest import mock

import betterproto

from modelcatalog import Client
from modelcatalog_server.app import Application
from modelcatalog_server.transport import Server, open_listener


@contextmanager
def betterproto_codec_refused() -> Iterator[None]:
    """betterproto's generic ``bytes()`` and ``parse`` raise, wherever they are called."""

    def refuse(*_: object) -> NoReturn:
        raise AssertionError("betterproto's generic codec ran")

    with (
        mock.patch.object(betterproto.Message, "__bytes__", refuse),
        mock.patch.object(betterproto.Message, "parse", refuse),
    ):
        yield


async def test_calls_between_the_sdk_and_the_server_never_use_betterprotos_codec(
    app: Application, tmp_path: Path
) -> None:
    """Sign-up to download over a real socket succeed with betterproto's own codec refused."""
    server = Server(app.services, app.guards)
    listener = open_listener("127.0.0.1", 0)
    await server.start(listener, None)
    source, copy = tmp_path / "model.onnx", tmp_path / "copy.onnx"
    source.write_bytes(b"weights" * 50_000)
    try:
        with betterproto_codec_refused():
            async with Client(f"127.0.0.1:{listener.getsockname()[1]}", insecure=True) as client:
                await client.sign_up("ada", "correct horse battery")
                await client.sign_in("ada", "correct horse battery")
                folder = await client.create_folder("vision")
                model = await client.create_model(folder.id, "detector")
                version = await client.upload(model.id, source, labels={"stage": "test"})
                await client.download(model.id, version.version, copy)
                listed = [found.id async for found in client.list_models(folder.id)]
    finally:
        server.close()
        await server.wait_closed()
    assert listed == [model.id]
    assert copy.read_bytes() == source.read_bytes()
