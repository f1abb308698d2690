"""A person's client settings in one file: the profile (``--profile FILE`` or ``$CAREBRIDGE_PROFILE``).

A profile is TOML with any of ``url``, ``token``, ``identity`` (the key
file; a relative path is relative to the profile's folder), ``log_verifier``,
``allow_text`` and ``keys_audit`` (``"auto"``: ``keys audit`` after every
verb); other keys are ignored. ``CAREBRIDGE_URL``, ``CAREBRIDGE_TOKEN``,
``CAREBRIDGE_IDENTITY``, ``CAREBRIDGE_LOG_VERIFIER``, ``CAREBRIDGE_ALLOW_TEXT``
and ``CAREBRIDGE_KEYS_AUDIT`` override it. It holds an API token: keep it
readable only by you (``chmod 600``), e.g. in ``~/.config/carebridge/``::

    url = "https://gateway.example"
    token = "cb1.…"
    identity = "spa.key"
"""

from __future__ import annotations

import tomllib
from collections.abc import Mapping
from pathlib import Path

from ._terminal import CLIError

PROFILE_ENV = "CAREBRIDGE_PROFILE"
KEYS = ("url", "token", "identity", "log_verifier", "allow_text", "keys_audit")
MAX_PROFILE_BYTES = 64 * 1024  # a profile is a few lines; a larger file is not one


def load(path: Path | None, env: Mapping[str, str]) -> dict[str, str]:
    """The settings of the profile at *path* (else ``$CAREBRIDGE_PROFILE``, else none), then *env*.

    Raises CLIError naming the file when it cannot be read or is not TOML.
    """
    path = path or (Path(env[PROFILE_ENV]) if env.get(PROFILE_ENV) else None)
    values = _read(path) if path is not None else {}
    for key in KEYS:
        if env.get(f"CAREBRIDGE_{key.upper()}"):
            values[key] = env[f"CAREBRIDGE_{key.upper()}"]
    return values


def _read(path: Path) -> dict[str, str]:
    try:
        with open(path, "rb") as handle:
            text = handle.read(MAX_PROFILE_BYTES + 1)
        if len(text) > MAX_PROFILE_BYTES:
            raise CLIError(f"profile {path}: larger than {MAX_PROFILE_BYTES} bytes")
        values = {k: str(v) for k, v in tomllib.loads(text.decode()).items() if k in KEYS}
    except OSError as exc:
        raise CLIError(f"profile {path}: {exc.strerror}") from None
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise CLIError(f"profile {path}: not TOML ({exc})") from None
    if values.get("identity"):  # a key file named in a profile: relative to the profile's folder
        values["identity"] = str(Path(path).parent / Path(values["identity"]).expanduser())
    return values
