"""Derived variables: ``REDIS_URL=redis://:${REDIS_ENV_PASSWORD}@${REDIS_PORT_6379_TCP_ADDR}``.

Images read their own names (``DATABASE_URL``, ``DB_HOST``), not moby's, and used to ship
entrypoint shims to copy one into the other. A derived variable is declared with a label
``linkinit.env.<NAME>=<value>``, ``env:`` in the YAML file or ``--env NAME=VALUE``; its value
is expanded after the link variables are known (and again in follow mode).

Pure. ``${NAME}`` expands a link variable or one of the container's own; ``$$`` is a
literal ``$``; any other ``$`` stays as it is. An unknown name is a declaration error (64)
naming where the variable was declared and the name, because a silently empty host in a URL
fails much later, far from the typo.
"""

from __future__ import annotations

import re
from collections import namedtuple

from linkinit.errors import DeclarationError

TYPE_CHECKING = False
if TYPE_CHECKING:  # typing costs ~10 ms of every container start (bench/README.md)
    from typing import Iterable, Mapping

LABEL_PREFIX = "linkinit.env."
_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
# $$, ${...} (closed) or ${ left open; any other $ is kept as it is.
_TOKEN = re.compile(r"\$\$|\$\{([^}]*)\}|\$\{")


class DerivedSpec(namedtuple("DerivedSpec", "name value origin")):
    """One declared variable: name (str), value (str, with ``${...}`` unexpanded) and origin
    (where it was declared: ``label linkinit.env.X``, ``file:line: env X``, ``flag --env``)."""

    __slots__ = ()


def check_name(name: str, origin: str) -> str:
    if not _NAME.match(name):
        raise DeclarationError(
            f"{origin}: {name!r} is not a variable name: use letters, digits and '_', "
            "not starting with a digit"
        )
    return name


def references(value: str, origin: str) -> list[str]:
    """The names ``value`` refers to, in order; a malformed ``${`` is an error here, so that
    a typo is reported at start even where the value is never expanded."""
    names = []
    for match in _TOKEN.finditer(value):
        token = match.group(0)
        if token == "$$":
            continue
        if token == "${":
            raise DeclarationError(f"{origin}: '${{' without its closing '}}' in {value!r}")
        names.append(check_name(match.group(1), f"{origin}: ${{{match.group(1)}}}"))
    return names


def spec(name: str, value: str, origin: str) -> DerivedSpec:
    """A checked declaration: a valid name, a value whose every ``${...}`` is well formed."""
    check_name(name, origin)
    references(value, origin)
    return DerivedSpec(name, value, origin)


def parse_labels(labels: Mapping[str, str]) -> tuple[DerivedSpec, ...]:
    """``linkinit.env.<NAME>=<value>`` labels, by name."""
    return tuple(
        spec(key[len(LABEL_PREFIX):], labels[key], f"label {key}")
        for key in sorted(labels) if key.startswith(LABEL_PREFIX)
    )


def parse_flag(text: str) -> DerivedSpec:
    """``--env NAME=VALUE``."""
    name, equals, value = text.partition("=")
    origin = f"flag --env {text}"
    if not equals:
        raise DeclarationError(f"{origin}: expected NAME=VALUE, e.g. --env "
                               "REDIS_HOST='${REDIS_PORT_6379_TCP_ADDR}'")
    return spec(name.strip(), value, origin)


def merge(sources: Iterable[Iterable[DerivedSpec]]) -> tuple[DerivedSpec, ...]:
    """Weakest source first: a stronger one replaces a name whole."""
    by_name: dict[str, DerivedSpec] = {}
    for source in sources:
        for one in source:
            by_name.pop(one.name, None)
            by_name[one.name] = one
    return tuple(by_name.values())


def expand(value: str, names: Mapping[str, str], origin: str,
           derived: Iterable[str] = ()) -> str:
    """``value`` with each ``${NAME}`` replaced from ``names`` and ``$$`` made ``$``."""

    def replace(match: re.Match) -> str:
        if match.group(0) == "$$":
            return "$"
        name = match.group(1)
        if name is None:
            raise DeclarationError(f"{origin}: '${{' without its closing '}}' in {value!r}")
        if name in names:
            return names[name]
        raise DeclarationError(unknown_message(origin, name, names, derived))

    return _TOKEN.sub(replace, value)


def unknown_message(origin: str, name: str, names: Mapping[str, str],
                    derived: Iterable[str]) -> str:
    """Why ``${name}`` cannot be expanded, with the closest known names as a hint."""
    if name in set(derived):
        return (f"{origin}: ${{{name}}} is another derived variable; a value may use link "
                "variables and the container's own, not other derived ones")
    import difflib  # only on the way to an error

    close = difflib.get_close_matches(name, list(names), n=1, cutoff=0.6)
    hint = f" (did you mean {close[0]}?)" if close else ""
    return (f"{origin}: ${{{name}}} is not a link variable nor one of this container's "
            f"variables{hint}; write $$ for a literal $")


def derive(specs: Iterable[DerivedSpec], link_env: Mapping[str, str],
           own_env: Mapping[str, str]) -> dict[str, str]:
    """The derived variables' values, from the link variables and the container's own (its
    own winning, as in COMMAND's environment). A derived value does not see other derived
    ones, so the order of declarations never matters."""
    specs = list(specs)
    names = {**link_env, **own_env}
    declared = [one.name for one in specs]
    return {one.name: expand(one.value, names, one.origin, declared) for one in specs}
