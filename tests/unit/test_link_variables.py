"""Docker-link variables: the facts of moby's ``daemon/links`` (links.go, links_test.go).

An endpoint becomes the variables Docker's legacy links exported, name for name and value for
value. The table cases restate moby's own examples and the edges of its port-range loop; the
properties vary ports, aliases and child environments, and compare ``link_variables`` with
``moby_to_env``, an independent oracle that walks the ports the way moby's ``Link.ToEnv`` does.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Dict, Iterable, Sequence, Set, Tuple

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from linkinit.model.container import Port, exposed_ports
from linkinit.model.envvars import (
    ResolvedLink,
    build_environment,
    link_environment,
    link_variables,
)
from tests.support.moby import moby_to_env

from .design_example import REDIS_LINK_ENV

IP = "172.0.17.2"


def endpoint(
    ports: Iterable[Tuple[int, str]] = (),
    alias: str = "docker",
    parent: str = "db",
    env: Sequence[str] = (),
    ip: str = IP,
) -> ResolvedLink:
    return ResolvedLink(
        alias=alias,
        parent_name=parent,
        ip=ip,
        ports=tuple(Port(number, proto) for number, proto in ports),
        env=tuple(env),
    )


def as_dict(pairs: Iterable[Tuple[str, str]]) -> Dict[str, str]:
    result: Dict[str, str] = {}
    for name, value in pairs:
        assert name not in result, f"{name} written twice"
        result[name] = value
    return result


def per_port(prefix: str, number: int, proto: str, ip: str = IP) -> Dict[str, str]:
    key = f"{prefix}_PORT_{number}_{proto.upper()}"
    return {
        key: f"{proto}://{ip}:{number}",
        f"{key}_ADDR": ip,
        f"{key}_PORT": str(number),
        f"{key}_PROTO": proto,
    }


def range_vars(prefix: str, first: int, last: int, proto: str, ip: str = IP) -> Dict[str, str]:
    key = f"{prefix}_PORT_{first}_{proto.upper()}"
    return {
        f"{key}_START": f"{proto}://{ip}:{first}",
        f"{key}_PORT_START": str(first),
        f"{key}_END": f"{proto}://{ip}:{last}",
        f"{key}_PORT_END": str(last),
    }




def test_the_oracle_reproduces_mobys_own_range_example():
    """The oracle gives exactly what links_test.go expects for 6379-6381/tcp."""
    got = as_dict(moby_to_env("/db/docker", IP, [(6379, "tcp"), (6380, "tcp"), (6381, "tcp")],
                              ["PASSWORD=gordon"]))
    expected = {"DOCKER_PORT": f"tcp://{IP}:6379", "DOCKER_NAME": "/db/docker",
                "DOCKER_ENV_PASSWORD": "gordon"}
    for number in (6379, 6380, 6381):
        expected.update(per_port("DOCKER", number, "tcp"))
    expected.update(range_vars("DOCKER", 6379, 6381, "tcp"))
    assert got == expected


# ---------------------------------------------------------------------------------------------
# Naming and ports: moby's table
# ---------------------------------------------------------------------------------------------


def test_the_prefix_is_the_alias_upper_cased_with_dashes_made_underscores():
    """Alias docker-1 of parent db exports DOCKER_1_PORT and DOCKER_1_NAME=/db/docker-1."""
    got = as_dict(link_variables(endpoint([(6379, "tcp")], alias="docker-1")))
    assert got["DOCKER_1_PORT"] == f"tcp://{IP}:6379"
    assert got["DOCKER_1_NAME"] == "/db/docker-1"


def test_a_single_port_gives_the_default_port_its_four_variables_and_the_name():
    """One TCP port: <ALIAS>_PORT, the port's four variables, <ALIAS>_NAME and the env."""
    got = as_dict(link_variables(endpoint([(6379, "tcp")], env=["PASSWORD=gordon"])))
    assert got == {
        "DOCKER_PORT": f"tcp://{IP}:6379",
        **per_port("DOCKER", 6379, "tcp"),
        "DOCKER_NAME": "/db/docker",
        "DOCKER_ENV_PASSWORD": "gordon",
    }


