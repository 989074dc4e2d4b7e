"""Low-level text reading shared by every file reader: strict UTF-8, BOMs, CRLF, CSV with line numbers.

Every problem a user can fix (missing file, bytes that are not UTF-8, a malformed line, a missing
column) becomes a one-line :class:`~harness.errors.UserError` naming ``file:line`` and what was
expected. Nothing here knows about a particular dataset.
"""

from __future__ import annotations

import csv
import io
import sys
from collections.abc import Iterator, Sequence
from pathlib import Path

from harness.errors import UserError

# SciFact's corpus has abstracts longer than csv's default 131,072-character field limit.
csv.field_size_limit(sys.maxsize)

BOM = "\ufeff"


def read_bytes(path: Path) -> bytes:
    """Returns the file's bytes; a missing path is a ``UserError`` naming it."""
    path = Path(path)
    if not path.is_file():
        raise UserError(f"{path}: file not found (check the data folder or the path)")
    return path.read_bytes()


def decode_utf8(data: bytes, where: str) -> str:
    """Decodes strict UTF-8 and drops a leading BOM.

    Args:
        data: raw file content.
        where: the file name used in error messages.

    Raises:
        UserError: naming ``where:line`` of the first byte that is not UTF-8.
    """
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        byte = data[exc.start : exc.start + 1].hex()
        raise UserError(f"{where}:{line}: byte 0x{byte} is not valid UTF-8; expected UTF-8 text") from None
    return text[1:] if text.startswith(BOM) else text


def read_text(path: Path) -> str:
    """Reads a UTF-8 text file (BOM dropped, line ends untouched)."""
    return decode_utf8(read_bytes(path), str(path))


def split_lines(text: str) -> list[str]:
    r"""Splits on ``\n`` and drops a ``\r`` before it; no empty last item for a final newline.

    ``str.splitlines`` is avoided on purpose: it also splits on form feeds, ``\x1c`` and U+2028,
    which occur inside real sentences.
    """
    lines = text.split("\n")
    if lines and lines[-1] == "":
        lines.pop()
    return [line[:-1] if line.endswith("\r") else line for line in lines]


def read_lines(path: Path) -> list[str]:
    """Reads a UTF-8 file as lines (BOM, CRLF and a missing final newline handled)."""
    return split_lines(read_text(path))


def malformed(where: str, line: int, expected: str, found: str) -> UserError:
    """The standard one-line error for a line that does not have the expected shape."""
    return UserError(f"{where}:{line}: expected {expected}, found {found}")


def csv_records(
    text: str, where: str, *, delimiter: str = ",", quoting: int = csv.QUOTE_MINIMAL
) -> Iterator[tuple[int, list[str]]]:
    """Yields ``(first_line_number, fields)`` for each CSV record (records may span lines).

    Args:
        text: the decoded file content (CRLF allowed).
        where: the file name used in error messages.
        delimiter: the field separator.
        quoting: a ``csv.QUOTE_*`` constant; ``csv.QUOTE_NONE`` treats ``"`` as a plain character.

    Raises:
        UserError: for a quoting error, naming the line.
    """
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter, quoting=quoting, strict=True)  # type: ignore[arg-type]
    start = 1
    while True:
        try:
            fields = next(reader)
        except StopIteration:
            return
        except csv.Error as exc:
            raise UserError(
                f"{where}:{start}: malformed CSV record ({exc}); expected {delimiter!r}-separated fields"
            ) from None
        yield start, fields
        start = reader.line_num + 1


def header_index(header: Sequence[str], required: Sequence[str], where: str) -> dict[str, int]:
    """Maps each required column name to its position in ``header``.

    Raises:
        UserError: naming the missing columns and the columns found.
    """
    missing = [name for name in required if name not in header]
    if missing:
        raise UserError(
            f"{where}:1: missing column(s) {', '.join(map(repr, missing))}; "
            f"columns found: {', '.join(map(repr, header))}"
        )
    return {name: header.index(name) for name in required}


def parse_float(value: str, where: str, line: int, what: str) -> float:
    """Parses a float field or raises a ``UserError`` naming the line and the field."""
    try:
        return float(value)
    except ValueError:
        raise malformed(where, line, f"a number for {what}", repr(value)) from None
