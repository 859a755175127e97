"""Link declarations: labels, the YAML file and flags, turned into link specs.

Pure: takes label maps, file text and flag strings, touches no socket. Every error names the
label, file line or flag it came from, because a declaration is the user's own typing and the
fix is always "edit that one place".
"""

from __future__ import annotations

from collections import namedtuple

from linkinit.errors import DeclarationError, LinkinitError

TYPE_CHECKING = False
if TYPE_CHECKING:  # typing costs ~10 ms of every container start (bench/README.md)
    from typing import Iterable, Mapping, Optional, Sequence

WAIT_MODES = ("started", "healthy", "listening", "none")
DEFAULT_WAIT = "listening"
DEFAULT_TIMEOUT = 60.0
LABEL_PREFIX = "link."
TIMEOUT_LABEL = "linkinit.timeout"
ON_CHANGE_LABEL = "linkinit.on-change"
POLICIES = ("none", "hosts", "signal:<SIG>", "restart", "exit")
ALIAS_CHARS = "[A-Za-z0-9_-]"  # what an alias is made of (no dot: link.<alias>.wait)
# the same set, checked without re (~3 ms of every container start)
_ALIAS = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_-")
_TRUE = {"true", "1", "yes", "on"}
_FALSE = {"false", "0", "no", "off", ""}


# Records are collections.namedtuple, not typing.NamedTuple: importing typing costs ~10 ms
# of every container start. Their fields are listed in each docstring.


class LinkSpec(
    namedtuple("LinkSpec", "alias child wait optional origin", defaults=(DEFAULT_WAIT, False, ""))
):
    """One declared link: the parent will know ``child`` as ``alias``.

    alias: str; child: str (name, ID, ID prefix or network alias); wait: one of WAIT_MODES;
    optional: bool; origin: str, where it was declared, for error messages.
    """

    __slots__ = ()

    @property
    def prefix(self) -> str:
        """The variable prefix Docker derives from the alias (``db-1`` -> ``DB_1``)."""
        return env_prefix(self.alias)


class Declaration(
    namedtuple("Declaration", "links timeout on_change", defaults=((), None, None))
):
    """The links of one source (or of all, merged), and the settings it made, if any.

    links: tuple of LinkSpec; timeout: seconds (float) or None; on_change: follow mode's
    policy (``check_policy``'s form) or None.
    """

    __slots__ = ()


def env_prefix(alias: str) -> str:
    return alias.upper().replace("-", "_")


def check_alias(alias: str, origin: str) -> str:
    if not alias or not _ALIAS.issuperset(alias):
        raise DeclarationError(
            f"{origin}: alias {alias!r} is not valid: use letters, digits, '_' and '-' only"
        )
    return alias


def check_wait(value: str, origin: str) -> str:
    if value not in WAIT_MODES:
        raise DeclarationError(
            f"{origin}: wait must be one of {', '.join(WAIT_MODES)}, not {value!r}"
        )
    return value


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
        raise DeclarationError(f"{origin}: timeout must be a number of seconds >= 0, not {value!r}")
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


def parse_labels(labels: Mapping[str, str]) -> Declaration:
    """Read ``link.<alias>=<child>``, ``link.<alias>.wait|optional``, ``linkinit.timeout``
    and ``linkinit.on-change``."""
    timeout = on_change = None
    if TIMEOUT_LABEL in labels:
        timeout = parse_timeout(labels[TIMEOUT_LABEL], f"label {TIMEOUT_LABEL}")
    if ON_CHANGE_LABEL in labels:
        on_change = check_policy(labels[ON_CHANGE_LABEL], f"label {ON_CHANGE_LABEL}")
    return Declaration(_label_links(labels), timeout, on_change)


def _label_links(labels: Mapping[str, str]) -> tuple[LinkSpec, ...]:
    children: dict[str, str] = {}
    attributes: dict[str, dict[str, str]] = {}
    for key in sorted(labels):
        value = labels[key]
        origin = f"label {key}={value}"
        if not key.startswith(LABEL_PREFIX):
            continue
        alias, dot, attribute = key[len(LABEL_PREFIX):].partition(".")
        check_alias(alias, f"label {key}")
        if not dot:
            if not value.strip():
                raise DeclarationError(f"{origin}: name the child container, e.g. {key}=db1")
            children[alias] = value.strip()
        elif attribute in ("wait", "optional"):
            attributes.setdefault(alias, {})[attribute] = value
        else:
            raise DeclarationError(
                f"label {key}: unknown link attribute {attribute!r} (known: wait, optional)"
            )
    for alias in attributes:
        if alias not in children:
            raise DeclarationError(
                f"label {LABEL_PREFIX}{alias}.{next(iter(attributes[alias]))} has no "
                f"{LABEL_PREFIX}{alias}=<child> label to go with it"
            )
    links = []
    for alias, child in children.items():
        attrs = attributes.get(alias, {})
        key = f"{LABEL_PREFIX}{alias}"
        wait = check_wait(attrs.get("wait", DEFAULT_WAIT).strip(), f"label {key}.wait")
        optional = parse_bool(attrs.get("optional", "false"), f"label {key}.optional")
        links.append(LinkSpec(alias, child, wait, optional, f"label {key}"))
    return tuple(links)


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
    return LinkSpec(check_alias(alias, origin), child, origin=origin)


