"""The README scenarios with grpcio, through the protobuf and grpcio stubs modelcatalog ships.

A Python user who prefers grpcio to the SDK imports ``modelcatalog.v1.*_pb2`` and
``*_pb2_grpc`` (``pip install 'modelcatalog[grpcio]'``), trusts the server's CA, sends the
access token as ``authorization: Bearer`` metadata, and reads an error's reason from the
``google.rpc.Status`` in the ``grpc-status-details-bin`` trailer.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Iterator
from dataclasses import dataclass
from typing import cast

import grpc
import pytest
from google.rpc import error_details_pb2, status_pb2

from modelcatalog.v1 import (
    auth_service_pb2,
    auth_service_pb2_grpc,
    folder_service_pb2,
    folder_service_pb2_grpc,
    model_service_pb2,
    model_service_pb2_grpc,
    resources_pb2,
)

from ..server_process import RunningServer

PASSWORD = "correct horse battery"
TIMEOUT_SECONDS = 30
CHUNK_BYTES = 1 << 20
DETAILS_KEY = "grpc-status-details-bin"


@dataclass
class User:
    """A signed-in user's stubs; every call sends the user's token."""

    folders: folder_service_pb2_grpc.FolderServiceStub
    models: model_service_pb2_grpc.ModelServiceStub
    metadata: tuple[tuple[str, str], ...]


@pytest.fixture
def channel(server: RunningServer) -> Iterator[grpc.Channel]:
    """A TLS channel that trusts the server's self-signed certificate (its CA)."""
    credentials = grpc.ssl_channel_credentials(server.ca_cert.read_bytes())
    with grpc.secure_channel(server.address, credentials) as secure:
        yield secure


def sign_up_and_in(channel: grpc.Channel, username: str) -> User:
    auth = auth_service_pb2_grpc.AuthServiceStub(channel)
    auth.SignUp(
        auth_service_pb2.SignUpRequest(username=username, password=PASSWORD),
        timeout=TIMEOUT_SECONDS,
    )
    signed_in = auth.SignIn(
        auth_service_pb2.SignInRequest(username=username, password=PASSWORD),
        timeout=TIMEOUT_SECONDS,
    )
    return User(
        folder_service_pb2_grpc.FolderServiceStub(channel),
        model_service_pb2_grpc.ModelServiceStub(channel),
        (("authorization", f"Bearer {signed_in.access_token}"),),
    )


def failed_call(error: grpc.RpcError) -> grpc.Call:
    """The call an error came from: grpcio raises errors that are also its calls."""
    return cast(grpc.Call, error)


def error_reason(error: grpc.RpcError) -> str:
    """The ErrorInfo reason of a failed call, from its google.rpc.Status trailer."""
    trailers = dict(failed_call(error).trailing_metadata() or ())
    details = trailers[DETAILS_KEY]  # a -bin key: grpcio hands its value over as bytes
    assert isinstance(details, bytes)
    status = status_pb2.Status.FromString(details)
    info = error_details_pb2.ErrorInfo()
    assert status.details[0].Unpack(info)
    assert info.domain == "modelcatalog.v1"
    return info.reason


def create_folder(user: User, name: str) -> resources_pb2.Folder:
    response = user.folders.CreateFolder(
        folder_service_pb2.CreateFolderRequest(name=name),
        metadata=user.metadata,
        timeout=TIMEOUT_SECONDS,
    )
    return response.folder


def create_model(user: User, folder_id: str, name: str) -> resources_pb2.Model:
    response = user.models.CreateModel(
        model_service_pb2.CreateModelRequest(folder_id=folder_id, name=name),
        metadata=user.metadata,
        timeout=TIMEOUT_SECONDS,
    )
    return response.model


def grant(
    user: User, folder_id: str, username: str, role: resources_pb2.FolderRole.ValueType
) -> None:
    user.folders.GrantFolderAccess(
        folder_service_pb2.GrantFolderAccessRequest(
            folder_id=folder_id, username=username, role=role
        ),
        metadata=user.metadata,
        timeout=TIMEOUT_SECONDS,
    )


def model_names(user: User) -> list[str]:
    response = user.models.ListModels(
        model_service_pb2.ListModelsRequest(), metadata=user.metadata, timeout=TIMEOUT_SECONDS
    )
    return [model.name for model in response.models]


def test_create_model_without_folder_permission(channel: grpc.Channel) -> None:
    """User 2 cannot create a model in user 1's folder: PERMISSION_DENIED, FOLDER_ACCESS_DENIED."""
    user1, user2 = sign_up_and_in(channel, "user1"), sign_up_and_in(channel, "user2")
    folder = create_folder(user1, "user1-folder")
    with pytest.raises(grpc.RpcError) as refused:
        create_model(user2, folder.id, "intruder")
    assert failed_call(refused.value).code() == grpc.StatusCode.PERMISSION_DENIED
    assert error_reason(refused.value) == "FOLDER_ACCESS_DENIED"


