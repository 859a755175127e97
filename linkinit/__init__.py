"""linkinit: Docker's container links, back.

The package is both the init (``linkinit -- COMMAND``) and a client library for
applications::

    import linkinit
    proto, ip, port = linkinit.require("redis")            # from REDIS_PORT
    password = linkinit.require_env("redis", "password")   # REDIS_ENV_PASSWORD

The library lives in ``linkinit.client`` and loads on first use (PEP 562): the init imports
this package before it can block signals, and every millisecond before that is a window in
which PID 1 drops a SIGTERM.
"""

__version__ = "0.1.0"

__all__ = [
    "Endpoint",
    "Link",
    "LinkError",
    "__version__",
    "links",
    "prefix",
    "require",
    "require_env",
    "service_variables",
]


def __getattr__(name: str) -> object:
    if name in __all__:
        from linkinit import client

        return getattr(client, name)
    raise AttributeError(f"module 'linkinit' has no attribute {name!r}")


def __dir__() -> list:
    return sorted(set(globals()) | set(__all__))
