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
