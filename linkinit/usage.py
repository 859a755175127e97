"""One argument parser for every linkinit command: bad usage exits 64, not argparse's 2."""

from __future__ import annotations

import argparse

from linkinit.errors import UsageError

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any


class UsageParser(argparse.ArgumentParser):
    """Raises ``UsageError`` (64) naming where help is, instead of printing and exiting 2.

    Abbreviations are off: ``--lin db1`` is not ``--link db1``. The proxy reads a parent's
    command line word by word to see which children it declares, and what linkinit accepts
    must be exactly what that reading finds.
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("allow_abbrev", False)
        super().__init__(*args, **kwargs)

    def error(self, message: str) -> Any:
        command = self.prog.split(" ", 1)[1] + ": " if " " in self.prog else ""
        raise UsageError(f"{command}{message} (see {self.prog} --help)")
