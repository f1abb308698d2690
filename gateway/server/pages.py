"""The web app's pages for people: home, sign-in, enrollment, one's sessions, the sender's outbox
and referral cases.

Each is a shell (:func:`.web.page`) that one script of the bundle takes
over; the work is done by the JSON API (:mod:`.signin`). Every page answers
200 to anyone: what a page may show is decided by the API calls it makes,
and a page that needs a session sends a signed-out visitor to
``/signin#next=<path>`` itself (``requireSession`` in ``src/lib/session.js``).

Secrets never reach these routes: the enrollment link's secret and the
``next`` path after sign-in sit in the URL's fragment, which browsers never
send, so neither reaches an access log.
"""

from __future__ import annotations

import html

from aiohttp import web

from .passwords import MIN_PASSWORD_LENGTH
from .refusals import logs_as
from .vocabulary import LogAction
from .web import VIEWER, page

_NEEDS_SCRIPT = "<noscript><p>This page needs JavaScript.</p></noscript>"
# What a signed-in person can do, by role (the home page).
_CAN_DO = {
    "recipient": ("Open the documents clinics sent you, in your inbox.", "/inbox", "Open your inbox"),
    "uploader": ("Send a redacted treatment summary to a spa, and follow what you sent.", "/send",
                 "Send a document"),
    "auditor": ("Read and check the access log.", "/audit", "Open the log"),
    "admin": ("Run this gateway with the carebridge admin commands.", "/sessions", "Your sessions"),
}


@logs_as(LogAction.web_release, public=True)
async def home(request: web.Request) -> web.Response:
    person = request.get(VIEWER)
    if person is None:
        body = ('<p>carebridge carries redacted treatment summaries from clinics to spas, encrypted end to end: '
                'documents are encrypted and decrypted in your browser, never on this server.</p>'
                '<p><a class="button" href="/signin">Sign in</a></p>')
        return page(request, status=200, heading="carebridge", body=body)
    text, path, label = _CAN_DO.get(person.user.role, _CAN_DO["admin"])
    body = (f'<p>Signed in as {html.escape(person.user.email)}, {html.escape(person.user.role)} at '
            f'{html.escape(person.org_name)}.</p><p>{html.escape(text)}</p>'
            f'<p><a class="button" href="{path}">{html.escape(label)}</a></p>'
            '<p>Your keys live in <a href="/keys">Keys</a>; the browsers you are signed in on, in '
            '<a href="/sessions">Sessions</a>.</p>')
    return page(request, status=200, heading="Welcome", body=body)


@logs_as(LogAction.web_release, public=True)
async def signin_page(request: web.Request) -> web.Response:
    return page(request, status=200, heading="Sign in", body=_NEEDS_SCRIPT, script="signin.js")


@logs_as(LogAction.web_release, public=True)
async def enroll_page(request: web.Request) -> web.Response:
    policy = (f'<p class="policy" id="password-policy" data-min-length="{MIN_PASSWORD_LENGTH}">'
              f"A password needs at least {MIN_PASSWORD_LENGTH} characters.</p>")
    return page(request, status=200, heading="Set up your account", body=policy + _NEEDS_SCRIPT,
                script="enroll.js")


@logs_as(LogAction.web_release, public=True)
async def sessions_page(request: web.Request) -> web.Response:
    return page(request, status=200, heading="Your sessions", body=_NEEDS_SCRIPT, script="sessions.js")


@logs_as(LogAction.web_release, public=True)
async def audit_page(request: web.Request) -> web.Response:
    """The compliance officer's page (src/audit.js): the log's entries, checkpoint, key and bundles."""
    body = ("<noscript><p>This page needs JavaScript. Without it, use <code>carebridge audit export</code>."
            "</p></noscript>")
    return page(request, status=200, heading="The access log", body=body, script="audit.js")


@logs_as(LogAction.web_release, public=True)
async def outbox_page(request: web.Request) -> web.Response:
    return page(request, status=200, heading="Your outbox", body=_NEEDS_SCRIPT, script="outbox.js")


@logs_as(LogAction.web_release, public=True)
async def inbox_page(request: web.Request) -> web.Response:
    """The spa's inbox (src/inbox.js); its keyring Worker is named in every page's head."""
    return page(request, status=200, heading="Your inbox", body=_NEEDS_SCRIPT, script="inbox.js")


@logs_as(LogAction.web_release, public=True)
async def cases_page(request: web.Request) -> web.Response:
    """Referral cases (src/cases.js): the list, and one case at ``/cases#<id>`` (a fragment: never sent)."""
    return page(request, status=200, heading="Referral cases", body=_NEEDS_SCRIPT, script="cases.js")


def routes() -> list[web.RouteDef]:
    return [web.get("/", home), web.get("/signin", signin_page), web.get("/enroll", enroll_page),
            web.get("/sessions", sessions_page), web.get("/audit", audit_page), web.get("/outbox", outbox_page),
            web.get("/inbox", inbox_page), web.get("/cases", cases_page)]
