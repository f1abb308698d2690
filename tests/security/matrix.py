"""The authorization matrix as data: who gets which answer on every route of the OpenAPI document.

The table in :data:`TABLE` is the reviewer's page: one line per route and
target, one column per role. It follows these rules (the target behaviour of
issue 10; where the server disagrees today, the matrix fails):

1. **Public routes** need no API token: ``/api/v1/health``,
   ``/api/v1/openapi.json``, the link routes ``/l/{token}``,
   ``/l/{token}/claim`` (the link token is the credential there), sign-in and
   enrollment (rule 7) and the web app (rule 9).
2. **Anonymous** on any other route: ``401 unauthorized``, whatever the id or
   body (authentication comes before validation).
3. **A role a route is not for** gets ``403 role-forbidden``, whatever the id,
   so the answer says nothing about the object: uploading and the outbox are
   for uploaders, and so is the send form's recipient picker
   (``/api/v1/directory/recipients``, a clinic uploader's referrals); exporting
   entries and leaves and signing a checkpoint on
   demand are for auditors; ``/api/v1/documents/{id}…`` is never for auditors
   (the policy's document roles are uploader, recipient and admin). Uploading says
   it in sending's words: ``403 send-role-forbidden`` (``SEND``).
4. **An id the caller may not see** (another organisation's, nobody's, or a
   document the caller is no party to) answers ``404 not-found``: a real id
   and a random well-formed one look the same.
5. **A party the policy refuses** gets ``403`` with the reason's slug
   (``not-sender``); a sign-in link claimed by someone else is ``403
   link-wrong-user``, claimed anonymously ``401 link-sign-in-required``.
6. **Every refusal** (any 4xx) appends exactly one ``deny`` entry to the access
   log, carrying the request's id; an allowed request appends no deny entry.
7. **Sign-in and enrollment** (``/api/v1/auth/signin``, ``/api/v1/auth/enrollment``,
   ``…/enrollment/complete``) are public too: they are how a person gets a
   session, so the password (with its TOTP code) or the enrollment link is the
   credential, and a bearer token sent along changes nothing. An unknown
   account is ``401 sign-in-failed``, an unknown enrollment link ``401
   enrollment-invalid``. Without ``X-Carebridge-CSRF: 1``, or with it from
   another site's ``Origin``, each is ``403 csrf``, whoever asks.
8. **Sessions are one's own.** Sign-out ends the browser session the request
   came with: with an API token it is ``409 no-session``. Ending another
   person's session (admins included) is ``404 not-found``, like an id that
   names nothing.
9. **The web app is public**: its release manifest, its assets by
   content-hashed name (a name not in the served release: ``404 not-found``)
   and the key setup page; the pages for people (home, sign-in, enrollment,
   sessions) too: they are shells, and what they show comes from API calls.
10. **A clinic's redaction profile** is its own: anyone signed in reads
   their organisation's (``200`` where it has one, ``204`` where it has
   none: both clinics have one, the spas, the compliance office and the
   operator none). It is set by the clinic's uploaders and admins, signed
   with their registered key (``201``); every other role, the operator admin
   included (not a clinic's), is ``403 role-forbidden``, whatever the body.
11. **Operations**: ``/healthz`` and ``/readyz`` are public (they name parts,
   never errors); ``/metrics`` is off unless ``metrics_token`` is set, and
   then answers only that bearer token, whatever the role: ``404 not-found``
   here, where it is off.
12. **Referral cases** are their people's: a clinic's sender opens one with a
   spa it has a referral with (every other role: ``403 role-forbidden``);
   anyone signed in lists their own (``200``, maybe empty); a case one is not
   one of the people of is ``404 not-found``, like an unknown id; the
   follow-up date and closing are the referring clinic's (the spa's people:
   ``403 case-wrong-side``); both sides' people add and read its notes.
   **Receipts**: a recipient acknowledges a document they downloaded
   (``201``); its sender may not (``422 receipt-mismatch``); the document's
   parties read its receipts; auditors never touch documents.

Targets: ``own`` is the object of the uploader's side (document A, sent by
the uploader to the recipient; link A; the recipient's user id or e-mail; a
signed checkpoint's size; the recipient's session, account or a new enrollment
link of Glow Test Spa; an asset of the served web release), ``other`` the
other organisations' object (document B from the other clinic to the
recipient elsewhere; link B; the recipient elsewhere's id, e-mail, session or
account, or a new enrollment link of Other Test Spa), ``unknown`` a
well-formed id (token, e-mail, asset name) that names nothing, ``-`` a route
without an id. On sign-in and enrollment, ``no-csrf`` is the ``own`` request
without ``X-Carebridge-CSRF``, ``x-origin`` the same with the header but
another site's ``Origin`` (:mod:`.signin_requests`).
"""

