"""The ``model`` commands: create, list, show and delete models."""

from __future__ import annotations

from typing import TYPE_CHECKING

import click

from . import _context as context
from . import _output as out
from ._confirm import confirm_deletion, yes_option
from ._root import (
    CONTEXT_SETTINGS,
    Group,
    connection_options,
    examples,
    exist_ok_option,
    id_argument,
    id_only_option,
    id_text,
    json_option,
)

if TYPE_CHECKING:
    from .. import AsyncClient, v1


@click.group(
    cls=Group, context_settings=CONTEXT_SETTINGS, epilog=examples("modelcatalog model list")
)
def model() -> None:
    """Create, list, show and delete models."""


@model.command(
    "create",
    epilog=examples(
        "modelcatalog model create FOLDER_ID resnet50",
        "MODEL=$(modelcatalog model create $FOLDER resnet50 --id-only)",
        'modelcatalog model create FOLDER_ID bert --description "Fine-tuned BERT"',
        "MODEL=$(modelcatalog model create $FOLDER resnet50 --id-only --exist-ok)",
    ),
)
@id_argument("folder_id")
@click.argument("name")
@click.option("--description", default="", help="Free text, at most 4096 characters.")
@exist_ok_option("If the folder has a model of this name already, print it instead of failing.")
@connection_options
@json_option
@id_only_option
@click.pass_context
def model_create(
    ctx: click.Context,
    folder_id: str,
    name: str,
    description: str,
    exist_ok: bool,
    as_json: bool,
    id_only: bool,
) -> None:
    """Create a model in a folder where you are editor or owner. Prints its id."""

    async def create(client: AsyncClient) -> tuple[v1.Model, bool]:
        """The model, and whether it existed already."""
        from .. import AlreadyExists

        try:
            return await client.create_model(folder_id, name, description), False
        except AlreadyExists:
            if not exist_ok:
                raise
            async for found in client.list_models(folder_id):
                if found.name == name:
                    return found, True
            raise

    made, existed = context.run(ctx, create)
    out.created("model", made, as_json, id_only, existed=existed)


@model.command(
    "list",
    epilog=examples("modelcatalog model list", "modelcatalog model list --folder FOLDER_ID --json"),
)
@click.option(
    "--folder",
    "folder_id",
    type=click.UUID,
    callback=id_text,
    metavar="FOLDER_ID",
    help="Only the models of this folder.",
)
@connection_options
@json_option
@click.pass_context
def model_list(ctx: click.Context, folder_id: str | None, as_json: bool) -> None:
    """List the models you may see, oldest first."""

    async def models_and_folder_names(client: AsyncClient) -> tuple[list[v1.Model], dict[str, str]]:
        import asyncio

        listed = context.collect(client.list_models(folder_id))
        if as_json:  # the JSON has the folder ids; names are for people
            return await listed, {}
        models, folders = await asyncio.gather(listed, context.collect(client.list_folders()))
        return models, {f.id: f.name for f in folders}

    models, folder_names = context.run(ctx, models_and_folder_names)
    out.listing(
        models,
        as_json,
        ["ID", "NAME", "FOLDER", "LATEST", "CREATOR", "CREATED"],
        lambda m: [
            m.id,
            m.name,
            folder_names.get(m.folder_id, m.folder_id),
            str(m.latest_version or "-"),
            m.creator_username,
            out.timestamp(m.create_time),
        ],
        empty="no models",
    )


@model.command("show", epilog=examples("modelcatalog model show MODEL_ID"))
@id_argument("model_id")
@connection_options
@json_option
@click.pass_context
def model_show(ctx: click.Context, model_id: str, as_json: bool) -> None:
    """Show one model."""
    found = context.run(ctx, lambda client: client.get_model(model_id))
    pairs = [
        ("id", found.id),
        ("name", found.name),
        ("folder", found.folder_id),
        ("description", found.description),
        ("latest version", str(found.latest_version or "none")),
        ("creator", found.creator_username),
        ("created", out.timestamp(found.create_time)),
    ]
    out.show(found, pairs, as_json)


@model.command(
    "delete",
    epilog=examples(
        "modelcatalog model delete MODEL_ID", "modelcatalog model delete MODEL_ID --yes"
    ),
)
@id_argument("model_id")
@yes_option
@connection_options
@json_option
@click.pass_context
def model_delete(ctx: click.Context, model_id: str, yes: bool, as_json: bool) -> None:
    """Delete a model with all its versions and aliases; owners of its folder only.

    Asks first unless --yes. A new model of the same name is another model, numbered from 1.
    """
    confirm_deletion(f"Delete model {model_id} with all its versions and aliases?", yes=yes)
    deleted = context.run(ctx, lambda client: client.delete_model(model_id))
    if as_json:
        out.print_json({"model_id": model_id, **out.jsonable(deleted)})
        return
    out.echo(f"Deleted model {model_id} with {deleted.deleted_versions} version(s).")
