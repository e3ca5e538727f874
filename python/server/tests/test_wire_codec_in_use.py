"""The server and the SDK encode and decode every message with the compiled wire codec, and the
server makes the messages of its answers without betterproto's constructor."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, NoReturn
from unittest import mock

import betterproto
import pytest

from modelcatalog import AsyncClient, PermissionDenied, v1
from modelcatalog_server.app import Application
from modelcatalog_server.domain.edits import folder_etag, model_etag, version_etag
from modelcatalog_server.services import _convert
from modelcatalog_server.storage.records import (
    FolderRecord,
    MemberRecord,
    ModelRecord,
    Role,
    UserRecord,
    VersionRecord,
)
from modelcatalog_server.transport import Server, open_listener

CREATED_US = 1_777_638_615_123_456
UPDATED_US = CREATED_US + 7_000_001
FOLDER = FolderRecord("f1", "vision", "", "ada", CREATED_US, Role.OWNER, UPDATED_US)
MODEL = ModelRecord("m1", "f1", "detector", "d", "ada", CREATED_US, 2, Role.EDITOR, UPDATED_US)
VERSION = VersionRecord(
    "m1", 2, "m.onnx", "", 7, "ab" * 32, "", {"a": "b"}, "ada", CREATED_US, UPDATED_US
)


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
    """Sign-up to download (and a refusal's details) go over a real socket with betterproto's own
    codec refused."""
    server = Server(app.services, app.guards)
    listener = open_listener("127.0.0.1", 0)
    await server.start(listener, None)
    source, copy = tmp_path / "model.onnx", tmp_path / "copy.onnx"
    source.write_bytes(b"weights" * 50_000)
    try:
        with betterproto_codec_refused():
            async with AsyncClient(
                f"127.0.0.1:{listener.getsockname()[1]}", insecure=True
            ) as client:
                await client.sign_up("ada", "correct horse battery")
                await client.sign_in("ada", "correct horse battery")
                folder = await client.create_folder("vision")
                model = await client.create_model(folder.id, "detector")
                version = await client.upload(model.id, source, labels={"stage": "test"})
                await client.download(model.id, version.version, copy)
                listed = [found.id async for found in client.list_models(folder.id)]
                with pytest.raises(PermissionDenied) as denied:
                    await client.create_model("no-such-folder", "detector")
    finally:
        server.close()
        await server.wait_closed()
    assert listed == [model.id]
    assert copy.read_bytes() == source.read_bytes()
    assert denied.value.reason == "FOLDER_ACCESS_DENIED"  # the error details decode too


@pytest.mark.parametrize(
    ("convert", "record", "expected"),
    [
        (
            _convert.user,
            UserRecord("u1", "ada", CREATED_US),
            v1.User(id="u1", username="ada", create_time=_convert.timestamp(CREATED_US)),
        ),
        (
            _convert.folder,
            FOLDER,
            v1.Folder(
                id="f1",
                name="vision",
                description="",
                creator_username="ada",
                create_time=_convert.timestamp(CREATED_US),
                caller_role=v1.FolderRole.from_string("OWNER"),
                update_time=_convert.timestamp(UPDATED_US),
                etag=folder_etag(FOLDER),
            ),
        ),
        (
            _convert.member,
            MemberRecord("u1", "ada", Role.VIEWER, CREATED_US, "grace"),
            v1.FolderMember(
                user_id="u1",
                username="ada",
                role=v1.FolderRole.from_string("VIEWER"),
                update_time=_convert.timestamp(CREATED_US),
                granted_by_username="grace",
            ),
        ),
        (
            _convert.model,
            MODEL,
            v1.Model(
                id="m1",
                folder_id="f1",
                name="detector",
                description="d",
                creator_username="ada",
                create_time=_convert.timestamp(CREATED_US),
                latest_version=2,
                update_time=_convert.timestamp(UPDATED_US),
                etag=model_etag(MODEL),
            ),
        ),
        (
            _convert.version,
            VERSION,
            v1.ModelVersion(
                model_id="m1",
                version=2,
                file_name="m.onnx",
                content_type="",
                size_bytes=7,
                sha256="ab" * 32,
                description="",
                labels={"a": "b"},
                creator_username="ada",
                create_time=_convert.timestamp(CREATED_US),
                update_time=_convert.timestamp(UPDATED_US),
                etag=version_etag(VERSION),
            ),
        ),
    ],
    ids=["user", "folder", "member", "model", "version"],
)
def test_records_become_the_messages_their_constructors_make_without_calling_them(
    convert: Any, record: object, expected: betterproto.Message
) -> None:
    """Each converter makes what the message's constructor would, with that constructor refused."""

    def refuse(*_: object) -> NoReturn:
        raise AssertionError("betterproto's constructor ran")

    with mock.patch.object(betterproto.Message, "__post_init__", refuse):
        made = convert(record)
    assert made == expected
    assert bytes(made) == bytes(expected)
