"""Test helpers for the CLI: small fake services behind ``ChannelFor`` and a CLI runner.

``CliHarness`` points the CLI's client factory at the SDK's ``Client`` over an in-memory
channel to ``FakeAuth``/``FakeFolders``/``FakeModels`` (sharing one ``Backend``), adds fake
``upload``/``download`` methods, isolates the config folder in a temporary directory and
runs commands with Click's ``CliRunner``.
"""

import hashlib
import os
from collections.abc import AsyncIterator, Mapping
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, BinaryIO, cast

import pytest
from click.testing import CliRunner, Result
from google.rpc.error_details_pb2 import ErrorInfo
from grpclib.const import Status
from grpclib.events import SendRequest, listen
from grpclib.exceptions import GRPCError
from grpclib.testing import ChannelFor

from modelcatalog import Client, DataLoss, ProgressCallback, v1
from modelcatalog.cli import _app, cli
from modelcatalog.cli._config import Settings

CREATED = datetime(2025, 1, 31, 9, 30, tzinfo=UTC)
FOLDER_ID = "0b7e5a9c-1111-4c4c-8d8d-000000000001"
MODEL_ID = "0b7e5a9c-2222-4c4c-8d8d-000000000002"
ENV_VARS = (
    "MODELCATALOG_SERVER",
    "MODELCATALOG_CA_CERT",
    "MODELCATALOG_INSECURE",
    "MODELCATALOG_TOKEN",
    "COLUMNS",
)


def grpc_error(status: Status, message: str, reason: str | None = None) -> GRPCError:
    """A GRPCError as the server sends it, with an ErrorInfo carrying ``reason``."""
    details = [ErrorInfo(domain="modelcatalog.v1", reason=reason)] if reason else None
    return GRPCError(status, message, details)


@dataclass
class Backend:
    """The state the fake services share, and what the tests make them do."""

    passwords: dict[str, str] = field(default_factory=dict)
    folders: list[v1.Folder] = field(default_factory=list)
    members: list[v1.FolderMember] = field(default_factory=list)
    models: list[v1.Model] = field(default_factory=list)
    versions: list[v1.ModelVersion] = field(default_factory=list)
    blobs: dict[int, bytes] = field(default_factory=dict)
    error: GRPCError | None = None
    """Raised by every RPC while set."""
    authorization: list[str | bytes | None] = field(default_factory=list)
    """The authorization metadata of every RPC sent, in order."""
    settings: list[Settings] = field(default_factory=list)
    """The settings of every client the CLI opened, in order."""
    transfers: list[dict[str, Any]] = field(default_factory=list)
    """The arguments of every upload/download call."""
    transfer_error: Exception | None = None

    def check(self) -> None:
        if self.error is not None:
            raise self.error

    def user(self, username: str) -> v1.User:
        return v1.User(id=f"id-{username}", username=username, create_time=CREATED)


class FakeAuth(v1.AuthServiceBase):
    """Accounts: sign-up stores a password, sign-in checks it and issues "tok-<name>"."""

    def __init__(self, backend: Backend) -> None:
        self.backend = backend

    async def sign_up(self, sign_up_request: v1.SignUpRequest) -> v1.SignUpResponse:
        self.backend.check()
        name = sign_up_request.username
        if name in self.backend.passwords:
            raise grpc_error(
                Status.ALREADY_EXISTS, f"the username {name!r} is taken", "USERNAME_TAKEN"
            )
        self.backend.passwords[name] = sign_up_request.password
        return v1.SignUpResponse(user=self.backend.user(name))

    async def sign_in(self, sign_in_request: v1.SignInRequest) -> v1.SignInResponse:
        self.backend.check()
        name, password = sign_in_request.username, sign_in_request.password
        if self.backend.passwords.get(name) != password:
            raise grpc_error(
                Status.UNAUTHENTICATED, "wrong username or password", "INVALID_CREDENTIALS"
            )
        return v1.SignInResponse(
            access_token=f"tok-{name}", expire_time=CREATED, user=self.backend.user(name)
        )

    async def get_current_user(
        self, get_current_user_request: v1.GetCurrentUserRequest
    ) -> v1.GetCurrentUserResponse:
        self.backend.check()
        return v1.GetCurrentUserResponse(user=self.backend.user("alice"))


