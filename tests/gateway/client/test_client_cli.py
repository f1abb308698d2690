"""The client verbs' own logic: profiles, listings, link ids, progress, and the numbers in errors.

Gateway round trips are in ``tests/test_e2e.py`` and ``tests/test_readme.py``;
here the pieces that decide what a person reads.
"""

from __future__ import annotations

import argparse
import base64
import io
import json
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
from aiohttp import web

from carebridge.crypto import age
from carebridge.gateway.client import cli, listing, profile, progress
from carebridge.gateway.client._terminal import CLIError
from carebridge.gateway.client.api import ApiError, Client
from carebridge.gateway.client.linkkey import LinkError, link_id_of

NOW = datetime(2026, 3, 1, 12, 0, tzinfo=timezone.utc)


def _args(profile: Path | None = None) -> argparse.Namespace:
    return argparse.Namespace(profile=profile, json=False)


# -- profiles --------------------------------------------------------------------------


def test_profile_identity_is_relative_to_the_profile_and_the_environment_wins(tmp_path: Path) -> None:
    folder = tmp_path / "profiles"
    folder.mkdir()
    profile = folder / "spa.toml"
    profile.write_text('url = "http://127.0.0.1:9"\ntoken = "cb1.made-up"\nidentity = "spa.key"\n'
                       'unknown = "ignored"\n')
    values = cli._profile(_args(profile), {})
    assert values == {"url": "http://127.0.0.1:9", "token": "cb1.made-up", "identity": str(folder / "spa.key")}
    assert cli._profile(_args(profile), {"CAREBRIDGE_TOKEN": "cb1.env"})["token"] == "cb1.env"
    # CAREBRIDGE_PROFILE names the file when --profile is not given.
    assert cli._profile(_args(), {"CAREBRIDGE_PROFILE": str(profile)})["url"] == "http://127.0.0.1:9"


@pytest.mark.parametrize(("content", "message"), [
    (b"url = ", "not TOML"),
    (b"# " + b"x" * profile.MAX_PROFILE_BYTES, f"larger than {profile.MAX_PROFILE_BYTES} bytes"),
])
def test_bad_profile_is_one_clear_error(tmp_path: Path, content: bytes, message: str) -> None:
    profile = tmp_path / "bad.toml"
    profile.write_bytes(content)
    with pytest.raises(CLIError, match=message):
        cli._profile(_args(profile), {})


def test_missing_profile_names_the_reason_not_a_repr(tmp_path: Path) -> None:
    with pytest.raises(CLIError) as caught:
        cli._profile(_args(tmp_path / "none.toml"), {})
    assert str(caught.value) == f"profile {tmp_path / 'none.toml'}: No such file or directory"


# -- time and duration errors name the accepted formats ------------------------------------


def test_amend_expires_error_lists_the_accepted_formats() -> None:
    with pytest.raises(CLIError) as caught:
        cli._when("next tuesday")
    assert "30m, 48h, 7d or 2w" in str(caught.value) and "2026-01-31T17:00:00Z" in str(caught.value)
    assert cli._when("2026-05-01T08:00:00Z") == "2026-05-01T08:00:00Z"


# -- listings -------------------------------------------------------------------------------


@pytest.mark.parametrize(("size", "shown"), [(0, "0 B"), (1023, "1023 B"), (1536, "1.5 KiB"),
                                             (12 * 1024 * 1024, "12 MiB"), (5 * 1024 ** 4, "5.0 TiB")])
def test_human_size(size: int, shown: str) -> None:
    assert listing.human_size(size) == shown


def _row(**extra) -> dict:
    return {"id": "doc_made_up", "sender_id": "usr_sender", "created_at": "2026-02-28T12:00:00Z",
            "expires_at": "2026-03-03T15:00:00Z", "revoked": False, "size": 2048, **extra}


