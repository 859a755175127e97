"""Templates declared with the links, and what a template sees: pure.

The rendering and writing are the init's (``linkinit/init/templates.py``); this module reads
the declarations and builds a template's names, so the model stays free of Jinja2 and files.

A template is declared with a label ``linkinit.template.<id>=SRC:DEST`` (and optionally
``.check``, ``.mode``, ``.owner``), under ``templates:`` in the YAML file, or with
``--template SRC:DEST``. It is Jinja2 in its sandbox with undefined names an error: the
names are COMMAND's variables (link, derived and the container's own) and ``links``, each
link as ``address``, ``ip``, ``port``, ``ports``, ``env``, ``name``, ``hostname``.

"""

from __future__ import annotations

import re
from collections import namedtuple

from linkinit.errors import DeclarationError

TYPE_CHECKING = False
if TYPE_CHECKING:  # typing costs ~10 ms of every container start (bench/README.md)
    from typing import Iterable, Mapping, Optional

    from linkinit.model.envvars import ResolvedLink

LABEL_PREFIX = "linkinit.template."
ATTRIBUTES = ("check", "mode", "owner")
FILE_VARIABLE = "LINKINIT_TEMPLATE_FILE"  # the new file, for the check
DEST_VARIABLE = "LINKINIT_TEMPLATE_DEST"
CHECK_TIMEOUT = 60.0
DEFAULT_MODE = 0o644
_ID = re.compile(r"^[A-Za-z0-9_-]+$")


class TemplateSpec(
    namedtuple("TemplateSpec", "id source dest check mode owner origin",
               defaults=("", None, "", ""))
):
    """One declared template: id; source and dest (absolute paths in the container); check
    (a shell command, "" for none); mode (int or None: 0644); owner (``user[:group]`` or "");
    origin (where it was declared, for error messages)."""

    __slots__ = ()


def parse_pair(value: str, origin: str) -> tuple[str, str]:
    """``SRC:DEST``, both absolute paths."""
    source, colon, dest = value.strip().partition(":")
    if not colon or not source.startswith("/") or not dest.startswith("/"):
        raise DeclarationError(
            f"{origin}: expected SRC:DEST, two absolute paths in the container, e.g. "
            "/etc/linkinit/upstream.conf.j2:/etc/nginx/conf.d/upstream.conf"
        )
    return source, dest


def parse_mode(value: object, origin: str) -> int:
    text = str(value).strip()
    try:
        mode = int(text, 8)
    except ValueError:
        mode = -1
    if not 0 <= mode <= 0o7777:
        raise DeclarationError(f"{origin}: mode must be octal permissions, e.g. 0644, "
                               f"not {text!r}")
    return mode


def spec(template_id: str, pair: str, origin: str, check: str = "",
         mode: Optional[object] = None, owner: str = "") -> TemplateSpec:
    """A checked declaration."""
    if not _ID.match(template_id):
        raise DeclarationError(f"{origin}: template id {template_id!r} is not valid: use "
                               "letters, digits, '_' and '-' only")
    source, dest = parse_pair(pair, origin)
    checked_mode = None if mode is None else parse_mode(mode, f"{origin}.mode")
    return TemplateSpec(template_id, source, dest, str(check).strip(), checked_mode,
                        str(owner).strip(), origin)


def parse_labels(labels: Mapping[str, str]) -> tuple[TemplateSpec, ...]:
    """``linkinit.template.<id>=SRC:DEST`` and ``linkinit.template.<id>.check|mode|owner``."""
    pairs: dict[str, str] = {}
    attributes: dict[str, dict[str, str]] = {}
    for key in sorted(labels):
        if not key.startswith(LABEL_PREFIX):
            continue
        template_id, dot, attribute = key[len(LABEL_PREFIX):].partition(".")
        if not dot:
            pairs[template_id] = labels[key]
        elif attribute in ATTRIBUTES:
            attributes.setdefault(template_id, {})[attribute] = labels[key]
        else:
            raise DeclarationError(f"label {key}: unknown template attribute {attribute!r} "
                                   f"(known: {', '.join(ATTRIBUTES)})")
    for template_id, attrs in attributes.items():
        if template_id not in pairs:
            raise DeclarationError(
                f"label {LABEL_PREFIX}{template_id}.{next(iter(attrs))} has no "
                f"{LABEL_PREFIX}{template_id}=SRC:DEST label to go with it")
    return tuple(
        spec(template_id, pair, f"label {LABEL_PREFIX}{template_id}",
             **attributes.get(template_id, {}))  # type: ignore[arg-type]
        for template_id, pair in pairs.items()
    )


def parse_flag(text: str) -> TemplateSpec:
    """``--template SRC:DEST``: its id is its DEST, so a flag replaces a file's or a label's
    template only when that one's id is the same path."""
    origin = f"flag --template {text}"
    _, dest = parse_pair(text, origin)
    return TemplateSpec(dest, *parse_pair(text, origin), origin=origin)


def merge(sources: Iterable[Iterable[TemplateSpec]]) -> tuple[TemplateSpec, ...]:
    """Weakest source first, a stronger one replacing an id whole; two templates writing one
    file are refused."""
    by_id: dict[str, TemplateSpec] = {}
    for source in sources:
        for one in source:
            by_id.pop(one.id, None)
            by_id[one.id] = one
    dests: dict[str, TemplateSpec] = {}
    for one in by_id.values():
        other = dests.setdefault(one.dest, one)
        if other is not one:
            raise DeclarationError(f"{other.origin} and {one.origin} both write {one.dest}; "
                                   "keep one")
    return tuple(by_id.values())


# -- what a template sees ------------------------------------------------------------------


def link_values(link: ResolvedLink) -> dict:
    """One link as a template's ``links.<alias>``."""
    from linkinit.model.container import Port
    from linkinit.model.envvars import child_variables, exported_address

    ports = sorted(set(link.ports), key=Port.sort_key)
    return {
        "address": exported_address(link), "ip": link.ip,
        "port": ports[0].number if ports else None,
        "ports": [{"number": port.number, "proto": port.proto} for port in ports],
        "env": dict(child_variables(link)), "name": link.child_name,
        "hostname": link.child_hostname,
    }


def context(environment: Mapping[str, str], links: Iterable[ResolvedLink]) -> dict:
    """A template's names: COMMAND's variables, and ``links`` by alias. Pure."""
    return {**environment, "links": {link.alias: link_values(link) for link in links}}
