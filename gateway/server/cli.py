"""Server verbs of the ``carebridge`` command: ``serve`` and ``admin …``.

Only argparse at import time: the offline verbs share the parser and should
not pay for aiohttp and SQLAlchemy.
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Mapping
from pathlib import Path


def _deployment_flags(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--data", type=Path, help="data folder (default ./var)")
    parser.add_argument("--config", type=Path, help="TOML settings file")


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("serve", help="run the gateway")
    _deployment_flags(p)
    p.add_argument("--host", help="address to listen on (default 127.0.0.1)")
    p.add_argument("--port", type=int, help="port to listen on (default 8080)")
    p.add_argument("--workers", type=int, help="gateway processes sharing the port (default 1)")
    p.add_argument("--log-format", choices=["text", "json"], help="log lines as text (default) or JSON")
    p.add_argument("--listen-fd", type=int, help=argparse.SUPPRESS)  # a worker of --workers: the shared socket
    p.set_defaults(run=serve)

    admin = sub.add_parser("admin", help="manage a deployment (directly, also while it runs)")
    verbs = admin.add_subparsers(dest="admin_verb", required=True, metavar="VERB")
    p = verbs.add_parser("init", help="create the operator admin and print its API token")
    p.add_argument("--email", default="admin@carebridge.localhost", help="the operator admin's e-mail")
    p = verbs.add_parser("migrate", help="bring the database schema up to date")
    p = verbs.add_parser("verify-log", help="check the database's log against every anchored checkpoint")
    org = verbs.add_parser("org", help="organisations").add_subparsers(dest="org_verb", required=True)
    p = org.add_parser("create", help="create an organisation")
    p.add_argument("name", help="its name (letters, digits, spaces and .&'-)")
    p.add_argument("--kind", required=True, choices=["clinic", "spa", "compliance", "operator"],
                   help="clinics send, spas receive, compliance offices audit")
    totp = org.add_parser("totp", help="whether a spa's recipients must set a second factor at enrollment")
    totp.add_argument("name", help="the organisation's name")
    totp.add_argument("setting", choices=["required", "optional"],
                      help="required (the default) or optional; uploaders, auditors and admins always need one")
    user = verbs.add_parser("user", help="users").add_subparsers(dest="user_verb", required=True)
    p = user.add_parser("create", help="create a user; prints its id, API token and enrollment link (once)")
    p.add_argument("email", help="the user's e-mail (their name in the directory)")
    p.add_argument("--org", required=True, help="the organisation's name")
    p.add_argument("--role", required=True, choices=["uploader", "recipient", "auditor", "admin"],
                   help="uploader (clinic), recipient (spa), auditor (compliance) or admin")
    enroll = user.add_parser("enroll", help="issue a fresh one-time enrollment link (password + second factor)")
    enroll.add_argument("email", help="the user's e-mail")
    ref = verbs.add_parser("referral", help="clinic -> spa referrals").add_subparsers(
        dest="referral_verb", required=True)
    p = ref.add_parser("add", help="allow a clinic to send to a spa")
    p.add_argument("clinic", help="the clinic's name")
    p.add_argument("spa", help="the spa's name")
    tok = verbs.add_parser("token", help="API tokens").add_subparsers(dest="token_verb", required=True)
    p = tok.add_parser("revoke", help="revoke an API token now")
    p.add_argument("token_id", help="the token's id (the part of cb1.ID.SECRET before the second dot)")
    lk = verbs.add_parser("link-key", help="the keys that sign expiring links").add_subparsers(
        dest="link_key_verb", required=True)
    lk.add_parser("rotate", help="sign new links with a new key; old links keep working until they expire")
    verbs.add_parser("purge", help="run one pass of the purge job now (expired and revoked documents)")
    for parser in list(verbs.choices.values()) + [org.choices["create"], totp, user.choices["create"], enroll,
                                                   ref.choices["add"], tok.choices["revoke"],
                                                   lk.choices["rotate"]]:
        _deployment_flags(parser)
        parser.add_argument("--json", action="store_true", help="print one JSON document")
        parser.set_defaults(run=admin_main)


def _settings(args: argparse.Namespace, env: Mapping[str, str], **extra):
    from .settings import SettingsError, load

    overrides = {"data_dir": args.data, **extra}
    try:
        return load(config_file=args.config, env=env, overrides=overrides)
    except SettingsError as exc:
        raise SystemExit(f"carebridge: error: {exc}") from None


def serve(args: argparse.Namespace, env: Mapping[str, str]) -> int:
    from . import httpserver, logs

    settings = _settings(args, env, host=args.host, port=args.port, workers=args.workers,
                         log_format=args.log_format)
    logs.configure(settings.log_format)
    from carebridge.storage.errors import StorageError

    from .checkpoints import HistoryRewritten

    try:
        if args.listen_fd is not None:  # one worker of `serve --workers N`
            import socket

            sock = socket.socket(fileno=args.listen_fd)
            return _serve(settings, httpserver, sock=sock)
        if settings.workers > 1:
            return _supervise(args, settings)
        _banner(settings, settings.port)
        return _serve(settings, httpserver)
    except HistoryRewritten as exc:
        raise SystemExit(f"carebridge: error: refusing to serve: {exc}"
                         " (investigate; `carebridge admin verify-log` repeats the check)") from None
    except (StorageError, OSError) as exc:
        raise SystemExit(f"carebridge: error: cannot start: {exc}") from None


def _serve(settings, httpserver, sock=None) -> int:
    from .app import create_app

    httpserver.run(create_app(settings), host=settings.host, port=settings.port, sock=sock,
                   shutdown_grace=settings.shutdown_grace.total_seconds())
    return 0


def _supervise(args: argparse.Namespace, settings) -> int:
    """Prepare the deployment once, bind the port, run the workers (see workers.py)."""
    from .app import open_store, prepare_data_dir
    from .workers import bind, supervise

    prepare_data_dir(settings)
    open_store(settings).close()  # migrations run here, once, not in every worker
    sock = bind(settings)
    _banner(settings, sock.getsockname()[1], f" ({settings.workers} workers)")
    worker_args = [a for flag, value in (("--data", args.data), ("--config", args.config),
                                         ("--host", args.host), ("--port", args.port),
                                         ("--log-format", args.log_format)) if value is not None
                   for a in (flag, str(value))]
    return supervise(settings, sock, worker_args)


def _banner(settings, port: int, extra: str = "") -> None:
    data = settings.data_dir
    print(f"carebridge: serving http://{settings.host}:{port} (data: {data}){extra}\n"
          f"carebridge: first time? create the operator admin with:"
          f" carebridge admin init --data {data}", flush=True)


def _require_deployment(settings) -> None:
    """Only ``admin init`` (or ``serve``) makes a deployment: any other verb pointed at a folder
    without one refuses, naming the folder, instead of quietly creating one there."""
    from .app import LOG_KEY_FILE

    key_file = settings.keys_dir / LOG_KEY_FILE
    if not key_file.is_file():
        raise SystemExit(f"carebridge: error: no deployment at {settings.data_dir.resolve()} (no {key_file.name}"
                         f" in {settings.keys_dir.resolve()}); create one with `carebridge admin init --data DIR`,"
                         " or point --data or --config at yours")


def admin_main(args: argparse.Namespace, env: Mapping[str, str]) -> int:
    result = admin_result(args, env)
    if result is not None:
        print(json.dumps(result) if args.json else "\n".join(f"{k}: {v}" for k, v in result.items()))
    return 0


def admin_result(args: argparse.Namespace, env: Mapping[str, str]) -> dict | None:
    """Do one parsed ``carebridge admin`` command; what it prints (``--json``: as JSON).
    SystemExit with the one-line error when it refuses."""
    from . import admin
    from .app import open_store, prepare_data_dir

    settings = _settings(args, env)
    if args.admin_verb != "init":
        _require_deployment(settings)
    prepare_data_dir(settings)
    store = open_store(settings)
    try:
        return _dispatch(args, store, settings, admin)
    except admin.AdminError as exc:
        raise SystemExit(f"carebridge: error: {exc}") from None
    finally:
        store.close()


def _verify_log(store, settings) -> dict:
    import asyncio

    from .app import load_signer, open_anchor
    from .checkpoints import HistoryRewritten, scan_log, verify_anchors

    signer, anchor = load_signer(settings), open_anchor(settings)

    async def check() -> tuple[int, int]:
        anchors = await verify_anchors(store, anchor, signer.verifier, signer.name)
        return anchors, await scan_log(store, anchor, signer.verifier, signer.name)

    try:
        anchors, entries = asyncio.run(check())
    except HistoryRewritten as exc:
        raise SystemExit(f"carebridge: error: {exc}") from None
    return {"anchored_checkpoints": anchors, "entries_verified": entries}


def _purge(store, settings) -> dict:
    import asyncio

    from carebridge.storage.blobs import open_blob_store

    from .app import blob_config
    from .lifecycle import Purger

    async def run() -> dict:
        blobs = await open_blob_store(blob_config(settings))
        try:
            report = await Purger(store, blobs, interval=settings.purge_interval).run_once()
        finally:
            await blobs.close()
        if report.skipped:
            raise SystemExit("carebridge: error: another gateway process is purging now; try again later")
        return {"purged": report.purged, "held": report.held}

    return asyncio.run(run())


def _user(args, store, settings, admin) -> dict:
    """``admin user create`` / ``enroll``: the enrollment link is printed, and mailed when SMTP is set."""
    from . import enrollment_mail
    from .wire import iso

    if args.user_verb == "enroll":
        user, link = admin.enroll(store, settings, args.email)
        result = {"user_id": user.id, "email": user.email}
    else:
        created = admin.create_user(store, settings, args.email, args.org, args.role)
        user, link = created.user, created.enrollment
        result = {"user_id": user.id, "email": user.email, "token": created.token}
    result |= {"enrollment_url": link.url, "enrollment_expires_at": iso(link.expires_at)}
    if enrollment_mail.enabled(settings):
        error = enrollment_mail.send(settings, user.email, link)
        result["enrollment_mail"] = "sent" if error is None else f"not sent ({error})"
    return result


def _dispatch(args, store, settings, admin) -> dict | None:
    verb = args.admin_verb
    if verb == "migrate":
        return {"schema": "up to date"}
    if verb == "verify-log":
        return _verify_log(store, settings)
    if verb == "init":
        created = admin.init(store, settings, args.email)
        return {"user_id": created.user.id, "email": created.user.email, "token": created.token}
    if verb == "org" and args.org_verb == "totp":
        required = admin.set_recipient_totp(store, args.name, args.setting == "required")
        return {"org": args.name, "recipient_totp": "required" if required else "optional"}
    if verb == "org":
        org = admin.create_org(store, args.name, args.kind)
        return {"org_id": org.id, "name": org.name, "kind": org.kind}
    if verb == "user":
        return _user(args, store, settings, admin)
    if verb == "referral":
        admin.add_referral(store, args.clinic, args.spa)
        return {"referral": f"{args.clinic} -> {args.spa}"}
    if verb == "link-key":
        return admin.rotate_link_key(store, settings)
    if verb == "purge":
        return _purge(store, settings)
    admin.revoke_token(store, args.token_id)
    return {"revoked": args.token_id}
