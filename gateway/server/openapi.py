"""The OpenAPI 3.1 description of ``/api/v1``, served at ``/api/v1/openapi.json``.

A test walks the application's routes and this document both ways, so an
undocumented route (or a documented route that does not exist) fails CI.
"""

from __future__ import annotations

from typing import Any

from .problems import CONTENT_TYPE as PROBLEM_JSON
from .problems import PROBLEM_TYPE_PREFIX

_PROBLEM = {"$ref": "#/components/schemas/Problem"}


def _error(description: str) -> dict:
    return {"description": description, "content": {PROBLEM_JSON: {"schema": _PROBLEM}}}


def _page_or_error(description: str) -> dict:
    """A refusal a person reads on a page (HTML), or a problem with ``Accept: application/json``."""
    return {"description": description, "content": {"text/html": {}, PROBLEM_JSON: {"schema": _PROBLEM}}}


def _json(schema: dict, description: str = "OK") -> dict:
    return {"description": description, "content": {"application/json": {"schema": schema}}}


# What the protocol edge (httpserver.py) answers on any route, before the route sees the request.
_EDGE = {"400": "not valid HTTP/1.1, or a request target that is not UTF-8 text without control characters",
         "414": "the request line is longer than this server accepts",
         "431": "a header line is too long, or there are too many header lines"}


def _op(summary: str, responses: dict, *, auth: bool = True, params: list | None = None,
        body: dict | None = None) -> dict:
    op: dict[str, Any] = {"summary": summary, "responses": responses}
    for status, description in _EDGE.items():
        responses.setdefault(status, _error(description))
    if not auth:
        op["security"] = []
    else:
        responses.setdefault("401", _error("missing, malformed, expired or revoked token (logged)"))
    if params:
        op["parameters"] = params
    if body:
        op["requestBody"] = body
    return op


def _q(name: str, description: str, schema: dict | None = None, *, required: bool = False) -> dict:
    return {"name": name, "in": "query", "required": required, "description": description,
            "schema": schema or {"type": "string"}}


_ID = [{"name": "id", "in": "path", "required": True, "schema": {"type": "string"}}]
_PAGE = [_q("limit", "page size, 1..200", {"type": "integer", "minimum": 1, "maximum": 200}),
         _q("cursor", "next_cursor of the previous page")]
_OBJ = {"type": "object"}
_BAD_QUERY = _error("a query parameter is missing, or not an integer in its range")
_PURPOSE = {"name": "Carebridge-Purpose", "in": "header", "required": False,
            "description": "purpose of use: treatment, care_coordination or patient_request"
                           " (required for downloads when the policy names purposes)",
            "schema": {"type": "string", "enum": ["treatment", "care_coordination", "patient_request"]}}
_AMENDMENT = {"type": "object", "minProperties": 1, "maxProperties": 1, "additionalProperties": False,
              "properties": {"revoke_recipient": {"type": "string", "description": "a recipient's user id"},
                             "expires_at": {"type": "string", "description": "YYYY-MM-DDTHH:MM:SSZ"},
                             "legal_hold": {"type": "boolean"}, "revoke": {"const": True}}}
_INT = {"type": "integer"}
_SEQ = {"type": "integer", "minimum": 0}  # a sequence number or tree size (at most the log's MAX_TREE_SIZE)
_SIZE = {"type": "integer", "minimum": 1}
_TOKEN = [{"name": "token", "in": "path", "required": True, "schema": {"type": "string"},
           "description": "the link token (a JWT); never logged"}]
_LINK_REQUEST = {"type": "object", "required": ["recipient"], "additionalProperties": False,
                 "properties": {"recipient": {"type": "string", "description": "a recipient's user id"},
                                "mode": {"enum": ["sign_in", "bearer"], "default": "sign_in"}}}
_LINK = {"type": "object", "properties": {"link_id": {"type": "string"}, "url": {"type": "string"},
                                          "mode": {"type": "string"}, "uses": _INT,
                                          "expires_at": {"type": "string"}}}
_NOTE = {"description": "a C2SP signed note", "content": {"text/plain": {}}}
_LISTING = {"type": "object", "properties": {"documents": {"type": "array", "items": _OBJ},
                                             "next_cursor": {"type": ["string", "null"]}}}
