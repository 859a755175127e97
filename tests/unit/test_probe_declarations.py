"""Probe wait modes and link.<alias>.port are declared like every other link attribute.

``parse_wait`` is the one parser of a wait mode (labels, the file, and any other source call
it); its stored forms are what readiness and the probes read. A bad value is a 64 naming the
label or file line, as for every declaration.
"""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from linkinit.errors import EX_USAGE, DeclarationError
from linkinit.model.declare import LinkSpec, parse_labels, parse_wait
from linkinit.model.declare_file import parse_yaml


@pytest.mark.parametrize(
    ("written", "stored"),
    [
        ("redis", "redis"), ("postgres", "postgres"), ("mysql", "mysql"),
        ("tcp", "listening"), (" tcp ", "listening"), ("listening", "listening"),
        ("http", "http:/"), ("http:", "http:/"), ("http:/health", "http:/health"),
        ("http:/health:204", "http:/health:204"), ("http::503", "http:/:503"),
        ("http:/a:b/c", "http:/a:b/c"), ("http:/v1/x?y=1:200", "http:/v1/x?y=1:200"),
        ("exec:test -f /ready", "exec:test -f /ready"), ("exec: pg_isready ", "exec:pg_isready"),
        ("exec:a:b", "exec:a:b"),
    ],
)
def test_each_wait_mode_is_stored_in_one_form(written, stored):
    assert parse_wait(written, "label link.db.wait") == stored


@pytest.mark.parametrize(
    ("written", "message"),
    [
        ("exec:", "label link.db.wait: exec: needs a command, e.g. exec:test -f /ready"),
        ("exec", "label link.db.wait: exec: needs a command, e.g. exec:test -f /ready"),
        ("http:health", "label link.db.wait: http's path must start with '/' and hold no "
                        "spaces, e.g. http:/health or http:/health:204, not 'http:health'"),
        ("http:/a b", "label link.db.wait: http's path must start with '/' and hold no "
                      "spaces, e.g. http:/health or http:/health:204, not 'http:/a b'"),
        ("http:/:99", "label link.db.wait: http's status must be 100 to 599, not 99"),
        ("http:/:600", "label link.db.wait: http's status must be 100 to 599, not 600"),
        ("redis:6380", "label link.db.wait: wait must be one of started, healthy, listening, "
                       "none, redis, postgres, mysql, http, http:PATH, http:PATH:STATUS, "
                       "exec:CMD, tcp, not 'redis:6380'"),
        ("Redis", "label link.db.wait: wait must be one of started, healthy, listening, "
                  "none, redis, postgres, mysql, http, http:PATH, http:PATH:STATUS, "
                  "exec:CMD, tcp, not 'Redis'"),
    ],
)
def test_a_bad_wait_mode_is_64_naming_where_it_was_written(written, message):
    with pytest.raises(DeclarationError) as raised:
        parse_wait(written, "label link.db.wait")
    assert str(raised.value) == message
    assert raised.value.exit_status == EX_USAGE


@given(path=st.text(st.characters(min_codepoint=33, max_codepoint=126), max_size=30),
       status=st.none() | st.integers(100, 599))
def test_any_http_path_and_status_round_trip(path, status):
    """Whatever the path holds (colons too), the status is the last ``:NNN`` only."""
    path = "/" + path
    written = f"http:{path}" + (f":{status}" if status is not None else "")
    stored = parse_wait(written, "x")
    from linkinit.init.probes import http_target

    if status is None and path.rpartition(":")[2].isdigit() and ":" in path:
        return  # '/a:123' reads as path '/a' and status 123: that is the documented form
    assert http_target(stored) == (path, status)


def test_labels_declare_a_probe_and_its_port():
    got = parse_labels({"link.db": "pg1", "link.db.wait": "postgres", "link.db.port": "5433"})
    assert got.links == (LinkSpec("db", "pg1", "postgres", False, "label link.db", port=5433),)


def test_without_a_port_label_the_port_is_left_to_the_child():
    got = parse_labels({"link.db": "pg1", "link.db.wait": "tcp"})
    assert (got.links[0].wait, got.links[0].port) == ("listening", None)


@pytest.mark.parametrize("port", ["0", "65536", "http", "-1", "5432.0", ""])
def test_a_bad_port_label_is_64_naming_the_label(port):
    with pytest.raises(DeclarationError) as raised:
        parse_labels({"link.db": "pg1", "link.db.port": port})
    assert str(raised.value) == (
        f"label link.db.port: port must be a number from 1 to 65535, not {port.strip()!r}")


def test_a_port_label_without_its_link_is_64():
    with pytest.raises(DeclarationError, match=r"label link\.db\.port has no link\.db=<child>"):
        parse_labels({"link.db.port": "5432"})


def test_the_file_declares_a_probe_and_its_port():
    text = "links:\n  db:\n    container: pg1\n    wait: http:/health:204\n    port: 8080\n"
    got = parse_yaml(text, "f.yaml")
    assert got.links == (LinkSpec("db", "pg1", "http:/health:204", False, "f.yaml:2: link db",
                                  port=8080),)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("links:\n  db:\n    container: pg1\n    wait: \"exec:\"\n",
         "f.yaml:2: link db.wait: exec: needs a command, e.g. exec:test -f /ready"),
        ("links:\n  db:\n    container: pg1\n    port: 99999\n",
         "f.yaml:2: link db.port: port must be a number from 1 to 65535, not '99999'"),
    ],
)
def test_a_bad_probe_in_the_file_names_the_line(text, message):
    with pytest.raises(DeclarationError) as raised:
        parse_yaml(text, "f.yaml")
    assert str(raised.value) == message
