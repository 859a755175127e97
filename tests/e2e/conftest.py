"""Fixtures for end-to-end tests: the real Docker Engine, real images, real containers.

The test image is the local base (scripts/build-base) with linkinit installed offline from
wheels built on the host, plus the cooperating programs of tests/programs at
/opt/linkinit-tests. Every container and network made here carries the label
``linkinit.test`` and is removed at teardown; the session's own token as its value lets
a session sweep what it left without touching another session's containers.

Every fixture works on the engine the ``engine`` fixture names: Docker unless a test or
module is marked ``@pytest.mark.engines("docker", "podman")``, which runs it once per engine
(Podman's compatible API on its own socket, through the same docker SDK). The two engines'
containers cannot reach each other's networks, so each scenario runs on one engine at a time.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import shutil
import subprocess
import sys
import time
import uuid
from pathlib import Path
from typing import Any, Callable, Iterator

import docker
import pytest

from tests.support.paths import BASE_IMAGE, ROOT
from tests.support.swarm import ForeignSwarm, Swarm, machine_lock

# One tag per checkout: two clones testing at once on one Engine must not run each other's
# linkinit (LINKINIT_TEST_IMAGE overrides).
TEST_IMAGE = os.environ.get(
    "LINKINIT_TEST_IMAGE", "linkinit-test:" + hashlib.sha256(str(ROOT).encode()).hexdigest()[:12]
)
TEST_LABEL = "linkinit.test"
SOCKET = "/var/run/docker.sock"
SOCKET_VOLUME = {SOCKET: {"bind": SOCKET, "mode": "ro"}}
SESSION = uuid.uuid4().hex[:12]
ENGINES = ("docker", "podman")
PODMAN_SOCKET = os.environ.get("LINKINIT_PODMAN_SOCKET", "/run/podman/podman.sock")

_TEST_DOCKERFILE = """\
ARG BASE_IMAGE
FROM ${BASE_IMAGE}
COPY wheels/ /tmp/wheels/
RUN PIP_BREAK_SYSTEM_PACKAGES=1 pip install --no-cache-dir --no-index \
        --find-links /tmp/wheels 'linkinit[templates]' && rm -rf /tmp/wheels
