"""The async client: one method per RPC, typed errors, list methods that hide paging, retries of
calls that change nothing, and streaming upload and download of version files.

``Client`` (``_sync_client.py``) runs these same methods from synchronous code; each method is
written once, here.
"""

# ASYNC109 suggests asyncio.timeout over timeout parameters; a call's timeout here is also the
# deadline the server is told (grpc-timeout), which asyncio.timeout cannot send.
# ruff: noqa: ASYNC109

import asyncio
import os
import random
import ssl
import uuid
from collections.abc import (
    AsyncGenerator,
    AsyncIterator,
    Awaitable,
    Callable,
    Iterable,
    Iterator,
    Mapping,
    Sequence,
)
from contextlib import aclosing, contextmanager, suppress
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from types import EllipsisType, TracebackType
from typing import Any, BinaryIO, Protocol, Self, TypeVar, cast

import betterproto
from betterproto.lib.google.protobuf import FieldMask
from grpclib.client import Channel
from grpclib.const import Cardinality
from grpclib.exceptions import GRPCError, StreamTerminatedError
from grpclib.metadata import Deadline
from h2.exceptions import StreamClosedError

from . import v1
from ._exceptions import (
    Aborted,
    DeadlineExceeded,
    FailedPrecondition,
    OutOfRange,
    ServerError,
    StatusCode,
    Unavailable,
)
from ._files import (
    PartialDownload,
    UploadReader,
    destination_exists,
    download_name,
    guess_content_type,
    open_source,
)
from ._transport import from_grpc_error, open_channel

ProgressCallback = Callable[[int, int | None], None]
"""Called as ``progress(bytes_done, total_bytes)``: once when a transfer's stream starts, before
the first chunk, then after each chunk. The total is ``None`` when it is unknown (an upload from
a stream that cannot seek). A download's first call counts the bytes kept from an earlier,
interrupted download, so ``bytes_done > 0`` there means it resumes; a download that has to
start over after all reports ``0`` again. ``Client`` calls it in its event-loop thread."""

Timeout = float | None | EllipsisType
"""A call's ``timeout``: seconds, ``None`` for no deadline, or ``...`` (left out) for the
client's own ``timeout``."""

DEFAULT_RETRIES = 3
"""How many times a call that changes nothing is repeated after ``Unavailable``."""

DEFAULT_RETRY_BACKOFF = 0.25
"""Seconds of the longest wait before the first retry; each further retry may wait twice as
long, up to ``MAX_RETRY_BACKOFF``."""

MAX_RETRY_BACKOFF = 5.0
"""The longest wait between two retries, in seconds."""

_RESUME_RACES = frozenset({"UPLOAD_OFFSET_MISMATCH", "UPLOAD_IN_PROGRESS"})
"""Refusals of a resumed upload that asking the server again resolves."""


@dataclass(frozen=True)
class DownloadedFile:
    """What ``download`` saved: where, which version, and whether it resumed."""

    path: Path
    """The file the version was saved as: ``destination`` itself, or inside that folder under
    the version's file name."""
    version: v1.ModelVersion
    """The version's metadata, whose size and SHA-256 the saved file has."""
    resumed_from: int
    """How many bytes of an earlier, interrupted download were kept (0 when it started over)."""


UPLOAD_ROUTE = "/modelcatalog.v1.ModelService/UploadModelVersion"

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
        deadline: Deadline | None = ...,
        metadata: Mapping[str, str] | None = ...,
    ) -> Awaitable[_Response_co]: ...


class _ServerStreamingMethod(Protocol[_Request_contra, _Response_co]):
    """A server-streaming method of a betterproto stub, e.g. ``download_model_version``."""

    def __call__(
        self,
        request: _Request_contra,
        /,
        *,
        timeout: float | None = ...,
        metadata: Mapping[str, str] | None = ...,
    ) -> AsyncIterator[_Response_co]: ...


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


def _changes(**fields: object) -> dict[str, Any]:
    """The fields an update sets (those not ``None``), which are also its mask's paths."""
    changes = {name: value for name, value in fields.items() if value is not None}
    if not changes:
        raise ValueError(f"name at least one of {', '.join(fields)} to change")
    return changes


def _check_token(token: str | None) -> str | None:
    """Refuse tokens that cannot be sent as a header value, e.g. one read with its newline."""
    if token is not None and not (token.isascii() and token.isprintable() and " " not in token):
        raise ValueError("an access token is printable ASCII without spaces")
    return token


def _check_retries(retries: int, retry_backoff: float) -> tuple[int, float]:
    """Refuse a negative retry count or backoff, which would silently mean "never retry"."""
    if retries < 0 or retry_backoff < 0:
        raise ValueError("retries and retry_backoff must not be negative")
    return retries, retry_backoff


def backoff_delay(retry: int, retry_backoff: float) -> float:
    """Seconds to wait before retry number ``retry`` (1, 2, ...): exponential, with full jitter.

    As gRPC's retry design (A6): a random wait up to ``retry_backoff * 2 ** (retry - 1)``,
    capped at ``MAX_RETRY_BACKOFF``, so clients that lost the same server do not all come
    back at the same moment.
    """
    ceiling = min(retry_backoff * 2 ** (retry - 1), MAX_RETRY_BACKOFF)
    return random.uniform(0, ceiling)  # noqa: S311 -- spreads retries, guards no secret


def _may_succeed_later(error: Unavailable) -> bool:
    """Whether retrying can help: not when the server's TLS certificate is not trusted."""
    return not isinstance(error.__cause__, ssl.SSLError)


