"""The ``modelcatalog`` command line, built on the async SDK.

``main`` is the console script; ``cli`` is the Click command tree it runs (the interactive
``modelcatalog shell`` dispatches to the same tree). Importing it loads Click and the CLI's
own modules only; the SDK and Rich come in when a command needs them, so `--help` is quick.
"""

from ._app import cli, main

__all__ = ["cli", "main"]
