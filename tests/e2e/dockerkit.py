"""Small helpers for end-to-end tests: bounded waits and reading a container's output."""

from __future__ import annotations

from typing import Any, Callable

from tests.support.processes import wait_for


def wait_exit(container: Any, timeout: float = 60) -> int:
    """The container's exit status; fails the test rather than hang past ``timeout``."""
    result = container.wait(timeout=timeout)
    return int(result["StatusCode"])


def output(container: Any, stdout: bool = True, stderr: bool = False) -> str:
    return container.logs(stdout=stdout, stderr=stderr).decode(errors="replace")


def wait_until(predicate: Callable[[], Any], timeout: float = 30, what: str = "condition") -> Any:
    """Poll ``predicate`` until it returns something true, at most ``timeout`` seconds."""
    return wait_for(predicate, timeout, what)


def env_lines(text: str) -> dict[str, str]:
    """``KEY=VALUE`` lines (as ``env`` or ``--print-env`` print) as a dict."""
    return dict(line.split("=", 1) for line in text.splitlines() if "=" in line)