def test_create_model_after_grant_folder_permission(channel: grpc.Channel) -> None:
    """Once user 1 makes user 2 an editor of the folder, user 2 creates a model in it."""
    user1, user2 = sign_up_and_in(channel, "user1"), sign_up_and_in(channel, "user2")
    folder = create_folder(user1, "user1-folder")
    grant(user1, folder.id, "user2", resources_pb2.FOLDER_ROLE_EDITOR)
    model = create_model(user2, folder.id, "welcome")
    assert model.creator_username == "user2"
    assert model_names(user1) == ["welcome"]


def test_list_only_authorized_models(channel: grpc.Channel) -> None:
    """User 1 lists its 2 models; 3 once user 2 shares a folder with it."""
    user1, user2 = sign_up_and_in(channel, "user1"), sign_up_and_in(channel, "user2")
    folder1 = create_folder(user1, "one")
    create_model(user1, folder1.id, "m1")
    create_model(user1, folder1.id, "m2")
    folder2 = create_folder(user2, "two")
    create_model(user2, folder2.id, "m3")
    assert model_names(user1) == ["m1", "m2"]
    assert model_names(user2) == ["m3"]
    grant(user2, folder2.id, "user1", resources_pb2.FOLDER_ROLE_VIEWER)
    assert model_names(user1) == ["m1", "m2", "m3"]


def test_upload_then_download_is_byte_identical(channel: grpc.Channel) -> None:
    """A streamed upload with its SHA-256 downloads byte for byte, with the same SHA-256."""
    user = sign_up_and_in(channel, "user1")
    model = create_model(user, create_folder(user, "weights").id, "resnet")
    content = os.urandom(3 * CHUNK_BYTES + 12345)
    digest = hashlib.sha256(content).hexdigest()

    def requests() -> Iterator[model_service_pb2.UploadModelVersionRequest]:
        yield model_service_pb2.UploadModelVersionRequest(
            header=model_service_pb2.UploadModelVersionHeader(
                model_id=model.id, file_name="model.onnx", size_bytes=len(content), sha256=digest
            )
        )
        for start in range(0, len(content), CHUNK_BYTES):
            yield model_service_pb2.UploadModelVersionRequest(
                chunk=content[start : start + CHUNK_BYTES]
            )

    uploaded = user.models.UploadModelVersion(
        requests(), metadata=user.metadata, timeout=TIMEOUT_SECONDS
    ).version
    assert (uploaded.version, uploaded.sha256, uploaded.size_bytes) == (1, digest, len(content))

    downloaded = bytearray()
    version = None
    for response in user.models.DownloadModelVersion(
        model_service_pb2.DownloadModelVersionRequest(model_id=model.id, version=1),
        metadata=user.metadata,
        timeout=TIMEOUT_SECONDS,
    ):
        if response.HasField("version"):
            version = response.version
        else:
            downloaded += response.chunk
    assert version is not None
    assert version.sha256 == digest
    assert bytes(downloaded) == content
    assert hashlib.sha256(downloaded).hexdigest() == digest


def test_an_access_token_is_a_bearer_token_like_any_other(channel: grpc.Channel) -> None:
    """A read-only access token made with the stubs lists models as "authorization: Bearer",
    is refused a change with TOKEN_READ_ONLY, and is listed with a last use once used."""
    user = sign_up_and_in(channel, "user1")
    create_model(user, create_folder(user, "weights").id, "resnet")
    auth = auth_service_pb2_grpc.AuthServiceStub(channel)
    made = auth.CreateAccessToken(
        auth_service_pb2.CreateAccessTokenRequest(
            name="ci", scope=auth_service_pb2.ACCESS_TOKEN_SCOPE_READ, ttl_seconds=3600
        ),
        metadata=user.metadata,
        timeout=TIMEOUT_SECONDS,
    )
    assert not made.access_token.HasField("last_use_time")
    job = User(user.folders, user.models, (("authorization", f"Bearer {made.secret}"),))
    assert model_names(job) == ["resnet"]
    with pytest.raises(grpc.RpcError) as refused:
        create_folder(job, "another")
    assert failed_call(refused.value).code() == grpc.StatusCode.PERMISSION_DENIED
    assert error_reason(refused.value) == "TOKEN_READ_ONLY"
    listed = auth.ListAccessTokens(
        auth_service_pb2.ListAccessTokensRequest(), metadata=user.metadata, timeout=TIMEOUT_SECONDS
    )
    assert [token.name for token in listed.access_tokens] == ["ci"]
    assert listed.access_tokens[0].HasField("last_use_time")
