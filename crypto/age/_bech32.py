"""Bech32 (BIP 173) without the 90-character limit, as age uses it.

age keys are all-lowercase (recipients) or all-uppercase (identities); the
checksum is always computed over the lowercase form. Post-quantum recipients
run to ~1,950 characters, hence no length limit.
"""

from __future__ import annotations

from functools import reduce

from ..errors import KeyFormatError

_CHARSET = "qpzry9x8gf2tvdw0s3jn54khce6mua7l"
_INDEX = {c: i for i, c in enumerate(_CHARSET)}
_GENERATOR = (0x3B6A57B2, 0x26508E6D, 0x1EA119FA, 0x3D4233DD, 0x2A1462B3)
# XOR of the generators selected by each 5-bit "top" value: one lookup per
# character instead of five tests (a post-quantum key has ~1,950 characters).
_TOP_TABLE = tuple(
    reduce(int.__xor__, (g for i, g in enumerate(_GENERATOR) if top >> i & 1), 0)
    for top in range(32))

MAX_LENGTH = 4096  # far above the longest age key (age1pq1: ~1,950 chars)


def _polymod(values: list[int]) -> int:
    chk = 1
    table = _TOP_TABLE
    for v in values:
        chk = (chk & 0x1FFFFFF) << 5 ^ v ^ table[chk >> 25]
    return chk


def _hrp_expand(hrp: str) -> list[int]:
    return [ord(c) >> 5 for c in hrp] + [0] + [ord(c) & 31 for c in hrp]


def _convert_bits(data: bytes | list[int], from_bits: int, to_bits: int, pad: bool) -> list[int]:
    acc = bits = 0
    out = []
    maxv = (1 << to_bits) - 1
    for value in data:
        acc = (acc << from_bits) | value
        bits += from_bits
        while bits >= to_bits:
            bits -= to_bits
            out.append((acc >> bits) & maxv)
    if pad:
        if bits:
            out.append((acc << (to_bits - bits)) & maxv)
    elif bits >= from_bits or (acc << (to_bits - bits)) & maxv:
        raise KeyFormatError("bech32: non-zero padding")
    return out


def encode(hrp: str, data: bytes) -> str:
    """Encode *data* under the human-readable part *hrp* (case preserved)."""
    lower = hrp.lower()
    values = _convert_bits(data, 8, 5, pad=True)
    poly = _polymod(_hrp_expand(lower) + values + [0] * 6) ^ 1
    checksum = [(poly >> 5 * (5 - i)) & 31 for i in range(6)]
    out = lower + "1" + "".join(_CHARSET[v] for v in values + checksum)
    return out.upper() if hrp.isupper() else out


def decode(s: str) -> tuple[str, bytes]:
    """Return ``(hrp, data)``; the hrp comes back in the string's own case.

    Raises KeyFormatError for mixed case, bad characters or a bad checksum.
    """
    if len(s) > MAX_LENGTH:
        raise KeyFormatError("bech32: string too long")
    if s.lower() != s and s.upper() != s:
        raise KeyFormatError("bech32: mixed case")
    pos = s.rfind("1")
    if pos < 1 or pos + 7 > len(s):
        raise KeyFormatError("bech32: separator misplaced")
    if any(not 33 <= ord(c) <= 126 for c in s):
        raise KeyFormatError("bech32: invalid character")
    hrp, lower = s[:pos], s.lower()
    try:
        values = [_INDEX[c] for c in lower[pos + 1:]]
    except KeyError:
        raise KeyFormatError("bech32: invalid character in data part") from None
    if _polymod(_hrp_expand(lower[:pos]) + values) != 1:
        raise KeyFormatError("bech32: invalid checksum")
    return hrp, bytes(_convert_bits(values[:-6], 5, 8, pad=False))
