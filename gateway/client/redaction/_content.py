"""Content streams parsed faster, into exactly the operations pypdf's own parser builds.

Parsing content streams is most of the gate's time on a long document, and
most tokens are plain numbers, names, operators, strings and TJ arrays, which
pypdf reads a byte at a time through a file object. :func:`parse` reads those
with one regular expression over the whole stream and builds the same objects
pypdf does; every other token (escaped strings, other arrays, dictionaries,
inline images, comments, odd numbers and names) goes to pypdf's own code at
that position. The parsing budget is charged as pypdf charges it, a run of
simple tokens in one go (so a stream over it fails a few tokens later than in
pypdf, with the same error). ``test_content.py`` checks that the operations
equal pypdf's, type for type, on every public test PDF and on edge cases. It
relies on pypdf internals: ``scripts/build_web.py`` pins the version the page
runs, and the tests run on the version installed.
"""

from __future__ import annotations

import re
from io import BytesIO

from pypdf import get_configuration
from pypdf._utils import read_until_regex
from pypdf.errors import LimitReachedError
from pypdf.generic import (
    ArrayObject,
    ContentStream,
    FloatObject,
    NameObject,
    NumberObject,
    create_string_object,
    read_object,
)
from pypdf.generic._image_inline import read_inline_image
from pypdf.generic._utils import StreamParsingBudget

# A number of at most 19 characters (pypdf reads a 20-byte peek and looks for its end there), of
# pypdf's number characters ("+", ",", "-", ".", digits), followed by something, and not perhaps
# the start of an indirect reference ("1 0 R", which pypdf refuses in a content stream).
_NUMBER_TOKEN = rb"[0-9+\-.][0-9+,\-.]{0,18}(?=[^0-9+,\-.])(?!\s+\d+\s+R)"
# A literal string without escapes or nested parentheses: its bytes are what pypdf reads.
_STRING_TOKEN = rb"\([^()\\]*\)"
# Whitespace inside an array, as pypdf's array reader skips it (bytes.isspace() or NUL).
_ARRAY_SPACE = rb"[\x00\t\n\x0b\f\r ]*"
# pypdf's whitespace between tokens (read_non_whitespace), then one simple token:
# 1. a number; 2. a name without "#" escapes or non-ASCII bytes, ended by pypdf's delimiter or the
# end; 3. an operator (a letter or a quote, up to pypdf's delimiter) well under pypdf's length
# limit; 4. a string; 5. an array of numbers and strings only (a TJ array).
_TOKEN = re.compile(
    rb"[\x00\t\n\f\r ]*(?:"
    rb"(" + _NUMBER_TOKEN + rb")"
    rb"|(/[^\s()<>\[\]{}/%#\x80-\xff]{0,255})(?=[\s()<>\[\]{}/%]|\Z)"
    rb"|([A-Za-z'\"][^\s()<>\[\]{}/%]{0,63})(?=[\s()<>\[\]{}/%]|\Z)"
    rb"|\(([^()\\]*)\)"
    rb"|(\[(?:" + _ARRAY_SPACE + rb"(?:" + _NUMBER_TOKEN + rb"|" + _STRING_TOKEN + rb"))*" + _ARRAY_SPACE + rb"\])"
    rb")"
)
_NUMBER, _NAME, _OPERATOR, _STRING, _ARRAY = 1, 2, 3, 4, 5
_ELEMENT = re.compile(_ARRAY_SPACE + rb"(?:(" + _NUMBER_TOKEN + rb")|\(([^()\\]*)\))")
_WHITESPACE = b"\x00\t\n\f\r "


def parse(content: ContentStream) -> None:
    """Parse *content*'s data into its operations, as reading ``content.operations`` would."""
    data = content.get_data()
    encoding = content.forced_encoding
    operations: list = []
    operands: list = []
    budget = StreamParsingBudget(remaining_budget=get_configuration().stream_parsing_work_maximum_count)
    max_elements = get_configuration().array_maximum_element_count
    stream = BytesIO(data)
    position, size, tokens = 0, len(data), 0
    match_token = _TOKEN.match
    while True:
        match = match_token(data, position)
        kind = match.lastindex if match else None
        if kind == _OPERATOR and match.group(kind) == b"BI":
            kind = None  # an inline image: pypdf's reader below
        if kind == _ARRAY:
            array = ArrayObject(_number(n) if n else create_string_object(t, encoding)
                                for n, t in _ELEMENT.findall(match.group(kind)))
            if len(array) > max_elements:
                kind = None  # pypdf's reader refuses it
            else:
                operands.append(array)
                tokens += len(array)  # pypdf charges each element too
        elif kind == _OPERATOR:
            operations.append((operands, match.group(kind)))
            operands = []
        elif kind == _NAME:
            operands.append(NameObject(match.group(kind).decode("utf-8")))
        elif kind == _NUMBER:
            operands.append(_number(match.group(kind)))
        elif kind == _STRING:
            operands.append(create_string_object(match.group(kind), encoding))
        if kind is not None:
            tokens += 1  # charged to the budget in bulk, before any slower step and at the end
            position = match.end()
            continue
        _charge(budget, tokens)
        tokens = 0
        while position < size and data[position] in _WHITESPACE:
            position += 1
        if position >= size:
            break
        stream.seek(position)
        operands = _slow_step(content, stream, data[position:position + 1], operands, operations, budget)
        position = stream.tell()
    content.operations = operations


def _number(token: bytes) -> NumberObject | FloatObject:
    """The number pypdf reads from *token*; built directly, as pypdf's constructors are the slow part."""
    real = b"." in token
    try:
        return float.__new__(FloatObject, float(token)) if real else int.__new__(NumberObject, int(token))
    except ValueError:  # "1.2.3", "1,5", "-": pypdf's constructors warn and read 0
        return FloatObject(token) if real else NumberObject(token)


def _charge(budget: StreamParsingBudget, tokens: int) -> None:
    budget.remaining_budget -= tokens
    if budget.remaining_budget < 0:
        raise LimitReachedError("Reached maximum number of tokens per stream.")


def _slow_step(content: ContentStream, stream: BytesIO, peek: bytes, operands: list, operations: list,
               budget: StreamParsingBudget) -> list:
    """One step of pypdf's ``ContentStream._parse_content_stream`` at *stream*'s position; the operands after."""
    if peek.isalpha() or peek in (b"'", b'"'):
        operator = read_until_regex(stream=stream, regex=NameObject.delimiter_pattern,
                                    length=ContentStream._OPERATOR_LENGTH_LIMIT)
        if operator == b"BI":
            assert operands == []
            ContentStream._check_limits(parsing_budget=budget, token_decrement=2)
            image = read_inline_image(content_stream=content, stream=stream, parsing_budget=budget)
            operations.append((image, b"INLINE IMAGE"))
            return operands
        ContentStream._check_limits(parsing_budget=budget, token_decrement=1)
        operations.append((operands, operator))
        return []
    if peek == b"%":
        while peek not in (b"\r", b"\n", b""):
            peek = stream.read(1)
        return operands
    ContentStream._check_limits(parsing_budget=budget, token_decrement=1)
    operands.append(read_object(stream, None, content.forced_encoding, parsing_budget=budget))
    return operands
