"""The start path imports nothing heavy: the start-up budget cannot regress silently.

linkinit runs as ``linkinit -- COMMAND`` (and ``linkinit --print-env``) against a fake
Engine that answers for a parent with one ready link, under ``-X importtime``, through the
``linkinit`` command installed next to this Python (linkinit's own launcher, not pip's
console script); every module imported on the way, by the launcher, in PID 1 and in the
resolver it forks, is checked against the list of what costs milliseconds (measured in
bench/README.md). The run happens in a private mount namespace whose ``/etc/hosts`` is a
scratch file, so the host's own is never touched.
"""

from __future__ import annotations

import ast
import os
import shutil
import socket
import subprocess
import sys
import sysconfig
import threading
from pathlib import Path
from typing import Callable, Iterator, List

import pytest

from tests.support.fake_engine import FakeEngine, Step, json_answer, ping
from tests.support.paths import ROOT

# only when a probe is declared
PROBE_MODULES = ("linkinit.init.probes", "linkinit.init.command_probe")
FORBIDDEN = ("typing", "dataclasses", "argparse", "http.client", "docker", "requests",
             "urllib3", "tenacity", "yaml", "asyncio", "aiohttp", "email", "ssl", "socket",
             "selectors", "ctypes", "encodings.idna", "jinja2", "markupsafe", "re", "json",
             "enum", "functools")
# what the exec: probe brings when it is declared (signal, contextlib)
EXEC_PROBE_EXTRA = ("enum", "functools")

PARENT = {"Id": "p" * 64, "Name": "/webapp",
          "Config": {"Labels": {"link.redis": "db1", "link.redis.wait": "started"}},
          "NetworkSettings": {"Networks": {"demo": {"IPAddress": "172.18.0.3"}}}}
CHILD = {"Id": "c" * 64, "Name": "/db1",
         "State": {"Status": "running", "Running": True},
         "Config": {"ExposedPorts": {"6379/tcp": {}}, "Env": ["PASSWORD=x"], "Hostname": "c1"},
         "NetworkSettings": {"Networks": {"demo": {"IPAddress": "172.18.0.2"}}}}


def answering(parent: dict, child: dict = CHILD) -> Callable[[str], List[Step]]:
    """The fake Engine's answers for this parent and child."""

    def answer(line: str) -> List[Step]:
        if line.startswith("GET /_ping"):
            return [ping()]
        if "/containers/webapp/json" in line:
            return [json_answer(parent)]
        if "/containers/db1/json" in line:
            return [json_answer(child)]
        return [json_answer({"message": f"unexpected {line}"}, status=500)]

    return answer


@pytest.fixture
def engine() -> Iterator[FakeEngine]:
    fake = FakeEngine(answering(PARENT, CHILD))
    yield fake
    fake.close()


def launcher() -> str:
    """The ``linkinit`` command installed next to this Python (setup-venv's install)."""
    script = shutil.which("linkinit", path=str(Path(sys.executable).parent))
    assert script, "linkinit's launcher is not installed next to this Python"
    return script


