"""The client library reads the Docker-link-style variables Kubernetes writes for services.

The kubelet (``pkg/kubelet/envvars``, ``FromServices``) gives every container, for each
service of its namespace with a cluster IP, ``<SVC>_SERVICE_HOST``, ``<SVC>_SERVICE_PORT``
(the first port), ``<SVC>_SERVICE_PORT_<NAME>`` per named port, and Docker's port
variables: ``<SVC>_PORT`` (the first port *as the spec lists it*) and per port
``_PORT_<n>_<PROTO>`` with ``_PROTO``, ``_PORT``, ``_ADDR``; IPv6 addresses bracketed in
URLs. No ``_NAME``, no ``_ENV_``, no port ranges. ``KUBELET_TEST_ENV`` is the expected output
of the kubelet's own test (``envvars_test.go``, TestFromServices); ``kubelet_env`` restates
the format so hypothesis can vary services.
"""

from __future__ import annotations

import io
from typing import Dict, List, Tuple

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import linkinit
from linkinit import Endpoint, LinkError
from tests.support.kubelet import REDIS_SERVICE

KUBELET_TEST_ENV = {
    "FOO_BAR_SERVICE_HOST": "1.2.3.4",
    "FOO_BAR_SERVICE_PORT": "8080",
    "FOO_BAR_PORT": "tcp://1.2.3.4:8080",
    "FOO_BAR_PORT_8080_TCP": "tcp://1.2.3.4:8080",
    "FOO_BAR_PORT_8080_TCP_PROTO": "tcp",
    "FOO_BAR_PORT_8080_TCP_PORT": "8080",
    "FOO_BAR_PORT_8080_TCP_ADDR": "1.2.3.4",
    "ABC_123_SERVICE_HOST": "5.6.7.8",
    "ABC_123_SERVICE_PORT": "8081",
    "ABC_123_SERVICE_PORT_U_D_P": "8081",
    "ABC_123_SERVICE_PORT_T_C_P": "8081",
    "ABC_123_PORT": "udp://5.6.7.8:8081",
    "ABC_123_PORT_8081_UDP": "udp://5.6.7.8:8081",
    "ABC_123_PORT_8081_UDP_PROTO": "udp",
    "ABC_123_PORT_8081_UDP_PORT": "8081",
    "ABC_123_PORT_8081_UDP_ADDR": "5.6.7.8",
    "ABC_123_PORT_8081_TCP": "tcp://5.6.7.8:8081",
    "ABC_123_PORT_8081_TCP_PROTO": "tcp",
    "ABC_123_PORT_8081_TCP_PORT": "8081",
    "ABC_123_PORT_8081_TCP_ADDR": "5.6.7.8",
    "Q_U_U_X_SERVICE_HOST": "9.8.7.6",
    "Q_U_U_X_SERVICE_PORT": "8082",
    "Q_U_U_X_SERVICE_PORT_8083": "8083",
    "Q_U_U_X_PORT": "tcp://9.8.7.6:8082",
    "Q_U_U_X_PORT_8082_TCP": "tcp://9.8.7.6:8082",
    "Q_U_U_X_PORT_8082_TCP_PROTO": "tcp",
    "Q_U_U_X_PORT_8082_TCP_PORT": "8082",
    "Q_U_U_X_PORT_8082_TCP_ADDR": "9.8.7.6",
    "Q_U_U_X_PORT_8083_TCP": "tcp://9.8.7.6:8083",
    "Q_U_U_X_PORT_8083_TCP_PROTO": "tcp",
    "Q_U_U_X_PORT_8083_TCP_PORT": "8083",
    "Q_U_U_X_PORT_8083_TCP_ADDR": "9.8.7.6",
    "SUPER_IPV6_SERVICE_HOST": "2001:DB8::",
    "SUPER_IPV6_SERVICE_PORT": "8084",
    "SUPER_IPV6_SERVICE_PORT_U_D_P": "8084",
    "SUPER_IPV6_SERVICE_PORT_T_C_P": "8084",
    "SUPER_IPV6_PORT": "udp://[2001:DB8::]:8084",
    "SUPER_IPV6_PORT_8084_UDP": "udp://[2001:DB8::]:8084",
    "SUPER_IPV6_PORT_8084_UDP_PROTO": "udp",
    "SUPER_IPV6_PORT_8084_UDP_PORT": "8084",
    "SUPER_IPV6_PORT_8084_UDP_ADDR": "2001:DB8::",
    "SUPER_IPV6_PORT_8084_TCP": "tcp://[2001:DB8::]:8084",
    "SUPER_IPV6_PORT_8084_TCP_PROTO": "tcp",
    "SUPER_IPV6_PORT_8084_TCP_PORT": "8084",
    "SUPER_IPV6_PORT_8084_TCP_ADDR": "2001:DB8::",
    "SCTP_1_SERVICE_HOST": "1.2.3.4",
    "SCTP_1_SERVICE_PORT": "777",
    "SCTP_1_PORT": "sctp://1.2.3.4:777",
    "SCTP_1_PORT_777_SCTP": "sctp://1.2.3.4:777",
    "SCTP_1_PORT_777_SCTP_PROTO": "sctp",
    "SCTP_1_PORT_777_SCTP_PORT": "777",
    "SCTP_1_PORT_777_SCTP_ADDR": "1.2.3.4",
}

