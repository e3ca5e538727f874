"""Account commands: ``signup``, ``login``, ``logout``, ``whoami``, and ``account`` (password
change, sign-out everywhere, deletion)."""

from __future__ import annotations

import os
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING

import click

from . import _context as context
from . import _output as out
from ._config import ENV_TOKEN, Overrides, Profile, config_path, load_profile, resolve, save_profile
from ._confirm import confirm_deletion, yes_option
from ._errors import CliError, ExitCode
from ._password import read_password
from ._root import (
    CONTEXT_SETTINGS,
    Group,
    connection_options,
    examples,
    exist_ok_option,
    json_option,
    password_stdin_option,
)

if TYPE_CHECKING:
    from .. import AsyncClient, v1

LOGOUT_TIMEOUT_SECONDS = 10.0
"""How long logout waits for the server to revoke the token before forgetting it anyway."""


@click.command(
    epilog=examples(
        "modelcatalog signup alice",
        "printf '%s\\n' \"$PASSWORD\" | modelcatalog signup alice --password-stdin",
        "modelcatalog signup alice --exist-ok",
    )
)
@click.argument("username")
@password_stdin_option
@exist_ok_option(
    "If the username is taken, succeed when the password signs in to that account (and fail"
    " when it does not)."
)
@connection_options
@json_option
@click.pass_context
def signup(
    ctx: click.Context, username: str, password_stdin: bool, exist_ok: bool, as_json: bool
) -> None:
    """Create an account (it does not log in).

    Usernames have 3-64 characters: lowercase letters, digits, '.', '_' and '-'. Passwords
    have 8 characters to 72 bytes. Without --password-stdin the password is asked twice,
    hidden, at a terminal; when stdin is not a terminal its first line is the password.
    """
    settings = context.settings(ctx, keep_token=False)
    password = read_password(password_stdin, confirm=True)

    async def sign_up(client: AsyncClient) -> tuple[v1.User, bool]:
        """The account, and whether it existed already."""
        from .. import AlreadyExists, Unauthenticated

        try:
            return await client.sign_up(username, password), False
        except AlreadyExists:
            if not exist_ok:
                raise
        try:
            return (await client.sign_in(username, password)).user, True
        except Unauthenticated as error:
            raise CliError(
                f"the username {username!r} is taken and this password does not sign in to"
                " it; choose another username, or give that account's password",
                ExitCode.CONFLICT,
            ) from error

    user, existed = context.run(ctx, sign_up, settings=settings)
    if as_json:
        out.print_json(user)
        return
    if existed:
        out.echo(f"The account {user.username} exists already on {settings.server}.")
    else:
        out.echo(f"Created account {user.username} on {settings.server}.")
    out.echo(f"Next: {context.state(ctx).login_command()} {user.username}", err=True)


@click.command(
    epilog=examples(
        "modelcatalog login alice --ca-cert modelcatalog-data/tls/server.crt",
        "modelcatalog login alice --server models.example.com:443",
        "printf '%s\\n' \"$PASSWORD\" | modelcatalog login alice --password-stdin",
    )
)
@click.argument("username", required=False)
@password_stdin_option
@connection_options
@json_option
@click.pass_context
def login(ctx: click.Context, username: str | None, password_stdin: bool, as_json: bool) -> None:
    """Sign in and save the token for later commands.

    The token is saved with the server address and the CA certificate path (made absolute)
    in the config file, written atomically with mode 0600. Without USERNAME it is asked
    for; without --password-stdin the password is asked for, hidden, at a terminal; when stdin
    is not a terminal its first line is the password.
    """
    settings = context.settings(ctx, keep_token=False)
    if username is None:
        if password_stdin:
            raise click.UsageError("give USERNAME when the password comes from stdin")
        username = click.prompt("Username", default=settings.username)
    password = read_password(password_stdin, confirm=False)
    response = context.run(
        ctx, lambda client: client.sign_in(username, password), settings=settings
    )
    profile = Profile(
        server=settings.server,
        ca_cert=os.path.abspath(settings.ca_cert) if settings.ca_cert else None,
        insecure=settings.insecure,
        username=response.user.username or username,
        token=response.access_token,
    )
    save_profile(settings.config_path, profile)
    if as_json:
        out.print_json(response.user)
    else:
        expires = out.timestamp(response.expire_time)
        until = f"; the token is valid until {expires}" if expires else ""
        out.echo(f"Logged in to {settings.server} as {profile.username}{until}.")
        out.echo(f"Saved to {settings.config_path}.", err=True)
    if os.environ.get(ENV_TOKEN):
        out.echo(f"note: {ENV_TOKEN} is set and overrides the saved token", err=True)


