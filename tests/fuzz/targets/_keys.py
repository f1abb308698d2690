"""Fixed, synthetic keys for the fuzz targets: a seed signed with them verifies in any process.

Made up for the fuzz corpus and used nowhere else; never a real deployment's keys.
"""

from __future__ import annotations

from carebridge.crypto.age import X25519Identity
from carebridge.crypto.linktoken import LinkKey
from carebridge.crypto.note import Signer, Verifier
from carebridge.crypto.signing import SigningKey

IDENTITY = X25519Identity(bytes(range(1, 33)))
SENDER = SigningKey.from_seed(bytes([7]) * 32)
LOG_SIGNER = Signer(name="fuzz.example.test/log", seed=bytes([9]) * 32)
LOG_VERIFIER = LOG_SIGNER.verifier
# The two public C2SP signed-note vectors (tests/vectors/signed-note), so their notes verify too.
NOTE_VERIFIERS = (
    LOG_VERIFIER,
    Verifier.parse("example.com/foo+530d903a+AekyeRrm56hApGFkyQR4ZCbV54Id2LKaANYcrnKv3U2k"),
    Verifier.parse("PeterNeumann+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW"),
)
LINK_ISSUER = "https://gateway.fuzz.example.test"
LINK_AUDIENCE = LINK_ISSUER + "/l"
LINK_KEY = LinkKey.parse("""-----BEGIN PRIVATE KEY-----
MIGHAgEAMBMGByqGSM49AgEGCCqGSM49AwEHBG0wawIBAQQgAAAAAAAAAAAAAAAA
AAAAAABe7fAiwP/uEjRWeJCrze+hRANCAARktuy018Fg0BAKLDWgyyXLDvvAn9Nj
dalHgy1X06SloJaO/uoWwpQKioDKYkK18IykgQulRulgdIC0hS9Btlge
-----END PRIVATE KEY-----
""")
