"""``linkinit proxy`` on the real Engine: parents mount its directory instead of the Engine
socket and see themselves and their linked children, read-only, and nothing else."""

from __future__ import annotations

import concurrent.futures
import json
import time
import urllib.parse
from typing import Any, NamedTuple

import pytest

from .dockerkit import env_lines, output, wait_exit, wait_until
from .linkkit import run_parent, start_child
from .proxykit import IN_CONTAINER_INSPECT_AFTER_EVENT, MOUNT, container_request, proxies

SECRET = "stranger-secret-4711"
pytestmark = pytest.mark.timeout(180)


class Story(NamedTuple):
    proxy: Any
    child: Any
    stranger: Any
    parent: Any
    started: float


@pytest.fixture
def start_proxy():
    yield from proxies()


def events_since(when: float) -> str:
    filters = urllib.parse.quote(json.dumps({"type": ["container"]}))
    return f"/v1.41/events?since={when:.3f}&filters={filters}"


def sleeper(run_container, name: str, proxy, **kwargs):
    """A running container with the proxy's directory mounted and linkinit as PID 1."""
    return run_parent(run_container, name, ["--", "sleep", "300"], socket=False,
                      volumes=proxy.volumes, **kwargs)


@pytest.fixture
def story(docker_client, linkinit_image, run_container, unique, start_proxy):
    """A proxy, a child db1 (Redis with a password), a stranger holding a secret, and a
    running parent linking db1 as redis."""
    started = time.time() - 1
    proxy = start_proxy()
    child = start_child(
        docker_client, linkinit_image, unique("db1"), expose=[6379],
        environment={"PASSWORD": "dockerpass"},
        command=["redis-server", "--requirepass", "dockerpass", "--protected-mode", "no"],
    )
    stranger = start_child(docker_client, linkinit_image, unique("vault"),
                           environment={"VAULT_TOKEN": SECRET})
    parent = sleeper(run_container, unique("webapp"), proxy,
                     labels={"link.redis": child.name, "link.redis.wait": "started"})
    wait_until(lambda: parent.reload() or parent.status == "running", 60, "parent running")
    return Story(proxy, child, stranger, parent, started)


@pytest.mark.engines("docker", "podman")
def test_the_redis_story_through_the_proxy(engine, docker_client, linkinit_image, run_container,
                                           unique, start_proxy):
    """No Engine socket in the parent: linkinit finds the proxy's and the story works (on
    Podman too: the proxy in front of Podman's socket)."""
    proxy = start_proxy(upstream=engine.socket)
    child = start_child(
        docker_client, linkinit_image, unique("db1"), expose=[6379],
        environment={"PASSWORD": "dockerpass"},
        command=["redis-server", "--requirepass", "dockerpass", "--protected-mode", "no"],
    )
    script = (
        "test ! -e /var/run/docker.sock && "
        'redis-cli -h "$REDIS_PORT_6379_TCP_ADDR" -p "$REDIS_PORT_6379_TCP_PORT" '
        '-a "$REDIS_ENV_PASSWORD" --no-auth-warning set greeting hello && '
        'redis-cli -h redis -a "$REDIS_ENV_PASSWORD" --no-auth-warning get greeting'
    )
    parent = run_parent(run_container, unique("webapp"), ["--", "sh", "-c", script],
                        socket=False, volumes=proxy.volumes, labels={"link.redis": child.name})
    assert wait_exit(parent) == 0, output(parent, stderr=True) + proxy.output()
    assert output(parent).split() == ["OK", "hello"]


