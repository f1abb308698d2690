"""The age header parser (``crypto/age/_format.py``), as the server reads an uploaded part.

Contract: only HeaderError; a parsed header re-serialises to exactly the
bytes it was read from (the grammar has one encoding of each header).
"""

from __future__ import annotations

import io

from carebridge.crypto import age


def TestOneInput(data: bytes) -> None:
    src = io.BytesIO(data)
    try:
        header = age.parse_header(src)
    except age.HeaderError:
        return
    if header.marshal() != data[: src.tell()]:
        raise AssertionError("a parsed header does not re-serialise to its bytes")
