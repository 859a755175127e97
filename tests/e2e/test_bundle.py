"""The self-contained bundle in an image with no Python at all: the seed story, --print-env,
and linkinit's duties as PID 1 (exit status, signals, reaping, a fast `docker stop`)."""

from __future__ import annotations

import contextlib
import os
import re
import time
from typing import Any, Callable, Iterator

import docker
import pytest

from tests.support.kubelet import REDIS_SERVICE

from .bundlekit import SEED_STORY, build_bundle, bundle_image, start_redis
from .conftest import BASE_IMAGE, ROOT, SESSION, SOCKET_VOLUME, TEST_LABEL, connect_engine
from .dockerkit import env_lines, output, wait_exit, wait_until
from .linkkit import start_child
from .pid1_helpers import (
    host_pid,
    logs,
    process_table,
    status_field,
    wait_child_named,
    wait_log,
)
from .proxykit import ENGINE, MOUNT, Forwarder

ENTRYPOINT = ["/opt/linkinit/linkinit"]
# The first test also builds the bundle and its image: minutes on a busy machine.
pytestmark = pytest.mark.timeout(600)


@pytest.fixture(scope="module")
def bundle(engines_under_test: dict) -> Iterator[str]:
    """The bundle's image, built once for the module, on Docker."""
    if "docker" not in engines_under_test:
        engines_under_test["docker"] = connect_engine("docker")
    with bundle_image(engines_under_test["docker"].client) as tag:
        yield tag


@pytest.fixture
def parent(docker_client: docker.DockerClient, bundle: str) -> Iterator[Callable[..., Any]]:
    """A container of the bundle image, the Engine socket mounted: ``linkinit -- COMMAND``;
    removed after the test."""
    made: list[Any] = []

    def run(command: list[str], **kwargs: Any) -> Any:
        kwargs.setdefault("volumes", SOCKET_VOLUME)
        container = docker_client.containers.run(
            bundle, command, detach=True,
            labels={**kwargs.pop("labels", {}), TEST_LABEL: SESSION}, **kwargs,
        )
        made.append(container)
        return container

    yield run
    for container in made:
        with contextlib.suppress(docker.errors.NotFound):
            container.remove(force=True)


@pytest.fixture
def redis(docker_client: docker.DockerClient, unique: Callable[[str], str]) -> Iterator[Any]:
    child = start_redis(docker_client, unique("db1"))
    yield child
    child.remove(force=True)


def test_seed_story_runs_where_there_is_no_python(parent, redis, unique):
    """A parent with no python3 linked to Redis as `redis`: redis-cli finds it through
    REDIS_PORT_6379_TCP_ADDR, REDIS_ENV_PASSWORD and /etc/hosts, sets and reads a key."""
    webapp = parent(["sh", "-c", "command -v python3 || " + SEED_STORY],
                    name=unique("webapp"), labels={"link.redis": redis.name})
    assert wait_exit(webapp) == 0, logs(webapp)
    assert output(webapp).splitlines() == ["OK", "GET greeting -> hello"]


def test_print_env_shows_the_link_variables(parent, redis, unique):
    """`linkinit --print-env` from the bundle prints Docker's variables for the link."""
    name = unique("webapp")
    printer = parent(["--print-env"], entrypoint=ENTRYPOINT, name=name,
                     labels={"link.redis": redis.name})
    assert wait_exit(printer) == 0, logs(printer)
    redis.reload()
    address = redis.attrs["NetworkSettings"]["Networks"]["bridge"]["IPAddress"]
    variables = env_lines(output(printer))
    assert variables["REDIS_NAME"] == f"/{name}/redis"
    assert variables["REDIS_PORT"] == f"tcp://{address}:6379"
    assert variables["REDIS_PORT_6379_TCP_ADDR"] == address
    assert variables["REDIS_ENV_PASSWORD"] == "dockerpass"


def test_a_yaml_file_declares_the_link(parent, redis, unique, tmp_path):
    """/etc/linkinit.yaml in the bundle (its YAML parser is in it): the link it declares is
    resolved and printed."""
    config = tmp_path / "linkinit.yaml"
    config.write_text(f"links:\n  redis: {{container: {redis.name}, wait: listening}}\n")
    printer = parent(["--print-env"], entrypoint=ENTRYPOINT, name=unique("webapp"),
                     volumes={**SOCKET_VOLUME,
                              str(config): {"bind": "/etc/linkinit.yaml", "mode": "ro"}})
    assert wait_exit(printer) == 0, logs(printer)
    assert env_lines(output(printer))["REDIS_ENV_PASSWORD"] == "dockerpass"


