"""The README's example link: child 172.17.0.2 exposing 6379/tcp with PASSWORD=dockerpass,
linked into the parent ``webapp`` as ``redis``. Shared by the exporter's and the client
library's tests, so both are held to the same documented variables."""

REDIS_LINK_ENV = {
    "REDIS_PORT": "tcp://172.17.0.2:6379",
    "REDIS_PORT_6379_TCP": "tcp://172.17.0.2:6379",
    "REDIS_PORT_6379_TCP_ADDR": "172.17.0.2",
    "REDIS_PORT_6379_TCP_PORT": "6379",
    "REDIS_PORT_6379_TCP_PROTO": "tcp",
    "REDIS_NAME": "/webapp/redis",
    "REDIS_ENV_PASSWORD": "dockerpass",
}
