"""Manifests (``crypto/manifest.py``): the unsigned body, and the signed wire form with a fixed sender key.

Contract: only ManifestError (``verify_manifest`` promises that alone); a
parsed manifest round-trips through ``to_json``/``from_json``.
"""

from __future__ import annotations

from carebridge.crypto.errors import ManifestError
from carebridge.crypto.manifest import Manifest, verify_manifest

from ._keys import SENDER


def TestOneInput(data: bytes) -> None:
    for parse in (Manifest.from_json, lambda raw: verify_manifest(raw, SENDER.public)):
        try:
            manifest = parse(data)
        except ManifestError:
            continue
        if Manifest.from_json(manifest.to_json()) != manifest:
            raise AssertionError("a parsed manifest does not round-trip")
