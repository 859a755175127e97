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
import subprocess
import sys
from pathlib import Path
from typing import Iterator, List

import pytest

from tests.support.fake_engine import FakeEngine, Step, json_answer, ping

FORBIDDEN = ("typing", "dataclasses", "argparse", "http.client", "docker", "requests",
             "urllib3", "tenacity", "yaml", "asyncio", "aiohttp", "email", "ssl", "socket",
             "selectors", "ctypes", "encodings.idna")

PARENT = {"Id": "p" * 64, "Name": "/webapp",
          "Config": {"Labels": {"link.redis": "db1", "link.redis.wait": "started"}},
          "NetworkSettings": {"Networks": {"demo": {"IPAddress": "172.18.0.3"}}}}
CHILD = {"Id": "c" * 64, "Name": "/db1",
         "State": {"Status": "running", "Running": True},
         "Config": {"ExposedPorts": {"6379/tcp": {}}, "Env": ["PASSWORD=x"], "Hostname": "c1"},
         "NetworkSettings": {"Networks": {"demo": {"IPAddress": "172.18.0.2"}}}}


def answer(line: str) -> List[Step]:
    if line.startswith("GET /_ping"):
        return [ping()]
    if "/containers/webapp/json" in line:
        return [json_answer(PARENT)]
    if "/containers/db1/json" in line:
        return [json_answer(CHILD)]
    return [json_answer({"message": f"unexpected {line}"}, status=500)]


@pytest.fixture
def engine() -> Iterator[FakeEngine]:
    fake = FakeEngine(answer)
    yield fake
    fake.close()


def start(engine: FakeEngine, tmp_path: Path, *options: str) -> tuple[set, Path]:
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
    assert done.stdout == "tcp://172.18.0.2:6379\n", "the link did not resolve: " + done.stderr
    imported = {line.split("|")[-1].strip() for line in done.stderr.splitlines()
                if line.startswith("import time:")}
    assert "linkinit.resolve" in imported, "the resolver's imports were not seen"
    return imported, hosts


def heavy(imported: set) -> List[str]:
    return sorted(name for name in imported
                  if any(name == f or name.startswith(f + ".") for f in FORBIDDEN))


def test_the_start_path_imports_nothing_heavy(engine: FakeEngine, tmp_path: Path) -> None:
    """``ENTRYPOINT ["linkinit", "--"]`` with one ready link: none of FORBIDDEN is loaded."""
    imported, hosts = start(engine, tmp_path)
    assert heavy(imported) == [], f"the start path imported {heavy(imported)}"
    assert "172.18.0.2\tredis c1 db1\n" in hosts.read_text()


def test_the_check_sees_a_heavy_import_when_there_is_one(engine: FakeEngine,
                                                         tmp_path: Path) -> None:
    """The control: options before ``--`` load argparse, and the check catches it."""
    imported, _ = start(engine, tmp_path, "--timeout", "5")
    assert "argparse" in heavy(imported)
