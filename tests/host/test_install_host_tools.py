"""The README's one command for the host tools: scripts/install-host-tools puts a working
`linkinit` (with the proxy's aiohttp) on PATH from this checkout."""

from __future__ import annotations

import subprocess

import pytest

from tests.support.paths import ROOT

pytestmark = pytest.mark.timeout(600)  # a venv and a wheel of the checkout: ~40 s here


def test_install_host_tools_gives_a_linkinit_with_every_host_tool(tmp_path):
    prefix, bindir = tmp_path / "venv", tmp_path / "bin"
    subprocess.run([str(ROOT / "scripts" / "install-host-tools"), str(prefix), str(bindir)],
                   check=True, capture_output=True, timeout=540)
    linkinit = bindir / "linkinit"
    assert linkinit.resolve() == (prefix / "bin" / "linkinit").resolve()
    for tool in ("ls", "guard", "proxy"):
        done = subprocess.run([str(linkinit), tool, "--help"], capture_output=True, text=True,
                              timeout=60)
        assert done.returncode == 0, done.stderr
        assert done.stdout.startswith(f"usage: linkinit {tool}")
