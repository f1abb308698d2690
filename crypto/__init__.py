"""carebridge.crypto: every cryptographic format carebridge speaks, and nothing else.

No HTTP, no database, no files beyond file-like streams; the only package of
carebridge that imports PyNaCl or pyca/cryptography. What you want:

* :mod:`.age` — age v1 files (X25519, ML-KEM-768+X25519, scrypt; armor;
  streaming STREAM payloads): ``age.encrypt`` / ``age.decrypt``.
* :mod:`.keyfile` — a user's passphrase-sealed key file (age identity +
  Ed25519 signing key) that the stock ``age`` opens.
* :mod:`.signing` — Ed25519 with domain separation; :mod:`.fingerprint` —
  short human-comparable key fingerprints.
* :mod:`.canonical` — the one canonical JSON encoding everything signed or hashed uses.
* :mod:`.manifest` — canonical, signed document manifests;
  :mod:`.registration` — signed key registrations (proof of possession).
* :mod:`.merkle` — RFC 6962 / 9162 log hashing and proofs; :mod:`.note` —
  C2SP signed notes and checkpoints.
* :mod:`.sealed` — small secrets sealed at rest (XChaCha20-Poly1305, bound to
  their owner by associated data): ``SealingKey``.
* :mod:`.audit_bundle` — access-log exports a compliance officer verifies
  offline: ``BundleWriter`` and ``verify_bundle``.

Every error is a :class:`carebridge.crypto.errors.CryptoError`.
"""