from __future__ import annotations

from dataclasses import dataclass

from carebridge.gateway.server.openapi import openapi_document

ROLES = ("anonymous", "uploader", "recipient", "recipient_elsewhere", "other_clinic", "auditor", "admin")
METHODS = ("get", "put", "post", "delete", "patch")

# Short names for the refusals the table uses, so each line fits on one screen.
ALIASES = {
    "401": (401, "unauthorized"),
    "404": (404, "not-found"),
    "ROLE": (403, "role-forbidden"),
    "SEND": (403, "send-role-forbidden"),  # sending's own words for it (can_send's reason)
    "NOTS": (403, "not-sender"),
    "WRNG": (403, "link-wrong-user"),
    "SIGN": (401, "link-sign-in-required"),
    "UNKL": (403, "link-unknown"),
    "PAGE403": (403, None),  # the link page is HTML, not problem+json
    "CSRF": (403, "csrf"),
    "SIGNF": (401, "sign-in-failed"),  # every sign-in failure answers the same
    "ENRL": (401, "enrollment-invalid"),
    "NOSS": (409, "no-session"),
    "SIDE": (403, "case-wrong-side"),
    "RCPT": (422, "receipt-mismatch"),
}

TABLE = """
# method route                             target   anonymous uploader recipient r_elsewhere o_clinic auditor admin
GET    /api/v1/health                      -        200   200   200   200   200   200   200
GET    /api/v1/openapi.json                -        200   200   200   200   200   200   200
GET    /healthz                            -        200   200   200   200   200   200   200
GET    /readyz                             -        200   200   200   200   200   200   200
GET    /metrics                            -        404   404   404   404   404   404   404
GET    /api/v1/me                          -        401   200   200   200   200   200   200
GET    /api/v1/me/key-file                 -        401   200   200   200   200   200   200
PUT    /api/v1/me/key-file                 -        401   204   204   204   204   204   204
POST   /api/v1/keys                        -        401   201   201   201   201   201   201
DELETE /api/v1/keys                        -        401   204   204   204   204   204   204
GET    /api/v1/redaction-profile           -        401   200   204   204   200   204   204
PUT    /api/v1/redaction-profile           -        401   201   ROLE  ROLE  201   ROLE  ROLE
GET    /api/v1/directory                   own      401   200   200   404   404   200   404
GET    /api/v1/directory                   other    401   404   404   200   200   200   404
GET    /api/v1/directory                   unknown  401   404   404   404   404   404   404
GET    /api/v1/directory/recipients        -        401   200   ROLE  ROLE  200   ROLE  ROLE
GET    /api/v1/users/{id}/keys             own      401   200   200   404   404   200   404
GET    /api/v1/users/{id}/keys             other    401   404   404   200   200   200   404
GET    /api/v1/users/{id}/keys             unknown  401   404   404   404   404   404   404
POST   /api/v1/documents                   -        401   201   SEND  SEND  201   SEND  SEND
GET    /api/v1/documents/{id}              own      401   200   200   404   404   ROLE  404
GET    /api/v1/documents/{id}              other    401   404   404   200   200   ROLE  404
GET    /api/v1/documents/{id}              unknown  401   404   404   404   404   ROLE  404
GET    /api/v1/documents/{id}/content      own      401   200   200   404   404   ROLE  404
GET    /api/v1/documents/{id}/content      other    401   404   404   200   200   ROLE  404
GET    /api/v1/documents/{id}/content      unknown  401   404   404   404   404   ROLE  404
POST   /api/v1/documents/{id}/policy       own      401   200   NOTS  404   404   ROLE  404
POST   /api/v1/documents/{id}/policy       other    401   404   404   NOTS  200   ROLE  404
POST   /api/v1/documents/{id}/policy       unknown  401   404   404   404   404   ROLE  404
POST   /api/v1/documents/{id}/revoke       own      401   204   NOTS  404   404   ROLE  404
POST   /api/v1/documents/{id}/revoke       other    401   404   404   NOTS  204   ROLE  404
POST   /api/v1/documents/{id}/revoke       unknown  401   404   404   404   404   ROLE  404
POST   /api/v1/documents/{id}/links        own      401   201   NOTS  404   404   ROLE  404
POST   /api/v1/documents/{id}/links        other    401   404   404   NOTS  201   ROLE  404
POST   /api/v1/documents/{id}/links        unknown  401   404   404   404   404   ROLE  404
POST   /api/v1/links/{id}/revoke           own      401   204   404   404   404   404   404
POST   /api/v1/links/{id}/revoke           other    401   404   404   404   204   404   404
POST   /api/v1/links/{id}/revoke           unknown  401   404   404   404   404   404   404
GET    /l/{token}                          own      200   200   200   200   200   200   200
GET    /l/{token}                          other    200   200   200   200   200   200   200
GET    /l/{token}                          unknown  PAGE403 PAGE403 PAGE403 PAGE403 PAGE403 PAGE403 PAGE403
POST   /l/{token}/claim                    own      SIGN  WRNG  200   WRNG  WRNG  WRNG  WRNG
POST   /l/{token}/claim                    other    SIGN  WRNG  WRNG  200   WRNG  WRNG  WRNG
POST   /l/{token}/claim                    unknown  UNKL  UNKL  UNKL  UNKL  UNKL  UNKL  UNKL
GET    /api/v1/inbox                       -        401   200   200   200   200   200   200
GET    /api/v1/outbox                      -        401   200   ROLE  ROLE  200   ROLE  ROLE
GET    /api/v1/audit/entries               -        401   ROLE  ROLE  ROLE  ROLE  200   ROLE
GET    /api/v1/audit/leaves                -        401   ROLE  ROLE  ROLE  ROLE  200   ROLE
POST   /api/v1/audit/bundle                -        401   ROLE  ROLE  ROLE  ROLE  200   ROLE
GET    /api/v1/audit/verifier              -        401   200   200   200   200   200   200
GET    /api/v1/audit/checkpoint            -        401   200   200   200   200   200   200
POST   /api/v1/audit/checkpoint            -        401   ROLE  ROLE  ROLE  ROLE  200   ROLE
GET    /api/v1/audit/checkpoints/{size}    own      401   200   200   200   200   200   200
GET    /api/v1/audit/checkpoints/{size}    unknown  401   404   404   404   404   404   404
GET    /api/v1/audit/proof/inclusion       -        401   200   200   200   200   200   200
GET    /api/v1/audit/proof/consistency     -        401   200   200   200   200   200   200
POST   /api/v1/auth/enrollment             own      200   200   200   200   200   200   200
POST   /api/v1/auth/enrollment             other    200   200   200   200   200   200   200
POST   /api/v1/auth/enrollment             unknown  ENRL  ENRL  ENRL  ENRL  ENRL  ENRL  ENRL
POST   /api/v1/auth/enrollment             no-csrf  CSRF  CSRF  CSRF  CSRF  CSRF  CSRF  CSRF
POST   /api/v1/auth/enrollment             x-origin CSRF  CSRF  CSRF  CSRF  CSRF  CSRF  CSRF
POST   /api/v1/auth/enrollment/complete    own      201   201   201   201   201   201   201
POST   /api/v1/auth/enrollment/complete    other    201   201   201   201   201   201   201
POST   /api/v1/auth/enrollment/complete    unknown  ENRL  ENRL  ENRL  ENRL  ENRL  ENRL  ENRL
POST   /api/v1/auth/enrollment/complete    no-csrf  CSRF  CSRF  CSRF  CSRF  CSRF  CSRF  CSRF
POST   /api/v1/auth/enrollment/complete    x-origin CSRF  CSRF  CSRF  CSRF  CSRF  CSRF  CSRF
POST   /api/v1/auth/signin                 own      200   200   200   200   200   200   200
POST   /api/v1/auth/signin                 other    200   200   200   200   200   200   200
POST   /api/v1/auth/signin                 unknown  SIGNF SIGNF SIGNF SIGNF SIGNF SIGNF SIGNF
POST   /api/v1/auth/signin                 no-csrf  CSRF  CSRF  CSRF  CSRF  CSRF  CSRF  CSRF
POST   /api/v1/auth/signin                 x-origin CSRF  CSRF  CSRF  CSRF  CSRF  CSRF  CSRF
POST   /api/v1/auth/signout                -        401   NOSS  NOSS  NOSS  NOSS  NOSS  NOSS
GET    /api/v1/auth/sessions               -        401   200   200   200   200   200   200
POST   /api/v1/auth/sessions/{id}/revoke   own      401   404   204   404   404   404   404
POST   /api/v1/auth/sessions/{id}/revoke   other    401   404   404   204   404   404   404
POST   /api/v1/auth/sessions/{id}/revoke   unknown  401   404   404   404   404   404   404
GET    /api/v1/web/release                 -        200   200   200   200   200   200   200
GET    /app/{name}                         own      200   200   200   200   200   200   200
GET    /app/{name}                         unknown  404   404   404   404   404   404   404
GET    /keys/new                           -        200   200   200   200   200   200   200
POST   /api/v1/cases                       -        401   201   ROLE  ROLE  201   ROLE  ROLE
GET    /api/v1/cases                       -        401   200   200   200   200   200   200
GET    /api/v1/cases/{id}                  own      401   200   200   404   404   404   404
GET    /api/v1/cases/{id}                  other    401   404   404   200   200   404   404
GET    /api/v1/cases/{id}                  unknown  401   404   404   404   404   404   404
POST   /api/v1/cases/{id}/follow-up        own      401   200   SIDE  404   404   404   404
POST   /api/v1/cases/{id}/follow-up        other    401   404   404   SIDE  200   404   404
POST   /api/v1/cases/{id}/follow-up        unknown  401   404   404   404   404   404   404
POST   /api/v1/cases/{id}/close            own      401   200   SIDE  404   404   404   404
POST   /api/v1/cases/{id}/close            other    401   404   404   SIDE  200   404   404
POST   /api/v1/cases/{id}/close            unknown  401   404   404   404   404   404   404
POST   /api/v1/cases/{id}/notes            own      401   201   201   404   404   404   404
POST   /api/v1/cases/{id}/notes            other    401   404   404   201   201   404   404
POST   /api/v1/cases/{id}/notes            unknown  401   404   404   404   404   404   404
GET    /api/v1/cases/{id}/notes            own      401   200   200   404   404   404   404
GET    /api/v1/cases/{id}/notes            other    401   404   404   200   200   404   404
GET    /api/v1/cases/{id}/notes            unknown  401   404   404   404   404   404   404
POST   /api/v1/documents/{id}/receipts     own      401   RCPT  201   404   404   ROLE  404
POST   /api/v1/documents/{id}/receipts     other    401   404   404   201   RCPT  ROLE  404
POST   /api/v1/documents/{id}/receipts     unknown  401   404   404   404   404   ROLE  404
GET    /api/v1/documents/{id}/receipts     own      401   200   200   404   404   ROLE  404
GET    /api/v1/documents/{id}/receipts     other    401   404   404   200   200   ROLE  404
GET    /api/v1/documents/{id}/receipts     unknown  401   404   404   404   404   ROLE  404
GET    /                                   -        200   200   200   200   200   200   200
GET    /signin                             -        200   200   200   200   200   200   200
GET    /enroll                             -        200   200   200   200   200   200   200
GET    /sessions                           -        200   200   200   200   200   200   200
GET    /send                               -        200   200   200   200   200   200   200
GET    /audit                              -        200   200   200   200   200   200   200
GET    /outbox                             -        200   200   200   200   200   200   200
GET    /inbox                              -        200   200   200   200   200   200   200
GET    /cases                              -        200   200   200   200   200   200   200
"""


