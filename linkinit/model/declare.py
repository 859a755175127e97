"""Link declarations: labels, the YAML file and flags, turned into link specs.

Pure: takes label maps, file text and flag strings, touches no socket. Every error names the
label, file line or flag it came from, because a declaration is the user's own typing and the
fix is always "edit that one place".
"""

from __future__ import annotations

from collections import namedtuple

from linkinit.errors import DeclarationError, LinkinitError
from linkinit.model import childenv

TYPE_CHECKING = False
if TYPE_CHECKING:  # typing costs ~10 ms of every container start (bench/README.md)
    from typing import Iterable, Mapping, Optional, Sequence

WAIT_MODES = ("started", "healthy", "listening", "none")
ADDRESS_MODES = ("ip", "name")  # what _ADDR carries: the IP (moby's), or the alias
# Protocol probes (probes.py, command_probe.py): the child answers its own protocol.
PROBE_MODES = ("redis", "postgres", "mysql", "http", "http:PATH", "http:PATH:STATUS",
               "exec:CMD", "tcp")
WAIT_ALIASES = {"tcp": "listening"}  # another name for a mode, stored as the mode
DEFAULT_WAIT = "listening"
DEFAULT_TIMEOUT = 60.0
LABEL_PREFIX = "link."
TIMEOUT_LABEL = "linkinit.timeout"
ON_CHANGE_LABEL = "linkinit.on-change"
POLICIES = ("none", "hosts", "signal:<SIG>", "restart", "exit")
# link.<alias>.<attribute>
LINK_ATTRIBUTES = ("wait", "optional", "address", "env", "secrets", "port")
ALIAS_CHARS = "[A-Za-z0-9_-]"  # what an alias is made of (no dot: link.<alias>.wait)
# the same set, checked without re (~3 ms of every container start)
_ALIAS = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_-")
# What can name a child: Docker's container name rule (daemon/names: [a-zA-Z0-9][a-zA-Z0-9_.-]),
# which IDs, ID prefixes, network aliases and service names also keep; the length bounds a
# name to what an Engine or DNS could answer to, so a 10,000-character value is refused here.
# Checked without re, as the alias is: a leading "/" allowed, then these.
_CHILD_FIRST = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789")
_CHILD_REST = _CHILD_FIRST | frozenset("_.-")
CHILD_MAX = 255
SHOWN_MAX = 60  # a value longer than this is shortened in messages
_TRUE = {"true", "1", "yes", "on"}
_FALSE = {"false", "0", "no", "off", ""}


# Records are collections.namedtuple, not typing.NamedTuple: importing typing costs ~10 ms
# of every container start. Their fields are listed in each docstring.


class LinkSpec(
    namedtuple("LinkSpec", "alias child wait optional origin address env secrets port",
               defaults=(DEFAULT_WAIT, False, "", "ip", childenv.ALL, "", None))
):
    """One declared link: the parent will know ``child`` as ``alias``.

    alias: str; child: str (name, ID, ID prefix or network alias); wait: one of WAIT_MODES
    or a probe as ``parse_wait`` returns it; optional: bool; origin: str, where it was
    declared, for error messages; address: one of ADDRESS_MODES; env: the child's keys the
    parent receives (``childenv``: None for all, a tuple of keys); secrets: "" or "files"
    (the values handed over as files, ``secretfiles``); port: int, the port probes ask
    (None: the lowest exposed TCP port).
    """

    __slots__ = ()

    @property
    def prefix(self) -> str:
        """The variable prefix Docker derives from the alias (``db-1`` -> ``DB_1``)."""
        return env_prefix(self.alias)


class Declaration(
    namedtuple("Declaration", "links timeout on_change env templates",
               defaults=((), None, None, (), ()))
):
    """The links of one source (or of all, merged), and the settings it made, if any.

    links: tuple of LinkSpec; timeout: seconds (float) or None; on_change: follow mode's
    policy (``check_policy``'s form) or None; env: derived variables (``derived.DerivedSpec``);
    templates: ``templates.TemplateSpec``.
    """

    __slots__ = ()


def env_prefix(alias: str) -> str:
    return alias.upper().replace("-", "_")


def check_alias(alias: str, origin: str) -> str:
    if not alias or not _ALIAS.issuperset(alias):
        raise DeclarationError(
            f"{origin}: alias {shorten(alias)!r} is not valid: use letters, digits, '_' and '-' "
            "only"
        )
    return alias


def check_address(value: str, origin: str) -> str:
    if value not in ADDRESS_MODES:
        raise DeclarationError(
            f"{origin}: address must be one of {', '.join(ADDRESS_MODES)}, not {value!r}"
        )
    return value
