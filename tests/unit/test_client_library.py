"""The client library reads back exactly what Docker's legacy links export.

The environments here are written by hand from the format of moby's ``daemon/links``
(``links.go`` and ``links_test.go``); ``docker_link_env`` (tests/support/moby.py, the one
oracle) restates that format so that hypothesis can vary aliases, ports and child
environments.
"""

from __future__ import annotations

import subprocess
import sys

import pytest
from hypothesis import given
from hypothesis import strategies as st

import linkinit
from linkinit import Endpoint, LinkError
from tests.support.moby import docker_link_env

from .design_example import REDIS_LINK_ENV

# ---------------------------------------------------------------------------------------------
# Environments as Docker writes them
# ---------------------------------------------------------------------------------------------

REDIS = dict(REDIS_LINK_ENV)

# moby links_test.go TestLinkMultipleEnv: 6379-6381/tcp, one range, keyed on 6379.
RANGE = {
    "DOCKER_NAME": "/db/docker",
    "DOCKER_PORT": "tcp://172.0.17.2:6379",
    "DOCKER_PORT_6379_TCP": "tcp://172.0.17.2:6379",
    "DOCKER_PORT_6379_TCP_ADDR": "172.0.17.2",
    "DOCKER_PORT_6379_TCP_PORT": "6379",
    "DOCKER_PORT_6379_TCP_PROTO": "tcp",
    "DOCKER_PORT_6380_TCP": "tcp://172.0.17.2:6380",
    "DOCKER_PORT_6380_TCP_ADDR": "172.0.17.2",
    "DOCKER_PORT_6380_TCP_PORT": "6380",
    "DOCKER_PORT_6380_TCP_PROTO": "tcp",
    "DOCKER_PORT_6381_TCP": "tcp://172.0.17.2:6381",
    "DOCKER_PORT_6381_TCP_ADDR": "172.0.17.2",
    "DOCKER_PORT_6381_TCP_PORT": "6381",
    "DOCKER_PORT_6381_TCP_PROTO": "tcp",
    "DOCKER_PORT_6379_TCP_START": "tcp://172.0.17.2:6379",
    "DOCKER_PORT_6379_TCP_PORT_START": "6379",
    "DOCKER_PORT_6379_TCP_END": "tcp://172.0.17.2:6381",
    "DOCKER_PORT_6379_TCP_PORT_END": "6381",
    "DOCKER_ENV_PASSWORD": "gordon",
}

# A DNS child exposing 53/udp and 53/tcp, and an SCTP child, with dashes in the aliases.
MIXED = {
    "NAME_SERVER_NAME": "/app/name-server",
    "NAME_SERVER_PORT": "tcp://10.0.0.5:53",
    "NAME_SERVER_PORT_53_TCP": "tcp://10.0.0.5:53",
    "NAME_SERVER_PORT_53_TCP_ADDR": "10.0.0.5",
    "NAME_SERVER_PORT_53_TCP_PORT": "53",
    "NAME_SERVER_PORT_53_TCP_PROTO": "tcp",
    "NAME_SERVER_PORT_53_UDP": "udp://10.0.0.5:53",
    "NAME_SERVER_PORT_53_UDP_ADDR": "10.0.0.5",
    "NAME_SERVER_PORT_53_UDP_PORT": "53",
    "NAME_SERVER_PORT_53_UDP_PROTO": "udp",
    "SIG_LINK_NAME": "/app/sig-link",
    "SIG_LINK_PORT": "sctp://10.0.0.6:2905",
    "SIG_LINK_PORT_2905_SCTP": "sctp://10.0.0.6:2905",
    "SIG_LINK_PORT_2905_SCTP_ADDR": "10.0.0.6",
    "SIG_LINK_PORT_2905_SCTP_PORT": "2905",
    "SIG_LINK_PORT_2905_SCTP_PROTO": "sctp",
    "SIG_LINK_ENV_mode": "m3ua",
    "PATH": "/usr/bin:/bin",
    "HOME": "/root",
}


