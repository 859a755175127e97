"""``linkinit proxy``'s command line: where it listens, and serving until SIGTERM."""

from __future__ import annotations

import asyncio
import collections
import contextlib
import os
import resource
import signal
import socket
import time
import urllib.parse
from typing import Any, Sequence

from aiohttp import web

from linkinit.errors import LinkinitError, UsageError
from linkinit.host.proxy.connections import Connections
from linkinit.host.proxy.directory import Directory
from linkinit.host.proxy.events import EventHub, watchdog
from linkinit.host.proxy.logs import log, loop_exception, quiet_aiohttp
from linkinit.host.proxy.server import Proxy, Server
from linkinit.host.proxy.upstream import DEFAULT_UPSTREAM, Unavailable, Upstream

DEFAULT_LISTEN = "/run/linkinit/engine.sock"
DEFAULT_TCP_PORT = 2375
DEFAULT_MAX_CONNECTIONS = 128
DEFAULT_MAX_STREAMS = 32


def raise_file_limit() -> None:
    """The soft limit of open files raised to the hard one: every caller's connection is a
    descriptor (systemd's default soft limit is 1024)."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft != hard:
        with contextlib.suppress(ValueError, OSError):
            resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))


def prepare_socket(path: str) -> None:
    """Create the proxy's own directory; refuse to take a socket another proxy listens on."""
    directory = os.path.dirname(os.path.abspath(path))
    os.makedirs(directory, mode=0o755, exist_ok=True)
    if not os.path.exists(path):
        return
    probe = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        probe.connect(path)
    except OSError:
        os.unlink(path)  # left by a proxy that died: take its place
        return
    finally:
        probe.close()
    raise UsageError(f"proxy --listen {path}: another process listens there; stop it first")


class Listen(collections.namedtuple("Listen", "text path host port")):
    """Where the proxy listens: a Unix socket ``path``, or TCP ``host`` (None: every
    address) and ``port``; ``text`` as the operator wrote it."""

    __slots__ = ()


def listen_address(text: str) -> Listen:
    """``/run/linkinit/engine.sock``, ``unix:///path`` or ``tcp://ADDRESS:PORT`` (the port
    is 2375 unless given; ``tcp://:2375`` is every address)."""
    if not text.startswith("tcp://"):
        path = text[len("unix://"):] if text.startswith("unix://") else text
        if not path.startswith("/") or "://" in path:
            raise UsageError(f"proxy --listen {text}: give an absolute socket path, "
                             "unix:///path or tcp://ADDRESS:PORT")
        return Listen(text, path, None, 0)
    parsed = urllib.parse.urlsplit(text)
    try:
        port = parsed.port or DEFAULT_TCP_PORT
    except ValueError:
        port = 0
    if not 0 < port < 65536 or parsed.path not in ("", "/") or parsed.query:
        raise UsageError(f"proxy --listen {text}: give tcp://ADDRESS:PORT, e.g. "
                         f"tcp://0.0.0.0:{DEFAULT_TCP_PORT}")
    return Listen(text, "", parsed.hostname or None, port)


async def _start_sites(runner: web.BaseRunner, listens: Sequence[Listen],
                       bound: list[str]) -> None:
    """Each Unix socket (``bound`` collects them, to be removed) and TCP address."""
    for listen in listens:
        if listen.path:
            prepare_socket(listen.path)
            bound.append(listen.path)  # from here on the socket path is ours to remove
            await web.UnixSite(runner, listen.path, shutdown_timeout=1).start()
            os.chmod(listen.path, 0o666)  # anyone may connect; the kernel says who they are
            continue
        try:
            await web.TCPSite(runner, listen.host, listen.port, shutdown_timeout=1,
                              reuse_address=True).start()
        except OSError as error:
            raise UsageError(f"proxy --listen {listen.text}: {error.strerror or error}; "
                             "another process listens there, or the address is not this "
                             "container's") from None


async def _announce(directory: Directory) -> None:
    """Say once, at start, which overlay networks TCP callers are identified on."""
    with contextlib.suppress(Unavailable):
        await directory.callers.addresses.rebuild(time.monotonic())
        book = directory.callers.addresses.book
        networks = ", ".join(f"{own.name} ({own.interface})" for own in book.own)
        log(f"TCP callers are the tasks and containers on: {networks or 'no overlay network'}"
            + (f" ({book.problem})" if book.problem else ""))