_STR_OR_NULL = {"type": ["string", "null"]}
_OUTBOX_RECIPIENT = {"type": "object", "properties": {
    "id": {"type": "string"}, "email": {"type": "string"}, "org_id": {"type": "string"}, "org_name": _STR_OR_NULL,
    "downloads": _INT, "downloaded": {"type": "boolean"}, "revoked": {"type": "boolean"},
    "first_downloaded_at": _STR_OR_NULL, "last_downloaded_at": _STR_OR_NULL}}
_OUTBOX_LINK = {"type": "object", "description": "a link the sender issued (never its token)", "properties": {
    "id": {"type": "string"}, "recipient_id": {"type": "string"}, "mode": {"enum": ["sign_in", "bearer"]},
    "uses": _INT, "max_uses": _INT, "created_at": {"type": "string"}, "expires_at": {"type": "string"},
    "revoked_at": _STR_OR_NULL}}
_OUTBOX = {"type": "object", "properties": {
    "documents": {"type": "array", "items": {"type": "object", "properties": {
        "id": {"type": "string"}, "created_at": {"type": "string"}, "expires_at": {"type": "string"},
        "size": _INT, "status": {"type": "string"}, "revoked": {"type": "boolean"},
        "case_id": _STR_OR_NULL, "legal_hold": {"type": "boolean"},
        "latest_expiry": {**_STR_OR_NULL, "description": "the latest expiry an amendment may set (server ceiling)"},
        "recipients": {"type": "array", "items": _OUTBOX_RECIPIENT},
        "links": {"type": "array", "items": _OUTBOX_LINK},
        "meta": {"type": "string", "description": "base64 age ciphertext of the meta (absent once access ended)"}}}},
    "next_cursor": _STR_OR_NULL}}

_PROFILE = {"type": "object", "properties": {
    "id": {"type": "string"}, "version": _INT, "signer_id": {"type": "string"}, "log_seq": _INT,
    "set_at": {"type": "string"},
    "document": {"type": "string", "description": "base64 of the signed profile as uploaded"}}}
_SIGNED_PROFILE = {"type": "object", "required": ["signature", "statement"], "additionalProperties": False,
                   "description": "canonical JSON; statement = {format: carebridge-signed-redaction-profile/1,"
                                  " org_id, profile: {format, id, version, rules}, signer}, signed Ed25519",
                   "properties": {"signature": {"type": "string"}, "statement": _OBJ}}


_CSRF = [{"name": "X-Carebridge-CSRF", "in": "header", "required": True, "schema": {"const": "1"},
          "description": "1. Also required, with this gateway's Origin, on every POST, PUT, PATCH and DELETE"
                         " authenticated by the session cookie"}]
_SIGNIN = {"type": "object", "required": ["email", "password"], "additionalProperties": True,
           "properties": {"email": {"type": "string", "maxLength": 320},
                          "password": {"type": "string", "maxLength": 1024},
                          "totp_code": {"type": "string", "description": "the authenticator app's 6 digits"
                                        " (required when the account has a second factor)"}}}
_ENROLL = {"type": "object", "required": ["token"],
           "properties": {"token": {"type": "string", "description": "ce1.…, the enrollment link's fragment"}}}
_ENROLL_DONE = {"type": "object", "required": ["token", "password"],
                "properties": {"token": {"type": "string"}, "password": {"type": "string", "minLength": 12},
                               "totp_code": {"type": "string", "description": "a code for the offered secret;"
                                             " required when totp_required"}}}
_SESSION_ID = [{"name": "id", "in": "path", "required": True, "schema": {"type": "string"},
                "description": "a session id (ses_…) from GET /api/v1/auth/sessions"}]


_TOO_LARGE = _error("the body is larger than a sign-in or enrollment needs (logged)")


def _body(schema: dict) -> dict:
    return {"required": True, "content": {"application/json": {"schema": schema}}}


