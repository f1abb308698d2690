# carebridge developer commands. README.md lists them; .ci/run calls `make test`.
#
#   make test                         bootstrap, then the whole pytest suite
#   make test PYTEST_ARGS='-k merkle' extra pytest arguments (also from the environment)
#   make bootstrap                    install Debian packages, .venv and node_modules

SHELL := /bin/bash
.DEFAULT_GOAL := test

PYTHON_VENV := .venv/bin/python
PYTEST_ARGS ?=
# Spread tests over the cores with pytest-xdist, but only when there is more than one.
NPROC := $(shell nproc 2>/dev/null || echo 1)
XDIST := $(if $(filter-out 0 1,$(NPROC)),-n auto,)

.PHONY: bootstrap test

bootstrap:
	scripts/bootstrap.sh

test: bootstrap
	$(PYTHON_VENV) -m pytest $(XDIST) $(PYTEST_ARGS)

# serve: arrives with the gateway (`carebridge serve`, ARCHITECTURE.md CLI contract).
