"""Reading files exported from anywhere: encodings, byte-order marks, NUL bytes, CSV quoting, Excel.

Every failure is an :class:`InputError` whose message names the file, the line and the fix. The
readers here yield raw records; :mod:`rupture_nlp.data` turns them into batches of posts.
"""

from __future__ import annotations

import codecs
import csv
import io
import json
import sys
from collections.abc import Iterator
from pathlib import Path


class InputError(ValueError):
    """Input the user can fix; the message says what is wrong and how to fix it."""


DEFAULT_ENCODING = "utf-8"
DEFAULT_MAX_CHARS = 100_000
FIELD_LIMIT = 2**31 - 1  # csv's own limit is 128 KB; a post may be longer (--max-chars bounds it after)
ZIP_MAGIC = b"PK\x03\x04"
OLE_MAGIC = b"\xd0\xcf\x11\xe0"  # an old binary .xls workbook
UTF16_BOMS = (codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)


def check_encoding(encoding: str) -> str:
    """The codec name to open a file with: UTF-8 also strips a byte-order mark (Excel writes one)."""
    try:
        name = codecs.lookup(encoding).name
    except LookupError:
        raise InputError(f"unknown encoding {encoding!r}; try utf-8, cp1252, latin-1 or utf-16") from None
    return "utf-8-sig" if name in ("utf-8", "utf-8-sig") else name


