"""Rootless Podman: a user's own engine, its socket under $XDG_RUNTIME_DIR, a user network.

The module sets the scene and undoes it: a user ``linkinit-rootless`` (created, with its
subordinate IDs, when missing, and removed again), ``/dev/net/tun`` opened to every user
(slirp4netns opens it as that user; its mode is restored), the user's
``podman system service`` (stopped by its PID) and Podman's rootless pause process (killed
by the PID in ``pause.pid``). The parent runs the checkout's linkinit from a read-only
mount of the repository on the base image: building the test image in rootless storage
(vfs here) takes ~90 s, the scenario ~15 s. Where the scene cannot be set (not root, no
podman, no /dev/net/tun), the test is skipped, saying why.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import pwd
import shutil
import signal
import stat
import subprocess
import time
import uuid
from pathlib import Path
from typing import Any, Dict, Iterator

import docker
import pytest

from .conftest import BASE_IMAGE, ROOT, SOCKET, TEST_LABEL
from .dockerkit import env_lines, output, wait_exit, wait_until
from .linkkit import link_variables, start_child

USER = "linkinit-rootless"
TUN = "/dev/net/tun"
CONF = os.environ.get("CONTAINERS_CONF", "/etc/linkinit/containers.conf")
LOCK = "/run/lock/linkinit-rootless-test.lock"
SETUP_TIMEOUT = 120  # seconds for one setup command (loading the base image takes ~15)

pytestmark = pytest.mark.timeout(420)  # the lock (another session's scene), setup, the test


class Rootless:
    """The user's engine: how to run podman as the user, its socket, and its SDK client."""

    def __init__(self, uid: int, gid: int, home: str) -> None:
        self.uid, self.gid = uid, gid
        self.runtime = f"/run/user/{uid}"
        self.socket = f"{self.runtime}/podman/podman.sock"
        self.env = {"HOME": home, "USER": USER, "XDG_RUNTIME_DIR": self.runtime,
                    "CONTAINERS_CONF": CONF, "PATH": "/usr/sbin:/usr/bin:/sbin:/bin"}
        self.home = home
        self.client: Any = None

    def as_user(self) -> Dict[str, Any]:
        """Popen's arguments for a process of the user: its own PID is the command's."""
        return {"user": self.uid, "group": self.gid, "extra_groups": [], "env": self.env,
                "cwd": self.home}


def _skip_unless_possible() -> None:
    if os.geteuid() != 0:
        pytest.skip("needs root to make the rootless user and open /dev/net/tun")
    for tool in ("podman", "useradd", "userdel", "docker"):
        if shutil.which(tool) is None:
            pytest.skip(f"no {tool} here (scripts/test installs podman)")
    if not os.path.exists(TUN):
        pytest.skip(f"no {TUN}: slirp4netns cannot give rootless containers a network")


def _make_user() -> bool:
    """The rootless user with subordinate IDs; True when this module made it."""
    try:
        pwd.getpwnam(USER)
        return False
    except KeyError:
        subprocess.run(["useradd", "-m", "-s", "/bin/sh", USER], check=True, timeout=60)
        return True


def _start_service(engine: Rootless) -> subprocess.Popen:
    runtime = Path(engine.runtime)
    runtime.mkdir(parents=True, exist_ok=True)
    shutil.chown(runtime, USER, USER)
    runtime.chmod(0o700)
    # As the user, so that the directories it makes (and the pause process) are its own.
    subprocess.run(["mkdir", "-p", f"{engine.runtime}/podman"], check=True,
                   timeout=SETUP_TIMEOUT, **engine.as_user())
    log = open(Path(engine.home) / "service.log", "wb")  # noqa: SIM115 (kept open for it)
    service = subprocess.Popen(
        ["podman", "system", "service", "--time=0", f"unix://{engine.socket}"],
        stdout=log, stderr=subprocess.STDOUT, start_new_session=True, **engine.as_user())
    log.close()
    return service


def connect_engine(engine: Rootless) -> None:
    def answers() -> Any:
        try:
            client = docker.DockerClient(base_url=f"unix://{engine.socket}", timeout=120)
        except docker.errors.DockerException:
            return None
        return client if client.ping() else None

    engine.client = wait_until(answers, timeout=30, what="the rootless podman service")


def _load_base_image(engine: Rootless) -> None:
    saved = subprocess.Popen(["docker", "save", BASE_IMAGE], stdout=subprocess.PIPE)
    loaded = subprocess.run(["podman", "load", "-q"], stdin=saved.stdout,
                            capture_output=True, timeout=SETUP_TIMEOUT, **engine.as_user())
    saved.wait(timeout=SETUP_TIMEOUT)
    assert loaded.returncode == 0, loaded.stderr.decode()


def _stop(service: subprocess.Popen, engine: Rootless) -> None:
    """The service by its PID, then Podman's rootless pause process by the PID it wrote."""
    service.terminate()
    try:
        service.wait(timeout=15)
    except subprocess.TimeoutExpired:
        service.kill()
        service.wait(timeout=15)
    pause = Path(engine.runtime) / "libpod" / "tmp" / "pause.pid"
    if pause.exists():
        pid = int(pause.read_text().strip() or 0)
        if pid > 1:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)


@contextlib.contextmanager
def _machine_lock() -> Iterator[None]:
    """One rootless scene at a time on a machine: two test sessions would share the user
    and the device, and the second would restore the mode the first had set."""
    with open(LOCK, "w") as lock:
        wait_until(lambda: _try_lock(lock), timeout=240, what="the rootless scene's lock")
        yield


