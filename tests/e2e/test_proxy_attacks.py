"""``linkinit proxy`` under attack, on the real Engine: what a stranger container tried
(issue 28), each answered without serving another parent's children."""

from __future__ import annotations

import concurrent.futures
import contextlib
import io
import json
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any, Iterator

import pytest

from .conftest import ROOT, SESSION, TEST_LABEL
from .dockerkit import output, wait_exit, wait_until
from .linkkit import run_parent, start_child
from .pid1_helpers import process_table
from .proxykit import MOUNT, container_request, proxies

SECRET = "child-secret-0451"
HAND_OVER = ROOT / "tests" / "programs" / "hand_over_connection.py"
pytestmark = pytest.mark.timeout(180)


@pytest.fixture
def start_proxy() -> Iterator[Any]:
    yield from proxies()


@pytest.fixture
def make_child(docker_client: Any, linkinit_image: str) -> Iterator[Any]:
    """``start_child``, each child removed after the test (also when it fails)."""
    made: list[Any] = []

    def make(name: str, **kwargs: Any) -> Any:
        child = start_child(docker_client, linkinit_image, name, **kwargs)
        made.append(child)
        return child

    yield make
    for child in made:
        with contextlib.suppress(Exception):
            child.remove(force=True)


def sleeper(run_container: Any, name: str, proxy: Any, **kwargs: Any) -> Any:
    """A running container with the proxy's directory mounted and linkinit as PID 1."""
    container = run_parent(run_container, name, ["--", "sleep", "300"], socket=False,
                           volumes=proxy.volumes, **kwargs)
    wait_until(lambda: container.reload() or container.status == "running", 60,
               f"{name} running")
    return container


def cgroup_procs(container: Any) -> Path:
    """The ``cgroup.procs`` of the container's own cgroup (v2, or v1's pids hierarchy)."""
    container.reload()
    init = container.attrs["State"]["Pid"]
    lines = Path(f"/proc/{init}/cgroup").read_text().splitlines()
    if Path("/sys/fs/cgroup/cgroup.controllers").exists():
        path = next(line.split(":", 2)[2] for line in lines if line.startswith("0::"))
        return Path("/sys/fs/cgroup" + path) / "cgroup.procs"
    path = next(line.split(":", 2)[2] for line in lines if line.split(":")[1] == "pids")
    return Path("/sys/fs/cgroup/pids" + path) / "cgroup.procs"


def hand_over(procs: Path, proxy_socket: str) -> tuple[socket.socket, int]:
    """A connection opened and proven served by a process in the cgroup ``procs``; that
    process has exited and been reaped when this returns. Its PID comes with it."""
    mine, theirs = socket.socketpair()
    with mine, theirs:
        mine.settimeout(20)
        process = subprocess.Popen([sys.executable, str(HAND_OVER), str(procs), proxy_socket,
                                    str(theirs.fileno())], pass_fds=[theirs.fileno()],
                                   stderr=subprocess.PIPE, text=True)
        _, fds, _, _ = socket.recv_fds(mine, 16, 1)
        _, error = process.communicate(timeout=30)
    assert process.returncode == 0 and fds, error
    return socket.socket(fileno=fds[0]), process.pid


def take_pid(pid: int, procs: Path, seconds: float = 20) -> subprocess.Popen:
    """A process the kernel gives exactly ``pid`` (``ns_last_pid`` set just before the
    fork; another process on the machine may take it first: tried again, bounded), which
    then joins the cgroup ``procs`` and waits for its stdin to close."""
    deadline = time.monotonic() + seconds
    script = f"echo $$ > {procs} && echo ready && exec cat"
    for _ in range(500):
        Path("/proc/sys/kernel/ns_last_pid").write_text(str(pid - 1))
        process = subprocess.Popen(["sh", "-c", script], stdin=subprocess.PIPE,
                                   stdout=subprocess.PIPE, text=True)
        if process.pid == pid:
            assert process.stdout is not None and process.stdout.readline().strip() == "ready"
            return process
        process.kill()
        process.wait(timeout=10)
        if time.monotonic() > deadline:
            break
    pytest.fail(f"the kernel did not give pid {pid} again within {seconds} s")