def shorten(value: str, limit: int = SHOWN_MAX) -> str:
    """A value as a message shows it: long ones cut, with their length said."""
    if len(value) <= limit:
        return value
    return f"{value[:limit - 20]}... ({len(value)} characters)"


def check_child(child: str, origin: str) -> str:
    """A reference that no container, ID, network alias or service could answer to is a
    declaration error at once, not a wait for the whole timeout."""
    if len(child) > CHILD_MAX:
        raise DeclarationError(
            f"{origin}: the child {shorten(child)!r} is {len(child)} characters long: a "
            f"container name, ID or network alias has at most {CHILD_MAX}"
        )
    name = child[1:] if child.startswith("/") else child
    if not (name and name[0] in _CHILD_FIRST and _CHILD_REST.issuperset(name)):
        raise DeclarationError(
            f"{origin}: the child {shorten(child)!r} cannot name a container: use its name, "
            "ID or network alias (letters, digits, '_', '.' and '-', starting with a letter "
            "or digit)"
        )
    return child


def parse_wait(value: object, origin: str) -> str:
    """A wait mode as written -> its one stored form (``tcp`` -> ``listening``, ``http`` ->
    ``http:/``); anything else is a DeclarationError (64) naming ``origin``. Every source of
    declarations (labels, the file, the Engine's own links) calls this one function."""
    text = str(value).strip()
    kind, colon, rest = text.partition(":")
    if not colon and text in WAIT_MODES:
        return text
    if not colon and text in WAIT_ALIASES:
        return WAIT_ALIASES[text]
    if not colon and kind in ("redis", "postgres", "mysql"):
        return kind
    if kind == "http":
        return _http_wait(rest, origin, text)
    if kind == "exec" and colon and rest.strip():
        return f"exec:{rest.strip()}"
    if kind == "exec":
        raise DeclarationError(f"{origin}: exec: needs a command, e.g. exec:test -f /ready")
    raise DeclarationError(
        f"{origin}: wait must be one of {', '.join(WAIT_MODES + PROBE_MODES)}, not {text!r}"
    )



def _http_wait(rest: str, origin: str, text: str) -> str:
    """``http``, ``http:PATH``, ``http:PATH:STATUS``: PATH starts with ``/`` (may hold
    colons); a last ``:NNN`` is the status."""
    path, status = rest, ""
    head, colon, tail = rest.rpartition(":")
    if colon and tail.isdigit():
        path, status = head, tail
    path = path or "/"
    if not path.startswith("/") or any(c.isspace() or ord(c) < 32 for c in path):
        raise DeclarationError(
            f"{origin}: http's path must start with '/' and hold no spaces, e.g. "
            f"http:/health or http:/health:204, not {text!r}"
        )
    if status and not 100 <= int(status) <= 599:
        raise DeclarationError(f"{origin}: http's status must be 100 to 599, not {status}")
    return f"http:{path}" + (f":{int(status)}" if status else "")


def parse_port(value: object, origin: str) -> int:
    """``link.<alias>.port``: the TCP port a probe asks, 1 to 65535."""
    text = str(value).strip()
    if not text.isdigit() or not 1 <= int(text) <= 65535:
        raise DeclarationError(f"{origin}: port must be a number from 1 to 65535, not {text!r}")
    return int(text)


def bool_word(value: object) -> Optional[bool]:
    """``true``/``1``/``yes``/``on`` and their opposites (or empty), any case; else None."""
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    return True if text in _TRUE else False if text in _FALSE else None


def parse_bool(value: object, origin: str, error: type[LinkinitError] = DeclarationError,
               expected: str = "") -> bool:
    """A yes/no value; anything else is ``error`` (64) naming ``origin``."""
    answer = bool_word(value)
    if answer is None:
        raise error(f"{origin}: expected {expected or f'true or false, not {value!r}'}")
    return answer


def parse_timeout(value: object, origin: str) -> float:
    try:
        seconds = float(str(value).strip())
    except ValueError:
        raise DeclarationError(
            f"{origin}: timeout must be a number of seconds, not {value!r}"
        ) from None
    if not seconds >= 0 or seconds == float("inf"):
        raise DeclarationError(
            f"{origin}: timeout must be a finite number of seconds >= 0, not {value!r}"
        )
    return seconds


