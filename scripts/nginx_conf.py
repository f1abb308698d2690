#!/usr/bin/env python3
"""Fill in docker/nginx/carebridge.conf.template: ``${CB_*}`` names only, every one given.

    .venv/bin/python scripts/nginx_conf.py CB_LISTEN=0.0.0.0:443 CB_RUN_DIR=/run/nginx ... > nginx.conf

``CB_MAX_BODY`` defaults to what the gateway's defaults accept (:func:`max_body`);
``CB_GATEWAYS`` takes ``host:port`` addresses separated by commas. The tests and
``scripts/bench_scale.py`` use :func:`render` on temporary folders.
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

TEMPLATE = Path(__file__).resolve().parents[1] / "docker" / "nginx" / "carebridge.conf.template"
NAME = re.compile(r"\$\{(CB_[A-Z0-9_]+)\}")
MULTIPART_ALLOWANCE = 1 << 20  # manifest, policy and the multipart framing around content and meta
DEFAULT_MAX_UPLOAD = 2048 << 20  # gateway settings: max_upload_bytes
DEFAULT_MAX_META = 64 << 10  # gateway settings: max_meta_bytes


def max_body(max_upload_bytes: int = DEFAULT_MAX_UPLOAD, max_meta_bytes: int = DEFAULT_MAX_META) -> str:
    """nginx's client_max_body_size for a gateway with these limits (the gateway checks each part)."""
    return str(max_upload_bytes + max_meta_bytes + MULTIPART_ALLOWANCE)


def gateways(addresses: list[str]) -> str:
    return " ".join(f"server {address};" for address in addresses)


def render(values: dict[str, str], template: str | None = None) -> str:
    """The template with every ``${CB_*}`` replaced; ``ValueError`` naming one missing or unused."""
    text = TEMPLATE.read_text() if template is None else template
    wanted = set(NAME.findall(text))
    values = {"CB_MAX_BODY": max_body(), **values}
    if missing := wanted - values.keys():
        raise ValueError(f"no value for {sorted(missing)[0]}")
    if unused := values.keys() - wanted:
        raise ValueError(f"{sorted(unused)[0]} is not in the template")
    for name, value in values.items():
        if any(c in value for c in ";{}\n") and name != "CB_GATEWAYS":
            raise ValueError(f"{name}: must not contain ';', braces or newlines")
    return NAME.sub(lambda m: values[m.group(1)], text)


def main(argv: list[str]) -> int:
    values = {}
    for arg in argv:
        name, sep, value = arg.partition("=")
        if not sep:
            print(f"nginx_conf: error: {arg!r} is not NAME=VALUE", file=sys.stderr)
            return 2
        values[name] = gateways(value.split(",")) if name == "CB_GATEWAYS" else value
    try:
        sys.stdout.write(render(values))
    except ValueError as exc:
        print(f"nginx_conf: error: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
