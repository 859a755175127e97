"""`linkinit health` as the parent's HEALTHCHECK follows its child: healthy, unhealthy while
the child is stopped, healthy again once it is back at the address COMMAND was given.

(The compose variant, `depends_on: service_healthy` on a linkinit parent, needs Compose v2,
which this machine's test setup does not install yet.)
"""

from __future__ import annotations

from .dockerkit import output, wait_until
from .linkkit import run_parent, start_child

MS = 1_000_000  # healthcheck durations are in nanoseconds
HEALTHCHECK = {"test": ["CMD", "linkinit", "health"], "interval": 300 * MS,
               "timeout": 3000 * MS, "retries": 1}


def health_of(container) -> tuple[str, str]:
    """The parent's health status and what the last check printed."""
    container.reload()
    state = container.attrs["State"].get("Health") or {}
    log = state.get("Log") or [{}]
    return str(state.get("Status")), str(log[-1].get("Output", ""))


def test_health_follows_the_child_stopped_and_started_again(
    docker_client, linkinit_image, run_container, make_network, unique
):
    """healthy -> unhealthy (one line naming the link) -> healthy, with --health-cmd."""
    network = make_network(unique("net"))  # parent and child alone: the child keeps its IP
    child = start_child(docker_client, linkinit_image, unique("db"), expose=[6379],
                        command=["nc", "-lk", "6379"], network=network.name)
    parent = run_parent(run_container, unique("web"), ["--", "sleep", "300"],
                        labels={"link.db": child.name}, network=network.name,
                        healthcheck=HEALTHCHECK)
    seen = wait_until(lambda: (lambda h: h if h[0] == "healthy" else None)(health_of(parent)),
                      timeout=30, what="the parent healthy")
    assert seen[1] == "linkinit: healthy (db)\n", output(parent, stderr=True)
    child.stop(timeout=1)
    # While the child stops, a check may still see it running with its port closed: the
    # line to wait for is the one of the stopped child.
    stopped = ("unhealthy", f"linkinit: unhealthy: db ({child.name}): not running (exited)\n")
    wait_until(lambda: health_of(parent) == stopped, timeout=30,
               what="the parent unhealthy, its child not running")
    child.start()
    wait_until(lambda: health_of(parent)[0] == "healthy", timeout=30,
               what="the parent healthy again")


def test_health_probes_the_port_command_was_given(
    docker_client, linkinit_image, run_container, make_network, unique
):
    """wait=listening: a running child whose port closes makes the parent unhealthy."""
    network = make_network(unique("net"))
    child = start_child(docker_client, linkinit_image, unique("db"), expose=[6379],
                        command=["sh", "-c", "nc -lk 6379 & echo $! > /tmp/nc; exec sleep 300"],
                        network=network.name)
    parent = run_parent(run_container, unique("web"), ["--", "sleep", "300"],
                        labels={"link.db": child.name}, network=network.name)
    wait_until(lambda: parent.exec_run(["linkinit", "health"]).exit_code == 0, timeout=30,
               what="linkinit health exiting 0")
    child.exec_run(["sh", "-c", "kill $(cat /tmp/nc)"])
    result = wait_until(lambda: (lambda r: r if r.exit_code == 1 else None)(
        parent.exec_run(["linkinit", "health"])), timeout=15, what="linkinit health exiting 1")
    assert result.output.decode().startswith(f"linkinit: unhealthy: db ({child.name}): ")
    assert result.output.decode().endswith(":6379 refuses connections\n")