def _signin_paths() -> dict:
    return {
        "/api/v1/auth/enrollment": {"post": _op(
            "check an enrollment link and get the TOTP secret to set up (the same one until enrollment"
            " completes; logged as auth.enroll.open)",
            {"200": _json(_OBJ, "user_id, email, role, totp_required, totp_secret, totp_uri, expires_at"),
             "401": _error("unknown enrollment link (logged)"),
             "403": _error("missing X-Carebridge-CSRF header or foreign Origin (logged)"),
             "410": _error("enrollment link expired or used (logged)"), "413": _TOO_LARGE,
             "422": _error("malformed body")},
            auth=False, params=_CSRF, body=_body(_ENROLL))},
        "/api/v1/auth/enrollment/complete": {"post": _op(
            "set the password and confirm the second factor with a code; uses up the user's enrollment"
            " links and ends their sessions (logged as auth.enroll)",
            {"201": _json(_OBJ, "user_id, email"), "401": _error("unknown enrollment link (logged)"),
             "403": _error("missing X-Carebridge-CSRF header or foreign Origin (logged)"),
             "410": _error("enrollment link expired or used (logged)"), "413": _TOO_LARGE,
             "422": _error("weak password, a code that does not match, a code required, or malformed body")},
            auth=False, params=_CSRF, body=_body(_ENROLL_DONE))},
        "/api/v1/auth/signin": {"post": _op(
            "sign in with e-mail, password and TOTP code: sets the session cookie (__Host-carebridge-session;"
            " carebridge-session on plain-http loopback), HttpOnly, SameSite=Strict (logged as auth.signin)",
            {"200": _json(_OBJ, "user_id, email, role, session_id, expires_at, idle_timeout_seconds,"
                                " csrf_header; Set-Cookie"),
             "401": _error("sign-in failed: every cause answers the same (logged with the cause)"),
             "403": _error("missing X-Carebridge-CSRF header or foreign Origin (logged)"),
             "413": _TOO_LARGE, "422": _error("malformed body"),
             "429": _error("too many failures from this address or for this account (Retry-After)")},
            auth=False, params=_CSRF, body=_body(_SIGNIN))},
        "/api/v1/auth/signout": {"post": _op(
            "end this session and clear the cookie (logged as auth.signout)",
            {"204": {"description": "signed out"},
             "403": _error("missing X-Carebridge-CSRF header or foreign Origin (logged)"),
             "409": _error("the request used an API token, not a session")})},
        "/api/v1/auth/sessions": {"get": _op(
            "your sessions that still work (created, last used, user agent, address at sign-in; current: the one"
            " this request came with)", {"200": _json(_OBJ)})},
        "/api/v1/auth/sessions/{id}/revoke": {"post": _op(
            "end one of your sessions (logged as auth.session.revoke)",
            {"204": {"description": "ended (the cookie is cleared when it was this session)"},
             "403": _error("missing X-Carebridge-CSRF header or foreign Origin (logged)"),
             "404": _error("no such open session of yours")}, params=_SESSION_ID)},
    }


