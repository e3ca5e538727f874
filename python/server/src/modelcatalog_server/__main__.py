"""``modelcatalog-server``: parse the settings, set up logging, serve."""

from __future__ import annotations

import logging
import os
import sys
from collections.abc import Sequence

from .app import StartupError, run
from .config import parse_settings
from .memory import tune_allocator


def main(argv: Sequence[str] | None = None) -> None:
    """Entry point of the ``modelcatalog-server`` console script."""
    settings = parse_settings(argv)
    # The data directory holds password hashes and every model: readable by this user only.
    os.umask(0o077)
    logging.basicConfig(
        level=settings.log_level.upper(),
        stream=sys.stderr,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    tune_allocator()
    try:
        run(settings)
    except StartupError as error:
        logging.getLogger("modelcatalog_server").error("%s", error)
        sys.exit(1)


if __name__ == "__main__":
    main()
