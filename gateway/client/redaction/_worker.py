"""The parsing child: ``python -m carebridge.gateway.client.redaction._worker LIMITS_JSON``.

Reads one PDF from standard input, sanitizes and analyses it under the
limits, and writes the result (:mod:`._protocol`) to standard output. The
resource limits are set before pypdf is imported, so they hold for all of
its work. Every failure becomes a fixed one-line message: pypdf's own
messages are not passed on, as they may quote the document.
"""

from __future__ import annotations

import io
import json
import logging
import math
import resource
import sys

from ._protocol import Parsed, encode_error, encode_result
from .errors import LimitExceeded, RedactionError, UnreadablePdf
from .limits import Limits

# Seconds of CPU beyond the wall-time limit before the kernel stops the child (a backstop).
CPU_GRACE_SECONDS = 2
# Page-tree entries allowed per page: intermediate /Pages nodes count too.
PAGE_TREE_ENTRIES_PER_PAGE = 2


def _confine(limits: Limits) -> None:
    resource.setrlimit(resource.RLIMIT_AS, (limits.max_memory_bytes, limits.max_memory_bytes))
    cpu = math.ceil(limits.timeout_seconds) + CPU_GRACE_SECONDS
    resource.setrlimit(resource.RLIMIT_CPU, (cpu, cpu))
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
    resource.setrlimit(resource.RLIMIT_FSIZE, (0, 0))  # the child writes no files


def _configure(limits: Limits) -> None:
    import pypdf

    cap = limits.max_decompressed_bytes
    pypdf.overwrite_configuration(
        disable_legacy_handling=True, jbig2dec_binary=None,  # no external JBIG2 decoder
        maximum_declared_stream_length=cap, array_based_stream_maximum_output_length=cap,
        zlib_maximum_output_length=cap, lzw_maximum_output_length=cap,
        run_length_maximum_output_length=cap, brotli_maximum_output_length=cap,
        jbig2_maximum_output_length=cap, image_maximum_buffer_size=cap,
        stream_decoding_work_maximum_length=cap, xfa_decoding_work_maximum_length=cap,
        page_tree_maximum_entries=limits.max_pages * PAGE_TREE_ENTRIES_PER_PAGE + 16,
    )


def parse(data: bytes, limits: Limits, repairs: _RepairLog) -> Parsed:
    """Sanitize and analyse *data*; raises UnreadablePdf or LimitExceeded.

    *repairs* listens to pypdf while it reads: a file it had to repair is refused.
    """
    from pypdf import PdfReader
    from pypdf.errors import LimitReachedError, PyPdfError

    from ._analyse import Budget, PageStreams, analyse
    from ._forms import flatten_forms
    from ._sanitize import sanitize

    try:
        reader = PdfReader(io.BytesIO(data), strict=True)
    except PyPdfError:
        raise UnreadablePdf("the PDF is truncated or its cross-reference table is damaged") from None
    if reader.is_encrypted:
        raise UnreadablePdf("the PDF is encrypted; send an unencrypted copy")
    try:
        declared = int(reader.trailer["/Root"].get_object()["/Pages"].get_object().get("/Count", 0))
        count = len(reader.pages)
    except LimitReachedError:
        count = declared = limits.max_pages + 1
    # TypeError, ValueError: an object of the wrong type where the tree needs a dictionary or a number.
    except (PyPdfError, KeyError, AttributeError, TypeError, ValueError) as exc:
        raise _translate(exc, limits) if _from_recursion(exc) else UnreadablePdf(
            "the PDF's page tree is malformed (a loop or a broken reference)") from None
    if declared > limits.max_pages or count > limits.max_pages:
        raise limits.exceeded("max_pages", "the PDF has more pages than")
    rebuild = Budget(limits.max_decompressed_bytes)
    # Filled form fields become page content first, so that their values are scanned too.
    forms = flatten_forms(reader, rebuild.charge)
    streams = PageStreams(reader, Budget(limits.max_decompressed_bytes).charge)  # each page parsed once
    pages = analyse(reader, streams)
    sanitized, actions = sanitize(reader, data, rebuild.charge, forms, streams.get, streams.operations)
    if repairs.seen:  # what a damaged file means is up to each reader: refuse to guess
        raise UnreadablePdf("the PDF's cross-reference table is damaged; save the file again")
    return Parsed(sanitized, actions, pages)


class _RepairLog(logging.Handler):
    """Notes pypdf's warnings that it repaired, rebuilt or guessed at the file's structure."""

    # Phrases of pypdf's reader warnings about a damaged file (not its benign ones, such
    # as a valid incremental update's "Xref table not zero-indexed").
    _DAMAGE = ("repaired", "rebuil", "startxref", "invalid", "truncated", "circular",
               "can not be read", "eof marker not found", "clamping")

    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.seen = False
        self._logger = logging.getLogger("pypdf._reader")
        self._logger.addHandler(self)

    def emit(self, record: logging.LogRecord) -> None:
        try:
            message = record.getMessage().lower()
        except (TypeError, ValueError):  # pypdf formats some warnings with an object of the wrong type
            message = str(record.msg).lower()
        self.seen = self.seen or any(phrase in message for phrase in self._DAMAGE)

    def close(self) -> None:
        self._logger.removeHandler(self)
        super().close()


def _translate(exc: BaseException, limits: Limits) -> RedactionError:
    from pypdf.errors import FileNotDecryptedError, LimitReachedError

    from ._analyse import BudgetExceeded

    if isinstance(exc, RedactionError):
        return exc
    if isinstance(exc, FileNotDecryptedError):
        return UnreadablePdf("the PDF is encrypted; send an unencrypted copy")
    if isinstance(exc, (LimitReachedError, BudgetExceeded)):
        decoded = limits.exceeded("max_decompressed_bytes", "the PDF's streams decompress to more than")
        return LimitExceeded(f"{decoded}, or the PDF has too many objects")
    if _raised_while(exc, MemoryError):  # pypdf wraps some (an allocation failing inside its own handler)
        return limits.exceeded("max_memory_bytes", "reading the PDF needs more memory than")
    if _from_recursion(exc):
        return UnreadablePdf("the PDF nests objects too deeply to be read safely")
    return UnreadablePdf("the PDF is malformed and cannot be read safely")


def _from_recursion(exc: BaseException | None) -> bool:
    """Whether *exc* is, or was raised while handling, a RecursionError (pypdf wraps some)."""
    return _raised_while(exc, RecursionError)


def _raised_while(exc: BaseException | None, kind: type[BaseException]) -> bool:
    """Whether *exc* is a *kind*, or was raised (directly or not) while one was being handled."""
    while exc is not None:
        if isinstance(exc, kind):
            return True
        exc = exc.__cause__ or exc.__context__
    return False


def _parse_noting_repairs(data: bytes, limits: Limits) -> Parsed:
    repairs = _RepairLog()
    try:
        return parse(data, limits, repairs)
    finally:
        repairs.close()


def main() -> int:
    limits = Limits(**json.loads(sys.argv[1]))
    _confine(limits)
    data = sys.stdin.buffer.read(limits.max_input_bytes + 1)
    try:
        limits.check_size(len(data), "max_input_bytes", "the PDF")
        _configure(limits)
        output = encode_result(_parse_noting_repairs(data, limits))
    except Exception as exc:  # noqa: BLE001 - every parser failure must end as one clear line
        output = encode_error(_translate(exc, limits))
    sys.stdout.buffer.write(output)
    sys.stdout.buffer.flush()
    return 0


if __name__ == "__main__":
    sys.exit(main())