def test_reference_environment_matches_the_handwritten_range_example():
    """The restated format reproduces moby's own multi-port example, ranges included."""
    ports = [(6379, "tcp"), (6380, "tcp"), (6381, "tcp")]
    assert docker_link_env("db", "docker", "172.0.17.2", ports, {"PASSWORD": "gordon"}) == RANGE


# ---------------------------------------------------------------------------------------------
# require
# ---------------------------------------------------------------------------------------------


def test_require_reads_the_default_port():
    """require(alias) is <ALIAS>_PORT split into proto, ip and an int port."""
    assert linkinit.require("redis", environ=REDIS) == ("tcp", "172.17.0.2", 6379)


def test_require_returns_a_named_tuple():
    """The result unpacks as three values and also has named fields."""
    endpoint = linkinit.require("redis", environ=REDIS)
    proto, ip, port = endpoint
    assert isinstance(endpoint, Endpoint)
    assert (endpoint.proto, endpoint.ip, endpoint.port) == (proto, ip, port)
    assert isinstance(port, int)
    assert endpoint.url == "tcp://172.17.0.2:6379"


@pytest.mark.parametrize("alias", ["redis", "REDIS", "Redis"])
def test_require_is_case_insensitive_on_the_alias(alias):
    """Any spelling of the alias finds the upper-case variables."""
    assert linkinit.require(alias, environ=REDIS).port == 6379


def test_require_with_a_port_reads_that_port():
    """require(alias, port) reads <ALIAS>_PORT_<port>_TCP, not the default port."""
    assert linkinit.require("docker", port=6381, environ=RANGE) == ("tcp", "172.0.17.2", 6381)


@pytest.mark.parametrize(
    ("alias", "port", "proto", "expected"),
    [
        ("name-server", 53, "udp", ("udp", "10.0.0.5", 53)),
        ("name-server", 53, "UDP", ("udp", "10.0.0.5", 53)),
        ("name-server", 53, "tcp", ("tcp", "10.0.0.5", 53)),
        ("NAME_SERVER", None, "tcp", ("tcp", "10.0.0.5", 53)),
        ("sig-link", 2905, "sctp", ("sctp", "10.0.0.6", 2905)),
        ("sig-link", None, "tcp", ("sctp", "10.0.0.6", 2905)),
    ],
)
def test_require_reads_udp_sctp_and_dashed_aliases(alias, port, proto, expected):
    """Protocols other than TCP and aliases with '-' map to Docker's variable names."""
    assert linkinit.require(alias, port=port, proto=proto, environ=MIXED) == expected


def test_require_reads_os_environ_by_default(monkeypatch):
    """Without environ= the process environment is read."""
    for key, value in REDIS.items():
        monkeypatch.setenv(key, value)
    assert linkinit.require("redis") == ("tcp", "172.17.0.2", 6379)


def test_require_names_the_missing_variable():
    """A missing link raises LinkError naming <ALIAS>_PORT."""
    with pytest.raises(LinkError) as caught:
        linkinit.require("db", environ=REDIS)
    assert caught.value.variable == "DB_PORT"
    assert "DB_PORT" in str(caught.value)
    assert str(caught.value).startswith("linkinit: ")


def test_require_names_the_missing_port_variable():
    """A port the child does not expose names <ALIAS>_PORT_<port>_<PROTO>."""
    with pytest.raises(LinkError, match="REDIS_PORT_6380_UDP") as caught:
        linkinit.require("redis", port=6380, proto="udp", environ=REDIS)
    assert caught.value.variable == "REDIS_PORT_6380_UDP"


def test_link_error_is_a_lookup_error():
    """Callers can catch LinkError as LookupError, like a missing key."""
    assert issubclass(LinkError, LookupError)
    with pytest.raises(LookupError):
        linkinit.require("nope", environ={})


def test_require_rejects_a_malformed_value():
    """A variable that is not proto://ip:port raises LinkError naming it."""
    with pytest.raises(LinkError, match="REDIS_PORT") as caught:
        linkinit.require("redis", environ={"REDIS_PORT": "172.17.0.2:6379"})
    assert caught.value.variable == "REDIS_PORT"


