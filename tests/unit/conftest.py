"""What every unit test leaves as it found it."""

from __future__ import annotations

import signal
from typing import Iterator

import pytest


@pytest.fixture(autouse=True)
def signal_mask_restored() -> Iterator[None]:
    """A test that runs linkinit's command line in this process (``cli.run``) blocks signals
    as PID 1 does, and a blocked mask is inherited by every process started afterwards: the
    host tests' COMMANDs would then ignore the very signals they are sent."""
    saved = signal.pthread_sigmask(signal.SIG_BLOCK, [])
    yield
    signal.pthread_sigmask(signal.SIG_SETMASK, saved)