def test_an_engine_that_does_not_answer_yet_is_retried_until_it_does(parent, redis, tmp_path):
    """The proxy's directory mounted, its socket hanging up on every request: the bundle
    retries (tenacity, in the bundle) and, once the socket reaches the Engine, resolves the
    link and exits 0."""
    socket_dir = tmp_path / "proxy"
    socket_dir.mkdir()
    engine = Forwarder(str(socket_dir / "engine.sock"), upstream=str(tmp_path / "nothing"))
    engine.start()
    try:
        printer = parent(["--print-env", "--link", f"{redis.name}:redis", "--timeout", "60"],
                         entrypoint=ENTRYPOINT,
                         volumes={str(socket_dir): {"bind": MOUNT, "mode": "ro"}})
        # The handshake: a first try and two retries hung up on; then the Engine answers.
        wait_until(lambda: engine.accepted >= 3 or printer.reload() or
                   printer.status == "exited", timeout=30, what="three tries at the Engine")
        engine.upstream = ENGINE
        assert wait_exit(printer) == 0, logs(printer)
    finally:
        engine.stop()
    assert env_lines(output(printer))["REDIS_ENV_PASSWORD"] == "dockerpass"


    """No Engine socket, no link declared, the kubelet's variables for `redis`: --print-env
    prints exactly those."""
    printer = parent(["--print-env", "-q"], entrypoint=ENTRYPOINT, environment=REDIS_SERVICE,
                     volumes={})
    assert wait_exit(printer) == 0, logs(printer)
    assert env_lines(output(printer)) == REDIS_SERVICE


def test_command_gets_the_containers_environment_not_the_bundles(parent):
    """No _PYI_* variable and no LD_LIBRARY_PATH into the bundle reach COMMAND; the image's
    own LD_LIBRARY_PATH does, unchanged."""
    plain = parent(["env"])
    own = parent(["env"], environment={"LD_LIBRARY_PATH": "/usr/local/lib"})
    assert wait_exit(plain) == 0 and wait_exit(own) == 0
    assert not [k for k in env_lines(output(plain)) if k.startswith(("_PYI", "LD_LIBRARY"))]
    variables = env_lines(output(own))
    assert variables["LD_LIBRARY_PATH"] == "/usr/local/lib"
    assert "LD_LIBRARY_PATH_ORIG" not in variables


@pytest.mark.parametrize(
    ("command", "status"),
    [
        (["sh", "-c", "exit 3"], 3),
        (["sh", "-c", "kill -TERM $$"], 143),
        (["no-such-program"], 127),
        (["/etc/hostname"], 126),
    ],
    ids=["own-status", "killed-by-TERM", "not-found", "not-executable"],
)
def test_exit_status_is_commands(parent, command, status):
    """The container exits with COMMAND's status, 128+N for signal N, 127/126 for exec."""
    container = parent(command)
    assert wait_exit(container) == status, logs(container)


def test_signals_reach_command_and_docker_stop_is_fast(parent):
    """HUP from `docker kill` reaches COMMAND; `docker stop`'s TERM does too, and the
    container ends with COMMAND's status at once, not after the Engine's 10 s."""
    container = parent(["sh", "-c", 'trap "echo got-HUP" HUP; trap "echo got-TERM; exit 7" TERM; '
                        "echo ready; while :; do sleep 0.1; done"])
    wait_log(container, "ready")
    container.kill(signal="SIGHUP")
    wait_log(container, "got-HUP")
    started = time.monotonic()
    container.stop(timeout=10)
    elapsed = time.monotonic() - started
    assert wait_exit(container) == 7
    assert "got-TERM" in logs(container)
    assert elapsed < 2.0, f"docker stop took {elapsed:.2f} s"


def test_docker_stop_ends_a_plain_command_with_143(parent):
    """`sleep` does not handle TERM: forwarded, it dies of it, and linkinit reports 143."""
    container = parent(["sh", "-c", "echo ready; exec sleep 60"])
    wait_log(container, "ready")
    started = time.monotonic()
    container.stop(timeout=10)
    assert time.monotonic() - started < 2.0
    assert wait_exit(container) == 143


ORPHAN_MAKER = 'sh -c "sleep 0.3 &"; echo ready; '  # the inner shell exits: sleep is orphaned


def defunct_after_the_orphan_exits(container: Any, timeout: float = 15) -> list[dict]:
    """Wait until the orphaned `sleep 0.3` is gone or <defunct>, then what is <defunct>."""
    wait_log(container, "ready")
    deadline = time.monotonic() + timeout
    while any(r["args"] == "sleep 0.3" and not r["stat"].startswith("Z")
              for r in process_table(container)):
        assert time.monotonic() < deadline, "the orphan never exited"
        time.sleep(0.1)
    time.sleep(0.5)  # a reaper's moment
    return [r for r in process_table(container) if r["stat"].startswith("Z")]


