"""``python -m modelcatalog.cli`` runs the command line, like the ``modelcatalog`` script."""

from . import main

main()