COPY programs/ /opt/linkinit-tests/
"""


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "engines(*names): run the test on each engine named")


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if "/e2e/" in str(item.fspath):
            item.add_marker(pytest.mark.e2e)


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    """``@pytest.mark.engines("docker", "podman")``: one run of the test per engine."""
    marker = metafunc.definition.get_closest_marker("engines")
    if marker is not None and "engine" in metafunc.fixturenames:
        metafunc.parametrize("engine", marker.args or ENGINES, indirect=True)


def build_wheels(target: Path) -> Path:
    """linkinit and its dependencies (the templates' Jinja2 too) as wheels: containers
    cannot reach a package index."""
    target.mkdir(parents=True, exist_ok=True)
    for old in target.glob("linkinit-*.whl"):
        old.unlink()
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "-q", "--disable-pip-version-check",
         "-w", str(target), f"{ROOT}[templates]"],
        check=True, timeout=600,
    )
    return target


class EngineUnderTest:
    """One engine the tests run on: its SDK client, its socket, its own test image."""

    def __init__(self, name: str, client: docker.DockerClient, socket: str,
                 default_network: str, runs_healthchecks: bool) -> None:
        self.name = name
        self.client = client
        self.socket = socket  # on the host; parents get it at SOCKET
        self.socket_volume = {socket: {"bind": SOCKET, "mode": "ro"}}
        self.default_network = default_network  # what a container is on unless told
        self.runs_healthchecks = runs_healthchecks  # Podman without systemd runs none
        self._image: str = ""

    def __repr__(self) -> str:
        return self.name

    def image(self, tmp_path_factory: Any) -> str:
        """Build (or reuse, through the build cache) the image every parent runs, once."""
        if not self._image:
            self._image = _build_test_image(self.client, tmp_path_factory)
        return self._image


def connect_engine(name: str) -> EngineUnderTest:
    try:
        if name == "docker":
            client = docker.from_env(timeout=120)
        else:
            client = docker.DockerClient(base_url=f"unix://{PODMAN_SOCKET}", timeout=120)
        client.ping()
    except docker.errors.DockerException as error:
        pytest.fail(f"no {name} engine ({error}): run scripts/test, which starts one")
    if name == "docker":
        return EngineUnderTest(name, client, SOCKET, "bridge", True)
    return EngineUnderTest(name, client, PODMAN_SOCKET, "podman", False)


@pytest.fixture(scope="session")
def engines_under_test() -> Iterator[dict[str, EngineUnderTest]]:
    """The engines this session has used, connected on first use, swept at the end."""
    connected: dict[str, EngineUnderTest] = {}
    yield connected
    for engine in connected.values():
        _remove_leftovers(engine.client)
        engine.client.close()


@pytest.fixture
def engine(request: Any, engines_under_test: dict[str, EngineUnderTest]) -> EngineUnderTest:
    """The engine this test runs on (Docker unless parametrised by ``engines``)."""
    name = getattr(request, "param", "docker")
    if name not in engines_under_test:
        engines_under_test[name] = connect_engine(name)
    return engines_under_test[name]


@pytest.fixture
def docker_engine(engines_under_test: dict[str, EngineUnderTest]) -> EngineUnderTest:
    """Docker, whatever the engine under test: the reference for what links looked like."""
    if "docker" not in engines_under_test:
        engines_under_test["docker"] = connect_engine("docker")
    return engines_under_test["docker"]


@pytest.fixture
def docker_client(engine: EngineUnderTest) -> docker.DockerClient:
    """The SDK client of the engine under test (Podman's too: its API is Docker's)."""
    return engine.client


@pytest.fixture(scope="session")
def swarm(engines_under_test: dict[str, EngineUnderTest]) -> Iterator[Swarm]:
    """A two-node swarm (tests/support/swarm.py): this host's Engine as the manager, a node
    container (scripts/build-swarm-node, built here on first use) as the worker, and an
    attachable overlay network. Made once a session, on first use, one session at a time per
    machine; left and removed at the end. A swarm the host is already in fails the test."""
    if "docker" not in engines_under_test:
        engines_under_test["docker"] = connect_engine("docker")
    build = subprocess.run([str(ROOT / "scripts" / "build-swarm-node")],
                           capture_output=True, text=True, timeout=600)
    if build.returncode != 0:
        pytest.fail(f"scripts/build-swarm-node failed: {build.stderr[-2000:]}", pytrace=False)
    with machine_lock():
        try:
            with Swarm(engines_under_test["docker"].client, token=SESSION) as made:
                yield made
        except ForeignSwarm as refused:
            pytest.fail(str(refused), pytrace=False)


@pytest.fixture
def make_service(swarm: Swarm) -> Iterator[Callable[..., str]]:
    """``make_service(name, *options, image, *command)``: a service on the swarm (on its
    overlay network, see ``Swarm.create_service``), removed after the test; returns the name."""
    made: list[str] = []

    def make(name: str, *args: str) -> str:
        swarm.create_service(name, *args)
        made.append(name)
        return name

    yield make
    for name in made:
        swarm.remove_service(name)


def _remove_leftovers(client: docker.DockerClient) -> None:
    """What this session's tests made and failed to remove (a crash mid-test, say)."""
    mine = {"label": f"{TEST_LABEL}={SESSION}"}
    for container in client.containers.list(all=True, filters=mine):
        container.remove(force=True)
    for network in client.networks.list(filters=mine):
        network.remove()


_WHEELS_BUILT: list[bool] = []


def _build_test_image(client: docker.DockerClient, tmp_path_factory: Any,
                      base: str = BASE_IMAGE, tag: str = TEST_IMAGE) -> str:
    """linkinit from wheels on ``base`` (the local base image unless told), tagged ``tag``."""
    try:
        client.images.get(base)
    except docker.errors.ImageNotFound:
        pytest.fail(f"no base image {BASE_IMAGE}: run scripts/build-base and "
                    "scripts/ensure-podman (scripts/test does)")
    context = tmp_path_factory.mktemp("image")
    if not _WHEELS_BUILT:  # once a session, whichever engine asks first
        build_wheels(ROOT / "build" / "wheels")
        _WHEELS_BUILT.append(True)
    shutil.copytree(ROOT / "build" / "wheels", context / "wheels")
    shutil.copytree(ROOT / "tests" / "programs", context / "programs")
    (context / "Dockerfile").write_text(_TEST_DOCKERFILE)
    client.images.build(path=str(context), tag=tag, buildargs={"BASE_IMAGE": base}, rm=True)
    return tag


@pytest.fixture
def linkinit_image(engine: EngineUnderTest, tmp_path_factory: Any) -> str:
    """The image every parent container runs, built on the engine under test."""
    return engine.image(tmp_path_factory)


@pytest.fixture
def unique() -> Callable[[str], str]:
    """Names that cannot collide with another test's or a user's containers."""
    token = uuid.uuid4().hex[:8]
    return lambda prefix: f"lt-{prefix}-{token}"


@pytest.fixture
def run_container(
    engine: EngineUnderTest, docker_client: docker.DockerClient, linkinit_image: str
) -> Iterator[Callable[..., Any]]:
    """Start a labelled container (detached) from the test image unless told otherwise.

    ``run.socket_volume`` mounts the engine's socket where linkinit looks for it.
    """
    made: list[Any] = []

    def run(command: Any = None, image: str = linkinit_image, **kwargs: Any) -> Any:
        if not kwargs.pop("detach", True):
            raise TypeError("run_container starts containers detached")
        labels = dict(kwargs.pop("labels", {}) or {})
        labels[TEST_LABEL] = SESSION
        container = docker_client.containers.create(image, command, labels=labels, **kwargs)
        made.append(container)
        _start(container)
        return container

    run.socket_volume = engine.socket_volume  # type: ignore[attr-defined]
    yield run
    for container in made:
        with contextlib.suppress(docker.errors.NotFound):
            container.remove(force=True)


# What Docker 20.10 answers, now and then, when a container joins a swarm's attachable
# overlay network: "network ... not found" right after another container left it (its local
# copy is being torn down), and "attaching to network failed ... context deadline exceeded"
# when the manager is slow to hand out the attachment (seen under load).
_SLOW_ATTACHMENT = "attaching to network failed"


def _start(container: Any, attempts: int = 5) -> None:
    """Start it, asking again, a bounded number of times a second apart, where the Engine
    gave one of the passing overlay-network answers above; any other error at once."""
    for attempt in range(attempts):
        try:
            container.start()
            return
        except docker.errors.APIError as error:
            passing = (isinstance(error, docker.errors.NotFound) and "network" in str(error)) \
                or _SLOW_ATTACHMENT in str(error)
            if not passing or attempt == attempts - 1:
                raise
            time.sleep(1)


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