def run_linkinit(engine: FakeEngine, tmp_path: Path, *argv: str) -> tuple[str, str, Path]:
    """``linkinit ARGV`` as installed, under ``-X importtime``: (stdout, stderr, the scratch
    /etc/hosts). Without ``site`` (``-S``; the checkout and the venv's packages on
    PYTHONPATH): the venv's editable install imports re from ``site``, which would hide the
    launcher's and linkinit's."""
    if shutil.which("unshare") is None or os.geteuid() != 0:
        pytest.fail("needs root and unshare (util-linux) for a private /etc/hosts")
    hosts = tmp_path / "hosts"
    hosts.write_text("127.0.0.1\tlocalhost\n")
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "DOCKER_HOST": engine.host,
           "LINKINIT_HEALTH_FILE": str(tmp_path / "health.json"),
           "LINKINIT_CONTAINER": "webapp", "PYTHONPROFILEIMPORTTIME": "1",
           "PYTHONPATH": os.pathsep.join([str(ROOT), sysconfig.get_paths()["purelib"]])}
    done = subprocess.run(
        ["unshare", "-m", "sh", "-c", 'mount --bind "$0" /etc/hosts && exec "$@"', str(hosts),
         sys.executable, "-S", launcher(), *argv],
        env=env, capture_output=True, text=True, timeout=60,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    return done.stdout, done.stderr, hosts


def imports(stderr: str) -> set:
    """The modules ``-X importtime`` reported, in every process that wrote to stderr."""
    imported = {line.split("|")[-1].strip() for line in stderr.splitlines()
                if line.startswith("import time:")}
    assert "linkinit.init.resolve" in imported, "the resolver's imports were not seen"
    return imported


def start(engine: FakeEngine, tmp_path: Path, *options: str,
          expected: str = "tcp://172.18.0.2:6379\n") -> tuple[set, Path]:
    """Run ``linkinit [options] -- sh -c 'echo $REDIS_PORT'``; the modules it imported."""
    out, err, hosts = run_linkinit(engine, tmp_path, *options, "--", "sh", "-c",
                                   "echo $REDIS_PORT")
    assert out == expected, "the link did not resolve: " + err
    return imports(err), hosts


def heavy(imported: set) -> List[str]:
    return sorted(name for name in imported
                  if any(name == f or name.startswith(f + ".") for f in FORBIDDEN))


def test_the_start_path_imports_nothing_heavy(engine: FakeEngine, tmp_path: Path) -> None:
    """``ENTRYPOINT ["linkinit", "--"]`` with one ready link: none of FORBIDDEN is loaded."""
    imported, hosts = start(engine, tmp_path)
    assert heavy(imported) == [], f"the start path imported {heavy(imported)}"
    assert "172.18.0.2\tredis c1 db1\n" in hosts.read_text()
    assert not imported & set(PROBE_MODULES), "a probe module was loaded without a probe"


@pytest.fixture
def redis_on_loopback() -> Iterator[int]:
    """A loopback server answering each PING with +PONG (bounded: 5 s per connection)."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(4)

    def serve() -> None:
        while True:
            try:
                connection, _ = listener.accept()
            except OSError:
                return
            with connection:
                connection.settimeout(5)
                if connection.recv(64):
                    connection.sendall(b"+PONG\r\n")

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    yield listener.getsockname()[1]
    listener.shutdown(socket.SHUT_RDWR)
    listener.close()
    thread.join(5)


@pytest.mark.parametrize(("wait", "module"), [("redis", "linkinit.init.probes"),
                                              ("exec:test -n \"$REDIS_PORT\"",
                                               "linkinit.init.command_probe")])
def test_a_declared_probe_loads_its_module_and_still_nothing_heavy(
        tmp_path: Path, redis_on_loopback: int, wait: str, module: str) -> None:
    """The control: with ``link.redis.wait=redis`` (a loopback server says +PONG) or
    ``exec:``, the probe's module is imported, so the check above can fail."""
    labels = {"link.redis": "db1", "link.redis.wait": wait}
    parent = {**PARENT, "Config": {"Labels": labels}, "NetworkSettings": {
        "Networks": {"demo": {"IPAddress": "127.0.0.2"}}}}
    child = {**CHILD, "Config": {**CHILD["Config"],
                                 "ExposedPorts": {f"{redis_on_loopback}/tcp": {}}},
             "NetworkSettings": {"Networks": {"demo": {"IPAddress": "127.0.0.1"}}}}
    fake = FakeEngine(answering(parent, child))
    try:
        imported, _ = start(fake, tmp_path, expected=f"tcp://127.0.0.1:{redis_on_loopback}\n")
    finally:
        fake.close()
    assert module in imported
    extra = EXEC_PROBE_EXTRA if wait.startswith("exec:") else ()
    assert [m for m in heavy(imported) if m not in extra] == [], \
        f"a probe imported {heavy(imported)}"


def test_the_check_sees_a_heavy_import_when_there_is_one(engine: FakeEngine,
                                                         tmp_path: Path) -> None:
    """The control: options before ``--`` load argparse, and the check catches it."""
    imported, _ = start(engine, tmp_path, "--timeout", "5")
    assert "argparse" in heavy(imported)


def test_jinja2_is_loaded_when_a_template_is_declared(engine: FakeEngine,
                                                     tmp_path: Path) -> None:
    """The control for the templates' extra: the same start with a template declared loads
    Jinja2 (and renders it), so its absence above means something."""
    source, dest = tmp_path / "redis.j2", tmp_path / "out" / "redis.conf"
    source.write_text("{{ REDIS_PORT }}\n")
    labels = {**PARENT["Config"]["Labels"], "linkinit.template.r": f"{source}:{dest}"}
    engine.answer = answering({**PARENT, "Config": {"Labels": labels}})
    imported, _ = start(engine, tmp_path)
    assert "jinja2" in heavy(imported)
    assert dest.read_text() == "tcp://172.18.0.2:6379\n"


def test_print_env_imports_nothing_heavy(engine: FakeEngine, tmp_path: Path) -> None:
    """``linkinit --print-env`` (no Kubernetes services around): none of FORBIDDEN either;
    the client library (typing, dataclasses, re) only where the kubelet wrote a service."""
    out, err, _ = run_linkinit(engine, tmp_path, "--print-env")
    assert "REDIS_PORT=tcp://172.18.0.2:6379\n" in out
    imported = imports(err)
    assert heavy(imported) == [], f"--print-env imported {heavy(imported)}"
    assert "linkinit.client" not in imported


def test_the_installed_command_is_linkinits_own_launcher() -> None:
    """``linkinit`` on PATH is packaging/linkinit, as pip installs it: its first line names
    this Python, and its one import is the command line (pip's generated console script
    imports re and sys first)."""
    text = Path(launcher()).read_text()
    assert text.splitlines()[0].startswith("#!" + str(Path(sys.executable).parent))
    imported = [node for node in ast.walk(ast.parse(text))
                if isinstance(node, (ast.Import, ast.ImportFrom))]
    assert [ast.unparse(node) for node in imported] == ["from linkinit.cli import main"]
