"""DOCKER_HOST is read one way, by the start path's client and the proxy's upstream alike."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from linkinit.engine.address import DEFAULT_HOST, UnsupportedHost, parse_host


@pytest.mark.parametrize(("host", "socket_path", "tcp"), [
    (DEFAULT_HOST, "/var/run/docker.sock", None),
    ("unix:///run/podman/podman.sock", "/run/podman/podman.sock", None),
    ("unix://localhost/run/x.sock", "/run/x.sock", None),
    ("tcp://10.0.0.1:2376", None, ("10.0.0.1", 2376)),
    ("tcp://engine", None, ("engine", 2375)),
    ("http://127.0.0.1:8080", None, ("127.0.0.1", 8080)),
    ("tcp://:2375", None, ("localhost", 2375)),
])
def test_each_form_names_one_place(host, socket_path, tcp):
    assert parse_host(host) == (socket_path, tcp)


@pytest.mark.parametrize("host", ["ssh://me@box", "npipe:////./pipe/docker_engine", "docker.sock"])
def test_other_forms_are_refused_naming_the_ones_that_work(host):
    with pytest.raises(UnsupportedHost, match=r"DOCKER_HOST=.* is not supported: use unix:///path"):
        parse_host(host)


@given(st.text(alphabet="abcdefghijklmnopqrstuvwxyz0123456789/_.-", min_size=1, max_size=60))
def test_any_plain_unix_path_is_taken_as_written(path):
    assert parse_host("unix:///" + path).socket_path == "/" + path
