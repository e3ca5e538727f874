"""The ``modelcatalog`` command line, built on the SDK; it needs the ``modelcatalog[cli]`` extra.

``main`` is the console script; ``cli`` is the Click command tree it runs (the interactive
``modelcatalog shell`` dispatches to the same tree). Importing it loads Click and the CLI's
own modules only; the SDK and Rich come in when a command needs them, so `--help` is quick.

``main`` first checks that the extra's packages are installed, so that the console script of an
SDK-only install says how to get the command line instead of failing with a traceback.
"""

from __future__ import annotations

import sys
from collections.abc import Iterable
from importlib import import_module
from importlib.util import find_spec
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from ._app import cli
    from ._context import State

__all__ = ["cli", "main"]

CLI_EXTRA_PACKAGES = ("click", "rich")
"""What ``pip install 'modelcatalog[cli]'`` adds to the SDK."""


def main(argv: Iterable[str] | None = None, obj: State | None = None) -> None:
    """The console script: run the command line and exit with its status.

    ``obj`` is the run's state, e.g. with another client factory; a default one otherwise.
    """
    try:
        from ._app import main as run

        missing = [] if find_spec("rich") else ["rich"]  # imported only when a command draws
    except ModuleNotFoundError as error:
        if error.name not in CLI_EXTRA_PACKAGES:
            raise
        missing = [error.name]
    if missing:
        sys.exit(
            f"error: the modelcatalog command line needs {missing[0]}, which comes with its"
            " [cli] extra; install it with: pip install 'modelcatalog[cli]'"
        )
    run(argv, obj)


def __getattr__(name: str) -> object:
    """``cli``, the command tree, imported on first use (it needs Click)."""
    if name == "cli":
        return import_module("._app", __name__).cli
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
