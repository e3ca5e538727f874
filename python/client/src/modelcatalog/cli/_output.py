"""How the CLI shows things: Rich tables for people, JSON for scripts, progress bars.

Much of what the CLI prints is other users' text (names, descriptions, labels, the server's
error messages), so it is never read as Rich markup (a folder named ``[/]`` shows as such)
and its control and bidi characters are written as escapes (``\\x1b``, ``\\u202e``) by
``modelcatalog._text``, so it cannot steer the terminal. Commands print only through
this module: ``listing`` (a table, or JSON with ``--json``), ``show`` (one resource),
``created``, ``echo`` and ``print_json``; ``_errors`` escapes errors the same way.

JSON comes from betterproto's ``to_pydict`` with snake_case keys and every field present, so
the keys are the contract's field names and never depend on a value being set; timestamps
become RFC 3339 strings in UTC and enums their lowercase names (``"owner"``), the same words
the CLI accepts.

Rich and betterproto are imported where they are used, not at the top: ``modelcatalog --help``
and failures must not wait for them (see ``modelcatalog.cli``).
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, TextIO, TypeVar, cast

import click

from .._text import printable, printable_json

if TYPE_CHECKING:
    import betterproto
    from rich.console import Console, RenderableType
    from rich.text import Text

    from .. import ProgressCallback, v1

_Item = TypeVar("_Item")

_WIDE = 240
"""Console width when stdout is not a terminal, so piped tables are not squeezed."""


def jsonable(value: Any) -> Any:
    """Turn ``to_pydict`` output into plain JSON values (see the module docstring)."""
    import betterproto

    if isinstance(value, betterproto.Message):
        snake = cast(betterproto.Casing, betterproto.Casing.SNAKE)  # mypy sees the member's value
        value = value.to_pydict(casing=snake, include_default_values=True)
    if isinstance(value, dict):
        return {str(key): jsonable(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [jsonable(item) for item in value]
    if isinstance(value, datetime):
        return timestamp(value, sep="T", exact=True)
    if isinstance(value, betterproto.Enum):
        return enum_name(value)
    return value


def print_json(value: Any) -> None:
    """Print a message, a list of messages or plain data as indented JSON on stdout."""
    click.echo(printable_json(json.dumps(jsonable(value), indent=2, ensure_ascii=False)))


def listing(
    items: Sequence[_Item],
    as_json: bool,
    columns: Sequence[str],
    row: Callable[[_Item], Sequence[str]],
    *,
    empty: str,
) -> None:
    """Print a list: JSON with ``--json``, else a table of one ``row`` per item (or ``empty``)."""
    if as_json:
        print_json(items)
    else:
        table(columns, map(row, items), empty=empty)


def show(found: Any, pairs: Iterable[tuple[str, str]], as_json: bool) -> None:
    """Print one resource (a message or plain data): its JSON with ``--json``, else its
    ``pairs`` as aligned lines."""
    if as_json:
        print_json(found)
    else:
        details(pairs)


def created(
    kind: str, item: v1.Folder | v1.Model, as_json: bool, id_only: bool, *, existed: bool = False
) -> None:
    """Report a created (or, with ``--exist-ok``, ``existed``) folder or model: JSON, only its
    id (``--id-only``), or a sentence."""
    if as_json:
        print_json(item)
    elif id_only:
        echo(item.id)
    elif existed:
        echo(f"The {kind} {item.name} exists already: {item.id}")
    else:
        echo(f"Created {kind} {item.name}: {item.id}")


def echo(message: str, *, err: bool = False) -> None:
    """Print one line of text on stdout (or stderr) with its unsafe characters escaped."""
    click.echo(printable(message), err=err)


def enum_name(value: betterproto.Enum | int) -> str:
    """``FolderRole.OWNER`` → ``"owner"`` (betterproto strips the prefix); unknown ones as int."""
    import betterproto

    name = value.name if isinstance(value, betterproto.Enum) else None
    return name.lower() if name else str(int(value))


def timestamp(value: datetime | None, *, sep: str = " ", exact: bool = False) -> str:
    """A timestamp in UTC, e.g. ``2025-01-31 09:30:00Z``; unset ones (betterproto reads an
    unset Timestamp as the epoch) are ''. To the second for people; ``exact`` keeps the
    microseconds the server stores (JSON, which scripts feed back into a ``create_time``
    filter)."""
    if value is None:
        return ""
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    if value.timestamp() == 0:
        return ""
    utc = value.astimezone(UTC).replace(tzinfo=None)
    return (utc if exact else utc.replace(microsecond=0)).isoformat(sep) + "Z"


def human_size(size: int) -> str:
    """Bytes for people: ``1536`` → ``1.5 KiB``."""
    amount = float(size)
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if amount < 1024 or unit == "TiB":
            return f"{size} B" if unit == "B" else f"{amount:.1f} {unit}"
        amount /= 1024
    raise AssertionError("unreachable")  # pragma: no cover


def stdout_is_terminal() -> bool:
    """Whether stdout is an interactive terminal (progress bars and colours only then)."""
    isatty = getattr(sys.stdout, "isatty", None)
    return bool(isatty and isatty())


def console(*, stderr: bool = False) -> Console:
    """A Rich console on the current stdout or stderr (looked up now, so tests can swap it)."""
    from rich.console import Console

    stream: TextIO = sys.stderr if stderr else sys.stdout
    interactive = bool(getattr(stream, "isatty", None) and stream.isatty())
    width = None if interactive or "COLUMNS" in os.environ else _WIDE
    return Console(
        file=stream, width=width, soft_wrap=False, highlight=False, markup=False, emoji=False
    )


def _cell(value: str) -> Text:
    """A table cell that shows ``value`` as it is: no markup, unsafe characters escaped."""
    from rich.text import Text

    return Text(printable(value))


def table(
    columns: Sequence[str], rows: Iterable[Sequence[str]], *, empty: str = "nothing to list"
) -> None:
    """Print rows under a header; an empty list prints ``empty`` instead, to stderr."""
    rows = list(rows)
    if not rows:
        echo(f"({empty})", err=True)
        return
    from rich import box
    from rich.table import Table

    grid = Table(box=box.SIMPLE_HEAD, show_edge=False, pad_edge=False)
    for column in columns:
        if column == "ID" or column.endswith(" ID"):
            grid.add_column(column, no_wrap=True)  # an id is copied whole; others fold instead
        else:
            grid.add_column(column, overflow="fold")
    for row in rows:
        grid.add_row(*map(_cell, row))
    _print(grid)


def details(pairs: Iterable[tuple[str, str]]) -> None:
    """Print one resource as aligned ``key  value`` lines."""
    from rich.table import Table

    grid = Table.grid(padding=(0, 2))
    grid.add_column(style="bold")
    grid.add_column(overflow="fold")
    for key, value in pairs:
        grid.add_row(key, _cell(value))
    _print(grid)


def _print(renderable: RenderableType) -> None:
    """Print to stdout; when it is no terminal, without Rich's trailing padding."""
    target = console()
    if target.is_terminal:
        target.print(renderable)
        return
    with target.capture() as captured:
        target.print(renderable)
    click.echo("\n".join(line.rstrip() for line in captured.get().splitlines()))


@contextmanager
def transfer_progress(
    description: str, *, enabled: bool, total: int | None = None, resumable: bool = False
) -> Iterator[ProgressCallback]:
    """A callback for the SDK that drives a bar with bytes, throughput and ETA (binary units).

    With ``enabled`` false (``--quiet``, or stdout not a terminal) the callback does nothing
    and nothing is drawn. With ``resumable`` (downloads, uploads), a first call with bytes
    already done prints ``resuming from 123.4 MiB of 953.7 MiB``: the SDK reports where it
    starts before the first chunk.
    """
    if not enabled:
        yield _no_progress
        return
    from ._progress import TransferBar

    with TransferBar(description, total=total, resumable=resumable) as bar:
        yield bar


def _no_progress(done: int, total: int | None) -> None:
    """The progress callback when no bar is shown."""