def ask_raw(connection: socket.socket, path: str, seconds: float = 10) -> bytes:
    """One request on a connection; what came back until it closed, or ``seconds``."""
    received = b""
    connection.settimeout(seconds)
    deadline = time.monotonic() + seconds
    with contextlib.suppress(OSError):  # reset, broken pipe, timeout: what came is the answer
        connection.sendall(f"GET {path} HTTP/1.1\r\nHost: docker\r\n\r\n".encode())
        while time.monotonic() < deadline and SECRET.encode() not in received:
            chunk = connection.recv(65536)
            if not chunk:
                break
            received += chunk
    return received


def test_a_connection_outliving_its_process_is_never_served_as_the_pids_next_owner(
        make_child, run_container, unique, start_proxy):
    """PID reuse: a stranger's connection whose connecting process exited, and that PID
    given to a process in a parent's cgroup; the proxy closed the connection when its
    process exited, so the parent's child and its secret are never served on it."""
    proxy = start_proxy()
    child = make_child(unique("vault"), environment={"PASSWORD": SECRET})
    stranger = sleeper(run_container, unique("stranger"), proxy)
    parent = sleeper(run_container, unique("webapp"), proxy,
                     labels={"link.vault": child.name, "link.vault.wait": "started"})
    connection, pid = hand_over(cgroup_procs(stranger), proxy.socket)
    reuser = take_pid(pid, cgroup_procs(parent))
    try:
        answer = ask_raw(connection, f"/containers/{child.name}/json")
    finally:
        connection.close()
        reuser.kill()
        reuser.wait(timeout=10)
    assert SECRET.encode() not in answer
    assert answer == b"", answer[:300]  # closed when the connecting process exited
    served = container_request(parent, "GET", f"/containers/{child.name}/json")
    assert served["status"] == 200 and SECRET in str(served["body"])  # the parent still is


def test_a_refusal_names_no_host_pid(start_proxy):
    """A caller in no container is refused without being told its PID on the host."""
    proxy = start_proxy()
    answer = proxy.ask("GET", "/_ping")
    assert answer["status"] == 403
    assert "in no container" in answer["body"]["message"]
    assert "pid" not in answer["body"]["message"]


def paused(parent: Any, child: Any) -> Any:
    answer = container_request(parent, "GET", f"/containers/{child.name}/json")
    assert answer["status"] == 200, answer
    return answer["body"]["State"]["Paused"]


def test_a_megabyte_label_silences_no_event_stream(make_child, run_container, unique,
                                                   start_proxy):
    """A running container with a 1 MB label: a parent following its child still sees it
    paused and unpaused (kept copies forgotten at each event), and a parent waiting for a
    late child starts when the child appears."""
    proxy = start_proxy()
    followed = make_child(unique("db"))
    follower = sleeper(run_container, unique("follower"), proxy,
                       labels={"link.db": followed.name, "link.db.wait": "started"})
    late = unique("late")
    waiter = run_parent(run_container, unique("waiter"), ["--", "sleep", "300"], socket=False,
                        volumes=proxy.volumes,
                        labels={"link.late": late, "link.late.wait": "started"})
    assert paused(follower, followed) is False  # kept from here on
    run_container(["sleep", "300"], name=unique("big"), labels={"big": "x" * (1 << 20)})
    followed.pause()
    wait_until(lambda: paused(follower, followed) is True, 15, "the pause seen through the proxy")
    followed.unpause()
    wait_until(lambda: paused(follower, followed) is False, 15, "the unpause seen")
    make_child(late)
    wait_until(lambda: any(p["args"] == "sleep 300" for p in process_table(waiter)), 60,
               "the waiting parent's COMMAND running once its late child exists")
    assert "Traceback" not in proxy.output() and "skipped" not in proxy.output()