# A pod in a namespace with a `redis` service, beside what every pod has.
POD_ENV = {
    "HOSTNAME": "webapp-7d9c6b5f4-x2x9z",
    "KUBERNETES_SERVICE_HOST": "10.96.0.1",
    "KUBERNETES_SERVICE_PORT": "443",
    "KUBERNETES_SERVICE_PORT_HTTPS": "443",
    "KUBERNETES_PORT": "tcp://10.96.0.1:443",
    "KUBERNETES_PORT_443_TCP": "tcp://10.96.0.1:443",
    "KUBERNETES_PORT_443_TCP_PROTO": "tcp",
    "KUBERNETES_PORT_443_TCP_PORT": "443",
    "KUBERNETES_PORT_443_TCP_ADDR": "10.96.0.1",
    **REDIS_SERVICE,
    "PATH": "/usr/local/bin:/usr/bin:/bin",
}


def kubelet_env(name: str, cluster_ip: str, ports: List[Tuple[str, int, str]]) -> Dict[str, str]:
    """FromServices for one service: ports as the spec lists them, (name, number, PROTO)."""
    pfx = name.upper().replace("-", "_")
    host = f"[{cluster_ip}]" if ":" in cluster_ip else cluster_ip
    env = {f"{pfx}_SERVICE_HOST": cluster_ip, f"{pfx}_SERVICE_PORT": str(ports[0][1])}
    for port_name, number, _ in ports:
        if port_name:
            env[f"{pfx}_SERVICE_PORT_{port_name.upper().replace('-', '_')}"] = str(number)
    env[f"{pfx}_PORT"] = f"{ports[0][2].lower()}://{host}:{ports[0][1]}"
    for _, number, proto in ports:
        base = f"{pfx}_PORT_{number}_{proto}"
        env[base] = f"{proto.lower()}://{host}:{number}"
        env[f"{base}_PROTO"] = proto.lower()
        env[f"{base}_PORT"] = str(number)
        env[f"{base}_ADDR"] = cluster_ip
    return env


def test_require_in_a_pod_returns_the_services_cluster_ip_and_port():
    """`linkinit.require("redis")` in a pod reads REDIS_PORT, as it would for a link."""
    assert linkinit.require("redis", environ=POD_ENV) == ("tcp", "10.96.12.34", 6379)
    assert linkinit.require("redis", port=6379, environ=POD_ENV) == ("tcp", "10.96.12.34", 6379)


