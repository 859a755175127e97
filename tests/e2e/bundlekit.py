"""Images for the self-contained bundle's tests: built here, removed when the tests are done.

The bundle comes from scripts/build-bundle (reused from build/bundle while the sources are
unchanged); the images have the local base's Debian with every trace of Python removed, so
a test that passes proves the bundle needs none.
"""

from __future__ import annotations

import contextlib
import shutil
import subprocess
import tempfile
from pathlib import Path
from typing import Any, Iterator, Optional

import docker

from .conftest import BASE_IMAGE, ROOT, SESSION
from .linkkit import start_child

BUNDLE = ROOT / "build" / "bundle" / "linkinit"

# The local base without Python: the interpreter, its standard library and pip are gone, so
# only the bundle can run linkinit. The build fails if any executable python3* or libpython3*
# (dpkg's maintainer scripts aside) or any os.py (a standard library) is left.
NO_PYTHON = """\
ARG BASE_IMAGE
FROM ${BASE_IMAGE}
RUN rm -rf /usr/bin/python3* /usr/lib/python3* /usr/local/lib/python3* /usr/bin/pip* \\
        /usr/share/python3 /etc/python3* \\
    && test -z "$(find / -xdev -path /var/lib/dpkg -prune -o \\( -name 'python3*' -o \\
        -name 'libpython3*' \\) -type f -perm /111 -print -quit)" \\
    && test -z "$(find / -xdev -name os.py -print -quit)"
"""

BUNDLE_IMAGE = NO_PYTHON + """\
COPY linkinit/ /opt/linkinit/
ENTRYPOINT ["/opt/linkinit/linkinit", "--"]
"""


def build_bundle() -> Path:
    """Run the README's build command; it reuses build/bundle while the sources match."""
    subprocess.run([str(ROOT / "scripts" / "build-bundle")], check=True, timeout=900,
                   capture_output=True)
    return BUNDLE


@contextlib.contextmanager
def built_image(
    client: docker.DockerClient, name: str, context: Path, dockerfile: str = "Dockerfile",
    target: Optional[str] = None, **buildargs: str,
) -> Iterator[str]:
    """Build ``context`` as ``<name>:<session>``; remove the image afterwards, also on failure.

    ``BASE_IMAGE`` defaults to the local base; ``target`` builds one stage.
    """
    tag = f"{name}:{SESSION}"
    try:
        client.images.build(path=str(context), dockerfile=dockerfile, tag=tag, target=target,
                            buildargs={"BASE_IMAGE": BASE_IMAGE, **buildargs}, rm=True,
                            forcerm=True, timeout=900)
        yield tag
    finally:
        with contextlib.suppress(docker.errors.ImageNotFound):
            client.images.remove(tag, force=True)


@contextlib.contextmanager
def bundle_image(client: docker.DockerClient) -> Iterator[str]:
    """The local base without Python, the bundle at /opt/linkinit as its entrypoint."""
    bundle = build_bundle()
    context = Path(tempfile.mkdtemp(prefix="linkinit-bundle-image."))
    try:
        shutil.copytree(bundle, context / "linkinit", symlinks=True)
        (context / "Dockerfile").write_text(BUNDLE_IMAGE)
        with built_image(client, "linkinit-bundle-test", context) as tag:
            yield tag
    finally:
        shutil.rmtree(context, ignore_errors=True)


def start_redis(client: docker.DockerClient, name: str) -> Any:
    """The seed story's child: Redis with a password, PASSWORD in its environment, 6379
    exposed (the local base has redis-server)."""
    command = ["redis-server", "--protected-mode", "no", "--save", "", "--requirepass",
               "dockerpass"]
    return start_child(client, BASE_IMAGE, name, command=command, expose=[6379],
                       environment={"PASSWORD": "dockerpass"})


# The seed story without Python: find Redis through the link variables, set a key, read it.
SEED_STORY = (
    'redis-cli -h "$REDIS_PORT_6379_TCP_ADDR" -p "$REDIS_PORT_6379_TCP_PORT" '
    '-a "$REDIS_ENV_PASSWORD" --no-auth-warning SET greeting hello && '
    'echo "GET greeting -> $(redis-cli -h redis -a "$REDIS_ENV_PASSWORD" --no-auth-warning '
    'GET greeting)"'
)