def _paths() -> dict:
    return _signin_paths() | _case_paths() | {
        "/api/v1/health": {"get": _op("liveness", {"200": _json(_OBJ)}, auth=False)},
        "/api/v1/openapi.json": {"get": _op("this document", {"200": _json(_OBJ)}, auth=False)},
        "/healthz": {"get": _op("liveness: the process runs its event loop", {"200": _json(_OBJ)}, auth=False)},
        "/readyz": {"get": _op(
            "readiness: the database, the blob store and the signer's anchor answer",
            {"200": _json(_OBJ), "503": _error("not ready: not_ready names the parts (database, blob_store,"
                                               " signer)")}, auth=False)},
        "/metrics": {"get": _op(
            "Prometheus metrics (text format); off unless metrics_token is set, then that bearer token",
            {"200": {"description": "metrics", "content": {"text/plain": {}}},
             "404": _error("metrics are off, or the token is not metrics_token (logged)")}, auth=False)},
        "/api/v1/me": {"get": _op(
            "the calling user and their active keys; for an uploader or a recipient (a follow-up report) also"
            " ceilings: the server's policy"
            " ceilings (spans in seconds: default_lifetime, max_lifetime, default_retention, max_retention,"
            " link_max_lifetime; max_recipients, max_downloads, max_total_downloads, link_max_uses,"
            " max_networks; allow_bearer_links), which every policy sent is checked against",
            {"200": _json(_OBJ)})},
        "/api/v1/me/key-file": {
            "get": _op("your key file as stored (sealed by your passphrase; logged as key.file.fetch)",
                       {"200": {"description": "the armored age file; ETag: its SHA-256",
                                "content": {"application/octet-stream": {}}},
                        "404": _error("no key file stored (no-key-file; logged)")}),
            "put": _op("store or replace your key file: an armored age file sealed by a passphrase alone"
                       " (logged as key.file.store)",
                       {"204": {"description": "stored; ETag: its SHA-256"},
                        "403": _error("missing X-Carebridge-CSRF header or foreign Origin (logged)"),
                        "412": _error("If-Match or If-None-Match does not hold (key-file-changed; logged)"),
                        "413": _error("larger than max_key_file_bytes, 64 KiB by default (logged)"),
                        "422": _error("not an armored age file with one scrypt stanza (invalid-key-file;"
                                      " logged)")},
                       params=[{"name": "If-Match", "in": "header", "required": False,
                                "schema": {"type": "string"}, "description": "* or the ETag GET answered"},
                               {"name": "If-None-Match", "in": "header", "required": False,
                                "schema": {"const": "*"}, "description": "store only if none is stored"}],
                       body={"required": True, "content": {"application/octet-stream": {}}}),
        },
        "/api/v1/keys": {
            "post": _op("publish or rotate your keys (signed registration, proof of possession)",
                        {"201": _json(_OBJ, "registered; logged"),
                         "422": _error("bad signature, stale or malformed registration (logged)"),
                         "403": _error("the registration names another user (logged)"),
                         "413": _error("a registration is at most 16 KiB (logged)")},
                        body={"required": True, "content": {"application/json": {"schema": _OBJ}}}),
            "delete": _op("revoke your active keys", {"204": {"description": "revoked; logged"},
                                                      "404": _error("no active keys")}),
        },
        "/api/v1/redaction-profile": {
            "get": _op("your organisation's current redaction profile, signed, with its signer",
                       {"200": _json(_PROFILE), "204": {"description": "your organisation has no redaction profile"}}),
            "put": _op("set your clinic's redaction profile (signed by one of its uploaders or admins)",
                       {"201": _json(_PROFILE, "set; logged as redaction.profile.set"),
                        "403": _error("not a clinic's uploader or admin, or signed for another clinic"
                                      " or by someone else's key (logged)"),
                        "409": _error("not newer than the current version (logged)"),
                        "413": _error("larger than 72 KiB (logged)"),
                        "422": _error("malformed profile or bad signature (logged)")},
                       body=_body(_SIGNED_PROFILE)),
        },
        "/api/v1/directory": {"get": _op(
            "users (with their active keys) by e-mail or organisation name",
            {"200": _json(_OBJ), "404": _error("nothing visible"), "422": _error("bad query")},
            params=[_q("email", "a user's e-mail"), _q("org", "an organisation's name")])},
        "/api/v1/directory/recipients": {"get": _op(
            "for a clinic's uploader: the spas its clinic has a referral with (spas: id, name; at most 200) and"
            " their recipient users a page at a time by e-mail (users: id, email, org_id, has_keys; next: the"
            " after of the next page, or null). No keys: the sender looks each one up and checks it",
            {"200": _json(_OBJ), "403": _error("not a clinic's uploader (logged)"), "422": _BAD_QUERY},
            params=[_q("limit", "page size, 1..200 (50)", {"type": "integer", "minimum": 1, "maximum": 200}),
                    _q("after", "the next of the previous page: users after this e-mail")])},
        "/api/v1/users/{id}/keys": {"get": _op("a user's key history", {
            "200": _json(_OBJ), "404": _error("no such user visible to you")}, params=_ID)},
        "/api/v1/documents": {"post": _op(
            "upload a document: multipart manifest, policy, meta, content (streamed)",
            {"201": _json(_OBJ, "stored; logged"),
             "403": _error("sender may not send to these recipients (logged)"),
             "409": _error("document id exists"), "413": _error("a part is too large"),
             "415": _error("not multipart/form-data"),
             "422": _error("malformed manifest, policy or age file; bad signature; digest mismatch")},
            body={"required": True, "content": {"multipart/form-data": {"schema": {
                "type": "object", "required": ["manifest", "policy", "meta", "content"],
                "properties": {k: {"type": "string", "format": "binary"}
                               for k in ("manifest", "policy", "meta", "content")}}}}})},
        "/api/v1/documents/{id}": {"get": _op(
            "a document's manifest, meta ciphertext and state (logged as document.read)",
            {"200": _json(_OBJ), "400": _error("invalid Carebridge-Purpose header"),
             "403": _error("role forbidden, not yet valid, or outside the policy's networks (logged)"),
             "404": _error("no such document visible to you"),
             "410": _error("revoked (for all or for you), expired or purged")},
            params=_ID + [_PURPOSE])},
        "/api/v1/documents/{id}/content": {"get": _op(
            "download the ciphertext (counts one download, per recipient and in total; logged)",
            {"200": {"description": "the age file", "content": {"application/octet-stream": {}}},
             "400": _error("invalid Carebridge-Purpose header"),
             "403": _error("download limit (yours or the document's total), purpose required or not allowed,"
                           " not yet valid, outside the policy's networks, or role forbidden (logged)"),
             "404": _error("no such document visible to you"),
             "410": _error("revoked (for all or for you), expired or purged")},
            params=_ID + [_PURPOSE])},
        "/api/v1/documents/{id}/policy": {"post": _op(
            "amend the policy after sending (sender; logged as document.amend.<kind>): exactly one of"
            " revoke_recipient, expires_at (shorten or extend within the ceiling), legal_hold, revoke",
            {"200": _json(_OBJ, "the document's new state"),
             "403": _error("not allowed: not the sender, beyond the ceiling, expiry not in the future,"
                           " unknown recipient (logged)"),
             "404": _error("no such document visible to you"),
             "410": _error("revoked, expired or purged (logged)"),
             "413": _error("an amendment is at most 4 KiB"),
             "422": _error("malformed amendment")},
            params=_ID, body={"required": True, "content": {"application/json": {"schema": _AMENDMENT}}})},
        "/api/v1/documents/{id}/revoke": {"post": _op(
            "end all access now (sender only; logged)",
            {"204": {"description": "revoked"}, "403": _error("not the sender"),
             "404": _error("no such document visible to you"), "410": _error("already revoked")},
            params=_ID)},
        "/api/v1/documents/{id}/links": {"post": _op(
            "issue an expiring link for one recipient (sender only; the policy must allow links;"
            " the URL with its token is in this answer once and never stored; logged)",
            {"201": _json(_LINK), "403": _error("links_forbidden, bearer_forbidden, not_sender, recipient_unknown"
                                                " or recipient_revoked"),
             "404": _error("no such document visible to you"), "413": _error("a link request is at most 4 KiB"),
             "410": _error("the document is revoked, expired or purged"),
             "422": _error("malformed request")},
            params=_ID, body={"required": True, "content": {"application/json": {"schema": _LINK_REQUEST}}})},
        "/api/v1/links/{id}/revoke": {"post": _op(
            "end one link now (its issuer only; logged)",
            {"204": {"description": "revoked"}, "404": _error("no such link of yours"),
             "410": _error("already revoked")}, params=_ID)},
        "/api/v1/web/release": {"get": _op(
            "the served web app's manifest (assets, SHA-256, SRI, root), its web.release log entry"
            " and a C2SP tlog-proof of it (null until a checkpoint covers it); for verify-web",
            {"200": _json(_OBJ), "404": _error("this gateway serves no web app")}, auth=False)},
        "/app/{name}": {"get": _op(
            "a static asset of the web app, by its content-hashed name, or its content-named folder"
            " (Pyodide's runtime, for the redaction gate in the page) and a name (immutable)",
            {"200": {"description": "the asset", "content": {"text/javascript": {}, "text/css": {},
                                                              "application/wasm": {}, "application/zip": {},
                                                              "application/json": {}}},
             "404": _error("not an asset of the served release")}, auth=False,
            params=[{"name": "name", "in": "path", "required": True, "schema": {"type": "string"}}])},
        "/keys/new": {"get": _op("the key setup page: a key file made in the browser",
                                 {"200": {"description": "an HTML page", "content": {"text/html": {}}}},
                                 auth=False)},
        **{path: {"get": _op(summary, {"200": {"description": "an HTML page", "content": {"text/html": {}}}},
                             auth=False)}
           for path, summary in (
               ("/", "the home page: what the signed-in person can do, or a sign-in button"),
               ("/signin", "the sign-in page (then to the same-origin path in #next=, or home)"),
               ("/enroll", "the enrollment page: the link's secret is in the fragment, never sent in a URL"),
               ("/sessions", "one's sessions page (a signed-out visitor is sent to /signin#next=/sessions)"),
               ("/audit", "the compliance officer's page: the log filtered and paged, its key and checkpoint,"
                " bundles to verify offline (its data for auditors only)"),
               ("/inbox", "the spa's inbox page: documents for me, names and notes decrypted in the page,"
                          " each opened after its manifest and sender key are checked against the log"),
               ("/outbox", "the sender's outbox page: what one sent, downloads, links; revoke, expiry, links"
                           " (an admin: the legal hold)"),
               ("/cases", "referral cases: the list and its filters; one case at /cases#<id>, its header and"
                          " notes decrypted and checked in the page, receipts signed and verified there"))},
        "/send": {"get": _op("the send page: a PDF checked and sanitized by the redaction gate in the page"
                             " (the project's Python gate under Pyodide), or a handoff summary filled in as a form"
                             " and drawn in the page; nothing of the file is sent",
                             {"200": {"description": "an HTML page", "content": {"text/html": {}}}},
                             auth=False)},
        "/l/{token}": {"get": _op(
            "open a link: an HTML page (or, with Accept: application/json, the manifest and the meta"
            " ciphertext); spends nothing, so a mail scanner's prefetch cannot use a link up (logged)",
            {"200": {"description": "the link can be claimed",
                     "content": {"text/html": {}, "application/json": {"schema": _OBJ}}},
             "403": _page_or_error("invalid, forged or not-yet-valid link (logged with the reason)"),
             "410": _page_or_error("expired, used up or revoked link"),
             "429": _page_or_error("too many link requests from this address (Retry-After)")},
            auth=False, params=_TOKEN)},
        "/l/{token}/claim": {"post": _op(
            "claim a link: spends one use, counts the download and streams the ciphertext; a sign-in"
            " link also needs the recipient's bearer token (logged, allowed or denied)",
            {"200": {"description": "the content ciphertext (age v1)",
                     "content": {"application/octet-stream": {}}},
             "401": _error("a sign-in link claimed without the recipient's token"),
             "403": _error("invalid or forged link, wrong user or document, or the policy denies"),
             "410": _error("expired, used up or revoked link, or purged document"),
             "429": _error("too many claims from this address (Retry-After)")},
            auth=False, params=_TOKEN + [_PURPOSE])},
        "/api/v1/inbox": {"get": _op("documents addressed to you", {"200": _json(_LISTING), "422": _BAD_QUERY},
                                     params=_PAGE)},
        "/api/v1/outbox": {"get": _op("documents you sent", {"200": _json(_OUTBOX), "422": _BAD_QUERY,
                                                             "403": _error("not an uploader")},
                                      params=_PAGE)},
        "/api/v1/audit/entries": {"get": _op(
            "export log entries (auditors; the export is logged): JSONL of the exact entry bytes,"
            " or CSV with each leaf hash",
            {"200": {"description": "entries in sequence order",
                     "content": {"application/x-ndjson": {}, "text/csv": {}}},
             "403": _error("not an auditor (logged)"), "422": _error("bad range or filter")},
            params=[_q("start", "first sequence number", _INT), _q("end", "last + 1", _INT),
                    _q("limit", "entries at most (instead of end)", _INT),
                    _q("since", "RFC 3339 time, inclusive"), _q("until", "RFC 3339 time, exclusive"),
                    _q("bounds", "1: with since/until and no other filter, the window's entries plus the entry "
                       "just before and just after it, as one gap-free run (range bundles)"),
                    _q("org", "organisation id"), _q("document", "document id (the entry's object)"),
                    _q("actor", "user id"), _q("action", "e.g. document.download"),
                    _q("outcome", "allow or deny"), _q("format", "jsonl (default) or csv"),
                    _q("count", "a page of the listing: at most this many matching entries (1 to 500), from"
                       " a cursor (keyset paging); not with limit or bounds", _INT),
                    _q("order", "with count: asc (default; oldest first from start) or desc (newest first,"
                       " below end)")])},
        "/api/v1/audit/bundle": {"post": _op(
            "an audit bundle, as `carebridge audit export -o` writes it, for the same filters: signs a"
            " fresh checkpoint first (auditors; logged); verify it offline with `carebridge audit verify"
            " --key`",
            {"200": {"description": "the bundle (ZIP)", "content": {"application/zip": {}}},
             "403": _error("not an auditor (logged)"), "404": _error("the log is empty"),
             "422": _error("bad range or filter"),
             "503": _error("the log is not consistent with the last checkpoint")},
            params=[_q("start", "first sequence number", _INT), _q("end", "last + 1", _INT),
                    _q("since", "RFC 3339 time, inclusive"), _q("until", "RFC 3339 time, exclusive"),
                    _q("org", "organisation id"), _q("document", "document id (the entry's object)"),
                    _q("actor", "user id"), _q("action", "e.g. document.download"),
                    _q("outcome", "allow or deny")])},
        "/api/v1/audit/leaves": {"get": _op(
            "the 32-byte leaf hashes of entries start..end-1 (auditors; logged)",
            {"200": {"description": "concatenated hashes", "content": {"application/octet-stream": {}}},
             "403": _error("not an auditor (logged)"), "422": _BAD_QUERY},
            params=[_q("start", "first sequence number", _SEQ), _q("end", "last + 1", _SEQ, required=True)])},
        "/api/v1/audit/verifier": {"get": _op("the log's origin and C2SP verifier key",
                                              {"200": _json(_OBJ)})},
        "/api/v1/audit/checkpoint": {
            "get": _op("the latest signed checkpoint (C2SP signed note)", {
                "200": _NOTE, "404": _error("none signed yet")}),
            "post": _op("sign a checkpoint of the current log now (if it grew) and return it (auditors only;"
                        " the schedule signs the rest)", {
                "200": _NOTE, "403": _error("not an auditor (logged)"), "404": _error("the log is empty"),
                "503": _error("the log is not consistent with the last checkpoint")}),
        },
        "/api/v1/audit/checkpoints/{size}": {"get": _op(
            "the checkpoint signed at this tree size", {"200": _NOTE, "404": _error("none at that size")},
            params=[{"name": "size", "in": "path", "required": True, "schema": _INT}])},
        "/api/v1/audit/proof/inclusion": {"get": _op(
            "C2SP tlog-proof of an entry in a signed checkpoint (default: one that covers it)",
            {"200": _NOTE, "404": _error("no checkpoint covers it"), "422": _BAD_QUERY},
            params=[_q("index", "the entry's sequence number", _SEQ, required=True),
                    _q("size", "the checkpoint's tree size", _SEQ)])},
        "/api/v1/audit/proof/consistency": {"get": _op(
            "RFC 9162 consistency proof between two tree sizes", {"200": _json(_OBJ), "422": _BAD_QUERY,
                                                                  "404": _error("the log is smaller")},
            params=[_q("old", "the smaller size", _SIZE, required=True),
                    _q("size", "the larger size", _SIZE, required=True)])},
    }


