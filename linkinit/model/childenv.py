"""Which of a child's variables a parent receives: ``link.<alias>.env`` and ``.secrets``.

Pure, and on the start path (``declare`` reads its values), so it imports nothing. Docker's
links copied a child's whole environment into the parent (``<ALIAS>_ENV_<key>``), which is
how one container's credentials reached every container linked to it. A declaration can
name the keys the parent needs instead (``env=PASSWORD,USER``), none (``env=none``), or
keep Docker's behaviour (``env=all``, the default). ``secrets=files`` hands the copied
values over as files rather than variables (``secretfiles``).

An allowlist is a tuple of keys; ``ALL`` (None) means every key, as Docker did. The keys are
matched exactly (an environment's keys are case-sensitive). HOME and PATH are never copied,
as Docker never copied them, so naming one is a declaration error rather than a silent
no-op.
"""

from __future__ import annotations

from linkinit.errors import DeclarationError

TYPE_CHECKING = False
if TYPE_CHECKING:  # typing costs ~10 ms of every container start (bench/README.md)
    from typing import Iterable, Optional, Sequence

    Allowed = Optional[tuple[str, ...]]

ALL = None  # every key of the child's environment (Docker's own behaviour)
NONE: tuple[str, ...] = ()
NEVER_COPIED = ("HOME", "PATH")  # Docker left them out of every link
SECRETS_MODES = ("files",)
_FORBIDDEN_CHARACTERS = ("=", "\0", ",")


def parse_env(value: object, origin: str) -> Allowed:
    """``all``, ``none`` or ``KEY[,KEY...]`` (a label's text) -> ALL, NONE or the keys."""
    text = str(value).strip()
    if text == "all":
        return ALL
    if text == "none":
        return NONE
    return check_keys([part.strip() for part in text.split(",")], origin)


def check_keys(keys: Sequence[object], origin: str) -> tuple[str, ...]:
    """A list of keys (the YAML file's ``env: [KEY, ...]``), each checked, duplicates kept once."""
    checked: list[str] = []
    for key in keys:
        text = str(key).strip()
        if not text or any(c in _FORBIDDEN_CHARACTERS or c.isspace() for c in text):
            raise DeclarationError(
                f"{origin}: {text!r} is not a variable name: give all, none or KEY[,KEY...] "
                "(e.g. env=PASSWORD,USER)")
        if text in NEVER_COPIED:
            raise DeclarationError(
                f"{origin}: {text} is never copied from a child (Docker's links left HOME and "
                "PATH out); leave it out of the list")
        if text not in checked:
            checked.append(text)
    return tuple(checked)


def parse_secrets(value: object, origin: str) -> str:
    """``files`` (each copied variable becomes a file) or empty / ``none`` (variables)."""
    text = str(value).strip()
    if text in ("", "none"):
        return ""
    if text not in SECRETS_MODES:
        raise DeclarationError(f"{origin}: secrets must be files or none, not {text!r}")
    return text


def _key(entry: str) -> str:
    return entry.partition("=")[0]


def select(entries: Iterable[str], allowed: Allowed) -> tuple[str, ...]:
    """The child's ``KEY=value`` entries the parent receives, in the child's order."""
    if allowed is ALL:
        return tuple(entries)
    wanted = set(allowed)
    return tuple(entry for entry in entries if _key(entry) in wanted)


def missing(entries: Iterable[str], allowed: Allowed) -> list[str]:
    """The named keys the child does not have (they are simply not exported)."""
    if allowed is ALL:
        return []
    present = {_key(entry) for entry in entries if "=" in entry}
    return [key for key in allowed if key not in present]


def widest(first: Allowed, second: Allowed) -> Allowed:
    """What a parent may see of a child it links twice (two aliases): the union."""
    if first is ALL or second is ALL:
        return ALL
    return tuple(dict.fromkeys((*first, *second)))


def describe(allowed: Allowed) -> str:
    """``all``, ``none`` or ``KEY,KEY``: a declaration as the user writes it."""
    if allowed is ALL:
        return "all"
    return ",".join(allowed) if allowed else "none"
