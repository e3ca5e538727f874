"""The ``modelcatalog`` command line, built on the async SDK.

``main`` is the console script; ``cli`` is the Click command tree it runs (the interactive
``modelcatalog shell`` dispatches to the same tree).
"""

from ._app import cli, main

__all__ = ["cli", "main"]