_DIRECTORY = {"type": "object", "required": ["users", "orgs"],
              "description": "who the case's ids are, for its people only: its people's e-mails and its two "
                             "organisations' names (no one outside the case)", "properties": {
                  "users": {"type": "object", "additionalProperties": {
                      "type": "object", "required": ["email"], "properties": {"email": {"type": "string"}}}},
                  "orgs": {"type": "object", "additionalProperties": {
                      "type": "object", "required": ["name"], "properties": {"name": {"type": "string"}}}}}}
_CASE = {"type": "object", "required": ["id", "ref", "state", "people", "documents", "directory"], "properties": {
    "id": {"type": "string"}, "ref": {"type": "string", "description": "pseudonymous, CB-XXXX-XXXX"},
    "state": {"enum": ["open", "delivered", "acknowledged", "follow_up_due", "closed"]},
    "people": {"type": "array", "items": {"type": "string"}},
    "clinic_people": {"type": "array", "items": {"type": "string"},
                      "description": "the people on the referring clinic's side (the others are the spa's)"},
    "overdue": {"type": "array", "items": {"type": "string"}},
    "documents": {"type": "array", "items": _OBJ},
    "directory": _DIRECTORY,
    "statement": {"type": "string", "description": "the opener's signed statement (base64)"},
    "header": {"type": "string", "description": "the encrypted case header, an age file (base64)"}}}
