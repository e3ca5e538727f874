"""The suite's figures in order of importance, each with the rows it reports."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from . import cli, codec, health, memory, transfer, unary, workers
from ._report import Comparison
from ._session import Session

#: Each figure: the coroutine that measures it and the comparisons it reports.
FIGURES: dict[str, tuple[Callable[[Session], Awaitable[None]], list[Comparison]]] = {
    "transfer": (transfer.run, transfer.COMPARISONS),
    "unary": (unary.run, unary.COMPARISONS),
    "workers": (workers.run, workers.COMPARISONS),
    "memory": (memory.run, memory.COMPARISONS),
    "health": (health.run, health.COMPARISONS),
    "cli": (cli.run, cli.COMPARISONS),
    "codec": (codec.run, codec.COMPARISONS),
}
