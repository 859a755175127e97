"""The proxy under bad input and faults: every bad client is answered or dropped alone, an
Engine that goes away gives a clear 503 and comes back, and a restarted proxy serves the
parents that were already running. Callers here are host processes (``--allow-host``) unless
a container is the point."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any, Iterator

import pytest

from .dockerkit import env_lines, output, wait_exit, wait_until
from .linkkit import run_parent, start_child
from .pid1_helpers import process_table
from .proxykit import Forwarder, ProxyProcess, container_request, proxies

pytestmark = pytest.mark.timeout(180)


@pytest.fixture
def start_proxy() -> Iterator[Any]:
    yield from proxies()


@pytest.fixture
def away_engine(tmp_path: Path) -> Iterator[Forwarder]:
    """An Engine socket the test can take away: a forwarder to the real one. (Not named
    ``engine``: conftest's ``engine`` is the engine under test, which docker_client needs.)"""
    forwarder = Forwarder(str(tmp_path / "engine.sock")).start()
    yield forwarder
    forwarder.stop()


def raw(proxy: ProxyProcess, data: bytes, timeout: float = 10) -> bytes:
    """Send bytes as they are (not HTTP, on purpose) and read until the proxy closes."""
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
        sock.settimeout(timeout)
        sock.connect(proxy.socket)
        sock.sendall(data)
        received = b""
        while chunk := sock.recv(65536):
            received += chunk
        return received


def status_of(answer: bytes) -> int:
    """The status of the answer's first line (HTTP/1.0 or 1.1)."""
    assert answer.startswith(b"HTTP/1."), answer[:80]
    return int(answer[9:12])


def still_serves(proxy: ProxyProcess) -> None:
    assert proxy.ask("GET", "/_ping") == {"status": 200, "body": "OK"}
    assert "Traceback" not in proxy.output()


@pytest.mark.parametrize(
    "request_bytes",
    [b"GARBAGE\r\n\r\n", b"GET /_ping HTTP/9\r\n\r\n", b"GET /_ping HTTP/1.1\r\nNo colon\r\n\r\n",
     b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03" + b"\0" * 40],
    ids=["no-method-path", "bad-version", "bad-header", "tls-hello"],
)
def test_a_malformed_request_is_answered_400_and_others_go_on(start_proxy, request_bytes):
    proxy = start_proxy("--allow-host")
    assert status_of(raw(proxy, request_bytes)) == 400
    still_serves(proxy)


def test_oversized_headers_are_refused(start_proxy):
    proxy = start_proxy("--allow-host")
    huge = b"GET /_ping HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * 70000 + b"\r\n\r\n"
    assert status_of(raw(proxy, huge)) in (400, 431)
    many = b"GET /_ping HTTP/1.1\r\n" + b"".join(b"X-%d: v\r\n" % i for i in range(500)) + b"\r\n"
    assert status_of(raw(proxy, many)) in (400, 431)
    still_serves(proxy)


def test_a_client_that_sends_nothing_is_dropped_after_the_idle_timeout(start_proxy):
    proxy = start_proxy("--allow-host", "--idle-timeout", "1")
    started = time.monotonic()
    assert raw(proxy, b"", timeout=10) == b""
    assert time.monotonic() - started < 5
    started = time.monotonic()
    assert raw(proxy, b"GET /_ping HTTP/1.1\r\nHost:", timeout=10) == b""  # half a request
    assert time.monotonic() - started < 5
    still_serves(proxy)


def test_a_client_leaving_mid_stream_costs_the_others_nothing(
    start_proxy, away_engine, run_container, unique
):
    """Streams opened and dropped: the next caller's stream still gets events, and all of
    them shared one upstream stream."""
    proxy = start_proxy("--allow-host", upstream=away_engine.path)
    started = time.time() - 1
    for _ in range(5):
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
            sock.connect(proxy.socket)
            sock.sendall(b"GET /events?since=0 HTTP/1.1\r\nHost: d\r\n\r\n")
            sock.settimeout(10)
            assert sock.recv(100).startswith(b"HTTP/1.1 200")
    brief = run_container(["true"], name=unique("brief"))
    assert wait_exit(brief) == 0
    events = proxy.ask("GET", f"/events?since={started}", stream=1)
    assert events["status"] == 200
    assert "start" in [e["Action"] for e in events["body"] if e["Actor"]["ID"] == brief.id]
    assert away_engine.event_streams == 1
    still_serves(proxy)


def test_an_engine_that_goes_away_gives_503_and_the_proxy_recovers(start_proxy, away_engine):
    proxy = start_proxy("--allow-host", upstream=away_engine.path)
    still_serves(proxy)
    away_engine.stop()
    away = proxy.ask("GET", "/_ping")
    assert away["status"] == 503
    assert "did not answer" in away["body"]["message"]
    assert "retry" in away["body"]["message"]
    wait_until(lambda: proxy.ask("GET", "/events")["status"] == 503, 10, "events refused")
    away_engine.start()
    wait_until(lambda: proxy.ask("GET", "/_ping")["status"] == 200, 20, "ping again")
    wait_until(lambda: proxy.ask("GET", "/events?since=0", stream=0.5)["status"] == 200, 20,
               "events again")
    assert away_engine.event_streams == 2  # the first one, then one after the restart
    still_serves(proxy)


def test_a_parent_starting_while_the_engine_is_away_resolves_when_it_is_back(
    docker_client, linkinit_image, run_container, unique, start_proxy, away_engine
):
    proxy = start_proxy("--verbose", upstream=away_engine.path)
    child = start_child(docker_client, linkinit_image, unique("db"), expose=[6379])
    away_engine.stop()
    parent = run_parent(run_container, unique("web"), ["--print-env", "--timeout", "60"],
                        socket=False, volumes=proxy.volumes,
                        labels={"link.db": child.name, "link.db.wait": "started"})
    # the handshake: the parent has asked while the Engine was away, and was told 503
    wait_until(lambda: " 503 " in proxy.output(), 30, "the parent refused while away")
    away_engine.start()
    assert wait_exit(parent) == 0, output(parent, stderr=True) + proxy.output()
    assert env_lines(output(parent))["DB_PORT"].endswith(":6379")


def test_a_restarted_proxy_serves_parents_that_were_running(
    docker_client, linkinit_image, run_container, unique, start_proxy
):
    """Parents mount the directory, so the new socket appears in them."""
    proxy = start_proxy()
    child = start_child(docker_client, linkinit_image, unique("db"), expose=[6379])
    parent = run_parent(run_container, unique("web"), ["--", "sleep", "300"], socket=False,
                        volumes=proxy.volumes,
                        labels={"link.db": child.name, "link.db.wait": "started"})
    # COMMAND running: linkinit has resolved through the first proxy and is PID 1 now
    wait_until(lambda: any(p["args"] == "sleep 300" for p in process_table(parent)), 60,
               "the parent's COMMAND running")
    proxy.restart()
    code, out = parent.exec_run(["linkinit", "--print-env"])
    assert code == 0, out.decode(errors="replace") + proxy.output()
    assert env_lines(out.decode())["DB_PORT"].endswith(":6379")
    assert container_request(parent, "GET", "/_ping")["status"] == 200


def test_a_process_outside_any_container_is_refused_without_allow_host(start_proxy):
    proxy = start_proxy()
    answer = proxy.ask("GET", "/_ping")
    assert answer["status"] == 403
    assert "--allow-host" in answer["body"]["message"]
    assert json.dumps(answer).count("linkinit proxy:") == 1


def test_a_second_proxy_on_the_same_socket_refuses_and_sigterm_cleans_up(start_proxy):
    """Exit 64 naming the socket, the first one untouched; SIGTERM: status 0, socket gone."""
    proxy = start_proxy("--allow-host")
    second = subprocess.run(
        [sys.executable, "-m", "linkinit", "proxy", "--listen", proxy.socket],
        capture_output=True, text=True, timeout=30)
    assert second.returncode == 64
    assert f"proxy --listen {proxy.socket}: another process listens there" in second.stderr
    assert "Traceback" not in second.stderr
    still_serves(proxy)
    assert proxy.stop() == 0
    assert not os.path.exists(proxy.socket)
