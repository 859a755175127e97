"""The start pipeline: declarations -> Engine -> ready children -> COMMAND's environment.

It runs in the resolver, the child PID 1 forks (``supervise.run_isolated``), so that what it
imports never becomes resident in PID 1. Each step is one module's job; this one only
strings them together and reports progress on stderr.
"""

from __future__ import annotations

import os
import sys

from linkinit.init import supervise

TYPE_CHECKING = False
if TYPE_CHECKING:  # typing costs milliseconds of every start
    from typing import Any, Callable, Mapping, Optional, Sequence

    from linkinit.init.options import Options

    Resolved = tuple[dict[str, str], list[str], Optional[dict]]

DEFAULT_CONFIG = "/etc/linkinit.yaml"


def resolve_environment(options: Options, environ: Mapping[str, str],
                        in_a_pod: bool = False) -> Resolved:
    """Declarations -> Engine -> endpoints -> environment: the whole one-way flow.

    Returns COMMAND's whole environment, the names of the link variables in it, and follow
    mode's policy and state directory (None when it is off). ``in_a_pod``: a Kubernetes pod,
    where ``--print-env`` prints the kubelet's variables without an Engine.
    """
    import time

    from linkinit.engine.client import Engine
    from linkinit.init import health, hosts, notify, resolve
    from linkinit.model import declare
    from linkinit.model.docker_links import engine_links
    from linkinit.model.envvars import link_environment

    started = time.monotonic()
    report = _reporter(options.quiet)
    if not options.print_env:  # /run outlives a docker restart: no stale health answers
        health.forget(health.state_path(environ))
    from_file = load_config(options.config)
    from_env = declare.Declaration(tuple(_env_link(entry) for entry in options.env_links))
    policy = options.on_change and declare.check_policy(options.on_change, "on-change")
    from_flags = declare.parse_flags(options.link, options.timeout, options.env,
                                     options.template)._replace(on_change=policy)
    first_timeout = _first(from_flags.timeout, from_file.timeout, declare.DEFAULT_TIMEOUT)
    engine = Engine.from_environ(environ, in_container=True)
    if options.print_env and engine.socket_missing() and not in_a_pod:
        raise _no_engine_to_ask(engine, environ)
    if _plain_init(engine, options, [from_file, from_env, from_flags]):
        return _without_engine(engine, declare.merge([from_file, from_flags]), environ,
                               options, report)
    engine.deadline = started + first_timeout + resolve.LAST_LOOK_GRACE
    resolve.connect(engine, started + first_timeout, environ)
    parent = resolve.find_parent(engine, environ)
    labels = (parent.get("Config") or {}).get("Labels") or {}
    known = engine_links(parent)  # docker run --link, compose links: (the weakest source)
    declared = declare.merge([declare.Declaration(known), declare.parse_labels(labels, known),
                              from_file, from_env, from_flags])
    timeout = _first(declared.timeout, declare.DEFAULT_TIMEOUT)
    remaining = max(timeout - (time.monotonic() - started), 0.0)
    if not options.print_env:
        notify.waiting(notify.target(environ, options.notify), [s.alias for s in declared.links])
    resolved = resolve.resolve_links(engine, parent, declared.links, remaining, report,
                                     environ)
    hosts.write_hosts(resolved)
    links = _secrets_as_files(declared, resolved, link_environment(resolved), environ, report)
    exported = _outputs(declared, resolved, links, environ, options)

    def for_command(derived: dict) -> Optional[dict]:
        """What COMMAND's start leaves behind: linkinit health's state, follow mode's."""
        health.record(health.state_path(environ), engine.host, declared.links, resolved,
                      engine.api_version)
        return _follow(declared, engine, parent, environ, resolved, options, derived)

    return _handed_over(options, environ, exported, links, for_command)


def _handed_over(options: Options, environ: Mapping[str, str], exported: Mapping[str, str],
                 links: Mapping[str, str], follow: Callable[[dict], Optional[dict]]
                 ) -> Resolved:
    """What the resolver hands PID 1: ``--print-env`` what linkinit resolved, over any
    variable the Engine injected; COMMAND its environment (its own variables win) and
    follow mode's plan."""
    from linkinit.model.envvars import build_environment

    if options.print_env:
        return {**environ, **exported}, list(exported), None
    plan = follow({key: exported[key] for key in exported if key not in links})
    return build_environment(environ, exported), list(exported), plan


def _follow(declared: Any, engine: Any, parent: Mapping[str, Any], environ: Mapping[str, str],
            resolved: Sequence[Any], options: Options, derived: dict) -> Optional[dict]:
    """Follow mode's state for its watcher, or (off) no stale links file left behind."""
    if declared.on_change in (None, "none"):
        _forget_followed_links(environ)
        return None
    from linkinit.init import notify
    from linkinit.init.follow import prepare  # only in follow mode: its imports cost every start

    own = notify.command_environment(environ, options.notify)  # as a restart will give it
    return prepare(declared, engine, parent, own, resolved, options.quiet, derived)