@dataclass(frozen=True)
class Expected:
    status: int
    slug: str | None  # the problem type's slug for a refusal; None for a success or the HTML page

    @property
    def refused(self) -> bool:
        return self.status >= 400

    def __str__(self) -> str:
        return f"{self.status} {self.slug}" if self.slug else str(self.status)


def _cell(text: str) -> Expected:
    if text in ALIASES:
        return Expected(*ALIASES[text])
    status = int(text)
    if status >= 400:
        raise ValueError(f"refusal {text} needs an alias naming its problem type")
    return Expected(status, None)


def parse(table: str = TABLE) -> dict[tuple[str, str], dict[str, dict[str, Expected]]]:
    """``{(method, route): {target: {role: Expected}}}``; raises ValueError on a malformed line."""
    rows: dict[tuple[str, str], dict[str, dict[str, Expected]]] = {}
    for line in table.strip().splitlines():
        if line.startswith("#"):
            continue
        method, route, target, *cells = line.split()
        if len(cells) != len(ROLES):
            raise ValueError(f"{method} {route} {target}: {len(cells)} cells for {len(ROLES)} roles")
        targets = rows.setdefault((method.lower(), route), {})
        if target in targets:
            raise ValueError(f"{method} {route} {target}: two lines")
        targets[target] = {role: _cell(cell) for role, cell in zip(ROLES, cells)}
    return rows


ROWS = parse()


def documented_operations(document: dict | None = None) -> list[tuple[str, str]]:
    """Every (method, route) of the OpenAPI document, in its order."""
    paths = (document or openapi_document())["paths"]
    return [(method, path) for path, item in paths.items() for method in item if method in METHODS]


def cases() -> list[tuple[str, str, str, str]]:
    """(method, route, target, role) for every documented operation; "?" where the table has no line."""
    out = []
    for method, route in documented_operations():
        for target in ROWS.get((method, route), {"?": {}}):
            out.extend((method, route, target, role) for role in ROLES)
    return out
