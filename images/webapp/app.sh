#!/bin/sh
# The demo's web app without Python (Containerfile.example): it finds Redis through the
# Docker-link variables linkinit exports, sets a key and reads it back with redis-cli.
set -eu
auth="-a $REDIS_ENV_PASSWORD --no-auth-warning"
echo "webapp: REDIS_PORT_6379_TCP_ADDR=$REDIS_PORT_6379_TCP_ADDR"
# shellcheck disable=SC2086 # $auth is two words on purpose
redis-cli -h "$REDIS_PORT_6379_TCP_ADDR" -p "$REDIS_PORT_6379_TCP_PORT" $auth \
    SET greeting "hello from webapp" >/dev/null
# shellcheck disable=SC2086
echo "webapp: GET greeting -> $(redis-cli -h redis $auth GET greeting)"
