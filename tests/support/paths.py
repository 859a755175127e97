"""Where things are, named once for every test suite."""

from __future__ import annotations

import os
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]  # the repository
BASE_IMAGE = os.environ.get("LINKINIT_BASE_IMAGE", "linkinit-base:bookworm")
