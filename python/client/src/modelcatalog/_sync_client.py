"""The synchronous client: ``AsyncClient``'s methods, run in an event loop of the client's own.

Each method hands the ``AsyncClient`` method of the same name to the client's loop thread
(``_loop_thread.LoopThread``) and waits; none has logic of its own, so the two clients cannot
drift apart (``tests/test_sync_client.py`` compares their signatures). Docstrings are the async
methods', copied by ``_same_as``.
"""

import os
import weakref
from collections.abc import AsyncIterator, Callable, Iterator, Mapping, Sequence
from contextlib import AbstractAsyncContextManager, AsyncExitStack
from datetime import datetime
from types import TracebackType
from typing import Any, BinaryIO, Self, TypeVar

from . import v1
from ._client import (
    DEFAULT_RETRIES,
    DEFAULT_RETRY_BACKOFF,
    AsyncClient,
    DownloadedFile,
    ProgressCallback,
    Timeout,
)
from ._loop_thread import LoopThread

_Item = TypeVar("_Item")
_Method = TypeVar("_Method", bound=Callable[..., Any])


def _same_as(async_method: Callable[..., Any]) -> Callable[[_Method], _Method]:
    """Give the decorated method the docstring of the ``AsyncClient`` method it runs."""

    def decorate(method: _Method) -> _Method:
        method.__doc__ = async_method.__doc__
        return method

    return decorate