def test_links_lists_each_service_of_the_kubelet_test():
    """Every service of the kubelet's own test comes back with its name, IP and ports."""
    found = {link.alias: link for link in linkinit.links(KUBELET_TEST_ENV)}
    assert sorted(found) == ["abc-123", "foo-bar", "q-u-u-x", "sctp-1", "super-ipv6"]
    assert all(link.source == "kubernetes" and link.name == "" and link.env == {}
               for link in found.values())
    assert found["foo-bar"].address == "1.2.3.4"
    assert found["foo-bar"].ports == (Endpoint("tcp", "1.2.3.4", 8080),)
    assert [p.port for p in found["q-u-u-x"].ports] == [8082, 8083]
    assert found["sctp-1"].port() == Endpoint("sctp", "1.2.3.4", 777)


def test_a_services_first_port_leads_even_when_it_is_udp():
    """Kubernetes' <SVC>_PORT is the first port the spec lists (UDP here), not the lowest TCP
    one as Docker chooses: ports[0] and port() follow <SVC>_PORT, like require()."""
    link = next(x for x in linkinit.links(KUBELET_TEST_ENV) if x.alias == "abc-123")
    assert link.ports == (Endpoint("udp", "5.6.7.8", 8081), Endpoint("tcp", "5.6.7.8", 8081))
    assert link.port() == linkinit.require("abc-123", environ=KUBELET_TEST_ENV)
    assert link.port(8081) == Endpoint("tcp", "5.6.7.8", 8081)


def test_an_ipv6_cluster_ip_comes_back_without_brackets():
    """The kubelet brackets IPv6 in URLs (udp://[2001:DB8::]:8084), not in _ADDR."""
    assert linkinit.require("super-ipv6", port=8084, environ=KUBELET_TEST_ENV) == (
        "tcp", "2001:DB8::", 8084)
    link = next(x for x in linkinit.links(KUBELET_TEST_ENV) if x.alias == "super-ipv6")
    assert link.address == "2001:DB8::"


def test_the_api_servers_own_service_is_a_service_too():
    """Every pod has KUBERNETES_SERVICE_HOST: the `kubernetes` service, listed like others."""
    assert [(x.alias, x.address) for x in linkinit.links(POD_ENV)] == [
        ("kubernetes", "10.96.0.1"), ("redis", "10.96.12.34")]


def test_require_env_of_a_service_says_kubernetes_passes_none():
    """No _ENV_ in a pod: the error names the variable and says where the value must come
    from instead."""
    with pytest.raises(LinkError) as raised:
        linkinit.require_env("redis", "password", environ=POD_ENV)
    assert raised.value.variable == "REDIS_ENV_PASSWORD"
    assert str(raised.value) == (
        "linkinit: REDIS_ENV_PASSWORD is not set: 'redis' is a Kubernetes service "
        "(REDIS_SERVICE_HOST), and Kubernetes passes no variables of a service's pods; give "
        "the pod this value yourself (env, a ConfigMap or a Secret)"
    )


def test_service_variables_are_exactly_the_kubelets():
    """What --print-env shows in a pod: every variable the kubelet wrote, nothing else."""
    assert linkinit.service_variables(KUBELET_TEST_ENV) == KUBELET_TEST_ENV
    pod = linkinit.service_variables(POD_ENV)
    assert "HOSTNAME" not in pod and "PATH" not in pod
    assert pod["REDIS_PORT_6379_TCP_ADDR"] == "10.96.12.34"


@pytest.mark.parametrize(
    "environ",
    [
        {"REDIS_SERVICE_HOST": "10.0.0.1"},  # a variable of the user's, no port
        {"REDIS_SERVICE_HOST": "10.0.0.1", "REDIS_SERVICE_PORT": "6379",
         "REDIS_PORT": "tcp://10.0.0.2:6379"},  # the URL names another host
        {"REDIS_SERVICE_HOST": "10.0.0.1", "REDIS_SERVICE_PORT": "tcp://10.0.0.1:6379",
         "REDIS_PORT": "tcp://10.0.0.1:6379"},  # not a port number
    ],
    ids=["host-alone", "other-host", "port-not-a-number"],
)
def test_a_lone_service_host_variable_is_not_a_service(environ):
    """Only the kubelet's three variables together make a service."""
    assert linkinit.links(environ) == []
    assert linkinit.service_variables(environ) == {}