def _secrets_as_files(declared: Any, resolved: Sequence[Any], links: Mapping[str, str],
                      environ: Mapping[str, str], report: Callable[[str], None]) -> Any:
    """The link variables, those of ``secrets=files`` links written to files and named by
    ``_FILE`` variables instead."""
    secret = [spec.alias for spec in declared.links if spec.secrets]
    if not secret:  # only then: its imports (hashlib, _ctypes) cost every start
        return links
    from linkinit.init import secretfiles

    return secretfiles.export(resolved, secret, secretfiles.secrets_dir(environ), report)


def _without_engine(engine: Any, declared: Any, environ: Mapping[str, str],
                    options: Options, report: Callable[[str], None]) -> Resolved:
    """A plain init: no links, but the derived variables and templates the file and the
    flags declare (the container's own variables may hold what they need: a Kubernetes
    pod's service variables)."""
    from linkinit.model.envvars import build_environment

    where = f"no Docker Engine socket at {engine.socket_path}"
    if options.print_env:  # only in a pod: the kubelet's variables are what it prints
        report(f"{where}: printing only the Kubernetes service variables")
    else:
        report(f"{where} and no links declared by file, flag or LINKINIT_LINKS: running "
               "COMMAND without links (--require-engine or LINKINIT_REQUIRE_ENGINE=1 makes "
               "this exit 69)")
        from linkinit.init import health

        health.record(health.state_path(environ), engine.host, [], [])
    exported = _outputs(declared, [], {}, environ, options)
    return build_environment(environ, exported), list(exported), None


def _outputs(declared: Any, resolved: Sequence[Any], links: Mapping[str, str],
             environ: Mapping[str, str], options: Options) -> dict[str, str]:
    """The link variables and the derived ones after them; then, unless only printing, the
    templates rendered from them (before COMMAND starts, so it never reads a stale file)."""
    exported = dict(links)
    if declared.env:
        from linkinit.model.derived import derive

        exported.update(derive(declared.env, links, environ))
    if declared.templates and not options.print_env:
        from linkinit.init.templates import write_all  # Jinja2: only when a template is declared
        from linkinit.model.envvars import build_environment

        write_all(declared.templates, build_environment(environ, exported), resolved)
    return exported


def _forget_followed_links(environ: Mapping[str, str]) -> None:
    """Follow mode off: a links file an earlier run of this container left must not be
    read by the client library as current."""
    try:  # noqa: SIM105 (contextlib is one more import on the start path)
        os.unlink(os.path.join(supervise.follow_dir(environ), supervise.LINKS_FILE))
    except OSError:
        pass  # nothing there, or a read-only /run: nothing stale either


def _no_engine_to_ask(engine: Any, environ: Mapping[str, str]) -> Exception:
    """``--print-env`` prints what the Engine says; with nothing to ask it cannot (the plain
    init's fallback is for running COMMAND, not for printing)."""
    from linkinit.engine import kinds as engines
    from linkinit.engine.client import PROXY_SOCKET
    from linkinit.errors import EngineUnreachable

    proxy = os.path.dirname(PROXY_SOCKET)
    if environ.get("DOCKER_HOST"):
        where = f"DOCKER_HOST={environ['DOCKER_HOST']} names no socket"
        advice = engines.missing_socket_advice(environ)
    else:
        where = (f"no Engine socket at {engine.socket_path}, no proxy directory {proxy}, "
                 "DOCKER_HOST unset")
        advice = (f"mount the proxy's directory (-v {proxy}:{proxy}:ro) or the Engine's "
                  f"socket ({engines.mount_hint()})")
    return EngineUnreachable(f"--print-env: cannot read this container's links ({where}), so "
                             f"there are no link variables to print: {advice}")


def _plain_init(engine: Any, options: Options, sources: Sequence[Any]) -> bool:
    """No socket mounted and no link declared where it can be read without one: then an
    image that uses linkinit still runs where there is no Engine (Kubernetes, CI)."""
    declared = any(source.links for source in sources)
    return engine.socket_missing() and not declared and not options.require_engine


def _env_link(entry: str) -> Any:
    """One ``child[:alias]`` of LINKINIT_LINKS, read as ``--link`` reads its value."""
    from linkinit.model import declare

    origin = f"LINKINIT_LINKS entry {declare.shorten(entry)}"
    return declare.parse_link(entry, origin, "db1:redis")


def _first(*values: Optional[float]) -> float:
    return next(value for value in values if value is not None)


def load_config(path: Optional[str]) -> Any:
    """The YAML declarations: --config must exist; the default file only if present."""
    from linkinit.errors import DeclarationError
    from linkinit.model import declare

    target = path or DEFAULT_CONFIG
    try:
        with open(target) as file:
            text = file.read()
    except FileNotFoundError:
        if path is None:
            return declare.Declaration()
        raise DeclarationError(f"--config {path}: no such file") from None
    except OSError as error:
        raise DeclarationError(f"{target}: cannot read: {error.strerror}") from None
    from linkinit.model import declare_file  # only with a file: it imports yaml

    return declare_file.parse_yaml(text, target)


def _reporter(quiet: bool) -> Callable[[str], None]:
    def report(line: str) -> None:
        if not quiet:
            print(f"linkinit: {line}", file=sys.stderr, flush=True)

    return report
