"""The one door: every request gets a :class:`Caller`; every refusal reaches the log here.

:func:`decisions` is the middleware. Before the handler it builds the frozen
per-request :class:`~.usecases.caller.Caller`. When a use case, a handler's
parsing or authentication raises a :class:`~.usecases.refusal.Refusal`, it
appends the deny entry (and, for failed authentication, counts the failure
against the address and the account, logging any lockout it starts) and only
then answers with the refusal's problem+json. So whichever layer refused, the
log has it before the client does, and no writer thread ever touches the
request or the lockout counters.

Each route names the action its refusals are logged under with
:func:`logs_as` on its handler.

Failed sign-ins (:class:`~.usecases.signin.SignInRefusal`) count like failed
tokens, against the address and the account the e-mail names; a session
cookie's failures count against the address. After a request a session
cookie served, the session's activity is recorded (its idle timeout counts
from it).
"""

from __future__ import annotations

import dataclasses
import functools
import ipaddress
from collections.abc import Callable

from aiohttp import web

from . import cookies, tokens
from .context import LOCKOUTS, SERVICES, SETTINGS, STORE
from .middleware import REQUEST_ID, instance
from .problems import Problem
from .usecases.caller import Caller, Credentials, IPAddress, SessionCredentials, authenticate
from .usecases.refusal import Refusal
from .usecases.signin import SignInRefusal, Touches, touch
from .vocabulary import LogAction, Why

CALLER: web.RequestKey[Caller] = web.RequestKey("caller", Caller)
TOUCHES: web.AppKey[Touches] = web.AppKey("session_touches", Touches)  # set by signin.install
PURPOSE_HEADER = "Carebridge-Purpose"
ADDRESS_CACHE_SIZE = 4096  # parsed client addresses: parsing costs more than the rest of a small download
_ACTION = "carebridge_log_action"
_PAGE = "carebridge_refusal_page"
_PUBLIC = "carebridge_public"
Page = Callable[[web.Request, Refusal], "web.Response | None"]


def logs_as(action: LogAction, *, page: Page | None = None, public: bool = False) -> Callable:
    """Decorate a handler: its refusals are logged under *action* unless they name their own.

    *page* renders a refusal for a person (a link page), or None for
    problem+json. *public* routes need no token; on every other route a
    refusal raised before the caller was authenticated (a bad body, say)
    is answered as the authentication failure when the caller has no valid
    token: an anonymous request learns nothing about what it sent.
    """
    def mark(handler: Callable) -> Callable:
        setattr(handler, _ACTION, action)
        setattr(handler, _PAGE, page)
        setattr(handler, _PUBLIC, public)
        return handler
    return mark


@web.middleware
async def decisions(request: web.Request, handler):
    caller = build_caller(request)
    request[CALLER] = caller
    try:
        response = await handler(request)
    except Refusal as refusal:
        handler_fn = getattr(request.match_info, "handler", None)
        before_auth = refusal.actor is None and refusal.action is not LogAction.auth
        if before_auth and not getattr(handler_fn, _PUBLIC, True):
            refusal = await _authenticated_first(request.app, caller, refusal)
        await record(request.app, caller, refusal, getattr(handler_fn, _ACTION, None))
        page = getattr(handler_fn, _PAGE, None)
        return (page and page(request, refusal)) or render(refusal, instance(request))
    if isinstance(caller.credentials, SessionCredentials) and response.status < 400 and TOUCHES in request.app:
        await touch(request.app[SERVICES], caller, request.app[TOUCHES])  # a session in use does not go idle
    return response


async def _authenticated_first(app: web.Application, caller: Caller, refusal: Refusal) -> Refusal:
    """Authentication before validation: the auth refusal if the caller has no valid token,
    else *refusal* with its actor filled in."""
    store = app[STORE]
    try:
        principal = await store.query(lambda db: authenticate(db, caller, store.clock()))
    except Refusal as unauthenticated:
        return unauthenticated
    refusal.actor = principal.user
    return refusal


def build_caller(request: web.Request) -> Caller:
    address = client_address(request)
    header = request.headers.get("Authorization")
    credentials, fault, csrf = None, None, None
    if header is None:  # a bearer token wins over a session cookie: the cookie counts only without one
        credentials, fault = _session_cookie(request)
        if credentials is not None:
            csrf = cookies.csrf_fault(request.method, request.headers, request.app[SETTINGS])
    else:
        scheme, _, token = header.partition(" ")
        parsed = tokens.parse(token.strip()) if scheme.lower() == "bearer" else None
        if parsed is None:
            fault = Why.malformed_token
        else:
            credentials = Credentials(*parsed)
    keys = tuple(key for key in _lockout_keys(address, credentials) if key)
    return Caller(request_id=request[REQUEST_ID], address=address, ip=_parse_address(address),
                  credentials=credentials, credential_fault=fault, lockout_keys=keys,
                  purpose=request.headers.get(PURPOSE_HEADER), csrf_fault=csrf)


