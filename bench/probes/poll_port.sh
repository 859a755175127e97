#!/bin/sh
# A dockerize-style waiter for a port: try once a second (at most 60 times), then exec COMMAND.
# Usage: poll_port.sh HOST PORT COMMAND...
host=$1 port=$2
shift 2
echo "poll_port: waiting for $host:$port" >&2
i=0
while [ "$i" -lt 60 ]; do
    if nc -z -w 1 "$host" "$port" 2>/dev/null; then
        exec "$@"
    fi
    sleep 1
    i=$((i + 1))
done
exit 75
