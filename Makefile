# carebridge developer commands. README.md lists them; .ci/run calls `make test`.
#
#   make test                         bootstrap, then the whole pytest suite
#   make test PYTEST_ARGS='-k merkle' extra pytest arguments (also from the environment)
#   make serve                        bootstrap, then the gateway on ./var at 127.0.0.1:8080
#   make bootstrap                    install Debian packages, .venv and node_modules
#   make constraints                  re-pin constraints.txt to what .venv holds (after changing a dependency)
#   make audit                        known vulnerabilities in the pinned Python and npm packages (scripts/audit_deps.py)

SHELL := /bin/bash
.DEFAULT_GOAL := test

PYTHON_VENV := .venv/bin/python
PYTEST_ARGS ?=
# Spread tests over the cores with pytest-xdist, but only when there is more than one. worksteal:
# each worker starts on its half of the queue (the slow files first, tests/conftest.py SLOW_FIRST)
# and one that runs out takes half of what another has not started.
NPROC := $(shell nproc 2>/dev/null || echo 1)
XDIST := $(if $(filter-out 0 1,$(NPROC)),-n auto --dist worksteal,)

.PHONY: bootstrap test serve constraints audit

bootstrap:
	scripts/bootstrap.sh

test: bootstrap
	$(PYTHON_VENV) -m pytest $(XDIST) $(PYTEST_ARGS)

# The gateway on the embedded default: SQLite + blob folder under ./var, http://127.0.0.1:8080.
# SERVE_ARGS passes flags on (e.g. SERVE_ARGS='--port 9090').
SERVE_ARGS ?=
serve: bootstrap
	.venv/bin/carebridge serve $(SERVE_ARGS)

# Pin every package .venv holds (its comment header kept), for reproducible installs.
constraints:
	{ sed -n '/^#/p' constraints.txt; $(PYTHON_VENV) -m pip freeze --exclude-editable; } > constraints.txt.new
	mv constraints.txt.new constraints.txt

# pip-audit on constraints.txt and npm audit on package-lock.json, minus audit-waivers.toml.
# Needs the advisory services (PyPI's JSON API or OSV, the npm registry's audit endpoint).
audit: bootstrap
	scripts/audit_deps.py
