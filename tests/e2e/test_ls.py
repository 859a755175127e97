"""``linkinit ls`` on the host, against real containers on the real Engine.

The containers are plain ``linkinit-base:bookworm`` ones running ``sleep``: ls only reads
names, labels, states and network aliases, so no linkinit is needed inside them. Every name
carries a per-test token, and assertions look only at rows with that token, because other
tests (and users) may have containers on the same Engine. The conftest fixtures remove what
each test made.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid
from typing import Any, Callable, Dict, List

import pytest

from tests.support.paths import BASE_IMAGE

from .dockerkit import wait_until

LS_TIMEOUT = 60  # seconds one `linkinit ls` may take
SLEEP = "sleep 600"  # containers end by themselves even if teardown never runs


pytestmark = pytest.mark.engines("docker", "podman")


@pytest.fixture(autouse=True)
def engine_host(engine: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    """``linkinit ls`` asks the engine under test, through DOCKER_HOST as a user would."""
    monkeypatch.setenv("DOCKER_HOST", f"unix://{engine.socket}")


@pytest.fixture
def image(engine: Any) -> str:
    """The base image as the engine names it (Podman qualifies a local one: localhost/)."""
    return f"localhost/{BASE_IMAGE}" if engine.name == "podman" else BASE_IMAGE


@pytest.fixture
def token() -> str:
    return uuid.uuid4().hex[:8]


@pytest.fixture
def make(run_container: Callable[..., Any]) -> Callable[..., Any]:
    """Run a labelled container from the base image (conftest removes it at teardown)."""

    def run(name: str, command: str = SLEEP, **kwargs: Any) -> Any:
        return run_container(command, image=BASE_IMAGE, name=name, **kwargs)

    return run


@pytest.fixture
def network(make_network: Callable[[str], Any], token: str) -> str:
    """A user-defined network (aliases exist only there); removed after its containers."""
    return make_network(f"lt-ls-net-{token}").name


def linkinit_ls(*args: str, env: Dict[str, str] | None = None) -> subprocess.CompletedProcess:
    """Run ``python -m linkinit ls ARGS`` as a user would, from this venv."""
    return subprocess.run(
        [sys.executable, "-m", "linkinit", "ls", *args],
        capture_output=True, text=True, timeout=LS_TIMEOUT,
        env=dict(os.environ, **(env or {})),
    )


def table(token: str, *args: str) -> Dict[str, List[str]]:
    """The table rows whose NAME carries ``token``, as {NAME: [CONTAINER, IMAGE, STATE...]}."""
    done = linkinit_ls(*args)
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert lines[0].split()[:4] == ["NAME", "CONTAINER", "IMAGE", "STATE"]
    rows = {}
    for line in lines[1:]:
        name, container, image, *rest = line.split(None, 3)
        if token in name:
            rows[name] = [container, image, *rest]
    return rows


def wait_exited(container: Any) -> None:
    """Ended and cleaned up: Podman shows 'stopped' for a moment after the end."""
    container.wait(timeout=60)
    wait_until(lambda: container.reload() or container.status == "exited", timeout=10,
               what=f"{container.name} exited")


def test_ls_shows_names_and_a_link_to_a_running_child(make, token, image):
    """A parent labelled link.redis=<child> gives a parent/redis row with the child's ID."""
    db = make(f"db-{token}")
    make(f"web-{token}", labels={"link.redis": f"db-{token}"})
    rows = table(token)
    assert rows[f"db-{token}"] == [db.id[:12], image, "running"]
    assert rows[f"web-{token}/redis"] == [db.id[:12], image, "running"]
    assert set(rows) == {f"db-{token}", f"web-{token}", f"web-{token}/redis"}


def test_ls_shows_a_dangling_link_when_the_child_is_removed(make, token):
    """Removing the child leaves the link: ls says 'missing', names the reference, exits 0."""
    db = make(f"db-{token}")
    make(f"web-{token}", labels={"link.redis": f"db-{token}"})
    assert table(token)[f"web-{token}/redis"][2] == "running"
    db.remove(force=True)
    row = table(token)[f"web-{token}/redis"]
    assert row[:2] == ["-", "-"]
    assert row[2].split(None, 1) == ["missing", f"no container answers to 'db-{token}'"]
    assert f"db-{token}" not in table(token, "--all")


