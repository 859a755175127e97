"""The README's ways into an image work as written: Containerfile.example (the bundle, into an
image without Python) and the README's Dockerfile snippet (a wheel into a venv), each built on
the local base and running the demo's story against a password-protected Redis."""

from __future__ import annotations

import contextlib
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any, Callable, Iterator

import docker
import pytest

from .bundlekit import NO_PYTHON, build_bundle, built_image, start_redis
from .conftest import BASE_IMAGE, ROOT, SESSION, SOCKET_VOLUME, TEST_LABEL
from .dockerkit import output, wait_exit
from .pid1_helpers import logs

# Building images (a bundle, wheels) takes minutes on a busy machine.
pytestmark = pytest.mark.timeout(900)


@pytest.fixture
def redis(docker_client: docker.DockerClient, unique: Callable[[str], str]) -> Iterator[Any]:
    child = start_redis(docker_client, unique("db1"))
    yield child
    child.remove(force=True)


@contextlib.contextmanager
def webapp(client: docker.DockerClient, image: str, child: Any) -> Iterator[Any]:
    """The parent as the README runs it: the socket mounted, linked to ``child`` as redis."""
    container = client.containers.run(
        image, detach=True, volumes=SOCKET_VOLUME,
        labels={"link.redis": child.name, TEST_LABEL: SESSION},
    )
    try:
        yield container
    finally:
        container.remove(force=True)


def readme_snippet() -> str:
    """The README's Dockerfile for a Python image (the one that copies wheels/)."""
    text = (ROOT / "README.md").read_text()
    blocks = re.findall(r"```dockerfile\n(.*?)```", text, flags=re.S)
    (snippet,) = [block for block in blocks if "COPY wheels/" in block]
    return snippet


def test_containerfile_example_runs_the_demo_in_an_image_without_python(docker_client, redis):
    """`docker build -f Containerfile.example .` in this checkout (the bundle's build stage
    on the local base, the app on the local base without Python): redis-cli sets and reads
    a key through the link variables."""
    build_bundle()  # the stage's scripts/build-bundle then reuses build/bundle
    context = Path(tempfile.mkdtemp(prefix="linkinit-nopython."))
    try:
        (context / "Dockerfile").write_text(NO_PYTHON)
        with built_image(docker_client, "linkinit-nopython-test", context) as no_python, \
                built_image(docker_client, "linkinit-stage-test", ROOT, "Containerfile.example",
                            BUILD_IMAGE=BASE_IMAGE, BASE_IMAGE=no_python, target="linkinit"), \
                built_image(docker_client, "linkinit-example-test", ROOT, "Containerfile.example",
                            BUILD_IMAGE=BASE_IMAGE, BASE_IMAGE=no_python) as image, \
                webapp(docker_client, image, redis) as parent:
            assert wait_exit(parent) == 0, logs(parent)
            lines = output(parent).splitlines()
    finally:
        shutil.rmtree(context, ignore_errors=True)
    assert lines[0].startswith("webapp: REDIS_PORT_6379_TCP_ADDR=172.")
    assert lines[1:] == ["webapp: GET greeting -> hello from webapp"]


def test_readme_snippet_runs_the_demo_from_wheels_in_a_venv(docker_client, redis):
    """The README's Dockerfile for a Python image, FROM the local base (Debian's pip, PEP 668),
    with wheels built as the README says: the demo's app.py sets and reads a key."""
    context = Path(tempfile.mkdtemp(prefix="linkinit-snippet."))
    try:
        # async-timeout: redis-py wants it on Python < 3.11.3, which Debian 12 ships.
        subprocess.run([sys.executable, "-m", "pip", "wheel", "-q", "--disable-pip-version-check",
                        "-w", str(context / "wheels"), str(ROOT), "redis", "async-timeout"],
                       check=True, timeout=600, capture_output=True)
        shutil.copy(ROOT / "images" / "webapp" / "app.py", context / "app.py")
        snippet = readme_snippet().replace("FROM python:3.12-slim", f"FROM {BASE_IMAGE}", 1)
        assert snippet.startswith(f"FROM {BASE_IMAGE}\n")
        (context / "Dockerfile").write_text(snippet)
        with built_image(docker_client, "linkinit-snippet-test", context) as image, \
                webapp(docker_client, image, redis) as parent:
            assert wait_exit(parent) == 0, logs(parent)
            lines = output(parent).splitlines()
    finally:
        shutil.rmtree(context, ignore_errors=True)
    assert "webapp: REDIS_ENV_PASSWORD=dockerpass" in lines
    assert any(line.startswith("webapp: SET greeting at tcp://172.")
               and line.endswith("GET greeting -> hello from webapp") for line in lines)
