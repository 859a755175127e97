"""The command line: arguments, dispatch, exit statuses and one-line error messages.

``main`` blocks signals before anything else (PID 1 drops signals it has no handler for, and
Python takes 10-20 ms to start), then resolution runs in a forked child so that the heavy
imports never become resident in the process that stays PID 1.
"""

from __future__ import annotations

import os
import sys

from linkinit.init import prestart, supervise
from linkinit.init.options import (
    ENVIRONMENT,
    Options,
    apply_environment,
    check_notify,
    check_policy,
    check_seconds,
    settle,
)

TYPE_CHECKING = False
if TYPE_CHECKING:  # typing costs milliseconds before signals are blocked
    from typing import IO, Callable, Mapping, Optional, Sequence

    Resolved = tuple[dict[str, str], list[str], Optional[dict]]

SUBCOMMANDS = ("ls", "guard", "proxy", "_follow")


def main() -> None:
    supervise.block_signals()
    status = run(sys.argv[1:], initial_environment())
    if sys.argv[1:2] and sys.argv[1] in SUBCOMMANDS:
        sys.exit(status)  # the host tools and the follow watcher end as Python programs do
    exit_now(status)


def exit_now(status: int) -> None:
    """Exit with ``status`` without the interpreter's teardown: freeing every module and
    object nobody waits for costs ~2 ms of CPU at the end of every start and every
    ``--print-env`` (bench/README.md). The standard streams are flushed first; the init's
    own process registers no atexit handler and runs no thread that could be cut short."""
    for stream in (sys.stdout, sys.stderr):
        try:  # noqa: SIM105 (contextlib is one more import on the start path)
            stream.flush()
        except (OSError, ValueError, AttributeError):
            pass
    os._exit(status & 0xFF)


def initial_environment() -> dict[str, str]:
    """The environment this process was started with, as COMMAND should inherit it.

    Where LANG is unset Python adds ``LC_CTYPE=C.UTF-8`` to ``os.environ`` (PEP 538);
    ``/proc/self/environ`` still holds what the container gave us.
    """
    try:
        return supervise.read_environ("/proc/self/environ")
    except OSError:
        return dict(os.environ)


def run(
    argv: Sequence[str],
    environ: Mapping[str, str],
    stdout: Optional[IO[str]] = None,
    stderr: Optional[IO[str]] = None,
) -> int:
    """Parse, dispatch, and turn every known failure into its message and exit status."""
    stdout = stdout or sys.stdout
    stderr = stderr or sys.stderr
    if argv and argv[0] == "health":  # in the parent, beside PID 1 (HEALTHCHECK)
        from linkinit.init.health import main as health

        return health(list(argv[1:]), environ, stdout, stderr)
    if argv and argv[0] in SUBCOMMANDS:
        return _host_tool(argv[0], list(argv[1:]), stdout, stderr)
    from linkinit.errors import LinkinitError

    try:
        options = apply_environment(parse_arguments(argv), environ)
        if options.print_env:
            return print_environment(options, environ, stdout)
        pid1 = settle(options)
        if pid1.pdeathsig:  # before the wait for children: the parent may die meanwhile
            prestart.set_parent_death_signal(pid1.pdeathsig)
        environment, _, follow = resolve_isolated(options, environ)
    except LinkinitError as error:
        print_error(error, stderr)
        return error.exit_status
    from linkinit.init import notify

    notify_socket = notify.target(environ, options.notify)
    return prestart.supervise(
        options.command,
        notify.command_environment(environment, options.notify),
        group=options.group,
        grace=pid1.grace,
        keep_orphans=options.keep_orphans,
        kill_orphans=options.kill_orphans,
        stop_delay=pid1.stop_delay,
        wait_all=options.wait_all,
        rewrite=pid1.rewrite,
        remap_exit=pid1.remap_exit,
        follow=_follow_plan(follow, options),
        started=(lambda pid: notify.ready(notify_socket, pid)) if notify_socket else None,
    )


