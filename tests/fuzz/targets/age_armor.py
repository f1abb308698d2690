"""The ASCII armor decoder (``crypto/age/armor.py``), as ``decrypt(..., armor=True)`` uses it.

Contract: only ArmorError; what decodes re-armors to the same bytes when the
input was in the canonical form ArmorWriter writes.
"""

from __future__ import annotations

import io

from carebridge.crypto.age import ArmorError
from carebridge.crypto.age.armor import ArmorWriter, armored_reader

MAX_READ = 1 << 20  # the fuzzer's inputs are small; bound the read anyway


def TestOneInput(data: bytes) -> None:
    try:
        decoded = armored_reader(io.BytesIO(data)).read(MAX_READ)
    except ArmorError:
        return
    out = io.BytesIO()
    writer = ArmorWriter(out)
    writer.write(decoded)
    writer.close()
    again = armored_reader(io.BytesIO(out.getvalue())).read(MAX_READ)
    if again != decoded:
        raise AssertionError("armor round trip changed the bytes")