def test_require_reads_an_unbracketed_ipv6_address():
    """Docker writes an IPv6 child IP without brackets; the port is after the last colon."""
    env = {"V6_PORT": "tcp://fd00::2:80", "V6_PORT_80_TCP": "tcp://fd00::2:80"}
    assert linkinit.require("v6", environ=env) == ("tcp", "fd00::2", 80)
    assert linkinit.require("v6", port=80, environ=env) == ("tcp", "fd00::2", 80)


@pytest.mark.parametrize("alias", ["", "my.redis", "a b", "redis/x"])
def test_require_rejects_a_bad_alias(alias):
    """An alias that cannot be a link alias is a programming error, not a missing link."""
    with pytest.raises(ValueError, match="bad link alias"):
        linkinit.require(alias, environ=REDIS)


@pytest.mark.parametrize("port", [0, 65536, -1, "6379", True])
def test_require_rejects_a_bad_port(port):
    """Ports are ints from 1 to 65535."""
    with pytest.raises(ValueError, match="bad port"):
        linkinit.require("redis", port=port, environ=REDIS)


# ---------------------------------------------------------------------------------------------
# require_env
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("key", ["PASSWORD", "password", "Password"])
def test_require_env_is_case_insensitive_on_the_key(key):
    """require_env finds <ALIAS>_ENV_<key> whatever the key's case."""
    assert linkinit.require_env("redis", key, environ=REDIS) == "dockerpass"


def test_require_env_finds_a_lower_case_child_key():
    """Docker keeps the case of the child's key: SIG_LINK_ENV_mode is found as MODE too."""
    assert linkinit.require_env("sig-link", "mode", environ=MIXED) == "m3ua"
    assert linkinit.require_env("SIG-LINK", "MODE", environ=MIXED) == "m3ua"


def test_require_env_prefers_the_exact_spelling_then_upper_case():
    """Where keys differ only in case, the exact one wins, then the upper-case one."""
    env = {"A_ENV_key": "lower", "A_ENV_KEY": "upper"}
    assert linkinit.require_env("a", "key", environ=env) == "lower"
    assert linkinit.require_env("a", "KEY", environ=env) == "upper"
    assert linkinit.require_env("a", "Key", environ=env) == "upper"


def test_require_env_refuses_to_guess_between_spellings():
    """Two case variants, neither exact nor upper case: LinkError, not a coin toss."""
    env = {"A_ENV_key": "lower", "A_ENV_Key": "title"}
    with pytest.raises(LinkError, match="differ only in case"):
        linkinit.require_env("a", "KEY", environ=env)


def test_require_env_keeps_empty_values():
    """An empty child variable is set, not missing."""
    assert linkinit.require_env("a", "EMPTY", environ={"A_ENV_EMPTY": ""}) == ""


def test_require_env_names_the_missing_variable():
    """A missing child variable raises LinkError naming <ALIAS>_ENV_<KEY>."""
    with pytest.raises(LinkError, match="REDIS_ENV_USER") as caught:
        linkinit.require_env("redis", "user", environ=REDIS)
    assert caught.value.variable == "REDIS_ENV_USER"


# ---------------------------------------------------------------------------------------------
# links
# ---------------------------------------------------------------------------------------------


def test_links_returns_typed_links():
    """links() gives alias, name, address, ports and env of each link."""
    (link,) = linkinit.links(REDIS)
    assert link.alias == "redis"
    assert link.name == "/webapp/redis"
    assert link.parent == "/webapp"
    assert link.prefix == "REDIS"
    assert link.address == "172.17.0.2"
    assert link.ports == (Endpoint("tcp", "172.17.0.2", 6379),)
    assert link.env == {"PASSWORD": "dockerpass"}
    assert link.port() == ("tcp", "172.17.0.2", 6379)


