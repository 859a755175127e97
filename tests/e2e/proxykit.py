"""Helpers for the proxy's tests: the real ``linkinit proxy`` process, and an Engine socket the
test can take away and give back (a forwarder to the real one), so that "the Engine
restarted" is tested without touching the machine's dockerd, which others use."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
from pathlib import Path
from typing import Any, Iterator, Optional, Sequence

from tests.support.processes import wait_for

from .conftest import ROOT

ENGINE = "/var/run/docker.sock"
REQUEST = ROOT / "tests" / "programs" / "engine_request.py"
IN_CONTAINER_REQUEST = "/opt/linkinit-tests/engine_request.py"
IN_CONTAINER_INSPECT_AFTER_EVENT = "/opt/linkinit-tests/inspect_after_event.py"
MOUNT = "/run/linkinit"


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
                stdout=log, stderr=log, env=self.environ, start_new_session=True)
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

    def ask(self, method: str, path: str, stream: float = 0) -> dict:
        """One request from this (host) process, through the proxy."""
        return host_request(self.socket, method, path, stream)


def host_request(socket_path: str, method: str, path: str, stream: float = 0) -> dict:
    argv = [sys.executable, str(REQUEST), socket_path, method, path]
    if stream:
        argv += ["--stream", str(stream)]
    done = subprocess.run(argv, capture_output=True, text=True, timeout=30 + 2 * stream)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


def container_request(container: Any, method: str, path: str, stream: float = 0) -> dict:
    """One request from inside a container, as its application could make it."""
    argv = ["python3", IN_CONTAINER_REQUEST, f"{MOUNT}/engine.sock", method, path]
    if stream:
        argv += ["--stream", str(stream)]
    code, out = container.exec_run(argv)
    assert code == 0, out.decode(errors="replace")
    return json.loads(out.decode().strip().splitlines()[-1])


def proxies() -> Iterator[Any]:
    """The body of the ``start_proxy`` fixture: each proxy started is stopped by PID and its
    directory removed after the test."""
    made: list[ProxyProcess] = []

    def start(*args: str, upstream: Optional[str] = None) -> ProxyProcess:
        proxy = ProxyProcess(args, upstream)
        made.append(proxy)
        return proxy.start()

    try:
        yield start
    finally:
        for proxy in made:
            proxy.cleanup()


class Forwarder:
    """A Unix socket forwarding to the real Engine; ``stop`` breaks every open connection and
    leaves nothing listening, as an Engine restart does; ``start`` brings it back. Counts the
    connections it accepted and the event streams opened through it. An ``upstream`` that does
    not answer makes it an Engine that hangs up on every request."""

    def __init__(self, path: str, upstream: str = ENGINE) -> None:
        self.path = path
        self.upstream = upstream
        self.event_streams = 0
        self.accepted = 0
        self._server: Optional[socket.socket] = None
        self._open: set[socket.socket] = set()
        self._lock = threading.Lock()

    def start(self) -> Forwarder:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(self.path)
        server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        server.bind(self.path)
        server.listen(64)
        self._server = server
        threading.Thread(target=self._accept, args=(server,), daemon=True).start()
        return self

    def stop(self) -> None:
        server, self._server = self._server, None
        if server is not None:
            with contextlib.suppress(OSError):
                server.shutdown(socket.SHUT_RDWR)
            server.close()
        with self._lock:
            for sock in list(self._open):
                with contextlib.suppress(OSError):
                    sock.shutdown(socket.SHUT_RDWR)
                sock.close()
            self._open.clear()

    def _accept(self, server: socket.socket) -> None:
        while self._server is server:
            try:
                client, _ = server.accept()
            except OSError:
                return
            self.accepted += 1
            engine = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            try:
                engine.connect(self.upstream)
            except OSError:
                client.close()
                engine.close()
                continue
            with self._lock:
                self._open.update((client, engine))
            threading.Thread(target=self._pump, args=(client, engine, True), daemon=True).start()
            threading.Thread(target=self._pump, args=(engine, client, False), daemon=True).start()

    def _pump(self, source: socket.socket, sink: socket.socket, requests: bool) -> None:
        try:
            while True:
                data = source.recv(65536)
                if not data:
                    break
                if requests and data.startswith(b"GET /events"):
                    self.event_streams += 1
                sink.sendall(data)
        except OSError:
            pass
        finally:
            for sock in (source, sink):
                with contextlib.suppress(OSError):
                    sock.shutdown(socket.SHUT_RDWR)
