"""The async client: one method per RPC, typed errors, and list methods that hide paging."""

import os
import ssl
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Iterator, Mapping
from contextlib import contextmanager
from types import TracebackType
from typing import Protocol, Self, TypeVar

from grpclib.client import Channel
from grpclib.const import Status
from grpclib.exceptions import GRPCError, StreamTerminatedError

from . import v1
from ._exceptions import DeadlineExceeded, Unavailable, from_grpc_error
from ._transport import open_channel

_ROLES: dict[str, v1.FolderRole] = {
    name: v1.FolderRole[name.upper()] for name in ("viewer", "editor", "owner")
}

_Request_contra = TypeVar("_Request_contra", contravariant=True)
_Response_co = TypeVar("_Response_co", covariant=True)


class _UnaryMethod(Protocol[_Request_contra, _Response_co]):
    """A unary method of a betterproto stub, e.g. ``AuthServiceStub.sign_in``."""

    def __call__(
        self,
        request: _Request_contra,
        /,
        *,
        timeout: float | None = ...,
        metadata: Mapping[str, str] | None = ...,
    ) -> Awaitable[_Response_co]: ...


class _PageRequest(Protocol):
    """A List request (AIP-158): the client sets the token of the page it wants."""

    page_token: str


class _PageResponse(Protocol):
    """A List response (AIP-158): an empty token marks the last page."""

    @property
    def next_page_token(self) -> str: ...


_Request = TypeVar("_Request")
_Response = TypeVar("_Response")
_PageRequestT = TypeVar("_PageRequestT", bound=_PageRequest)
_PageResponseT = TypeVar("_PageResponseT", bound=_PageResponse)
_Item = TypeVar("_Item")


def _folder_role(role: v1.FolderRole | str) -> v1.FolderRole:
    """Accept the role names people type as well as the enum, and refuse anything else early."""
    if isinstance(role, v1.FolderRole):
        return role
    try:
        return _ROLES[role]
    except KeyError:
        raise ValueError(f"role must be one of {', '.join(_ROLES)}, got {role!r}") from None


def _check_token(token: str | None) -> str | None:
    """Refuse tokens that cannot be sent as a header value, e.g. one read with its newline."""
    if token is not None and not (token.isascii() and token.isprintable() and " " not in token):
        raise ValueError("an access token is printable ASCII without spaces")
    return token