class FakeFolders(v1.FolderServiceBase):
    """Folders kept in a list; anyone may see and change all of them."""

    def __init__(self, backend: Backend) -> None:
        self.backend = backend

    async def create_folder(
        self, create_folder_request: v1.CreateFolderRequest
    ) -> v1.CreateFolderResponse:
        self.backend.check()
        folder = v1.Folder(
            id=FOLDER_ID if not self.backend.folders else f"folder-{len(self.backend.folders)}",
            name=create_folder_request.name,
            description=create_folder_request.description,
            creator_username="alice",
            create_time=CREATED,
            caller_role=v1.FolderRole.from_string("OWNER"),
        )
        self.backend.folders.append(folder)
        return v1.CreateFolderResponse(folder=folder)

    async def get_folder(self, get_folder_request: v1.GetFolderRequest) -> v1.GetFolderResponse:
        self.backend.check()
        for folder in self.backend.folders:
            if folder.id == get_folder_request.folder_id:
                return v1.GetFolderResponse(folder=folder)
        raise grpc_error(Status.PERMISSION_DENIED, "no access", "FOLDER_ACCESS_DENIED")

    async def list_folders(
        self, list_folders_request: v1.ListFoldersRequest
    ) -> v1.ListFoldersResponse:
        self.backend.check()
        return v1.ListFoldersResponse(folders=self.backend.folders)

    async def grant_folder_access(
        self, grant_folder_access_request: v1.GrantFolderAccessRequest
    ) -> v1.GrantFolderAccessResponse:
        self.backend.check()
        request = grant_folder_access_request
        member = v1.FolderMember(
            user_id=f"id-{request.username}",
            username=request.username,
            role=request.role,
            update_time=CREATED,
        )
        self.backend.members.append(member)
        return v1.GrantFolderAccessResponse(member=member)

    async def revoke_folder_access(
        self, revoke_folder_access_request: v1.RevokeFolderAccessRequest
    ) -> v1.RevokeFolderAccessResponse:
        self.backend.check()
        name = revoke_folder_access_request.username
        self.backend.members = [m for m in self.backend.members if m.username != name]
        return v1.RevokeFolderAccessResponse()

    async def list_folder_access(
        self, list_folder_access_request: v1.ListFolderAccessRequest
    ) -> v1.ListFolderAccessResponse:
        self.backend.check()
        return v1.ListFolderAccessResponse(members=self.backend.members)


class FakeModels(v1.ModelServiceBase):
    """Models and version metadata kept in lists."""

    def __init__(self, backend: Backend) -> None:
        self.backend = backend

    async def create_model(
        self, create_model_request: v1.CreateModelRequest
    ) -> v1.CreateModelResponse:
        self.backend.check()
        request = create_model_request
        model = v1.Model(
            id=MODEL_ID,
            folder_id=request.folder_id,
            name=request.name,
            description=request.description,
            creator_username="alice",
            create_time=CREATED,
        )
        self.backend.models.append(model)
        return v1.CreateModelResponse(model=model)

    async def get_model(self, get_model_request: v1.GetModelRequest) -> v1.GetModelResponse:
        self.backend.check()
        for model in self.backend.models:
            if model.id == get_model_request.model_id:
                return v1.GetModelResponse(model=model)
        raise grpc_error(Status.PERMISSION_DENIED, "no access", "FOLDER_ACCESS_DENIED")

    async def list_models(self, list_models_request: v1.ListModelsRequest) -> v1.ListModelsResponse:
        self.backend.check()
        wanted = list_models_request.folder_id
        models = [m for m in self.backend.models if not wanted or m.folder_id == wanted]
        return v1.ListModelsResponse(models=models)

    async def get_model_version(
        self, get_model_version_request: v1.GetModelVersionRequest
    ) -> v1.GetModelVersionResponse:
        self.backend.check()
        for version in self.backend.versions:
            if version.version == get_model_version_request.version:
                return v1.GetModelVersionResponse(version=version)
        raise grpc_error(Status.NOT_FOUND, "the model has no such version", "VERSION_NOT_FOUND")

    async def list_model_versions(
        self, list_model_versions_request: v1.ListModelVersionsRequest
    ) -> v1.ListModelVersionsResponse:
        self.backend.check()
        return v1.ListModelVersionsResponse(versions=self.backend.versions[::-1])


