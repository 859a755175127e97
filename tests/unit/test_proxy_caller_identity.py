"""The proxy's caller identity: the peer's PID from the kernel, and its container's ID from the
PID's cgroups, under cgroup v1 and v2, Docker's cgroupfs and systemd drivers, and Podman."""

from __future__ import annotations

import os
import socket

import pytest

from linkinit.engine.identity import (
    cgroup_candidates,
    container_ids_in_cgroup,
    peer_pid,
    pid_namespace,
)

ID = "7d11475facd1e7658b21424dc5e14a05769745cd1591788060d4898f33fbd9a6"
OTHER = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"

# cgroup v1, cgroupfs driver (Docker 20.10 on Debian 12 here): one line per hierarchy.
V1_CGROUPFS = "\n".join(
    f"{n}:{name}:/docker/{ID}"
    for n, name in enumerate(["cpu", "cpuacct", "cpuset", "memory", "devices", "freezer",
                              "blkio", "pids", "name=systemd"], start=1)
) + f"\n0::/docker/{ID}\n"
V1_SYSTEMD = (
    f"12:memory:/system.slice/docker-{ID}.scope\n"
    f"1:name=systemd:/system.slice/docker-{ID}.scope\n"
    "0::/\n"
)
V2_SYSTEMD = f"0::/system.slice/docker-{ID}.scope\n"
V2_CGROUPFS = f"0::/docker/{ID}\n"
V2_OTHER_NAMESPACE = f"0::/../../system.slice/docker-{ID}.scope\n"  # read from a container
V2_NESTED = f"0::/kubepods/besteffort/pod1234/{ID}\n"
V2_PODMAN = f"0::/machine.slice/libpod-{ID}.scope/container\n"
V2_PODMAN_SCOPE = f"0::/machine.slice/libpod-{ID}.scope\n"
HOST_V1 = "4:memory:/user.slice\n1:name=systemd:/user.slice/user-0.slice/session-1.scope\n0::/\n"
HOST_V2 = "0::/user.slice/user-1000.slice/session-3.scope\n"
PRIVATE_NAMESPACE_V2 = "0::/\n"  # a private cgroup namespace, read from inside


@pytest.mark.parametrize(
    "text",
    [V1_CGROUPFS, V1_SYSTEMD, V2_SYSTEMD, V2_CGROUPFS, V2_OTHER_NAMESPACE, V2_NESTED,
     V2_PODMAN_SCOPE],
    ids=["v1-cgroupfs", "v1-systemd", "v2-systemd", "v2-cgroupfs", "v2-other-namespace",
         "v2-nested", "v2-podman-scope"],
)
def test_the_container_id_is_read_from_every_cgroup_layout(text: str) -> None:
    """Each driver and version names the container once, whatever the prefix."""
    assert container_ids_in_cgroup(text) == [ID]


@pytest.mark.parametrize("text", [HOST_V1, HOST_V2, PRIVATE_NAMESPACE_V2, ""],
                         ids=["host-v1", "host-v2", "private-namespace", "empty"])
def test_a_host_process_has_no_candidate(text: str) -> None:
    """No 64-hex component at the end of a path: nothing to match against the Engine."""
    assert container_ids_in_cgroup(text) == []


def test_a_podman_payload_cgroup_below_its_scope_names_the_container() -> None:
    """Podman on cgroup v2 runs the payload in ``libpod-<id>.scope/container``."""
    assert container_ids_in_cgroup(V2_PODMAN) == [ID]


def test_an_id_inside_a_longer_name_is_not_a_candidate() -> None:
    """Only a whole path component counts: ``x<id>`` or ``<id>-y`` is someone else's naming."""
    assert container_ids_in_cgroup(f"0::/x{ID}\n0::/docker/{ID}-y\n") == []


def test_distinct_ids_keep_their_order_once_each() -> None:
    assert container_ids_in_cgroup(f"2:cpu:/docker/{OTHER}\n{V1_CGROUPFS}") == [OTHER, ID]


def test_candidates_are_read_from_proc(tmp_path: object) -> None:
    """The same parser behind /proc/<pid>/cgroup; a vanished PID gives nothing, no error."""
    root = os.fspath(tmp_path)  # type: ignore[arg-type]
    os.makedirs(f"{root}/42")
    with open(f"{root}/42/cgroup", "w") as file:
        file.write(V2_SYSTEMD)
    assert cgroup_candidates(42, proc=root) == [ID]
    assert cgroup_candidates(43, proc=root) == []


def test_the_peer_pid_comes_from_the_kernel() -> None:
    """SO_PEERCRED on a Unix socket pair names this very process."""
    left, right = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
    with left, right:
        assert peer_pid(right) == os.getpid()


def test_a_socket_without_credentials_gives_no_pid() -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        assert peer_pid(sock) is None


def test_the_pid_namespace_is_read_for_live_processes_only() -> None:
    assert (pid_namespace(os.getpid()) or "").startswith("pid:[")
    assert pid_namespace(2**22 + 1) is None
