"""A newer engine for end-to-end tests: a node container (the image of
scripts/build-engine-node, Debian unstable's docker.io 28.5, or its podman 5.8) running its own
dockerd (or Podman's API service) on a socket in a host directory bind-mounted at ``/engine``,
so that the docker SDK and CLI on this host drive it with ``unix://<dir>/<engine>.sock``.

The node runs with the swarm worker's options (``swarm.NODE_RUN_OPTIONS``: what
``--privileged`` gives but CAP_SYS_RESOURCE, withheld here) and its storage on a volume of its
own. Podman's node gets no bind of the host's cgroup tree: crun refuses this host's hybrid
tree, so the node mounts cgroup v2 alone (scripts/build-engine-node). It can pull nothing:
images reach it by ``docker save | docker load``. Containers it runs mount its socket from the
node's own path, ``/engine/<engine>.sock``.
Everything (the node, its volume, the directory) carries the session's token and goes at
``close``, each step even when an earlier one failed.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
import time
from typing import Any, Callable

import docker

from tests.support.processes import wait_for
from tests.support.swarm import NODE_RUN_OPTIONS

# Per engine: (image, the socket's name in /engine, where its storage lives).
KINDS = {
    "docker": (os.environ.get("LINKINIT_ENGINE_NODE_IMAGE", "linkinit-engine-node:sid"),
               "docker.sock", "/var/lib/docker"),
    "podman": (os.environ.get("LINKINIT_PODMAN_NODE_IMAGE", "linkinit-podman-node:sid"),
               "podman.sock", "/var/lib/containers"),
}
HOST_CGROUPS = ("-v", "/sys/fs/cgroup:/sys/fs/cgroup:rw")
START_TIMEOUT = 60  # seconds for the node's dockerd to answer
LOAD_TIMEOUT = 300  # seconds for one image's save | load


class EngineNode:
    """``open`` starts the node and connects ``client``; ``load`` copies an image in;
    ``close`` removes all. ``timings`` holds what setup, loads and teardown took."""

    def __init__(self, token: str, labels: dict[str, str], kind: str = "docker") -> None:
        self.kind = kind
        self.image, socket_name, self.storage = KINDS[kind]
        self.name = f"lt-{kind}-node-{token}"
        self.labels = labels
        self.directory = tempfile.mkdtemp(prefix=f"{self.name}-")
        self.in_node_socket = f"/engine/{socket_name}"  # as the node's containers mount it
        self.socket = os.path.join(self.directory, socket_name)
        self.host = f"unix://{self.socket}"
        self.client: Any = None
        self.version = ""
        self.timings: dict[str, float] = {}

    @property
    def socket_volume(self) -> dict:
        """What a parent on the node mounts to reach the node's Engine at the usual place."""
        return {self.in_node_socket: {"bind": "/var/run/docker.sock", "mode": "ro"}}

    def open(self) -> EngineNode:
        started = time.monotonic()
        label_options = [f"--label={key}={value}" for key, value in self.labels.items()]
        os.chmod(self.directory, 0o755)
        _host("volume", "create", *label_options, self.name)
        at = NODE_RUN_OPTIONS.index(HOST_CGROUPS[1]) - 1  # the swarm node's cgroup bind
        options = list(NODE_RUN_OPTIONS[:at] + NODE_RUN_OPTIONS[at + 2:])
        if self.kind == "docker":
            options += HOST_CGROUPS
        _host("run", "-d", "--name", self.name, "--hostname", self.name, *label_options,
              *options, "-v", f"{self.name}:{self.storage}",
              "-v", f"{self.directory}:/engine", self.image)
        wait_for(self._answers, START_TIMEOUT, f"the Engine in {self.name}")
        self.version = self.client.version()["Version"]
        self.timings["setup"] = time.monotonic() - started
        return self

    def _answers(self) -> bool:
        """Connected: docker-py asks /version in its constructor, so it is made here."""
        if not os.path.exists(self.socket):
            return False
        try:
            self.client = docker.DockerClient(base_url=self.host, timeout=120)
        except docker.errors.DockerException:
            return False
        return True

    def load(self, image: str) -> None:
        """Copy ``image`` from this host's Engine into the node's."""
        started = time.monotonic()
        saved = subprocess.Popen(["docker", "save", image], stdout=subprocess.PIPE,
                                 env=_host_environ())
        try:
            subprocess.run(["docker", "load", "-q"], stdin=saved.stdout, check=True,
                           capture_output=True, timeout=LOAD_TIMEOUT,
                           env=dict(_host_environ(), DOCKER_HOST=self.host))
        finally:
            saved.stdout.close()  # type: ignore[union-attr]
            saved.wait(timeout=LOAD_TIMEOUT)
        self.timings[f"load {image}"] = time.monotonic() - started

    def close(self) -> list[str]:
        """Remove the node, its volume and its directory; what failed is returned."""
        started = time.monotonic()
        problems: list[str] = []

        def step(what: str, action: Callable[[], Any]) -> None:
            try:
                action()
            except Exception as error:
                problems.append(f"{what}: {error}")

        if self.client is not None:
            step("closing the client", self.client.close)
        step("removing the node", lambda: _host("rm", "-f", "-v", self.name))
        step("removing its volume", lambda: _host("volume", "rm", "-f", self.name))
        step("removing its directory", lambda: shutil.rmtree(self.directory))
        self.timings["teardown"] = time.monotonic() - started
        return problems


def _host_environ() -> dict[str, str]:
    return {key: value for key, value in os.environ.items() if key != "DOCKER_HOST"}


def _host(*args: str) -> str:
    """``docker ARGS`` on this host's Engine."""
    done = subprocess.run(["docker", *args], capture_output=True, text=True, timeout=120,
                          env=_host_environ())
    if done.returncode != 0:
        raise RuntimeError(f"docker {' '.join(args)}: {done.stderr.strip()}")
    return done.stdout
