"""Helpers for link tests: children with exposed ports, parents that run linkinit."""

from __future__ import annotations

from typing import Any, Optional, Sequence

import docker

from .conftest import SESSION, SOCKET_VOLUME, TEST_LABEL


def start_child(
    client: docker.DockerClient,
    image: str,
    name: str,
    command: Sequence[str] = ("sleep", "300"),
    expose: Sequence[Any] = (),
    environment: Optional[dict] = None,
    network: Optional[str] = None,
    aliases: Sequence[str] = (),
    healthcheck: Optional[dict] = None,
    start: bool = True,
) -> Any:
    """A child exposing ports without publishing them (``docker run --expose``)."""
    networking = None
    if network:
        endpoint = client.api.create_endpoint_config(aliases=list(aliases) or None)
        networking = client.api.create_networking_config({network: endpoint})
    created = client.api.create_container(
        image,
        list(command),
        name=name,
        ports=list(expose) or None,
        environment=environment,
        labels={TEST_LABEL: SESSION},
        healthcheck=healthcheck,
        host_config=client.api.create_host_config(network_mode=network or "default"),
        networking_config=networking,
    )
    container = client.containers.get(created["Id"])
    if start:
        container.start()
    return container


def run_parent(
    run_container: Any,
    name: str,
    args: Sequence[str],
    labels: Optional[dict] = None,
    socket: bool = True,
    **kwargs: Any,
) -> Any:
    """A parent running ``linkinit ARGS`` with the Engine socket mounted."""
    volumes = dict(kwargs.pop("volumes", {}) or {})
    if socket:
        volumes.update(getattr(run_container, "socket_volume", SOCKET_VOLUME))
    return run_container(["linkinit", *args], name=name, labels=labels or {},
                         volumes=volumes, **kwargs)


def link_variables(env: dict, prefix: str) -> dict:
    return {key: value for key, value in env.items() if key.startswith(prefix + "_")}
