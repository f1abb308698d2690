"""The key setup page in a real browser: the key file it makes is one ``carebridge`` opens.

The page makes an age identity and an Ed25519 signing key, seals them with
the passphrase (age scrypt, armored) and saves the file; the public keys and
fingerprints it shows must be the ones in the file, and no request may carry
the passphrase or a secret.
"""

from __future__ import annotations

import io
from pathlib import Path

import pytest

from carebridge.crypto import age, keyfile
from carebridge.crypto.age import NoIdentityMatchError
from carebridge.crypto.fingerprint import fingerprint
from tests.test_e2e import running_server

from .conftest import require_bundle
from .test_link_pages import PHONE, TIMEOUT_MS, Recorder

pytestmark = pytest.mark.browser
PASSPHRASE = "synthetic key setup passphrase 8812"



def test_the_key_setup_page_makes_a_key_file_the_cli_opens(browser, tmp_path: Path, artifacts: Path) -> None:
    manifest = require_bundle()
    with running_server(tmp_path / "var", tmp_path / "server.log") as url:
        context = browser.new_context(accept_downloads=True, viewport=PHONE)
        page = context.new_page()
        page.set_default_timeout(TIMEOUT_MS)
        recorder = Recorder(page)
        try:
            page.goto(url + "/keys/new")
            first = page.get_by_label("Passphrase for the new key file")
            first.fill("too short")
            page.get_by_label("The same passphrase again").fill("too short")
            page.get_by_role("button", name="Make my key file").click()
            assert "at least" in page.get_by_role("alert").inner_text()
            first.fill(PASSPHRASE)
            page.get_by_label("The same passphrase again").fill(PASSPHRASE)
            page.screenshot(path=artifacts / "keys-1-ask-phone.png", full_page=True)
            with page.expect_download() as caught:
                page.get_by_role("button", name="Make my key file").click()
            sealed = Path(caught.value.path()).read_bytes()
            page.get_by_role("heading", name="Your key file is saved").wait_for()
            page.screenshot(path=artifacts / "keys-2-saved-phone.png", full_page=True)
            shown = {name: page.locator(f"#{name}").inner_text()
                     for name in ("recipient", "recipient-fingerprint", "signing-key", "signing-key-fingerprint")}
        finally:
            context.close()
    assert caught.value.suggested_filename == "carebridge.key"
    assert sealed.startswith(b"-----BEGIN AGE ENCRYPTED FILE-----")
    keys = keyfile.open_sealed(sealed, PASSPHRASE)  # the CLI's own reader
    plain = io.BytesIO()
    age.decrypt(io.BytesIO(sealed), plain, [age.ScryptIdentity(PASSPHRASE)], armor=True)
    assert f"\n# web release: {manifest['root']}\n" in plain.getvalue().decode(), "the code that made it"
    assert shown == {"recipient": keys.recipient, "recipient-fingerprint": fingerprint(keys.recipient),
                     "signing-key": keys.verify_key.encode(),
                     "signing-key-fingerprint": fingerprint(keys.verify_key)}
    with pytest.raises(NoIdentityMatchError):
        keyfile.open_sealed(sealed, PASSPHRASE + "x")
    secret = keys.identity.secret_string()
    recorder.assert_nothing_carries(PASSPHRASE, secret, secret.lower(), keys.signing_key.encode())
