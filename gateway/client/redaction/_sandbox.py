"""Run the PDF parser in a confined child process (see :mod:`._worker`).

The child gets the document on standard input and the limits on its command
line; it sets its own memory and CPU limits before importing pypdf. Here the
parent enforces the wall time, killing the child when it runs over, and maps
every way a child can end to a :class:`~.errors.RedactionError`.
"""

from __future__ import annotations

import json
import signal
import subprocess
import sys

from ._protocol import Parsed, decode
from .errors import UnreadablePdf
from .limits import Limits

WORKER_MODULE = __package__ + "._worker"


def parse_in_child(data: bytes, limits: Limits) -> Parsed:
    """Sanitize and analyse a PDF in a child process.

    Raises LimitExceeded (too large, too slow, too much memory) or
    UnreadablePdf (encrypted, malformed, crashed the parser).
    """
    limits.check_size(len(data), "max_input_bytes", "the PDF")
    # -I: ignore PYTHON* variables, the user site folder and the current directory.
    command = [sys.executable, "-I", "-m", WORKER_MODULE, json.dumps(limits.to_json())]
    with subprocess.Popen(command, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                          stderr=subprocess.DEVNULL, close_fds=True) as child:
        try:
            output, _ = child.communicate(data, timeout=limits.timeout_seconds)
        except subprocess.TimeoutExpired:
            child.kill()
            child.communicate()
            raise limits.exceeded("timeout_seconds", "reading the PDF took longer than") from None
    if child.returncode == -signal.SIGXCPU or child.returncode == -signal.SIGKILL:
        raise limits.exceeded("timeout_seconds", "reading the PDF took longer than")
    if child.returncode != 0:
        raise UnreadablePdf("the PDF crashed the parser")
    return decode(output)
