"""``linkinit proxy`` as a process that tests and benchmarks start and stop: one launcher for
both (bench/linkproxy.py builds on it), its socket in a directory of its own, its log kept
beside it."""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Optional, Sequence

from tests.support.paths import ROOT
from tests.support.processes import wait_for

MOUNT = "/run/linkinit"  # where a parent mounts the proxy's directory


class ProxyProcess:
    """``linkinit proxy`` started by a test, stopped by its PID; its socket in a fresh dir."""

    def __init__(self, args: Sequence[str] = (), upstream: Optional[str] = None) -> None:
        self.directory = Path(tempfile.mkdtemp(prefix="linkinit-proxy-"))
        os.chmod(self.directory, 0o755)
        self.socket = str(self.directory / "engine.sock")
        self.log = self.directory.with_suffix(".log")
        self.args = ["--listen", self.socket, "--verbose", *args]
        self.environ = dict(os.environ)
        self.environ.pop("DOCKER_HOST", None)
        if upstream:
            self.environ["DOCKER_HOST"] = f"unix://{upstream}"
        self.popen: Optional[subprocess.Popen] = None

    @property
    def volumes(self) -> dict:
        """What a parent mounts: the directory, read-only, where linkinit looks for it."""
        return {str(self.directory): {"bind": MOUNT, "mode": "ro"}}

    def start(self) -> ProxyProcess:
        with open(self.log, "ab") as log:
            self.popen = subprocess.Popen(
                [sys.executable, "-m", "linkinit", "proxy", *self.args],
                stdout=log, stderr=log, env=self.environ, cwd=ROOT, start_new_session=True)
        wait_for(lambda: self._listening() or self.popen.poll() is not None, 20,  # type: ignore[union-attr]
                 "the proxy listening")
        assert self.popen.poll() is None, self.output()
        return self

    def _listening(self) -> bool:
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as probe:
            try:
                probe.connect(self.socket)
            except OSError:
                return False
        return True

    def stop(self, sig: int = signal.SIGTERM) -> int:
        """Stop by PID; SIGKILL if it has not ended within 10 s. Returns its exit status."""
        if self.popen is None or self.popen.poll() is not None:
            return self.popen.returncode if self.popen else 0
        os.kill(self.popen.pid, sig)
        try:
            return self.popen.wait(timeout=10)
        except subprocess.TimeoutExpired:
            os.kill(self.popen.pid, signal.SIGKILL)
            self.popen.wait(timeout=10)
            raise AssertionError("the proxy did not stop within 10 s of SIGTERM") from None

    def restart(self) -> ProxyProcess:
        """Stop and start again on the same socket, as systemd would after a crash."""
        self.stop()
        return self.start()

    def output(self) -> str:
        return self.log.read_text(errors="replace") if self.log.exists() else ""

    def cleanup(self) -> None:
        with contextlib.suppress(AssertionError):
            self.stop()
        shutil.rmtree(self.directory, ignore_errors=True)
        with contextlib.suppress(OSError):
            self.log.unlink()
