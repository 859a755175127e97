"""The environment inside a real parent container is the one Docker's own links made."""

from __future__ import annotations

import json
import shlex

import pytest

from .conftest import SESSION, TEST_LABEL
from .dockerkit import env_lines, output, wait_exit
from .linkkit import link_variables, run_parent, start_child

pytestmark = pytest.mark.engines("docker", "podman")

TCP_PORTS = [6379, 6380, 6381, 8080]
MIXED_PORTS = [6379, 6380, (53, "udp"), (54, "udp"), (9, "sctp")]
CHILD_ENV = {"PASSWORD": "dockerpass", "EMPTY": "", "EQUALS": "a=b", "lower_case": "kept"}


def dockers_own_links(docker, image, child_name, parent_name, twin=None):
    """What Docker 20.10's own ``--link`` gives a parent (the reference we must match), and
    the child's IP on Docker. ``twin``: start_child's arguments, to make the child on Docker
    too when the engine under test is another (Podman has no ``--link`` to compare with)."""
    made = []
    try:
        if twin is not None:
            made.append(start_child(docker.client, image, child_name, **twin))
        parent = docker.client.containers.run(
            image, ["env"], name=parent_name, links={child_name: "redis"},
            labels={TEST_LABEL: SESSION}, detach=True)
        made.append(parent)
        assert wait_exit(parent) == 0
        env = env_lines(output(parent))
        child = docker.client.api.inspect_container(child_name)
    finally:
        for container in made:
            container.remove(force=True)
    return link_variables(env, "REDIS"), child["NetworkSettings"]["Networks"]["bridge"][
        "IPAddress"]


def with_address(variables, old, new):
    """The variables with the child's address on one engine replaced by its address on another."""
    return {key: new if value == old else value.replace(f"//{old}:", f"//{new}:")
            for key, value in variables.items()}


def test_variables_match_dockers_own_links_for_several_ports(
    engine, docker_engine, docker_client, linkinit_image, run_container, unique,
    tmp_path_factory,
):
    """Name for name and value for value: a port range, a lone port, the child's env.

    The reference is Docker's own ``--link`` (on Podman: for the same child made on Docker,
    its address replaced). Docker 20.10 sorted ports by number alone, so only TCP ports are
    compared here; moby v28+ (our contract) puts TCP first, which the mixed-protocol test
    below checks against the rules written out.
    """
    twin = {"expose": TCP_PORTS, "environment": CHILD_ENV}
    child = start_child(docker_client, linkinit_image, unique("db"), **twin)
    parent_name = unique("web")
    expected, docker_ip = dockers_own_links(
        docker_engine, docker_engine.image(tmp_path_factory), child.name, parent_name,
        twin=None if engine is docker_engine else twin)
    assert "REDIS_PORT_6379_TCP_START" in expected  # the reference itself has ranges
    child.reload()
    ip = child.attrs["NetworkSettings"]["Networks"][engine.default_network]["IPAddress"]

    parent = run_parent(run_container, parent_name, ["--", "env"],
                        labels={"link.redis": child.name, "link.redis.wait": "started"})
    assert wait_exit(parent) == 0, output(parent, stderr=True)
    assert link_variables(env_lines(output(parent)), "REDIS") == with_address(
        expected, docker_ip, ip)


def test_udp_and_sctp_ports_follow_moby_v28_order(
    engine, docker_client, linkinit_image, run_container, unique
):
    """TCP first then protocol name (sctp before udp); a UDP run gets its range variables."""
    sctp = engine.name != "podman"  # Podman 4.3 refuses to expose SCTP ports
    child = start_child(docker_client, linkinit_image, unique("db"),
                        expose=MIXED_PORTS if sctp else MIXED_PORTS[:-1])
    child.reload()
    ip = child.attrs["NetworkSettings"]["Networks"][engine.default_network]["IPAddress"]
    parent = run_parent(run_container, unique("web"), ["--print-env"],
                        labels={"link.dns": child.name, "link.dns.wait": "started"})
    assert wait_exit(parent) == 0, output(parent, stderr=True)
    env = env_lines(output(parent))
    assert env["DNS_PORT"] == f"tcp://{ip}:6379"
    assert env["DNS_PORT_6379_TCP_END"] == f"tcp://{ip}:6380"
    assert env["DNS_PORT_53_UDP_START"] == f"udp://{ip}:53"
    assert env["DNS_PORT_53_UDP_PORT_END"] == "54"
    if sctp:
        assert env["DNS_PORT_9_SCTP"] == f"sctp://{ip}:9"
        assert env["DNS_PORT_9_SCTP_PROTO"] == "sctp"
        assert "DNS_PORT_9_SCTP_START" not in env
    ports = [key for key in output(parent).split() if key.endswith("_PROTO=tcp")
             or key.endswith("_PROTO=udp") or key.endswith("_PROTO=sctp")]
    assert [p.split("=")[1] for p in ports] == ["tcp", "tcp", *(["sctp"] * sctp), "udp", "udp"]