def _try_lock(lock: Any) -> bool:
    try:
        fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return False
    return True


@pytest.fixture(scope="module")
def rootless() -> Iterator[Rootless]:
    _skip_unless_possible()
    with _machine_lock():
        yield from _scene()


def _scene() -> Iterator[Rootless]:
    made_user = _make_user()
    entry = pwd.getpwnam(USER)
    engine = Rootless(entry.pw_uid, entry.pw_gid, entry.pw_dir)
    tun_mode = stat.S_IMODE(os.stat(TUN).st_mode)
    service = None
    try:
        os.chmod(TUN, 0o666)
        service = _start_service(engine)
        connect_engine(engine)
        _load_base_image(engine)
        yield engine
    finally:
        if engine.client is not None:
            mine = {"label": TEST_LABEL}
            for container in engine.client.containers.list(all=True, filters=mine):
                container.remove(force=True)
            for network in engine.client.networks.list(filters=mine):
                network.remove()
            engine.client.close()
        if service is not None:
            _stop(service, engine)
        os.chmod(TUN, tun_mode)
        if made_user:
            _remove_user(engine)


def _remove_user(engine: Rootless) -> None:
    """userdel refuses while a process of the user lives: wait for the stopped ones to go,
    then kill what is left (the user exists for this scene only: aardvark-dns or a conmon
    can outlive the service by seconds on a loaded machine), and wait again."""

    def gone() -> bool:
        return subprocess.run(["pgrep", "-u", str(engine.uid)],
                              capture_output=True).returncode == 1

    try:
        wait_until(gone, timeout=15, what=f"no process of {USER} left")
    except AssertionError:
        left = subprocess.run(["ps", "-o", "pid,comm", "-u", str(engine.uid)],
                              capture_output=True, text=True).stdout
        subprocess.run(["pkill", "-KILL", "-u", str(engine.uid)], capture_output=True)
        wait_until(gone, timeout=15, what=f"no process of {USER} left after SIGKILL: {left}")
    removed = subprocess.run(["userdel", "-r", USER], capture_output=True, text=True,
                             timeout=60)
    shutil.rmtree(engine.runtime, ignore_errors=True)
    assert removed.returncode in (0, 12), removed.stderr  # 12: no mail spool to remove


def create_network(client: docker.DockerClient, name: str, labels: Dict[str, str]) -> Any:
    """Podman 4.3 lists the host's interfaces and then asks each for its addresses when it
    picks a free subnet; a veth that another engine removes in between fails the create with
    "route ip+net: no such network interface" (seen on a fresh machine while Docker's test
    containers went away). That race is Podman's, not linkinit's: ask again, a few times."""
    for attempt in range(5):
        try:
            return client.networks.create(name, labels=labels)
        except docker.errors.APIError as error:
            if "no such network interface" not in str(error) or attempt == 4:
                raise
            time.sleep(0.2)
    raise AssertionError("unreachable")


def test_rootless_podman_links_a_child_on_a_user_network(rootless: Rootless) -> None:
    """The seed story on a user's own engine: the variables, and a key set through them."""
    client, token = rootless.client, uuid.uuid4().hex[:8]
    labels: Dict[str, str] = {TEST_LABEL: token}
    network = create_network(client, f"lt-rootless-{token}", labels)
    child = start_child(client, BASE_IMAGE, f"lt-db1-{token}", expose=[6379],
                        environment={"PASSWORD": "dockerpass"}, network=network.name,
                        command=["redis-server", "--requirepass", "dockerpass",
                                 "--protected-mode", "no"])
    child.reload()
    ip = child.attrs["NetworkSettings"]["Networks"][network.name]["IPAddress"]
    script = ('env; redis-cli -h redis -a "$REDIS_ENV_PASSWORD" --no-auth-warning '
              "set greeting hello >/dev/null && "
              'redis-cli -h "$REDIS_PORT_6379_TCP_ADDR" -a "$REDIS_ENV_PASSWORD" '
              "--no-auth-warning get greeting")
    started = time.monotonic()
    parent = client.containers.run(
        BASE_IMAGE, ["python3", "-m", "linkinit", "--", "sh", "-c", script],
        name=f"lt-webapp-{token}", network=network.name, detach=True,
        labels={**labels, "link.redis": child.name},
        environment={"PYTHONPATH": "/opt/linkinit"},
        volumes={rootless.socket: {"bind": SOCKET, "mode": "ro"},
                 str(ROOT): {"bind": "/opt/linkinit", "mode": "ro"}},
    )
    assert wait_exit(parent) == 0, output(parent, stderr=True)
    assert time.monotonic() - started < 60
    lines = output(parent).splitlines()
    assert lines[-1] == "hello"
    assert link_variables(env_lines(output(parent)), "REDIS") == {
        "REDIS_PORT": f"tcp://{ip}:6379",
        "REDIS_PORT_6379_TCP": f"tcp://{ip}:6379",
        "REDIS_PORT_6379_TCP_ADDR": ip,
        "REDIS_PORT_6379_TCP_PORT": "6379",
        "REDIS_PORT_6379_TCP_PROTO": "tcp",
        "REDIS_NAME": f"/lt-webapp-{token}/redis",
        "REDIS_ENV_PASSWORD": "dockerpass",
        "REDIS_ENV_LANG": "C.UTF-8",
    }
