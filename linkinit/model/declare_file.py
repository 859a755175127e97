"""Link declarations from the YAML file (``/etc/linkinit.yaml`` or ``--config``): pure.

Every error names the file and line, as ``path:line``: the fix is "edit that line". A key
written twice is an error at its second line, where YAML itself would keep the last.
"""

from __future__ import annotations

from linkinit.errors import DeclarationError
from linkinit.model import childenv
from linkinit.model.declare import (
    DEFAULT_WAIT,
    LINK_ATTRIBUTES,
    Declaration,
    LinkSpec,
    check_address,
    check_alias,
    check_child,
    check_policy,
    check_prefixes_unique,
    parse_bool,
    parse_port,
    parse_timeout,
    parse_wait,
    shorten,
)

TYPE_CHECKING = False
if TYPE_CHECKING:  # typing costs ~10 ms of every container start (bench/README.md)
    pass


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
    sections: dict[str, list] = {"links": [], "env": [], "templates": []}
    settings: dict[str, object] = {}
    for key_node, value_node in mapping:
        key = key_node.value
        where = _where(path, key_node)
        if key in sections and _is_null(value_node):
            continue  # ``links:`` with nothing under it: no links
        if key in sections:
            sections[key].extend(_YAML_SECTIONS[key](path, value_node))
        elif key in _YAML_SETTINGS:
            settings[key] = _YAML_SETTINGS[key](value_node.value, f"{where}: {key}")
        else:
            raise DeclarationError(
                f"{where}: unknown key {key!r} (known: {', '.join(sections)}, "
                f"{', '.join(_YAML_SETTINGS)})"
            )
    check_prefixes_unique(sections["links"])
    return Declaration(tuple(sections["links"]), settings.get("timeout"),
                       settings.get("on_change"), tuple(sections["env"]),
                       tuple(sections["templates"]))


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
    origin = f"{_where(path, key_node)}: link {shorten(alias)}"
    check_alias(alias, origin)
    if isinstance(value_node, yaml.ScalarNode):
        fields = {"container": value_node.value}
    else:
        fields = {}
        for field_node, field_value in _mapping(value_node, path, f"link {alias}"):
            fields[field_node.value] = _yaml_field(path, field_node, field_value)
    unknown = set(fields) - {"container", *LINK_ATTRIBUTES}
    if unknown:
        raise DeclarationError(
            f"{origin}: unknown field {sorted(unknown)[0]!r} "
            f"(known: container, {', '.join(LINK_ATTRIBUTES)})"
        )
    child = str(fields.get("container", "")).strip()
    if not child:
        raise DeclarationError(f"{origin}: name the child, e.g. {alias}: {{container: db1}}")
    check_child(child, origin)
    wait = parse_wait(fields.get("wait", DEFAULT_WAIT), f"{origin}.wait")
    optional = parse_bool(fields.get("optional", False), f"{origin}.optional")
    address = check_address(str(fields.get("address", "ip")), f"{origin}.address")
    env = fields.get("env", "all")
    allowed = (childenv.check_keys(env, f"{origin}.env") if isinstance(env, list)
               else childenv.parse_env(env, f"{origin}.env"))
    secrets = childenv.parse_secrets(fields.get("secrets", ""), f"{origin}.secrets")
    port = parse_port(fields["port"], f"{origin}.port") if "port" in fields else None
    return LinkSpec(alias, child, wait, optional, origin, address, allowed, secrets, port)


def _yaml_field(path: str, name_node: object, node: object) -> object:
    """A link's field: a plain value, or for ``env`` a list of plain values (the keys)."""
    import yaml

    name = name_node.value  # type: ignore[attr-defined]
    if name == "env" and isinstance(node, yaml.SequenceNode):
        if all(isinstance(item, yaml.ScalarNode) for item in node.value):
            return [item.value for item in node.value]
        raise DeclarationError(f"{_where(path, node)}: env must be a list of variable names")
    if not isinstance(node, yaml.ScalarNode):
        raise DeclarationError(f"{_where(path, node)}: {name} must be a plain value")
    return node.value


def _yaml_env(path: str, node: object) -> list:
    """``env: {NAME: value}``: derived variables, each named by its line."""
    import yaml

    from linkinit.model import derived

    found = []
    for key_node, value_node in _unique(path, _mapping(node, path, "env"), "variable"):
        origin = f"{_where(path, key_node)}: env {key_node.value}"
        if not isinstance(value_node, yaml.ScalarNode):
            raise DeclarationError(f"{origin}: the value must be a plain string")
        found.append(derived.spec(str(key_node.value), str(value_node.value), origin))
    return found


def _yaml_templates(path: str, node: object) -> list:
    """``templates: {id: {source: SRC, dest: DEST, check: CMD, mode: "0644", owner: USER}}``
    or ``id: SRC:DEST``."""
    import yaml

    from linkinit.model import templates

    known = ("source", "dest", *templates.ATTRIBUTES)
    found = []
    for key_node, value_node in _unique(path, _mapping(node, path, "templates"), "template"):
        origin = f"{_where(path, key_node)}: template {key_node.value}"
        if isinstance(value_node, yaml.ScalarNode):
            found.append(templates.spec(str(key_node.value), value_node.value, origin))
            continue
        fields = _plain_fields(path, value_node)
        unknown = set(fields) - set(known)
        if unknown:
            raise DeclarationError(f"{origin}: unknown field {sorted(unknown)[0]!r} (known: "
                                   f"{', '.join(known)})")
        pair = f"{fields.pop('source', '')}:{fields.pop('dest', '')}"
        found.append(templates.spec(str(key_node.value), pair, origin, **fields))
    return found


def _plain_fields(path: str, node: object) -> dict:
    """A mapping whose values are plain (scalars), by key."""
    import yaml

    fields = {}
    for field_node, field_value in _mapping(node, path, "a template"):
        if not isinstance(field_value, yaml.ScalarNode):
            raise DeclarationError(
                f"{_where(path, field_value)}: {field_node.value} must be a plain value"
            )
        fields[str(field_node.value)] = field_value.value
    return fields


_YAML_SECTIONS = {"links": _yaml_links, "env": _yaml_env, "templates": _yaml_templates}