def test_links_lists_every_port_of_a_range_once():
    """Range variables (_START, _END...) are not ports; each port of the run is one."""
    (link,) = linkinit.links(RANGE)
    assert [p.port for p in link.ports] == [6379, 6380, 6381]
    assert link.env == {"PASSWORD": "gordon"}


def test_links_sorts_ports_tcp_first_and_finds_dashed_aliases():
    """Ports sort as Docker sorts them; aliases keep their dashes; PATH/HOME are no link."""
    name_server, sig_link = linkinit.links(MIXED)
    assert name_server.alias == "name-server"
    assert name_server.ports == (
        Endpoint("tcp", "10.0.0.5", 53),
        Endpoint("udp", "10.0.0.5", 53),
    )
    assert name_server.port(53, "udp").proto == "udp"
    assert sig_link.alias == "sig-link"
    assert sig_link.address == "10.0.0.6"
    assert sig_link.env == {"mode": "m3ua"}


def test_links_of_an_environment_without_links_is_empty():
    """Ordinary variables, even ones ending in _NAME, are not links."""
    env = {"HOSTNAME": "abc", "USER_NAME": "alice", "APP_NAME": "/srv/site", "PATH": "/bin"}
    assert linkinit.links(env) == []


def test_links_do_not_mistake_a_child_variable_for_a_link():
    """REDIS_ENV_NAME=/x/y is the child variable NAME of redis, not a link 'redis_env'."""
    env = dict(REDIS, REDIS_ENV_NAME="/srv/site", REDIS_ENV_PORT="tcp://1.2.3.4:80")
    (link,) = linkinit.links(env)
    assert link.alias == "redis"
    assert link.env == {"PASSWORD": "dockerpass", "NAME": "/srv/site", "PORT": "tcp://1.2.3.4:80"}


def test_links_keep_a_link_aliased_like_another_links_env_apart():
    """A link 'redis-env' next to 'redis': its variables go to it, not into redis's env."""
    env = dict(REDIS)
    env.update(
        docker_link_env("webapp", "redis-env", "172.17.0.9", [(80, "tcp")], {"TOKEN": "t"})
    )
    redis, redis_env = linkinit.links(env)
    assert (redis.alias, redis_env.alias) == ("redis", "redis-env")
    assert redis.env == {"PASSWORD": "dockerpass"}
    assert redis.ports == (Endpoint("tcp", "172.17.0.2", 6379),)
    assert redis_env.env == {"TOKEN": "t"}
    assert redis_env.ports == (Endpoint("tcp", "172.17.0.9", 80),)
    assert linkinit.require("redis-env", environ=env) == ("tcp", "172.17.0.9", 80)


def test_links_include_a_link_without_ports():
    """A child that exposes no port is still a link, with no address."""
    (link,) = linkinit.links({"WORKER_NAME": "/app/worker", "WORKER_ENV_QUEUE": "jobs"})
    assert link.ports == ()
    assert link.address is None
    assert link.env == {"QUEUE": "jobs"}
    with pytest.raises(LinkError, match="WORKER_PORT"):
        link.port()


# ---------------------------------------------------------------------------------------------
# Properties over environments Docker would produce
# ---------------------------------------------------------------------------------------------

aliases = st.from_regex(r"[a-z][a-z0-9]{0,6}(-[a-z0-9]{1,4})?", fullmatch=True)
ips = st.tuples(*[st.integers(0, 255)] * 4).map(lambda t: ".".join(map(str, t)))
port_sets = st.lists(
    st.tuples(st.integers(1, 65535), st.sampled_from(["tcp", "udp", "sctp"])),
    min_size=1,
    max_size=8,
    unique=True,
)
env_keys = st.from_regex(r"[A-Za-z_][A-Za-z0-9_]{0,10}", fullmatch=True).filter(
    lambda k: k not in ("HOME", "PATH")
)
child_envs = st.dictionaries(env_keys, st.text(max_size=12).filter(lambda v: "\x00" not in v))


