"""/etc/hosts: one ``<ip>\\t<alias> <child-hostname> <child-name>`` line per link, as Docker wrote.

``updated_hosts`` is pure; ``write_hosts`` is exercised on a temporary file, rewritten in place
because Docker bind-mounts /etc/hosts (a rename would not reach the container's view).
"""

from __future__ import annotations

import os

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from linkinit.init.hosts import host_line, updated_hosts, write_hosts
from linkinit.model.envvars import ResolvedLink

DOCKER_HOSTS = """\
127.0.0.1\tlocalhost
::1\tlocalhost ip6-localhost ip6-loopback
fe00::0\tip6-localnet
ff00::0\tip6-mcastprefix
ff02::1\tip6-allnodes
ff02::2\tip6-allrouters
172.17.0.3\t5f1c2a9b3d4e
"""


def link(alias="redis", ip="172.17.0.2", hostname="a1b2c3d4e5f6", name="db1") -> ResolvedLink:
    return ResolvedLink(alias, "webapp", ip, child_name=name, child_hostname=hostname)


@pytest.mark.parametrize(
    ("endpoint", "line"),
    [
        pytest.param(link(), "172.17.0.2\tredis a1b2c3d4e5f6 db1", id="alias-hostname-name"),
        pytest.param(link(alias="db1"), "172.17.0.2\tdb1 a1b2c3d4e5f6", id="name-is-the-alias"),
        pytest.param(link(hostname="redis"), "172.17.0.2\tredis db1", id="hostname-is-alias"),
        pytest.param(link(hostname="db1"), "172.17.0.2\tredis db1", id="hostname-is-name"),
        pytest.param(link(hostname="", name=""), "172.17.0.2\tredis", id="alias-only"),
        pytest.param(link(ip="fd00::2"), "fd00::2\tredis a1b2c3d4e5f6 db1", id="ipv6"),
    ],
)
def test_a_link_line_is_ip_tab_alias_hostname_name_without_repeats(endpoint, line):
    """The IP, a tab, then the alias, the child's hostname and its name, each once."""
    assert host_line(endpoint) == line


def test_link_lines_are_appended_after_the_existing_entries():
    """Docker's own lines stay, in order; the links come after them."""
    got = updated_hosts(DOCKER_HOSTS, [link(), link("pg", "172.17.0.4", "0badc0ffee00", "pg1")])
    assert got == DOCKER_HOSTS + (
        "172.17.0.2\tredis a1b2c3d4e5f6 db1\n172.17.0.4\tpg 0badc0ffee00 pg1\n"
    )


def test_running_again_replaces_an_aliass_line_instead_of_adding_another():
    """A restarted container keeps its file: the alias's old line goes, the new one is added."""
    first = updated_hosts(DOCKER_HOSTS, [link(ip="172.17.0.2")])
    second = updated_hosts(first, [link(ip="172.17.0.9")])
    assert second == DOCKER_HOSTS + "172.17.0.9\tredis a1b2c3d4e5f6 db1\n"


def test_lines_of_other_aliases_are_kept_when_one_alias_is_rewritten():
    """Only the lines of the aliases being written are replaced."""
    text = DOCKER_HOSTS + "172.17.0.4\tpg pg1\n172.17.0.2\tredis old\n"
    got = updated_hosts(text, [link(ip="172.17.0.7")])
    assert got == DOCKER_HOSTS + "172.17.0.4\tpg pg1\n172.17.0.7\tredis a1b2c3d4e5f6 db1\n"


def test_comment_lines_are_kept_even_when_they_mention_an_alias():
    """'# redis cache' is a comment, not the alias's old line."""
    text = "127.0.0.1\tlocalhost\n# redis cache below\n#\tredis\n"
    assert updated_hosts(text, [link()]) == text + "172.17.0.2\tredis a1b2c3d4e5f6 db1\n"


def test_a_link_without_an_address_writes_no_line():
    """An endpoint with no IP (optional child absent) adds nothing."""
    assert updated_hosts(DOCKER_HOSTS, [link(ip="")]) == DOCKER_HOSTS


def test_a_file_without_a_final_newline_gets_one():
    """The result always ends in a newline, and no line is glued to the next."""
    assert updated_hosts("127.0.0.1\tlocalhost", [link()]) == (
        "127.0.0.1\tlocalhost\n172.17.0.2\tredis a1b2c3d4e5f6 db1\n"
    )


hostnames = st.text(alphabet="abcdef0123456789-", min_size=0, max_size=12)
aliases = st.text(alphabet="abcxyz019_-", min_size=1, max_size=8)
endpoints = st.builds(
    ResolvedLink,
    alias=aliases,
    parent_name=st.just("webapp"),
    ip=st.sampled_from(["172.17.0.2", "10.0.0.5", "fd00::2", ""]),
    child_name=hostnames,
    child_hostname=hostnames,
)


@settings(max_examples=100, deadline=None)
@given(eps=st.lists(endpoints, max_size=4, unique_by=lambda e: e.alias))
def test_updating_twice_is_the_same_as_updating_once(eps):
    """Running linkinit again over its own output changes nothing."""
    once = updated_hosts(DOCKER_HOSTS, eps)
    assert updated_hosts(once, eps) == once
    assert once.startswith(DOCKER_HOSTS)


# ---------------------------------------------------------------------------------------------
# write_hosts
# ---------------------------------------------------------------------------------------------


def test_write_hosts_rewrites_the_file_in_place(tmp_path):
    """The same inode is rewritten (a bind-mounted file cannot be replaced by rename)."""
    hosts = tmp_path / "hosts"
    hosts.write_text(DOCKER_HOSTS + "172.17.0.2\tredis stale-entry-that-is-longer-than-the-new\n")
    inode = os.stat(hosts).st_ino
    assert write_hosts([link()], str(hosts)) is True
    assert hosts.read_text() == DOCKER_HOSTS + "172.17.0.2\tredis a1b2c3d4e5f6 db1\n"
    assert os.stat(hosts).st_ino == inode


def test_write_hosts_with_no_links_leaves_the_file_alone(tmp_path):
    """No endpoints: nothing written, and False says so."""
    hosts = tmp_path / "hosts"
    hosts.write_text("127.0.0.1 localhost")
    assert write_hosts([], str(hosts)) is False
    assert hosts.read_text() == "127.0.0.1 localhost"


def test_write_hosts_returns_false_when_the_file_cannot_be_written(tmp_path):
    """A missing (or read-only) hosts file is skipped, not an error."""
    assert write_hosts([link()], str(tmp_path / "missing" / "hosts")) is False