def test_the_story_redis_with_a_password(docker_client, linkinit_image, run_container, unique):
    """The README story: the parent sets and reads a key through the link variables."""
    child = start_child(
        docker_client, linkinit_image, unique("db1"), expose=[6379],
        environment={"PASSWORD": "dockerpass"},
        command=["redis-server", "--requirepass", "dockerpass", "--protected-mode", "no"],
    )
    script = (
        'redis-cli -h "$REDIS_PORT_6379_TCP_ADDR" -p "$REDIS_PORT_6379_TCP_PORT" '
        '-a "$REDIS_ENV_PASSWORD" --no-auth-warning set greeting hello && '
        'redis-cli -h redis -a "$REDIS_ENV_PASSWORD" --no-auth-warning get greeting'
    )
    parent = run_parent(run_container, unique("webapp"), ["--", "sh", "-c", script],
                        labels={"link.redis": child.name})
    assert wait_exit(parent) == 0, output(parent, stderr=True)
    assert output(parent).split() == ["OK", "hello"]


def test_hosts_file_names_alias_hostname_and_child(
    engine, docker_client, linkinit_image, run_container, unique
):
    """/etc/hosts gets ``<ip>\\t<alias> <child-hostname> <child-name>`` as Docker wrote it."""
    child = start_child(docker_client, linkinit_image, unique("db"), expose=[6379])
    child.reload()
    ip = child.attrs["NetworkSettings"]["Networks"][engine.default_network]["IPAddress"]
    hostname = child.attrs["Config"]["Hostname"]
    parent = run_parent(run_container, unique("web"), ["--", "cat", "/etc/hosts"],
                        labels={"link.db": child.name, "link.db.wait": "started"})
    assert wait_exit(parent) == 0, output(parent, stderr=True)
    assert f"{ip}\tdb {hostname} {child.name}" in output(parent).splitlines()


def test_read_only_container_runs_without_hosts_lines(
    docker_client, linkinit_image, run_container, unique
):
    """With --read-only /etc/hosts cannot be written: no lines, no error, COMMAND runs."""
    child = start_child(docker_client, linkinit_image, unique("db"), expose=[6379])
    parent = run_parent(run_container, unique("web"),
                        ["--", "sh", "-c", "grep -c '\tdb ' /etc/hosts; echo $DB_PORT"],
                        read_only=True, labels={"link.db": child.name, "link.db.wait": "started"})
    assert wait_exit(parent) == 0, output(parent, stderr=True)
    assert output(parent).splitlines()[0] == "0"
    assert output(parent).splitlines()[1].endswith(":6379")
    assert "Traceback" not in output(parent, stdout=False, stderr=True)


def test_child_on_a_user_defined_network_found_by_its_alias(
    docker_client, linkinit_image, run_container, make_network, unique
):
    """A compose-style child (name proj-db1-1, alias db1) is found by alias, with that IP."""
    network = make_network(unique("net"))
    child = start_child(docker_client, linkinit_image, unique("proj-db1"), expose=[5432],
                        network=network.name, aliases=["db1"])
    child.reload()
    ip = child.attrs["NetworkSettings"]["Networks"][network.name]["IPAddress"]
    parent = run_parent(run_container, unique("web"), ["--", "env"], network=network.name,
                        labels={"link.db": "db1", "link.db.wait": "started"})
    assert wait_exit(parent) == 0, output(parent, stderr=True)
    env = env_lines(output(parent))
    assert env["DB_PORT"] == f"tcp://{ip}:5432"
    assert env["DB_PORT_5432_TCP_ADDR"] == ip


def test_parent_variables_win_over_link_variables(
    docker_client, linkinit_image, run_container, unique
):
    """A variable the parent sets itself is not overwritten by a link."""
    child = start_child(docker_client, linkinit_image, unique("db"), expose=[6379])
    parent = run_parent(run_container, unique("web"), ["--", "env"],
                        environment={"REDIS_PORT": "tcp://mine:1"},
                        labels={"link.redis": child.name, "link.redis.wait": "started"})
    assert wait_exit(parent) == 0, output(parent, stderr=True)
    env = env_lines(output(parent))
    assert env["REDIS_PORT"] == "tcp://mine:1"
    assert env["REDIS_PORT_6379_TCP_PORT"] == "6379"