def _follow_plan(follow: Optional[dict], options: Options) -> Optional[supervise.Follow]:
    """Follow mode for PID 1: the policy as a signal number, the watcher's command line."""
    if not follow:
        return None
    policy = follow["policy"]
    if policy.startswith("signal:"):
        from linkinit.init.options import parse_signal

        policy = f"signal:{parse_signal(policy[7:], 'on-change')}"
    if getattr(sys, "frozen", False):  # a bundled linkinit is its own interpreter
        watcher = [sys.executable, "_follow"]
    else:
        watcher = [sys.executable, "-m", "linkinit", "_follow"]
    return supervise.Follow(policy, options.splay or 0.0, follow["dir"], watcher)


def parse_arguments(argv: Sequence[str]) -> Options:
    """Options from argv. ``ENTRYPOINT ["linkinit", "--"]`` passes none: then there is nothing
    for argparse to do, and importing and building it would cost ~15 ms of every start."""
    simple = _simple_arguments(argv)
    if simple is not None:
        return simple
    import argparse

    from linkinit.errors import UsageError
    from linkinit.usage import UsageParser

    parser = UsageParser(
        prog="linkinit",
        usage="linkinit [options] -- COMMAND [ARG...]\n"
              "       linkinit --print-env [options]\n"
              "       linkinit health [--probe CMD]\n"
              "       linkinit ls [--all] [--format table|json]\n"
              "       linkinit guard [options]\n"
              "       linkinit proxy [--listen PATH|tcp://ADDRESS:PORT]... [--allow-host] "
              "[--trust-files]",
        description="Resolve the containers this one links to, export Docker-link variables "
                    "(REDIS_PORT_6379_TCP_ADDR...), then run COMMAND as PID 1.",
        epilog="Every option can also come from the environment (a flag wins): "
               + ", ".join(variable for variable, _, _ in ENVIRONMENT)
               + ". LINKINIT_LINKS is child[:alias],...; true/false ones take 1 or 0.",
    )
    parser.add_argument("--link", action="append", metavar="CHILD[:ALIAS]",
                        help="link a child container, as docker run --link (repeatable)")
    parser.add_argument("--config", metavar="PATH",
                        help="link declarations in YAML (default /etc/linkinit.yaml if present)")
    parser.add_argument("--timeout", type=float, metavar="SECONDS",
                        help="how long to wait for all children (default 60)")
    parser.add_argument("--print-env", action="store_true",
                        help="resolve and wait, print the link variables, exit")
    parser.add_argument("--format", choices=("env", "shell", "json"),
                        help="how --print-env prints (default env: KEY=VALUE lines)")
    parser.add_argument("-q", "--quiet", action="store_true",
                        help="no progress lines or notices on stderr")
    parser.add_argument("--require-engine", action="store_true",
                        help="exit 69 when no Engine socket is mounted, even with no links "
                             "declared (default: run COMMAND as a plain init)")
    parser.add_argument("-g", "--group", action="store_true",
                        help="forward signals to COMMAND's whole process group; TSTP, TTIN "
                             "and TTOU become STOP")
    parser.add_argument("--grace", type=float, metavar="SECONDS",
                        help="as PID 1 or with --group, after COMMAND exits, how long its "
                             "leftovers get between SIGTERM and SIGKILL (default 5)")
    parser.add_argument("--keep-orphans", action="store_true",
                        help="after COMMAND exits, leave its leftover processes alone")
    parser.add_argument("--kill-orphans", action="store_true",
                        help="while COMMAND runs, TERM (then after --grace KILL) every process "
                             "left to linkinit by its parent's exit")
    parser.add_argument("--stop-delay", type=float, metavar="SECONDS",
                        help="hold the first TERM or INT this long before it reaches COMMAND "
                             "(a drain window; keep it below docker stop -t)")
    parser.add_argument("--wait-all", action="store_true",
                        help="exit when COMMAND and every other process have exited, with "
                             "COMMAND's status")
    parser.add_argument("--notify", metavar="WHO",
                        help="with NOTIFY_SOCKET set, who sends READY=1: linkinit (default) "
                             "or command (COMMAND gets the variable)")
    parser.add_argument("--rewrite", action="append", metavar="SIG:SIG",
                        help="pass a signal on as another, e.g. TERM:QUIT; to 0 drops it "
                             "(repeatable)")
    parser.add_argument("--remap-exit", action="append", metavar="N",
                        help="report COMMAND's exit status N as 0 (repeatable)")
    parser.add_argument("--pdeathsig", metavar="SIG",
                        help="the signal linkinit gets when its parent dies")
    parser.add_argument("--on-change", metavar="POLICY",
                        help="follow mode: what to do when a child comes back different: none "
                             "(default), hosts, signal:<SIG>, restart or exit")
    parser.add_argument("--splay", type=float, metavar="SECONDS",
                        help="follow mode, restart: wait a random time up to this long first")
    parser.add_argument("--env", action="append", metavar="NAME=VALUE",
                        help="a derived variable for COMMAND; ${VAR} in VALUE expands a link "
                             "variable or one of the container's own, $$ is $ (repeatable)")
    parser.add_argument("--template", action="append", metavar="SRC:DEST",
                        help="render the Jinja2 template SRC to DEST before COMMAND starts "
                             "(and in follow mode when a child changes) (repeatable)")
    parser.add_argument("--version", action="version", version=_version())
    parser.add_argument("command", nargs=argparse.REMAINDER, help=argparse.SUPPRESS)
    options = parser.parse_args(list(argv), namespace=Options())
    if options.command and options.command[0] == "--":
        options.command = options.command[1:]
    if not options.command and not options.print_env:
        raise UsageError("no COMMAND given: linkinit [options] -- COMMAND [ARG...]")
    return _check_values(options)


