"""The page's stand-in for ``carebridge.crypto.signing`` (which needs PyNaCl, a native module).

The redaction gate imports the signing module only to verify a clinic's
*signed* profile (``profile.verify_signed_profile``). The page never does that
in Python: it passes in a profile already verified, as plain profile JSON.
So the page's interpreter gets the label constant and key classes that refuse
every use, and a signature can never pass unverified.
"""

from carebridge.crypto.errors import SignatureError

REDACTION_PROFILE_CONTEXT = b"redaction-profile"  # the same label as crypto/signing.py (checked by a test)


class _Refused:
    def __init__(self, *args, **kwargs):
        raise SignatureError("signatures are not checked in the page's gate")

    @classmethod
    def from_text(cls, *args, **kwargs):
        cls()


VerifyKey = SigningKey = _Refused
