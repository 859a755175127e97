"""Finding this container's own ID in what the kernel shows it: mountinfo and cgroup.

Under cgroup v2 with a private cgroup namespace ``/proc/self/cgroup`` is only ``0::/``, but the
``.../containers/<id>/hostname`` bind mount in ``/proc/self/mountinfo`` still names the
container; under cgroup v1 (or a host cgroup namespace) the cgroup path ends in the ID.
"""

from __future__ import annotations

import re

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from linkinit.engine.whoami import container_id_from_cgroup, container_id_from_mountinfo

ID = "3f9c2b7a1d4e5f60718293a4b5c6d7e8f90a1b2c3d4e5f60718293a4b5c6d7e8"
OUTER = "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
LAYER = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"
assert len(ID) == len(OUTER) == len(LAYER) == 64


def docker_mountinfo(root: str = "/var/lib/docker", container: str = ID) -> str:
    """/proc/self/mountinfo of a Docker container: overlay root, proc, the three /etc files."""
    return (
        f"571 484 0:48 / / rw,relatime master:256 - overlay overlay rw,"
        f"lowerdir={root}/overlay2/l/ZK4CNSAMEKMIK6:{root}/overlay2/l/5BZK3DRY,"
        f"upperdir={root}/overlay2/{LAYER}/diff,workdir={root}/overlay2/{LAYER}/work\n"
        "572 571 0:51 / /proc rw,nosuid,nodev,noexec,relatime - proc proc rw\n"
        "573 571 0:52 / /dev rw,nosuid - tmpfs tmpfs rw,size=65536k,mode=755\n"
        "577 571 0:27 / /sys/fs/cgroup ro,nosuid,nodev,noexec,relatime - cgroup2 cgroup rw\n"
        f"578 571 254:1 {root}/containers/{container}/resolv.conf /etc/resolv.conf "
        "rw,relatime - ext4 /dev/vda1 rw\n"
        f"579 571 254:1 {root}/containers/{container}/hostname /etc/hostname "
        "rw,relatime - ext4 /dev/vda1 rw\n"
        f"580 571 254:1 {root}/containers/{container}/hosts /etc/hosts "
        "rw,relatime - ext4 /dev/vda1 rw\n"
        "581 573 0:47 / /dev/shm rw,nosuid,nodev,noexec,relatime - tmpfs shm rw,size=65536k\n"
    )


HOST_MOUNTINFO = (
    "22 1 254:1 / / rw,relatime shared:1 - ext4 /dev/vda1 rw\n"
    "23 22 0:21 / /proc rw,nosuid,nodev,noexec,relatime shared:5 - proc proc rw\n"
    "24 22 0:27 / /sys/fs/cgroup rw,nosuid,nodev,noexec,relatime shared:9 - cgroup2 cgroup2 rw\n"
)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        pytest.param(docker_mountinfo(), ID, id="docker-hostname-bind-mount"),
        pytest.param(
            docker_mountinfo("/home/me/.local/share/docker"), ID, id="rootless-data-root"
        ),
        pytest.param(docker_mountinfo("/mnt/data/docker"), ID, id="custom-data-root"),
        pytest.param(HOST_MOUNTINFO, None, id="host-no-container"),
        pytest.param("", None, id="empty"),
        pytest.param(docker_mountinfo(container=ID[:63]), None, id="63-hex-is-not-an-id"),
        pytest.param(docker_mountinfo(container=ID.upper()), None, id="upper-case-is-not-an-id"),
        pytest.param(
            docker_mountinfo(container=ID + "0"), None, id="65-hex-is-not-an-id"
        ),
    ],
)
def test_the_container_id_is_read_from_the_hostname_bind_mount(text, expected):
    """mountinfo names .../containers/<64 hex>/...; overlay layer IDs are not mistaken for it."""
    assert container_id_from_mountinfo(text) == expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        pytest.param(
            "".join(
                f"{n}:{c}:/docker/{ID}\n"
                for n, c in [(12, "pids"), (11, "memory"), (4, "cpu,cpuacct"), (1, "name=systemd")]
            )
            + f"0::/docker/{ID}\n",
            ID,
            id="v1-cgroupfs-driver",
        ),
        pytest.param(
            f"12:pids:/system.slice/docker-{ID}.scope\n"
            f"1:name=systemd:/system.slice/docker-{ID}.scope\n",
            ID,
            id="v1-systemd-driver",
        ),
        pytest.param("0::/\n", None, id="v2-private-namespace"),
        pytest.param(f"0::/system.slice/docker-{ID}.scope\n", ID, id="v2-host-ns-systemd"),
        pytest.param(f"0::/docker/{ID}\n", ID, id="v2-host-ns-cgroupfs"),
        pytest.param(
            f"0::/docker/{OUTER}/docker/{ID}\n", ID, id="docker-in-docker-innermost-wins"
        ),
        pytest.param(
            "0::/user.slice/user-1000.slice/session-2.scope\n", None, id="host-session"
        ),
        pytest.param(f"0::/docker/{ID[:63]}\n", None, id="63-hex-is-not-an-id"),
        pytest.param(f"0::/docker/{ID}0\n", None, id="65-hex-is-not-an-id"),
        pytest.param("", None, id="empty"),
    ],
)
def test_the_container_id_is_read_from_the_end_of_the_cgroup_path(text, expected):
    """The cgroup path ends in /docker/<id> or docker-<id>.scope; a bare 0::/ names nothing."""
    assert container_id_from_cgroup(text) == expected


# The rules as regular expressions, as they were written before the start path dropped re:
# the string operations must find exactly what these find, on any text.
_ID_RE = r"([0-9a-f]{64})"
_CGROUP_RE = re.compile(
    r"(?:^|/)(?:docker-|libpod-|crio-)?" + _ID_RE + r"(?:\.scope)?(?:/container)?$"
)
_MOUNTINFO_RE = re.compile(r"/(?:[a-z0-9]+-)?containers/" + _ID_RE + r"/")
_PIECES = st.sampled_from([ID, OUTER, ID[:63], ID.upper(), "/", "-", "containers/", "docker-",
                           "libpod-", "crio-", ".scope", "/container", "overlay", "a", "x-",
                           "Z", ":", "\n", " ", "0::", f"containers/{ID}/",
                           f"-containers/{ID}/", f"docker-{ID}.scope"])


@settings(max_examples=500)
@given(st.lists(_PIECES, max_size=12))
def test_the_cgroup_rule_finds_what_its_regular_expression_finds(pieces):
    """A cgroup line's ID: the same as ``(?:^|/)(docker-|libpod-|crio-)?<id>(.scope)?
    (/container)?$`` on the line's stripped path."""
    line = "".join(pieces).replace("\n", "")
    match = _CGROUP_RE.search(line.split(":", 2)[-1].strip())
    assert container_id_from_cgroup(line) == (match.group(1) if match else None)


@settings(max_examples=500)
@given(st.lists(_PIECES, max_size=12))
def test_the_mountinfo_rule_finds_what_its_regular_expression_finds(pieces):
    """The first ``/[<a-z0-9>-]containers/<id>/`` in mountinfo, as the search found it."""
    text = "".join(pieces)
    match = _MOUNTINFO_RE.search(text)
    assert container_id_from_mountinfo(text) == (match.group(1) if match else None)
