"""linkinit holds at most 10 MB resident as PID 1 while COMMAND runs (the SDK is not there)."""

from __future__ import annotations

from .pid1_helpers import (
    children,
    containers_fixture,
    host_pid,
    run_pid1,
    status_field,
    wait_child_named,
)

containers = containers_fixture()

TARGET_KB = 10 * 1024


def test_pid1_resident_memory_is_at_most_10_mb_while_command_runs(containers):
    """Once `sleep` runs as PID 1's child, PID 1's VmRSS is <= 10 MB."""
    container = run_pid1(containers, ["sleep", "60"])
    pid = host_pid(container)
    wait_child_named(pid, "sleep")
    rss_kb = int(status_field(pid, "VmRSS").split()[0])
    assert rss_kb <= TARGET_KB, f"PID 1 holds {rss_kb} kB"
    assert len(children(pid)) == 1  # the resolver's child is gone: only COMMAND is left
