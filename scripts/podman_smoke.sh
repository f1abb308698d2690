#!/usr/bin/env bash
# Build the gateway image with podman from what this machine has, and smoke-test
# two gateway containers on the host's PostgreSQL and a moto S3 server: health,
# an upload through one and a download through each, byte for byte.
#
#   1. base image: debootstrap bookworm (minbase + python3) from the Debian mirror,
#      imported as localhost/carebridge-base:bookworm (cached in $CACHE)
#   2. wheels: `pip wheel .` on the host (carebridge and its dependencies)
#   3. image: docker/Containerfile, `pip install --no-index` of those wheels
#   4. two containers (host network, ports P1 and P2), one data volume, PostgreSQL
#      at $PG_ADMIN (database made and dropped here), S3 on a moto server started here
#
# podman runs with the runc runtime (crun fails on this kernel) and explicit ulimits.
# Usage: bash scripts/podman_smoke.sh   (as root; needs the Debian packages podman runc debootstrap uidmap,
#   not installed by bootstrap: apt-get install -y podman runc debootstrap uidmap)
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
PY=$ROOT/.venv/bin/python
CACHE=${CAREBRIDGE_PODMAN_CACHE:-/var/tmp/carebridge-podman}
PG_ADMIN=${CAREBRIDGE_TEST_POSTGRES:-postgresql://postgres@127.0.0.1:5432/test}
MIRROR=${DEBIAN_MIRROR:-http://deb.debian.org/debian}
# Explicit ulimits (runc sets them; none may exceed this shell's hard limits).
NOFILE=$(ulimit -Hn); [ "$NOFILE" = unlimited ] || [ "$NOFILE" -gt 65536 ] && NOFILE=65536
NPROC=$(ulimit -Hu); [ "$NPROC" = unlimited ] || [ "$NPROC" -gt 8192 ] && NPROC=8192
ULIMITS=(--ulimit "nofile=$NOFILE:$NOFILE" --ulimit "nproc=$NPROC:$NPROC")
PODMAN=(podman --runtime runc)
IMAGE=localhost/carebridge:smoke
started=$(date +%s)
say() { printf 'podman_smoke: %s (%ds)\n' "$*" $(( $(date +%s) - started )); }

WORK=$(mktemp -d /var/tmp/carebridge-smoke.XXXXXX)
containers=()
cleanup() {
    for c in "${containers[@]}"; do "${PODMAN[@]}" rm -f "$c" >/dev/null 2>&1 || true; done
    rm -rf "$WORK"
}
trap cleanup EXIT

# 1. the base image
if ! "${PODMAN[@]}" image exists localhost/carebridge-base:bookworm; then
    if [ ! -f "$CACHE/rootfs.tar" ]; then
        mkdir -p "$CACHE"
        if [ ! -x "$CACHE/rootfs/usr/bin/python3" ]; then
            say "debootstrap bookworm into $CACHE/rootfs"
            debootstrap --variant=minbase --include=python3,python3-venv,ca-certificates bookworm \
                "$CACHE/rootfs" "$MIRROR" >"$CACHE/debootstrap.log"
        fi
        rm -rf "$CACHE"/rootfs/var/cache/apt/archives/*.deb "$CACHE"/rootfs/var/lib/apt/lists/*
        tar -C "$CACHE/rootfs" -cf "$CACHE/rootfs.tar" .
    fi
    say "importing the base image"
    "${PODMAN[@]}" import "$CACHE/rootfs.tar" localhost/carebridge-base:bookworm >/dev/null
fi

# 2. wheels, 3. the image
say "building wheels on the host"
mkdir -p "$WORK/context/wheels"
"$PY" -m pip wheel --quiet --wheel-dir "$WORK/context/wheels" "$ROOT" >"$WORK/wheels.log" 2>&1 \
    || { tail -20 "$WORK/wheels.log"; exit 1; }
cp "$ROOT/docker/Containerfile" "$WORK/context/Containerfile"
say "building $IMAGE ($(ls "$WORK/context/wheels" | wc -l) wheels)"
"${PODMAN[@]}" build --quiet "${ULIMITS[@]}" --network none -t "$IMAGE" -f "$WORK/context/Containerfile" \
    "$WORK/context" >/dev/null
say "image: $("${PODMAN[@]}" image inspect --format '{{.Id}} {{.Size}} bytes' "$IMAGE")"

# 4. two containers on PostgreSQL + moto S3, checked from the host
say "starting two gateway containers"
PODMAN_BIN="${PODMAN[*]}" ULIMITS="${ULIMITS[*]}" IMAGE=$IMAGE WORK=$WORK PG_ADMIN=$PG_ADMIN \
    "$PY" - <<'PYEOF'
import asyncio, hashlib, os, secrets, select, shlex, subprocess, sys, time, urllib.request
from pathlib import Path

sys.path.insert(0, os.getcwd())
from tests.gateway.server import nginx_deploy as deploy
from carebridge.gateway.server.settings import load
import psycopg, boto3

podman, ulimits, image = shlex.split(os.environ["PODMAN_BIN"]), shlex.split(os.environ["ULIMITS"]), os.environ["IMAGE"]
work, pg_admin = Path(os.environ["WORK"]), os.environ["PG_ADMIN"]
moto = subprocess.Popen([sys.executable, "-c", "import sys\nfrom moto.server import ThreadedMotoServer\n"
                         "s = ThreadedMotoServer(ip_address='127.0.0.1', port=0, verbose=False); s.start()\n"
                         "print(s.get_host_and_port()[1], flush=True); sys.stdin.read(); s.stop()"],
                        stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
select.select([moto.stdout], [], [], 60)
s3_url = f"http://127.0.0.1:{int(moto.stdout.readline())}"
s3 = boto3.client("s3", endpoint_url=s3_url, region_name="us-east-1", aws_access_key_id="testing",
                  aws_secret_access_key="testing")
s3.create_bucket(Bucket="carebridge-smoke")
db = f"cb_smoke_{secrets.token_hex(4)}"
with psycopg.connect(pg_admin, autocommit=True) as conn:
    conn.execute(f'CREATE DATABASE "{db}"')
db_url = pg_admin.rsplit("/", 1)[0] + f"/{db}"
names = []
try:
    data = work / "data"
    parties = deploy.create_parties(load(env={}, overrides={"data_dir": data, "database_url": db_url}))
    for path in [data, *data.rglob("*")]:
        os.chown(path, 10001, 10001)  # the image's carebridge user
    env = {"DATABASE_URL": db_url, "BLOB_STORE": "s3", "S3_BUCKET": "carebridge-smoke", "S3_ENDPOINT_URL": s3_url,
           "S3_ACCESS_KEY_ID": "testing", "S3_SECRET_ACCESS_KEY": "testing", "HOST": "127.0.0.1"}
    ports = [deploy.free_port(), deploy.free_port()]
    for number, port in enumerate(ports):
        name = f"carebridge-smoke-{os.getpid()}-{number}"
        flags = [f"--env=CAREBRIDGE_{k}={v}" for k, v in {**env, "PORT": str(port)}.items()]
        subprocess.run([*podman, "run", "-d", "--name", name, *ulimits, "--network", "host",
                        "-v", f"{data}:/var/lib/carebridge:Z", *flags, image], check=True, capture_output=True)
        names.append(name)
        print(f"container {name}: carebridge serve on 127.0.0.1:{port}", flush=True)
    for port in ports:
        deadline = time.monotonic() + 90
        while True:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/api/v1/health", timeout=2) as r:
                    print(f"health {port}: {r.status} {r.read().decode()}", flush=True)
                    break
            except OSError:
                if time.monotonic() > deadline:
                    raise SystemExit(f"no health from {port}")
                time.sleep(0.5)
    asyncio.run(deploy.register_keys(f"http://127.0.0.1:{ports[0]}", parties))
    content = work / "smoke.age"
    cipher = deploy.seal(secrets.token_bytes(300_000), parties, content)
    doc_id = asyncio.run(deploy.upload(f"http://127.0.0.1:{ports[0]}", parties, content))
    print(f"upload via {ports[0]}: {doc_id} ({len(cipher)} bytes, sha256 {hashlib.sha256(cipher).hexdigest()[:16]}...)")
    for port in reversed(ports):
        req = urllib.request.Request(f"http://127.0.0.1:{port}/api/v1/documents/{doc_id}/content",
                                     headers={"Authorization": f"Bearer {parties.recipient.token}"})
        with urllib.request.urlopen(req, timeout=30) as r:
            body = r.read()
        assert body == cipher, f"download via {port} differs"
        print(f"download via {port}: {r.status}, {len(body)} bytes, equal to the upload")
    objects = [o["Key"] for o in s3.list_objects_v2(Bucket="carebridge-smoke")["Contents"]]
    print(f"S3 objects: {len(objects)} (content + meta)")
    print("smoke: ok")
finally:
    for name in names:
        logs = subprocess.run([*podman, "logs", name], capture_output=True, text=True).stdout
        print(f"--- {name} log (last lines) ---\n" + "\n".join(logs.splitlines()[-4:]))
        subprocess.run([*podman, "rm", "-f", name], capture_output=True)
    with psycopg.connect(pg_admin, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{db}" WITH (FORCE)')
    moto.stdin.close(); moto.wait(timeout=10)
PYEOF
say "done"
