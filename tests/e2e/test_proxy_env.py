"""Through ``linkinit proxy``: a parent sees of its child's environment only the keys it
declares (``link.<alias>.env``), and nobody gets a container's files, logs, processes,
changes, stats, attach or export. The calls are made by the real ``docker`` CLI inside the
parents (the host's static binary, mounted read-only), one row per call and target."""

from __future__ import annotations

import json
import uuid
from typing import Any, Iterator, NamedTuple

import pytest

from .conftest import SESSION, TEST_LABEL, EngineUnderTest, connect_engine
from .dockerkit import wait_until
from .linkkit import start_child
from .proxykit import MOUNT, ProxyProcess, container_request

pytestmark = pytest.mark.timeout(180)

CHILD_ENV = {"PASSWORD": "dockerpass-4711", "USER": "app", "TOKEN": "child-token-0815"}
STRANGER_SECRET = "stranger-secret-2342"
CHILD_LOG = "child-log-line-1234"
DOCKER_CLI = "/usr/local/bin/docker"


class World(NamedTuple):
    proxy: ProxyProcess
    child: Any
    stranger: Any
    allowlisted: Any  # link.db.env=PASSWORD,USER
    everything: Any  # no env label: all, as Docker's links


@pytest.fixture(scope="module")
def world(engines_under_test: dict[str, EngineUnderTest], tmp_path_factory: Any
          ) -> Iterator[World]:
    """A proxy, a child that logs a line, a stranger with a secret, and two running parents
    linking the child through the proxy, with the docker CLI; all removed at the end."""
    if "docker" not in engines_under_test:
        engines_under_test["docker"] = connect_engine("docker")
    docker = engines_under_test["docker"]
    image = docker.image(tmp_path_factory)
    token = uuid.uuid4().hex[:8]
    made: list[Any] = []
    proxy = ProxyProcess()
    try:
        proxy.start()
        command = ["sh", "-c", "echo child-log-line-$((1233+1)); exec sleep 300"]  # CHILD_LOG
        made.append(start_child(docker.client, image, f"lt-penv-db-{token}", command,
                                environment=CHILD_ENV))
        made.append(start_child(docker.client, image, f"lt-penv-vault-{token}",
                                environment={"VAULT_TOKEN": STRANGER_SECRET}))
        for name, extra in (("narrow", {"link.db.env": "PASSWORD,USER"}), ("wide", {})):
            made.append(docker.client.containers.run(
                image, ["linkinit", "--", "sleep", "300"], name=f"lt-penv-{name}-{token}",
                detach=True, environment={"OWN_SETTING": "own-value"},
                labels={TEST_LABEL: SESSION, "link.db": made[0].name,
                        "link.db.wait": "started", **extra},
                volumes={**proxy.volumes, DOCKER_CLI: {"bind": DOCKER_CLI, "mode": "ro"}}))
        for parent in made[2:]:
            wait_until(lambda p=parent: _sleeping(p), 60, f"{parent.name} running COMMAND")
        yield World(proxy, *made)
    finally:
        for container in made:
            container.remove(force=True)
        proxy.cleanup()


def _sleeping(parent: Any) -> bool:
    """linkinit resolved its link and started COMMAND (or ended: then fail at once)."""
    parent.reload()
    assert parent.status in ("created", "running"), parent.logs().decode(errors="replace")
    code, out = parent.exec_run(["sh", "-c", "ps -eo args | grep -c '^sleep 300'"])
    return code == 0 and out.strip() == b"1"


def cli(parent: Any, *args: str) -> tuple[int, str, str]:
    """The docker CLI in ``parent``, through the proxy it mounts; bounded by ``timeout``."""
    code, (out, err) = parent.exec_run(
        ["timeout", "20", "docker", *args], demux=True,
        environment={"DOCKER_HOST": f"unix://{MOUNT}/engine.sock"})
    return code, (out or b"").decode(errors="replace"), (err or b"").decode(errors="replace")


def env_keys(entries: list) -> list:
    return [entry.partition("=")[0] for entry in entries]


# -- what a parent sees of its child's environment ----------------------------------------


