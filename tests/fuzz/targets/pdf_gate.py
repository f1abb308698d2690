"""The redaction gate's PDF worker (``gateway/client/redaction/_worker.py``), in process, under small limits.

In production the worker runs in a confined child that turns every exception
into a fixed refusal, so a bug in our own analysis would look like "the PDF
is malformed". Here the parse runs in process, so coverage guides the fuzzer
and the contract can be strict: RedactionError (UnreadablePdf, LimitExceeded)
passes, and so does a failure raised while pypdf runs (in pypdf or the stdlib
it calls: ``base64.a85decode``'s ValueError) or a RecursionError
(the worker maps both to UnreadablePdf by design); any other exception raised
from carebridge's own code is a crash. Hangs and memory blow-ups are caught by
libFuzzer's ``-timeout`` and ``-rss_limit_mb`` (scripts/fuzz.py sets both);
``test_fuzz.py`` also replays the corpus through the real child process.
"""

from __future__ import annotations

import dataclasses
import traceback

import pypdf

from carebridge.gateway.client.redaction import Limits, RedactionError
from carebridge.gateway.client.redaction import _worker

# Small enough for fast executions, large enough for the seed PDFs.
LIMITS = Limits(max_input_bytes=256 * 1024, max_pages=20, max_decompressed_bytes=4 * 1024 * 1024,
                timeout_seconds=5)


def _raised_by_pypdf(exc: BaseException) -> bool:
    """Whether pypdf was running when *exc* was raised (directly, or in the stdlib it called)."""
    files = [frame.filename.replace("\\", "/") for frame in traceback.extract_tb(exc.__traceback__)]
    pypdf = [i for i, name in enumerate(files) if "/pypdf/" in name]
    ours = [i for i, name in enumerate(files) if "/carebridge/" in name or "/gateway/client/" in name]
    return bool(pypdf) and (not ours or pypdf[-1] > ours[-1])


def TestOneInput(data: bytes) -> None:
    # pypdf's configuration is process-wide: the worker's limits are set for this input and the
    # previous settings put back after it, so a pytest process running other tests is left as it was.
    saved = dataclasses.asdict(pypdf.get_configuration())
    _worker._configure(LIMITS)
    try:
        _worker._parse_noting_repairs(data, LIMITS)
    except (RedactionError, RecursionError):
        pass
    except Exception as exc:  # noqa: BLE001 - sorted below: pypdf's failures pass, ours are crashes
        if not _raised_by_pypdf(exc):
            raise
    finally:
        pypdf.overwrite_configuration(**saved)
