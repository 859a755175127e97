"""Bad input a new user hit, each ending at once (or at the first look) with its documented
status and one clear message: never a traceback, a hang, or the reason hidden in a log."""

from __future__ import annotations

import os
import subprocess
import sys
from typing import Any, Iterator

import pytest

from tests.support.paths import ROOT

from .dockerkit import output, wait_exit
from .linkkit import run_parent, start_child
from .proxykit import ProxyProcess, proxies

LONG = "a" * 10_000


@pytest.fixture
def start_proxy() -> Iterator[Any]:
    yield from proxies()


@pytest.fixture
def child(docker_client, linkinit_image, unique) -> Iterator[Any]:
    made = start_child(docker_client, linkinit_image, unique("db1"), expose=[6379])
    yield made
    made.remove(force=True)


def failed(container: Any, status: int) -> str:
    """Assert the exit status; return stderr, which must hold no traceback."""
    code = wait_exit(container, timeout=30)
    stderr = output(container, stdout=False, stderr=True)
    assert code == status, stderr
    assert "Traceback" not in stderr
    return stderr


def through(proxy: ProxyProcess) -> dict:
    return {"volumes": proxy.volumes, "socket": False}


def test_yaml_only_links_behind_the_proxy_say_why_on_the_first_look(
    run_container, child, unique, tmp_path, start_proxy
):
    """A link declared only in a YAML file, behind the proxy (which does not trust files):
    the proxy's reason is on the first waiting line and in the timeout line, not only in
    the proxy's log."""
    proxy = start_proxy()
    config = tmp_path / "linkinit.yaml"
    config.write_text(f"links:\n  redis: {child.name}\n")
    parent = run_parent(run_container, unique("web"), ["--timeout", "2", "--", "true"],
                        volumes={**proxy.volumes,
                                 str(config): {"bind": "/etc/linkinit.yaml", "mode": "ro"}},
                        socket=False)
    lines = failed(parent, 75).splitlines()
    reason = (f"missing: linkinit proxy: No such container: {child.name} (this container sees "
              "only itself and the children it links")
    yaml_note = "links declared only in a YAML file inside the container are not proof"
    assert lines[0].startswith(f"linkinit: waiting for redis ({child.name}): {reason}")
    assert yaml_note in lines[0] and "--trust-files" in lines[0]
    assert lines[-1].startswith(
        f"linkinit: redis ({child.name}) not ready after 2s (wait=listening): {reason}")
    assert yaml_note in lines[-1] and "last seen" not in lines[-1]


@pytest.mark.parametrize("via", ["socket", "proxy"])
def test_a_10000_character_reference_is_64_at_once_naming_the_label(
    run_container, unique, start_proxy, via
):
    """No container name is 10,000 characters long: 64 at once (not a wait for the whole
    timeout on the socket, nor 69 with aiohttp's 8190-byte complaint through the proxy),
    naming the label, with the value shortened."""
    kwargs = through(start_proxy()) if via == "proxy" else {}
    parent = run_parent(run_container, unique("web"), ["--timeout", "60", "--", "true"],
                        labels={"link.redis": LONG}, **kwargs)
    stderr = failed(parent, 64)
    assert stderr == (
        "linkinit: label link.redis: the child '" + "a" * 40 + "... (10000 characters)' is "
        "10000 characters long: a container name, ID or network alias has at most 255\n"
    )


def test_a_container_linking_to_itself_is_64_naming_the_label(run_container, unique):
    name = unique("web")
    parent = run_parent(run_container, name, ["--", "true"], labels={"link.me": name})
    assert failed(parent, 64) == (
        f"linkinit: label link.me: child {name!r} is this container itself; a container "
        "cannot link to itself: name another container\n"
    )


def test_timeout_inf_says_a_finite_number_of_seconds(run_container, unique):
    parent = run_parent(run_container, unique("web"), ["--timeout", "inf", "--", "true"])
    assert failed(parent, 64) == (
        "linkinit: --timeout must be a finite number of seconds >= 0, not inf\n")


def test_on_the_host_a_bad_docker_host_gets_advice_about_docker_host():
    """linkinit run on the host with DOCKER_HOST naming no socket: advice to fix DOCKER_HOST,
    not the in-container advice to mount the socket."""
    env = {**os.environ, "DOCKER_HOST": "unix:///nonexistent/docker.sock"}
    done = subprocess.run([sys.executable, "-m", "linkinit", "--print-env", "--link", "db1"],
                          capture_output=True, text=True, env=env, cwd=ROOT, timeout=30)
    assert done.returncode == 69, done.stderr
    assert done.stderr == (
        "linkinit: no Docker Engine socket at /nonexistent/docker.sock: DOCKER_HOST names it: "
        "set DOCKER_HOST to the Engine's socket (unix:///var/run/docker.sock) or unset it\n"
    )


# A private mount namespace in which /run/linkinit is the proxy's directory, as on a host that
# runs `linkinit proxy` for its parents, and /run/docker.sock is still the Engine's socket.
PROXY_ON_THIS_HOST = """set -eu
old=$1 proxy=$2; shift 2
mount --rbind /run "$old"
mount -t tmpfs linkinit-test /run
touch /run/docker.sock
mount --bind "$old/docker.sock" /run/docker.sock
mkdir /run/linkinit
mount --bind "$proxy" /run/linkinit
exec "$@"
"""


def host_ls_beside_a_proxy(proxy: ProxyProcess, scratch, environ: dict) -> Any:
    old = scratch / "run"
    old.mkdir(parents=True)
    return subprocess.run(
        ["unshare", "-m", "--propagation", "private", "sh", "-c", PROXY_ON_THIS_HOST, "sh",
         str(old), str(proxy.directory), sys.executable, "-m", "linkinit", "ls"],
        capture_output=True, text=True, env=environ, cwd=ROOT, timeout=60)


def test_host_tools_use_the_engines_socket_even_where_the_proxy_runs(
    child, start_proxy, tmp_path
):
    """`linkinit ls` on a host whose /run/linkinit holds the proxy's socket talks to the
    Engine's socket (the proxy serves containers and refuses host callers); DOCKER_HOST
    pointed at the proxy is what sends it there (the control: refused)."""
    proxy = start_proxy()
    environ = {k: v for k, v in os.environ.items() if k != "DOCKER_HOST"}
    listed = host_ls_beside_a_proxy(proxy, tmp_path / "a", environ)
    assert listed.returncode == 0, listed.stderr
    assert child.name in listed.stdout
    told = host_ls_beside_a_proxy(
        proxy, tmp_path / "b", {**environ, "DOCKER_HOST": "unix:///run/linkinit/engine.sock"})
    assert told.returncode == 69, told.stdout
    assert "refused" in told.stderr and child.name not in told.stdout
