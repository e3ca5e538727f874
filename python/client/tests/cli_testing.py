"""Test helpers for the CLI: small fake services behind ``ChannelFor`` and a CLI runner.

``CliHarness`` gives the CLI, through its ``State`` (Click's ``obj``), a client factory for the
SDK's ``AsyncClient`` over an in-memory channel to ``FakeAuth``/``FakeFolders``/``FakeModels``/
``FakeAudit`` (sharing one ``Backend``; uploads and downloads are the shared ``FakeTransfers``),
isolates the config folder in a temporary directory and runs commands with Click's
``CliRunner``.

A test module gets the ``new_harness`` and ``harness`` (logged in as alice) fixtures of
``cli_fixtures`` with ``pytest_plugins = ["cli_fixtures"]``.
"""

from collections.abc import AsyncIterator
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar

import pytest
from click.testing import CliRunner, Result
from grpclib.const import Status
from grpclib.events import SendRequest, listen
from grpclib.exceptions import GRPCError
from grpclib.testing import ChannelFor
from rpc_testing import FakeTransfers, grpc_error

from modelcatalog import AsyncClient, v1
from modelcatalog.cli import cli
from modelcatalog.cli._config import Settings
from modelcatalog.cli._context import ClientFactory, State

CREATED = datetime(2025, 1, 31, 9, 30, tzinfo=UTC)
FOLDER_ID = "0b7e5a9c-1111-4c4c-8d8d-000000000001"
MODEL_ID = "0b7e5a9c-2222-4c4c-8d8d-000000000002"
UNKNOWN_ID = "0b7e5a9c-9999-4c4c-8d8d-000000000009"
"""A well-formed id that no fake folder or model has."""
ENV_VARS = (
    "MODELCATALOG_SERVER",
    "MODELCATALOG_CA_CERT",
    "MODELCATALOG_INSECURE",
    "MODELCATALOG_TOKEN",
    "COLUMNS",
)


@dataclass
class Backend:
    """The state the fake services share, and what the tests make them do."""

    passwords: dict[str, str] = field(default_factory=dict)
    folders: list[v1.Folder] = field(default_factory=list)
    members: list[v1.FolderMember] = field(default_factory=list)
    models: list[v1.Model] = field(default_factory=list)
    versions: list[v1.ModelVersion] = field(default_factory=list)
    blobs: dict[int, bytes] = field(default_factory=dict)
    aliases: dict[str, int] = field(default_factory=dict)
    """The version each alias of the model points at, by name."""
    list_requests: list[tuple[str, str, str]] = field(default_factory=list)
    """What each ListModels / ListModelVersions asked for: ("models" or "versions", filter,
    order_by)."""
    held: dict[str, bytes] = field(default_factory=dict)
    """The bytes the server keeps of each broken upload, by request_id."""
    stored: dict[str, v1.ModelVersion] = field(default_factory=dict)
    """The version each upload with a request_id stored, by request_id."""
    audit_events: list[v1.AuditEvent] = field(default_factory=list)
    """What ListAuditEvents answers (one page)."""
    audit_requests: list[v1.ListAuditEventsRequest] = field(default_factory=list)
    feed: list[v1.CatalogEvent] = field(default_factory=list)
    """What a WatchEvents stream sends (after its opening message) before it is refused with
    PERMISSION_DENIED, which ends the CLI's watch."""
    error: GRPCError | None = None
    """Raised by every RPC while set."""
    authorization: list[str | bytes | None] = field(default_factory=list)
    """The authorization metadata of every RPC sent, in order."""
    signed_out: list[str | bytes | None] = field(default_factory=list)
    """The authorization metadata of every SignOut, in order."""
    settings: list[Settings] = field(default_factory=list)
    """The settings of every client the CLI opened, in order."""
    transfers: list[dict[str, Any]] = field(default_factory=list)
    """What every upload header and download request carried, in order."""
    explained: list[v1.ExplainAccessRequest] = field(default_factory=list)
    """Every ExplainAccess request, in order."""

    def check(self) -> None:
        if self.error is not None:
            raise self.error

    def user(self, username: str) -> v1.User:
        return v1.User(id=f"id-{username}", username=username, create_time=CREATED)


_Resource = TypeVar("_Resource", v1.Folder, v1.Model, v1.ModelVersion)


