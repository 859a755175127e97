"""Protocol probes judge the first bytes of a child's answer: serving, or not yet (and why).

``probes.classify`` is pure: each case feeds it the bytes a server sends (built here by the
protocol's own framing) and checks the verdict and what progress lines will quote.
"""

from __future__ import annotations

import struct

import pytest
from hypothesis import given
from hypothesis import strategies as st

from linkinit.init.probes import (
    Answer,
    classify,
    complete,
    http_target,
    mysql_answer,
    postgres_answer,
    redis_answer,
    request,
)

words = st.text(st.characters(min_codepoint=33, max_codepoint=126), min_size=1, max_size=20)
texts = st.text(st.characters(min_codepoint=32, max_codepoint=126), max_size=60)


# -- Redis ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("answer", "expected"),
    [
        pytest.param(b"+PONG\r\n", Answer(True, "PONG"), id="pong"),
        pytest.param(b"-NOAUTH Authentication required.\r\n",
                     Answer(True, "NOAUTH Authentication required."), id="noauth"),
        pytest.param(b"-WRONGPASS invalid username-password pair or user is disabled.\r\n",
                     Answer(True, "WRONGPASS invalid username-password pair or user is "
                            "disabled."), id="wrongpass"),
        pytest.param(b"-LOADING Redis is loading the dataset in memory\r\n",
                     Answer(False, "LOADING Redis is loading the dataset in memory"),
                     id="loading"),
        pytest.param(b"-BUSY Redis is busy running a script.\r\n",
                     Answer(False, "BUSY Redis is busy running a script."), id="busy"),
        pytest.param(b"-MASTERDOWN Link with MASTER is down\r\n",
                     Answer(False, "MASTERDOWN Link with MASTER is down"), id="masterdown"),
        pytest.param(b"HTTP/1.1 400 Bad Request\r\n",
                     Answer(False, "not a Redis answer: 'HTTP/1.1 400 Bad Request..'"),
                     id="http-on-the-redis-port"),
        pytest.param(b"+OK\r\n", Answer(False, "not a Redis answer: '+OK..'"), id="not-pong"),
        pytest.param(b"-LOAD", Answer(False, "not a Redis answer: '-LOAD'"), id="cut-short"),
    ],
)
def test_redis_ping_answers(answer, expected):
    """PONG, NOAUTH and WRONGPASS serve; LOADING, BUSY, MASTERDOWN and non-RESP do not."""
    assert classify("redis", answer) == expected


@given(word=words, rest=texts)
def test_any_redis_error_but_the_not_ready_ones_means_serving(word, rest):
    """An error reply is a server speaking RESP: serving unless it is one of the three."""
    answer = redis_answer(b"-" + f"{word} {rest}".encode() + b"\r\n")
    assert answer.ready is (word not in ("LOADING", "BUSY", "MASTERDOWN"))
    assert answer.said == f"{word} {rest}"


@given(data=st.binary(max_size=40).filter(lambda b: b[:1] not in (b"+", b"-")))
def test_bytes_that_are_not_resp_are_never_ready(data):
    assert redis_answer(data).ready is False


# -- PostgreSQL -----------------------------------------------------------------------------


def pg_message(kind: bytes, body: bytes) -> bytes:
    return kind + struct.pack("!I", len(body) + 4) + body


def pg_error(code: str, message: str) -> bytes:
    fields = (b"SFATAL\x00VFATAL\x00C" + code.encode() + b"\x00M" + message.encode()
              + b"\x00Fpostmaster.c\x00\x00")
    return pg_message(b"E", fields)


@pytest.mark.parametrize(
    ("answer", "expected"),
    [
        pytest.param(pg_message(b"R", struct.pack("!I", 10) + b"SCRAM-SHA-256\x00\x00"),
                     Answer(True, "asks for authentication"), id="scram"),
        pytest.param(pg_message(b"R", struct.pack("!I", 0)),
                     Answer(True, "asks for authentication"), id="trust"),
        pytest.param(pg_error("57P03", "the database system is starting up"),
                     Answer(False, "the database system is starting up (57P03)"),
                     id="starting-up"),
        pytest.param(pg_error("57P03", "the database system is not accepting connections"),
                     Answer(False, "the database system is not accepting connections (57P03)"),
                     id="hot-standby-off"),
        pytest.param(pg_error("53300", "sorry, too many clients already"),
                     Answer(False, "sorry, too many clients already (53300)"), id="too-many"),
        pytest.param(pg_error("28P01", 'password authentication failed for user "linkinit"'),
                     Answer(True, 'password authentication failed for user "linkinit" (28P01)'),
                     id="wrong-password-is-up"),
        pytest.param(pg_error("28000", 'no pg_hba.conf entry for host "172.17.0.3"'),
                     Answer(True, 'no pg_hba.conf entry for host "172.17.0.3" (28000)'),
                     id="no-hba-entry-is-up"),
        pytest.param(b"-ERR unknown command\r\n",
                     Answer(False, "not a PostgreSQL answer: '-ERR unknown command..'"),
                     id="redis-on-the-port"),
        pytest.param(pg_error("57P03", "starting")[:9],
                     Answer(False, "not a PostgreSQL answer: 'E...2SFAT'"), id="cut-short"),
    ],
)
def test_postgres_startup_answers(answer, expected):
    """Authentication asked or any error but 57P03 and 53300: serving."""
    assert classify("postgres", answer) == expected


@given(code=st.text("0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ", min_size=5, max_size=5),
       message=texts)