class Client:
    """An async connection to a modelcatalog server.

    Use it as ``async with Client("host:port", ca_cert=path) as client:``. Connections use
    TLS, verified against ``ca_cert`` or else the system trust store; plaintext needs
    ``insecure=True``. ``sign_in`` keeps the access token and sends it with every later RPC;
    pass ``token=`` to reuse one. ``timeout`` is each RPC's deadline in seconds (``None`` for
    none). Errors are raised as ``modelcatalog.ModelCatalogError`` subclasses.
    """

    def __init__(
        self,
        target: str,
        *,
        ca_cert: str | os.PathLike[str] | None = None,
        insecure: bool = False,
        token: str | None = None,
        timeout: float | None = 30.0,
    ) -> None:
        channel = open_channel(target, ca_cert=ca_cert, insecure=insecure)
        self._attach(channel, target=target, token=token, timeout=timeout, owns_channel=True)

    @classmethod
    def from_channel(
        cls, channel: Channel, *, token: str | None = None, timeout: float | None = 30.0
    ) -> Self:
        """A client over an existing channel, e.g. ``grpclib.testing.ChannelFor`` in tests.

        The caller keeps ownership of the channel: ``close`` leaves it open.
        """
        client = cls.__new__(cls)
        client._attach(channel, target=repr(channel), token=token, timeout=timeout)
        return client

    def _attach(
        self,
        channel: Channel,
        *,
        target: str,
        token: str | None,
        timeout: float | None,
        owns_channel: bool = False,
    ) -> None:
        self._channel = channel
        self._owns_channel = owns_channel
        self._target = target
        self._token = _check_token(token)
        self._timeout = timeout
        self._auth = v1.AuthServiceStub(channel)
        self._folders = v1.FolderServiceStub(channel)
        self._models = v1.ModelServiceStub(channel)

    @property
    def token(self) -> str | None:
        """The access token sent with every RPC, set by ``sign_in``; ``None`` before that."""
        return self._token

    @token.setter
    def token(self, token: str | None) -> None:
        self._token = _check_token(token)

    def close(self) -> None:
        """Close the connection, unless the channel was passed to ``from_channel``."""
        if self._owns_channel:
            self._channel.close()

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc_value: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()

    @contextmanager
    def _typed_errors(self) -> Iterator[None]:
        """Turn grpclib and socket errors into the SDK's typed errors, naming the server."""
        try:
            yield
        except GRPCError as error:
            raise from_grpc_error(error) from error
        except TimeoutError as error:  # grpclib's own deadline; caught before OSError, its base
            raise DeadlineExceeded(
                Status.DEADLINE_EXCEEDED, f"{self._target} did not answer within {self._timeout} s"
            ) from error
        except ssl.SSLCertVerificationError as error:
            raise Unavailable(
                Status.UNAVAILABLE,
                f"cannot verify the TLS certificate of {self._target}: {error};"
                " pass ca_cert= the CA certificate the server was set up with",
            ) from error
        except (OSError, StreamTerminatedError) as error:
            raise Unavailable(
                Status.UNAVAILABLE,
                f"cannot reach the modelcatalog server at {self._target}: {error}",
            ) from error

    async def _call(
        self, method: _UnaryMethod[_Request, _Response], request: _Request
    ) -> _Response:
        """Call a unary RPC with the token and deadline, raising typed errors."""
        metadata = {"authorization": f"Bearer {self._token}"} if self._token else None
        with self._typed_errors():
            return await method(request, timeout=self._timeout, metadata=metadata)

    async def _paginate(
        self,
        method: _UnaryMethod[_PageRequestT, _PageResponseT],
        request: _PageRequestT,
        items: Callable[[_PageResponseT], Iterable[_Item]],
    ) -> AsyncIterator[_Item]:
        """Yield the items of every page, requesting the next page only when it is needed."""
        while True:
            page = await self._call(method, request)
            for item in items(page):
                yield item
            if not page.next_page_token:
                return
            request.page_token = page.next_page_token

    async def sign_up(self, username: str, password: str) -> v1.User:
        """Create an account; it does not sign in."""
        request = v1.SignUpRequest(username=username, password=password)
        return (await self._call(self._auth.sign_up, request)).user

    async def sign_in(self, username: str, password: str) -> v1.SignInResponse:
        """Sign in and keep the access token for every later RPC of this client."""
        request = v1.SignInRequest(username=username, password=password)
        response = await self._call(self._auth.sign_in, request)
        self.token = response.access_token
        return response

    async def get_current_user(self) -> v1.User:
        """The account the token belongs to."""
        return (await self._call(self._auth.get_current_user, v1.GetCurrentUserRequest())).user

    async def create_folder(self, name: str, description: str = "") -> v1.Folder:
        """Create a folder owned by the caller."""
        request = v1.CreateFolderRequest(name=name, description=description)
        return (await self._call(self._folders.create_folder, request)).folder

    async def get_folder(self, folder_id: str) -> v1.Folder:
        """A folder on which the caller has any role."""
        request = v1.GetFolderRequest(folder_id=folder_id)
        return (await self._call(self._folders.get_folder, request)).folder

    def list_folders(self, page_size: int = 0) -> AsyncIterator[v1.Folder]:
        """Every folder on which the caller has any role, oldest first, fetched page by page."""
        request = v1.ListFoldersRequest(page_size=page_size)
        return self._paginate(self._folders.list_folders, request, lambda page: page.folders)

    async def grant_folder_access(
        self, folder_id: str, username: str, role: v1.FolderRole | str
    ) -> v1.FolderMember:
        """Give a user a role ("viewer", "editor", "owner" or a ``FolderRole``) in a folder."""
        request = v1.GrantFolderAccessRequest(
            folder_id=folder_id, username=username, role=_folder_role(role)
        )
        return (await self._call(self._folders.grant_folder_access, request)).member

    async def revoke_folder_access(self, folder_id: str, username: str) -> None:
        """Remove a user's role in a folder; succeeds if the user had none."""
        request = v1.RevokeFolderAccessRequest(folder_id=folder_id, username=username)
        await self._call(self._folders.revoke_folder_access, request)

    def list_folder_access(
        self, folder_id: str, page_size: int = 0
    ) -> AsyncIterator[v1.FolderMember]:
        """Who has which role in a folder, by username, fetched page by page."""
        request = v1.ListFolderAccessRequest(folder_id=folder_id, page_size=page_size)
        return self._paginate(self._folders.list_folder_access, request, lambda page: page.members)

    async def create_model(self, folder_id: str, name: str, description: str = "") -> v1.Model:
        """Create a model in a folder where the caller is editor or owner."""
        request = v1.CreateModelRequest(folder_id=folder_id, name=name, description=description)
        return (await self._call(self._models.create_model, request)).model

    async def get_model(self, model_id: str) -> v1.Model:
        """A model in a folder where the caller has any role."""
        request = v1.GetModelRequest(model_id=model_id)
        return (await self._call(self._models.get_model, request)).model

    def list_models(
        self, folder_id: str | None = None, page_size: int = 0
    ) -> AsyncIterator[v1.Model]:
        """The caller's models, oldest first, in one folder or all; fetched page by page."""
        request = v1.ListModelsRequest(folder_id=folder_id or "", page_size=page_size)
        return self._paginate(self._models.list_models, request, lambda page: page.models)

    async def get_model_version(self, model_id: str, version: int) -> v1.ModelVersion:
        """The metadata of one version of a model."""
        request = v1.GetModelVersionRequest(model_id=model_id, version=version)
        return (await self._call(self._models.get_model_version, request)).version

    def list_model_versions(
        self, model_id: str, page_size: int = 0
    ) -> AsyncIterator[v1.ModelVersion]:
        """The versions of a model, newest first, fetched page by page."""
        request = v1.ListModelVersionsRequest(model_id=model_id, page_size=page_size)
        return self._paginate(self._models.list_model_versions, request, lambda page: page.versions)