def check_policy(value: object, origin: str) -> str:
    """Follow mode's policy: ``none``, ``hosts``, ``restart``, ``exit`` or ``signal:<SIG>``
    (a name with or without SIG, or a number), returned as ``signal:HUP`` for a signal."""
    text = str(value).strip()
    kind, colon, name = text.partition(":")
    if not colon and kind in ("none", "hosts", "restart", "exit"):
        return kind
    if kind == "signal" and colon:
        import signal

        try:
            number = int(name) if name.isdigit() else getattr(signal, "SIG" + name.upper()
                                                               .removeprefix("SIG"))
            return f"signal:{signal.Signals(number).name.removeprefix('SIG')}"
        except (AttributeError, ValueError):
            pass
    raise DeclarationError(
        f"{origin}: on-change must be one of {', '.join(POLICIES)} (e.g. signal:HUP), "
        f"not {text!r}"
    )


def parse_labels(labels: Mapping[str, str], engine: Iterable[LinkSpec] = ()) -> Declaration:
    """Read ``link.<alias>=<child>``, ``link.<alias>.<attribute>``, ``linkinit.timeout``,
    ``linkinit.on-change``, ``linkinit.env.*`` and ``linkinit.template.*``. ``engine``: the
    links the Engine knows for the container (``docker_links``); ``link.<alias>.<attribute>``
    without ``link.<alias>=`` applies to the Engine's link of that alias."""
    timeout = on_change = None
    if TIMEOUT_LABEL in labels:
        timeout = parse_timeout(labels[TIMEOUT_LABEL], f"label {TIMEOUT_LABEL}")
    if ON_CHANGE_LABEL in labels:
        on_change = check_policy(labels[ON_CHANGE_LABEL], f"label {ON_CHANGE_LABEL}")
    return Declaration(_label_links(labels, {spec.alias: spec for spec in engine}), timeout,
                       on_change, *_label_outputs(labels))


# derived.LABEL_PREFIX and templates.LABEL_PREFIX, named here too: a container that declares
# neither never imports those modules (their regular expressions: re, ~3 ms of every start).
OUTPUT_LABELS = ("linkinit.env.", "linkinit.template.")


def _label_outputs(labels: Mapping[str, str]) -> tuple[tuple, tuple]:
    """The derived variables and templates the labels declare (none: nothing imported)."""
    if not any(key.startswith(OUTPUT_LABELS) for key in labels):
        return (), ()
    from linkinit.model import derived, templates

    return derived.parse_labels(labels), templates.parse_labels(labels)


def _label_links(labels: Mapping[str, str],
                 engine: Mapping[str, LinkSpec]) -> tuple[LinkSpec, ...]:
    children, attributes = _label_parts(labels)
    origins = {alias: f"label {LABEL_PREFIX}{alias}" for alias in children}
    for alias in attributes:
        if alias not in children and alias in engine:
            children[alias] = engine[alias].child
            origins[alias] = f"{engine[alias].origin} with label {LABEL_PREFIX}{alias}.*"
        elif alias not in children:
            raise DeclarationError(
                f"label {LABEL_PREFIX}{alias}.{next(iter(attributes[alias]))} has no "
                f"{LABEL_PREFIX}{alias}=<child> label to go with it (nor a --link of "
                f"that alias the Engine knows)"
            )
    return tuple(_label_spec(alias, child, attributes.get(alias, {}), origins[alias])
                 for alias, child in children.items())


def _label_parts(labels: Mapping[str, str]) -> tuple[dict[str, str], dict[str, dict[str, str]]]:
    """``link.<alias>=<child>`` by alias, and each alias's ``link.<alias>.<attribute>``."""
    children: dict[str, str] = {}
    attributes: dict[str, dict[str, str]] = {}
    for key in sorted(labels):
        value = labels[key]
        if not key.startswith(LABEL_PREFIX):
            continue
        origin = f"label {shorten(key)}"
        alias, dot, attribute = key[len(LABEL_PREFIX):].partition(".")
        check_alias(alias, origin)
        if not dot:
            if not value.strip():
                raise DeclarationError(
                    f"{origin}={value}: name the child container, e.g. {key}=db1")
            children[alias] = check_child(value.strip(), origin)
        elif attribute in LINK_ATTRIBUTES:
            attributes.setdefault(alias, {})[attribute] = value
        else:
            raise DeclarationError(
                f"label {key}: unknown link attribute {attribute!r} "
                f"(known: {', '.join(LINK_ATTRIBUTES)})"
            )
    return children, attributes