def test_the_design_example_exports_exactly_the_documented_variables():
    """The README's redis example, variable for variable."""
    ep = ResolvedLink("redis", "webapp", "172.17.0.2", (Port(6379),), ("PASSWORD=dockerpass",))
    assert as_dict(link_variables(ep)) == REDIS_LINK_ENV


def test_three_consecutive_ports_get_range_variables_keyed_on_the_first():
    """6379-6381/tcp: _START, _PORT_START, _END, _PORT_END under DOCKER_PORT_6379_TCP."""
    got = as_dict(link_variables(endpoint([(6381, "tcp"), (6379, "tcp"), (6380, "tcp")])))
    assert {k: v for k, v in got.items() if k.endswith(("_START", "_END"))} == range_vars(
        "DOCKER", 6379, 6381, "tcp"
    )
    assert got["DOCKER_PORT"] == f"tcp://{IP}:6379"


def test_every_port_of_a_range_keeps_its_own_four_variables():
    """Ranges add variables; they never replace the per-port ones."""
    got = as_dict(link_variables(endpoint([(6379, "tcp"), (6380, "tcp"), (6381, "tcp")])))
    for number in (6379, 6380, 6381):
        assert per_port("DOCKER", number, "tcp").items() <= got.items()


def name_set(ports: Iterable[Tuple[int, str]], alias: str = "docker") -> Set[str]:
    return {name for name, _ in link_variables(endpoint(ports, alias=alias))}


@pytest.mark.parametrize(
    ("ports", "default"),
    [
        pytest.param([(53, "udp"), (8080, "tcp")], "tcp://{ip}:8080", id="tcp-beats-a-lower-udp"),
        pytest.param([(9, "udp"), (9, "sctp")], "sctp://{ip}:9", id="sctp-sorts-before-udp"),
        pytest.param([(90, "udp"), (10, "udp")], "udp://{ip}:10", id="udp-only-lowest-udp"),
        pytest.param([(2905, "sctp")], "sctp://{ip}:2905", id="sctp-only"),
        pytest.param([(443, "tcp"), (80, "tcp")], "tcp://{ip}:80", id="lowest-tcp-number"),
        pytest.param([(1, "udp"), (65535, "tcp")], "tcp://{ip}:65535", id="any-tcp-beats-udp"),
    ],
)
def test_the_default_port_is_the_first_in_tcp_then_protocol_then_number_order(ports, default):
    """<ALIAS>_PORT is the first port: TCP first, then by protocol name, each by number."""
    got = as_dict(link_variables(endpoint(ports)))
    assert got["DOCKER_PORT"] == default.format(ip=IP)


@pytest.mark.parametrize(
    ("proto", "number"),
    [pytest.param("udp", 53, id="udp"), pytest.param("sctp", 2905, id="sctp")],
)
def test_udp_and_sctp_ports_are_named_with_their_protocol(proto, number):
    """A non-TCP port gets _PORT_<n>_UDP / _SCTP variables with its own scheme."""
    got = as_dict(link_variables(endpoint([(number, proto)])))
    assert per_port("DOCKER", number, proto).items() <= got.items()
    assert got["DOCKER_PORT"] == f"{proto}://{IP}:{number}"


def test_the_same_number_over_tcp_and_udp_gives_two_sets_of_variables():
    """53/tcp and 53/udp are two ports; no range joins them."""
    got = as_dict(link_variables(endpoint([(53, "udp"), (53, "tcp")])))
    assert per_port("DOCKER", 53, "tcp").items() <= got.items()
    assert per_port("DOCKER", 53, "udp").items() <= got.items()
    assert not [k for k in got if k.endswith(("_START", "_END"))]


