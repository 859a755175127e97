"""What the kubelet gives a pod for a service `redis` (pkg/kubelet/envvars), beside what
every pod has: shared by the library's unit tests and the bundle's end-to-end test."""

from __future__ import annotations

REDIS_SERVICE = {
    "REDIS_SERVICE_HOST": "10.96.12.34",
    "REDIS_SERVICE_PORT": "6379",
    "REDIS_PORT": "tcp://10.96.12.34:6379",
    "REDIS_PORT_6379_TCP": "tcp://10.96.12.34:6379",
    "REDIS_PORT_6379_TCP_PROTO": "tcp",
    "REDIS_PORT_6379_TCP_PORT": "6379",
    "REDIS_PORT_6379_TCP_ADDR": "10.96.12.34",
}
