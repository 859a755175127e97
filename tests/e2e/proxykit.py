"""Helpers for the proxy's tests: the real ``linkinit proxy`` process, and an Engine socket the
test can take away and give back (a forwarder to the real one), so that "the Engine
restarted" is tested without touching the machine's dockerd, which others use."""

from __future__ import annotations

import contextlib
import json
import os
import socket
import subprocess
import sys
import threading
from typing import Any, Iterator, Optional

from tests.support.proxy_process import MOUNT
from tests.support.proxy_process import ProxyProcess as BaseProxyProcess

from .conftest import ROOT

ENGINE = "/var/run/docker.sock"
REQUEST = ROOT / "tests" / "programs" / "engine_request.py"
IN_CONTAINER_REQUEST = "/opt/linkinit-tests/engine_request.py"
IN_CONTAINER_INSPECT_AFTER_EVENT = "/opt/linkinit-tests/inspect_after_event.py"


class ProxyProcess(BaseProxyProcess):
    """The proxy process, with a request from this (host) process through it."""

    def ask(self, method: str, path: str, stream: float = 0) -> dict:
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
        proxy.start()
        return proxy

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