def test_ls_all_shows_a_stopped_child(make, token, image):
    """A stopped child is hidden without --all (its link says exited) and listed with it."""
    db = make(f"db-{token}", command="true")
    wait_exited(db)
    make(f"web-{token}", labels={"link.redis": f"db-{token}"})
    rows = table(token)
    assert f"db-{token}" not in rows
    assert rows[f"web-{token}/redis"][:2] == [db.id[:12], image]
    assert rows[f"web-{token}/redis"][2].startswith("exited")
    assert f"db-{token} is not running" in rows[f"web-{token}/redis"][2]
    rows = table(token, "--all")
    assert rows[f"db-{token}"] == [db.id[:12], image, "exited"]


def test_ls_all_shows_the_links_of_a_stopped_parent(make, token):
    """A stopped parent's links appear only with --all."""
    make(f"db-{token}")
    web = make(f"web-{token}", command="true", labels={"link.redis": f"db-{token}"})
    wait_exited(web)
    assert f"web-{token}/redis" not in table(token)
    assert table(token, "-a")[f"web-{token}/redis"][2] == "running"


def test_ls_shows_network_aliases_and_links_through_them(engine, make, network, token,
                                                          image):
    """A network alias is a row of its own, and a link naming it resolves to its holder."""
    db = make(f"proj-db1-{token}", network=network)
    # The SDK's run() takes no aliases; connect with one, as compose does for a service.
    engine_network = engine.client.networks.get(network)
    engine_network.disconnect(db)
    engine_network.connect(db, aliases=[f"cache-{token}"])
    make(f"web-{token}", network=network, labels={"link.redis": f"cache-{token}"})
    rows = table(token)
    assert rows[f"cache-{token}"] == [db.id[:12], image, "running"]
    assert rows[f"web-{token}/redis"] == [db.id[:12], image, "running"]
    assert not any(name.startswith(db.id[:12]) for name in rows)  # no short-ID alias row


def test_ls_json_has_stable_keys_and_the_link_graph(make, token):
    """--format json: one object per row, every documented key in every object; a link's
    env says which of the child's keys the parent receives."""
    db = make(f"db-{token}", environment={"PASSWORD": "x", "USER": "u"})
    make(f"web-{token}", labels={"link.redis": f"db-{token}", "link.gone": f"nope-{token}",
                                 "link.redis.env": "PASSWORD,NOPE"})
    done = linkinit_ls("--format", "json")
    assert done.returncode == 0, done.stderr
    objects = [o for o in json.loads(done.stdout) if token in o["name"]]
    keys = ["name", "kind", "container", "id", "image", "state", "health", "parent",
            "alias", "child", "networks", "wait", "optional", "env", "secrets", "note"]
    assert all(list(o) == keys for o in objects)
    found = {o["name"]: o for o in objects}
    assert set(found) == {f"db-{token}", f"web-{token}", f"web-{token}/gone",
                          f"web-{token}/redis"}
    assert found[f"web-{token}/redis"]["id"] == db.id
    assert found[f"web-{token}/redis"]["kind"] == "link"
    assert found[f"web-{token}/redis"]["child"] == f"db-{token}"
    assert found[f"web-{token}/gone"]["state"] == "missing"
    assert found[f"web-{token}/gone"]["id"] == ""
    assert found[f"web-{token}/redis"]["env"] == ["PASSWORD"]
    assert found[f"web-{token}/redis"]["note"] == f"db-{token}'s environment has no NOPE"
    assert found[f"web-{token}/gone"]["env"] == "all"


def test_ls_reports_a_bad_label_without_failing(make, token):
    """A parent with a bad link label shows that link as invalid; ls still exits 0."""
    make(f"db-{token}")
    make(f"web-{token}", labels={"link.redis": f"db-{token}", "link.redis.wait": "never"})
    row = table(token)[f"web-{token}/redis"]
    assert row[2].startswith("invalid")
    assert "link.redis.wait" in row[2]


@pytest.mark.engines("docker")
def test_ls_exits_69_when_the_engine_cannot_be_reached(tmp_path):
    """DOCKER_HOST at a socket nobody serves: one clear line and status 69."""
    host = f"unix://{tmp_path}/docker.sock"
    done = linkinit_ls(env={"DOCKER_HOST": host})
    assert done.returncode == 69
    assert done.stdout == ""
    assert done.stderr.startswith(f"linkinit: cannot reach the Docker Engine at {host}")


def test_the_console_script_runs_ls(make, token):
    """The installed `linkinit` command dispatches `ls` too."""
    make(f"db-{token}")
    script = os.path.join(os.path.dirname(sys.executable), "linkinit")
    done = subprocess.run([script, "ls"], capture_output=True, text=True, timeout=LS_TIMEOUT)
    assert done.returncode == 0, done.stderr
    assert f"db-{token}" in done.stdout