def test_a_postgres_error_is_serving_unless_it_says_cannot_connect_now(code, message):
    answer = postgres_answer(pg_error(code, message))
    assert answer.ready is (code not in ("57P03", "53300"))
    assert answer.said == f"{message} ({code})"


def test_the_startup_message_is_protocol_3_as_postgres():
    """Length, version 3.0, then the user as a NUL-terminated pair, and the final NUL."""
    sent = request("postgres", "172.17.0.2", 5432)
    length, version = struct.unpack("!II", sent[:8])
    assert (length, version) == (len(sent), 196608)
    assert sent[8:] == b"user\x00postgres\x00\x00"


# -- MySQL / MariaDB ------------------------------------------------------------------------


def my_packet(payload: bytes, sequence: int = 0) -> bytes:
    return len(payload).to_bytes(3, "little") + bytes([sequence]) + payload


def my_greeting(version: str) -> bytes:
    return my_packet(b"\x0a" + version.encode() + b"\x00" + struct.pack("<I", 7) + b"12345678"
                     + b"\x00" + b"\xff\xf7")


def my_error(code: int, message: str, state: str = "") -> bytes:
    marker = b"#" + state.encode() if state else b""
    return my_packet(b"\xff" + struct.pack("<H", code) + marker + message.encode())


@pytest.mark.parametrize(
    ("answer", "expected"),
    [
        pytest.param(my_greeting("5.5.5-10.11.6-MariaDB-0+deb12u1"),
                     Answer(True, "greeting from 5.5.5-10.11.6-MariaDB-0+deb12u1"),
                     id="mariadb-greeting"),
        pytest.param(my_greeting("8.0.36"), Answer(True, "greeting from 8.0.36"),
                     id="mysql-greeting"),
        pytest.param(my_error(1040, "Too many connections", "08004"),
                     Answer(False, "error 1040: Too many connections"), id="too-many"),
        pytest.param(my_error(1130, "Host '172.17.0.3' is not allowed to connect"),
                     Answer(True, "error 1130: Host '172.17.0.3' is not allowed to connect"),
                     id="host-not-allowed-is-up"),
        pytest.param(b"+PONG\r\n", Answer(False, "not a MySQL answer: '+PONG..'"),
                     id="redis-on-the-port"),
        pytest.param(my_greeting("10.11")[:6], Answer(False, "not a MySQL answer: '.....1'"),
                     id="cut-short"),
    ],
)
def test_mysql_first_packets(answer, expected):
    """A protocol-10 greeting serves; an error packet (1040...) or anything else does not."""
    assert classify("mysql", answer) == expected


@given(version=texts.filter(lambda v: "\x00" not in v))
def test_any_protocol_10_greeting_is_serving_and_named(version):
    assert mysql_answer(my_greeting(version)) == Answer(True, f"greeting from {version}")


@given(code=st.integers(0, 65535), message=texts)
def test_a_mysql_error_packet_serves_only_for_a_host_not_allowed(code, message):
    answer = mysql_answer(my_error(code, message, "HY000"))
    assert answer == Answer(code == 1130, f"error {code}: {message}")


# -- HTTP -----------------------------------------------------------------------------------


@given(status=st.integers(100, 599), reason=texts.map(str.strip))
def test_http_is_ready_on_2xx_and_3xx(status, reason):
    answer = classify("http:/", f"HTTP/1.1 {status} {reason}\r\n".encode())
    assert answer.ready is (200 <= status < 400)
    assert answer.said == f"{status} {reason}"


@given(status=st.integers(100, 599), wanted=st.integers(100, 599))
def test_http_with_a_status_is_ready_on_that_status_only(status, wanted):
    answer = classify(f"http:/health:{wanted}", f"HTTP/1.0 {status} X\r\n".encode())
    assert answer.ready is (status == wanted)


@pytest.mark.parametrize(
    "answer",
    [b"+PONG\r\n", b"HTTP/1.1 abc Nope\r\n", b"SSH-2.0-OpenSSH_9.2\r\n", b"\x0a5.5.5\x00"],
)
def test_what_is_not_an_http_status_line_is_not_ready(answer):
    assert classify("http:/", answer).ready is False
    assert classify("http:/", answer).said.startswith("not an HTTP answer")


@pytest.mark.parametrize(
    ("wait", "target"),
    [("http:/", ("/", None)), ("http:/health", ("/health", None)),
     ("http:/health:204", ("/health", 204)), ("http:/a:b/c", ("/a:b/c", None)),
     ("http:/a:1/b:404", ("/a:1/b", 404))],
)
def test_the_http_target_comes_from_the_stored_wait_mode(wait, target):
    assert http_target(wait) == target


def test_the_get_names_the_path_and_the_host():
    assert request("http:/health:204", "172.17.0.2", 8080) == (
        b"GET /health HTTP/1.0\r\nHost: 172.17.0.2:8080\r\nUser-Agent: linkinit\r\n"
        b"Connection: close\r\n\r\n")


# -- the empty answer and framing -----------------------------------------------------------


@pytest.mark.parametrize("wait", ["redis", "postgres", "mysql", "http:/"])
def test_a_connection_closed_without_a_word_is_not_ready(wait):
    assert classify(wait, b"") == Answer(False, "closed the connection without answering")


@given(payload=st.binary(max_size=300), cut=st.integers(0, 300))
def test_a_mysql_packet_is_complete_only_with_its_whole_payload(payload, cut):
    packet = my_packet(payload)
    assert complete("mysql", packet)
    assert complete("mysql", packet[:cut]) is (cut >= len(packet))