def edited(current: _Resource, sent: _Resource, paths: list[str]) -> _Resource:
    """``current`` with the fields ``paths`` names taken from ``sent`` and a new etag; ABORTED
    (ETAG_MISMATCH) when ``sent`` carries an etag other than ``current``'s, as the server."""
    if sent.etag and sent.etag != current.etag:
        raise grpc_error(Status.ABORTED, "the resource changed since", "ETAG_MISMATCH")
    changes = {path: getattr(sent, path) for path in paths}
    return replace(current, **changes, etag=f"{current.etag or 'etag'}+")


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

    async def sign_out(self, sign_out_request: v1.SignOutRequest) -> v1.SignOutResponse:
        self.backend.check()
        self.backend.signed_out.append(self.backend.authorization[-1])
        return v1.SignOutResponse()


class FakeFolders(v1.FolderServiceBase):
    """Folders kept in a list; anyone may see and change all of them, but the last owner
    among the members cannot be revoked. Each folder alice creates has a name of its own."""

    def __init__(self, backend: Backend) -> None:
        self.backend = backend

    async def create_folder(
        self, create_folder_request: v1.CreateFolderRequest
    ) -> v1.CreateFolderResponse:
        self.backend.check()
        name = create_folder_request.name
        if any(f.name == name and f.creator_username == "alice" for f in self.backend.folders):
            raise grpc_error(
                Status.ALREADY_EXISTS, f"you have a folder named {name!r}", "FOLDER_NAME_TAKEN"
            )
        folder = v1.Folder(
            id=FOLDER_ID.replace("0001", f"{len(self.backend.folders) + 1:04}"),
            name=create_folder_request.name,
            description=create_folder_request.description,
            creator_username="alice",
            create_time=CREATED,
            caller_role=v1.FolderRole.from_string("OWNER"),
            etag="etag",
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

    async def update_folder(
        self, update_folder_request: v1.UpdateFolderRequest
    ) -> v1.UpdateFolderResponse:
        self.backend.check()
        request = update_folder_request
        folders = self.backend.folders
        index = next(i for i, f in enumerate(folders) if f.id == request.folder.id)
        folders[index] = edited(folders[index], request.folder, request.update_mask.paths)
        return v1.UpdateFolderResponse(folder=folders[index])

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
            granted_by_username="alice",
        )
        self.backend.members.append(member)
        return v1.GrantFolderAccessResponse(member=member)

    async def revoke_folder_access(
        self, revoke_folder_access_request: v1.RevokeFolderAccessRequest
    ) -> v1.RevokeFolderAccessResponse:
        self.backend.check()
        name = revoke_folder_access_request.username
        owners = [m.username for m in self.backend.members if m.role == v1.FolderRole.OWNER]
        if owners == [name]:
            raise grpc_error(
                Status.FAILED_PRECONDITION, "the folder must keep an owner", "LAST_OWNER"
            )
        self.backend.members = [m for m in self.backend.members if m.username != name]
        return v1.RevokeFolderAccessResponse()

    async def list_folder_access(
        self, list_folder_access_request: v1.ListFolderAccessRequest
    ) -> v1.ListFolderAccessResponse:
        self.backend.check()
        return v1.ListFolderAccessResponse(members=self.backend.members)

    async def explain_access(
        self, explain_access_request: v1.ExplainAccessRequest
    ) -> v1.ExplainAccessResponse:
        """The member's role in the one folder there is (alice's when no username is sent)."""
        self.backend.check()
        request = explain_access_request
        self.backend.explained.append(request)
        username = request.username or "alice"
        grant = next((m for m in self.backend.members if m.username == username), None)
        if grant is None:
            return v1.ExplainAccessResponse(
                folder_id=FOLDER_ID, username=username, explanation=f"{username} has no role"
            )
        role = str(grant.role.name).lower()
        return v1.ExplainAccessResponse(
            folder_id=FOLDER_ID,
            username=username,
            role=grant.role,
            grant=grant,
            explanation=f"{username} is {role}, by {grant.granted_by_username}",
        )

    async def delete_folder(
        self, delete_folder_request: v1.DeleteFolderRequest
    ) -> v1.DeleteFolderResponse:
        self.backend.check()
        request = delete_folder_request
        if not any(f.id == request.folder_id for f in self.backend.folders):
            raise grpc_error(Status.PERMISSION_DENIED, "no access", "FOLDER_ACCESS_DENIED")
        held = [m.id for m in self.backend.models if m.folder_id == request.folder_id]
        if held and not request.force:
            raise grpc_error(
                Status.FAILED_PRECONDITION,
                f"the folder still holds {len(held)} model(s); delete them first, or delete"
                " the folder with force",
                "FOLDER_NOT_EMPTY",
            )
        versions = [v for v in self.backend.versions if v.model_id in held]
        self.backend.folders = [f for f in self.backend.folders if f.id != request.folder_id]
        self.backend.models = [m for m in self.backend.models if m.id not in held]
        self.backend.versions[:] = [v for v in self.backend.versions if v.model_id not in held]
        return v1.DeleteFolderResponse(deleted_models=len(held), deleted_versions=len(versions))