@pytest.mark.engines("docker")
def test_command_gets_the_containers_environment_untouched(run_container, unique):
    """Without LANG, Python adds LC_CTYPE to its own environ; COMMAND must not inherit it."""
    parent = run_parent(run_container, unique("web"), ["--", "env"], socket=True,
                        environment={"LANG": "", "ODD": "a=b=c", "EMPTY": ""})
    assert wait_exit(parent) == 0, output(parent, stderr=True)
    env = env_lines(output(parent))
    assert "LC_CTYPE" not in env
    assert env["ODD"] == "a=b=c"
    assert env["EMPTY"] == ""


def test_flag_link_overrides_the_label_for_the_same_alias(
    docker_client, linkinit_image, run_container, unique
):
    """--link child:alias wins over link.alias=...: flags over file over labels."""
    first = start_child(docker_client, linkinit_image, unique("one"), expose=[1111])
    second = start_child(docker_client, linkinit_image, unique("two"), expose=[2222],
                         command=["nc", "-lk", "2222"])  # a flag's link waits for the port
    parent = run_parent(run_container, unique("web"),
                        ["--link", f"{second.name}:db", "--timeout", "20", "--print-env"],
                        labels={"link.db": first.name, "link.db.wait": "started"})
    assert wait_exit(parent) == 0, output(parent, stderr=True)
    env = env_lines(output(parent))
    assert env["DB_PORT_2222_TCP_PORT"] == "2222"
    assert "DB_PORT_1111_TCP" not in env


def test_yaml_file_declares_links(docker_client, linkinit_image, run_container, unique,
                                  tmp_path):
    """/etc/linkinit.yaml declares links like labels do."""
    child = start_child(docker_client, linkinit_image, unique("db"), expose=[6379])
    config = tmp_path / "linkinit.yaml"
    config.write_text(f"links:\n  cache: {{container: {child.name}, wait: started}}\n")
    parent = run_parent(run_container, unique("web"), ["--print-env"],
                        volumes={str(config): {"bind": "/etc/linkinit.yaml", "mode": "ro"}})
    assert wait_exit(parent) == 0, output(parent, stderr=True)
    assert env_lines(output(parent))["CACHE_PORT_6379_TCP_PORT"] == "6379"


def test_print_env_formats(docker_client, linkinit_image, run_container, unique):
    """--format json is an object; --format shell lines can be eval'd by sh."""
    child = start_child(docker_client, linkinit_image, unique("db"), expose=[6379],
                        environment={"NOTE": "two words; $HOME"})
    labels = {"link.redis": child.name, "link.redis.wait": "started"}
    as_json = run_parent(run_container, unique("j"), ["--print-env", "--format", "json"],
                         labels=labels)
    assert wait_exit(as_json) == 0, output(as_json, stderr=True)
    assert json.loads(output(as_json))["REDIS_ENV_NOTE"] == "two words; $HOME"

    script = 'eval "$(linkinit --print-env --format shell)" && printf %s "$REDIS_ENV_NOTE"'
    as_shell = run_container(["sh", "-c", script], name=unique("s"), labels=labels,
                             volumes=run_container.socket_volume)
    assert wait_exit(as_shell) == 0, output(as_shell, stderr=True)
    assert output(as_shell) == "two words; $HOME"
    assert shlex.split(output(as_shell)) == ["two", "words;", "$HOME"]


def test_parent_finds_itself_when_its_hostname_is_not_its_id(
    docker_client, linkinit_image, run_container, unique
):
    """--hostname hides the ID the hostname fallback would use: the engine's own marks on
    the container (Docker's containers/<id> mounts; Podman's overlay-containers/<id>
    mounts and libpod-<id> cgroups) still name it."""
    child = start_child(docker_client, linkinit_image, unique("db"), expose=[6379])
    parent = run_parent(run_container, unique("web"), ["--print-env"], hostname="elsewhere",
                        labels={"link.db": child.name, "link.db.wait": "started"})
    assert wait_exit(parent) == 0, output(parent, stderr=True)
    assert env_lines(output(parent))["DB_PORT_6379_TCP_PORT"] == "6379"


def test_parent_on_the_host_network_reaches_its_child(
    engine, docker_client, linkinit_image, run_container, unique
):
    """A parent on the host's network gets the child's bridge address (Podman shows such a
    parent with no networks at all; linkinit reads it as Docker shows it, on "host")."""
    child = start_child(docker_client, linkinit_image, unique("db"), expose=[6379],
                        command=["nc", "-lk", "6379"])
    child.reload()
    ip = child.attrs["NetworkSettings"]["Networks"][engine.default_network]["IPAddress"]
    parent = run_parent(run_container, unique("web"), ["--timeout", "30", "--print-env"],
                        network_mode="host", labels={"link.db": child.name})
    assert wait_exit(parent) == 0, output(parent, stderr=True)
    assert env_lines(output(parent))["DB_PORT"] == f"tcp://{ip}:6379"
