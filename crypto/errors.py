"""The one exception root of :mod:`carebridge.crypto` and its branches.

Messages name what is wrong with the input, never a key, a passphrase or
plaintext. Callers that need one verdict catch :class:`CryptoError`.
"""

from __future__ import annotations


class CryptoError(Exception):
    """Root of every error raised by :mod:`carebridge.crypto`."""


# -- age ----------------------------------------------------------------------


class AgeError(CryptoError):
    """An age file could not be produced or opened."""


class ArmorError(AgeError):
    """The ASCII armor (PEM) around an age file is malformed."""


class HeaderError(AgeError):
    """The age header is malformed, or a stanza addressed to us is invalid."""


class NoIdentityMatchError(AgeError):
    """The header parsed, but none of the given identities could unwrap it."""


class HeaderMACError(AgeError):
    """A file key was unwrapped, but the header MAC does not verify."""


class PayloadError(AgeError):
    """The STREAM payload is truncated, tampered with or has trailing data.

    Plaintext released before this error was authenticated chunk by chunk;
    the stream as a whole is not, so callers must discard what they wrote.
    """


class KeyFormatError(CryptoError):
    """A key string (bech32 recipient, identity, verifier key) is malformed."""


# -- signatures, manifests, log math ------------------------------------------


class SignatureError(CryptoError):
    """A signature does not verify, or a signed object is malformed."""


class CanonicalJSONError(CryptoError):
    """Bytes are not canonical JSON, or a value has no canonical JSON encoding."""


class ManifestError(SignatureError):
    """A document manifest is malformed or its signature does not verify."""


class NoteError(SignatureError):
    """A signed note or checkpoint is malformed or not signed by a known key."""


class ProofError(CryptoError):
    """A Merkle inclusion or consistency proof does not verify."""


class NotARecipient(CryptoError):
    """An identity found no stanza addressed to it: try the next identity.

    Kept apart from :class:`HeaderError` on purpose (as in age): "not mine" is
    a normal outcome, a malformed stanza of the identity's own type is fatal.
    Never escapes :func:`carebridge.crypto.age.decrypt`.
    """


# -- audit bundles ---------------------------------------------------------------


class AuditBundleError(CryptoError):
    """An audit bundle is malformed or does not verify, or cannot be written as asked.

    ``kind`` is the failure class (see :mod:`carebridge.crypto.audit_bundle`:
    ``malformed``, ``untrusted``, ``tampered``, ``fork``, ``inconclusive``);
    ``seq`` the first bad entry, when one is to blame.
    """

    def __init__(self, message: str, *, kind: str = "malformed", seq: int | None = None) -> None:
        super().__init__(message)
        self.kind = kind
        self.seq = seq


class SealedValueError(CryptoError):
    """A sealed value (or a sealing key) that cannot be used; one message whatever went wrong."""