@click.command(epilog=examples("modelcatalog logout"))
@click.pass_context
def logout(ctx: click.Context) -> None:
    """Sign out: revoke the saved token on the server and forget it.

    It acts on the login that `modelcatalog login` saved, on the server it was saved for,
    whatever MODELCATALOG_SERVER and MODELCATALOG_TOKEN say: a token given in the environment
    is not the command line's to revoke (`modelcatalog token revoke` ends an access token).
    The token is forgotten even when the server cannot be reached; it then stays valid until
    it expires, and logout says so. The saved server address and CA certificate stay.
    """
    from .. import ModelCatalogError, Unauthenticated

    path = config_path()
    profile = load_profile(path)
    if profile.token is None:
        out.echo("Not logged in.")
        return
    saved = resolve(Overrides(), profile, path, environ={})
    settings = replace(saved, timeout=LOGOUT_TIMEOUT_SECONDS)
    try:
        context.run(ctx, lambda client: client.sign_out(), settings=settings)
        outcome = "the server revoked the token"
    except Unauthenticated:
        outcome = "the token had already expired or been revoked"
    except (ModelCatalogError, OSError, ValueError) as error:
        outcome = ""
        out.echo(
            f"warning: could not revoke the token on {settings.server} ({error}); it stays"
            " valid until it expires",
            err=True,
        )
    save_profile(path, replace(profile, token=None, username=None))
    done = f"; {outcome}" if outcome else ""
    out.echo(f"Logged out of {settings.server}{done}; removed the token from {path}.")


@click.command(epilog=examples("modelcatalog whoami", "modelcatalog whoami --json"))
@connection_options
@json_option
@click.pass_context
def whoami(ctx: click.Context, as_json: bool) -> None:
    """Show the account the token belongs to, and the server it is for."""
    settings = context.settings(ctx)
    user = context.run(ctx, lambda client: client.get_current_user(), settings=settings)
    pairs = [
        ("username", user.username),
        ("id", user.id),
        ("created", out.timestamp(user.create_time)),
        ("server", settings.server),
    ]
    out.show({**out.jsonable(user), "server": settings.server}, pairs, as_json)


@click.group(
    cls=Group, context_settings=CONTEXT_SETTINGS, epilog=examples("modelcatalog account password")
)
def account() -> None:
    """Change your password, sign out everywhere, or delete your account.

    These need a login with your password: an access token (MODELCATALOG_TOKEN from
    `modelcatalog token create`) cannot run them.
    """


@account.command(
    "password",
    epilog=examples(
        "modelcatalog account password",
        'printf \'%s\\n%s\\n\' "$OLD" "$NEW" | modelcatalog account password --password-stdin',
    ),
)
@click.option(
    "--password-stdin",
    is_flag=True,
    help="Read the current password, then the new one, from two lines of stdin.",
)
@connection_options
@click.pass_context
def account_password(ctx: click.Context, password_stdin: bool) -> None:
    """Change your password. Every login of the account ends, here and elsewhere; this one
    is renewed and saved. Access tokens keep working."""
    settings = context.settings(ctx)
    current = read_password(password_stdin, confirm=False, prompt="Current password")
    new = read_password(password_stdin, confirm=True, prompt="New password")
    response = context.run(
        ctx, lambda client: client.change_password(current, new), settings=settings
    )
    _save_token(settings.config_path, response.access_token, settings.token_from_env)
    out.echo("Changed the password; every other login of the account has ended.")


@account.command("logout-everywhere", epilog=examples("modelcatalog account logout-everywhere"))
@connection_options
@click.pass_context
def account_logout_everywhere(ctx: click.Context) -> None:
    """End every login of your account, on every machine, this one included. Access tokens
    keep working: revoke them with `modelcatalog token revoke`."""
    settings = context.settings(ctx)
    context.run(ctx, lambda client: client.sign_out_everywhere(), settings=settings)
    _save_token(settings.config_path, None, settings.token_from_env)
    out.echo(f"Ended every login of the account on {settings.server}; log in again to go on.")


@account.command(
    "delete",
    epilog=examples(
        "modelcatalog account delete",
        "printf '%s\\n' \"$PASSWORD\" | modelcatalog account delete --password-stdin --yes",
    ),
)
@password_stdin_option
@yes_option
@connection_options
@click.pass_context
def account_delete(ctx: click.Context, password_stdin: bool, yes: bool) -> None:
    """Delete your account: its logins and access tokens end, its roles in folders go, and
    the folders only you belong to that hold no model are deleted.

    Refused (exit 6, naming them) while you are the only owner of folders that hold models or
    have other members: make another member owner, or delete those folders, first. What you
    made in shared folders stays; your username is never given to anyone else.
    """
    settings = context.settings(ctx)
    confirm_deletion(f"Delete your account on {settings.server}?", yes=yes)
    password = read_password(password_stdin, confirm=False)
    context.run(ctx, lambda client: client.delete_account(password), settings=settings)
    _save_token(settings.config_path, None, settings.token_from_env)
    out.echo(f"Deleted your account on {settings.server}.")


def _save_token(path: Path, token: str | None, token_from_env: bool) -> None:
    """Saves ``token`` (None: forgets it) as the login, unless the command used
    MODELCATALOG_TOKEN rather than the saved login."""
    if token_from_env:
        return
    profile = load_profile(path)
    save_profile(path, replace(profile, token=token, username=profile.username if token else None))
