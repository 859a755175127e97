"""The README's first command plays the whole story on this machine."""

from __future__ import annotations

import subprocess

from .conftest import ROOT


def test_demo_links_a_real_redis_to_the_web_app(docker_client):
    """scripts/demo builds both images, waits for Redis, sets and reads a key, lists links."""
    done = subprocess.run([str(ROOT / "scripts" / "demo")], capture_output=True, text=True,
                          timeout=600)
    assert done.returncode == 0, done.stdout + done.stderr
    lines = done.stdout.splitlines()
    assert "REDIS_ENV_PASSWORD=dockerpass" in lines
    assert any(line.startswith("webapp: SET greeting at tcp://") and
               line.endswith("GET greeting -> hello from webapp") for line in lines)
    assert any(line.split()[:1] == ["webapp/redis"] for line in lines)
    assert "== demo done" in lines
