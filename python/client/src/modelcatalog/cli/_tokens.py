"""The ``token`` commands: create, list and revoke access tokens for machines."""

from __future__ import annotations

from typing import TYPE_CHECKING

import click

from . import _context as context
from . import _output as out
from ._root import CONTEXT_SETTINGS, Group, connection_options, examples, json_option

if TYPE_CHECKING:
    from .. import AsyncClient, v1

SCOPES = ("read", "read-write")
_DURATION_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}


@click.group(
    cls=Group,
    context_settings=CONTEXT_SETTINGS,
    epilog=examples("modelcatalog token create ci --scope read --folder vision --expires 30d"),
)
def token() -> None:
    """Create, list and revoke access tokens for machines (CI jobs, deploy jobs).

    A job uses a token by setting MODELCATALOG_TOKEN to it (or sending it as
    "authorization: Bearer TOKEN" from any client). A token acts for you, never with more than
    you may do at the time, within its scope: read-only or read-write, all of your folders or
    the ones given with --folder. It cannot manage tokens or your account. Managing tokens
    needs a login with your password.
    """


def parse_expiry(text: str) -> int:
    """Seconds from ``3600``, ``90s``, ``30m``, ``12h`` or ``30d``."""
    value = text.strip().lower()
    unit = _DURATION_UNITS.get(value[-1:], 0)
    number = value[:-1] if unit else value
    if not number.isdigit() or int(number) == 0:
        raise click.BadParameter(
            f"{text!r} is not a duration such as 3600, 90m, 12h or 30d", param_hint="--expires"
        )
    return int(number) * (unit or 1)


def _token_pairs(item: v1.AccessToken) -> list[tuple[str, str]]:
    return [
        ("id", item.id),
        ("name", item.name),
        ("scope", _scope(item)),
        ("folders", ", ".join(item.folder_ids) or "all"),
        ("created", out.timestamp(item.create_time)),
        ("expires", out.timestamp(item.expire_time)),
        ("last used", out.timestamp(item.last_use_time) or "never"),
    ]


def _jsonable(item: v1.AccessToken) -> dict[str, object]:
    """The token as JSON, with null for a last use that never happened."""
    found: dict[str, object] = out.jsonable(item)
    if not out.timestamp(item.last_use_time):
        found["last_use_time"] = None
    return found


def _scope(item: v1.AccessToken) -> str:
    return out.enum_name(item.scope).replace("_", "-")


@token.command(
    "create",
    epilog=examples(
        "modelcatalog token create ci --scope read --folder vision --expires 30d",
        "modelcatalog token create deploy --scope read-write --expires 90d --json",
        "export MODELCATALOG_TOKEN=$(modelcatalog token create ci --scope read --expires 1d"
        " --secret-only)",
    ),
)
@click.argument("name")
@click.option(
    "--scope",
    type=click.Choice(SCOPES),
    required=True,
    help="read: list, show and download only; read-write: what your roles allow.",
)
@click.option(
    "--folder",
    "folders",
    multiple=True,
    help="A folder (id or name) the token may use; repeat for several. Default: all folders.",
)
@click.option(
    "--expires",
    required=True,
    help="How long the token works: seconds, or a number with s, m, h or d (e.g. 30d). The"
    " server has a maximum (365 days by default).",
)
@click.option("--secret-only", is_flag=True, help="Print only the secret, for scripts.")
@connection_options
@json_option
@click.pass_context
def token_create(
    ctx: click.Context,
    name: str,
    scope: str,
    folders: tuple[str, ...],
    expires: str,
    secret_only: bool,
    as_json: bool,
) -> None:
    """Create an access token NAME and print its secret, which is shown only this once."""
    ttl_seconds = parse_expiry(expires)

    async def create(client: AsyncClient) -> v1.CreateAccessTokenResponse:
        folder_ids = [await context.folder_id(client, folder) for folder in folders]
        return await client.create_access_token(
            name, ttl_seconds, read_only=scope == "read", folder_ids=folder_ids
        )

    made = context.run(ctx, create)
    if as_json:
        out.print_json({"access_token": _jsonable(made.access_token), "secret": made.secret})
    elif secret_only:
        out.echo(made.secret)
    else:
        out.details([*_token_pairs(made.access_token), ("secret", made.secret)])
        out.echo(
            "Copy the secret now: it is not shown again. Use it as MODELCATALOG_TOKEN.", err=True
        )


@token.command("list", epilog=examples("modelcatalog token list", "modelcatalog token list --json"))
@connection_options
@json_option
@click.pass_context
def token_list(ctx: click.Context, as_json: bool) -> None:
    """List your unexpired access tokens by name (never their secrets)."""
    tokens = context.run(ctx, lambda client: context.collect(client.list_access_tokens()))
    if as_json:
        out.print_json([_jsonable(item) for item in tokens])
        return
    out.table(
        ["ID", "NAME", "SCOPE", "FOLDERS", "CREATED", "EXPIRES", "LAST USED"],
        ([value for _, value in _token_pairs(item)] for item in tokens),
        empty="no access tokens; create one with `modelcatalog token create NAME ...`",
    )


@token.command(
    "revoke", epilog=examples("modelcatalog token revoke ci", "modelcatalog token revoke TOKEN_ID")
)
@click.argument("token_name")
@connection_options
@click.pass_context
def token_revoke(ctx: click.Context, token_name: str) -> None:
    """Revoke the access token TOKEN_NAME (its name or id): calls made with it are refused."""

    async def revoke(client: AsyncClient) -> v1.AccessToken:
        found = await context.access_token(client, token_name)
        await client.revoke_access_token(found.id)
        return found

    revoked = context.run(ctx, revoke)
    out.echo(f"Revoked access token {revoked.name} ({revoked.id}).")
