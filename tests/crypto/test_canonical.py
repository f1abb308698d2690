"""carebridge.crypto.canonical: canonical JSON encoding and strict parsing."""

from __future__ import annotations

import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

from carebridge.crypto.canonical import (
    MAX_CANONICAL_JSON_BYTES,
    MAX_JSON_DEPTH,
    MAX_SAFE_INTEGER,
    canonical_json,
    parse_canonical_json,
)
from carebridge.crypto.errors import CanonicalJSONError


def test_canonical_json_literal() -> None:
    value = {"b": [1, True, None, -7], "a": 'é\n"/\\\x01\x7f', "": {}}
    assert (
        canonical_json(value)
        == '{"":{},"a":"é\\n\\"/\\\\\\u0001\x7f","b":[1,true,null,-7]}'.encode()
    )


@pytest.mark.parametrize(
    "value",
    [
        1.0,
        [0.5],
        {"a": float("nan")},
        float("inf"),
        2**53,
        -(2**53),
        {1: "a"},
        b"bytes",
        {"a"},
        "\ud800",
        object(),
    ],
)
def test_canonical_json_refuses(value: object) -> None:
    with pytest.raises(CanonicalJSONError):
        canonical_json(value)


def test_canonical_json_integer_bounds_are_inclusive() -> None:
    assert (
        canonical_json([MAX_SAFE_INTEGER, -MAX_SAFE_INTEGER])
        == b"[9007199254740991,-9007199254740991]"
    )
    assert parse_canonical_json(b"[9007199254740991,-9007199254740991]") == [
        MAX_SAFE_INTEGER,
        -MAX_SAFE_INTEGER,
    ]


def test_canonical_json_depth_limit() -> None:
    def nested(depth: int) -> object:
        value: object = 0
        for _ in range(depth):
            value = [value]
        return value

    assert parse_canonical_json(canonical_json(nested(MAX_JSON_DEPTH))) == nested(MAX_JSON_DEPTH)
    with pytest.raises(CanonicalJSONError, match="deeper"):
        canonical_json(nested(MAX_JSON_DEPTH + 1))


@pytest.mark.parametrize(
    "data",
    [
        b"",
        b" 1",
        b"1 ",
        b"1\n",
        b"\xef\xbb\xbf1",  # BOM
        b'{"a":1.5}',
        b'{"a":1.0}',
        b'{"a":1e2}',
        b'{"a":NaN}',
        b'{"a":Infinity}',
        b"[-Infinity]",
        b"[1E400]",
        b"[9007199254740992]",
        b"[-9007199254740992]",
        b"[" + b"1" * 5000 + b"]",
        b"[-0]",
        b'{"a":1,"a":1}',
        b'{"a":{"b":1,"b":2}}',
        b'{"b":1,"a":2}',
        b'{"a": 1}',
        b'"\\ud800"',
        b'"\\u0041"',
        b'"\\/"',
        b'"\\u00e9"',
        b'"\xff"',
        b'"\xed\xa0\x80"',  # a surrogate in UTF-8 form
        b"[" * 100_000 + b"]" * 100_000,
        b"[" * 10,
        b"{'a':1}",
    ],
)
def test_parse_canonical_json_refuses(data: bytes) -> None:
    with pytest.raises(CanonicalJSONError):
        parse_canonical_json(data)


def test_size_cap_boundary() -> None:
    at_cap = b'"' + b"a" * (MAX_CANONICAL_JSON_BYTES - 2) + b'"'
    assert len(parse_canonical_json(at_cap)) == MAX_CANONICAL_JSON_BYTES - 2
    with pytest.raises(CanonicalJSONError, match="larger"):
        parse_canonical_json(at_cap[:-1] + b'a"')
    with pytest.raises(CanonicalJSONError, match="larger"):
        parse_canonical_json(b"[1]", max_size=2)


JSON_VALUES = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(min_value=-MAX_SAFE_INTEGER, max_value=MAX_SAFE_INTEGER)
    | st.text(st.characters(exclude_categories=("Cs",))),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4)
    ),
    max_leaves=20,
)


@given(value=JSON_VALUES)
def test_canonical_json_round_trip(value: object) -> None:
    encoded = canonical_json(value)
    assert parse_canonical_json(encoded) == value
    assert json.loads(encoded) == value  # any JSON reader sees the same value