@given(alias=aliases, ip=ips, ports=port_sets, child_env=child_envs)
def test_property_require_reads_back_every_port(alias, ip, ports, child_env):
    """For any link Docker could export, every exposed port reads back as itself."""
    env = docker_link_env("parent", alias, ip, ports, child_env)
    for num, proto in ports:
        assert linkinit.require(alias.upper(), port=num, proto=proto, environ=env) == (
            proto,
            ip,
            num,
        )
    default = min(ports, key=lambda p: (p[1] != "tcp", p[1], p[0]))
    assert linkinit.require(alias, environ=env) == (default[1], ip, default[0])


@given(alias=aliases, ip=ips, ports=port_sets, child_env=child_envs)
def test_property_links_recovers_what_was_linked(alias, ip, ports, child_env):
    """links() recovers alias, address, the ports in Docker's order and the child env."""
    env = docker_link_env("parent", alias, ip, ports, child_env)
    (link,) = linkinit.links(env)
    assert link.alias == alias
    assert link.name == f"/parent/{alias}"
    assert link.address == ip
    assert [(p.port, p.proto) for p in link.ports] == sorted(
        ports, key=lambda p: (p[1] != "tcp", p[1], p[0])
    )
    assert link.env == child_env
    for key, value in child_env.items():
        assert linkinit.require_env(alias, key, environ=env) == value


@given(
    first=st.tuples(aliases, ips, port_sets, child_envs),
    second=st.tuples(aliases, ips, port_sets, child_envs),
)
def test_property_two_links_do_not_bleed_into_each_other(first, second):
    """Two links in one environment come back as two links with their own ports and env."""
    a_alias, a_ip, a_ports, a_env = first
    b_alias, b_ip, b_ports, b_env = second
    if a_alias.upper().replace("-", "_") == b_alias.upper().replace("-", "_"):
        return
    env = docker_link_env("p", a_alias, a_ip, a_ports, a_env)
    b = docker_link_env("p", b_alias, b_ip, b_ports, b_env)
    if set(env) & set(b):
        return  # the two links collide in the flat namespace: Docker could not tell either
    env.update(b)
    found = {link.alias: link for link in linkinit.links(env)}
    assert set(found) == {a_alias, b_alias}
    assert found[a_alias].env == a_env
    assert found[b_alias].env == b_env
    assert {p.port for p in found[a_alias].ports} == {p for p, _ in a_ports}
    assert {p.port for p in found[b_alias].ports} == {p for p, _ in b_ports}


@given(alias=aliases, ip=ips, ports=port_sets, child_env=child_envs)
def test_property_library_reads_what_linkinit_itself_exports(alias, ip, ports, child_env):
    """linkinit.model.envvars writes the same variables as the restated Docker format, and the
    library reads them back: the exporter and the reader agree."""
    from linkinit.model import container, envvars

    exposed = {f"{num}/{proto}": {} for num, proto in ports}
    endpoint = envvars.ResolvedLink(
        alias=alias,
        parent_name="parent",
        ip=ip,
        ports=container.exposed_ports({"Config": {"ExposedPorts": exposed}}),
        env=tuple(f"{key}={value}" for key, value in child_env.items()),
    )
    exported = dict(envvars.link_variables(endpoint))
    assert exported == docker_link_env("parent", alias, ip, ports, child_env)
    (link,) = linkinit.links(exported)
    assert (link.alias, link.address, link.env) == (alias, ip, child_env)


# ---------------------------------------------------------------------------------------------
# The package itself
# ---------------------------------------------------------------------------------------------


def test_importing_linkinit_loads_no_heavy_module():
    """import linkinit pulls in neither the docker SDK nor yaml nor any third-party module."""
    code = (
        "import sys, linkinit;"
        "heavy = [m for m in ('docker', 'yaml', 'requests', 'tenacity', 'psutil', 'urllib3')"
        " if m in sys.modules];"
        "print(heavy)"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=30
    )
    assert out.stdout.strip() == "[]"


def test_version_is_exposed():
    """__version__ is a version string."""
    assert isinstance(linkinit.__version__, str)
    assert linkinit.__version__[0].isdigit()