def parse_link_flag(value: str) -> LinkSpec:
    """Docker's own ``--link <child>[:<alias>]``."""
    return parse_link(value, f"flag --link {value}", "--link db1:redis")


def parse_flags(links: Sequence[str], timeout: Optional[float] = None) -> Declaration:
    return Declaration(tuple(parse_link_flag(value) for value in links), timeout)


def merge(declarations: Iterable[Declaration]) -> Declaration:
    """Merge sources from weakest to strongest: a later source replaces an alias whole."""
    by_alias: dict[str, LinkSpec] = {}
    timeout = on_change = None
    for declaration in declarations:
        for spec in declaration.links:
            by_alias.pop(spec.alias, None)
            by_alias[spec.alias] = spec
        timeout = declaration.timeout if declaration.timeout is not None else timeout
        on_change = declaration.on_change or on_change
    check_prefixes_unique(by_alias.values())
    return Declaration(tuple(by_alias.values()), timeout, on_change)


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


def parse_yaml(text: str, path: str) -> Declaration:
    """Read ``links: {alias: {container: db1, wait: healthy, optional: true}}`` and ``timeout``.

    ``alias: db1`` is accepted as a short form. Errors name ``path:line``.
    """
    import yaml  # only a file needs it: keep it off the start path of label-only users

    try:
        root = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.YAMLError as error:
        mark = getattr(error, "problem_mark", None)
        where = f"{path}:{mark.line + 1}" if mark is not None else path
        problem = getattr(error, "problem", None) or str(error)
        raise DeclarationError(f"{where}: not valid YAML: {problem}") from None
    if root is None:
        return Declaration()
    mapping = _unique(path, _mapping(root, path, "the file"), "key")
    links: list[LinkSpec] = []
    settings: dict[str, object] = {}
    for key_node, value_node in mapping:
        key = key_node.value
        where = _where(path, key_node)
        if key == "links" and _is_null(value_node):
            continue  # ``links:`` with nothing under it: no links
        if key == "links":
            links.extend(_yaml_links(path, value_node))
        elif key in _YAML_SETTINGS:
            settings[key] = _YAML_SETTINGS[key](value_node.value, f"{where}: {key}")
        else:
            raise DeclarationError(
                f"{where}: unknown key {key!r} (known: links, {', '.join(_YAML_SETTINGS)})"
            )
    check_prefixes_unique(links)
    return Declaration(tuple(links), settings.get("timeout"), settings.get("on_change"))


_YAML_SETTINGS = {"timeout": parse_timeout, "on_change": check_policy}


def _yaml_links(path: str, node: object) -> list[LinkSpec]:
    return [_yaml_link(path, key, value)
            for key, value in _unique(path, _mapping(node, path, "links"), "link")]


def _unique(path: str, pairs: list, what: str) -> list:
    """A mapping's (key, value) nodes; a key written twice is an error at its second line
    (YAML would silently keep the last)."""
    first: dict[str, str] = {}
    for key_node, _ in pairs:
        key = str(key_node.value)
        if key in first:
            raise DeclarationError(
                f"{_where(path, key_node)}: {what} {key} is written twice (first at "
                f"{first[key]}); keep one"
            )
        first[key] = _where(path, key_node)
    return pairs


def _is_null(node: object) -> bool:
    return getattr(node, "tag", "") == "tag:yaml.org,2002:null"


def _where(path: str, node: object) -> str:
    return f"{path}:{node.start_mark.line + 1}"  # type: ignore[attr-defined]


def _mapping(node: object, path: str, what: str) -> list:
    import yaml

    if not isinstance(node, yaml.MappingNode):
        raise DeclarationError(f"{_where(path, node)}: {what} must be a mapping")
    return node.value


def _yaml_link(path: str, key_node: object, value_node: object) -> LinkSpec:
    import yaml

    alias = str(key_node.value)  # type: ignore[attr-defined]
    origin = f"{_where(path, key_node)}: link {alias}"
    check_alias(alias, origin)
    if isinstance(value_node, yaml.ScalarNode):
        fields = {"container": value_node.value}
    else:
        fields = {}
        for field_node, field_value in _mapping(value_node, path, f"link {alias}"):
            if not isinstance(field_value, yaml.ScalarNode):
                raise DeclarationError(
                    f"{_where(path, field_value)}: {field_node.value} must be a plain value"
                )
            fields[field_node.value] = field_value.value
    unknown = set(fields) - {"container", "wait", "optional"}
    if unknown:
        raise DeclarationError(
            f"{origin}: unknown field {sorted(unknown)[0]!r} (known: container, wait, optional)"
        )
    child = str(fields.get("container", "")).strip()
    if not child:
        raise DeclarationError(f"{origin}: name the child, e.g. {alias}: {{container: db1}}")
    wait = check_wait(str(fields.get("wait", DEFAULT_WAIT)), f"{origin}.wait")
    optional = parse_bool(fields.get("optional", False), f"{origin}.optional")
    return LinkSpec(alias, child, wait, optional, origin)
