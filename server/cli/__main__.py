"""``python -m server.cli``: the ``vaki`` command without its console script."""

from server.cli import main

main()