@pytest.mark.parametrize(
    ("ports", "ranges"),
    [
        pytest.param([(80, "tcp"), (443, "tcp"), (8080, "tcp")], [], id="non-consecutive"),
        pytest.param([(80, "tcp"), (82, "tcp")], [], id="gap-of-one"),
        pytest.param([(80, "tcp"), (81, "tcp")], [(80, 81, "tcp")], id="a-pair-is-a-range"),
        pytest.param(
            [(80, "tcp"), (81, "tcp"), (90, "tcp"), (91, "tcp"), (92, "tcp")],
            [(80, 81, "tcp"), (90, 92, "tcp")],
            id="two-separate-runs",
        ),
        pytest.param(
            [(80, "tcp"), (81, "tcp"), (82, "udp"), (83, "udp")],
            [(80, 81, "tcp"), (82, 83, "udp")],
            id="a-protocol-change-breaks-the-run",
        ),
        pytest.param(
            [(80, "tcp"), (81, "udp"), (82, "tcp")], [], id="interleaved-protocols-no-run"
        ),
        pytest.param(
            [(5000, "udp"), (5001, "udp"), (5000, "tcp")],
            [(5000, 5001, "udp")],
            id="udp-run-beside-a-lone-tcp",
        ),
        pytest.param(
            [(1, "sctp"), (2, "sctp"), (3, "udp"), (4, "udp")],
            [(1, 2, "sctp"), (3, 4, "udp")],
            id="sctp-run-then-udp-run",
        ),
        pytest.param(
            [(7, "tcp"), (8, "tcp"), (9, "tcp"), (10, "tcp")], [(7, 10, "tcp")], id="run-at-end"
        ),
    ],
)
def test_range_variables_exist_exactly_for_runs_of_consecutive_same_protocol_ports(
    ports, ranges
):
    """Two or more consecutive ports of one protocol make a range; nothing else does."""
    got = as_dict(link_variables(endpoint(ports)))
    expected: Dict[str, str] = {}
    for first, last, proto in ranges:
        expected.update(range_vars("DOCKER", first, last, proto))
    assert {k: v for k, v in got.items() if k.endswith(("_START", "_END"))} == expected
    for number, proto in ports:
        assert per_port("DOCKER", number, proto).items() <= got.items()


# ---------------------------------------------------------------------------------------------
# The child's environment
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("entry", "expected"),
    [
        pytest.param("PASSWORD=gordon", {"DOCKER_ENV_PASSWORD": "gordon"}, id="plain"),
        pytest.param("OPTS=a=b=c", {"DOCKER_ENV_OPTS": "a=b=c"}, id="split-at-first-equals"),
        pytest.param("EMPTY=", {"DOCKER_ENV_EMPTY": ""}, id="empty-value-kept"),
        pytest.param("NOVALUE", {}, id="no-equals-dropped"),
        pytest.param("HOME=/root", {}, id="home-left-out"),
        pytest.param("PATH=/usr/bin:/bin", {}, id="path-left-out"),
        pytest.param("mode=m3ua", {"DOCKER_ENV_mode": "m3ua"}, id="key-case-kept"),
        pytest.param("Path=/x", {"DOCKER_ENV_Path": "/x"}, id="only-exact-PATH-left-out"),
        pytest.param("HOME_DIR=/h", {"DOCKER_ENV_HOME_DIR": "/h"}, id="HOME-prefix-kept"),
        pytest.param("GREETING=hi there", {"DOCKER_ENV_GREETING": "hi there"}, id="spaces"),
    ],
)
def test_child_variables_are_exported_as_alias_env_key(entry, expected):
    """<ALIAS>_ENV_<key>: split at the first '=', case kept, HOME and PATH left out."""
    got = as_dict(link_variables(endpoint([], env=[entry])))
    assert {k: v for k, v in got.items() if "_ENV_" in k} == expected


def test_a_child_without_ports_still_exports_its_name_and_env():
    """No exposed ports: no _PORT variables, but _NAME and _ENV_ are there."""
    got = as_dict(link_variables(endpoint([], env=["A=1"])))
    assert got == {"DOCKER_NAME": "/db/docker", "DOCKER_ENV_A": "1"}


# ---------------------------------------------------------------------------------------------
# build_environment
# ---------------------------------------------------------------------------------------------


