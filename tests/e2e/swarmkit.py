"""What the swarm tests share (test_swarm_links.py, test_swarm_proxy.py): placements,
the TCP program the children serve, waiting for a task to end, and the story of a parent
deployed before its child."""

from __future__ import annotations

from typing import Any, Callable, Optional

from tests.support.processes import wait_for

HELLO = "/opt/linkinit-tests/tcp_hello.py"
ON_WORKER = ("--constraint", "node.role==worker")
ON_MANAGER = ("--constraint", "node.role==manager")
ONCE = ("--restart-condition", "none")
ENDED = {"complete", "failed", "rejected", "shutdown"}
# The parent's COMMAND: reach the child at the address and port its variables name.
ASK = f'exec python3 {HELLO} ask "$DB_PORT_8080_TCP_ADDR" "$DB_PORT_8080_TCP_PORT" 20'

Logs = Callable[..., str]  # logs(task, stderr=False): what a task's container printed


def serving(image: str, port: int = 8080) -> tuple[str, ...]:
    return (image, "python3", HELLO, "serve", str(port))


def ended_task(swarm: Any, service: str, timeout: float = 120) -> dict:
    """The service's task once it has ended (its command exited), bounded."""

    def ended() -> Optional[dict]:
        return next((task for task in swarm.tasks(service)
                     if task["Status"]["State"] in ENDED), None)

    return wait_for(ended, timeout, f"the task of {service} to end")


def exit_code(task: dict) -> int:
    return int((task["Status"].get("ContainerStatus") or {}).get("ExitCode", -1))


def parent_before_child(swarm: Any, make_service: Callable[..., str], image: str,
                        child: str, parent: tuple[str, ...], child_options: tuple[str, ...],
                        logs: Logs) -> dict:
    """A parent service (``parent``: its name and options) linking ``child`` as ``db``
    before the child exists; once it says it waits, the child (a dnsrr service serving
    8080) is made. Returns the parent's ended task: its COMMAND asked the child (ASK)."""
    name = make_service(*parent, *ONCE, "--container-label", f"link.db={child}",
                        image, "linkinit", "--timeout", "180", "--", "sh", "-c", ASK)

    def waiting() -> bool:
        started = [task for task in swarm.tasks(name)
                   if (task["Status"].get("ContainerStatus") or {}).get("ContainerID")]
        return bool(started) and f"waiting for db ({child}): missing" in logs(
            started[0], stderr=True)

    wait_for(waiting, 90, "the parent to say it waits for its child")
    make_service(child, *child_options, "--endpoint-mode", "dnsrr",
                 "--publish", "mode=host,target=8080", *serving(image))
    return ended_task(swarm, name, 180)
