#!/usr/bin/env bash
# Install everything carebridge's tests need on a fresh Debian 12 machine, and
# nothing when it is all there already (a no-op run takes well under a second).
#
#   1. Debian packages in APT_PACKAGES that are missing (apt-get update only then)
#   2. .venv with the current python3 (>= 3.11) and `pip install -e '.[test]'`
#      at the versions pinned in constraints.txt, redone only when pyproject.toml,
#      setup.py, constraints.txt or the interpreter changed
#   3. node_modules from package.json / package-lock.json, redone only when
#      either changed
#   4. the web app (gateway/web/dist) by scripts/build_web.py, rebuilt only
#      when its sources, package-lock.json or the build script changed
#
# Usage: scripts/bootstrap.sh      (PYTHON=/path/to/python3 to pick another interpreter)
set -euo pipefail

# Debian packages the test suite drives as real parts (docs/architecture.md, "Real
# parts").
APT_PACKAGES=(
    age        # /usr/bin/age + age-keygen 1.1.1: interop tests
    zsh        # the completion test has zsh parse and bind the script it is given
    chromium   # the browser tests (tests/web), driven by Playwright for Python
    fonts-dejavu-core  # DejaVu Sans: the redaction corpus set in a TrueType font with ligatures
    poppler-utils      # pdftotext: the redaction gate's text checked against an independent extractor
    nginx      # the reverse proxy that moves download bytes (tests/gateway/server/test_nginx.py)
    wrk        # HTTP load generator of scripts/bench_scale.py (a C client: the load eats little CPU)
)

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"
VENV=$ROOT/.venv
PYTHON=${PYTHON:-python3}

log() { printf 'bootstrap: %s\n' "$*" >&2; }
die() { log "error: $*"; exit 1; }

as_root() {
    if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi
}

# Hash of the given files plus any extra words; used as a "done for this input" stamp.
fingerprint() {
    local extra=$1; shift
    { printf '%s\n' "$extra"; cat "$@"; } | sha256sum | cut -d' ' -f1
}

install_apt_packages() {
    local pkg missing=()
    local wanted=("${APT_PACKAGES[@]}")
    # node + npm come with the machine; on one without them Debian's will do.
    command -v npm >/dev/null 2>&1 || wanted+=(nodejs npm)
    for pkg in "${wanted[@]}"; do
        if [ "$(dpkg-query -W -f='${db:Status-Status}' "$pkg" 2>/dev/null)" != installed ]; then
            missing+=("$pkg")
        fi
    done
    if [ ${#missing[@]} -eq 0 ]; then
        log "debian packages: ok (${wanted[*]})"
        return
    fi
    log "debian packages: installing ${missing[*]}"
    as_root apt-get update -qq
    as_root env DEBIAN_FRONTEND=noninteractive \
        apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
}

install_venv() {
    local stamp=$VENV/.carebridge-installed version want
    "$PYTHON" -c 'import sys; sys.exit(sys.version_info < (3, 11))' \
        || die "$PYTHON is $("$PYTHON" -V 2>&1); carebridge needs Python >= 3.11"
    version=$("$PYTHON" -c 'import sys; print(sys.version)')
    want=$(fingerprint "$version" pyproject.toml setup.py constraints.txt)

    # A venv made by another interpreter (or a broken one) is made anew.
    if [ "$("$VENV/bin/python" -c 'import sys; print(sys.version)' 2>/dev/null)" != "$version" ]; then
        log "python venv: creating .venv with $("$PYTHON" -V 2>&1)"
        rm -rf "$VENV"
        "$PYTHON" -m venv "$VENV"
    elif [ "$(cat "$stamp" 2>/dev/null)" = "$want" ]; then
        log "python venv: ok (.venv, pyproject.toml unchanged)"
        return
    fi
    log "python venv: pip install -c constraints.txt -e '.[test]'"
    rm -f "$stamp"
    "$VENV/bin/python" -m pip install --quiet --disable-pip-version-check -c constraints.txt -e '.[test]'
    printf '%s\n' "$want" >"$stamp"
}

install_node_modules() {
    local stamp=node_modules/.carebridge-installed want files=(package.json)
    [ -f package.json ] || return 0
    [ -f package-lock.json ] && files+=(package-lock.json)
    want=$(fingerprint "$(node --version)" "${files[@]}")

    if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ]; then
        log "node modules: ok (${files[*]} unchanged)"
        return
    fi
    # --ignore-scripts: we only read data from these packages, never run their hooks.
    if [ -f package-lock.json ]; then
        log "node modules: npm ci"
        npm ci --ignore-scripts --no-audit --no-fund --loglevel=error >&2
    else
        log "node modules: npm install (no package-lock.json)"
        npm install --ignore-scripts --no-audit --no-fund --loglevel=error >&2
        want=$(fingerprint "$(node --version)" package.json package-lock.json)
    fi
    printf '%s\n' "$want" >"$stamp"
}

# The tests' PostgreSQL: this kind of machine runs a cluster on 127.0.0.1:5432
# (trust auth, database "test"); start it if it has stopped.
start_postgres() {
    if ! command -v pg_isready >/dev/null 2>&1; then
        log "postgresql: not installed here (its tests skip locally, fail under CI)"
        return
    fi
    if pg_isready -q -h 127.0.0.1 -p 5432; then
        log "postgresql: ok (127.0.0.1:5432)"
        return
    fi
    log "postgresql: starting the local cluster"
    local version
    version=$(ls /etc/postgresql 2>/dev/null | sort -V | tail -n 1)
    [ -n "$version" ] && as_root pg_ctlcluster --skip-systemctl-redirect "$version" main start || true
    for _ in $(seq 1 30); do pg_isready -q -h 127.0.0.1 -p 5432 && return; sleep 1; done
    log "postgresql: did not come up on 127.0.0.1:5432"
}

# carebridge's own modules as bytecode, refreshed where a source changed (compileall skips the
# rest: ~0.1 s). Every CLI command and gateway is a new process, and the redaction gate's sandboxed
# child may not write files at all: where PYTHONDONTWRITEBYTECODE is set (as on these machines) or
# nothing cached them yet, each process compiled its ~100 modules from source again (importing the
# admin commands and the server: 0.78 -> 0.60 s).
compile_sources() {
    "$VENV/bin/python" -m compileall -q crypto gateway policies storage >/dev/null || true
}

build_web() {
    "$PYTHON" scripts/build_web.py
}

start=$SECONDS
install_apt_packages
install_venv
compile_sources
install_node_modules
build_web
start_postgres
log "done in $((SECONDS - start))s"