def test_an_allowlisted_parent_sees_only_its_keys_of_the_child(world):
    """docker inspect (by name: the proxy's kept answer) and a raw inspect by ID prefix (the
    Engine's answer) both show PASSWORD and USER, not TOKEN; the rest of the document is
    whole."""
    code, out, err = cli(world.allowlisted, "container", "inspect", world.child.name)
    assert code == 0, err
    shown = json.loads(out)[0]
    assert shown["Config"]["Env"] == ["PASSWORD=dockerpass-4711", "USER=app"]
    assert shown["Id"] == world.child.id and shown["State"]["Running"] is True
    raw = container_request(world.allowlisted, "GET", f"/containers/{world.child.id[:12]}/json")
    assert raw["status"] == 200
    assert env_keys(raw["body"]["Config"]["Env"]) == ["PASSWORD", "USER"]
    assert "child-token-0815" not in out + json.dumps(raw)


def test_a_parent_that_allows_all_sees_the_whole_environment(world):
    code, out, err = cli(world.everything, "container", "inspect", world.child.name)
    assert code == 0, err
    assert {"PASSWORD", "USER", "TOKEN", "PATH"} <= set(env_keys(
        json.loads(out)[0]["Config"]["Env"]))


def test_a_parents_own_inspect_is_not_cut(world):
    code, out, err = cli(world.allowlisted, "container", "inspect", world.allowlisted.name)
    assert code == 0, err
    assert "OWN_SETTING=own-value" in json.loads(out)[0]["Config"]["Env"]


# -- what nobody gets: the table ------------------------------------------------------------


class Row(NamedTuple):
    call: str  # what the README's table calls it
    args: tuple  # the docker CLI's arguments; "{target}" is the container asked about
    allowed: tuple  # for the caller itself, its child, a stranger


ROWS = (
    Row("inspect", ("container", "inspect", "{target}"), (True, True, False)),
    Row("logs", ("logs", "{target}"), (False, False, False)),
    Row("processes (top)", ("top", "{target}"), (False, False, False)),
    Row("changes (diff)", ("diff", "{target}"), (False, False, False)),
    Row("stats", ("stats", "--no-stream", "{target}"), (False, False, False)),
    Row("files (cp: archive)", ("cp", "{target}:/etc/hostname", "-"), (False, False, False)),
    Row("export", ("export", "-o", "/tmp/export.tar", "{target}"), (False, False, False)),
    Row("attach", ("attach", "--no-stdin", "{target}"), (False, False, False)),
    Row("exec", ("exec", "{target}", "true"), (False, False, False)),
    Row("kill", ("kill", "-s", "WINCH", "{target}"), (False, False, False)),
)
TARGETS = ("itself", "its child", "a stranger")


def target_name(world: World, target: str) -> str:
    return {"itself": world.allowlisted.name, "its child": world.child.name,
            "a stranger": world.stranger.name}[target]


@pytest.mark.parametrize("row, target", [(row, target) for row in ROWS for target in TARGETS],
                         ids=lambda value: value.call if isinstance(value, Row) else value)
def test_the_proxy_serves_a_call_only_where_the_table_says(world, row, target):
    """Allowed: the call succeeds. Refused: it fails with the proxy's message (403 for a
    container the caller sees, the 404 of a missing one for a stranger); no log line, file,
    process list or secret reaches the caller either way."""
    args = [arg.replace("{target}", target_name(world, target)) for arg in row.args]
    code, out, err = cli(world.allowlisted, *args)
    allowed = row.allowed[TARGETS.index(target)]
    if allowed:
        assert code == 0, err
    else:
        assert code not in (0, 124), (code, out, err)  # 124: timeout's, a hang
        # the proxy's message; attach upgrades the connection, and the CLI says only 403
        assert any(said in err for said in ("linkinit proxy", "No such container",
                                            "received 403")), err
    leaked = [secret for secret in (CHILD_LOG, STRANGER_SECRET, "child-token-0815")
              if secret in out + err]
    assert leaked == [], leaked


@pytest.mark.parametrize("args, allowed", [
    (("version",), True), (("ps", "-a"), True), (("info",), False), (("images",), False),
    (("volume", "ls"), False), (("network", "ls"), False),
], ids=lambda value: " ".join(value) if isinstance(value, tuple) else str(value))
def test_calls_about_no_container_are_served_as_the_table_says(world, args, allowed):
    """version and the (filtered) list are served; info, images, volumes, networks are not."""
    code, out, err = cli(world.allowlisted, *args)
    if allowed:
        assert code == 0, err
    else:
        assert code not in (0, 124) and "linkinit proxy" in err, (code, out, err)
    if args == ("ps", "-a"):
        assert world.child.name in out and world.allowlisted.name in out
        assert world.stranger.name not in out and world.everything.name not in out
