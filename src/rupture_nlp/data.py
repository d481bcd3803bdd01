"""Reading posts: the labelled corpus, and user files to label (CSV, JSON Lines, plain text)."""

from __future__ import annotations

import csv
import hashlib
import io
import json
import re
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from rupture_nlp.labels import FACETS, inconsistent_rows, invalid_label_rows

CORPUS_COLUMNS = ["post_id", "thread_id", "author", "position", "reply_to", "created_at", "text",
                  *FACETS, "split"]
FORMATS = ("auto", "csv", "jsonl", "txt", "parquet")
HAS_LETTER = re.compile(r"[^\W\d_]")


class InputError(ValueError):
    """Input the user can fix; the message says what is wrong and how to fix it."""


def _rows(numbers: list[int], limit: int = 10) -> str:
    shown = ", ".join(str(n) for n in numbers[:limit])
    return shown + (f" and {len(numbers) - limit} more" if len(numbers) > limit else "")


def sha256_file(path: str | Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _check_file(path: Path) -> None:
    if not path.exists():
        raise InputError(f"input file not found: {path}")
    if path.is_dir():
        raise InputError(f"{path} is a folder, not a file")
    if path.stat().st_size == 0:
        raise InputError(f"{path} is empty: there are no posts to read")


def _decode_error(path, exc: UnicodeDecodeError) -> InputError:
    return InputError(f"{path} is not UTF-8 text (byte 0x{exc.object[exc.start]:02x} at offset {exc.start}); "
                      f"re-save it as UTF-8")


def read_csv_strict(path: str | Path, required: list[str] | None = None) -> pd.DataFrame:
    """Read a whole CSV of strings with clear errors for the usual mistakes."""
    path = Path(path)
    _check_file(path)
    try:
        df = pd.read_csv(path, dtype=str, keep_default_na=False, encoding="utf-8")
    except UnicodeDecodeError as exc:
        raise _decode_error(path, exc) from None
    except (pd.errors.ParserError, pd.errors.EmptyDataError) as exc:
        raise InputError(f"{path} is not a readable CSV file: {str(exc).strip().splitlines()[-1]}") from None
    missing = [c for c in (required or []) if c not in df.columns]
    if missing:
        raise InputError(f"{path} lacks column(s) {', '.join(missing)}; columns found: {', '.join(df.columns)}")
    return df


def read_corpus(path: str | Path) -> pd.DataFrame:
    """The labelled corpus (data/posts.csv or a file of the same shape, or Parquet), validated."""
    df = _read_parquet_corpus(path) if _is_parquet(str(path)) else read_csv_strict(path, CORPUS_COLUMNS)
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


def _open_text(path: str):
    if path == "-":
        return io.TextIOWrapper(sys.stdin.buffer, encoding="utf-8", errors="strict", newline="")
    p = Path(path)
    _check_file(p)
    return open(p, encoding="utf-8", errors="strict", newline="")


def _sniff_format(path: str, first_line: str) -> str:
    suffix = Path(path).suffix.lower() if path != "-" else ""
    if suffix in (".jsonl", ".ndjson", ".json"):
        return "jsonl"
    if suffix in (".csv", ".tsv"):
        return "csv"
    if suffix in (".txt", ".text"):
        return "txt"
    stripped = first_line.lstrip()
    if stripped.startswith("{"):
        return "jsonl"
    return "csv" if "," in first_line else "txt"


def iter_input(spec: InputSpec) -> Iterator[pd.DataFrame]:
    """Yield batches with columns ``row`` (1-based row or line number), ``id`` and ``text``.

    Invalid rows (empty, or holding no letter, or not a string in JSON) raise InputError naming them,
    or, with ``skip_invalid``, are dropped and counted in the ``skipped`` attribute of each batch.
    """
    if spec.input_format not in FORMATS:
        raise InputError(f"unknown input format {spec.input_format!r}; choose one of {', '.join(FORMATS)}")
    if _is_parquet(spec.path, spec.input_format):
        yield from _parquet_batches(spec)
        return
    fh = _open_text(spec.path)
    name = "standard input" if spec.path == "-" else spec.path
    try:
        first = fh.readline()
        if not first.strip():
            rest = fh.read(1)
            if not rest:
                raise InputError(f"{name} is empty: there are no posts to read")
            first += rest
        fmt = spec.input_format if spec.input_format != "auto" else _sniff_format(spec.path, first)
        stream = _chain(first, fh)
        reader = {"csv": _csv_batches, "jsonl": _jsonl_batches, "txt": _txt_batches}[fmt]
        seen_any = False
        for batch in reader(stream, spec, name):
            seen_any = True
            batch = _validate_batch(batch, spec, name)
            if len(batch) or batch.attrs.get("skipped"):
                yield batch
        if not seen_any:
            raise InputError(f"{name} has no posts (a header alone, or only blank lines)")
    except UnicodeDecodeError as exc:
        raise _decode_error(name, exc) from None
    finally:
        if spec.path != "-":
            fh.close()


class _chain(io.TextIOBase):
    """A text stream that first replays a line already read."""

    def __init__(self, first: str, rest):
        self._first, self._rest = first, rest

    def readable(self):
        return True

    def read(self, size=-1):
        if self._first:
            head, self._first = self._first, ""
            return head + (self._rest.read() if size is None or size < 0 else "")
        return self._rest.read(size)

    def readline(self, size=-1):
        if self._first:
            head, self._first = self._first, ""
            return head
        return self._rest.readline(size)

    def __iter__(self):
        while True:
            line = self.readline()
            if not line:
                return
            yield line


def no_text_column(name: str, column: str, found) -> InputError:
    return InputError(f"{name} has no column {column!r}; columns found: {', '.join(map(str, found))}. "
                      f"Name the text column with --text-column")


def _batched(records: Iterator[tuple[int, str, object]], size: int) -> Iterator[pd.DataFrame]:
    """Group (row, id, text) records into DataFrames of ``size`` rows."""
    chunk: list[tuple[int, str, object]] = []
    for record in records:
        chunk.append(record)
        if len(chunk) >= size:
            yield _frame(chunk)
            chunk = []
    if chunk:
        yield _frame(chunk)


def _frame(chunk) -> pd.DataFrame:
    rows, ids, texts = zip(*chunk)
    return pd.DataFrame({"row": list(rows), "id": list(ids), "text": pd.Series(list(texts), dtype=object)})


def _csv_batches(stream, spec: InputSpec, name: str) -> Iterator[pd.DataFrame]:
    reader = csv.reader(stream)
    header = next(reader, None)
    if not header:
        raise InputError(f"{name} is empty: there are no posts to read")
    if spec.text_column not in header:
        raise no_text_column(name, spec.text_column, header)
    if spec.id_column and spec.id_column not in header:
        raise InputError(f"{name} has no id column {spec.id_column!r}; columns found: {', '.join(header)}")
    t_idx = header.index(spec.text_column)
    i_idx = header.index(spec.id_column) if spec.id_column else None

    def records():
        for number, record in enumerate(reader, start=1):
            if not record:
                continue
            text = record[t_idx] if t_idx < len(record) else ""
            yield number, (record[i_idx] if i_idx is not None and i_idx < len(record) else str(number)), text

    yield from _batched(records(), spec.batch_size)


def _jsonl_batches(stream, spec: InputSpec, name: str) -> Iterator[pd.DataFrame]:
    def records():
        for number, line in enumerate(stream, start=1):
            if not line.strip():
                continue
            try:
                record = json.loads(line)
            except json.JSONDecodeError:
                raise InputError(f"{name} line {number} is not valid JSON (JSON Lines takes one object a line)") from None
            if not isinstance(record, dict):
                raise InputError(f"{name} line {number} is not a JSON object")
            if spec.text_column not in record:
                raise InputError(f"{name} line {number} has no field {spec.text_column!r}; fields found: "
                                 f"{', '.join(record)}. Name the text field with --text-column")
            if spec.id_column and spec.id_column not in record:
                raise InputError(f"{name} line {number} has no id field {spec.id_column!r}")
            yield number, str(record[spec.id_column]) if spec.id_column else str(number), record[spec.text_column]

    yield from _batched(records(), spec.batch_size)


def _txt_batches(stream, spec: InputSpec, name: str) -> Iterator[pd.DataFrame]:
    lines = ((n, line.rstrip("\r\n")) for n, line in enumerate(stream, start=1))
    yield from _batched(((n, str(n), line) for n, line in lines if line.strip()), spec.batch_size)


def is_valid_text(value) -> bool:
    return isinstance(value, str) and bool(HAS_LETTER.search(value))


def _validate_batch(batch: pd.DataFrame, spec: InputSpec, name: str) -> pd.DataFrame:
    valid = batch["text"].map(is_valid_text).astype(bool)
    if valid.all():
        batch["text"] = batch["text"].astype(str)
        return batch
    bad = batch.loc[~valid, "row"].tolist()
    if not spec.skip_invalid:
        raise InputError(f"{name}: row(s) {_rows(bad)} have an empty or non-text {spec.text_column!r} "
                         f"(use --skip-invalid to skip them)")
    kept = batch.loc[valid].reset_index(drop=True)
    kept["text"] = kept["text"].astype(str)
    kept.attrs["skipped"] = len(bad)
    return kept


def valid_rows(table: pd.DataFrame, spec: InputSpec, name: str | None = None) -> pd.DataFrame:
    """The rows of a whole table whose text is valid (same rules and messages as :func:`iter_input`)."""
    name = name or spec.path
    if spec.text_column not in table.columns:
        raise no_text_column(name, spec.text_column, table.columns)
    batch = pd.DataFrame({"row": range(1, len(table) + 1), "id": table.index.astype(str),
                          "text": table[spec.text_column].astype(object)})
    kept = _validate_batch(batch, spec, name)
    out = table.iloc[kept["row"].to_numpy() - 1].reset_index(drop=True)
    out.attrs["skipped"] = kept.attrs.get("skipped", 0)
    return out


def read_all(spec: InputSpec) -> pd.DataFrame:
    """All posts of an input at once (for commands that need the whole file, such as triage)."""
    batches = list(iter_input(spec))
    df = pd.concat(batches, ignore_index=True) if batches else pd.DataFrame(columns=["row", "id", "text"])
    df.attrs["skipped"] = sum(b.attrs.get("skipped", 0) for b in batches)
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
    start = 1
    for table in iter_tables(spec.path, columns=columns, batch_size=spec.batch_size, required=columns):
        rows = range(start, start + len(table))
        start += len(table)
        ids = table[spec.id_column].to_numpy() if spec.id_column else [str(r) for r in rows]
        batch = pd.DataFrame({"row": list(rows), "id": ids, "text": table[spec.text_column].astype(object).to_numpy()})
        batch = _validate_batch(batch, spec, spec.path)
        if len(batch) or batch.attrs.get("skipped"):
            yield batch
    if start == 1:
        raise InputError(f"{spec.path} has no posts (no rows)")
