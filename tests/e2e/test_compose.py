"""Compose v2 (Debian unstable's docker-compose 2.40 plugin, scripts/fetch-compose) driving the
README's compose example for real on this host's Docker: `links:` with no label, `depends_on`,
and a `docker compose up` that recreates the child while follow mode is on.

Compose writes three entries per `links:` entry into the parent's network ``Links``
(``<project>-db1-1:redis``, ``...:db1-1``, ``...:<project>-db1-1``): linkinit exports one set
of variables, under the alias the user wrote.
"""

from __future__ import annotations

import os
import subprocess
import uuid
from pathlib import Path
from typing import Any, Iterator

import pytest

from tests.support.paths import ROOT

from .conftest import SESSION, TEST_LABEL
from .dockerkit import env_lines, wait_until

pytestmark = pytest.mark.timeout(300)
COMPOSE = os.environ.get("LINKINIT_COMPOSE", "/var/lib/linkinit/compose/docker-compose")
COMPOSE_FILE = """\
services:
  db1:
    image: {image}
    command: ["redis-server", "--protected-mode", "no"]
    environment: {{PASSWORD: "${{PASSWORD:-dockerpass}}"}}
    expose: ["6379"]
    labels: {{{label}: {session}}}
  webapp:
    image: {image}
    entrypoint: ["linkinit", "--"]
    command: ["sleep", "300"]
    links: ["db1:redis"]
    depends_on: [db1]
    labels: {{{label}: {session}, linkinit.on-change: hosts}}
    volumes: ["/var/run/docker.sock:/var/run/docker.sock:ro"]
  worker:
    image: {image}
    entrypoint: ["linkinit", "--"]
    command: ["sleep", "300"]
    links: ["db1"]
    depends_on: [db1]
    labels: {{{label}: {session}}}
    volumes: ["/var/run/docker.sock:/var/run/docker.sock:ro"]
"""
PASSWORD = "import linkinit; print(linkinit.require_env('redis', 'password'))"


class Project:
    def __init__(self, directory: Path, name: str, client: Any) -> None:
        self.directory, self.name, self.client = directory, name, client

    def compose(self, *args: str, **environment: str) -> str:
        env = {key: value for key, value in os.environ.items() if key != "DOCKER_HOST"}
        done = subprocess.run([COMPOSE, "-p", self.name, *args], cwd=self.directory,
                              capture_output=True, text=True, timeout=180,
                              env={**env, **environment})
        assert done.returncode == 0, done.stderr
        return done.stdout

    def container(self, service: str) -> Any:
        return self.client.containers.get(f"{self.name}-{service}-1")

    def run_in(self, service: str, *command: str) -> str:
        code, out = self.container(service).exec_run(list(command))
        assert code == 0, out.decode(errors="replace")
        return out.decode()


@pytest.fixture(scope="module")
def project(engines_under_test, tmp_path_factory) -> Iterator[Project]:
    """The README's example, up: db1, a webapp linking it as redis, a worker linking db1."""
    from .conftest import connect_engine

    fetched = subprocess.run([str(ROOT / "scripts" / "fetch-compose")], capture_output=True,
                             text=True, timeout=600)
    if fetched.returncode != 0:
        pytest.fail(f"scripts/fetch-compose failed: {fetched.stderr[-2000:]}", pytrace=False)
    if "docker" not in engines_under_test:
        engines_under_test["docker"] = connect_engine("docker")
    docker = engines_under_test["docker"]
    directory = tmp_path_factory.mktemp("compose")
    (directory / "compose.yaml").write_text(COMPOSE_FILE.format(
        image=docker.image(tmp_path_factory), label=TEST_LABEL, session=SESSION))
    made = Project(directory, f"lt-compose-{uuid.uuid4().hex[:8]}", docker.client)
    try:
        made.compose("up", "-d", "--wait")
        yield made
    finally:
        made.compose("down", "-t", "0", "--remove-orphans")


def test_compose_links_give_one_set_of_variables_under_the_users_alias(project):
    """`links: ["db1:redis"]` is three Links entries; the webapp gets REDIS_* only, and
    `links: ["db1"]` gives the worker DB1_*; neither gets compose's extra names."""
    web = project.container("webapp")
    entries = web.attrs["NetworkSettings"]["Networks"][f"{project.name}_default"]["Links"]
    child = f"{project.name}-db1-1"
    assert sorted(entries) == sorted([f"{child}:redis", f"{child}:db1-1", f"{child}:{child}"])
    db1 = project.container("db1")
    ip = db1.attrs["NetworkSettings"]["Networks"][f"{project.name}_default"]["IPAddress"]
    mine = env_lines(project.run_in("webapp", "linkinit", "--print-env"))
    assert mine["REDIS_PORT"] == f"tcp://{ip}:6379"
    assert mine["REDIS_NAME"] == f"/{web.name}/redis"
    assert {key.split("_PORT")[0].split("_ENV")[0].split("_NAME")[0] for key in mine} == {
        "REDIS"}
    worker = env_lines(project.run_in("worker", "linkinit", "--print-env"))
    assert worker["DB1_ENV_PASSWORD"] == "dockerpass"
    assert not [key for key in worker if not key.startswith("DB1_")]


def test_compose_up_recreating_the_child_is_followed(project):
    """`docker compose up -d db1` with a changed setting recreates db1; the webapp, in follow
    mode, keeps running and its library view reads the new child."""
    web = project.container("webapp")
    assert project.run_in("webapp", "python3", "-c", PASSWORD).strip() == "dockerpass"
    old = project.container("db1").id
    project.compose("up", "-d", "--no-deps", "db1", PASSWORD="changed")
    assert project.container("db1").id != old
    wait_until(lambda: project.run_in("webapp", "python3", "-c", PASSWORD).strip() == "changed",
               60, "the webapp's view of the recreated db1")
    assert project.container("webapp").id == web.id
    assert "follow: redis" in web.logs(stdout=False).decode()
