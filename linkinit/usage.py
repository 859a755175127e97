"""One argument parser for every linkinit command: bad usage exits 64, not argparse's 2."""

from __future__ import annotations

import argparse

from linkinit.errors import UsageError

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any


class UsageParser(argparse.ArgumentParser):
    """Raises ``UsageError`` (64) naming where help is, instead of printing and exiting 2."""

    def error(self, message: str) -> Any:
        command = self.prog.split(" ", 1)[1] + ": " if " " in self.prog else ""
        raise UsageError(f"{command}{message} (see {self.prog} --help)")