class AsyncClient:
    """An async connection to a modelcatalog server.

    Use it as ``async with AsyncClient("host:port", ca_cert=path) as client:``. Connections use
    TLS, verified against ``ca_cert`` or else the system trust store; plaintext needs
    ``insecure=True``. ``sign_in`` keeps the access token and sends it with every later RPC;
    pass ``token=`` to reuse one. Errors are raised as ``modelcatalog.ModelCatalogError``
    subclasses.

    ``timeout`` is each call's deadline in seconds (``None`` for none), retries included; each
    method's ``timeout=`` overrides it for that call. ``upload`` and ``download`` have no
    deadline: they take as long as the file needs.

    Calls that change nothing (the RPCs the contract marks ``NO_SIDE_EFFECTS``: ``get_*``,
    every page of ``list_*``, ``explain_access``, ``download``) are repeated up to ``retries``
    times in a row when they fail with ``Unavailable`` (a dropped connection, a server briefly
    out of reach), after a random wait that doubles each time (``backoff_delay``); a download
    resumes where its stream broke. The defaults wait at most 1.75 s in all: to ride out a
    server restart, raise ``retries`` (6 wait up to about 13 s).

    Calls that change something and carry a ``request_id`` (``create_*``,
    ``set_model_alias``, ``upload`` from a path) are repeated the same way: the server
    recognises the repeat and acts once; an upload is resumed from the bytes the server kept.
    Other changes (sign-up, sign-in and sign-out, ``update_*``, ``grant``/``revoke``,
    ``delete_*``) are never repeated: when the connection breaks the client cannot know
    whether the server acted (a repeated grant could undo what another owner changed
    meanwhile, and a repeated delete whose first attempt succeeded would fail with
    ``NotFound`` or ``PermissionDenied``), so the caller decides. ``ResourceExhausted`` is
    never retried either: its limits (sizes, storage, a sign-in throttle whose
    ``retry_after`` may be minutes) do not lift within a few retries; nor is a TLS
    certificate that fails verification.
    """

    def __init__(
        self,
        target: str,
        *,
        ca_cert: str | os.PathLike[str] | None = None,
        insecure: bool = False,
        token: str | None = None,
        timeout: float | None = 30.0,
        retries: int = DEFAULT_RETRIES,
        retry_backoff: float = DEFAULT_RETRY_BACKOFF,
    ) -> None:
        retry_policy = _check_retries(retries, retry_backoff)
        channel = open_channel(target, ca_cert=ca_cert, insecure=insecure)
        self._attach(
            channel,
            target=target,
            token=token,
            timeout=timeout,
            retry_policy=retry_policy,
            owns_channel=True,
        )

    @classmethod
    def from_channel(
        cls,
        channel: Channel,
        *,
        token: str | None = None,
        timeout: float | None = 30.0,
        retries: int = DEFAULT_RETRIES,
        retry_backoff: float = DEFAULT_RETRY_BACKOFF,
    ) -> Self:
        """A client over an existing channel, e.g. ``grpclib.testing.ChannelFor`` in tests.

        The caller keeps ownership of the channel: ``close`` leaves it open.
        """
        client = cls.__new__(cls)
        client._attach(
            channel,
            target=repr(channel),
            token=token,
            timeout=timeout,
            retry_policy=_check_retries(retries, retry_backoff),
        )
        return client

    def _attach(
        self,
        channel: Channel,
        *,
        target: str,
        token: str | None,
        timeout: float | None,
        retry_policy: tuple[int, float],
        owns_channel: bool = False,
    ) -> None:
        self._channel = channel
        self._owns_channel = owns_channel
        self._target = target
        self._token = _check_token(token)
        self._timeout = timeout
        self._retries, self._retry_backoff = retry_policy
        self._auth = v1.AuthServiceStub(channel)
        self._folders = v1.FolderServiceStub(channel)
        self._models = v1.ModelServiceStub(channel)
        self._audit = v1.AuditServiceStub(channel)

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
    def _typed_errors(self, timeout: float | None = None) -> Iterator[None]:
        """Turn grpclib and socket errors into the SDK's typed errors, naming the server."""
        try:
            yield
        except GRPCError as error:
            raise from_grpc_error(error) from None  # grpclib's frames are no help to callers
        except TimeoutError as error:  # grpclib's own deadline; caught before OSError, its base
            raise DeadlineExceeded(
                StatusCode.DEADLINE_EXCEEDED,
                f"{self._target} did not answer within {timeout} s",
            ) from error
        except ssl.SSLCertVerificationError as error:
            raise Unavailable(
                StatusCode.UNAVAILABLE,
                f"cannot verify the TLS certificate of {self._target}: {error};"
                " pass ca_cert= the CA certificate the server was set up with",
            ) from error
        except (OSError, StreamTerminatedError) as error:
            raise Unavailable(
                StatusCode.UNAVAILABLE,
                f"cannot reach the modelcatalog server at {self._target}: {error}",
            ) from error

    def _metadata(self) -> dict[str, str] | None:
        """The token as call metadata, or nothing before sign-in."""
        return {"authorization": f"Bearer {self._token}"} if self._token else None

    async def _call(
        self,
        method: _UnaryMethod[_Request, _Response],
        request: _Request,
        *,
        timeout: Timeout,
        retry: bool = False,
    ) -> _Response:
        """Call an RPC that answers once, with the token and deadline, raising typed errors.

        With ``retry`` (for RPCs that change nothing), ``Unavailable`` is retried within the
        same deadline.
        """
        seconds = self._timeout if timeout is ... else timeout
        deadline = None if seconds is None else Deadline.from_timeout(seconds)

        async def attempt() -> _Response:
            with self._typed_errors(seconds):
                return await method(request, deadline=deadline, metadata=self._metadata())

        return await self._retrying(attempt, deadline=deadline) if retry else await attempt()

    async def _retrying(
        self,
        attempt: Callable[[], Awaitable[_Response]],
        *,
        deadline: Deadline | None = None,
        done: Callable[[], int] = lambda: 0,
    ) -> _Response:
        """Run ``attempt`` again after ``Unavailable``, at most ``retries`` times in a row.

        ``done`` measures the work kept between attempts (a download's bytes): an attempt
        that added to it starts a new row of retries. No retry starts after ``deadline``.
        """
        failures = 0
        while True:
            before = done()
            try:
                return await attempt()
            except Unavailable as error:
                failures = 1 if done() > before else failures + 1
                delay = backoff_delay(failures, self._retry_backoff)
                if (
                    failures > self._retries
                    or not _may_succeed_later(error)
                    or (deadline is not None and deadline.time_remaining() <= delay)
                ):
                    raise
            await asyncio.sleep(delay)

    async def _send_upload(
        self, requests: AsyncIterator[v1.UploadModelVersionRequest]
    ) -> v1.UploadModelVersionResponse:
        """Stream an upload without a deadline (its duration grows with the file).

        The server may answer before it has read everything, for example to refuse a file
        that is too large; sending then fails on the closed stream, and the server's status,
        read next, is what the caller gets.
        """
        with self._typed_errors():
            async with self._channel.request(
                UPLOAD_ROUTE,
                Cardinality.STREAM_UNARY,
                v1.UploadModelVersionRequest,
                v1.UploadModelVersionResponse,
                metadata=self._metadata(),
            ) as stream:
                await stream.send_request()
                with suppress(StreamClosedError, StreamTerminatedError):
                    async for request in requests:
                        await stream.send_message(request)
                    await stream.end()
                response = await stream.recv_message()
        assert response is not None
        return response

    async def _stream(
        self, method: _ServerStreamingMethod[_Request, _Response], request: _Request
    ) -> AsyncGenerator[_Response, None]:
        """Yield the answers of a server-streaming transfer: token, no deadline, typed errors.

        Only receiving is wrapped, so errors of the caller's own work between answers (a full
        disk) stay what they are instead of becoming ``Unavailable``.
        """
        # betterproto's stub methods are async generators; closing this one with ours resets
        # the HTTP/2 stream as soon as the caller stops reading.
        responses = cast(
            AsyncGenerator[_Response, None],
            method(request, timeout=None, metadata=self._metadata()),
        )
        with self._typed_errors():
            async with aclosing(responses):
                async for response in responses:
                    yield response

    async def _paginate(
        self,
        method: _UnaryMethod[_PageRequestT, _PageResponseT],
        request: _PageRequestT,
        items: Callable[[_PageResponseT], Iterable[_Item]],
        timeout: Timeout,
    ) -> AsyncIterator[_Item]:
        """Yield the items of every page, requesting the next page only when it is needed."""
        while True:
            page = await self._call(method, request, timeout=timeout, retry=True)
            for item in items(page):
                yield item
            if not page.next_page_token:
                return
            request.page_token = page.next_page_token

    async def sign_up(self, username: str, password: str, *, timeout: Timeout = ...) -> v1.User:
        """Create an account; it does not sign in."""
        request = v1.SignUpRequest(username=username, password=password)
        return (await self._call(self._auth.sign_up, request, timeout=timeout)).user

    async def sign_in(
        self, username: str, password: str, *, timeout: Timeout = ...
    ) -> v1.SignInResponse:
        """Sign in and keep the access token for every later RPC of this client."""
        request = v1.SignInRequest(username=username, password=password)
        response = await self._call(self._auth.sign_in, request, timeout=timeout)
        self.token = response.access_token
        return response

    async def get_current_user(self, *, timeout: Timeout = ...) -> v1.User:
        """The account the token belongs to."""
        request = v1.GetCurrentUserRequest()
        return (
            await self._call(self._auth.get_current_user, request, timeout=timeout, retry=True)
        ).user

    async def sign_out(self, *, timeout: Timeout = ...) -> None:
        """Revoke the access token on the server, then forget it.

        The token is forgotten even when the call fails (the error is raised after that): an
        ``Unauthenticated`` error means the server no longer accepts it anyway; after any other
        error it may stay valid until it expires.
        """
        try:
            await self._call(self._auth.sign_out, v1.SignOutRequest(), timeout=timeout)
        finally:
            self.token = None

    async def create_access_token(
        self,
        name: str,
        ttl_seconds: int,
        *,
        read_only: bool,
        folder_ids: Sequence[str] = (),
        timeout: Timeout = ...,
    ) -> v1.CreateAccessTokenResponse:
        """Create an access token for a machine, acting for the caller until ``ttl_seconds``
        from now: read-only or read-write, limited to ``folder_ids`` if any are given.

        The response's ``secret`` is shown this once: pass it as ``token=`` to a client (or
        set ``MODELCATALOG_TOKEN`` for the CLI). Needs a sign-in token. Not retried.
        """
        scope = v1.AccessTokenScope.READ if read_only else v1.AccessTokenScope.READ_WRITE
        request = v1.CreateAccessTokenRequest(
            name=name,
            scope=v1.AccessTokenScope(scope),
            folder_ids=list(folder_ids),
            ttl_seconds=ttl_seconds,
        )
        return await self._call(self._auth.create_access_token, request, timeout=timeout)

    def list_access_tokens(
        self, page_size: int = 0, *, timeout: Timeout = ...
    ) -> AsyncIterator[v1.AccessToken]:
        """The caller's unexpired access tokens by name, without their secrets."""
        request = v1.ListAccessTokensRequest(page_size=page_size)
        return self._paginate(
            self._auth.list_access_tokens, request, lambda page: page.access_tokens, timeout
        )

    async def revoke_access_token(self, access_token_id: str, *, timeout: Timeout = ...) -> None:
        """End one of the caller's access tokens; revoking one that is gone does nothing.
        Not retried, like every change without a request_id."""
        request = v1.RevokeAccessTokenRequest(access_token_id=access_token_id)
        await self._call(self._auth.revoke_access_token, request, timeout=timeout)

    async def change_password(
        self, current_password: str, new_password: str, *, timeout: Timeout = ...
    ) -> v1.ChangePasswordResponse:
        """Replace the password; every sign-in token ends, and this client keeps the new one
        the response carries. Access tokens keep working."""
        request = v1.ChangePasswordRequest(
            current_password=current_password, new_password=new_password
        )
        response = await self._call(self._auth.change_password, request, timeout=timeout)
        self.token = response.access_token
        return response

    async def sign_out_everywhere(self, *, timeout: Timeout = ...) -> None:
        """End every sign-in token of the account, this client's included, then forget it.
        Access tokens keep working: revoke them with ``revoke_access_token``."""
        request = v1.SignOutEverywhereRequest()
        await self._call(self._auth.sign_out_everywhere, request, timeout=timeout)
        self.token = None

    async def delete_account(self, password: str, *, timeout: Timeout = ...) -> None:
        """Delete the caller's account, then forget the token.

        Refused (``FailedPrecondition``, reason ``ACCOUNT_OWNS_FOLDERS``) while the account is
        the only owner of folders that hold models or have other members.
        """
        request = v1.DeleteAccountRequest(password=password)
        await self._call(self._auth.delete_account, request, timeout=timeout)
        self.token = None

    async def create_folder(
        self,
        name: str,
        description: str = "",
        *,
        request_id: str | None = None,
        timeout: Timeout = ...,
    ) -> v1.Folder:
        """Create a folder owned by the caller.

        Retried on ``Unavailable`` like a read: the call carries a ``request_id`` (a new
        random one unless given), so the server creates the folder once however often it is
        sent. Pass your own to make a retry by a restarted program count once too.
        """
        request = v1.CreateFolderRequest(
            name=name, description=description, request_id=request_id or new_request_id()
        )
        return (
            await self._call(self._folders.create_folder, request, timeout=timeout, retry=True)
        ).folder

    async def get_folder(self, folder_id: str, *, timeout: Timeout = ...) -> v1.Folder:
        """A folder on which the caller has any role."""
        request = v1.GetFolderRequest(folder_id=folder_id)
        return (
            await self._call(self._folders.get_folder, request, timeout=timeout, retry=True)
        ).folder

    def list_folders(
        self, page_size: int = 0, *, timeout: Timeout = ...
    ) -> AsyncIterator[v1.Folder]:
        """Every folder on which the caller has any role, oldest first, fetched page by page.

        ``timeout`` applies to each page's request.
        """
        request = v1.ListFoldersRequest(page_size=page_size)
        return self._paginate(
            self._folders.list_folders, request, lambda page: page.folders, timeout
        )

    async def update_folder(
        self,
        folder_id: str,
        *,
        name: str | None = None,
        description: str | None = None,
        etag: str | None = None,
        timeout: Timeout = ...,
    ) -> v1.Folder:
        """Rename a folder or change its description (owners only); the arguments left out
        keep their values. ``ValueError`` when all are left out.

        With ``etag`` (a ``Folder.etag`` read earlier) the change is made only if nobody
        changed the folder since, otherwise ``Aborted`` (reason ``ETAG_MISMATCH``) is raised
        and nothing changes. A new name must be free among its creator's folders
        (``AlreadyExists``). Not retried.
        """
        fields = _changes(name=name, description=description)
        request = v1.UpdateFolderRequest(
            folder=v1.Folder(id=folder_id, etag=etag or "", **fields),
            update_mask=FieldMask(list(fields)),
        )
        return (await self._call(self._folders.update_folder, request, timeout=timeout)).folder

    async def grant_folder_access(
        self, folder_id: str, username: str, role: v1.FolderRole | str, *, timeout: Timeout = ...
    ) -> v1.FolderMember:
        """Give a user a role ("viewer", "editor", "owner" or a ``FolderRole``) in a folder."""
        request = v1.GrantFolderAccessRequest(
            folder_id=folder_id, username=username, role=_folder_role(role)
        )
        return (
            await self._call(self._folders.grant_folder_access, request, timeout=timeout)
        ).member

    async def revoke_folder_access(
        self, folder_id: str, username: str, *, timeout: Timeout = ...
    ) -> None:
        """Remove a user's role in a folder (owners; anyone for themself); succeeds if none."""
        request = v1.RevokeFolderAccessRequest(folder_id=folder_id, username=username)
        await self._call(self._folders.revoke_folder_access, request, timeout=timeout)

    async def leave_folder(self, folder_id: str, *, timeout: Timeout = ...) -> None:
        """Give up the caller's own role in a folder, whatever it is.

        The last owner cannot leave (``FailedPrecondition``, reason ``LAST_OWNER``). It takes
        two calls, each with ``timeout``.
        """
        me = await self.get_current_user(timeout=timeout)
        await self.revoke_folder_access(folder_id, me.username, timeout=timeout)

    def list_folder_access(
        self, folder_id: str, page_size: int = 0, *, timeout: Timeout = ...
    ) -> AsyncIterator[v1.FolderMember]:
        """Who has which role in a folder, by username, fetched page by page."""
        request = v1.ListFolderAccessRequest(folder_id=folder_id, page_size=page_size)
        return self._paginate(
            self._folders.list_folder_access, request, lambda page: page.members, timeout
        )

    async def explain_access(
        self,
        folder_id: str | None = None,
        *,
        model_id: str | None = None,
        username: str = "",
        access_token_id: str = "",
        timeout: Timeout = ...,
    ) -> v1.ExplainAccessResponse:
        """Which role ``username`` (the caller when empty) has in a folder, or in a model's
        folder, and the grant that gives it (``grant``: who granted it, when; unset without
        access). Owners ask about anyone, other members only about themselves. Name exactly
        one of ``folder_id`` and ``model_id``. With ``access_token_id`` (one of the caller's
        tokens), or when called with an access token, the role is capped by that token's
        scope and ``access_token`` describes it."""
        if folder_id is not None and model_id is None:
            request = v1.ExplainAccessRequest(
                folder_id=folder_id, username=username, access_token_id=access_token_id
            )
        elif model_id is not None and folder_id is None:
            request = v1.ExplainAccessRequest(
                model_id=model_id, username=username, access_token_id=access_token_id
            )
        else:
            raise ValueError("name exactly one of folder_id and model_id")
        return await self._call(self._folders.explain_access, request, timeout=timeout, retry=True)

    async def delete_folder(
        self, folder_id: str, *, force: bool = False, timeout: Timeout = ...
    ) -> v1.DeleteFolderResponse:
        """Delete a folder and everyone's access to it (owners only).

        A folder that still holds models raises ``FailedPrecondition`` (reason
        ``FOLDER_NOT_EMPTY``, ``metadata["models"]`` how many) unless ``force``, which deletes
        its models with their versions and aliases too. The reply counts what went. A folder
        deleted already raises ``PermissionDenied``, as one the caller never saw.
        """
        request = v1.DeleteFolderRequest(folder_id=folder_id, force=force)
        return await self._call(self._folders.delete_folder, request, timeout=timeout)

    async def create_model(
        self,
        folder_id: str,
        name: str,
        description: str = "",
        *,
        request_id: str | None = None,
        timeout: Timeout = ...,
    ) -> v1.Model:
        """Create a model in a folder where the caller is editor or owner; retried on
        ``Unavailable`` with one ``request_id``, as ``create_folder``."""
        request = v1.CreateModelRequest(
            folder_id=folder_id,
            name=name,
            description=description,
            request_id=request_id or new_request_id(),
        )
        return (
            await self._call(self._models.create_model, request, timeout=timeout, retry=True)
        ).model

    async def get_model(self, model_id: str, *, timeout: Timeout = ...) -> v1.Model:
        """A model in a folder where the caller has any role."""
        request = v1.GetModelRequest(model_id=model_id)
        return (
            await self._call(self._models.get_model, request, timeout=timeout, retry=True)
        ).model

    def list_models(
        self,
        folder_id: str | None = None,
        page_size: int = 0,
        *,
        filter: str = "",
        order_by: str = "",
        timeout: Timeout = ...,
    ) -> AsyncIterator[v1.Model]:
        """The caller's models, in one folder or all; fetched page by page.

        ``filter`` selects models by name, folder, label or creation time, e.g.
        ``'name : "bert" AND labels.stage = "prod"'``; ``order_by`` is ``"create_time"``
        (oldest first, the default), ``"create_time desc"``, ``"name"`` or ``"name desc"``.
        The syntax is in ``ListModelsRequest``'s comments in the contract.
        """
        request = v1.ListModelsRequest(
            folder_id=folder_id or "", page_size=page_size, filter=filter, order_by=order_by
        )
        return self._paginate(self._models.list_models, request, lambda page: page.models, timeout)

    async def update_model(
        self,
        model_id: str,
        *,
        name: str | None = None,
        description: str | None = None,
        etag: str | None = None,
        timeout: Timeout = ...,
    ) -> v1.Model:
        """Rename a model or change its description (editor or owner of its folder); the
        arguments left out keep their values. ``ValueError`` when all are left out.

        With ``etag`` (a ``Model.etag`` read earlier) the change is made only if nobody
        changed the model since, otherwise ``Aborted`` (reason ``ETAG_MISMATCH``) is raised
        and nothing changes. A new name must be free in its folder (``AlreadyExists``). Not
        retried.
        """
        fields = _changes(name=name, description=description)
        request = v1.UpdateModelRequest(
            model=v1.Model(id=model_id, etag=etag or "", **fields),
            update_mask=FieldMask(list(fields)),
        )
        return (await self._call(self._models.update_model, request, timeout=timeout)).model

    async def get_model_version(
        self, model_id: str, version: int | str, *, timeout: Timeout = ...
    ) -> v1.ModelVersion:
        """The metadata of one version of a model: ``version`` is its number, or the name of
        an alias that points at it (``"production"``)."""
        number, alias = _version_or_alias(version)
        request = v1.GetModelVersionRequest(model_id=model_id, version=number, alias=alias)
        return (
            await self._call(self._models.get_model_version, request, timeout=timeout, retry=True)
        ).version

    def list_model_versions(
        self,
        model_id: str,
        page_size: int = 0,
        *,
        filter: str = "",
        order_by: str = "",
        timeout: Timeout = ...,
    ) -> AsyncIterator[v1.ModelVersion]:
        """The versions of a model, fetched page by page: newest first, or oldest first with
        ``order_by="version"``; ``filter`` selects by label or creation time, e.g.
        ``'labels.stage = "prod" AND create_time >= "2026-11-01T00:00:00Z"'``."""
        request = v1.ListModelVersionsRequest(
            model_id=model_id, page_size=page_size, filter=filter, order_by=order_by
        )
        return self._paginate(
            self._models.list_model_versions, request, lambda page: page.versions, timeout
        )

    async def update_model_version(
        self,
        model_id: str,
        version: int,
        *,
        description: str | None = None,
        labels: Mapping[str, str] | None = None,
        etag: str | None = None,
        timeout: Timeout = ...,
    ) -> v1.ModelVersion:
        """Change a version's description or labels (editor or owner of the model's folder);
        the arguments left out keep their values. ``labels`` replaces every label (``{}``
        removes them all). Its bytes, file name and digest never change. ``ValueError`` when
        all are left out.

        With ``etag`` (a ``ModelVersion.etag`` read earlier) the change is made only if
        nobody changed the version since, otherwise ``Aborted`` (reason ``ETAG_MISMATCH``)
        is raised and nothing changes: read it again to add a label without losing one added
        meanwhile. Not retried.
        """
        fields = _changes(description=description, labels=None if labels is None else dict(labels))
        request = v1.UpdateModelVersionRequest(
            version=v1.ModelVersion(model_id=model_id, version=version, etag=etag or "", **fields),
            update_mask=FieldMask(list(fields)),
        )
        return (
            await self._call(self._models.update_model_version, request, timeout=timeout)
        ).version

    async def set_model_alias(
        self,
        model_id: str,
        name: str,
        version: int,
        *,
        expected_version: int | None = None,
        request_id: str | None = None,
        timeout: Timeout = ...,
    ) -> v1.ModelAlias:
        """Point an alias of a model at one of its versions, creating or moving it (editor or
        owner of the model's folder).

        With ``expected_version`` the change is a compare-and-swap: made only if the alias
        points at that version now (``0``: only if the alias does not exist yet), otherwise
        ``Aborted`` (reason ``ALIAS_MOVED``) is raised and nothing changes; its
        ``metadata["current_version"]`` says where the alias points ("0": nowhere). Retried
        on ``Unavailable`` with one ``request_id``, as ``create_folder``: a repeat of a move
        that was made returns the alias instead of failing its expectation.
        """
        request = v1.SetModelAliasRequest(
            model_id=model_id,
            name=name,
            version=version,
            request_id=request_id or new_request_id(),
        )
        if expected_version is not None:
            request.expected_version = expected_version
        return (
            await self._call(self._models.set_model_alias, request, timeout=timeout, retry=True)
        ).alias

    async def delete_model_alias(
        self,
        model_id: str,
        name: str,
        *,
        expected_version: int | None = None,
        timeout: Timeout = ...,
    ) -> None:
        """Remove an alias of a model; its version stays. With ``expected_version``, only if
        the alias points at that version now, else ``Aborted`` (reason ``ALIAS_MOVED``)."""
        request = v1.DeleteModelAliasRequest(model_id=model_id, name=name)
        if expected_version is not None:
            request.expected_version = expected_version
        await self._call(self._models.delete_model_alias, request, timeout=timeout)

    def list_model_aliases(
        self, model_id: str, page_size: int = 0, *, timeout: Timeout = ...
    ) -> AsyncIterator[v1.ModelAlias]:
        """The aliases of a model, by name, fetched page by page."""
        request = v1.ListModelAliasesRequest(model_id=model_id, page_size=page_size)
        return self._paginate(
            self._models.list_model_aliases, request, lambda page: page.aliases, timeout
        )

    async def delete_model_version(
        self, model_id: str, version: int, *, force: bool = False, timeout: Timeout = ...
    ) -> v1.DeleteModelVersionResponse:
        """Delete one version of a model (editor or owner); its number is never given again.

        A version that aliases point at raises ``FailedPrecondition`` (reason
        ``VERSION_HAS_ALIASES``, ``metadata["aliases"]`` their names, comma-separated) unless
        ``force``, which deletes those aliases too; the reply names them. A version deleted
        already raises ``NotFound``.
        """
        request = v1.DeleteModelVersionRequest(model_id=model_id, version=version, force=force)
        return await self._call(self._models.delete_model_version, request, timeout=timeout)

    async def delete_model(
        self, model_id: str, *, timeout: Timeout = ...
    ) -> v1.DeleteModelResponse:
        """Delete a model with all its versions and aliases (owners of its folder only); the
        reply counts the versions. A model deleted already raises ``PermissionDenied``, as one
        the caller never saw."""
        request = v1.DeleteModelRequest(model_id=model_id)
        return await self._call(self._models.delete_model, request, timeout=timeout)

    def list_audit_events(
        self,
        folder_id: str | None = None,
        page_size: int = 0,
        *,
        actor: str = "",
        action: str = "",
        resource: str = "",
        start_time: datetime | None = None,
        end_time: datetime | None = None,
        timeout: Timeout = ...,
    ) -> AsyncIterator[v1.AuditEvent]:
        """Recorded events, newest first, fetched page by page: a folder's (its owners only)
        with ``folder_id``, else the caller's own (their calls, and failed sign-ins to their
        account). ``actor`` (a username), ``action`` (an RPC name such as
        ``"DownloadModelVersion"``), ``resource`` (e.g. ``"models/ID/versions/3"``) and the
        times (from ``start_time``, before ``end_time``) narrow the list."""
        request = v1.ListAuditEventsRequest(
            folder_id=folder_id or "",
            actor=actor,
            action=action,
            resource=resource,
            page_size=page_size,
        )
        if start_time is not None:
            request.start_time = start_time
        if end_time is not None:
            request.end_time = end_time
        return self._paginate(
            self._audit.list_audit_events, request, lambda page: page.events, timeout
        )

    async def watch_events(
        self,
        folder_id: str | None = None,
        *,
        alias: str = "",
        after_event_id: int | None = None,
    ) -> AsyncIterator[v1.CatalogEvent]:
        """Changes in the folders the caller has a role in (or in ``folder_id``), as they are
        committed, in order, for as long as the caller keeps reading: new versions, alias
        moves, grants, deletions; with ``alias``, only the moves and deletions of that alias.

        Starts with the next change from now, or after ``after_event_id`` (an event's ``id``)
        to catch up on what happened meanwhile. When the connection breaks (``Unavailable``:
        a server restart, a network blip) the stream is opened again after the last position
        received, so no event is missed or repeated; up to ``retries`` times in a row, with
        the usual backoff, counted again from 0 once a stream has delivered something. No
        deadline applies."""
        position = after_event_id
        failures = 0
        while True:
            request = v1.WatchEventsRequest(folder_id=folder_id or "", alias=alias)
            if position is not None:
                request.after_event_id = position
            try:
                async for message in self._stream(self._audit.watch_events, request):
                    failures = 0
                    position = message.after_event_id
                    if message.event.id:
                        yield message.event
            except Unavailable as error:
                failures += 1
                if failures > self._retries or not _may_succeed_later(error):
                    raise
                await asyncio.sleep(backoff_delay(failures, self._retry_backoff))

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
        request_id: str | None = None,
    ) -> v1.ModelVersion:
        """Store a file as the next version of a model, streamed in one RPC without a deadline.

        ``source`` is a path or a binary file object, read once, from its current position to
        its end. The header declares the size where it is known without reading (a regular
        file's from ``fstat``, a ``BytesIO``'s; not a pipe's or a ``GzipFile``'s), so the
        server refuses a file too large at once; the SHA-256, computed while the chunks
        are read, follows them in the stream's trailer, and the server refuses bytes damaged
        in transit (``DataLoss``) before storing anything. A regular file that changes while
        it is read (size or modification time) raises ``FailedPrecondition`` naming it and
        stores nothing.
        ``file_name`` defaults to a path's base name and is required for a file object;
        ``content_type`` defaults to a guess from ``file_name``. ``progress`` gets
        ``(bytes_sent, total)`` once the stream starts, then after each chunk. An error of
        reading ``source`` (an ``OSError`` naming it) or raised by ``progress`` cancels the
        upload, which stores nothing, and is raised as it is; so does cancelling the task (or
        Ctrl-C in ``Client``).

        The upload carries a ``request_id`` (a new random one unless given): the server
        stores one version for it however often it is sent, and answers a repeat of a stored
        upload from its header. An upload from a path whose stream breaks (``Unavailable``)
        is resumed, up to ``retries`` times in a row: the server keeps the bytes it received,
        the client asks how many (GetUploadStatus) and sends only the rest, reading the file
        again from there (it must be unchanged); ``progress`` then starts at the bytes the
        server kept. One from a file object is not resumed (its bytes cannot be read again).
        Calling ``upload`` again for a path with the ``request_id`` of an upload that broke
        (e.g. in a process that was stopped) resumes it the same way, or returns its version
        if it was stored.
        """
        # A request id of the caller's may name an upload begun earlier: ask before sending.
        resuming = request_id is not None
        request_id = request_id or new_request_id()
        async with open_source(source, file_name) as (file, name):
            reader = await UploadReader.of(file)
            header = v1.UploadModelVersionHeader(
                model_id=model_id,
                file_name=name,
                content_type=guess_content_type(name) if content_type is None else content_type,
                size_bytes=reader.size,
                description=description,
                labels=dict(labels or {}),
                request_id=request_id,
            )
            sent = [0]  # bytes sent over all attempts: progress between two failures
            ask_first = resuming and reader.rereadable

            async def attempt() -> v1.ModelVersion:
                nonlocal ask_first
                if ask_first:
                    status = await self._upload_status(header)
                    if status.version.version:
                        return status.version
                    header.offset = status.offset
                    await reader.restart(header.offset)
                ask_first = True
                return await self._send_file(header, reader, progress, sent)

            if isinstance(source, str | os.PathLike) and reader.rereadable:
                return await self._retrying(attempt, done=lambda: sent[0])
            return await attempt()

    async def _upload_status(
        self, header: v1.UploadModelVersionHeader
    ) -> v1.GetUploadStatusResponse:
        """What the server holds of the upload; ``Unavailable`` (to be retried) while a stream
        still sends it: it has not yet noticed that the last one broke."""
        status = await self._call(
            self._models.get_upload_status,
            v1.GetUploadStatusRequest(header=header),
            timeout=...,
            retry=True,
        )
        if status.in_progress:
            raise Unavailable(
                StatusCode.UNAVAILABLE,
                f"{self._target} has not yet noticed that an earlier stream of this upload"
                " broke, and still counts it as in progress",
                reason="UPLOAD_IN_PROGRESS",
            )
        return status

    async def _send_file(
        self,
        header: v1.UploadModelVersionHeader,
        reader: UploadReader,
        progress: ProgressCallback | None,
        sent: list[int],
    ) -> v1.ModelVersion:
        """One UploadModelVersion stream: the header, the file from ``header.offset`` on, the
        trailer. A resume the server refuses because its bytes changed meanwhile (another
        stream took them, or they expired) is ``Unavailable``, to be retried after asking
        again."""
        local_errors: list[Exception] = []
        requests = _upload_requests(header, reader, progress, local_errors, sent)
        try:
            response = await self._send_upload(requests)
        except (Aborted, FailedPrecondition) as error:
            if error.reason not in _RESUME_RACES or not header.offset:
                raise
            raise Unavailable(StatusCode.UNAVAILABLE, error.message, reason=error.reason) from error
        except Exception:
            # The stream was reset, so nothing is stored; the cause was ours, not the
            # connection's, which is what _typed_errors would call an OSError.
            if local_errors:
                raise local_errors[0] from None
            raise
        return response.version

    async def download(
        self,
        model_id: str,
        version: int | str,
        destination: str | os.PathLike[str],
        *,
        resume: bool = True,
        overwrite: bool = False,
        progress: ProgressCallback | None = None,
    ) -> DownloadedFile:
        """Save a version's file at ``destination``, verified, streamed without a deadline.

        ``version`` is the version's number, or the name of an alias that points at it; an
        alias is resolved once, when the download starts, so a download resumed after the
        alias moved still gets the bytes of the version it started with.

        Bytes go to ``<destination>.part`` first; only a file whose size and SHA-256 match the
        version replaces ``destination``, else the ``.part`` file is deleted and ``DataLoss``
        raised. An interrupted download leaves the ``.part`` file (unless a flush of it
        failed: its bytes may then not be on the disk, so it is deleted), and the next call
        resumes from its size unless ``resume=False``; kept bytes that turn out not to belong
        to this version are dropped and the download starts over once. A stream that breaks
        (``Unavailable``) is resumed up to ``retries`` times in a row. A second download to
        the same destination while one runs raises ``FailedPrecondition``.

        When ``destination`` is a folder, the file is saved in it under the version's file
        name (its last component; a name starting with "." becomes ``<model_id>-v<version>``)
        and an existing file of that name is kept, raising ``FileExistsError``, unless
        ``overwrite=True``. A file path as ``destination`` is always replaced. ``progress``
        gets ``(bytes_have, total)`` once the stream starts and after each chunk, counting
        resumed bytes. Returns where the file was saved, with the version's metadata.
        """
        target = os.fspath(destination)
        replace = True
        if await asyncio.to_thread(os.path.isdir, target):
            found = await self.get_model_version(model_id, version)
            version = found.version
            target = os.path.join(target, download_name(found.file_name, model_id, version))
            replace = overwrite
            if not replace and await asyncio.to_thread(os.path.lexists, target):
                raise destination_exists(target)
        async with PartialDownload(target, resume=resume, replace=replace) as part:
            number, alias = _version_or_alias(version)
            request = v1.DownloadModelVersionRequest(model_id=model_id, version=number, alias=alias)
            metadata, resumed_from = await self._fill(request, part, progress)
            await part.commit(metadata)
        return DownloadedFile(Path(target), metadata, resumed_from)

    async def _fill(
        self,
        request: v1.DownloadModelVersionRequest,
        part: PartialDownload,
        progress: ProgressCallback | None,
    ) -> tuple[v1.ModelVersion, int]:
        """Download the rest of the version into ``part``; return the version's metadata and
        how many kept bytes it resumed from.

        Kept bytes that are not the start of this version's file (longer than it, answered
        with ``OutOfRange``, or ending with the wrong digest, e.g. a leftover of another
        version) are dropped and the download is done again from offset 0, once.
        """
        kept = part.size
        if kept:
            try:
                metadata = await self._receive(request, part, progress)
            except OutOfRange:
                pass
            else:
                if part.holds(metadata):
                    return metadata, kept
            await part.restart()
        return await self._receive(request, part, progress), 0

    async def _receive(
        self,
        request: v1.DownloadModelVersionRequest,
        part: PartialDownload,
        progress: ProgressCallback | None,
    ) -> v1.ModelVersion:
        """Receive the version's bytes from ``part.size`` on, resuming a stream that breaks."""

        async def attempt() -> v1.ModelVersion:
            request.offset = part.size
            return await self._receive_stream(request, part, progress)

        return await self._retrying(attempt, done=lambda: part.size)

    async def _receive_stream(
        self,
        request: v1.DownloadModelVersionRequest,
        part: PartialDownload,
        progress: ProgressCallback | None,
    ) -> v1.ModelVersion:
        """Run one DownloadModelVersion stream into ``part``; return the version's metadata.

        Its bytes are settled in ``part`` when it ends, however it ends: an error of writing
        them (a full disk) is the one raised, not a broken stream's ``Unavailable``, which
        would only be retried onto the same disk."""
        try:
            async with aclosing(
                self._stream(self._models.download_model_version, request)
            ) as stream:
                first = await anext(stream, None)
                if first is None or betterproto.which_one_of(first, "content")[0] != "version":
                    raise ServerError(
                        StatusCode.UNKNOWN, "the download did not start with the metadata"
                    )
                # Resumed attempts ask for this version by number, even if the alias moves.
                request.version, request.alias = first.version.version, ""
                total = first.version.size_bytes
                if progress is not None:
                    progress(part.size, total)
                async for response in stream:
                    await part.append(response.chunk)
                    if progress is not None:
                        progress(part.size, total)
        finally:
            await part.settle()
        return first.version