def _session_cookie(request: web.Request) -> tuple[SessionCredentials | None, Why | None]:
    """The session cookie's credentials, else None and why (no cookie, or not one of ours)."""
    settings = request.app[SETTINGS]
    value = request.cookies.get(cookies.name(settings))
    if value is None:
        return None, Why.missing_token
    secret_hash = cookies.parse(value)
    if secret_hash is None:
        return None, Why.bad_session
    return SessionCredentials(secret_hash, settings.session_idle_timeout), None


def with_account(request: web.Request, caller: Caller, account: str) -> Caller:
    """*caller*, also locked out while the sign-in *account* key is (see usecases.signin.account_key)."""
    return dataclasses.replace(caller, lockout_keys=caller.lockout_keys + (account,))


async def record(app: web.Application, caller: Caller, refusal: Refusal, route_action: LogAction | None) -> None:
    """Append the refusal's deny entry (and any lockout it starts) to the log; the one place that does."""
    action = refusal.action or route_action or LogAction.auth
    user = refusal.actor
    fields = dict(actor=user.id if user else None, org=user.org_id if user else None,
                  request_id=caller.request_id, client=caller.address)
    entries = [dict(action=action.value, outcome="deny", reason=refusal.why.value, object=refusal.object,
                    **fields)]
    counted = action is LogAction.auth or isinstance(refusal, SignInRefusal)
    failures = (_failure_keys(caller, refusal, fields)
                if counted and refusal.why is not Why.locked_out and refusal.why.status == 401 else [])
    lockouts = app[LOCKOUTS]

    def unit(tx) -> None:
        for entry in entries:
            tx.log(**entry)
        for key, obj in failures:  # counted in the deny entry's unit: every process sees it at once
            if lockouts.fail(tx, key):
                tx.log(action=LogAction.auth_lockout.value, outcome="deny", reason=Why.too_many_failures.value,
                       object=obj, **fields)

    await app[STORE].write(unit)


def _failure_keys(caller: Caller, refusal: Refusal, fields: dict) -> list[tuple[str, str | None]]:
    """The keys a failed authentication counts against (address, account), each with the
    object its lockout entry would name."""
    credentials = caller.credentials
    token_id = refusal.token_id or (credentials.token_id if isinstance(credentials, Credentials) else None)
    address_key, account_key = _lockout_keys(caller.address, credentials, token_id)
    # The logged object names a token id or (a sign-in's account) a user id; never a secret or an e-mail.
    account_object = token_id
    if isinstance(refusal, SignInRefusal):  # the account an e-mail names, existing or not
        account_key, account_object = refusal.account, fields["actor"]
    return [(key, obj) for key, obj in ((address_key, None), (account_key, account_object)) if key]


def _lockout_keys(address: str | None, credentials: Credentials | SessionCredentials | None,
                  token_id: str | None = None) -> tuple[str | None, str | None]:
    """The address's and the account's lockout keys; a session cookie counts against its address only."""
    token_id = token_id or (credentials.token_id if isinstance(credentials, Credentials) else None)
    return (f"addr:{address}" if address else None, f"token:{token_id}" if token_id else None)


def render(refusal: Refusal, where: str | None) -> web.Response:
    answer = refusal.answer
    detail = refusal.detail if not refusal.hidden else "no such object, or not visible to you"
    # A hidden refusal or a failed authentication says no more than its type.
    extra = {} if refusal.hidden or answer.status == 401 else {"reason": refusal.why.value, **refusal.extra}
    problem = Problem(detail, status=answer.status, slug=answer.slug, title=answer.title, **extra)
    headers = {}
    if answer.status == 401:
        headers["WWW-Authenticate"] = 'Bearer realm="carebridge"'
    if refusal.retry_after is not None:
        headers["Retry-After"] = str(max(1, int(refusal.retry_after + 0.999)))
        problem.extra["retry_after"] = int(headers["Retry-After"])
    return problem.response(where, headers=headers)


def client_address(request: web.Request) -> str | None:
    """The client's address: the peer, or what trusted proxies say in ``X-Forwarded-For``.

    The header is read from the right: each hop appends the address it saw, so
    the rightmost address that is not a trusted proxy is the client. Anything
    to its left was written by the client and is not believed.
    """
    proxies = request.app[SETTINGS].trusted_proxy_networks
    peer = request.remote
    if not proxies or not _within(peer, proxies):
        return peer
    hops = [h.strip() for line in request.headers.getall("X-Forwarded-For", ()) for h in line.split(",")]
    for hop in reversed(hops):
        if not _within(hop, proxies):
            return hop if _parse_address(hop) is not None else None  # garbled: unknown, fails closed
    return peer


def _within(address: str | None, networks) -> bool:
    ip = _parse_address(address)
    return ip is not None and any(ip in network for network in networks)


@functools.lru_cache(maxsize=ADDRESS_CACHE_SIZE)
def _parse_address(raw: str | None) -> IPAddress | None:
    if not raw:
        return None
    try:
        return ipaddress.ip_address(raw)
    except ValueError:  # a Unix socket path, or a proxy's placeholder: unknown, fails closed
        return None
