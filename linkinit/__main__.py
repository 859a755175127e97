"""``python -m linkinit``: the same as the ``linkinit`` command."""

from linkinit.cli import main

main()
