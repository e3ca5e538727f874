"""The ``folder`` commands: create, list, show, edit, share, leave and delete folders."""

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
)

if TYPE_CHECKING:
    from .. import AsyncClient, v1

ROLES = ("viewer", "editor", "owner")


@click.group(
    cls=Group, context_settings=CONTEXT_SETTINGS, epilog=examples("modelcatalog folder list")
)
def folder() -> None:
    """Create, list, edit, share, leave and delete folders.

    FOLDER is a folder's id, or its name when only one folder you can see has it.
    """


def _folder_pairs(item: v1.Folder) -> list[tuple[str, str]]:
    return [
        ("id", item.id),
        ("name", item.name),
        ("description", item.description),
        ("your role", out.enum_name(item.caller_role)),
        ("creator", item.creator_username),
        ("created", out.timestamp(item.create_time)),
        ("updated", out.timestamp(item.update_time)),
        ("etag", item.etag),
    ]


@folder.command(
    "create",
    epilog=examples(
        "modelcatalog folder create vision",
        'modelcatalog folder create nlp --description "Language models"',
        "FOLDER=$(modelcatalog folder create vision --id-only)",
        "FOLDER=$(modelcatalog folder create vision --id-only --exist-ok)",
    ),
)
@click.argument("name")
@click.option("--description", default="", help="Free text, at most 4096 characters.")
@exist_ok_option("If you created a folder of this name already, print that one instead of failing.")
@connection_options
@json_option
@id_only_option
@click.pass_context
def folder_create(
    ctx: click.Context, name: str, description: str, exist_ok: bool, as_json: bool, id_only: bool
) -> None:
    """Create a folder; you become its owner. Prints its id."""

    async def create(client: AsyncClient) -> tuple[v1.Folder, bool]:
        """The folder, and whether it existed already (a folder you created and still see)."""
        from .. import AlreadyExists

        try:
            return await client.create_folder(name, description), False
        except AlreadyExists:
            if not exist_ok:
                raise
            me = (await client.get_current_user()).username
            async for found in client.list_folders():
                if found.name == name and found.creator_username == me:
                    return found, True
            raise

    made, existed = context.run(ctx, create)
    out.created("folder", made, as_json, id_only, existed=existed)


@folder.command(
    "list", epilog=examples("modelcatalog folder list", "modelcatalog folder list --json")
)
@connection_options
@json_option
@click.pass_context
def folder_list(ctx: click.Context, as_json: bool) -> None:
    """List the folders you have a role in, oldest first."""
    folders = context.run(ctx, lambda client: context.collect(client.list_folders()))
    out.listing(
        folders,
        as_json,
        ["ID", "NAME", "ROLE", "CREATOR", "CREATED"],
        lambda f: [
            f.id,
            f.name,
            out.enum_name(f.caller_role),
            f.creator_username,
            out.timestamp(f.create_time),
        ],
        empty="no folders; create one with `modelcatalog folder create NAME`",
    )


@folder.command(
    "show", epilog=examples("modelcatalog folder show vision", "modelcatalog folder show FOLDER_ID")
)
@folder_argument
@connection_options
@json_option
@click.pass_context
def folder_show(ctx: click.Context, folder: str, as_json: bool) -> None:
    """Show one folder, named by its id or its name."""

    async def show(client: AsyncClient) -> v1.Folder:
        return await client.get_folder(await context.folder_id(client, folder))

    found = context.run(ctx, show)
    out.show(found, _folder_pairs(found), as_json)


@folder.command(
    "update",
    epilog=examples(
        "modelcatalog folder update vision --name sight",
        'modelcatalog folder update FOLDER_ID --description "Image models"',
        "modelcatalog folder update FOLDER_ID --name sight --if-match ETAG --json",
    ),
)
@folder_argument
@click.option("--name", help="The new name, unique among the folders of its creator.")
@click.option("--description", help='The new description, at most 4096 characters ("" clears).')
@if_match_option("folder")
@connection_options
@json_option
@click.pass_context
def folder_update(
    ctx: click.Context,
    folder: str,
    name: str | None,
    description: str | None,
    if_match: str | None,
    as_json: bool,
) -> None:
    """Rename a folder or change its description; owners only.

    What is not given keeps its value. Prints the folder's new etag.
    """
    if name is None and description is None:
        raise click.UsageError("give --name, --description or both")

    async def update(client: AsyncClient) -> v1.Folder:
        folder_id = await context.folder_id(client, folder)
        return await client.update_folder(
            folder_id, name=name, description=description, etag=if_match
        )

    changed = context.run(ctx, update)
    if as_json:
        out.print_json(changed)
    else:
        out.echo(f"Updated folder {changed.name}: {changed.id} (etag {changed.etag})")


