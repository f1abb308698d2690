"""The metadata schema (SQLAlchemy Core), one definition for SQLite and PostgreSQL.

Ids are opaque random strings made by the gateway. Times are stored as UTC
and come back timezone-aware (:class:`UTCDateTime`). The access log is
append-only: migrations install triggers that refuse UPDATE and DELETE.
"""

from __future__ import annotations

from datetime import datetime, timezone

from sqlalchemy import (
    BigInteger,
    Column,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    PrimaryKeyConstraint,
    String,
    Table,
    Text,
    text,
)
from sqlalchemy.types import TypeDecorator

ID_LENGTH = 64  # "doc_" + 22 base64url characters fits with room to spare
metadata = MetaData()


class UTCDateTime(TypeDecorator):
    """Stores naive UTC, returns aware UTC: SQLite keeps no zone, PostgreSQL does."""

    impl = DateTime
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to the database")
        return value.astimezone(timezone.utc).replace(tzinfo=None)

    def process_result_value(self, value: datetime | None, dialect) -> datetime | None:
        return None if value is None else value.replace(tzinfo=timezone.utc)


def _id(name: str = "id", **kw) -> Column:
    return Column(name, String(ID_LENGTH), primary_key=True, **kw)


def _ref(name: str, target: str, **kw) -> Column:
    return Column(name, String(ID_LENGTH), ForeignKey(target), nullable=False, **kw)


