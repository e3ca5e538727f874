"""The ``alias`` commands: point a model's named aliases (``production``) at its versions."""

from __future__ import annotations

from typing import TYPE_CHECKING

import click

from . import _context as context
from . import _output as out
from ._root import (
    CONTEXT_SETTINGS,
    Group,
    connection_options,
    examples,
    json_option,
    model_argument,
)

if TYPE_CHECKING:
    from .. import AsyncClient, v1


@click.group(
    cls=Group,
    context_settings=CONTEXT_SETTINGS,
    epilog=examples(
        "modelcatalog alias set resnet50 production 7 --expect 6",
        "modelcatalog version download resnet50@production",
    ),
)
def alias() -> None:
    """Name versions of a model (production, staging, ...) and move the names.

    MODEL is a model's id, or its name when only one model you can see has it. Editors and
    owners set and delete aliases; anyone who sees the model lists them and downloads by
    them (`modelcatalog version download MODEL@ALIAS`).
    """


_EXPECT_HELP = (
    "Change the alias only if it points at this version now (0: only if it does not exist"
    " yet); otherwise exit 6 and change nothing, so two pipelines never overwrite each other"
    " unnoticed."
)


@alias.command(
    "set",
    epilog=examples(
        "modelcatalog alias set resnet50 production 7",
        "modelcatalog alias set resnet50 production 8 --expect 7",
        "modelcatalog alias set MODEL_ID staging 3 --expect 0",
    ),
)
@model_argument
@click.argument("name")
@click.argument("version", type=click.IntRange(min=1))
@click.option("--expect", type=click.IntRange(min=0), metavar="VERSION", help=_EXPECT_HELP)
@connection_options
@json_option
@click.pass_context
def alias_set(
    ctx: click.Context, model: str, name: str, version: int, expect: int | None, as_json: bool
) -> None:
    """Point alias NAME of a model at VERSION, creating the alias or moving it.

    A name is 1 to 63 lowercase letters, digits, '-' and '_', not digits only.
    """

    async def set_alias(client: AsyncClient) -> v1.ModelAlias:
        model_id = await context.model_id(client, model)
        return await client.set_model_alias(model_id, name, version, expected_version=expect)

    made = context.run(ctx, set_alias)
    if as_json:
        out.print_json(made)
        return
    out.echo(f"{made.name} now points at version {made.version} of model {model}.")


@alias.command(
    "delete",
    epilog=examples(
        "modelcatalog alias delete resnet50 staging",
        "modelcatalog alias delete resnet50 staging --expect 3",
    ),
)
@model_argument
@click.argument("name")
@click.option(
    "--expect",
    type=click.IntRange(min=1),
    metavar="VERSION",
    help="Delete the alias only if it points at this version now; otherwise exit 6.",
)
@connection_options
@click.pass_context
def alias_delete(ctx: click.Context, model: str, name: str, expect: int | None) -> None:
    """Remove alias NAME of a model; the version it pointed at stays."""

    async def delete(client: AsyncClient) -> None:
        model_id = await context.model_id(client, model)
        await client.delete_model_alias(model_id, name, expected_version=expect)

    context.run(ctx, delete)
    out.echo(f"Model {model} has no alias {name} any more.")


@alias.command(
    "list",
    epilog=examples("modelcatalog alias list resnet50", "modelcatalog alias list MODEL_ID --json"),
)
@model_argument
@connection_options
@json_option
@click.pass_context
def alias_list(ctx: click.Context, model: str, as_json: bool) -> None:
    """List the aliases of a model, by name."""

    async def aliases_of(client: AsyncClient) -> list[v1.ModelAlias]:
        model_id = await context.model_id(client, model)
        return await context.collect(client.list_model_aliases(model_id))

    aliases = context.run(ctx, aliases_of)
    out.listing(
        aliases,
        as_json,
        ["ALIAS", "VERSION", "SET BY", "SET"],
        lambda a: [a.name, str(a.version), a.updater_username, out.timestamp(a.update_time)],
        empty="no aliases; set one with `modelcatalog alias set MODEL NAME VERSION`",
    )
