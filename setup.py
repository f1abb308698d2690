"""Package discovery only; the metadata is in pyproject.toml.

The top-level folders (crypto/, gateway/, storage/, policies/; docs/architecture.md)
install under one namespace, ``carebridge.*``, so that ``carebridge.crypto``
cannot collide with other distributions. setuptools cannot prefix discovered
packages by itself, hence these few lines.
"""

from setuptools import find_packages, setup

TOP_LEVEL = ("crypto", "gateway", "storage", "policies")

packages = []
for top in TOP_LEVEL:
    packages += [f"carebridge.{top}"] + [f"carebridge.{top}.{sub}" for sub in find_packages(top)]

setup(
    packages=packages,
    package_dir={f"carebridge.{top}": top for top in TOP_LEVEL},
    # Alembic's migration scripts are data to setuptools (no __init__.py there).
    package_data={"carebridge.storage.db": ["migrations/*.py", "migrations/*.mako",
                                            "migrations/versions/*.py"],
                  # The redaction gate's identifier rules (shared with the web form).
                  "carebridge.gateway.client.redaction": ["rules.json"],
                  # The handoff template (treatment summary), version 1: templates are data.
                  "carebridge.gateway.client": ["templates/*.json"],
                  # The policy JSON schema, published beside the parser it mirrors.
                  "carebridge.policies": ["policy.schema.json"],
                  # The built web app (scripts/build_web.py), served under /app/.
                  "carebridge.gateway": ["web/dist/*"]},
)