orgs = Table(
    "orgs", metadata,
    _id(),
    Column("name", String(200), nullable=False, unique=True),
    Column("kind", String(20), nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
    # Whether this organisation's recipients must set up a TOTP second factor
    # (uploaders, auditors and admins always must). Migration 0005.
    Column("recipient_totp", Integer, nullable=False, server_default="1"),
)

users = Table(
    "users", metadata,
    _id(),
    Column("email", String(320), nullable=False, unique=True),
    _ref("org_id", "orgs.id"),
    Column("role", String(20), nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
    Column("disabled_at", UTCDateTime),
)

api_tokens = Table(
    "api_tokens", metadata,
    _id(),
    _ref("user_id", "users.id", index=True),
    Column("secret_hash", LargeBinary(32), nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
    Column("expires_at", UTCDateTime, nullable=False),
    Column("revoked_at", UTCDateTime),
)

referrals = Table(
    "referrals", metadata,
    Column("clinic_org_id", String(ID_LENGTH), ForeignKey("orgs.id"), primary_key=True),
    Column("spa_org_id", String(ID_LENGTH), ForeignKey("orgs.id"), primary_key=True),
    Column("created_at", UTCDateTime, nullable=False),
)

user_keys = Table(
    "user_keys", metadata,
    _id(),
    _ref("user_id", "users.id"),
    Column("age_recipient", Text, nullable=False),
    Column("verify_key", String(100), nullable=False),
    Column("status", String(10), nullable=False),  # active | rotated | revoked
    Column("registration", LargeBinary, nullable=False),  # the signed statement, kept as proof
    Column("log_seq", BigInteger, nullable=False),  # the log entry that published it
    Column("created_at", UTCDateTime, nullable=False),
    Column("retired_at", UTCDateTime),
    # at most one active key set per user
    Index("user_keys_one_active", "user_id", unique=True,
          sqlite_where=text("status = 'active'"), postgresql_where=text("status = 'active'")),
)

redaction_profiles = Table(
    "redaction_profiles", metadata,
    _ref("org_id", "orgs.id"),
    Column("version", BigInteger, nullable=False),  # counts up per org; the highest is current
    Column("profile_id", String(64), nullable=False),
    _ref("signer_id", "users.id"),
    Column("document", LargeBinary, nullable=False),  # the signed profile as uploaded, kept as proof
    Column("log_seq", BigInteger, nullable=False),  # the log entry that set it
    Column("created_at", UTCDateTime, nullable=False),
    PrimaryKeyConstraint("org_id", "version"),
)

documents = Table(
    "documents", metadata,
    _id(),
    _ref("sender_id", "users.id"),
    _ref("sender_org_id", "orgs.id"),
    Column("created_at", UTCDateTime, nullable=False),
    Column("expires_at", UTCDateTime, nullable=False),
    Column("max_downloads", Integer),
    Column("revoked_at", UTCDateTime),
    Column("purged_at", UTCDateTime),
    Column("content_key", String(200), nullable=False),
    Column("content_size", BigInteger, nullable=False),
    Column("content_sha256", String(64), nullable=False),
    Column("meta_key", String(200), nullable=False),
    Column("meta_size", BigInteger, nullable=False),
    Column("meta_sha256", String(64), nullable=False),
    Column("manifest", LargeBinary, nullable=False),
    Column("policy", Text, nullable=False),  # canonical JSON of the sender's policy
    # Policy v2 state (migration 0003). expires_at above is the effective expiry:
    # the sender may shorten or extend it after sending; the signed policy keeps
    # the original. purge_after is when the purge job may delete the ciphertext
    # (end of access + retention); NULL while legal_hold is set or once purged.
    Column("not_before", UTCDateTime),
    Column("max_total_downloads", Integer),
    Column("downloads_total", Integer, nullable=False, server_default="0"),
    Column("legal_hold", Integer, nullable=False, server_default="0"),
    Column("purge_after", UTCDateTime),
    # The referral case the document was sent under (migration 0011), signed into its manifest.
    Column("case_id", String(ID_LENGTH), ForeignKey("cases.id")),
    Index("documents_outbox", "sender_id", "created_at", "id"),
    Index("documents_case", "case_id"),
    Index("documents_purge_due", "purge_after"),
)

document_recipients = Table(
    "document_recipients", metadata,
    Column("document_id", String(ID_LENGTH), ForeignKey("documents.id"), primary_key=True),
    Column("user_id", String(ID_LENGTH), ForeignKey("users.id"), primary_key=True),
    Column("age_recipient", Text, nullable=False),
    Column("downloads", Integer, nullable=False, server_default="0"),
    Column("revoked_at", UTCDateTime),  # the sender revoked this recipient alone
    Column("first_downloaded_at", UTCDateTime),  # set with the count (0005)
    Column("last_downloaded_at", UTCDateTime),
    Index("document_recipients_inbox", "user_id", "document_id"),
)

# Referral cases (migration 0011): a clinic refers a client to a spa. The server
# keeps a pseudonymous reference, the parties, the opener's signed statement and
# the encrypted case header (client name and contact: never plaintext here).
cases = Table(
    "cases", metadata,
    _id(),
    Column("ref", String(20), nullable=False, unique=True),  # pseudonymous, for people and mail
    _ref("clinic_org_id", "orgs.id"),
    _ref("spa_org_id", "orgs.id"),
    _ref("opened_by", "users.id"),
    Column("statement", LargeBinary, nullable=False),  # crypto.case wire bytes, kept as proof
    Column("header", LargeBinary, nullable=False),  # age ciphertext, opaque to the server
    Column("state", String(20), nullable=False),  # open | delivered | acknowledged | follow_up_due | closed
    Column("ack_within", BigInteger),  # seconds after sending a document is overdue unacknowledged
    Column("follow_up_at", UTCDateTime),
    Column("created_at", UTCDateTime, nullable=False),
    Column("updated_at", UTCDateTime, nullable=False),
    Column("closed_at", UTCDateTime),
    Index("cases_clinic", "clinic_org_id", "updated_at"),
    Index("cases_spa", "spa_org_id", "updated_at"),
)

# The people of a case on both sides: who may read its header and act on it.
case_people = Table(
    "case_people", metadata,
    Column("case_id", String(ID_LENGTH), ForeignKey("cases.id"), primary_key=True),
    Column("user_id", String(ID_LENGTH), ForeignKey("users.id"), primary_key=True),
    Index("case_people_user", "user_id"),
)

# Notes on a case (crypto.case): an age file to the case's people and its author's signed statement.
case_notes = Table(
    "case_notes", metadata,
    _id(),
    _ref("case_id", "cases.id"),
    _ref("author_id", "users.id"),
    Column("statement", LargeBinary, nullable=False),
    Column("body", LargeBinary, nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
    Column("log_seq", BigInteger, nullable=False),
    Index("case_notes_case", "case_id", "log_seq"),
)

# Signed acknowledgements (crypto.receipt): one per document and recipient.
receipts = Table(
    "receipts", metadata,
    Column("document_id", String(ID_LENGTH), ForeignKey("documents.id"), primary_key=True),
    Column("user_id", String(ID_LENGTH), ForeignKey("users.id"), primary_key=True),
    Column("receipt", LargeBinary, nullable=False),  # the signed wire bytes, kept as proof
    Column("signed_at", UTCDateTime, nullable=False),
    Column("log_seq", BigInteger, nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
)

# Expiring links (JWT): the server-side record that makes a link revocable and
# its uses countable. The id is the token's jti; the token itself is never stored.
links = Table(
    "links", metadata,
    _id(),
    _ref("document_id", "documents.id", index=True),
    _ref("recipient_id", "users.id"),
    _ref("issued_by", "users.id"),
    Column("mode", String(10), nullable=False),  # sign_in | bearer
    Column("kid", String(64), nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
    Column("not_before", UTCDateTime, nullable=False),
    Column("expires_at", UTCDateTime, nullable=False),
    Column("max_uses", Integer, nullable=False),
    Column("uses", Integer, nullable=False, server_default="0"),
    Column("revoked_at", UTCDateTime),
)

# Mail to send (notifications), written in the transaction of the event it
# reports, so a crash loses none and an SMTP failure never fails the upload.
mail_outbox = Table(
    "mail_outbox", metadata,
    _id(),
    Column("kind", String(40), nullable=False),
    Column("to_address", String(320), nullable=False),
    Column("document_id", String(ID_LENGTH)),
    Column("body", Text, nullable=False),  # JSON of the template's fields; never PHI
    Column("created_at", UTCDateTime, nullable=False),
    Column("attempts", Integer, nullable=False, server_default="0"),
    Column("next_attempt_at", UTCDateTime, nullable=False),
    Column("sent_at", UTCDateTime),
    Column("failed_at", UTCDateTime),  # given up after the last attempt
    Column("last_error", String(200)),
    Index("mail_outbox_due", "sent_at", "failed_at", "next_attempt_at"),
)

ADDRESS_LENGTH = 64  # an IPv6 address with a zone fits in 46 characters
# A TOTP secret as stored: sealed (``sb1.…``, about 100 characters; migration 0008).
TOTP_SECRET_LENGTH = 200

# Sign-in for people (migration 0005). A user's password (an Argon2id hash in
# PHC string form) and TOTP secret (base32; NULL when the user has none), and
# the last TOTP time step accepted, so that a code is never accepted twice. The
# TOTP secret is sealed by the gateway (gateway/server/totp_secrets.py): opaque here.
user_credentials = Table(
    "user_credentials", metadata,
    Column("user_id", String(ID_LENGTH), ForeignKey("users.id"), primary_key=True),
    Column("password_hash", String(200), nullable=False),
    Column("totp_secret", String(TOTP_SECRET_LENGTH)),
    Column("totp_last_step", BigInteger),
    Column("updated_at", UTCDateTime, nullable=False),
)

# One-time enrollment links: only the SHA-256 of the link's secret is kept. The
# TOTP secret offered while enrolling waits here until the enrollment completes.
enrollments = Table(
    "enrollments", metadata,
    _id(),
    _ref("user_id", "users.id", index=True),
    Column("token_hash", LargeBinary(32), nullable=False, unique=True),
    Column("totp_secret", String(TOTP_SECRET_LENGTH)),
    Column("created_at", UTCDateTime, nullable=False),
    Column("expires_at", UTCDateTime, nullable=False),
    Column("used_at", UTCDateTime),
)

# Browser sessions: the id is a public handle (lists, revocation, the log); the
# cookie's secret is kept only as its SHA-256.
sessions = Table(
    "sessions", metadata,
    _id(),
    _ref("user_id", "users.id", index=True),
    Column("secret_hash", LargeBinary(32), nullable=False, unique=True),
    Column("created_at", UTCDateTime, nullable=False),
    Column("last_seen_at", UTCDateTime, nullable=False),
    Column("expires_at", UTCDateTime, nullable=False),  # the absolute timeout
    Column("ended_at", UTCDateTime),
    Column("end_reason", String(20)),  # signed_out | revoked
    Column("user_agent", String(200)),
    Column("address", String(ADDRESS_LENGTH)),  # the client's address at sign-in (migration 0008)
)

# Leases, so that a background job runs in one gateway process at a time.
# Abuse limits shared by every gateway process (see :mod:`.limits`). ``expires_at`` is
# when a row stops mattering: rows past it are deleted by the next change.
auth_failures = Table(
    "auth_failures", metadata,
    Column("key", String(128), primary_key=True),
    Column("window_start", UTCDateTime, nullable=False),
    Column("failures", Integer, nullable=False),
    Column("locked_until", UTCDateTime, nullable=True),
    Column("expires_at", UTCDateTime, nullable=False),
    Index("auth_failures_expiry", "expires_at"),
)
rate_buckets = Table(
    "rate_buckets", metadata,
    Column("key", String(128), primary_key=True),
    Column("tokens", Float, nullable=False),
    Column("stamp", UTCDateTime, nullable=False),
    Column("expires_at", UTCDateTime, nullable=False),
    Index("rate_buckets_expiry", "expires_at"),
)

job_leases = Table(
    "job_leases", metadata,
    Column("name", String(64), primary_key=True),
    Column("holder", String(64), nullable=False),
    Column("expires_at", UTCDateTime, nullable=False),
)

# The access log: one row per decision, never updated or deleted. `entry` is the
# canonical JSON that was hashed; the columns repeat it for filtering.
log_entries = Table(
    "log_entries", metadata,
    Column("seq", BigInteger, primary_key=True, autoincrement=False),
    Column("time", UTCDateTime, nullable=False),
    Column("actor", String(ID_LENGTH)),
    Column("org", String(ID_LENGTH)),
    Column("action", String(ID_LENGTH), nullable=False),
    Column("object", String(ID_LENGTH)),
    Column("outcome", String(10), nullable=False),
    Column("reason", String(ID_LENGTH), nullable=False),
    Column("entry", LargeBinary, nullable=False),
    Column("leaf_hash", LargeBinary(32), nullable=False),
    # No (object, seq) or (actor, seq) index: each append would insert into
    # them at random places, more than half of a group commit's cost at 1M
    # entries (migration 0004). Filtered exports scan their seq range instead.
    Index("log_entries_time", "time"),
)

# The Merkle tree over the log: the roots of its perfect subtrees, at the
# positions of golang.org/x/mod/sumdb/tlog (carebridge.crypto.merkle), so any
# root or proof is one indexed read of O(log n) rows. Append-only, like the log.
log_hashes = Table(
    "log_hashes", metadata,
    Column("idx", BigInteger, primary_key=True, autoincrement=False),
    Column("hash", LargeBinary(32), nullable=False),
)

# Signed checkpoints (C2SP tlog-checkpoint in a signed note), one per size.
checkpoints = Table(
    "checkpoints", metadata,
    Column("size", BigInteger, primary_key=True, autoincrement=False),
    Column("root_hash", LargeBinary(32), nullable=False),
    Column("note", LargeBinary, nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
)

# Each user's key file (migration 0012): the armored age file sealed by their
# passphrase, kept opaque so a browser or the CLI can fetch it and open it
# locally. One per user; a replacement names the digest it replaces.
key_files = Table(
    "key_files", metadata,
    Column("user_id", String(ID_LENGTH), ForeignKey("users.id"), primary_key=True),
    Column("sealed", LargeBinary, nullable=False),
    Column("sha256", String(64), nullable=False),  # hex digest of sealed: the ETag, and the If-Match check
    Column("log_seq", BigInteger, nullable=False),  # the log entry that stored it
    Column("updated_at", UTCDateTime, nullable=False),
)
