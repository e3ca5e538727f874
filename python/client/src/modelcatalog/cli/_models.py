"""The ``model`` commands: create, list, show, edit and delete models."""

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
    folder_argument,
    id_only_option,
    if_match_option,
    json_option,
    model_argument,
)

if TYPE_CHECKING:
    from .. import AsyncClient, v1


@click.group(
    cls=Group, context_settings=CONTEXT_SETTINGS, epilog=examples("modelcatalog model list")
)
def model() -> None:
    """Create, list, show, edit and delete models.

    FOLDER and MODEL are an id, or a name when only one folder or model you can see has it.
    """


@model.command(
    "create",
    epilog=examples(
        "modelcatalog model create vision resnet50",
        "MODEL=$(modelcatalog model create $FOLDER resnet50 --id-only)",
        'modelcatalog model create FOLDER_ID bert --description "Fine-tuned BERT"',
        "MODEL=$(modelcatalog model create $FOLDER resnet50 --id-only --exist-ok)",
    ),
)
@folder_argument
@click.argument("name")
@click.option("--description", default="", help="Free text, at most 4096 characters.")
@exist_ok_option("If the folder has a model of this name already, print it instead of failing.")
@connection_options
@json_option
@id_only_option
@click.pass_context
def model_create(
    ctx: click.Context,
    folder: str,
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

        folder_id = await context.folder_id(client, folder)
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
    epilog=examples(
        "modelcatalog model list",
        "modelcatalog model list --folder vision --json",
        """modelcatalog model list --filter 'name : "bert" AND labels.stage = "prod"'""",
        "modelcatalog model list --order-by 'name desc'",
    ),
)
@click.option("--folder", metavar="FOLDER", help="Only the models of this folder (id or name).")
@click.option(
    "--filter",
    "filter_text",
    default="",
    metavar="FILTER",
    help="Only the models that match, e.g. 'name : \"res\"' (name contains, any case),"
    " 'name = \"res*\"' (starts with), 'labels.stage = \"prod\"' (a version has the label),"
    " 'create_time > \"2026-11-01T00:00:00Z\"'; join conditions with AND.",
)
@click.option(
    "--order-by",
    default="",
    metavar="ORDER",
    help='"create_time" (the default), "name", each optionally followed by "desc".',
)
@connection_options
@json_option
@click.pass_context
def model_list(
    ctx: click.Context, folder: str | None, filter_text: str, order_by: str, as_json: bool
) -> None:
    """List the models you may see, oldest first unless --order-by says otherwise."""

    async def models_and_folder_names(client: AsyncClient) -> tuple[list[v1.Model], dict[str, str]]:
        import asyncio

        folder_id = None if folder is None else await context.folder_id(client, folder)
        listed = context.collect(
            client.list_models(folder_id, filter=filter_text, order_by=order_by)
        )
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


@model.command(
    "show", epilog=examples("modelcatalog model show resnet50", "modelcatalog model show MODEL_ID")
)
@model_argument
@connection_options
@json_option
@click.pass_context
def model_show(ctx: click.Context, model: str, as_json: bool) -> None:
    """Show one model, named by its id or its name."""

    async def show(client: AsyncClient) -> v1.Model:
        return await client.get_model(await context.model_id(client, model))

    found = context.run(ctx, show)
    pairs = [
        ("id", found.id),
        ("name", found.name),
        ("folder", found.folder_id),
        ("description", found.description),
        ("latest version", str(found.latest_version or "none")),
        ("creator", found.creator_username),
        ("created", out.timestamp(found.create_time)),
        ("updated", out.timestamp(found.update_time)),
        ("etag", found.etag),
    ]
    out.show(found, pairs, as_json)


@model.command(
    "update",
    epilog=examples(
        "modelcatalog model update resnet --name resnet50",
        'modelcatalog model update MODEL_ID --description "ResNet-50, ImageNet"',
        "modelcatalog model update MODEL_ID --description '' --if-match ETAG --json",
    ),
)
@model_argument
@click.option("--name", help="The new name, unique within the model's folder.")
@click.option("--description", help='The new description, at most 4096 characters ("" clears).')
@if_match_option("model")
@connection_options
@json_option
@click.pass_context
def model_update(
    ctx: click.Context,
    model: str,
    name: str | None,
    description: str | None,
    if_match: str | None,
    as_json: bool,
) -> None:
    """Rename a model or change its description; editor or owner of its folder.

    What is not given keeps its value. Prints the model's new etag.
    """
    if name is None and description is None:
        raise click.UsageError("give --name, --description or both")

    async def update(client: AsyncClient) -> v1.Model:
        model_id = await context.model_id(client, model)
        return await client.update_model(
            model_id, name=name, description=description, etag=if_match
        )

    changed = context.run(ctx, update)
    if as_json:
        out.print_json(changed)
    else:
        out.echo(f"Updated model {changed.name}: {changed.id} (etag {changed.etag})")


@model.command(
    "delete",
    epilog=examples("modelcatalog model delete resnet", "modelcatalog model delete MODEL_ID --yes"),
)
@model_argument
@yes_option
@connection_options
@json_option
@click.pass_context
def model_delete(ctx: click.Context, model: str, yes: bool, as_json: bool) -> None:
    """Delete a model with all its versions and aliases; owners of its folder only.

    Asks first unless --yes. A new model of the same name is another model, numbered from 1.
    """
    confirm_deletion(f"Delete model {model} with all its versions and aliases?", yes=yes)

    async def delete(client: AsyncClient) -> tuple[str, v1.DeleteModelResponse]:
        model_id = await context.model_id(client, model)
        return model_id, await client.delete_model(model_id)

    model_id, deleted = context.run(ctx, delete)
    if as_json:
        out.print_json({"model_id": model_id, **out.jsonable(deleted)})
        return
    out.echo(f"Deleted model {model} with {deleted.deleted_versions} version(s).")
