"""Which socket linkinit talks to: DOCKER_HOST, else the proxy's when its directory is mounted
(in a container only), else the Engine's. The host tools never pick the proxy's."""

from __future__ import annotations

from pathlib import Path

import pytest

from linkinit.engine import client as engine


@pytest.fixture
def proxy_socket(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    path = tmp_path / "linkinit" / "engine.sock"
    monkeypatch.setattr(engine, "PROXY_SOCKET", str(path))
    return path


def test_a_mounted_proxy_directory_is_used_in_a_container(proxy_socket: Path) -> None:
    proxy_socket.parent.mkdir()
    chosen = engine.Engine.from_environ({}, in_container=True)
    assert chosen.host == f"unix://{proxy_socket}"
    assert not chosen.socket_missing(), "a restarting proxy recreates its socket: wait for it"


def test_without_the_directory_the_engine_socket_is_used(proxy_socket: Path) -> None:
    assert engine.Engine.from_environ({}, in_container=True).host == engine.DEFAULT_HOST


def test_docker_host_wins(proxy_socket: Path) -> None:
    proxy_socket.parent.mkdir()
    chosen = engine.Engine.from_environ({"DOCKER_HOST": "unix:///x.sock"}, in_container=True)
    assert chosen.host == "unix:///x.sock"


def test_host_tools_never_take_the_proxys_socket(proxy_socket: Path) -> None:
    proxy_socket.parent.mkdir()
    assert engine.Engine.from_environ({}).host == engine.DEFAULT_HOST


@pytest.mark.parametrize(
    ("message", "says_more"),
    [
        ("No such container: db1", False),
        ('no container with name or ID "db1" found: no such container', False),
        ("", False),
        ("No such container: db1 (this container sees only itself and the children it links; "
         "links declared only in a YAML file inside the container are not proof)", True),
    ],
    ids=["docker", "podman", "empty", "linkinit-proxy"],
)
def test_a_404_that_says_why_is_kept_for_the_waiting_line(message: str, says_more: bool) -> None:
    """The Engine's own "not found" adds nothing; the proxy's reason is worth showing."""
    assert engine.not_found_says_more(message, "db1") is says_more