@folder.command(
    "grant",
    epilog=examples(
        "modelcatalog folder grant vision bob viewer",
        "modelcatalog folder grant FOLDER_ID carol owner",
    ),
)
@folder_argument
@click.argument("username")
@click.argument("role", type=click.Choice(ROLES, case_sensitive=False))
@connection_options
@json_option
@click.pass_context
def folder_grant(ctx: click.Context, folder: str, username: str, role: str, as_json: bool) -> None:
    """Give USERNAME a ROLE in a folder; owners only.

    It replaces any role they had.

    viewer: get, list, download. editor: also create models and upload versions. owner:
    also grant and revoke.
    """

    async def grant(client: AsyncClient) -> v1.FolderMember:
        folder_id = await context.folder_id(client, folder)
        return await client.grant_folder_access(folder_id, username, role.lower())

    member = context.run(ctx, grant)
    if as_json:
        out.print_json(member)
    else:
        out.echo(f"{member.username} is now {out.enum_name(member.role)} of folder {folder}.")


@folder.command("revoke", epilog=examples("modelcatalog folder revoke vision bob"))
@folder_argument
@click.argument("username")
@connection_options
@click.pass_context
def folder_revoke(ctx: click.Context, folder: str, username: str) -> None:
    """Remove USERNAME's role in a folder; owners only (anyone may remove their own).

    It succeeds if they had none. The folder's last owner cannot be removed.
    """

    async def revoke(client: AsyncClient) -> None:
        await client.revoke_folder_access(await context.folder_id(client, folder), username)

    context.run(ctx, revoke)
    out.echo(f"{username} has no role in folder {folder} any more.")


@folder.command("leave", epilog=examples("modelcatalog folder leave FOLDER_ID"))
@folder_argument
@connection_options
@click.pass_context
def folder_leave(ctx: click.Context, folder: str) -> None:
    """Give up your own role in a folder, e.g. one shared with you that you do not want.

    Any role may leave; the folder then no longer appears in your lists. Its last owner
    cannot leave: make another user owner first.
    """

    async def leave(client: AsyncClient) -> None:
        await client.leave_folder(await context.folder_id(client, folder))

    context.run(ctx, leave)
    out.echo(f"You left folder {folder}.")


@folder.command("access", epilog=examples("modelcatalog folder access vision"))
@folder_argument
@connection_options
@json_option
@click.pass_context
def folder_access(ctx: click.Context, folder: str, as_json: bool) -> None:
    """List who has which role in a folder."""

    async def members_of(client: AsyncClient) -> list[v1.FolderMember]:
        folder_id = await context.folder_id(client, folder)
        return await context.collect(client.list_folder_access(folder_id))

    members = context.run(ctx, members_of)
    out.listing(
        members,
        as_json,
        ["USERNAME", "ROLE", "USER ID", "SINCE"],
        lambda m: [m.username, out.enum_name(m.role), m.user_id, out.timestamp(m.update_time)],
        empty="nobody has access",
    )


@folder.command(
    "delete",
    epilog=examples(
        "modelcatalog folder delete vision",
        "modelcatalog folder delete FOLDER_ID --force --yes",
    ),
)
@folder_argument
@click.option(
    "--force",
    is_flag=True,
    help="Also delete the folder's models, with all their versions and aliases.",
)
@yes_option
@connection_options
@json_option
@click.pass_context
def folder_delete(ctx: click.Context, folder: str, force: bool, yes: bool, as_json: bool) -> None:
    """Delete a folder and everyone's access to it; owners only.

    A folder that still holds models is refused unless --force, which deletes them too, with
    their versions and aliases. Asks first unless --yes.
    """
    what = "with all its models, versions and aliases" if force else "(it must hold no models)"
    confirm_deletion(f"Delete folder {folder} {what}?", yes=yes)

    async def delete(client: AsyncClient) -> tuple[str, v1.DeleteFolderResponse]:
        folder_id = await context.folder_id(client, folder)
        return folder_id, await client.delete_folder(folder_id, force=force)

    folder_id, deleted = context.run(ctx, delete)
    if as_json:
        out.print_json({"folder_id": folder_id, **out.jsonable(deleted)})
        return
    out.echo(
        f"Deleted folder {folder} with {deleted.deleted_models} model(s) and"
        f" {deleted.deleted_versions} version(s)."
    )
