"""Resident memory of PID 1 while COMMAND runs: tini, dumb-init and linkinit, side by side.

    .venv/bin/python bench/footprint.py [--reps N] [--image IMAGE]

One image for all three (the local base image, which has Debian's tini and dumb-init, plus
linkinit installed from wheels of this checkout). Each init runs ``sleep 60`` as COMMAND;
once ``sleep`` is PID 1's child, VmRSS is read from the container's /proc/1/status. linkinit
runs with no links declared but with the Engine socket, so its resolver really runs (in a
forked child that is gone by then). Every container is labelled and removed at the end.
Every wait is bounded.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any, Optional, Sequence

import docker

ROOT = Path(__file__).resolve().parents[1]
BASE_IMAGE = "linkinit-base:bookworm"
IMAGE = "linkinit-footprint:latest"
LABEL = "linkinit-footprint"  # not "linkinit.*": linkinit reads that namespace as declarations
SOCKET = {"/var/run/docker.sock": {"bind": "/var/run/docker.sock", "mode": "ro"}}
TARGET_KB = 10 * 1024  # issue 3: PID 1 at most 10 MB resident while COMMAND runs

VARIANTS = {
    "tini": ["tini", "--", "sleep", "60"],
    "dumb-init": ["dumb-init", "sleep", "60"],
    "linkinit": ["linkinit", "--", "sleep", "60"],
}

DOCKERFILE = """\
FROM {base}
COPY wheels/ /tmp/wheels/
RUN PIP_BREAK_SYSTEM_PACKAGES=1 pip install --no-cache-dir --no-index \\
        --find-links /tmp/wheels linkinit && rm -rf /tmp/wheels
"""


def build_image(client: docker.DockerClient, base: str) -> str:
    """The base image plus linkinit from this checkout's wheels (images reach no index)."""
    with tempfile.TemporaryDirectory() as scratch:
        context = Path(scratch)
        wheels = context / "wheels"
        subprocess.run(
            [sys.executable, "-m", "pip", "wheel", "-q", "--disable-pip-version-check",
             "-w", str(wheels), str(ROOT)],
            check=True, timeout=600,
        )
        (context / "Dockerfile").write_text(DOCKERFILE.format(base=base))
        client.images.build(path=str(context), tag=IMAGE, rm=True, forcerm=True)
    return IMAGE


def status_of_pid1(container: Any) -> dict[str, str]:
    result = container.exec_run(["cat", "/proc/1/status"])
    if result.exit_code != 0:
        return {}
    fields = (line.split(":", 1) for line in result.output.decode().splitlines() if ":" in line)
    return {key: value.strip() for key, value in fields}


def command_running(container: Any) -> bool:
    """True once ``sleep`` runs as a child of PID 1 (linkinit's resolver has finished)."""
    result = container.exec_run(["ps", "-o", "ppid=,comm=", "-e"])
    rows = [line.split() for line in result.output.decode().splitlines()]
    return any(row == ["1", "sleep"] for row in rows)


def measure(client: docker.DockerClient, image: str, name: str, token: str) -> tuple[int, str]:
    """(VmRSS of PID 1 in kB, PID 1's command line) for one container of one variant."""
    volumes = SOCKET if name == "linkinit" else {}
    container = client.containers.run(
        image, VARIANTS[name], detach=True, labels={LABEL: token}, volumes=volumes
    )
    deadline = time.monotonic() + 60
    while not command_running(container):
        container.reload()
        if container.status != "running":
            raise SystemExit(f"footprint: {name} exited: {container.logs().decode()[-500:]}")
        if time.monotonic() > deadline:
            raise SystemExit(f"footprint: {name}: sleep not running within 60 s")
        time.sleep(0.1)
    time.sleep(0.3)  # let PID 1 settle in its loop
    status = status_of_pid1(container)
    cmdline = container.exec_run(["cat", "/proc/1/cmdline"]).output.replace(b"\0", b" ")
    return int(status["VmRSS"].split()[0]), cmdline.decode(errors="replace").strip()


def remove_all(client: docker.DockerClient, token: str) -> None:
    for container in client.containers.list(all=True, filters={"label": f"{LABEL}={token}"}):
        container.remove(force=True)


def report(samples: dict[str, list[int]], commands: dict[str, str]) -> str:
    lines = [f"{'PID 1':<11}{'VmRSS (median)':>15}{'min':>9}{'max':>9}   command line of PID 1"]
    for name, values in samples.items():
        median = statistics.median(values)
        lines.append(
            f"{name:<11}{median / 1024:>12.1f} MB{min(values) / 1024:>6.1f} MB"
            f"{max(values) / 1024:>6.1f} MB   {commands[name]}"
        )
    linkinit = statistics.median(samples["linkinit"])
    verdict = "ok" if linkinit <= TARGET_KB else "OVER TARGET"
    lines.append(f"linkinit target: <= {TARGET_KB // 1024} MB resident with COMMAND: {verdict}")
    return "\n".join(lines)


def main(argv: Optional[Sequence[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--reps", type=int, default=3, help="containers per init (default 3)")
    parser.add_argument("--image", help="use this image instead of building one")
    parser.add_argument("--base", default=BASE_IMAGE, help=f"base image (default {BASE_IMAGE})")
    options = parser.parse_args(argv)
    client = docker.from_env(timeout=120)
    image = options.image or build_image(client, options.base)
    token = uuid.uuid4().hex[:12]
    samples: dict[str, list[int]] = {name: [] for name in VARIANTS}
    commands: dict[str, str] = {}
    try:
        for _ in range(options.reps):
            for name in VARIANTS:
                rss, commands[name] = measure(client, image, name, token)
                samples[name].append(rss)
                remove_all(client, token)
    finally:
        remove_all(client, token)
    print(report(samples, commands))
    return 0 if statistics.median(samples["linkinit"]) <= TARGET_KB else 1


if __name__ == "__main__":
    sys.exit(main())