def test_a_docker_link_wins_over_a_service_of_the_same_prefix():
    """REDIS_NAME=/web/redis makes `redis` a Docker link, whatever else is set."""
    env = {**POD_ENV, "REDIS_NAME": "/web/redis", "REDIS_ENV_PASSWORD": "pw"}
    link = next(x for x in linkinit.links(env) if x.alias == "redis")
    assert (link.source, link.env) == ("docker", {"PASSWORD": "pw"})


service_names = st.from_regex(r"[a-z]([a-z0-9-]{0,10}[a-z0-9])?", fullmatch=True)
cluster_ips = st.one_of(
    st.ip_addresses(v=4).map(str),
    st.ip_addresses(v=6).map(lambda ip: str(ip).upper()),
)
service_ports = st.lists(
    st.tuples(
        st.from_regex(r"[a-z]([a-z0-9-]{0,6}[a-z0-9])?", fullmatch=True),
        st.integers(1, 65535),
        st.sampled_from(["TCP", "UDP", "SCTP"]),
    ),
    min_size=1, max_size=4,
    unique_by=(lambda p: p[0], lambda p: (p[1], p[2])),
)


# Drawing services is slowish: on a busy shared machine it exceeds hypothesis' time budgets.
relaxed = settings(suppress_health_check=[HealthCheck.too_slow], deadline=None)


@relaxed
@given(name=service_names, ip=cluster_ips, ports=service_ports)
def test_property_any_service_reads_back_as_the_kubelet_wrote_it(name, ip, ports):
    """For any service name, cluster IP (v4 or v6) and ports, links() gives back the name,
    the IP and every port, the first listed first; require() agrees with it."""
    env = kubelet_env(name, ip, ports)
    (link,) = linkinit.links(env)
    assert (link.alias, link.address, link.source) == (name, ip, "kubernetes")
    assert link.ports[0] == Endpoint(ports[0][2].lower(), ip, ports[0][1])
    assert {(p.proto, p.port) for p in link.ports} == {(pr.lower(), n) for _, n, pr in ports}
    assert linkinit.require(name, environ=env) == link.ports[0]
    for _, number, proto in ports:
        assert linkinit.require(name, port=number, proto=proto, environ=env).ip == ip
    assert linkinit.service_variables(env) == env


@relaxed
@given(first=st.tuples(service_names, cluster_ips, service_ports),
       second=st.tuples(service_names, cluster_ips, service_ports))
def test_property_two_services_keep_their_own_ports(first, second):
    """Two services in one namespace (even `redis` and `redis-port`) do not bleed."""
    if first[0] == second[0]:
        return
    env = kubelet_env(*first)
    other = kubelet_env(*second)
    if set(env) & set(other):
        return  # the flat namespace collides: the kubelet could not tell them apart either
    env.update(other)
    found = {link.alias: link for link in linkinit.links(env)}
    assert set(found) == {first[0], second[0]}
    for name, ip, ports in (first, second):
        assert found[name].address == ip
        assert {(p.proto, p.port) for p in found[name].ports} == {
            (pr.lower(), n) for _, n, pr in ports}


def test_print_env_in_a_pod_shows_the_service_variables(monkeypatch):
    """`linkinit --print-env` with no link declared, in a pod: the kubelet's variables."""
    from linkinit import cli

    monkeypatch.setattr(cli, "resolve_isolated", lambda options, environ: (dict(environ), [], None))
    out = io.StringIO()
    assert cli.print_environment(cli.Options(), POD_ENV, out) == 0
    shown = out.getvalue().splitlines()
    assert "REDIS_SERVICE_HOST=10.96.12.34" in shown
    assert "REDIS_PORT_6379_TCP_ADDR=10.96.12.34" in shown
    assert len(shown) == len(linkinit.service_variables(POD_ENV)) == 15
