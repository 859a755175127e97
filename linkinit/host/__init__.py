"""The host tools: programs that run on the Docker host, never in a parent container."""
