"""The ``access`` commands: why a user can (or cannot) see and change a folder or a model."""

from __future__ import annotations

from typing import TYPE_CHECKING

import click

from . import _context as context
from . import _output as out
from ._errors import CliError, ExitCode
from ._root import CONTEXT_SETTINGS, Group, connection_options, examples, json_option

if TYPE_CHECKING:
    from .. import AsyncClient, v1


@click.group(
    cls=Group,
    context_settings=CONTEXT_SETTINGS,
    epilog=examples("modelcatalog access explain --folder vision bob"),
)
def access() -> None:
    """Explain who has access to what, and why.

    Roles are given per folder (`modelcatalog folder grant`); a model's access is its
    folder's.
    """


@access.command(
    "explain",
    epilog=examples(
        "modelcatalog access explain --folder vision",
        "modelcatalog access explain --folder vision bob",
        "modelcatalog access explain --model resnet50 bob --json",
        "modelcatalog access explain --folder vision --token deploy",
    ),
)
@click.option("--folder", metavar="FOLDER", help="The folder: its id, or its name.")
@click.option("--model", metavar="MODEL", help="The model: its id, or its name.")
@click.option(
    "--token",
    "token_name",
    metavar="TOKEN",
    help="One of your access tokens (its name or id): what it may do, capped by its scope.",
)
@click.argument("username", required=False, default="")
@connection_options
@json_option
@click.pass_context
def access_explain(
    ctx: click.Context,
    folder: str | None,
    model: str | None,
    token_name: str | None,
    username: str,
    as_json: bool,
) -> None:
    """Show the role USERNAME (you, when left out) has in a folder or a model's folder, and
    the grant that gives it: who granted it and when.

    Name the folder with --folder or the model with --model. Owners may ask about anyone;
    other members only about themselves. A user without access is told so (exit status 0).
    With --token, or when the CLI runs with an access token (MODELCATALOG_TOKEN), the answer
    is about that token: its owner's role capped by its scope.
    """
    if (folder is None) == (model is None):
        raise CliError("name the folder with --folder or the model with --model", ExitCode.USAGE)

    async def explain(client: AsyncClient) -> v1.ExplainAccessResponse:
        return await client.explain_access(
            None if folder is None else await context.folder_id(client, folder),
            model_id=None if model is None else await context.model_id(client, model),
            username=username,
            access_token_id=await _token_id(client, token_name),
        )

    answer = context.run(ctx, explain)
    if as_json:
        out.print_json(answer)
        return
    out.echo(answer.explanation + ".")


async def _token_id(client: AsyncClient, reference: str | None) -> str:
    """The id of the access token --token names ('' without one)."""
    return "" if reference is None else (await context.access_token(client, reference)).id