def test_a_strangers_inspect_is_404_and_its_env_never_shows(story):
    """The stranger is a 404 worded as for a missing container; its secret is in no answer."""
    answers = [
        container_request(story.parent, "GET", f"/v1.41/containers/{story.stranger.name}/json"),
        container_request(story.parent, "GET", f"/containers/{story.stranger.id}/json"),
        container_request(story.parent, "GET", f"/containers/{story.stranger.id[:12]}/json"),
        container_request(story.parent, "GET", "/containers/json?all=1"),
        container_request(story.parent, "GET", events_since(story.started), stream=1.5),
        container_request(story.parent, "GET", f"/containers/{story.parent.id}/json"),
        container_request(story.parent, "GET", f"/containers/{story.child.name}/json"),
    ]
    for refused in answers[:3]:
        assert refused["status"] == 404
        assert "No such container" in refused["body"]["message"]
        assert "link.<alias>=" in refused["body"]["message"]
    missing = container_request(story.parent, "GET", "/containers/no-such-name-at-all/json")
    assert missing["body"]["message"].replace("no-such-name-at-all", story.stranger.name) == \
        answers[0]["body"]["message"]
    assert [a["status"] for a in answers[3:]] == [200, 200, 200, 200]
    assert SECRET not in json.dumps(answers)


def test_writes_and_other_operations_are_refused(story):
    """create, start, exec, any POST: 403 with the rule; logs and images too."""
    for method, path in [
        ("POST", "/v1.41/containers/create"),
        ("POST", f"/containers/{story.child.name}/start"),
        ("POST", f"/containers/{story.child.name}/exec"),
        ("POST", f"/containers/{story.parent.id}/kill"),
        ("DELETE", f"/containers/{story.child.name}"),
        ("GET", f"/containers/{story.child.name}/logs?stdout=1"),
        ("GET", f"/containers/{story.child.name}/archive?path=/etc"),
        ("GET", "/images/json"),
        ("GET", "/info"),
    ]:
        answer = container_request(story.parent, method, path)
        assert answer["status"] == 403, (method, path, answer)
        assert answer["body"]["message"].startswith("linkinit proxy: ")
    story.child.reload()
    assert story.child.status == "running"


def test_the_list_and_events_show_only_the_caller_and_its_children(story):
    """While the parent follows the live stream, the child and the stranger both restart:
    only the child's events reach it."""
    listed = container_request(story.parent, "GET", "/containers/json?all=1")["body"]
    assert {c["Id"] for c in listed} == {story.parent.id, story.child.id}
    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        # ``since`` is taken before the restarts: events that come before the stream is
        # open are replayed to it (the proxy keeps the last ones, as the Engine does)
        following = pool.submit(container_request, story.parent, "GET",
                                events_since(time.time()), 10)
        story.stranger.restart(timeout=1)
        story.child.restart(timeout=1)
        events = following.result(timeout=60)["body"]
    actors = {event["Actor"]["ID"] for event in events}
    assert story.child.id in actors
    assert actors <= {story.parent.id, story.child.id}


def test_an_inspect_after_the_childs_event_shows_what_the_event_says(story):
    """The proxy keeps inspect answers and forgets one when an event names its container: a
    parent woken by its child's restart, inspecting it, sees the new start, not a kept copy."""
    path = f"/containers/{story.child.name}/json"
    before = container_request(story.parent, "GET", path)["body"]["State"]
    assert container_request(story.parent, "GET", path)["body"]["State"] == before
    watch = ["python3", IN_CONTAINER_INSPECT_AFTER_EVENT, f"{MOUNT}/engine.sock",
             story.child.name, "start", "30"]
    output = story.parent.exec_run(watch, stream=True).output
    seen = b""
    for chunk in output:  # the handshake: it says "following" once its stream is open
        seen += chunk
        if b"following\n" in seen:
            break
    assert b"following\n" in seen, seen.decode(errors="replace")
    story.child.restart(timeout=1)
    seen += b"".join(output)  # it exits at the event, or after 30 s saying it saw none
    after = json.loads(seen.decode().strip().splitlines()[-1])
    assert after["Running"] and after["StartedAt"] != before["StartedAt"]
    assert after["Pid"] != before["Pid"]


