"""Fixtures for end-to-end tests: the real Docker Engine, real images, real containers.

The test image is the local base (scripts/build-base) with linkinit installed offline from
wheels built on the host, plus the cooperating programs of tests/programs at
/opt/linkinit-tests. Every container and network made here carries the label
``linkinit.test`` and is removed at teardown; the session's own token as its value lets
a session sweep what it left without touching another session's containers.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import shutil
import subprocess
import sys
import uuid
from pathlib import Path
from typing import Any, Callable, Iterator

import docker
import pytest

ROOT = Path(__file__).resolve().parents[2]
BASE_IMAGE = os.environ.get("LINKINIT_BASE_IMAGE", "linkinit-base:bookworm")
# One tag per checkout: two clones testing at once on one Engine must not run each other's
# linkinit (LINKINIT_TEST_IMAGE overrides).
TEST_IMAGE = os.environ.get(
    "LINKINIT_TEST_IMAGE", "linkinit-test:" + hashlib.sha256(str(ROOT).encode()).hexdigest()[:12]
)
TEST_LABEL = "linkinit.test"
SOCKET = "/var/run/docker.sock"
SOCKET_VOLUME = {SOCKET: {"bind": SOCKET, "mode": "ro"}}
SESSION = uuid.uuid4().hex[:12]

_TEST_DOCKERFILE = """\
ARG BASE_IMAGE
FROM ${BASE_IMAGE}
COPY wheels/ /tmp/wheels/
RUN PIP_BREAK_SYSTEM_PACKAGES=1 pip install --no-cache-dir --no-index \
        --find-links /tmp/wheels linkinit && rm -rf /tmp/wheels
COPY programs/ /opt/linkinit-tests/
"""


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if "/e2e/" in str(item.fspath):
            item.add_marker(pytest.mark.e2e)


def build_wheels(target: Path) -> Path:
    """linkinit and its dependencies as wheels: containers cannot reach a package index."""
    target.mkdir(parents=True, exist_ok=True)
    for old in target.glob("linkinit-*.whl"):
        old.unlink()
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "-q", "--disable-pip-version-check",
         "-w", str(target), str(ROOT)],
        check=True, timeout=600,
    )
    return target


@pytest.fixture(scope="session")
def docker_client() -> Iterator[docker.DockerClient]:
    try:
        client = docker.from_env(timeout=120)
        client.ping()
    except docker.errors.DockerException as error:
        pytest.fail(f"no Docker Engine ({error}): run scripts/test, which starts one")
    yield client
    _remove_leftovers(client)
    client.close()


def _remove_leftovers(client: docker.DockerClient) -> None:
    """What this session's tests made and failed to remove (a crash mid-test, say)."""
    mine = {"label": f"{TEST_LABEL}={SESSION}"}
    for container in client.containers.list(all=True, filters=mine):
        container.remove(force=True)
    for network in client.networks.list(filters=mine):
        network.remove()


@pytest.fixture(scope="session")
def linkinit_image(docker_client: docker.DockerClient, tmp_path_factory: Any) -> str:
    """Build (or reuse, through the build cache) the image every parent container runs."""
    try:
        docker_client.images.get(BASE_IMAGE)
    except docker.errors.ImageNotFound:
        pytest.fail(f"no base image {BASE_IMAGE}: run scripts/build-base (scripts/test does)")
    context = tmp_path_factory.mktemp("image")
    build_wheels(ROOT / "build" / "wheels")
    shutil.copytree(ROOT / "build" / "wheels", context / "wheels")
    shutil.copytree(ROOT / "tests" / "programs", context / "programs")
    (context / "Dockerfile").write_text(_TEST_DOCKERFILE)
    docker_client.images.build(
        path=str(context), tag=TEST_IMAGE, buildargs={"BASE_IMAGE": BASE_IMAGE}, rm=True
    )
    return TEST_IMAGE


@pytest.fixture
def unique() -> Callable[[str], str]:
    """Names that cannot collide with another test's or a user's containers."""
    token = uuid.uuid4().hex[:8]
    return lambda prefix: f"lt-{prefix}-{token}"


@pytest.fixture
def run_container(
    docker_client: docker.DockerClient, linkinit_image: str
) -> Iterator[Callable[..., Any]]:
    """Start a labelled container (detached) from the test image unless told otherwise."""
    made: list[Any] = []

    def run(command: Any = None, image: str = linkinit_image, **kwargs: Any) -> Any:
        kwargs.setdefault("detach", True)
        labels = dict(kwargs.pop("labels", {}) or {})
        labels[TEST_LABEL] = SESSION
        container = docker_client.containers.run(image, command, labels=labels, **kwargs)
        made.append(container)
        return container

    yield run
    for container in made:
        with contextlib.suppress(docker.errors.NotFound):
            container.remove(force=True)


@pytest.fixture
def make_network(docker_client: docker.DockerClient) -> Iterator[Callable[[str], Any]]:
    made: list[Any] = []

    def make(name: str) -> Any:
        network = docker_client.networks.create(name, labels={TEST_LABEL: SESSION})
        made.append(network)
        return network

    yield make
    for network in made:
        for container in docker_client.containers.list(all=True, filters={"network": network.id}):
            container.remove(force=True)
        network.remove()
