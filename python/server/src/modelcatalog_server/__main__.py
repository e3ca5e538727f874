"""``modelcatalog-server``: parse the settings, set up the process, serve."""

from __future__ import annotations

import logging
import sys
from collections.abc import Sequence

from .app import StartupError, run, set_up_process
from .config import parse_settings
from .workers import WorkerFailure, supervise


def main(argv: Sequence[str] | None = None) -> None:
    """Entry point of the ``modelcatalog-server`` console script."""
    settings = parse_settings(argv)
    set_up_process(settings)
    try:
        if settings.workers > 1:
            supervise(settings)
        else:
            run(settings)
    except (StartupError, WorkerFailure) as error:
        logging.getLogger("modelcatalog_server").error("%s", error)
        sys.exit(1)


if __name__ == "__main__":
    main()
