"""``carebridge serve --workers N``: N gateway processes on one listening socket.

The choice: a pre-fork of our own aiohttp processes, not gunicorn with
aiohttp's worker. The gateway's HTTP edge (:mod:`.httpserver`) replaces
aiohttp's connection protocol to answer malformed requests as problem+json
and to keep client data out of framework logs; gunicorn's ``GunicornWebWorker``
builds its own runner and would bypass it. What gunicorn would add besides
(worker restarts, signal handling) is the few lines below.

The supervisor prepares the data folder and brings the schema up to date
once (so workers never race to create keys or migrate), binds the socket,
and starts N ``carebridge serve`` processes that inherit it (``--listen-fd``,
hidden): the kernel hands each new connection to one of them. Workers are
separate interpreters (spawned, not forked), so nothing of the supervisor's
threads or connections leaks into them. Everything they share lives in the
database and the blob store (see :mod:`.ratelimit`, :mod:`.jobs`,
:mod:`.checkpoints`); ``PROMETHEUS_MULTIPROC_DIR`` (a private folder made
here) lets any worker answer ``/metrics`` for all of them.

On SIGTERM or SIGINT the supervisor passes SIGTERM on, and each worker
drains (:func:`.httpserver.run`); a worker still running ``shutdown_grace``
plus :data:`KILL_MARGIN` seconds later is killed. A worker that dies on its
own is started again, unless workers keep dying within :data:`QUICK_DEATH`
seconds of their start (a configuration that cannot serve): then the
supervisor stops them all and exits non-zero.
"""

from __future__ import annotations

import logging
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence

from .metrics import MULTIPROC_ENV
from .settings import Settings

log = logging.getLogger("carebridge.server.workers")
LISTEN_BACKLOG = 1024  # connections waiting for a worker's accept (aiohttp's own default is 128)
KILL_MARGIN = 10.0  # seconds past shutdown_grace before a worker that has not stopped is killed
QUICK_DEATH = 5.0  # a worker that exits this soon after its start did not get to serve
MAX_QUICK_DEATHS = 3  # in a row: then the supervisor gives up
POLL_SECONDS = 0.2
_WORKER = "from carebridge.gateway.cli import main; raise SystemExit(main())"


def bind(settings: Settings) -> socket.socket:
    """The listening socket the workers share (inheritable)."""
    family = socket.AF_INET6 if ":" in settings.host else socket.AF_INET
    sock = socket.create_server((settings.host, settings.port), family=family, backlog=LISTEN_BACKLOG)
    sock.set_inheritable(True)
    return sock


def supervise(settings: Settings, sock: socket.socket, worker_args: Sequence[str]) -> int:
    """Run ``settings.workers`` workers on *sock* until a signal; returns the exit status."""
    metrics_dir = tempfile.mkdtemp(prefix="carebridge-metrics-")
    env = {**os.environ, MULTIPROC_ENV: metrics_dir}
    command = [sys.executable, "-c", _WORKER, "serve", *worker_args, "--listen-fd", str(sock.fileno())]
    stopping: list[int] = []

    def spawn() -> tuple[subprocess.Popen, float]:
        return subprocess.Popen(command, pass_fds=(sock.fileno(),), env=env), time.monotonic()

    def stop(signum: int, _frame) -> None:
        stopping.append(signum)
        for proc, _ in workers:
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)

    workers = [spawn() for _ in range(settings.workers)]
    previous = {sig: signal.signal(sig, stop) for sig in (signal.SIGTERM, signal.SIGINT)}
    quick_deaths, status = 0, 0
    try:
        while not stopping:
            time.sleep(POLL_SECONDS)
            for n, (proc, started) in enumerate(workers):
                if proc.poll() is None or stopping:
                    continue
                _forget(metrics_dir, proc.pid)
                quick_deaths = quick_deaths + 1 if time.monotonic() - started < QUICK_DEATH else 0
                log.warning("worker %d exited with %s", proc.pid, proc.returncode)
                if quick_deaths >= MAX_QUICK_DEATHS:
                    log.error("workers keep exiting at start: stopping")
                    status = 1
                    stop(signal.SIGTERM, None)
                    break
                workers[n] = spawn()
        deadline = time.monotonic() + settings.shutdown_grace.total_seconds() + KILL_MARGIN
        for proc, _ in workers:
            try:
                proc.wait(timeout=max(0.0, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                log.error("worker %d did not stop in time: killed", proc.pid)
                proc.kill()
                proc.wait()
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        sock.close()
        shutil.rmtree(metrics_dir, ignore_errors=True)
    return status


def _forget(metrics_dir: str, pid: int) -> None:
    """Drop a dead worker's live gauges from the shared metrics (prometheus-client's rule)."""
    from prometheus_client import multiprocess

    multiprocess.mark_process_dead(pid, metrics_dir)