def test_a_container_opening_1100_event_streams_leaves_parents_served(
        docker_client, make_child, run_container, unique, start_proxy):
    """1,100 streams from one container: it gets its cap of streams and connections, the
    rest 429 naming the cap; a parent starting meanwhile still resolves its child."""
    proxy = start_proxy("--max-event-streams", "20", "--max-connections", "100")
    stranger = sleeper(run_container, unique("stranger"), proxy)
    exec_id = docker_client.api.exec_create(stranger.id, [
        "python3", "/opt/linkinit-tests/open_event_streams.py", f"{MOUNT}/engine.sock",
        "1100", "/tmp/release"])["Id"]
    lines = docker_client.api.exec_start(exec_id, stream=True)
    try:
        held = json.loads(next(lines).decode())  # the handshake: every stream asked for
        child = make_child(unique("db"), expose=[6379])
        parent = run_parent(run_container, unique("webapp"), ["--print-env"], socket=False,
                            volumes=proxy.volumes, labels={"link.db": child.name,
                                                           "link.db.wait": "started"})
        assert wait_exit(parent) == 0, output(parent, stderr=True) + proxy.output()
        assert "DB_PORT=tcp://" in output(parent)
    finally:
        stranger.exec_run(["touch", "/tmp/release"])
        for _ in lines:
            pass
    assert held["counts"] == {"200": 20, "429": 1080}, held
    message = held["messages"]["429"]
    assert "--max-event-streams 20" in message or "--max-connections 100" in message
    assert "Traceback" not in proxy.output()


def rss_kib(pid: int, field: str) -> int:
    status = Path(f"/proc/{pid}/status").read_text().splitlines()
    return int(next(line for line in status if line.startswith(field + ":")).split()[1])


def spell(container: Any, version: str, path: str, count: int) -> dict:
    code, out = container.exec_run(["python3", "/opt/linkinit-tests/spell_versions.py",
                                    f"{MOUNT}/engine.sock", version, path, str(count)])
    assert code == 0, out.decode(errors="replace")
    return json.loads(out.decode().strip().splitlines()[-1])


def test_30000_version_spellings_keep_the_proxys_memory_bounded(
        docker_client, make_child, run_container, unique, start_proxy):
    """One container inspecting itself under 30,000 spellings of the API version, and a
    parent its 1 MB child under 300: each is kept once per version the Engine means, and
    the proxy's peak RSS grows by less than 40 MiB (it grew by 650 MB before)."""
    proxy = start_proxy()
    assert proxy.popen is not None
    version = docker_client.version()["ApiVersion"]
    child = make_child(unique("big"), environment={"BLOB": "x" * (1 << 20)})
    lonely = sleeper(run_container, unique("lonely"), proxy)
    parent = sleeper(run_container, unique("webapp"), proxy,
                     labels={"link.big": child.name, "link.big.wait": "started"})
    assert spell(lonely, version, f"/containers/{lonely.name}/json", 100) == {"200": 100}
    before = rss_kib(proxy.popen.pid, "VmRSS")
    assert spell(lonely, version, f"/containers/{lonely.name}/json", 30000) == {"200": 30000}
    assert spell(parent, version, f"/containers/{child.name}/json", 300) == {"200": 300}
    assert spell(lonely, version, "/_ping?n=1", 1000) == {"200": 1000}
    peak = rss_kib(proxy.popen.pid, "VmHWM")
    print(f"proxy RSS before {before} KiB, peak after {peak} KiB")
    assert peak - before < 40 * 1024, (before, peak)


@pytest.fixture
def build_image(docker_client: Any) -> Iterator[Any]:
    """Build a small image from a Dockerfile's text; each removed after the test."""
    made: list[str] = []

    def build(dockerfile: str, tag: str) -> str:
        docker_client.images.build(fileobj=io.BytesIO(dockerfile.encode()), tag=tag, rm=True,
                                   labels={TEST_LABEL: SESSION})
        made.append(tag)
        return tag

    yield build
    for tag in made:
        with contextlib.suppress(Exception):
            docker_client.images.remove(tag, force=True)


