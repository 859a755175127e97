"""The start path imports nothing heavy: the start-up budget cannot regress silently.

linkinit runs as ``linkinit -- COMMAND`` against a fake Engine that answers for a parent
with one ready link, under ``-X importtime``; every module imported on the way, in PID 1 and
in the resolver it forks, is checked against the list of what costs milliseconds (measured
in bench/README.md). The run happens in a private mount namespace whose ``/etc/hosts`` is a
scratch file, so the host's own is never touched.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import threading
from pathlib import Path
from typing import Callable, Iterator, List

import pytest

from tests.support.fake_engine import FakeEngine, Step, json_answer, ping

# only when a probe is declared
PROBE_MODULES = ("linkinit.init.probes", "linkinit.init.command_probe")
FORBIDDEN = ("typing", "dataclasses", "argparse", "http.client", "docker", "requests",
             "urllib3", "tenacity", "yaml", "asyncio", "aiohttp", "email", "ssl", "socket",
             "selectors", "ctypes", "encodings.idna", "jinja2", "markupsafe")

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


def start(engine: FakeEngine, tmp_path: Path, *options: str,
          expected: str = "tcp://172.18.0.2:6379\n") -> tuple[set, Path]:
    """Run ``linkinit [options] -- sh -c 'echo $REDIS_PORT'``; the modules it imported."""
    if shutil.which("unshare") is None or os.geteuid() != 0:
        pytest.fail("needs root and unshare (util-linux) for a private /etc/hosts")
    hosts = tmp_path / "hosts"
    hosts.write_text("127.0.0.1\tlocalhost\n")
    script = shutil.which("linkinit", path=str(Path(sys.executable).parent))
    assert script, "linkinit's console script is not installed next to this Python"
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "DOCKER_HOST": engine.host,
           "LINKINIT_HEALTH_FILE": str(tmp_path / "health.json"),
           "LINKINIT_CONTAINER": "webapp", "PYTHONPROFILEIMPORTTIME": "1"}
    done = subprocess.run(
        ["unshare", "-m", "sh", "-c", 'mount --bind "$0" /etc/hosts && exec "$@"', str(hosts),
         sys.executable, script, *options, "--", "sh", "-c", "echo $REDIS_PORT"],
        env=env, capture_output=True, text=True, timeout=60,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout == expected, "the link did not resolve: " + done.stderr
    imported = {line.split("|")[-1].strip() for line in done.stderr.splitlines()
                if line.startswith("import time:")}
    assert "linkinit.init.resolve" in imported, "the resolver's imports were not seen"
    return imported, hosts


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
    assert heavy(imported) == [], f"a probe imported {heavy(imported)}"


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
