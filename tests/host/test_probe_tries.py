"""One try of a probe, for real: a loopback server that speaks bytes, and real commands.

``probes.ask`` never raises and never outlasts its try: a refused port, a reset, a server
that says nothing, one that answers in pieces. ``command_probe.run`` runs ``sh -c`` with
the environment given, reports the status and last line, kills what outlives its try, and
starts the command with no blocked signals even when the caller blocks them (the resolver
does).
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import threading
import time
from pathlib import Path
from typing import Callable, Iterator, List

import pytest

from linkinit.init import command_probe
from linkinit.init.probes import Answer, ask

pytestmark = pytest.mark.timeout(30)

Script = Callable[[socket.socket], None]


class Server:
    """A loopback TCP server running ``script(connection)`` for each connection; what each
    connection sent is kept."""

    def __init__(self, script: Script) -> None:
        self.listener = socket.socket()
        self.listener.bind(("127.0.0.1", 0))
        self.listener.listen(8)
        self.port = self.listener.getsockname()[1]
        self.script = script
        self.received: List[bytes] = []
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self) -> None:
        while True:
            try:
                connection, _ = self.listener.accept()
            except OSError:
                return
            with connection:
                connection.settimeout(5)
                self.script(connection)

    def close(self) -> None:
        with contextlib.suppress(OSError):  # wakes the accept (close alone does not)
            self.listener.shutdown(socket.SHUT_RDWR)
        self.listener.close()
        self.thread.join(5)


@pytest.fixture
def serve() -> Iterator[Callable[[Script], Server]]:
    made: List[Server] = []

    def make(script: Script) -> Server:
        made.append(Server(script))
        return made[-1]

    yield make
    for server in made:
        server.close()


def replying(*pieces: bytes, read: bool = True, hold: float = 0.0) -> Script:
    """Read the request (if any), send the pieces one by one, then keep the line open for
    ``hold`` seconds (bounded) before closing."""

    def script(connection: socket.socket) -> None:
        if read:
            connection.recv(4096)
        for piece in pieces:
            connection.sendall(piece)
        if hold:
            connection.settimeout(hold)
            with contextlib.suppress(OSError):
                connection.recv(1)

    return script


def test_a_redis_answer_in_pieces_is_read_whole(serve):
    server = serve(replying(b"-LOA", b"DING Redis is loading\r\n"))
    assert ask("redis", "127.0.0.1", server.port) == Answer(False, "LOADING Redis is loading")


def test_the_redis_probe_sends_a_ping_in_resp(serve):
    sent: List[bytes] = []

    def script(connection: socket.socket) -> None:
        sent.append(connection.recv(4096))
        connection.sendall(b"+PONG\r\n")

    server = serve(script)
    assert ask("redis", "127.0.0.1", server.port) == Answer(True, "PONG")
    assert sent == [b"*1\r\n$4\r\nPING\r\n"]


def test_mysql_is_read_without_sending_anything(serve):
    greeting = b"\x0a10.11.6-MariaDB\x00" + b"\x00" * 20
    server = serve(replying(len(greeting).to_bytes(3, "little") + b"\x00" + greeting,
                            read=False, hold=2))
    assert ask("mysql", "127.0.0.1", server.port) == Answer(True, "greeting from 10.11.6-MariaDB")


def test_a_closed_port_is_refused():
    probe = socket.socket()
    probe.bind(("127.0.0.1", 0))
    port = probe.getsockname()[1]
    probe.close()  # bound, never listening: nothing answers there
    assert ask("postgres", "127.0.0.1", port) == Answer(False, "connection refused")


def test_a_server_that_says_nothing_ends_the_try_at_its_timeout(serve):
    server = serve(replying(read=True, hold=3))
    started = time.monotonic()
    answer = ask("redis", "127.0.0.1", server.port, timeout=0.3)
    took = time.monotonic() - started
    assert answer == Answer(False, "no answer within 0.3s")
    assert 0.25 < took < 2


def test_half_an_answer_then_silence_is_judged_on_what_came(serve):
    server = serve(replying(b"HTTP/1.1 200", hold=3))
    answer = ask("http:/", "127.0.0.1", server.port, timeout=0.3)
    assert answer == Answer(False, "not an HTTP answer: 'HTTP/1.1 200'")


def test_a_reset_is_not_ready(serve):
    def reset(connection: socket.socket) -> None:
        connection.recv(4096)
        connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00"
                              b"\x00\x00")

    server = serve(reset)
    answer = ask("postgres", "127.0.0.1", server.port)
    assert answer.ready is False
    assert answer.said in ("Connection reset by peer", "closed the connection without answering")


def test_a_closed_connection_without_a_word(serve):
    server = serve(replying())
    assert ask("http:/", "127.0.0.1", server.port) == Answer(
        False, "closed the connection without answering")


# -- exec: ------------------------------------------------------------------------------------


def test_exit_0_is_ready_and_the_last_line_is_kept():
    assert command_probe.run("echo one; echo two", {"PATH": os.environ["PATH"]}) == Answer(
        True, "exited 0", "two")


def test_a_failing_command_names_its_status_and_output():
    answer = command_probe.run("echo not yet >&2; exit 3", {"PATH": os.environ["PATH"]})
    assert answer == Answer(False, "exited 3", "not yet")


def test_the_command_sees_the_environment_given():
    env = {"PATH": os.environ["PATH"], "DB_PORT_5432_TCP_ADDR": "172.18.0.2"}
    answer = command_probe.run('test "$DB_PORT_5432_TCP_ADDR" = 172.18.0.2', env)
    assert answer.ready


def test_a_command_outliving_its_try_is_killed_with_what_it_started(tmp_path: Path):
    """The whole process group goes: a background child of the command too."""
    pidfile = tmp_path / "pid"
    started = time.monotonic()
    answer = command_probe.run(f"sleep 30 & echo $! > {pidfile}; echo waiting; wait",
                               {"PATH": os.environ["PATH"]}, timeout=0.5)
    assert time.monotonic() - started < 5
    assert answer == Answer(False, "still running after 0.5s (killed)", "waiting")
    background = int(pidfile.read_text())
    for _ in range(100):  # bounded: the kernel reaps the orphan through init
        if not Path(f"/proc/{background}").exists() or "Z" in _state(background):
            break
        time.sleep(0.02)
    assert not Path(f"/proc/{background}").exists() or "Z" in _state(background)


def _state(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return "gone"


def test_the_command_starts_with_no_blocked_signals_even_from_a_blocking_caller():
    """The resolver blocks the forwardable signals; the command must not inherit that."""
    old = signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGTERM, signal.SIGINT})
    try:
        answer = command_probe.run("grep SigBlk /proc/self/status",
                                   {"PATH": os.environ["PATH"]})
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, old)
    assert answer == Answer(True, "exited 0", "SigBlk:\t0000000000000000")


def test_a_missing_command_is_127_not_an_exception():
    answer = command_probe.run("no-such-command-here", {"PATH": "/nonexistent"})
    assert answer.ready is False
    assert answer.said == "exited 127"
    assert "not found" in answer.output