class Client:
    """A connection to a modelcatalog server for synchronous code: scripts, notebooks, jobs.

    Use it as ``with Client("host:port", ca_cert=path) as client:``. It has ``AsyncClient``'s
    methods, arguments, results, errors, timeouts and retries, called without ``await``; list
    methods return iterators that fetch the next page when they reach it.

    The client runs an event loop of its own in a daemon thread, started here (grpclib ties a
    connection to the loop it was made in) and stopped by ``close``. So it works where the
    calling thread already runs a loop, as in Jupyter, and ``progress`` callbacks are called
    in that thread. Ctrl-C during a call cancels the RPC before ``KeyboardInterrupt`` is
    raised: an upload stores nothing, a download keeps its ``.part`` file to resume from.
    A client may be used from several threads at once.
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
        self._open(
            lambda: AsyncClient(
                target,
                ca_cert=ca_cert,
                insecure=insecure,
                token=token,
                timeout=timeout,
                retries=retries,
                retry_backoff=retry_backoff,
            )
        )

    @classmethod
    def _over(cls, open_client: Callable[[], AbstractAsyncContextManager[AsyncClient]]) -> Self:
        """A client running the ``AsyncClient`` that ``open_client()`` enters, in the client's
        loop; ``close`` exits it there. Tests pass one on ``grpclib.testing.ChannelFor``."""
        client = cls.__new__(cls)
        client._open(open_client)
        return client

    def _open(self, open_client: Callable[[], AbstractAsyncContextManager[AsyncClient]]) -> None:
        loop = LoopThread()
        resources = AsyncExitStack()

        async def enter() -> AsyncClient:
            return await resources.enter_async_context(open_client())

        try:
            self._client = loop.run(enter())
        except BaseException:
            loop.stop()
            raise
        self._loop = loop
        self._resources = resources
        # A client dropped without close still stops its thread once garbage collected.
        self._finalizer = weakref.finalize(self, loop.stop)

    @property
    def token(self) -> str | None:
        """The access token sent with every RPC, set by ``sign_in``; ``None`` before that."""
        return self._client.token

    @token.setter
    def token(self, token: str | None) -> None:
        self._client.token = token

    def close(self) -> None:
        """Close the connection and stop the client's thread; closing again does nothing."""
        if self._finalizer.alive:
            try:
                self._loop.run(self._resources.aclose())
            finally:
                self._finalizer()

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc_value: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()

    def _iterate(self, items: AsyncIterator[_Item]) -> Iterator[_Item]:
        """``items`` as a plain iterator, each step taken in the client's loop.

        An iterator left unfinished leaves an async generator behind, which asyncio closes in
        the loop once it is garbage collected (or when the client closes).
        """

        async def step() -> list[_Item]:
            """The next item alone, or nothing at the end."""
            async for item in items:  # leaving the loop early does not close ``items``
                return [item]
            return []

        while following := self._loop.run(step()):
            yield following[0]

    @_same_as(AsyncClient.sign_up)
    def sign_up(self, username: str, password: str, *, timeout: Timeout = ...) -> v1.User:
        return self._loop.run(self._client.sign_up(username, password, timeout=timeout))

    @_same_as(AsyncClient.sign_in)
    def sign_in(self, username: str, password: str, *, timeout: Timeout = ...) -> v1.SignInResponse:
        return self._loop.run(self._client.sign_in(username, password, timeout=timeout))

    @_same_as(AsyncClient.get_current_user)
    def get_current_user(self, *, timeout: Timeout = ...) -> v1.User:
        return self._loop.run(self._client.get_current_user(timeout=timeout))

    @_same_as(AsyncClient.sign_out)
    def sign_out(self, *, timeout: Timeout = ...) -> None:
        return self._loop.run(self._client.sign_out(timeout=timeout))

    @_same_as(AsyncClient.create_access_token)
    def create_access_token(
        self,
        name: str,
        ttl_seconds: int,
        *,
        read_only: bool,
        folder_ids: Sequence[str] = (),
        timeout: Timeout = ...,
    ) -> v1.CreateAccessTokenResponse:
        return self._loop.run(
            self._client.create_access_token(
                name, ttl_seconds, read_only=read_only, folder_ids=folder_ids, timeout=timeout
            )
        )

    @_same_as(AsyncClient.list_access_tokens)
    def list_access_tokens(
        self, page_size: int = 0, *, timeout: Timeout = ...
    ) -> Iterator[v1.AccessToken]:
        return self._iterate(self._client.list_access_tokens(page_size, timeout=timeout))

    @_same_as(AsyncClient.revoke_access_token)
    def revoke_access_token(self, access_token_id: str, *, timeout: Timeout = ...) -> None:
        return self._loop.run(self._client.revoke_access_token(access_token_id, timeout=timeout))

    @_same_as(AsyncClient.change_password)
    def change_password(
        self, current_password: str, new_password: str, *, timeout: Timeout = ...
    ) -> v1.ChangePasswordResponse:
        return self._loop.run(
            self._client.change_password(current_password, new_password, timeout=timeout)
        )

    @_same_as(AsyncClient.sign_out_everywhere)
    def sign_out_everywhere(self, *, timeout: Timeout = ...) -> None:
        return self._loop.run(self._client.sign_out_everywhere(timeout=timeout))

    @_same_as(AsyncClient.delete_account)
    def delete_account(self, password: str, *, timeout: Timeout = ...) -> None:
        return self._loop.run(self._client.delete_account(password, timeout=timeout))

    @_same_as(AsyncClient.create_folder)
    def create_folder(
        self,
        name: str,
        description: str = "",
        *,
        request_id: str | None = None,
        timeout: Timeout = ...,
    ) -> v1.Folder:
        return self._loop.run(
            self._client.create_folder(name, description, request_id=request_id, timeout=timeout)
        )

    @_same_as(AsyncClient.get_folder)
    def get_folder(self, folder_id: str, *, timeout: Timeout = ...) -> v1.Folder:
        return self._loop.run(self._client.get_folder(folder_id, timeout=timeout))

    @_same_as(AsyncClient.list_folders)
    def list_folders(self, page_size: int = 0, *, timeout: Timeout = ...) -> Iterator[v1.Folder]:
        return self._iterate(self._client.list_folders(page_size, timeout=timeout))

    @_same_as(AsyncClient.update_folder)
    def update_folder(
        self,
        folder_id: str,
        *,
        name: str | None = None,
        description: str | None = None,
        etag: str | None = None,
        timeout: Timeout = ...,
    ) -> v1.Folder:
        return self._loop.run(
            self._client.update_folder(
                folder_id, name=name, description=description, etag=etag, timeout=timeout
            )
        )

    @_same_as(AsyncClient.grant_folder_access)
    def grant_folder_access(
        self, folder_id: str, username: str, role: v1.FolderRole | str, *, timeout: Timeout = ...
    ) -> v1.FolderMember:
        return self._loop.run(
            self._client.grant_folder_access(folder_id, username, role, timeout=timeout)
        )

    @_same_as(AsyncClient.revoke_folder_access)
    def revoke_folder_access(
        self, folder_id: str, username: str, *, timeout: Timeout = ...
    ) -> None:
        return self._loop.run(
            self._client.revoke_folder_access(folder_id, username, timeout=timeout)
        )

    @_same_as(AsyncClient.leave_folder)
    def leave_folder(self, folder_id: str, *, timeout: Timeout = ...) -> None:
        return self._loop.run(self._client.leave_folder(folder_id, timeout=timeout))

    @_same_as(AsyncClient.list_folder_access)
    def list_folder_access(
        self, folder_id: str, page_size: int = 0, *, timeout: Timeout = ...
    ) -> Iterator[v1.FolderMember]:
        return self._iterate(self._client.list_folder_access(folder_id, page_size, timeout=timeout))

    @_same_as(AsyncClient.explain_access)
    def explain_access(
        self,
        folder_id: str | None = None,
        *,
        model_id: str | None = None,
        username: str = "",
        access_token_id: str = "",
        timeout: Timeout = ...,
    ) -> v1.ExplainAccessResponse:
        return self._loop.run(
            self._client.explain_access(
                folder_id,
                model_id=model_id,
                username=username,
                access_token_id=access_token_id,
                timeout=timeout,
            )
        )

    @_same_as(AsyncClient.delete_folder)
    def delete_folder(
        self, folder_id: str, *, force: bool = False, timeout: Timeout = ...
    ) -> v1.DeleteFolderResponse:
        return self._loop.run(self._client.delete_folder(folder_id, force=force, timeout=timeout))

    @_same_as(AsyncClient.create_model)
    def create_model(
        self,
        folder_id: str,
        name: str,
        description: str = "",
        *,
        request_id: str | None = None,
        timeout: Timeout = ...,
    ) -> v1.Model:
        return self._loop.run(
            self._client.create_model(
                folder_id, name, description, request_id=request_id, timeout=timeout
            )
        )

    @_same_as(AsyncClient.get_model)
    def get_model(self, model_id: str, *, timeout: Timeout = ...) -> v1.Model:
        return self._loop.run(self._client.get_model(model_id, timeout=timeout))

    @_same_as(AsyncClient.list_models)
    def list_models(
        self,
        folder_id: str | None = None,
        page_size: int = 0,
        *,
        filter: str = "",
        order_by: str = "",
        timeout: Timeout = ...,
    ) -> Iterator[v1.Model]:
        return self._iterate(
            self._client.list_models(
                folder_id, page_size, filter=filter, order_by=order_by, timeout=timeout
            )
        )

    @_same_as(AsyncClient.update_model)
    def update_model(
        self,
        model_id: str,
        *,
        name: str | None = None,
        description: str | None = None,
        etag: str | None = None,
        timeout: Timeout = ...,
    ) -> v1.Model:
        return self._loop.run(
            self._client.update_model(
                model_id, name=name, description=description, etag=etag, timeout=timeout
            )
        )

    @_same_as(AsyncClient.get_model_version)
    def get_model_version(
        self, model_id: str, version: int | str, *, timeout: Timeout = ...
    ) -> v1.ModelVersion:
        return self._loop.run(self._client.get_model_version(model_id, version, timeout=timeout))

    @_same_as(AsyncClient.list_model_versions)
    def list_model_versions(
        self,
        model_id: str,
        page_size: int = 0,
        *,
        filter: str = "",
        order_by: str = "",
        timeout: Timeout = ...,
    ) -> Iterator[v1.ModelVersion]:
        return self._iterate(
            self._client.list_model_versions(
                model_id, page_size, filter=filter, order_by=order_by, timeout=timeout
            )
        )

    @_same_as(AsyncClient.update_model_version)
    def update_model_version(
        self,
        model_id: str,
        version: int,
        *,
        description: str | None = None,
        labels: Mapping[str, str] | None = None,
        etag: str | None = None,
        timeout: Timeout = ...,
    ) -> v1.ModelVersion:
        return self._loop.run(
            self._client.update_model_version(
                model_id,
                version,
                description=description,
                labels=labels,
                etag=etag,
                timeout=timeout,
            )
        )

    @_same_as(AsyncClient.set_model_alias)
    def set_model_alias(
        self,
        model_id: str,
        name: str,
        version: int,
        *,
        expected_version: int | None = None,
        request_id: str | None = None,
        timeout: Timeout = ...,
    ) -> v1.ModelAlias:
        return self._loop.run(
            self._client.set_model_alias(
                model_id,
                name,
                version,
                expected_version=expected_version,
                request_id=request_id,
                timeout=timeout,
            )
        )

    @_same_as(AsyncClient.delete_model_alias)
    def delete_model_alias(
        self,
        model_id: str,
        name: str,
        *,
        expected_version: int | None = None,
        timeout: Timeout = ...,
    ) -> None:
        self._loop.run(
            self._client.delete_model_alias(
                model_id, name, expected_version=expected_version, timeout=timeout
            )
        )

    @_same_as(AsyncClient.list_model_aliases)
    def list_model_aliases(
        self, model_id: str, page_size: int = 0, *, timeout: Timeout = ...
    ) -> Iterator[v1.ModelAlias]:
        return self._iterate(self._client.list_model_aliases(model_id, page_size, timeout=timeout))

    @_same_as(AsyncClient.delete_model_version)
    def delete_model_version(
        self, model_id: str, version: int, *, force: bool = False, timeout: Timeout = ...
    ) -> v1.DeleteModelVersionResponse:
        return self._loop.run(
            self._client.delete_model_version(model_id, version, force=force, timeout=timeout)
        )

    @_same_as(AsyncClient.delete_model)
    def delete_model(self, model_id: str, *, timeout: Timeout = ...) -> v1.DeleteModelResponse:
        return self._loop.run(self._client.delete_model(model_id, timeout=timeout))

    @_same_as(AsyncClient.list_audit_events)
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
    ) -> Iterator[v1.AuditEvent]:
        return self._iterate(
            self._client.list_audit_events(
                folder_id,
                page_size,
                actor=actor,
                action=action,
                resource=resource,
                start_time=start_time,
                end_time=end_time,
                timeout=timeout,
            )
        )

    @_same_as(AsyncClient.watch_events)
    def watch_events(
        self,
        folder_id: str | None = None,
        *,
        alias: str = "",
        after_event_id: int | None = None,
    ) -> Iterator[v1.CatalogEvent]:
        return self._iterate(
            self._client.watch_events(folder_id, alias=alias, after_event_id=after_event_id)
        )

    @_same_as(AsyncClient.upload)
    def upload(
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
        return self._loop.run(
            self._client.upload(
                model_id,
                source,
                file_name=file_name,
                content_type=content_type,
                description=description,
                labels=labels,
                progress=progress,
                request_id=request_id,
            )
        )

    @_same_as(AsyncClient.download)
    def download(
        self,
        model_id: str,
        version: int | str,
        destination: str | os.PathLike[str],
        *,
        resume: bool = True,
        overwrite: bool = False,
        progress: ProgressCallback | None = None,
    ) -> DownloadedFile:
        return self._loop.run(
            self._client.download(
                model_id,
                version,
                destination,
                resume=resume,
                overwrite=overwrite,
                progress=progress,
            )
        )