def _label_spec(alias: str, child: str, attrs: Mapping[str, str], origin: str) -> LinkSpec:
    key = f"{LABEL_PREFIX}{alias}"
    wait = parse_wait(attrs.get("wait", DEFAULT_WAIT), f"label {key}.wait")
    optional = parse_bool(attrs.get("optional", "false"), f"label {key}.optional")
    address = check_address(attrs.get("address", "ip").strip(), f"label {key}.address")
    env, secrets = _label_env(attrs, key)
    port = parse_port(attrs["port"], f"label {key}.port") if "port" in attrs else None
    return LinkSpec(alias, child, wait, optional, origin, address, env, secrets, port)


def _label_env(attrs: Mapping[str, str], key: str) -> tuple[childenv.Allowed, str]:
    """``link.<alias>.env`` and ``link.<alias>.secrets``: what the parent gets of the child's
    environment, and how."""
    env = childenv.parse_env(attrs.get("env", "all"), f"label {key}.env={attrs.get('env')}")
    secrets = childenv.parse_secrets(attrs.get("secrets", ""),
                                     f"label {key}.secrets={attrs.get('secrets')}")
    return env, secrets


def link_label_groups(labels: Mapping[str, str]) -> dict[str, dict[str, str]]:
    """The ``link.*`` labels grouped by alias, so that a tool reading other containers' labels
    (``ls``, ``guard``) can parse each alias alone and let a bad one spoil only itself."""
    groups: dict[str, dict[str, str]] = {}
    for key, value in labels.items():
        if key.startswith(LABEL_PREFIX):
            groups.setdefault(key[len(LABEL_PREFIX):].partition(".")[0], {})[key] = value
    return groups


def split_link(value: str) -> tuple[str, str]:
    """Docker's ``<child>[:<alias>]`` as (child, alias); the alias defaults to the child's
    name; the child is empty when none is given. The one reading of this form: ``--link``,
    ``LINKINIT_LINKS`` and the proxy's view of a parent's declarations all use it."""
    child, _, alias = value.partition(":")
    child = child.strip()
    return child, (alias or child).strip()


def parse_link(value: str, origin: str, example: str) -> LinkSpec:
    """One ``<child>[:<alias>]`` from ``origin``, as a link spec."""
    child, alias = split_link(value)
    if not child:
        raise DeclarationError(f"{origin}: expected <child>[:<alias>], e.g. {example}")
    return LinkSpec(check_alias(alias, origin), check_child(child, origin), origin=origin)


def parse_link_flag(value: str) -> LinkSpec:
    """Docker's own ``--link <child>[:<alias>]``."""
    return parse_link(value, f"flag --link {shorten(value)}", "--link db1:redis")


def parse_flags(links: Sequence[str], timeout: Optional[float] = None,
                env: Sequence[str] = (), templates: Sequence[str] = ()) -> Declaration:
    specs = tuple(parse_link_flag(value) for value in links)
    if not env and not templates:  # their modules import re: only when declared
        return Declaration(specs, timeout, None)
    from linkinit.model import derived
    from linkinit.model import templates as template_specs

    return Declaration(specs, timeout, None,
                       tuple(derived.merge([[derived.parse_flag(text) for text in env]])),
                       tuple(template_specs.parse_flag(text) for text in templates))


def merge(declarations: Iterable[Declaration]) -> Declaration:
    """Merge sources from weakest to strongest: a later source replaces an alias whole."""
    declarations = list(declarations)
    by_alias: dict[str, LinkSpec] = {}
    timeout = on_change = None
    for declaration in declarations:
        for spec in declaration.links:
            by_alias.pop(spec.alias, None)
            by_alias[spec.alias] = spec
        timeout = declaration.timeout if declaration.timeout is not None else timeout
        on_change = declaration.on_change or on_change
    check_prefixes_unique(by_alias.values())
    return Declaration(tuple(by_alias.values()), timeout, on_change,
                       *_merged_outputs(declarations))


def _merged_outputs(declarations: Sequence[Declaration]) -> tuple[tuple, tuple]:
    """The derived variables and templates, merged; none declared: nothing imported."""
    if not any(d.env or d.templates for d in declarations):
        return (), ()
    from linkinit.model import derived, templates

    return (derived.merge(d.env for d in declarations),
            templates.merge(d.templates for d in declarations))


def check_prefixes_unique(specs: Iterable[LinkSpec]) -> None:
    """``db-1`` and ``DB_1`` would write the same variables: refuse rather than pick one."""
    seen: dict[str, LinkSpec] = {}
    for spec in specs:
        other = seen.setdefault(spec.prefix, spec)
        if other is not spec:
            raise DeclarationError(
                f"{other.origin} and {spec.origin}: aliases {other.alias!r} and {spec.alias!r} "
                f"both make variables {spec.prefix}_*; rename one"
            )