def _check_values(options: Options) -> Options:
    """The flags' values argparse cannot check, each error naming its flag."""
    if options.timeout is not None:
        check_seconds(options.timeout, "--timeout")
    if options.grace is not None:
        check_seconds(options.grace, "--grace")
    if options.splay is not None:
        check_seconds(options.splay, "--splay")
    if options.stop_delay is not None:
        check_seconds(options.stop_delay, "--stop-delay")
    if options.notify is not None:
        check_notify(options.notify, f"--notify {options.notify}")
    if options.on_change is not None:
        check_policy(options.on_change, f"--on-change {options.on_change}")
    return options


# Flags that take no value, and the one value checked here, for _simple_arguments.
_SIMPLE_FLAGS = {"--print-env": "print_env", "-q": "quiet", "--quiet": "quiet"}
_FORMATS = ("env", "shell", "json")


def _simple_arguments(argv: Sequence[str]) -> Optional[Options]:
    """The two forms that need no argparse: ``-- COMMAND`` (the ENTRYPOINT), and
    ``--print-env`` with ``-q`` and ``--format F`` alone (``docker run --entrypoint linkinit
    IMAGE --print-env``); None for anything else, which argparse then parses (and words its
    errors) as always."""
    if len(argv) > 1 and argv[0] == "--":
        return Options(argv[1:])
    options = Options()
    words = iter(argv)
    for word in words:
        flag, equals, value = word.partition("=")
        if word in _SIMPLE_FLAGS:
            setattr(options, _SIMPLE_FLAGS[word], True)
        elif flag == "--format":
            value = value if equals else next(words, "")
            if value not in _FORMATS:
                return None
            options.format = value
        else:
            return None
    return options if options.print_env else None


def _version() -> str:
    from linkinit import __version__

    return f"linkinit {__version__}"


def resolve_isolated(
    options: Options, environ: Mapping[str, str]
) -> tuple[dict[str, str], list[str], Optional[dict]]:
    """Resolve in a forked child; PID 1 keeps only the environment, the link keys and, in
    follow mode, where the watcher's state is."""
    from linkinit import fastjson  # not json: it imports re (~4 ms of every start)

    result = fastjson.loads(prestart.run_isolated(_guarded(lambda: _resolve(options, environ))))
    return result["environment"], result["link_keys"], result["follow"]


