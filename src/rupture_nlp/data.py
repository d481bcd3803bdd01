"""Reading posts: the labelled corpus, and user files to label (CSV, JSON Lines, plain text)."""

from __future__ import annotations

import hashlib
import io
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from rupture_nlp.labels import FACETS, inconsistent_rows, invalid_label_rows
from rupture_nlp.readers import (DEFAULT_ENCODING, DEFAULT_MAX_CHARS, InputError, check_encoding,
                                 check_not_binary, csv_records, decode_error, jsonl_records, lines, open_binary,
                                 read_xlsx)

CORPUS_COLUMNS = ["post_id", "thread_id", "author", "position", "reply_to", "created_at", "text",
                  *FACETS, "split"]
FORMATS = ("auto", "csv", "jsonl", "txt", "xlsx", "parquet")
NUMBER = re.compile(r"^\s*[-+]?[\d.,]+(?:[eE][-+]?\d+)?\s*$")
HAS_LETTER = re.compile(r"[^\W\d_]")


def _rows(numbers: list[int], limit: int = 10) -> str:
    shown = ", ".join(str(n) for n in numbers[:limit])
    return shown + (f" and {len(numbers) - limit} more" if len(numbers) > limit else "")


def sha256_file(path: str | Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def read_csv_strict(path: str | Path, required: list[str] | None = None,
                    encoding: str = DEFAULT_ENCODING) -> pd.DataFrame:
    """Read a whole CSV (or .xlsx) file of strings, with one clear error for each usual mistake:
    a byte-order mark is dropped, fields may be of any size, an unterminated quote or a ragged row is
    named by its line, a file in another encoding is named with the option that reads it."""
    name = str(path)
    if Path(name).suffix.lower() == ".xlsx":
        df = read_xlsx(name, name)
    else:
        records = list(_text_records(name, encoding, "CSV", lambda stream: csv_records(stream, name)))
        if not records:
            raise InputError(f"{name} is empty: there are no posts to read")
        header = records[0][1]
        twice = sorted({c for c in header if header.count(c) > 1})
        if twice:
            raise InputError(f"{name}: the header names column(s) {', '.join(map(repr, twice))} more than once; "
                             f"rename them so that each column has its own name")
        df = pd.DataFrame([r for _, r in records[1:]], columns=header, dtype=object).astype(str)
    df.columns = [str(c) for c in df.columns]
    missing = [c for c in (required or []) if c not in df.columns]
    if missing:
        raise InputError(f"{path} lacks column(s) {', '.join(missing)}; columns found: {', '.join(df.columns)}")
    return df


def _text_records(path: str, encoding: str, fmt: str, parse, peek: bool = False):
    """Open ``path`` (or standard input) as text in ``encoding`` and yield what ``parse`` reads from it;
    decoding errors become an InputError naming the byte, its line and the likely encoding."""
    name = "standard input" if path == "-" else path
    codec = check_encoding(encoding)
    raw = open_binary(path)
    try:
        head = raw.peek(4096)[:4096]
        check_not_binary(head[:8], name, fmt)
        stream = io.TextIOWrapper(raw, encoding=codec, errors="strict", newline="")
        try:
            yield from (parse(stream, head) if peek else parse(stream))
        except UnicodeDecodeError as exc:
            raise decode_error(name, path, codec, exc) from None
        finally:
            stream.detach()
    finally:
        if path != "-":
            raw.close()


def read_corpus(path: str | Path) -> pd.DataFrame:
    """The labelled corpus (data/posts.csv or a file of the same shape, or Parquet), validated."""
    df = _read_parquet_corpus(path) if _is_parquet(str(path)) else read_csv_strict(path, CORPUS_COLUMNS)
    return corpus_frame(df, path)


def corpus_frame(df: pd.DataFrame, path) -> pd.DataFrame:
    """A table read with the corpus's columns, validated (labels, consistency) and typed."""
    if df.empty:
        raise InputError(f"{path} has a header but no posts")
    validate_labels(df, str(path), row_offset=2)
    df["position"] = pd.to_numeric(df["position"], errors="raise").astype(int)
    df["created_at"] = pd.to_datetime(df["created_at"], utc=True, format="ISO8601")
    return df


def validate_labels(df: pd.DataFrame, where: str, row_offset: int = 2) -> None:
    """Raise InputError naming the rows with unknown labels or a broken consistency rule.

    ``row_offset`` turns a row position into the number a spreadsheet shows (2: header is line 1).
    """
    for facet, rows in invalid_label_rows(df).items():
        values = sorted(set(df[facet].iloc[rows]))
        raise InputError(f"{where}: unknown {facet} label(s) {values} in row(s) "
                         f"{_rows([r + row_offset for r in rows])}; allowed: {', '.join(FACETS[facet])}")
    bad = inconsistent_rows(df)
    if bad:
        raise InputError(f"{where}: row(s) {_rows([r + row_offset for r in bad])} break the consistency rule "
                         f"(rupture_type none <=> repair_outcome and therapist_response not_applicable)")


@dataclass
class InputSpec:
    """How to read a file of posts to label."""

    path: str
    text_column: str = "text"
    id_column: str | None = None
    input_format: str = "auto"
    skip_invalid: bool = False
    batch_size: int = 2000
    encoding: str = DEFAULT_ENCODING
    max_chars: int = DEFAULT_MAX_CHARS
    # carried through as a column ``thread`` when a table (CSV, JSONL, xlsx, Parquet) has it
    thread_column: str | None = None


def _sniff_format(path: str, head: bytes) -> str:
    suffix = Path(path).suffix.lower() if path != "-" else ""
    if suffix in (".jsonl", ".ndjson", ".json"):
        return "jsonl"
    if suffix in (".csv", ".tsv"):
        return "csv"
    if suffix in (".txt", ".text"):
        return "txt"
    if suffix == ".xlsx":
        return "xlsx"
    text = head.decode("utf-8", errors="ignore").lstrip("\ufeff")
    first_line = next((line for line in text.splitlines() if line.strip()), "")
    if first_line.lstrip().startswith("{"):
        return "jsonl"
    return "csv" if "," in first_line else "txt"


def iter_input(spec: InputSpec) -> Iterator[pd.DataFrame]:
    """Yield batches with columns ``row`` (1-based row or line number), ``id`` and ``text``.

    Invalid rows (empty, or holding no letter, or not a string in JSON) raise InputError naming them,
    or, with ``skip_invalid``, are dropped and counted in the ``skipped`` attribute of each batch.
    Texts longer than ``max_chars`` are cut there and counted in the ``truncated`` attribute.
    """
    if spec.input_format not in FORMATS:
        raise InputError(f"unknown input format {spec.input_format!r}; choose one of {', '.join(FORMATS)}")
    if spec.max_chars < 1:
        raise InputError("--max-chars must be at least 1")
    if _is_parquet(spec.path, spec.input_format):
        yield from _parquet_batches(spec)
        return
    name = "standard input" if spec.path == "-" else spec.path
    readers = {"csv": _csv_batches, "jsonl": _jsonl_batches, "txt": _txt_batches}

    def parse(stream, head):
        fmt = spec.input_format if spec.input_format != "auto" else _sniff_format(spec.path, head)
        yield from readers[fmt](stream, spec, name)

    fmt = spec.input_format if spec.input_format != "auto" else _sniff_format(spec.path, b"")
    if fmt == "xlsx":
        batches = _xlsx_batches(spec, name)
    else:
        batches = _text_records(spec.path, spec.encoding, "CSV" if fmt == "csv" else "text", parse, peek=True)
    seen_any = False
    for batch in batches:
        seen_any = True
        batch = _validate_batch(batch, spec, name)
        if len(batch) or batch.attrs.get("skipped"):
            yield batch
    if not seen_any:
        raise InputError(f"{name} has no posts (a header alone, or only blank lines)")


def no_text_column(name: str, column: str, found) -> InputError:
    return InputError(f"{name} has no column {column!r}; columns found: {', '.join(map(str, found))}. "
                      f"Name the text column with --text-column")


def _batched(records: Iterator[tuple], size: int) -> Iterator[pd.DataFrame]:
    """Group (row, id, text) or (row, id, text, thread) records into DataFrames of ``size`` rows."""
    chunk: list[tuple[int, str, object]] = []
    for record in records:
        chunk.append(record)
        if len(chunk) >= size:
            yield _frame(chunk)
            chunk = []
    if chunk:
        yield _frame(chunk)


def _frame(chunk) -> pd.DataFrame:
    rows, ids, texts, *thread = zip(*chunk)
    frame = pd.DataFrame({"row": list(rows), "id": list(ids), "text": pd.Series(list(texts), dtype=object)})
    return frame.assign(thread=[_cell(t) for t in thread[0]]) if thread else frame


def _cell(value) -> str:
    """A thread id as text: an empty or missing cell is ""."""
    return "" if value is None or (isinstance(value, float) and value != value) else str(value)


def _columns(header, spec: InputSpec, name: str) -> tuple[int, int | None, int | None]:
    """Positions of the text, id and (when the table has it) thread columns."""
    header = [str(h) for h in header]
    if spec.text_column not in header:
        raise no_text_column(name, spec.text_column, header)
    if spec.id_column and spec.id_column not in header:
        raise InputError(f"{name} has no id column {spec.id_column!r}; columns found: {', '.join(header)}")
    thread = header.index(spec.thread_column) if spec.thread_column in header else None
    return header.index(spec.text_column), header.index(spec.id_column) if spec.id_column else None, thread


def _record(number: int, values, t_idx: int, i_idx: int | None, th_idx: int | None) -> tuple:
    head = (number, str(values[i_idx]) if i_idx is not None else str(number), values[t_idx])
    return head if th_idx is None else (*head, values[th_idx])


def _csv_batches(stream, spec: InputSpec, name: str) -> Iterator[pd.DataFrame]:
    """Rows are numbered as a spreadsheet shows them less the header (row 1 is the first post)."""
    reader = csv_records(stream, name)
    first = next(reader, None)
    if first is None:
        raise InputError(f"{name} is empty: there are no posts to read")
    idx = _columns(first[1], spec, name)
    records = (_record(number, record, *idx) for number, (_, record) in enumerate(reader, start=1))
    yield from _batched(records, spec.batch_size)


def _jsonl_batches(stream, spec: InputSpec, name: str) -> Iterator[pd.DataFrame]:
    def records():
        for number, record in jsonl_records(stream, name):
            if spec.text_column not in record:
                raise InputError(f"{name} line {number} has no field {spec.text_column!r}; fields found: "
                                 f"{', '.join(record)}. Name the text field with --text-column")
            if spec.id_column and spec.id_column not in record:
                raise InputError(f"{name} line {number} has no id field {spec.id_column!r}")
            thread = (record.get(spec.thread_column),) if spec.thread_column else ()
            yield number, str(record[spec.id_column]) if spec.id_column else str(number), record[spec.text_column], *thread

    yield from _batched(records(), spec.batch_size)


def _txt_batches(stream, spec: InputSpec, name: str) -> Iterator[pd.DataFrame]:
    numbered = ((n, line.rstrip("\r\n")) for n, line in enumerate(lines(stream, name), start=1))
    yield from _batched(((n, str(n), line) for n, line in numbered if line.strip()), spec.batch_size)


def _xlsx_batches(spec: InputSpec, name: str) -> Iterator[pd.DataFrame]:
    """The first sheet of a workbook; row 1 is the first row under the header."""
    table = read_xlsx(spec.path, name)
    idx = _columns(table.columns, spec, name)
    yield from _batched((_record(n, row, *idx) for n, row in enumerate(table.to_numpy(), start=1)), spec.batch_size)


def is_valid_text(value) -> bool:
    return isinstance(value, str) and bool(HAS_LETTER.search(value))


def _numbers_only(values) -> bool:
    present = [v for v in values if not (isinstance(v, str) and not v.strip())]
    return bool(present) and all(isinstance(v, int | float) or isinstance(v, str) and NUMBER.match(v)
                                 for v in present)


def truncate(texts: pd.Series, max_chars: int) -> tuple[pd.Series, int]:
    """Texts cut at ``max_chars`` characters, and how many were cut."""
    long = texts.str.len() > max_chars
    if not long.any():
        return texts, 0
    return texts.where(~long, texts.str.slice(0, max_chars)), int(long.sum())


def _validate_batch(batch: pd.DataFrame, spec: InputSpec, name: str) -> pd.DataFrame:
    valid = batch["text"].map(is_valid_text).astype(bool)
    if not valid.all():
        bad = batch.loc[~valid, "row"].tolist()
        if not valid.any() and _numbers_only(batch["text"]):
            raise InputError(f"{name}: column {spec.text_column!r} holds only numbers (row(s) {_rows(bad)}), not "
                             f"the text of posts; name the text column with --text-column")
        if not spec.skip_invalid:
            raise InputError(f"{name}: row(s) {_rows(bad)} have an empty or non-text {spec.text_column!r} "
                             f"(use --skip-invalid to skip them)")
        batch = batch.loc[valid].reset_index(drop=True)
        batch.attrs["skipped"] = len(bad)
    batch["text"], cut = truncate(batch["text"].astype(str), spec.max_chars)
    batch.attrs["truncated"] = cut
    return batch


def valid_rows(table: pd.DataFrame, spec: InputSpec, name: str | None = None) -> pd.DataFrame:
    """The rows of a whole table whose text is valid (same rules and messages as :func:`iter_input`);
    texts over ``spec.max_chars`` are cut (counted in the ``truncated`` attribute)."""
    name = name or spec.path
    if spec.text_column not in table.columns:
        raise no_text_column(name, spec.text_column, table.columns)
    batch = pd.DataFrame({"row": range(1, len(table) + 1), "id": table.index.astype(str),
                          "text": table[spec.text_column].astype(object)})
    kept = _validate_batch(batch, spec, name)
    out = table.iloc[kept["row"].to_numpy() - 1].reset_index(drop=True)
    out[spec.text_column] = kept["text"].to_numpy()
    out.attrs["skipped"] = kept.attrs.get("skipped", 0)
    out.attrs["truncated"] = kept.attrs.get("truncated", 0)
    return out


def read_all(spec: InputSpec) -> pd.DataFrame:
    """All posts of an input at once (for commands that need the whole file, such as triage)."""
    batches = list(iter_input(spec))
    df = pd.concat(batches, ignore_index=True) if batches else pd.DataFrame(columns=["row", "id", "text"])
    df.attrs["skipped"] = sum(b.attrs.get("skipped", 0) for b in batches)
    df.attrs["truncated"] = sum(b.attrs.get("truncated", 0) for b in batches)
    return df


# ------------------------------------------------------------------ Parquet (see rupture_nlp.parquet_io)
def _is_parquet(path: str, input_format: str = "auto") -> bool:
    from rupture_nlp.parquet_io import is_parquet

    return is_parquet(path, input_format)


def _read_parquet_corpus(path) -> pd.DataFrame:
    from rupture_nlp.parquet_io import read_table

    return read_table(path, required=CORPUS_COLUMNS, as_strings=True)


def _parquet_batches(spec: InputSpec) -> Iterator[pd.DataFrame]:
    """Batches of a Parquet file or dataset folder in the shape of :func:`iter_input`; the id column
    keeps its Parquet type (row numbers, as elsewhere, are text)."""
    from rupture_nlp.parquet_io import iter_tables, schema_names

    names = schema_names(spec.path)
    if spec.text_column not in names:
        raise no_text_column(spec.path, spec.text_column, names)
    if spec.id_column and spec.id_column not in names:
        raise InputError(f"{spec.path} has no id column {spec.id_column!r}; columns found: {', '.join(names)}")
    columns = [spec.text_column] + ([spec.id_column] if spec.id_column and spec.id_column != spec.text_column else [])
    thread = spec.thread_column if spec.thread_column in names else None
    fetch = columns + ([thread] if thread and thread not in columns else [])
    start = 1
    for table in iter_tables(spec.path, columns=fetch, batch_size=spec.batch_size, required=columns):
        rows = range(start, start + len(table))
        start += len(table)
        ids = table[spec.id_column].to_numpy() if spec.id_column else [str(r) for r in rows]
        batch = pd.DataFrame({"row": list(rows), "id": ids, "text": table[spec.text_column].astype(object).to_numpy()})
        if thread:
            batch["thread"] = [_cell(t) for t in table[thread]] if thread in table else ""
        batch = _validate_batch(batch, spec, spec.path)
        if len(batch) or batch.attrs.get("skipped"):
            yield batch
    if start == 1:
        raise InputError(f"{spec.path} has no posts (no rows)")