def test_a_link_the_image_declares_is_refused_and_the_operators_served(
        linkinit_image, build_image, make_child, run_container, unique, start_proxy):
    """An image carrying LABEL link.vault and ENV LINKINIT_LINKS naming a stranger, run
    with no label, reads nothing of it (the refusal names the image's declaration); the
    same image run with the operator's --label (under its own alias: one equal to the
    image's label cannot be told from it) reads it."""
    proxy = start_proxy()
    vault = make_child(unique("vault"), environment={"PASSWORD": SECRET})
    image = build_image(f"FROM {linkinit_image}\nLABEL link.vault={vault.name}\n"
                        f"ENV LINKINIT_LINKS={vault.name}:vault\n", unique("image-links"))
    plain = run_parent(run_container, unique("plain"), ["--", "sleep", "300"], socket=False,
                       volumes=proxy.volumes, image=image,
                       labels={"link.vault.wait": "none", "link.vault.optional": "true"})
    wait_until(lambda: plain.reload() or plain.status == "running", 60, "plain running")
    refused = container_request(plain, "GET", f"/containers/{vault.name}/json")
    assert refused["status"] == 404 and SECRET not in str(refused["body"])
    message = refused["body"]["message"]
    assert f"label link.vault={vault.name} comes from the image" in message
    assert "--trust-image-links" in message
    operator = sleeper(run_container, unique("operator"), proxy, image=image,
                       labels={"link.store": vault.name})
    served = container_request(operator, "GET", f"/containers/{vault.name}/json")
    assert served["status"] == 200 and SECRET in str(served["body"])


@pytest.fixture
def created(docker_client: Any, linkinit_image: str) -> Iterator[Any]:
    """Containers created (not started), each removed after the test."""
    made: list[Any] = []

    def create(name: str) -> Any:
        made.append(docker_client.containers.create(linkinit_image, ["true"], name=name,
                                                    labels={TEST_LABEL: SESSION}))
        return made[-1]

    yield create
    for container in made:
        with contextlib.suppress(Exception):
            container.remove(force=True)


def test_the_smaller_findings(make_child, created, run_container, unique, start_proxy):
    """A parent's event stream gets its child's rename away and destroy; /v1.99/ from a
    parent is the Engine's own answer, not "in no container"; a prefix that two containers'
    IDs share reads as a missing container, not as the Engine's "Multiple IDs"."""
    proxy = start_proxy()
    child, cache = make_child(unique("db")), make_child(unique("cache"))
    parent = sleeper(run_container, unique("webapp"), proxy,
                     labels={"link.db": child.name, "link.db.wait": "started",
                             "link.cache": cache.name, "link.cache.wait": "started"})
    wait_until(lambda: any(p["args"] == "sleep 300" for p in process_table(parent)), 60,
               "the parent's COMMAND running (its linkinit's own streams closed)")
    streams = proxy.output().count("streaming to")
    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        events = pool.submit(container_request, parent, "GET", "/events", 6)
        wait_until(lambda: proxy.output().count("streaming to") > streams, 20,
                   "the parent's event stream open")
        child.rename(unique("renamed"))
        cache.remove(force=True)
        seen = [(e.get("Action"), e.get("id") or e["Actor"]["ID"])
                for e in events.result(timeout=30)["body"]]
    assert ("rename", child.id) in seen and ("destroy", cache.id) in seen, seen
    too_new = container_request(parent, "GET", f"/v1.99/containers/{parent.name}/json")
    assert too_new["status"] == 400 and "no container" not in str(too_new["body"]), too_new
    for _ in range(200):  # about 16 tries: a container whose ID starts like the parent's
        if created(unique(f"twin{_}")).id[0] == parent.id[0]:
            break
    else:
        pytest.fail("no container ID shared the parent's first digit in 200 tries")
    shared = container_request(parent, "GET", f"/containers/{parent.id[0]}/json")
    assert shared["status"] == 404 and "Multiple" not in str(shared["body"]), shared
    assert "No such container" in shared["body"]["message"]