def test_inbox_with_todays_fields_only() -> None:
    """What the gateway lists now: id, sender id, times, revoked, size. Nothing invented."""
    page = {"documents": [_row(), _row(id="doc_gone", revoked=True),
                          _row(id="doc_old", expires_at="2026-02-28T13:00:00Z")], "next_cursor": "abc"}
    text = listing.render("inbox", page, {}, hint="(hint)", now=lambda: NOW)
    lines = text.splitlines()
    assert lines[0] == "doc_made_up  available  (file name: not listed by this gateway)  2.0 KiB"
    assert lines[1] == "    from usr_sender · sent 2026-02-28T12:00:00Z · expires 2026-03-03T15:00:00Z (in 2d 3h)"
    assert lines[2].startswith("doc_gone  revoked") and lines[4].startswith("doc_old  expired")
    assert "expired 2026-02-28T13:00:00Z" in lines[5]
    assert lines[-1] == "more: --cursor abc"


def test_inbox_shows_sender_name_note_and_downloads_left_when_present() -> None:
    identity = age.X25519Identity.generate()
    meta = {"name": "summary-made-up.pdf", "note": "made-up\nfollow-up", "size": 10, "content_type": "x"}
    sealed = base64.b64encode(age.encrypt_bytes(json.dumps(meta).encode(), [identity.recipient])).decode()
    other = base64.b64encode(age.encrypt_bytes(b"{}", [age.X25519Identity.generate().recipient])).decode()
    rows = [_row(meta=sealed, downloads_left=2, status="revoked_for_me",
                 sender={"email": "dr.demo@sunrise.example", "org_name": "Sunrise Dermatology"}),
            _row(id="doc_link_key", meta=other)]
    opened = listing.open_meta(rows, identity)
    assert opened == {"doc_made_up": meta}
    page = {"documents": rows, "next_cursor": None}
    lines = listing.render("inbox", page, opened, hint="(not for your key)", now=lambda: NOW).splitlines()
    assert lines[0] == "doc_made_up  revoked for me  summary-made-up.pdf  2.0 KiB"
    assert "from dr.demo@sunrise.example (Sunrise Dermatology)" in lines[1] and "2 download(s) left" in lines[1]
    assert lines[2] == "    note: made-up follow-up"
    assert lines[3] == "doc_link_key  available  (not for your key)  2.0 KiB"
    assert listing.with_meta(page, opened)["documents"][0]["file"] == meta  # --json keeps all, adds file


def test_outbox_shows_each_recipients_downloads_when_present() -> None:
    row = _row(recipients=[
        {"id": "usr_a", "email": "a@glow.example", "downloads": 2, "first_downloaded_at": "2026-02-28T13:00:00Z"},
        {"id": "usr_b", "email": "b@glow.example", "downloads": 0},
        {"id": "usr_c", "downloads": 0, "revoked": True}])
    lines = listing.render("outbox", {"documents": [row]}, {}, hint="", now=lambda: NOW).splitlines()
    assert lines[2:] == ["    a@glow.example: downloaded 2×, first 2026-02-28T13:00:00Z",
                         "    b@glow.example: not downloaded", "    usr_c: access revoked"]
    assert listing.render("outbox", {"documents": []}, {}, hint="") == "outbox is empty"


# -- links ------------------------------------------------------------------------------------


def _jws(claims: dict) -> str:
    def part(data: dict) -> str:
        return base64.urlsafe_b64encode(json.dumps(data).encode()).decode().rstrip("=")
    return f"{part({'alg': 'ES256'})}.{part(claims)}.c2lnbmF0dXJl"


def test_link_id_of_reads_the_tokens_jti() -> None:
    assert link_id_of(f"http://127.0.0.1:9/l/{_jws({'jti': 'lnk_made_up'})}") == "lnk_made_up"
    with pytest.raises(LinkError, match="malformed"):
        link_id_of("http://127.0.0.1:9/l/not-a-jws")
    with pytest.raises(LinkError, match="no link id"):
        link_id_of(f"http://127.0.0.1:9/l/{_jws({'jti': ''})}")