def test_a_container_with_no_links_sees_only_itself(story, run_container, unique):
    loner = sleeper(run_container, unique("loner"), story.proxy)
    wait_until(lambda: loner.reload() or loner.status == "running", 60, "loner running")
    listed = container_request(loner, "GET", "/containers/json?all=1")["body"]
    assert [c["Id"] for c in listed] == [loner.id]
    refused = container_request(loner, "GET", f"/containers/{story.child.name}/json")
    assert refused["status"] == 404
    assert container_request(loner, "GET", f"/containers/{loner.id}/json")["status"] == 200
    events = container_request(loner, "GET", events_since(story.started), stream=1.5)["body"]
    assert {event["Actor"]["ID"] for event in events} <= {loner.id}


def test_a_child_named_by_its_network_alias_resolves_through_the_proxy(
    docker_client, linkinit_image, run_container, make_network, unique, start_proxy
):
    """Compose names the container proj-db1-1 and gives it the alias db1."""
    proxy = start_proxy()
    network = make_network(unique("net"))
    child = start_child(docker_client, linkinit_image, unique("proj-db1"), expose=[5432],
                        network=network.name, aliases=["db1"])
    child.reload()
    ip = child.attrs["NetworkSettings"]["Networks"][network.name]["IPAddress"]
    parent = run_parent(run_container, unique("web"), ["--print-env"], socket=False,
                        volumes=proxy.volumes, network=network.name,
                        labels={"link.db": "db1", "link.db.wait": "started"})
    assert wait_exit(parent) == 0, output(parent, stderr=True) + proxy.output()
    assert env_lines(output(parent))["DB_PORT"] == f"tcp://{ip}:5432"


def test_a_link_flag_in_the_configured_command_counts(
    docker_client, linkinit_image, run_container, unique, start_proxy
):
    """``--link`` in the Cmd the operator fixed is a declaration as good as a label."""
    proxy = start_proxy()
    child = start_child(docker_client, linkinit_image, unique("db"), expose=[6379],
                        command=["redis-server", "--protected-mode", "no"])
    parent = run_parent(run_container, unique("web"),
                        ["--link", f"{child.name}:db", "--print-env"],
                        socket=False, volumes=proxy.volumes)
    assert wait_exit(parent) == 0, output(parent, stderr=True)
    assert env_lines(output(parent))["DB_PORT"].endswith(":6379")


def test_a_yaml_link_is_no_proof_without_trust_files(
    docker_client, linkinit_image, run_container, unique, start_proxy
):
    """The container can write its own file: the child stays hidden and the message says
    why; --trust-files lets it through."""
    child = start_child(docker_client, linkinit_image, unique("db"), expose=[6379])
    config = f"links: {{db: {{container: {child.name}, wait: started}}}}\n"
    script = f"printf '{config}' > /tmp/links.yaml && linkinit --print-env --timeout 1 " \
             "--config /tmp/links.yaml"
    for args, status in [((), 75), (("--trust-files",), 0)]:
        proxy = start_proxy(*args)
        parent = run_container(["sh", "-c", script], name=unique("web" + str(status)),
                               volumes=proxy.volumes)
        assert wait_exit(parent) == status, output(parent, stderr=True)
        if status:
            assert f"refused GET /v1.41/containers/{child.name}/json" in proxy.output() or \
                f"refused GET /containers/{child.name}/json" in proxy.output()
            assert "missing" in output(parent, stdout=False, stderr=True)


def test_linkinit_links_in_the_configured_environment_counts(
    docker_client, linkinit_image, run_container, unique, start_proxy
):
    """``-e LINKINIT_LINKS=child:alias`` is fixed at create time, as a label is."""
    proxy = start_proxy()
    child = start_child(docker_client, linkinit_image, unique("db"), expose=[6379],
                        command=["redis-server", "--protected-mode", "no"])
    parent = run_parent(run_container, unique("web"), ["--print-env"], socket=False,
                        volumes=proxy.volumes, environment={"LINKINIT_LINKS": f"{child.name}:db"})
    assert wait_exit(parent) == 0, output(parent, stderr=True)
    assert env_lines(output(parent))["DB_PORT"].endswith(":6379")