class FakeAudit(v1.AuditServiceBase):
    """The audit trail and the event feed, as the backend holds them."""

    def __init__(self, backend: Backend) -> None:
        self.backend = backend

    async def list_audit_events(
        self, list_audit_events_request: v1.ListAuditEventsRequest
    ) -> v1.ListAuditEventsResponse:
        self.backend.check()
        self.backend.audit_requests.append(list_audit_events_request)
        return v1.ListAuditEventsResponse(events=self.backend.audit_events)

    async def watch_events(
        self, watch_events_request: v1.WatchEventsRequest
    ) -> AsyncIterator[v1.WatchEventsResponse]:
        self.backend.check()
        yield v1.WatchEventsResponse(after_event_id=watch_events_request.after_event_id or 0)
        for event in self.backend.feed:
            yield v1.WatchEventsResponse(event=event, after_event_id=event.id)
        raise grpc_error(Status.PERMISSION_DENIED, "no access any more", "FOLDER_ACCESS_DENIED")


class FakeModels(FakeTransfers):
    """Models in a list, names unique per folder; versions, their files and transfers in the
    shared ``FakeTransfers``."""

    def __init__(self, backend: Backend) -> None:
        super().__init__(backend.versions, backend.blobs)
        self.aliases = backend.aliases
        self.held = backend.held
        self.stored = backend.stored
        self.backend = backend

    def store(self, data: bytes, file_name: str = "model.onnx", **fields: Any) -> v1.ModelVersion:
        """A new version, made by alice at ``CREATED``."""
        return super().store(
            data, file_name, creator_username="alice", create_time=CREATED, **fields
        )

    def check_upload(self, header: v1.UploadModelVersionHeader) -> None:
        self._record(
            "upload",
            model_id=header.model_id,
            file_name=header.file_name,
            content_type=header.content_type,
            description=header.description,
            labels=dict(header.labels),
            offset=header.offset,
        )

    def check_download(self, request: v1.DownloadModelVersionRequest) -> None:
        self._record(
            "download", model_id=request.model_id, version=request.version, offset=request.offset
        )

    def _record(self, op: str, **fields: Any) -> None:
        self.backend.check()
        self.backend.transfers.append({"op": op, **fields})

    async def create_model(
        self, create_model_request: v1.CreateModelRequest
    ) -> v1.CreateModelResponse:
        self.backend.check()
        request = create_model_request
        taken = [m for m in self.backend.models if m.folder_id == request.folder_id]
        if any(m.name == request.name for m in taken):
            raise grpc_error(
                Status.ALREADY_EXISTS,
                f"the folder has a model {request.name!r}",
                "MODEL_NAME_TAKEN",
            )
        model = v1.Model(
            id=MODEL_ID.replace("0002", f"{len(self.backend.models) + 2:04}"),
            folder_id=request.folder_id,
            name=request.name,
            description=request.description,
            creator_username="alice",
            create_time=CREATED,
            etag="etag",
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
        request = list_models_request
        self.backend.list_requests.append(("models", request.filter, request.order_by))
        wanted = list_models_request.folder_id
        models = [m for m in self.backend.models if not wanted or m.folder_id == wanted]
        return v1.ListModelsResponse(models=models)

    async def update_model(
        self, update_model_request: v1.UpdateModelRequest
    ) -> v1.UpdateModelResponse:
        self.backend.check()
        request = update_model_request
        models = self.backend.models
        index = next(i for i, m in enumerate(models) if m.id == request.model.id)
        models[index] = edited(models[index], request.model, request.update_mask.paths)
        return v1.UpdateModelResponse(model=models[index])

    async def update_model_version(
        self, update_model_version_request: v1.UpdateModelVersionRequest
    ) -> v1.UpdateModelVersionResponse:
        self.backend.check()
        request = update_model_version_request
        number = self.find(request.version.version).version
        versions = self.backend.versions
        versions[number - 1] = edited(
            versions[number - 1], request.version, request.update_mask.paths
        )
        return v1.UpdateModelVersionResponse(version=versions[number - 1])

    async def get_model_version(
        self, get_model_version_request: v1.GetModelVersionRequest
    ) -> v1.GetModelVersionResponse:
        self.backend.check()
        return await super().get_model_version(get_model_version_request)

    async def list_model_versions(
        self, list_model_versions_request: v1.ListModelVersionsRequest
    ) -> v1.ListModelVersionsResponse:
        self.backend.check()
        request = list_model_versions_request
        self.backend.list_requests.append(("versions", request.filter, request.order_by))
        return v1.ListModelVersionsResponse(versions=self.backend.versions[::-1])

    async def set_model_alias(
        self, set_model_alias_request: v1.SetModelAliasRequest
    ) -> v1.SetModelAliasResponse:
        """Aliases of every model in one ``aliases`` dict; a stated expectation must hold."""
        self.backend.check()
        request = set_model_alias_request
        self._expect(request.name, request.expected_version)
        self.find(request.version)
        self.aliases[request.name] = request.version
        return v1.SetModelAliasResponse(alias=self._alias(request.model_id, request.name))

    async def delete_model_alias(
        self, delete_model_alias_request: v1.DeleteModelAliasRequest
    ) -> v1.DeleteModelAliasResponse:
        self.backend.check()
        request = delete_model_alias_request
        self.find(0, request.name)
        self._expect(request.name, request.expected_version)
        del self.aliases[request.name]
        return v1.DeleteModelAliasResponse()

    async def list_model_aliases(
        self, list_model_aliases_request: v1.ListModelAliasesRequest
    ) -> v1.ListModelAliasesResponse:
        self.backend.check()
        model_id = list_model_aliases_request.model_id
        return v1.ListModelAliasesResponse(
            aliases=[self._alias(model_id, name) for name in sorted(self.aliases)]
        )

    def _alias(self, model_id: str, name: str) -> v1.ModelAlias:
        return v1.ModelAlias(
            model_id=model_id,
            name=name,
            version=self.aliases[name],
            update_time=CREATED,
            updater_username="alice",
        )

    def _expect(self, name: str, expected: int | None) -> None:
        current = self.aliases.get(name, 0)
        if expected is not None and expected != current:
            raise grpc_error(
                Status.ABORTED, f"alias {name!r} points at version {current}", "ALIAS_MOVED"
            )

    async def delete_model_version(
        self, delete_model_version_request: v1.DeleteModelVersionRequest
    ) -> v1.DeleteModelVersionResponse:
        self.backend.check()
        request = delete_model_version_request
        found = self.find(request.version)
        held = sorted(name for name, number in self.aliases.items() if number == request.version)
        if held and not request.force:
            raise grpc_error(
                Status.FAILED_PRECONDITION,
                f"version {request.version} is what alias(es) {', '.join(held)} point at; move"
                " or delete them first, or delete the version with force",
                "VERSION_HAS_ALIASES",
            )
        for name in held:
            del self.aliases[name]
        self.backend.versions.remove(found)
        return v1.DeleteModelVersionResponse(deleted_aliases=held)

    async def delete_model(
        self, delete_model_request: v1.DeleteModelRequest
    ) -> v1.DeleteModelResponse:
        self.backend.check()
        model_id = delete_model_request.model_id
        if not any(m.id == model_id for m in self.backend.models):
            raise grpc_error(Status.PERMISSION_DENIED, "no access", "FOLDER_ACCESS_DENIED")
        versions = [v for v in self.backend.versions if v.model_id == model_id]
        self.backend.models = [m for m in self.backend.models if m.id != model_id]
        self.backend.versions[:] = [v for v in self.backend.versions if v.model_id != model_id]
        return v1.DeleteModelResponse(deleted_versions=len(versions))


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
        self.connect: ClientFactory = self.open_client
        """The client factory commands get; a test may set the real one (``connect``)."""

    def open_client(self, settings: Settings) -> AbstractAsyncContextManager[AsyncClient]:
        """The factory the CLI calls: the SDK over an in-memory channel to the fakes."""
        backend = self.backend
        backend.settings.append(settings)

        @asynccontextmanager
        async def connect() -> AsyncIterator[AsyncClient]:
            services = (
                FakeAuth(backend),
                FakeFolders(backend),
                FakeModels(backend),
                FakeAudit(backend),
            )
            async with ChannelFor(services) as channel:

                async def record(event: SendRequest) -> None:
                    backend.authorization.append(event.metadata.get("authorization"))

                listen(channel, SendRequest, record)
                yield AsyncClient.from_channel(channel, token=settings.token)

        return connect()

    def state(self, *, in_shell: bool = False) -> State:
        """The state a run starts with: no flags yet, and the harness's client factory."""
        return State(in_shell=in_shell, connect=self.connect)

    def run(self, *args: str, input: str | None = None) -> Result:
        """Invoke the CLI with ``args``; stdout and stderr are kept apart."""
        return CliRunner().invoke(
            cli, list(args), input=input, prog_name="modelcatalog", obj=self.state()
        )

    def login(self, username: str = "alice", password: str = "secret-password") -> Result:
        """Create the account in the fake and log in with --password-stdin."""
        self.backend.passwords[username] = password
        return self.run("login", username, "--password-stdin", input=password + "\n")
