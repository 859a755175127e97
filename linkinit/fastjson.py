"""JSON on the start path without the ``json`` package: the same C scanner and encoder.

``json``'s modules compile regular expressions when imported, so ``import json`` brings
``re`` (with ``enum`` and ``functools``): ~4 ms of every container start, more than one
Engine request (bench/README.md). ``json.loads``/``json.dumps`` with their defaults do
their work in CPython's ``_json`` accelerator; this module calls it directly, with the same
defaults, and falls back to ``json`` where there is no ``_json`` (another Python). Errors
are ``ValueError`` (``json.JSONDecodeError`` is one), as from ``json.loads``.
"""

from __future__ import annotations

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any, Callable, Optional

_SPACE = " \t\n\r"  # JSON's whitespace


class _Defaults:
    """What ``_json.make_scanner`` reads off a decoder: ``json.loads``'s defaults."""

    strict = True
    object_hook = None
    object_pairs_hook = None
    parse_float = float
    parse_int = int
    parse_constant = {"-Infinity": float("-inf"), "Infinity": float("inf"),
                      "NaN": float("nan")}.__getitem__


def _unserialisable(value: object) -> Any:
    raise TypeError(f"Object of type {type(value).__name__} is not JSON serializable")


def _accelerators() -> tuple[Optional[Callable[..., Any]], Optional[Callable[..., Any]]]:
    """The C scanner and encoder, or (None, None) where this Python has none that fit."""
    try:
        import _json

        scan = _json.make_scanner(_Defaults())  # type: ignore[arg-type]
        encode = _json.make_encoder(  # json.dumps's defaults: ", " and ": ", ASCII only
            {}, _unserialisable, _json.encode_basestring_ascii, None, ": ", ", ",
            False, False, True)
    except (ImportError, AttributeError, TypeError):  # pragma: no cover - not CPython
        return None, None
    return scan, encode


_scan, _encode = _accelerators()


def loads(data: bytes | str) -> Any:
    """``json.loads(data)`` for UTF-8 bytes or text."""
    text = data.decode("utf-8") if isinstance(data, (bytes, bytearray)) else data
    if _scan is None:  # pragma: no cover - not CPython
        import json

        return json.loads(text)
    start = len(text) - len(text.lstrip(_SPACE))
    try:
        value, end = _scan(text, start)
    except StopIteration as stop:
        raise ValueError(f"Expecting value: char {stop.value}") from None
    if text[end:].strip(_SPACE):
        raise ValueError(f"Extra data: char {end}")
    return value


def dumps(value: Any) -> str:
    """``json.dumps(value)``: the same text."""
    if _encode is None:  # pragma: no cover - not CPython
        import json

        return json.dumps(value)
    return "".join(_encode(value, 0))