def test_orphans_are_reaped(parent):
    """An orphan re-parented to PID 1 exits: no <defunct> entry stays."""
    container = parent(["sh", "-c", ORPHAN_MAKER + "exec sleep 60"])
    assert defunct_after_the_orphan_exits(container) == []


def test_zombie_check_sees_the_orphan_without_an_init(parent):
    """Negative control: with `sleep` itself as PID 1, the orphan stays <defunct>."""
    container = parent(["-c", ORPHAN_MAKER + "exec sleep 60"], entrypoint=["sh"])
    assert len(defunct_after_the_orphan_exits(container)) == 1


def test_pid1_is_the_slim_watcher_and_holds_at_most_10_mb(parent):
    """Once COMMAND runs, PID 1 is the bundle re-executed in its slim mode: none of the
    resolver's extension modules (json, socket) is mapped, and it holds <= 10 MB."""
    container = parent(["sleep", "60"])
    pid = host_pid(container)
    wait_child_named(pid, "sleep")
    assert os.readlink(f"/proc/{pid}/exe") == "/opt/linkinit/linkinit"
    with open(f"/proc/{pid}/maps") as maps:
        mapped = maps.read()
    assert "libpython3" in mapped  # the check can see the bundle's modules
    assert "_json." not in mapped and "_socket." not in mapped
    rss_kb = int(status_field(pid, "VmRSS").split()[0])
    assert rss_kb <= 10 * 1024, f"PID 1 holds {rss_kb} kB"


def test_follow_mode_runs_from_the_bundle(parent, redis, docker_client, unique):
    """on-change=hosts: the bundle starts its follow watcher (itself, `_follow`), and when the
    child comes back on another address, the parent's /etc/hosts follows it."""
    container = parent(["sh", "-c", "echo ready; exec sleep 120"], name=unique("webapp"),
                       labels={"link.redis": redis.name, "linkinit.on-change": "hosts"})
    wait_log(container, "ready")
    wait_until(lambda: any("_follow" in r["args"] for r in process_table(container)),
               what="the follow watcher")
    redis.stop(timeout=1)
    filler = start_child(docker_client, BASE_IMAGE, unique("filler"))  # takes the old address
    try:
        redis.start()
        redis.reload()
        address = redis.attrs["NetworkSettings"]["Networks"]["bridge"]["IPAddress"]

        def hosts_line() -> str:
            result = container.exec_run(["grep", "redis", "/etc/hosts"])
            return result.output.decode() if address in result.output.decode() else ""

        assert wait_until(hosts_line, timeout=30, what="/etc/hosts following the child")
        assert f"changed: now at {address}" in logs(container)
    finally:
        filler.remove(force=True)


def test_health_runs_from_the_bundle(parent, redis, unique):
    """`linkinit health` in an image without Python: 0 while Redis runs, 1 naming the link
    once it is stopped (HEALTHCHECK CMD ["/opt/linkinit/linkinit", "health"])."""
    container = parent(["sh", "-c", "echo ready; exec sleep 120"], name=unique("webapp"),
                       labels={"link.redis": redis.name})
    wait_log(container, "ready")
    healthy = container.exec_run([*ENTRYPOINT, "health"])
    assert (healthy.exit_code, healthy.output) == (0, b"linkinit: healthy (redis)\n")
    redis.stop(timeout=1)
    failing = container.exec_run([*ENTRYPOINT, "health"])
    assert failing.exit_code == 1
    assert failing.output.decode() == (
        f"linkinit: unhealthy: redis ({redis.name}): not running (exited)\n")


def test_host_tools_say_they_are_not_in_the_bundle(parent):
    """`linkinit ls` from the bundle: exit 64 and what to do, not a traceback."""
    container = parent(["ls"], entrypoint=ENTRYPOINT)
    assert wait_exit(container) == 64
    assert logs(container) == (
        "linkinit: ls is a host tool and is not in the self-contained bundle; on the host, "
        "install linkinit with pip and run it there\n"
    )


def test_the_readme_names_the_glibc_the_bundle_needs():
    """The newest glibc symbol version any file of the bundle asks for is the one the README
    tells users their base needs (Debian 12's libexpat.so.1 asks for 2.36, not 2.35)."""
    needed = set()
    for path in build_bundle().rglob("*"):
        if path.is_file() and not path.is_symlink() and path.read_bytes()[:4] == b"\x7fELF":
            needed |= {int(m) for m in re.findall(rb"GLIBC_2\.(\d+)", path.read_bytes())}
    readme = " ".join((ROOT / "README.md").read_text().split())
    stated = re.search(r"built here, on Debian 12, 2\.(\d+)", readme)
    assert stated is not None, "the README no longer says which glibc the bundle needs"
    assert int(stated.group(1)) == max(needed)
