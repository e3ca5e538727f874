"""The ``audit`` commands (who did what) and ``watch`` (changes as they happen)."""

from __future__ import annotations

import json
from datetime import datetime
from typing import TYPE_CHECKING

import click

from .._text import printable_json
from . import _context as context
from . import _output as out
from ._root import CONTEXT_SETTINGS, Group, connection_options, examples, json_option

if TYPE_CHECKING:
    from .. import AsyncClient, v1


@click.group(
    cls=Group,
    context_settings=CONTEXT_SETTINGS,
    epilog=examples(
        "modelcatalog audit list",
        "modelcatalog audit list --folder vision --action DownloadModelVersion --json",
    ),
)
def audit() -> None:
    """Read the audit trail: every change, download and sign-in, who made it and how it ended.

    Owners of a folder list its events; everyone lists their own (their calls, and failed
    sign-ins to their account). The server keeps events for its --audit-retention period.
    """


#: UTC times as people type them, and as the CLI prints them (ISO 8601 with a "Z").
_TIME = click.DateTime(
    formats=[
        "%Y-%m-%d",
        "%Y-%m-%dT%H:%M:%S",
        "%Y-%m-%d %H:%M:%S",
        "%Y-%m-%dT%H:%M:%SZ",
        "%Y-%m-%d %H:%M:%SZ",
        "%Y-%m-%dT%H:%M:%S.%fZ",
    ]
)


@audit.command(
    "list",
    epilog=examples(
        "modelcatalog audit list --folder vision",
        "modelcatalog audit list --folder vision --actor ci-bot --since 2026-11-01",
        "modelcatalog audit list --folder vision --resource models/ID/versions/3 --json",
    ),
)
@click.option("--folder", metavar="FOLDER", help="A folder you own (id or name): its events.")
@click.option("--actor", metavar="USERNAME", default="", help="Only events by this user.")
@click.option(
    "--action", metavar="RPC", default="", help="Only this action, e.g. DownloadModelVersion."
)
@click.option(
    "--resource",
    metavar="NAME",
    default="",
    help=(
        "Only events on exactly this resource: models/ID for the model itself (not its"
        " versions), models/ID/versions/3 for a version."
    ),
)
@click.option("--since", type=_TIME, help="Only events at or after this time (UTC).")
@click.option("--until", type=_TIME, help="Only events before this time (UTC).")
@click.option(
    "--limit", type=click.IntRange(min=1), default=100, show_default=True, help="Events at most."
)
@connection_options
@json_option
@click.pass_context
def audit_list(
    ctx: click.Context,
    folder: str | None,
    actor: str,
    action: str,
    resource: str,
    since: datetime | None,
    until: datetime | None,
    limit: int,
    as_json: bool,
) -> None:
    """List recorded events, newest first: a folder's with --folder, else your own."""
    from datetime import UTC

    async def events_of(client: AsyncClient) -> list[v1.AuditEvent]:
        folder_id = await context.folder_id(client, folder) if folder else None
        found: list[v1.AuditEvent] = []
        async for event in client.list_audit_events(
            folder_id,
            min(limit, 1000),
            actor=actor,
            action=action,
            resource=resource,
            start_time=since.replace(tzinfo=UTC) if since else None,
            end_time=until.replace(tzinfo=UTC) if until else None,
        ):
            found.append(event)
            if len(found) == limit:
                break
        return found

    events = context.run(ctx, events_of)
    out.listing(
        events,
        as_json,
        ["TIME", "ACTOR", "TOKEN", "ACTION", "RESOURCE", "OUTCOME", "PEER", "DETAILS"],
        lambda e: [
            out.timestamp(e.time),
            e.actor_username or e.actor_user_id or "-",
            e.token_name or "-",
            e.action,
            e.resource or "-",
            e.outcome,
            e.peer or "-",
            " ".join(f"{key}={value}" for key, value in sorted(e.details.items())),
        ],
        empty="no events",
    )


@click.command(
    context_settings=CONTEXT_SETTINGS,
    epilog=examples(
        "modelcatalog watch",
        "modelcatalog watch --folder vision --alias production",
        "modelcatalog watch --folder vision --json --after 1234",
    ),
)
@click.option("--folder", metavar="FOLDER", help="Only this folder's events (id or name).")
@click.option("--alias", default="", help="Only the moves and deletions of this alias.")
@click.option(
    "--after",
    type=click.IntRange(min=0),
    metavar="EVENT_ID",
    help="Start after this event id (catch up on what happened since); default: from now.",
)
@connection_options
@click.option(
    "--json",
    "as_json",
    is_flag=True,
    help="Print one JSON object (snake_case keys) per line instead of text.",
)
@click.pass_context
def watch(
    ctx: click.Context, folder: str | None, alias: str, after: int | None, as_json: bool
) -> None:
    """Print changes in your folders as they happen, one line per event, until Ctrl-C.

    New versions, alias moves and deletions, grants and revocations, deleted versions, models
    and folders, in the order they were made. A broken connection is reopened after the last
    event printed, so none is missed or printed twice. Each line starts with the event id:
    pass the last one to --after to catch up later.
    """

    async def follow(client: AsyncClient) -> None:
        folder_id = await context.folder_id(client, folder) if folder else None
        async for event in client.watch_events(folder_id, alias=alias, after_event_id=after):
            if as_json:
                line = json.dumps(out.jsonable(event), ensure_ascii=False)
                click.echo(printable_json(line))
            else:
                out.echo(_described(event))

    context.run(ctx, follow)


def _described(event: v1.CatalogEvent) -> str:
    """One line for people: id, time, what happened, to what, and by whom."""
    parts = [str(event.id), out.timestamp(event.time), out.enum_name(event.kind)]
    fields = (
        ("folder", event.folder_id),
        ("model", event.model_id),
        ("version", str(event.version) if event.version else ""),
        ("alias", event.alias),
        ("user", event.username),
        ("role", out.enum_name(event.role) if event.role else ""),
        ("by", event.actor_username),
    )
    parts += [f"{name}={value}" for name, value in fields if value]
    return " ".join(parts)
