"""The README's first command plays the whole story on this machine."""

from __future__ import annotations

import subprocess

import pytest

from .conftest import ROOT


def image_id(docker_client, tag: str) -> str:
    return docker_client.images.get(tag).id


@pytest.mark.timeout(600)  # the demo twice: two image builds and two stories
def test_demo_links_a_real_redis_to_the_web_app(docker_client):
    """scripts/demo builds both images, starts its proxy, waits for Redis, sets and reads a
    key, lists links; run twice, it leaves no untagged image behind."""
    first = subprocess.run([str(ROOT / "scripts" / "demo")], capture_output=True, timeout=600)
    assert first.returncode == 0, first.stderr
    replaced = image_id(docker_client, "webapp")
    done = subprocess.run([str(ROOT / "scripts" / "demo")], capture_output=True, text=True,
                          timeout=600)
    assert done.returncode == 0, done.stdout + done.stderr
    lines = done.stdout.splitlines()
    assert "REDIS_ENV_PASSWORD=dockerpass" in lines
    assert any(line.startswith("webapp: SET greeting at tcp://") and
               line.endswith("GET greeting -> hello from webapp") for line in lines)
    assert any(line.split()[:1] == ["webapp/redis"] for line in lines)
    assert "== demo done" in lines
    assert "== on the host: linkinit proxy (each container sees only itself and its links)" \
        in lines  # the web app reached the Engine through the proxy, no socket mounted
    assert image_id(docker_client, "webapp") != replaced, "the second build changed nothing"
    assert replaced not in {image.id for image in docker_client.images.list(all=True)}
