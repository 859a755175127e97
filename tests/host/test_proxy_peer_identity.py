"""The proxy pins the process that connected (``host/proxy/connections.py``): a live peer's
facts are read and proven, a peer gone before accept is refused, with the kernel's pidfd
(``SO_PEERPIDFD``) and with the older kernels' ``SO_PEERCRED`` + ``pidfd_open``."""

from __future__ import annotations

import contextlib
import os
import resource
import socket
import subprocess
import sys
from pathlib import Path
from typing import Iterator

import pytest

from linkinit.engine.identity import pid_namespace
from linkinit.host.proxy import connections

CONNECT_AND_WAIT = ("import socket, sys; s = socket.socket(socket.AF_UNIX); s.connect(sys.argv[1]);"
                    " print('connected', flush=True); sys.stdin.read()")
CONNECT_AND_EXIT = "import socket, sys; s = socket.socket(socket.AF_UNIX); s.connect(sys.argv[1])"


@pytest.fixture(params=["pidfd", "old kernel"])
def kernel(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    """Both ways of pinning: an option number no kernel knows stands for a kernel before
    Linux 6.5 (it answers ENOPROTOOPT, as those do for SO_PEERPIDFD)."""
    if request.param == "old kernel":
        monkeypatch.setattr(connections, "SO_PEERPIDFD", 0x7FFF)
    return str(request.param)


@pytest.fixture
def listener(tmp_path: Path) -> Iterator[socket.socket]:
    server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    server.bind(str(tmp_path / "proxy.sock"))
    server.listen(4)
    server.settimeout(20)
    with server:
        yield server


def test_a_live_peer_is_pinned_with_its_facts(kernel: str, listener: socket.socket) -> None:
    peer = subprocess.Popen([sys.executable, "-c", CONNECT_AND_WAIT, listener.getsockname()],
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        assert peer.stdout is not None and peer.stdout.readline().strip() == "connected"
        accepted, _ = listener.accept()
        with accepted:
            facts, pidfd = connections.identify(accepted)
        assert pidfd is not None
        os.close(pidfd)
        assert facts.pid == peer.pid and not facts.gone and not facts.busy
        assert facts.namespace == pid_namespace(peer.pid)
    finally:
        peer.kill()
        peer.wait(timeout=10)


def test_a_peer_gone_before_accept_is_refused(kernel: str, listener: socket.socket) -> None:
    """Connected, exited and reaped before the proxy accepted: its PID may be anyone's."""
    subprocess.run([sys.executable, "-c", CONNECT_AND_EXIT, listener.getsockname()],
                   check=True, timeout=30)
    accepted, _ = listener.accept()
    with accepted:
        facts, pidfd = connections.identify(accepted)
    assert facts.gone and pidfd is None and facts.candidates == ()


def test_out_of_descriptors_is_busy_never_no_container(kernel: str,
                                                       listener: socket.socket) -> None:
    """EMFILE while pinning the peer: the proxy says it is busy (a 503 upstream), not that
    the caller is in no container."""
    peer = subprocess.Popen([sys.executable, "-c", CONNECT_AND_WAIT, listener.getsockname()],
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    filler: list[int] = []
    try:
        assert peer.stdout is not None and peer.stdout.readline().strip() == "connected"
        accepted, _ = listener.accept()
        with accepted:
            resource.setrlimit(resource.RLIMIT_NOFILE, (len(os.listdir("/proc/self/fd")) + 8,
                                                        hard))
            with contextlib.suppress(OSError):
                for _ in range(64):  # bounded: the limit is a few descriptors away
                    filler.append(os.open("/dev/null", os.O_RDONLY))
            facts, pidfd = connections.identify(accepted)
        assert pidfd is None and not facts.gone
        assert "Too many open files" in facts.busy
    finally:
        for fd in filler:
            os.close(fd)
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))
        peer.kill()
        peer.wait(timeout=10)