def test_the_parents_own_variables_win_over_link_variables():
    """A variable the parent sets itself is kept, even when a link would write the same name."""
    ep = endpoint([(6379, "tcp")], alias="redis", env=["PASSWORD=child"])
    parent = {"REDIS_ENV_PASSWORD": "parent", "PATH": "/bin", "REDIS_PORT": "tcp://override:1"}
    env = build_environment(parent, link_environment([ep]))
    assert env["REDIS_ENV_PASSWORD"] == "parent"
    assert env["REDIS_PORT"] == "tcp://override:1"
    assert env["PATH"] == "/bin"
    assert env["REDIS_PORT_6379_TCP_ADDR"] == IP


def test_build_environment_holds_every_links_variables_and_the_parents():
    """Two links and the parent's variables all end up in one environment."""
    eps = [endpoint([(6379, "tcp")], alias="redis"), endpoint([(5432, "tcp")], alias="pg")]
    env = build_environment({"LANG": "C"}, link_environment(eps))
    expected = {"LANG": "C", **as_dict(link_variables(eps[0])), **as_dict(link_variables(eps[1]))}
    assert env == expected


def test_build_environment_does_not_change_the_parent_mapping():
    """The parent's environment is read, not modified."""
    parent = {"LANG": "C"}
    build_environment(parent, link_environment([endpoint([(1, "tcp")])]))
    assert parent == {"LANG": "C"}


# ---------------------------------------------------------------------------------------------
# Port.parse and exposed_ports
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        pytest.param("6379/tcp", [Port(6379, "tcp")], id="tcp"),
        pytest.param("53/udp", [Port(53, "udp")], id="udp"),
        pytest.param("2905/sctp", [Port(2905, "sctp")], id="sctp"),
        pytest.param("8080", [Port(8080, "tcp")], id="bare-number-is-tcp"),
        pytest.param("53/UDP", [Port(53, "udp")], id="protocol-lower-cased"),
        pytest.param(
            "7000-7002/tcp", [Port(7000), Port(7001), Port(7002)], id="range-every-port"
        ),
    ],
)
def test_port_parse_reads_dockers_port_notation(text, expected):
    """``<n>[/<proto>]`` and ``<n>-<m>[/<proto>]``, TCP when no protocol is named."""
    assert Port.parse(text) == expected


def test_exposed_ports_sorts_and_deduplicates_an_inspect_key_set():
    """ExposedPorts keys come back once each, in Docker's order (TCP first)."""
    exposed = {"53/udp": {}, "8080/tcp": {}, "80/tcp": {}, "80": {}, "9/sctp": {}}
    got = exposed_ports({"Config": {"ExposedPorts": exposed}})
    assert got == [Port(80), Port(8080), Port(9, "sctp"), Port(53, "udp")]


# ---------------------------------------------------------------------------------------------
# Properties
# ---------------------------------------------------------------------------------------------

PROPERTY = settings(max_examples=100, deadline=None)
PROTOS = ["tcp", "udp", "sctp"]
port_numbers = st.one_of(st.integers(6370, 6385), st.integers(1, 65535))
port_sets = st.sets(st.tuples(port_numbers, st.sampled_from(PROTOS)), max_size=12)
ALIAS_CHARS = "abcxyzABCXYZ0189_-"
aliases = st.text(alphabet=ALIAS_CHARS, min_size=1, max_size=12)
env_entries = st.lists(
    st.one_of(
        st.sampled_from(["HOME=/root", "PATH=/bin", "NOVALUE", "=x", "A=", "B=c=d"]),
        st.text(alphabet="ABab_=1 -", max_size=10),
    ),
    max_size=6,
)


def sort_key(port: Tuple[int, str]) -> Tuple[bool, str, int]:
    return (port[1] != "tcp", port[1], port[0])


def run_starts(ports: Set[Tuple[int, str]]) -> Dict[Tuple[int, str], int]:
    """Each run of two or more consecutive same-protocol ports: its first port -> its last."""
    starts = {}
    for number, proto in ports:
        if (number - 1, proto) in ports or (number + 1, proto) not in ports:
            continue
        last = number
        while (last + 1, proto) in ports:
            last += 1
        starts[(number, proto)] = last
    return starts