class WithTransfers:
    """The SDK client plus fake ``upload``/``download`` with the SDK's signatures."""

    def __init__(self, client: Client, backend: Backend) -> None:
        self._client = client
        self._backend = backend

    def __getattr__(self, name: str) -> Any:
        return getattr(self._client, name)

    async def upload(
        self,
        model_id: str,
        source: str | os.PathLike[str] | BinaryIO,
        *,
        file_name: str | None = None,
        content_type: str | None = None,
        description: str = "",
        labels: Mapping[str, str] | None = None,
        progress: ProgressCallback | None = None,
    ) -> v1.ModelVersion:
        """Store the file's bytes as the next version, reporting progress in two steps."""
        assert isinstance(source, str | os.PathLike)
        self._backend.transfers.append(
            {
                "op": "upload",
                "model_id": model_id,
                "source": source,
                "content_type": content_type,
                "description": description,
                "labels": dict(labels or {}),
                "progress": progress,
            }
        )
        if self._backend.transfer_error is not None:
            raise self._backend.transfer_error
        data = Path(source).read_bytes()
        if progress is not None:
            progress(len(data) // 2, len(data))
            progress(len(data), len(data))
        number = len(self._backend.versions) + 1
        version = v1.ModelVersion(
            model_id=model_id,
            version=number,
            file_name=file_name or Path(source).name,
            content_type=content_type or "application/octet-stream",
            size_bytes=len(data),
            sha256=hashlib.sha256(data).hexdigest(),
            description=description,
            labels=dict(labels or {}),
            creator_username="alice",
            create_time=CREATED,
        )
        self._backend.versions.append(version)
        self._backend.blobs[number] = data
        return version

    async def download(
        self,
        model_id: str,
        version: int,
        destination: str | os.PathLike[str],
        *,
        resume: bool = True,
        progress: ProgressCallback | None = None,
    ) -> v1.ModelVersion:
        """Write the stored bytes of a version to ``destination``."""
        self._backend.transfers.append(
            {
                "op": "download",
                "model_id": model_id,
                "version": version,
                "destination": Path(destination),
                "resume": resume,
                "progress": progress,
            }
        )
        if self._backend.transfer_error is not None:
            raise self._backend.transfer_error
        data = self._backend.blobs[version]
        Path(destination).write_bytes(data)
        if progress is not None:
            progress(len(data), len(data))
        return self._backend.versions[version - 1]


def digest_mismatch() -> DataLoss:
    """The error the SDK raises when a downloaded file's SHA-256 is wrong."""
    return DataLoss(Status.DATA_LOSS, "the SHA-256 of the downloaded bytes does not match")


class CliHarness:
    """Runs ``modelcatalog`` in-process against the fakes, with its own config folder."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
        self.backend = Backend()
        self.tmp_path = tmp_path
        self.config_home = tmp_path / "xdg"
        self.config_file = self.config_home / "modelcatalog" / "config.json"
        monkeypatch.setenv("XDG_CONFIG_HOME", str(self.config_home))
        for name in ENV_VARS:
            monkeypatch.delenv(name, raising=False)
        monkeypatch.chdir(tmp_path)
        monkeypatch.setattr(_app, "open_client", self.open_client)

    def open_client(self, settings: Settings) -> AbstractAsyncContextManager[_app.CatalogClient]:
        """The factory the CLI calls: the SDK over an in-memory channel to the fakes."""
        backend = self.backend
        backend.settings.append(settings)

        @asynccontextmanager
        async def connect() -> AsyncIterator[_app.CatalogClient]:
            services = (FakeAuth(backend), FakeFolders(backend), FakeModels(backend))
            async with ChannelFor(services) as channel:

                async def record(event: SendRequest) -> None:
                    backend.authorization.append(event.metadata.get("authorization"))

                listen(channel, SendRequest, record)
                client = Client.from_channel(channel, token=settings.token)
                yield cast(_app.CatalogClient, WithTransfers(client, backend))

        return connect()

    def run(self, *args: str, input: str | None = None) -> Result:
        """Invoke the CLI with ``args``; stdout and stderr are kept apart."""
        return CliRunner().invoke(cli, list(args), input=input, prog_name="modelcatalog")

    def login(self, username: str = "alice", password: str = "secret-password") -> Result:
        """Create the account in the fake and log in with --password-stdin."""
        self.backend.passwords[username] = password
        return self.run("login", username, "--password-stdin", input=password + "\n")