def new_request_id() -> str:
    """A fresh request id for one mutation and its retries: a random UUID."""
    return str(uuid.uuid4())


def _version_or_alias(version: int | str) -> tuple[int, str]:
    """The request fields (version, alias) that name a version: its number, or an alias."""
    return (0, version) if isinstance(version, str) else (version, "")


async def _upload_requests(
    header: v1.UploadModelVersionHeader,
    reader: UploadReader,
    progress: ProgressCallback | None,
    local_errors: list[Exception],
    sent_in_all: list[int],
) -> AsyncIterator[v1.UploadModelVersionRequest]:
    """The header, the file in chunks from ``header.offset`` on, then the trailer with the
    whole file's SHA-256, reporting progress (counting the offset) once the header is sent and
    once each chunk is; ``sent_in_all`` counts the chunks' bytes.

    An error of reading the file or of ``progress`` is added to ``local_errors`` and then
    propagates, which resets the stream (ending it normally would store a truncated file).
    Errors of sending happen in the caller, not here.
    """
    try:
        yield v1.UploadModelVersionRequest(header=header)
        sent = header.offset
        if progress is not None:
            progress(sent, header.size_bytes)
        async with aclosing(reader.chunks()) as chunks:
            async for chunk in chunks:
                yield v1.UploadModelVersionRequest(chunk=chunk)
                sent += len(chunk)
                sent_in_all[0] += len(chunk)
                if progress is not None:
                    progress(sent, header.size_bytes)
        yield v1.UploadModelVersionRequest(
            trailer=v1.UploadModelVersionTrailer(sha256=reader.sha256)
        )
    except Exception as error:
        local_errors.append(error)
        raise
