"""Parquet in and out (pyarrow): a single file or a folder of files (a dataset), read in row batches.

A dataset folder is read file by file in path order (hidden files and names starting with ``_``,
such as ``_SUCCESS`` or ``_metadata``, are skipped), so the row numbers are the same on every run.
Written output is a single file when the path ends in ``.parquet`` and otherwise a folder with one
part file per batch (``part-00000.parquet``, ...), moved into place only when complete.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path

import pandas as pd

from rupture_nlp.data import InputError

SUFFIXES = (".parquet", ".pq")


def is_parquet(path: str, input_format: str = "auto") -> bool:
    """Whether ``path`` is to be read as Parquet: by --input-format, its extension, or a folder of them."""
    if input_format == "parquet":
        return True
    if input_format != "auto" or path == "-":
        return False
    p = Path(path)
    return p.suffix.lower() in SUFFIXES or (p.is_dir() and bool(parquet_files(p)))


def parquet_files(path: str | Path) -> list[Path]:
    """The files of a Parquet input: the file itself, or a folder's files in path order."""
    p = Path(path)
    if p.is_file():
        return [p]
    if not p.is_dir():
        raise InputError(f"input not found: {path}")
    files = [f for f in sorted(p.rglob("*")) if f.is_file() and f.suffix.lower() in SUFFIXES
             and not any(part.startswith((".", "_")) for part in f.relative_to(p).parts)]
    return files


def _open(path: Path):
    import pyarrow as pa
    import pyarrow.parquet as pq

    try:
        return pq.ParquetFile(path)
    except (pa.ArrowException, OSError) as exc:
        raise InputError(f"{path} is not a readable Parquet file ({exc}); write it with pandas.to_parquet "
                         f"or pyarrow") from None


def schema_names(path: str | Path) -> list[str]:
    files = parquet_files(path)
    if not files:
        raise InputError(f"{path} holds no .parquet files")
    return list(_open(files[0]).schema_arrow.names)


def iter_tables(path: str | Path, columns: list[str] | None = None, batch_size: int = 2000,
                required: list[str] | None = None) -> Iterator[pd.DataFrame]:
    """DataFrames of at most ``batch_size`` rows, in file and row order; ``required`` columns are
    checked in every file (a missing one is an InputError naming the columns found); other ``columns``
    a file lacks are left out of its tables."""
    files = parquet_files(path)
    if not files:
        raise InputError(f"{path} holds no .parquet files")
    for f in files:
        pf = _open(f)
        names = pf.schema_arrow.names
        missing = [c for c in (required or []) if c not in names]
        if missing:
            raise InputError(f"{f} lacks column(s) {', '.join(missing)}; columns found: {', '.join(names)}")
        present = None if columns is None else [c for c in columns if c in names]  # optional columns may be absent
        for batch in pf.iter_batches(batch_size=batch_size, columns=present):
            if batch.num_rows:
                yield batch.to_pandas()


def read_table(path: str | Path, required: list[str] | None = None, as_strings: bool = False) -> pd.DataFrame:
    """A whole Parquet input as one DataFrame (for commands that need every post at once, like triage).

    ``as_strings``: every column as text, nulls as "" (what the CSV reader gives), for the labelled corpus.
    """
    parts = list(iter_tables(path, batch_size=65536, required=required))
    if not parts:
        raise InputError(f"{path} has no rows")
    df = pd.concat(parts, ignore_index=True)
    if as_strings:
        df = pd.DataFrame({c: df[c].map(lambda v: "" if v is None or (isinstance(v, float) and v != v) else str(v))
                           for c in df.columns})
    return df


def _to_arrow(df: pd.DataFrame, schema=None):
    import pyarrow as pa

    out = df.copy()
    for col in [c for c in out.columns if str(c).endswith("_reasons")]:
        out[col] = out[col].map(lambda pairs: [{"phrase": str(p), "weight": float(w)} for p, w in pairs]
                                if isinstance(pairs, list) else pairs)
    table = pa.Table.from_pandas(out, preserve_index=False)
    if schema is not None and not table.schema.equals(schema):
        table = table.cast(schema)
    return table


class _Sink:
    """Writes DataFrames with one schema (the first's): to one file, or one part file each to a folder."""

    def __init__(self, fh=None, folder: Path | None = None):
        self.fh, self.folder, self.schema, self.writer, self.parts = fh, folder, None, None, 0

    def write(self, df: pd.DataFrame, first: bool = False) -> None:
        import pyarrow.parquet as pq

        table = _to_arrow(df, self.schema)
        self.schema = table.schema
        if self.folder is not None:
            pq.write_table(table, self.folder / f"part-{self.parts:05d}.parquet")
        else:
            self.writer = self.writer or pq.ParquetWriter(self.fh, table.schema)
            self.writer.write_table(table)
        self.parts += 1

    def close(self) -> None:
        import pyarrow as pa
        import pyarrow.parquet as pq

        if self.writer is not None:
            self.writer.close()
        elif self.folder is None:
            pq.write_table(pa.table({}), self.fh)


def wants_folder(path: str | Path) -> bool:
    return Path(path).suffix.lower() not in SUFFIXES


@contextlib.contextmanager
def parquet_output(path: str | Path, force: bool = False):
    """Yield ``write(df, first)``; the file (``*.parquet``) or folder appears only when the block succeeds."""
    from rupture_nlp.persist import atomic_folder, atomic_output

    if wants_folder(path):
        with atomic_folder(path, force=force, what="output folder") as tmp:
            sink = _Sink(folder=tmp)
            yield sink.write
        return
    with atomic_output(path, force=force, mode="wb") as fh:
        sink = _Sink(fh=fh)
        yield sink.write
        sink.close()
