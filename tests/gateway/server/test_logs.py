"""The serve log's two formats: the time each writes, remembered per second, is the one logging would."""

from __future__ import annotations

import json
import logging
import time

from carebridge.gateway.server.logs import JsonFormatter, TextFormatter


def _record(created: float, message: str = "GET /api/v1/documents/{id}/content 200 1.2ms") -> logging.LogRecord:
    record = logging.LogRecord("aiohttp.access", logging.INFO, __file__, 1, message, None, None)
    record.created, record.msecs = created, (created - int(created)) * 1000
    return record


# Across a second's boundary, twice in one second, and back to an earlier second.
MOMENTS = [1_765_000_000.999, 1_765_000_001.0, 1_765_000_001.5, 1_765_000_000.25, 1_800_000_000.001]


def test_text_lines_read_as_the_standard_formatter_writes_them() -> None:
    ours, standard = TextFormatter(), logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s")
    for moment in MOMENTS:
        assert ours.format(_record(moment)) == standard.format(_record(moment))


def test_json_lines_carry_the_utc_time_to_the_millisecond() -> None:
    formatter = JsonFormatter()
    for moment in MOMENTS:
        record = _record(moment)
        line = json.loads(formatter.format(record))
        expected = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(moment)) + f".{int(record.msecs):03d}Z"
        assert line["time"] == expected
        assert (line["level"], line["logger"]) == ("INFO", "aiohttp.access")
        assert line["message"] == "GET /api/v1/documents/{id}/content 200 1.2ms"
