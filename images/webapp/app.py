"""The demo web app: three lines find Redis, the rest uses it."""

import os

import redis

import linkinit

proto, host, port = linkinit.require("redis")
password = linkinit.require_env("redis", "password")

print(f"webapp: REDIS_PORT_6379_TCP_ADDR={os.environ['REDIS_PORT_6379_TCP_ADDR']}")
print(f"webapp: REDIS_ENV_PASSWORD={os.environ['REDIS_ENV_PASSWORD']}")
client = redis.Redis(host=host, port=port, password=password, socket_timeout=5)
client.set("greeting", "hello from webapp")
print(f"webapp: SET greeting at {proto}://{host}:{port}, GET greeting -> "
      f"{client.get('greeting').decode()}")
print(f"webapp: /etc/hosts knows redis as {open('/etc/hosts').read().split('redis')[0].split()[-1]}")
