"""How ``carebridge serve`` writes its log: text lines, or one JSON object per line.

The records themselves carry ids only (the access logger writes route
templates, never paths; refusals and jobs log classes and counts), so the
JSON form adds structure, not content: ``time`` (RFC 3339 UTC with
milliseconds), ``level``, ``logger``, ``message``, and ``pid`` (which worker
of ``serve --workers``).
"""

from __future__ import annotations

import json
import logging
import os
import time

TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"


class _SecondStamps:
    """A time's text to the second, remembered for the current second: strftime per record
    was a fifth of an access line's cost, one line per request."""

    def __init__(self, convert, pattern: str) -> None:
        self._convert, self._pattern = convert, pattern
        self._last: tuple[int, str] | None = None  # one tuple, so no thread sees half an update

    def __call__(self, created: float) -> str:
        second, last = int(created), self._last
        if last is None or last[0] != second:
            last = self._last = (second, time.strftime(self._pattern, self._convert(second)))
        return last[1]


class TextFormatter(logging.Formatter):
    """:data:`TEXT_FORMAT`, its time as :class:`logging.Formatter` writes it (local, ``,mmm``)."""

    def __init__(self) -> None:
        super().__init__(TEXT_FORMAT)
        self._stamps = _SecondStamps(self.converter, self.default_time_format)

    def formatTime(self, record: logging.LogRecord, datefmt: str | None = None) -> str:
        return f"{self._stamps(record.created)},{int(record.msecs):03d}"


class JsonFormatter(logging.Formatter):
    """One JSON object per record; a record's exception is reduced to its class name."""

    def __init__(self) -> None:
        super().__init__()
        self._stamps = _SecondStamps(time.gmtime, "%Y-%m-%dT%H:%M:%S")

    def format(self, record: logging.LogRecord) -> str:
        stamp = f"{self._stamps(record.created)}.{int(record.msecs):03d}Z"
        line = {"time": stamp, "level": record.levelname, "logger": record.name,
                "message": record.getMessage(), "pid": os.getpid()}
        if record.exc_info and record.exc_info[0] is not None:
            line["error"] = record.exc_info[0].__name__  # its text may quote input: never logged
        return json.dumps(line, ensure_ascii=False)


def configure(log_format: str) -> None:
    """Log INFO and up to stderr in *log_format* (``text`` or ``json``)."""
    handler = logging.StreamHandler()
    handler.setFormatter(JsonFormatter() if log_format == "json" else TextFormatter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(logging.INFO)
    # The logging HOWTO's "Optimization": these lines carry no caller position, thread
    # or process, so records need not collect them (one access line per request).
    logging._srcfile = None
    logging.logThreads = logging.logProcesses = logging.logMultiprocessing = False
