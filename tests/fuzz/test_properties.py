"""Hypothesis where bytes fuzzing is weak: JSON parsers fed valid objects with one field replaced by anything.

A byte fuzzer spends most inputs on JSON syntax; these properties start from
a valid policy or manifest and put an arbitrary JSON value (floats, huge
integers, deep nesting, other types) at one place. The contract is the
targets' (tests/fuzz/targets): only the documented error, and what parses
round-trips. The plain round trips (canonical JSON, armor, policy to_json)
are in tests/crypto and tests/policies already.
"""

from __future__ import annotations

import json
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from carebridge.crypto.canonical import canonical_json
from carebridge.crypto.errors import ManifestError
from carebridge.crypto.manifest import Manifest
from carebridge.policies import DocumentPolicy, PolicyValidationError, parse_change

from ..crypto.test_manifest import build_manifest
from .targets.policy import LIMITS, NOW

ANY_JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=40),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=12), children, max_size=4),
    max_leaves=12,
)
POLICY = {"version": 2, "recipients": ["usr_spa1", "usr_spa2"], "expires_at": "2026-03-05T00:00:00Z",
          "max_downloads": 3, "max_total_downloads": 5, "networks": ["192.0.2.0/24"], "purposes": ["treatment"],
          "links": {"mode": "sign_in", "lifetime": 3600, "uses": 2}, "retention": 86400, "not_before":
          "2026-03-01T13:00:00Z", "legal_hold": False}
MANIFEST = build_manifest().to_dict()


def _paths(value: Any, prefix: tuple = ()) -> list[tuple]:
    """Every place in a JSON value (object member or list item), outermost first."""
    found = [prefix]
    items = value.items() if isinstance(value, dict) else enumerate(value) if isinstance(value, list) else ()
    for key, child in items:
        found += _paths(child, (*prefix, key))
    return found


def _replaced(value: Any, path: tuple, new: Any) -> Any:
    if not path:
        return new
    copy = json.loads(json.dumps(value))
    node = copy
    for key in path[:-1]:
        node = node[key]
    node[path[-1]] = new
    return copy


@st.composite
def mutated(draw: st.DrawFn, valid: dict) -> Any:
    path = draw(st.sampled_from(_paths(valid)))
    if draw(st.booleans()) and path:  # sometimes drop the member or item instead
        parent = json.loads(json.dumps(valid))
        node = parent
        for key in path[:-1]:
            node = node[key]
        del node[path[-1]]
        return parent
    return _replaced(valid, path, draw(ANY_JSON))


@settings(max_examples=300, deadline=None)
@given(mutated(POLICY))
def test_policy_parser_refuses_by_name_or_round_trips(obj: Any) -> None:
    try:
        policy = DocumentPolicy.from_json(obj, now=NOW, limits=LIMITS)
    except PolicyValidationError as exc:
        assert str(exc).split(":")[0]  # the message names a field
        return
    stored = policy.to_json()
    canonical_json(stored)
    assert DocumentPolicy.from_stored(stored) == policy


@settings(max_examples=200, deadline=None)
@given(ANY_JSON | st.dictionaries(st.sampled_from(["revoke", "revoke_recipient", "expires_at", "legal_hold"]),
                                  ANY_JSON, max_size=2))
def test_amendment_parser_refuses_by_name(obj: Any) -> None:
    try:
        parse_change(obj)
    except PolicyValidationError:
        pass


@settings(max_examples=300, deadline=None)
@given(mutated(MANIFEST))
def test_manifest_parser_refuses_or_round_trips(obj: Any) -> None:
    try:
        manifest = Manifest.from_dict(obj)
    except ManifestError:
        return
    assert Manifest.from_json(manifest.to_json()) == manifest
    assert manifest.to_dict() == obj
