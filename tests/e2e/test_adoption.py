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
from importlib.metadata import requires
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


def candidate_pool(target: Path, requirements: list[str], limit: int = 60) -> None:
    """Every distribution any Python might need for ``requirements``, downloaded into
    ``target``: each one's own requirements are followed whatever their markers say (the
    host's Python cannot judge markers for the image's), extras aside. The image's pip then
    resolves from this folder alone, choosing as its own Python needs."""
    from zipfile import ZipFile

    from packaging.requirements import Requirement

    wanted, seen = list(requirements), set()
    while wanted:
        requirement = Requirement(wanted.pop())
        if requirement.name.lower() in seen:
            continue
        seen.add(requirement.name.lower())
        assert len(seen) <= limit, f"more than {limit} distributions: {sorted(seen)}"
        before = set(target.glob("*.whl"))
        subprocess.run([sys.executable, "-m", "pip", "download", "-q", "--no-deps",
                        "--only-binary=:all:", "-d", str(target),
                        str(requirement).split(";")[0]],
                       check=True, timeout=300, capture_output=True)
        for wheel in set(target.glob("*.whl")) - before:
            with ZipFile(wheel) as archive:
                metadata = next(n for n in archive.namelist() if n.endswith(".dist-info/METADATA"))
                lines = archive.read(metadata).decode().splitlines()
            wanted += [line.split(":", 1)[1].strip() for line in lines
                       if line.startswith("Requires-Dist:") and "extra ==" not in line]


def test_readme_snippet_runs_the_demo_from_wheels_in_a_venv(docker_client, redis):
    """The README's Dockerfile for a Python image, FROM the local base (Debian's pip, PEP 668):
    linkinit's wheel built as the README says; the build stage resolves linkinit's and the
    app's dependencies with the image's own Python (Debian 12's 3.11.2 needs async-timeout for
    redis, the host's Python may not), from a folder of candidates since it has no index."""
    context = Path(tempfile.mkdtemp(prefix="linkinit-snippet."))
    try:
        wheels = context / "wheels"
        subprocess.run([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps",
                        "--disable-pip-version-check", "-w", str(wheels), str(ROOT)],
                       check=True, timeout=600, capture_output=True)
        needs = [r for r in requires("linkinit") or [] if "extra ==" not in r]  # pyproject's
        candidate_pool(wheels, [*needs, "redis"])
        shutil.copy(ROOT / "images" / "webapp" / "app.py", context / "app.py")
        snippet = readme_snippet()
        offline = snippet.replace("FROM python:3.12-slim AS wheels\n",
                                  f"FROM {BASE_IMAGE} AS wheels\nENV PIP_NO_INDEX=1\n", 1)
        offline = offline.replace("FROM python:3.12-slim\n", f"FROM {BASE_IMAGE}\n", 1)
        assert offline.count(f"FROM {BASE_IMAGE}") == 2, snippet
        (context / "Dockerfile").write_text(offline)
        with built_image(docker_client, "linkinit-snippet-test", context) as image, \
                webapp(docker_client, image, redis) as parent:
            assert wait_exit(parent) == 0, logs(parent)
            lines = output(parent).splitlines()
    finally:
        shutil.rmtree(context, ignore_errors=True)
    assert "webapp: REDIS_ENV_PASSWORD=dockerpass" in lines
    assert any(line.startswith("webapp: SET greeting at tcp://172.")
               and line.endswith("GET greeting -> hello from webapp") for line in lines)
