"""JSON on the start path without the json package: the same values and text as json."""

from __future__ import annotations

import json
import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from linkinit import fastjson

VALUES = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(), inner, max_size=4),
    max_leaves=20,
)


@given(VALUES)
def test_dumps_writes_what_json_dumps_writes(value):
    """The same text as ``json.dumps`` with its defaults (", ", ": ", ASCII only)."""
    assert fastjson.dumps(value) == json.dumps(value)


@given(VALUES, st.sampled_from(["", " ", "\n", "\r\n\t "]))
def test_loads_reads_what_json_reads(value, space):
    """What ``json.dumps`` wrote, between any JSON whitespace, as text or UTF-8 bytes."""
    text = space + json.dumps(value, ensure_ascii=False) + space
    assert fastjson.loads(text) == json.loads(text)
    assert fastjson.loads(text.encode()) == json.loads(text)


def test_constants_are_read_as_json_reads_them():
    assert math.isinf(fastjson.loads("[Infinity]")[0])
    assert math.isnan(fastjson.loads("NaN"))


@pytest.mark.parametrize("text", ["", "  ", "{", "[1,]", "1 2", "nul", '{"a": 1}x', "\xff"])
def test_bad_json_is_a_value_error_as_from_json(text):
    """Where ``json.loads`` raises (a ValueError), so does this."""
    with pytest.raises(ValueError):
        json.loads(text)
    with pytest.raises(ValueError):
        fastjson.loads(text)


def test_what_json_cannot_write_is_a_type_error():
    with pytest.raises(TypeError, match="not JSON serializable"):
        fastjson.dumps({"a": object()})