@PROPERTY
@given(ports=port_sets)
def test_every_port_has_exactly_its_four_variables_with_consistent_values(ports):
    """For each port, the names under _PORT_<n>_<PROTO> are its four (plus a range's four)."""
    got = as_dict(link_variables(endpoint(ports)))
    starts = run_starts(ports)
    for number, proto in ports:
        key = f"DOCKER_PORT_{number}_{proto.upper()}"
        mine = {k: v for k, v in got.items() if k == key or k.startswith(key + "_")}
        expected = per_port("DOCKER", number, proto)
        if (number, proto) in starts:
            expected.update(range_vars("DOCKER", number, starts[(number, proto)], proto))
        assert mine == expected


@PROPERTY
@given(ports=port_sets)
def test_range_variables_exist_iff_a_run_of_two_or_more_consecutive_ports(ports):
    """_START/_END names are exactly those of the runs' first ports."""
    names = name_set(ports)
    expected = set()
    for (number, proto), last in run_starts(ports).items():
        expected |= set(range_vars("DOCKER", number, last, proto))
    assert {n for n in names if n.endswith(("_START", "_END"))} == expected


@PROPERTY
@given(ports=port_sets)
def test_the_default_port_is_the_minimum_of_the_sort_order(ports):
    """<ALIAS>_PORT is the minimum of (TCP first, protocol name, number); absent without ports."""
    got = as_dict(link_variables(endpoint(ports)))
    if not ports:
        assert "DOCKER_PORT" not in got
        return
    number, proto = min(ports, key=sort_key)
    assert got["DOCKER_PORT"] == f"{proto}://{IP}:{number}"


@PROPERTY
@given(ports=st.lists(st.tuples(port_numbers, st.sampled_from(PROTOS)), max_size=12),
       data=st.data())
def test_the_output_does_not_depend_on_the_order_of_the_ports(ports, data):
    """Any order of the same ports, repeats included, gives the same variables in the same order."""
    shuffled = data.draw(st.permutations(ports))
    assert link_variables(endpoint(ports)) == link_variables(endpoint(shuffled))
    assert link_variables(endpoint(ports)) == link_variables(endpoint(sorted(set(ports))))


@PROPERTY
@given(ports=port_sets, alias=aliases, env=env_entries)
def test_no_variable_is_written_outside_the_alias_namespace(ports, alias, env):
    """Every name starts with <PREFIX>_, the alias upper-cased with '-' made '_'."""
    prefix = alias.upper().replace("-", "_")
    for name, _ in link_variables(endpoint(ports, alias=alias, env=env)):
        assert name.startswith(prefix + "_")


@PROPERTY
@given(
    ports=port_sets,
    alias=aliases,
    parent=st.text(alphabet="abc019_.-", min_size=1, max_size=10),
    ip=st.sampled_from(["172.17.0.2", "10.0.0.5", "fd00::2"]),
    env=env_entries,
)
def test_link_variables_equal_the_moby_oracle(ports, alias, parent, ip, env):
    """The same (name, value) pairs as moby's ToEnv, for any ports, alias, parent and env."""
    ours = link_variables(endpoint(ports, alias=alias, parent=parent, env=env, ip=ip))
    theirs = moby_to_env(f"/{parent}/{alias}", ip, ports, env)
    assert set(ours) == set(theirs)
    assert len(ours) == len(theirs)


def readme_blocks() -> list:
    """The fenced blocks of the README, as text."""
    text = (Path(__file__).resolve().parents[2] / "README.md").read_text()
    return re.findall(r"^```\n(.*?)^```$", text, flags=re.S | re.M)


def test_the_readme_shows_the_example_exactly_as_print_env_prints_it():
    """Same variables, same order, in each of --print-env's env and shell formats."""
    from linkinit.cli import render_variables

    ep = ResolvedLink("redis", "webapp", "172.17.0.2", (Port(6379),), ("PASSWORD=dockerpass",))
    variables = dict(link_variables(ep))
    assert list(variables.items()) == list(REDIS_LINK_ENV.items())
    blocks = readme_blocks()
    assert render_variables(variables, "env") in blocks
    assert render_variables(variables, "shell") in blocks