_CASE_ID = [{"name": "id", "in": "path", "required": True, "schema": {"type": "string"},
             "description": "the case id (case_…) or its reference (CB-…)"}]
_RECEIPT = {"type": "object", "required": ["receipt"], "properties": {
    "receipt": {"type": "string", "description": "the signed receipt (crypto.receipt), base64"}}}
_NOT_A_PARTY = "no such case, or you are not one of its people (logged)"


def _case_paths() -> dict:
    return {
        "/api/v1/cases": {
            "post": _op("open a referral case: the opener's signed statement and the encrypted header",
                        {"201": _json(_CASE, "opened; logged as case.open"),
                         "403": _error("not a clinic's sender, or no referral to that spa (logged)"),
                         "409": _error("a case with this id exists (logged)"),
                         "413": _error("larger than 128 KiB (logged)"),
                         "422": _error("malformed statement or header, bad signature (logged)")},
                        body=_body({"type": "object", "required": ["statement", "header"], "properties": {
                            "statement": {"type": "string"}, "header": {"type": "string"},
                            "ack_within": {"type": "integer", "description": "seconds"}}})),
            "get": _op("the cases you are one of the people of, most recently changed first",
                       {"200": _json({"type": "object", "properties": {
                           "cases": {"type": "array", "items": _CASE},
                           "next_cursor": {"type": ["string", "null"]}}}),
                        "422": _error("a bad filter or cursor")},
                       params=[_q("state", "open, delivered, acknowledged, follow_up_due or closed (repeatable)"),
                               _q("overdue", "1: only cases past a follow-up date or an acknowledgement due"),
                               _q("due_within", "days: only cases whose follow-up falls within them", _INT),
                               *_PAGE]),
        },
        "/api/v1/cases/{id}": {"get": _op("one case, its documents and who acknowledged them",
                                          {"200": _json(_CASE), "404": _error(_NOT_A_PARTY)}, params=_CASE_ID)},
        "/api/v1/cases/{id}/follow-up": {"post": _op(
            "set the follow-up date (the referring clinic's people)",
            {"200": _json(_CASE), "403": _error("the spa's side may not (logged)"), "404": _error(_NOT_A_PARTY),
             "409": _error("the case is closed (logged)"), "413": _error("larger than 8 KiB (logged)"),
             "422": _error("due is not a future time, or the body is not JSON (logged)")},
            params=_CASE_ID, body=_body({"type": "object", "required": ["due"],
                                         "properties": {"due": {"type": "string"}}}))},
        "/api/v1/cases/{id}/close": {"post": _op(
            "close the case (the referring clinic's people)",
            {"200": _json(_CASE), "403": _error("the spa's side may not (logged)"), "404": _error(_NOT_A_PARTY),
             "409": _error("the case is closed already (logged)")}, params=_CASE_ID)},
        "/api/v1/cases/{id}/notes": {
            "post": _op("add a note: an age file to the case's people and your signed statement over it",
                        {"201": _json(_OBJ, "stored; logged as case.note"), "404": _error(_NOT_A_PARTY),
                         "409": _error("the case is closed (logged)"), "413": _error("larger than 128 KiB (logged)"),
                         "422": _error("malformed note, bad signature, or not for this case (logged)")},
                        params=_CASE_ID, body=_body({"type": "object", "required": ["statement", "body"],
                                                     "properties": {"statement": {"type": "string"},
                                                                    "body": {"type": "string"}}})),
            "get": _op("the case's notes, oldest first (each still encrypted and signed)",
                       {"200": _json({"type": "object", "properties": {"notes": {"type": "array", "items": _OBJ},
                                                                       "directory": _DIRECTORY}}),
                        "404": _error(_NOT_A_PARTY)}, params=_CASE_ID),
        },
        "/api/v1/documents/{id}/receipts": {
            "post": _op("acknowledge a document you downloaded with a signed receipt",
                        {"201": _json(_OBJ, "stored; logged as document.acknowledge"),
                         "403": _error("auditors never touch documents (logged)"),
                         "404": _error("no such document (logged)"),
                         "409": _error("not downloaded yet, or acknowledged already (logged)"),
                         "413": _error("larger than 8 KiB (logged)"),
                         "422": _error("malformed receipt, bad signature, or for another document (logged)")},
                        params=_ID, body=_body(_RECEIPT)),
            "get": _op("the document's signed receipts (its sender and recipients)",
                       {"200": _json({"type": "object", "properties": {"receipts": {"type": "array",
                                                                                    "items": _OBJ}}}),
                        "403": _error("auditors never touch documents (logged)"),
                        "404": _error("no such document (logged)")}, params=_ID),
        },
    }


def openapi_document() -> dict:
    return {
        "openapi": "3.1.0",
        "info": {"title": "carebridge gateway", "version": "1",
                 "description": "End-to-end encrypted document exchange. Errors are RFC 9457 "
                                f"problem details whose type starts with {PROBLEM_TYPE_PREFIX}."},
        "paths": _paths(),
        "security": [{"token": []}, {"session": []}],
        "components": {
            "securitySchemes": {"token": {"type": "http", "scheme": "bearer",
                                          "description": "API token cb1.<id>.<secret>"},
                                "session": {"type": "apiKey", "in": "cookie", "name": "__Host-carebridge-session",
                                            "description": "a browser session from /api/v1/auth/signin"
                                                           " (carebridge-session on plain-http loopback);"
                                                           " the bearer token wins when both are sent"}},
            "schemas": {"Problem": {"type": "object", "required": ["type", "title", "status"],
                                    "properties": {"type": {"type": "string"},
                                                   "title": {"type": "string"},
                                                   "status": {"type": "integer"},
                                                   "detail": {"type": "string"},
                                                   "instance": {"type": "string"}}}},
        },
    }
