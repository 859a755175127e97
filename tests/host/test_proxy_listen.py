"""``linkinit proxy --listen`` as a process: a Unix socket and a TCP address at once, in front of
a fake Engine; a loopback caller on TCP is this host (refused unless --allow-host), asked
through linkinit's own Engine client as a parent's start path would ask; SIGTERM removes the
socket. Addresses that cannot be listened on are usage errors (64), one line each."""

from __future__ import annotations

import contextlib
import os
import resource
import signal
import socket
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Iterator

import pytest

from linkinit.engine.client import Engine
from linkinit.errors import EngineRefused, UsageError
from linkinit.host.proxy.daemon import Listen, listen_address, parse
from tests.support.fake_engine import FakeEngine, Step, http, json_answer, ping
from tests.support.processes import wait_for

HOST_DOC = {"Id": "1" * 64, "Name": "/db1", "Config": {}, "State": {"Running": True}}


def engine_answers(line: str) -> list[Step]:
    if line.startswith("GET /_ping") or line.startswith("HEAD /_ping"):
        return [ping()]
    if line.startswith("GET /events"):
        return [http(200, b"", ["Content-Type: application/json"], length=False), 30.0]
    if line.startswith("GET ") and "/containers/db1/json " in line:
        return [json_answer(HOST_DOC)]
    return [json_answer({"message": "page not found"}, 404)]


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


class Daemon:
    def __init__(self, *args: str) -> None:
        self.fake = FakeEngine(engine_answers, linger=30)
        self.dir = Path(tempfile.mkdtemp(prefix="linkinit-proxy-listen-"))
        self.socket = str(self.dir / "run" / "engine.sock")
        self.port = free_port()
        self.log = self.dir / "proxy.log"
        environ = dict(os.environ, DOCKER_HOST=self.fake.host)
        with open(self.log, "wb") as log:
            self.popen = subprocess.Popen(
                [sys.executable, "-m", "linkinit", "proxy", "--listen", self.socket,
                 "--listen", f"tcp://127.0.0.1:{self.port}", *args],
                stdout=log, stderr=log, env=environ, start_new_session=True)
        wait_for(lambda: "listening on" in self.output() or self.popen.poll() is not None,
                 20, "the proxy listening")
        assert self.popen.poll() is None, self.output()

    def output(self) -> str:
        return self.log.read_text(errors="replace")

    def stop(self) -> int:
        if self.popen.poll() is None:
            os.kill(self.popen.pid, signal.SIGTERM)
            try:
                self.popen.wait(timeout=10)
            except subprocess.TimeoutExpired:
                os.kill(self.popen.pid, signal.SIGKILL)
                self.popen.wait(timeout=10)
        return self.popen.returncode

    def cleanup(self) -> None:
        self.stop()
        self.fake.close()
        with contextlib.suppress(OSError):
            for path in sorted(self.dir.rglob("*"), reverse=True):
                path.unlink() if not path.is_dir() else path.rmdir()
            self.dir.rmdir()


@pytest.fixture
def start() -> Iterator:
    made: list[Daemon] = []

    def run(*args: str) -> Daemon:
        made.append(Daemon(*args))
        return made[-1]

    yield run
    for daemon in made:
        daemon.cleanup()


def test_one_proxy_listens_on_a_unix_socket_and_tcp(start) -> None:
    daemon = start()
    assert f"listening on {daemon.socket}, tcp://127.0.0.1:{daemon.port}" in daemon.output()
    assert os.stat(daemon.socket).st_mode & 0o777 == 0o666
    tcp = Engine(f"tcp://127.0.0.1:{daemon.port}")
    with pytest.raises(EngineRefused) as refused:
        tcp.ping()
    assert refused.value.http_status == 403
    assert "the caller at 127.0.0.1:" in str(refused.value)
    assert "(loopback), refused unless the proxy runs with --allow-host" in str(refused.value)
    assert "refused GET /_ping for host (127.0.0.1:" in daemon.output()
    assert daemon.stop() == 0
    assert not os.path.exists(daemon.socket), "SIGTERM removes the Unix socket"


def test_with_allow_host_a_loopback_caller_reads_like_the_host(start) -> None:
    daemon = start("--allow-host")
    tcp = Engine(f"tcp://127.0.0.1:{daemon.port}")
    tcp.ping()
    assert tcp.inspect_container("db1") == HOST_DOC
    assert Engine(f"unix://{daemon.socket}").inspect_container("db1") == HOST_DOC


@pytest.mark.parametrize(
    ("text", "listen"),
    [("/run/linkinit/engine.sock", Listen("/run/linkinit/engine.sock",
                                          "/run/linkinit/engine.sock", None, 0)),
     ("unix:///run/x.sock", Listen("unix:///run/x.sock", "/run/x.sock", None, 0)),
     ("tcp://0.0.0.0:2375", Listen("tcp://0.0.0.0:2375", "", "0.0.0.0", 2375)),
     ("tcp://10.0.1.9", Listen("tcp://10.0.1.9", "", "10.0.1.9", 2375)),
     ("tcp://:2376", Listen("tcp://:2376", "", None, 2376)),
     ("tcp://[::]:2375", Listen("tcp://[::]:2375", "", "::", 2375))],
)
def test_listen_addresses(text: str, listen: Listen) -> None:
    assert listen_address(text) == listen


@pytest.mark.parametrize("text", ["relative.sock", "http://x:1", "tcp://x:99999",
                                  "tcp://x:2375/path", "tcp://x:port"])
def test_listen_addresses_that_are_no_addresses_are_usage_errors(text: str) -> None:
    with pytest.raises(UsageError) as error:
        listen_address(text)
    assert f"--listen {text}" in str(error.value)


def test_without_listen_the_unix_socket_is_the_default() -> None:
    options = parse([], {})
    assert [listen.text for listen in options.listens] == ["/run/linkinit/engine.sock"]
    twice = parse(["--listen", "tcp://0.0.0.0:2375", "--listen", "/run/x/e.sock"], {})
    assert [listen.port for listen in twice.listens] == [2375, 0]


def test_a_tcp_address_taken_already_is_a_usage_error(tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen(1)
        port = taken.getsockname()[1]
        done = subprocess.run(
            [sys.executable, "-m", "linkinit", "proxy", "--listen", f"tcp://127.0.0.1:{port}"],
            capture_output=True, text=True, timeout=30,
            env=dict(os.environ, DOCKER_HOST=f"unix://{tmp_path}/none.sock"))
    assert done.returncode == 64, done.stderr
    assert f"proxy --listen tcp://127.0.0.1:{port}: " in done.stderr
    assert "Traceback" not in done.stderr


def test_the_proxy_raises_its_open_files_limit_to_the_hard_one(start) -> None:
    """Each caller's connection is a descriptor: started with a soft limit of 256, the proxy
    runs with its hard limit."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (256, hard))
    try:
        daemon = start()
    finally:
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))
    limits = Path(f"/proc/{daemon.popen.pid}/limits").read_text().splitlines()
    files = next(line for line in limits if line.startswith("Max open files")).split()
    expected = "unlimited" if hard == resource.RLIM_INFINITY else str(hard)
    assert files[3:5] == [expected, expected]
