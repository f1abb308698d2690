"""C2SP signed notes and checkpoints (``crypto/note.py``), with the vectors' keys and a fixed log key.

Contract: only NoteError (a SignatureError, a CryptoError); a note that opens
and parses as a checkpoint formats back to its text.
"""

from __future__ import annotations

from carebridge.crypto.errors import NoteError
from carebridge.crypto.note import open_checkpoint, open_note, parse_checkpoint

from ._keys import LOG_SIGNER, LOG_VERIFIER, NOTE_VERIFIERS


def TestOneInput(data: bytes) -> None:
    try:
        note = open_note(data, NOTE_VERIFIERS)
    except NoteError:
        return
    try:
        checkpoint = parse_checkpoint(note.text)
    except NoteError:
        return
    if checkpoint.format() != note.text:
        raise AssertionError("a checkpoint does not format back to its note text")
    try:
        open_checkpoint(data, LOG_VERIFIER, origin=LOG_SIGNER.name)
    except NoteError:
        pass
