"""What a command run knows beyond its own arguments, and how it gets a client.

Each command resolves its settings (flags, ``MODELCATALOG_*`` variables, the config file),
opens a client with the ``connect`` factory of the run's ``State`` (Click's ``ctx.obj``; tests
pass one over an in-memory channel, e.g. ``cli.main(obj=State(connect=...))``) and runs its SDK
calls in one ``asyncio.run``.

The SDK and asyncio are imported inside the functions that use them, never at the top (see
``modelcatalog.cli``).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, TypeVar

import click

from ._config import Overrides, Settings, check_ca_cert, config_path, load_profile, resolve
from ._errors import CliError, ExitCode

if TYPE_CHECKING:
    from .. import AsyncClient, v1

_T = TypeVar("_T")
_Named = TypeVar("_Named", "v1.Folder", "v1.Model")

ClientFactory = Callable[[Settings], AbstractAsyncContextManager["AsyncClient"]]


@asynccontextmanager
async def connect(settings: Settings) -> AsyncIterator[AsyncClient]:
    """A real ``AsyncClient`` for the settings, closed when the command is done."""
    from .. import AsyncClient

    client = AsyncClient(
        settings.server,
        ca_cert=settings.ca_cert,
        insecure=settings.insecure,
        token=settings.token,
        timeout=settings.timeout,
    )
    async with client:
        yield client


@dataclass
class State:
    """What a command run knows beyond its own arguments (Click's ``ctx.obj``)."""

    overrides: Overrides = field(default_factory=Overrides)
    in_shell: bool = False
    settings: Settings | None = None
    connect: ClientFactory = connect
    """How commands get a client for their settings."""

    def login_command(self) -> str:
        """How to sign in again to the server this command used, for hints."""
        command = "login" if self.in_shell else "modelcatalog login"
        server = self.overrides.server
        return f"{command} --server {server}" if server else command

    def for_shell_line(self) -> State:
        """A fresh state for one line of the shell: the shell's flags and client, no more."""
        return State(
            overrides=self.overrides.merged(Overrides()), in_shell=True, connect=self.connect
        )


def state(ctx: click.Context) -> State:
    """The run's ``State``, made on first use."""
    return ctx.ensure_object(State)


def settings(ctx: click.Context, *, keep_token: bool = True) -> Settings:
    """The settings for this command; remembered for the error hints."""
    current = state(ctx)
    path = config_path()
    resolved = resolve(
        current.overrides,
        load_profile(path),
        path,
        use_token=keep_token,
        login=current.login_command(),
    )
    current.settings = resolved
    check_ca_cert(resolved)
    return resolved


_command_settings = settings
"""``settings``, by a name that ``run``'s keyword of the same name does not hide."""


def run(
    ctx: click.Context,
    call: Callable[[AsyncClient], Awaitable[_T]],
    *,
    settings: Settings | None = None,
) -> _T:
    """Open the run's client, run ``call`` with it in a fresh event loop, and close it.

    ``settings`` are the command's (``settings(ctx)`` unless the command resolved its own).
    """
    import asyncio

    connect_client = state(ctx).connect
    resolved = settings if settings is not None else _command_settings(ctx)

    async def session() -> _T:
        async with connect_client(resolved) as client:
            return await call(client)

    return asyncio.run(session())


async def collect(items: AsyncIterator[_T]) -> list[_T]:
    """All items of an async iterator (e.g. every page of a list call)."""
    return [item async for item in items]


async def folder_id(client: AsyncClient, folder: str) -> str:
    """The id of the folder a FOLDER argument names: its id, or the name of the one folder
    you can see by that name."""
    return await _resolve("folder", folder, client.list_folders(page_size=_NAME_LOOKUP_PAGE))


async def model_id(client: AsyncClient, model: str) -> str:
    """The id of the model a MODEL argument names: its id, or the name of the one model you
    can see by that name."""
    # The server narrows the list to names containing it (no wildcards: ":" has none).
    escaped = model.replace("\\", "\\\\").replace('"', '\\"')
    candidates = client.list_models(page_size=_NAME_LOOKUP_PAGE, filter=f'name : "{escaped}"')
    return await _resolve("model", model, candidates)


async def access_token(client: AsyncClient, reference: str) -> v1.AccessToken:
    """The caller's access token a TOKEN argument names: by its name or its id."""
    async for found in client.list_access_tokens():
        if reference in (found.name, found.id):
            return found
    raise CliError(
        f"you have no access token named {reference!r}; `modelcatalog token list` shows yours",
        ExitCode.NOT_FOUND,
    )


_NAME_LOOKUP_PAGE = 1000
"""The server's largest page: a name lookup reads every folder or model the caller may see."""


async def _resolve(kind: str, reference: str, visible: AsyncIterator[_Named]) -> str:
    """``reference`` as an id (any UUID spelling, sent canonically) without a call, else the
    id of the one item of ``visible`` with that name.

    No such name exits 4, as an id the server does not show you does; a name several
    folders or models share exits 2 and lists their ids, so that the user can pick one.
    """
    import uuid

    try:
        return str(uuid.UUID(reference))
    except ValueError:
        pass
    named = [item async for item in visible if item.name == reference]
    if len(named) == 1:
        return named[0].id
    if not named:
        raise CliError(
            f"no {kind} you can see has the id or name {reference!r};"
            f" `modelcatalog {kind} list` shows those you can",
            ExitCode.PERMISSION,
        )
    ids = ", ".join(item.id for item in named)
    raise CliError(
        f"{len(named)} {kind}s you can see are named {reference!r}; give the id of one: {ids}",
        ExitCode.USAGE,
    )