@pytest.mark.parametrize(("link", "configured", "same"), [
    ("http://127.0.0.1:9/l/t", "http://127.0.0.1:9", True),
    ("http://127.0.0.1:9/l/t", "http://127.0.0.1:9/", True),
    ("https://gw.example/l/t", "http://gw.example", False),
    ("http://evil.example/l/t", "http://127.0.0.1:9", False),
    ("http://127.0.0.1:9/l/t", "", False),
])
def test_the_token_goes_only_to_the_configured_gateway(link: str, configured: str, same: bool) -> None:
    assert cli._same_origin(link, configured) is same


# -- progress --------------------------------------------------------------------------------


class _Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_progress_is_quiet_for_json_and_for_non_terminals() -> None:
    assert progress.for_terminal(json_output=True, stream=_Terminal()) is progress.QUIET
    assert progress.for_terminal(json_output=False, stream=io.StringIO()) is progress.QUIET


def test_progress_on_a_terminal_labels_each_step() -> None:
    screen = _Terminal()
    meter = progress.for_terminal(json_output=False, stream=screen)
    meter.step("scanning")(0)
    meter.step("encrypting", 4096)(4096)
    meter.step("uploading", 4096)(2048)
    meter.close()
    drawn = screen.getvalue()
    assert all(label in drawn for label in ("scanning", "encrypting", "uploading"))
    assert "0.00/4.00k" in drawn  # sizes in binary units (tqdm redraws at most every 0.1 s)


# -- the numbers that matter in a gateway's refusal -------------------------------------------


async def test_problem_numbers_reach_the_message(aiohttp_server) -> None:
    problems = {
        "/api/v1/inbox": {"type": "urn:carebridge:problem:not-yet-valid", "detail": "not yet",
                          "not_before": "2026-03-02T09:00:00Z"},
        "/api/v1/me": {"type": "urn:carebridge:problem:x", "detail": "too late",
                       "max_expires_at": "2026-03-30T12:00:00Z", "flag": True},
    }

    async def handler(request: web.Request) -> web.Response:
        return web.json_response(problems[request.path], status=403, content_type="application/problem+json")

    app = web.Application()
    app.router.add_get("/api/v1/inbox", handler)
    app.router.add_get("/api/v1/me", handler)
    server = await aiohttp_server(app)
    async with Client(str(server.make_url("/")), "cb1.made-up") as api:
        with pytest.raises(ApiError) as caught:
            await api.listing("inbox")
        assert str(caught.value) == "403 not yet (available from 2026-03-02T09:00:00Z)"
        with pytest.raises(ApiError) as caught:
            await api.me()
        assert str(caught.value) == "403 too late (the latest expiry the gateway allows is 2026-03-30T12:00:00Z)"


def test_duration_error_quotes_the_input() -> None:
    with pytest.raises(CLIError, match=r"--expires takes a duration like 30m, 48h, 7d or 2w, not '7 days'"):
        cli._duration("7 days")
    assert cli._duration("0", "--retention", zero=True) == timedelta(0)


def test_fetch_tells_a_person_the_name_size_and_note_on_stderr_only_at_a_terminal() -> None:
    from carebridge.gateway.client.linkkey import LinkFetched

    got = LinkFetched("doc_made_up", Path("out.pdf"), "summary-made-up.pdf", 3 * 1024, "usr_sender",
                      "made-up follow-up")
    screen, pipe = _Terminal(), io.StringIO()
    cli._describe(_args(), got, screen)
    cli._describe(_args(), got, pipe)
    json_args = argparse.Namespace(profile=None, json=True)
    cli._describe(json_args, got, screen)
    assert screen.getvalue() == ("summary-made-up.pdf (3.0 KiB) from usr_sender, signature verified\n"
                                 "note: made-up follow-up\n")
    assert pipe.getvalue() == ""