async def serve(options: Any) -> None:
    """Listen until SIGTERM or SIGINT, then remove the Unix sockets."""
    quiet_aiohttp()
    asyncio.get_running_loop().set_exception_handler(loop_exception)
    raise_file_limit()
    upstream = Upstream(options.upstream)
    await upstream.open()
    directory = Directory(upstream, options.allow_host, options.trust_files,
                          options.trust_image_links)
    hub = EventHub(upstream, directory)
    connections = Connections(options.max_connections)
    proxy = Proxy(upstream, directory, hub, options.verbose, connections,
                  options.max_event_streams)
    server = Server(proxy.handle, connections, handler_cancellation=True,
                    keepalive_timeout=options.idle_timeout, access_log=None)
    runner = web.ServerRunner(server, handle_signals=False)
    await runner.setup()
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for number in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(number, stop.set)
    tasks = [asyncio.create_task(watchdog(hub))]
    bound: list[str] = []
    try:
        await _start_sites(runner, options.listens, bound)
        log(f"listening on {', '.join(listen.text for listen in options.listens)} for "
            f"{upstream.host}" + (" (host processes allowed)" if options.allow_host else "")
            + (" (YAML files trusted)" if options.trust_files else "")
            + (" (image links trusted)" if options.trust_image_links else ""))
        if any(not listen.path for listen in options.listens):
            tasks.append(asyncio.create_task(_announce(directory)))
        await stop.wait()
    finally:
        for task in tasks:
            task.cancel()
        await runner.cleanup()
        await upstream.close()
        for path in bound:
            with contextlib.suppress(OSError):
                os.unlink(path)
        if bound or len(tasks) > 1:
            log(f"stopped ({hub.streams_opened} upstream event stream(s) opened)")


def parse(argv: Sequence[str], environ: dict) -> Any:
    from linkinit.usage import UsageParser

    parser = UsageParser(
        prog="linkinit proxy",
        description="Serve parent containers a read-only view of the Engine scoped to their "
                    "links: on a Unix socket they mount instead of the Engine's, or over TCP "
                    "to swarm tasks on the overlay networks the proxy is attached to.")
    parser.add_argument("--listen", action="append", metavar="PATH|tcp://ADDRESS:PORT",
                        help=f"a Unix socket in a directory of its own (default "
                             f"{DEFAULT_LISTEN}), or a TCP address for swarm tasks; may be "
                             "given more than once")
    parser.add_argument("--allow-host", action="store_true",
                        help="let processes outside containers (on TCP: loopback callers) "
                             "read every container")
    parser.add_argument("--trust-files", action="store_true",
                        help="trust links declared in files inside containers (weaker: a "
                             "container may then read any container)")
    parser.add_argument("--trust-image-links", action="store_true",
                        help="trust links an image declares (labels, ENV, CMD) as if the "
                             "operator had (weaker: the image's author then chooses what its "
                             "containers may read)")
    parser.add_argument("--idle-timeout", type=float, default=10.0, metavar="SECONDS",
                        help="close a connection that sends no request for this long (10)")
    parser.add_argument("--max-connections", type=int, default=DEFAULT_MAX_CONNECTIONS,
                        metavar="N", help="connections one container may hold open; more "
                        f"are answered 429 ({DEFAULT_MAX_CONNECTIONS}; 0: no limit)")
    parser.add_argument("--max-event-streams", type=int, default=DEFAULT_MAX_STREAMS,
                        metavar="N", help="event streams one container may hold open; more "
                        f"are answered 429 ({DEFAULT_MAX_STREAMS}; 0: no limit)")
    parser.add_argument("-v", "--verbose", action="store_true",
                        help="log every request with its status and duration")
    options = parser.parse_args(list(argv))
    options.listens = [listen_address(text) for text in options.listen or [DEFAULT_LISTEN]]
    options.upstream = environ.get("DOCKER_HOST") or DEFAULT_UPSTREAM
    for listen in options.listens:
        if listen.path and os.path.abspath(options.upstream.replace("unix://", "")) == \
                os.path.abspath(listen.path):
            raise UsageError(f"DOCKER_HOST={options.upstream} is the proxy's own socket: "
                             "point it at the Engine")
    for flag, value in (("--max-connections", options.max_connections),
                        ("--max-event-streams", options.max_event_streams)):
        if value < 0:
            raise UsageError(f"proxy: {flag} must be >= 0, not {value}")
    if not options.idle_timeout > 0:
        raise UsageError(f"proxy: --idle-timeout must be > 0, not {options.idle_timeout}")
    return options


def main(argv: Sequence[str], stdout: Any, stderr: Any) -> int:
    """``linkinit proxy [--listen PATH|tcp://ADDRESS:PORT]... [--allow-host] [--trust-files]``."""
    try:
        options = parse(argv, dict(os.environ))
        asyncio.run(serve(options))
    except LinkinitError as error:
        print(f"linkinit: {error}", file=stderr)
        return error.exit_status
    except OSError as error:
        print(f"linkinit: proxy: {error.strerror or error}: {error.filename or ''}", file=stderr)
        return 69
    return 0