def _guarded(work: Callable[[], Resolved]) -> Callable[[], bytes]:
    """In the child: known failures become a message on stderr and their exit status."""

    def guarded() -> bytes:
        from linkinit import fastjson
        from linkinit.errors import LinkinitError

        try:
            environment, link_keys, follow = work()
            return fastjson.dumps({"environment": environment, "link_keys": link_keys,
                               "follow": follow}).encode()
        except LinkinitError as error:
            print_error(error, sys.stderr)
            raise SystemExit(error.exit_status) from None
        except KeyboardInterrupt:
            raise SystemExit(130) from None

    return guarded


def _resolve(options: Options, environ: Mapping[str, str]) -> Resolved:
    """The start pipeline (``init/start.py``), in the resolver."""
    from linkinit.init.start import resolve_environment

    in_a_pod = options.print_env and _in_a_pod(environ)
    return resolve_environment(options, environ, in_a_pod)


def _in_a_pod(environ: Mapping[str, str]) -> bool:
    """A Kubernetes pod: the kubelet wrote its services' variables, which ``--print-env``
    prints without an Engine (there is none to ask there)."""
    return bool(_service_variables(environ))


def print_environment(options: Options, environ: Mapping[str, str], stdout: IO[str]) -> int:
    """``--print-env``: what COMMAND would get for each link variable, on stdout; in a
    Kubernetes pod also the service variables the kubelet set, which COMMAND reads alike."""
    environment, link_keys, _ = resolve_isolated(options, environ)
    services = [key for key in _service_variables(environ) if key not in link_keys]
    variables = {key: environment[key] for key in [*link_keys, *services]}
    stdout.write(render_variables(variables, options.format))
    stdout.flush()
    return 0


def _service_variables(environ: Mapping[str, str]) -> Mapping[str, str]:
    """The kubelet's service variables; the client library (typing, dataclasses, re: ~10 ms)
    is imported only where there is a service (``<SVC>_SERVICE_HOST``) to read."""
    if not any(key.endswith("_SERVICE_HOST") for key in environ):
        return {}
    from linkinit.client import service_variables

    return service_variables(environ)


def render_variables(variables: Mapping[str, str], form: str) -> str:
    """``--print-env``'s text: ``KEY=VALUE`` lines, ``export`` lines quoted as the shell
    needs (``shlex.quote``), or a JSON object; always in the order given (Docker's)."""
    if form == "json":
        import json

        return json.dumps(dict(variables), indent=2) + "\n"
    if form == "shell":
        import shlex

        return "".join(f"export {k}={shlex.quote(v)}\n" for k, v in variables.items())
    return "".join(f"{k}={v}\n" for k, v in variables.items())


def print_error(error: BaseException, stderr: IO[str]) -> None:
    for line in str(error).splitlines() or ["failed"]:
        print(f"linkinit: {line}", file=stderr)
    stderr.flush()


def _host_tool(name: str, argv: list[str], stdout: IO[str], stderr: IO[str]) -> int:
    """``ls``, ``guard`` and ``proxy`` run on the host (the SDK, aiohttp); no PID-1 duties."""
    import signal

    signal.pthread_sigmask(signal.SIG_SETMASK, set())  # a host tool is no init
    if name == "_follow":  # follow mode's watcher, started by PID 1 (not for users)
        from linkinit.init.follow import main

        return main()
    if name == "ls":
        from linkinit.host import ls as tool
    elif name == "guard":
        from linkinit.host import guard as tool  # type: ignore[no-redef]
    else:
        try:
            from linkinit.host.proxy import daemon as tool  # type: ignore[no-redef]
        except ImportError as error:
            print(f"linkinit: proxy needs aiohttp ({error}): pip install 'linkinit[host]'",
                  file=stderr)
            return 69
    return tool.main(argv, stdout, stderr)