def guess_encoding(data: bytes) -> str:
    """What a file that is not UTF-8 most likely is, as a phrase with the option that reads it."""
    if data.startswith(UTF16_BOMS) or (len(data) >= 4 and data[1::2].count(0) > len(data) // 4):
        return "UTF-16 (\"Unicode text\" on Windows); rerun with --encoding utf-16"
    high = {b for b in data if 0x80 <= b <= 0x9F}
    if high & {0x81, 0x8D, 0x8F, 0x90, 0x9D}:  # bytes CP-1252 leaves undefined
        return "Latin-1 (ISO-8859-1); rerun with --encoding latin-1"
    if high:  # curly quotes, dashes, the euro sign: Windows-1252
        return "Windows-1252 (CP-1252, what Excel on Windows saves as \"CSV\"); rerun with --encoding cp1252"
    return "Windows-1252 or Latin-1 (they agree on these bytes); rerun with --encoding cp1252"


def decode_error(name: str, path: str | None, encoding: str, exc: UnicodeDecodeError) -> InputError:
    """A one-line error naming the byte, its line and the encoding the file is likely in."""
    where, sample = f"byte 0x{exc.object[exc.start]:02x}", exc.object
    if path and path != "-":
        offset, line = _first_bad_byte(path, encoding)
        if offset is not None:
            where = f"{where} at line {line} (offset {offset})"
        with open(path, "rb") as fh:
            sample = fh.read(1 << 20)
    if codecs.lookup(encoding).name in ("utf-8", "utf-8-sig"):
        return InputError(f"{name} is not UTF-8 text ({where}); it looks like {guess_encoding(sample)}, "
                          f"or re-save it as UTF-8")
    return InputError(f"{name} cannot be read as {encoding} ({where}); try --encoding latin-1, which reads any "
                      f"bytes, or re-save the file as UTF-8")


def _first_bad_byte(path: str, encoding: str) -> tuple[int | None, int]:
    decoder = codecs.getincrementaldecoder(encoding)("strict")
    offset, lines = 0, 1
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            try:
                decoder.decode(block)
            except UnicodeDecodeError as exc:
                return offset + exc.start, lines + block[:exc.start].count(b"\n")
            offset += len(block)
            lines += block.count(b"\n")
    return None, lines


def open_binary(path: str):
    """A buffered binary stream with ``peek`` (standard input for '-')."""
    if path == "-":
        return sys.stdin.buffer if hasattr(sys.stdin.buffer, "peek") else io.BufferedReader(sys.stdin.buffer)
    p = Path(path)
    if not p.exists():
        raise InputError(f"input file not found: {p}")
    if p.is_dir():
        raise InputError(f"{p} is a folder, not a file")
    if p.stat().st_size == 0:
        raise InputError(f"{p} is empty: there are no posts to read")
    return open(p, "rb")


def check_not_binary(head: bytes, name: str, fmt: str) -> None:
    """A workbook given as text: say what it is and how to read it."""
    if head.startswith(ZIP_MAGIC):
        raise InputError(f"{name} is an Excel workbook or another zip file, not a {fmt} file; give it the "
                         f"extension .xlsx (or --input-format xlsx), or save it as \"CSV UTF-8\"")
    if head.startswith(OLE_MAGIC):
        raise InputError(f"{name} is an old Excel .xls workbook; save it as .xlsx or \"CSV UTF-8\"")


def lines(stream, name: str) -> Iterator[str]:
    """The lines of a text stream; a NUL character (never in text) is an error naming its line."""
    for number, line in enumerate(stream, start=1):
        if "\x00" in line:
            hint = ("it looks like UTF-16: rerun with --encoding utf-16" if line.count("\x00") * 3 >= len(line)
                    else "is it a binary file? Remove the NUL bytes or export the posts again")
            raise InputError(f"{name} line {number} holds a NUL byte; {hint}")
        yield line.lstrip("\ufeff") if number == 1 else line


# ---------------------------------------------------------------------------------------------- CSV
def csv_records(stream, name: str) -> Iterator[tuple[int, list[str]]]:
    """(line where the record starts, fields) for the header and every record of a CSV stream.

    Strict quoting: an unterminated quote or text after a closing quote is an error naming the line
    where the record starts, instead of a post that silently swallows the rest of the file.
    A record with more or fewer fields than the header (a ragged row) is an error naming its line.
    """
    csv.field_size_limit(FIELD_LIMIT)
    reader = csv.reader(lines(stream, name), strict=True)
    width = None
    while True:
        start = reader.line_num + 1
        try:
            record = next(reader)
        except StopIteration:
            return
        except csv.Error as exc:
            raise _csv_error(name, start, reader.line_num, str(exc)) from None
        if not record or len(record) == 1 and record[0] and not record[0].strip(" \t"):
            continue  # a blank line, or one of spaces only (pandas skips both)
        if width is None:
            width = len(record)
        elif len(record) != width:
            span = reader.line_num - start
            hint = (f" (it runs over {span + 1} lines: is a quote at line {start} never closed?)" if span
                    else "; quote a field that holds a comma")
            raise InputError(f"{name} line {start} has {len(record)} fields but the header has {width}{hint}")
        yield start, record


def _csv_error(name: str, start: int, end: int, message: str) -> InputError:
    if "unexpected end of data" in message or "end of data" in message:
        return InputError(f"{name} line {start}: a quoted field opened there is never closed (an unterminated "
                          f"\"); close the quote, or double a quote inside a field (\"\")")
    if "expected after" in message:
        started = f" (the quoted field starts at line {start})" if end > start else ""
        return InputError(f"{name} line {end}: text after a closing quote{started}; a quote inside a quoted field "
                          f"must be doubled (\"\")")
    return InputError(f"{name} line {end} is not valid CSV: {message}")


# --------------------------------------------------------------------------------------- JSON Lines
def jsonl_records(stream, name: str) -> Iterator[tuple[int, dict]]:
    """(line, object) for each non-blank line; a trailing comma (from an exported array) is accepted."""
    for number, line in enumerate(lines(stream, name), start=1):
        text = line.strip().lstrip("\ufeff").strip()
        if not text:
            continue
        if number == 1 and text.startswith("[") or text in ("[", "]"):
            raise InputError(f"{name} is a JSON array, not JSON Lines (one object a line); convert it with "
                             f"jq -c '.[]' {name} > posts.jsonl")
        if text.endswith(","):
            text = text[:-1].rstrip()
        try:
            record = json.loads(text)
        except json.JSONDecodeError:
            raise InputError(f"{name} line {number} is not valid JSON (JSON Lines takes one object a line)") from None
        if not isinstance(record, dict):
            raise InputError(f"{name} line {number} is not a JSON object")
        yield number, record


# -------------------------------------------------------------------------------------------- Excel
def read_xlsx(path: str, name: str):
    """The first sheet of an .xlsx workbook as strings (needs openpyxl: the `excel` extra)."""
    import pandas as pd

    if path == "-":
        raise InputError("an .xlsx workbook cannot be read from standard input; give its file name")
    try:
        import openpyxl  # noqa: F401
    except ImportError:
        raise InputError("reading .xlsx needs openpyxl: pip install 'rupture-nlp[excel]' "
                         "(or save the sheet as \"CSV UTF-8\")") from None
    with open_binary(path) as fh:
        head = fh.read(4)
    if head != ZIP_MAGIC:
        raise InputError(f"{name} is not an .xlsx workbook (no zip signature); if it is a CSV, give it the "
                         f"extension .csv")
    try:
        df = pd.read_excel(path, dtype=str, keep_default_na=False, engine="openpyxl")
    except Exception as exc:  # openpyxl raises many kinds on a damaged workbook
        raise InputError(f"{name} is not a readable .xlsx workbook: {type(exc).__name__}: "
                         f"{str(exc).splitlines()[0] if str(exc) else ''}".rstrip(": ")) from None
    df.columns = [str(c).lstrip("\ufeff") for c in df.columns]
    return df
