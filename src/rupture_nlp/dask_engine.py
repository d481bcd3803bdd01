"""predict and triage on a Dask cluster (``--engine dask``): the same rows as the local engine.

- Input: a Parquet file or dataset folder, a glob of CSV or JSON Lines files, or one file; Dask cuts
  it into partitions (a Parquet file's row groups, blocks of CSV/JSONL).
- The model goes to each worker once, as a worker plugin carrying the model folder's bytes; the
  worker writes them to its local directory and loads them with :func:`rupture_nlp.persist.load_model`,
  which checks the artifact's sha256 against the manifest and the library versions. A worker that
  joins later (or is restarted after a crash) gets the plugin too. Tasks carry only the sha256.
- predict: one task per partition, at most two per worker thread in flight, gathered in input order,
  so memory stays flat and the output (one part per partition for a Parquet dataset) is the local
  engine's, row for row.
- triage: posts are shuffled on ``thread_id`` so every thread lands whole in one partition, rolled up
  there with :func:`rupture_nlp.api.triage_threads`, and the queue is sorted here.
- A worker that dies costs its tasks only: the scheduler runs them again elsewhere.

Workers need rupture-nlp installed with the same library versions, and must be able to read the
input path (a shared file system or object store); the output is written by this process.
"""

from __future__ import annotations

import contextlib
import logging
import os
import tempfile
from collections import deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from rupture_nlp.data import InputError, InputSpec, _validate_batch, no_text_column

INSTALL_HINT = 'the Dask engine needs the dask extra: pip install "rupture-nlp[dask]"'
CONNECT_TIMEOUT = 3  # seconds to wait for a scheduler
BLOCKSIZE = "16MB"  # CSV and JSON Lines partition size
PARTITION_ROWS = 20_000  # Parquet row groups are gathered into partitions of at least this many rows


class DaskEngineError(InputError):
    """The cluster cannot be used (missing extra, unreachable scheduler); the message says what to do."""


def require_dask() -> None:
    try:
        import dask.dataframe  # noqa: F401
        import distributed  # noqa: F401
    except ImportError:
        raise DaskEngineError(INSTALL_HINT) from None


# ------------------------------------------------------------------ the model on the workers
_MODELS: dict[str, object] = {}


def _plugin_class():
    from distributed.diagnostics.plugin import WorkerPlugin

    class ModelPlugin(WorkerPlugin):
        """Carries a model folder's files to each worker once and loads them there (hash checked)."""

        def __init__(self, files: dict[str, bytes], sha256: str):
            self.files, self.sha256 = files, sha256
            self.name = f"rupture-nlp-model-{sha256[:16]}"

        def setup(self, worker):
            from rupture_nlp.persist import load_model

            folder = Path(tempfile.mkdtemp(prefix="rupture-model-", dir=worker.local_directory))
            for name, data in self.files.items():
                (folder / name).write_bytes(data)
            import rupture_nlp.dask_engine as engine  # this class travels by value: reach the module's cache

            engine._MODELS[self.sha256] = load_model(folder)  # raises if the bytes do not match the sha256

    return ModelPlugin


def send_model(client, model_dir: str | Path) -> tuple[str, object]:
    """Register the model folder on every worker (present and future); returns the artifact's sha256
    and the model (loaded here too, for a clear error before any work)."""
    from rupture_nlp.persist import ARTIFACT, MANIFEST, load_model

    folder = Path(model_dir)
    model = load_model(folder)
    sha = model.manifest_["artifact_sha256"]
    artifact = model.manifest_.get("artifact", ARTIFACT)
    files = {MANIFEST: (folder / MANIFEST).read_bytes(), artifact: (folder / artifact).read_bytes()}
    client.register_plugin(_plugin_class()(files, sha))
    return sha, model


def worker_model(sha256: str):
    try:
        return _MODELS[sha256]
    except KeyError:
        raise DaskEngineError(f"model {sha256[:12]} is not loaded on this worker (its plugin failed: see the "
                              f"worker's log)") from None


_SCORERS: dict = {}


def worker_scorer(sha256: str):
    """The evidence scorer of the worker's model, built once per worker (as the local engine's workers do)."""
    from rupture_nlp.evidence import EvidenceScorer

    if sha256 not in _SCORERS:
        _SCORERS[sha256] = EvidenceScorer(worker_model(sha256))
    return _SCORERS[sha256]


# ------------------------------------------------------------------ connecting
@contextlib.contextmanager
def connect(scheduler: str | None = None, n_workers: int | None = None) -> Iterator:
    """A client of the scheduler at ``scheduler``, or of a local cluster on 127.0.0.1 (one single-threaded
    worker process a core), closed at the end."""
    require_dask()
    from distributed import Client, LocalCluster

    if scheduler:
        try:
            client = Client(scheduler, timeout=CONNECT_TIMEOUT)
        except (OSError, TimeoutError, ValueError) as exc:
            why = "not an address: " + str(exc).strip().splitlines()[0] if isinstance(exc, ValueError) \
                else f"no answer within {CONNECT_TIMEOUT} s"
            raise DaskEngineError(f"cannot reach the Dask scheduler at {scheduler} ({why}); check the address "
                                  f"and that `dask scheduler` runs there, or leave out --scheduler for a "
                                  f"local cluster") from None
        with client:
            yield client
        return
    with LocalCluster(n_workers=n_workers or os.cpu_count() or 1, threads_per_worker=1, processes=True,
                      host="127.0.0.1", dashboard_address="127.0.0.1:0", silence_logs=logging.CRITICAL) as cluster, \
            Client(cluster) as client:
        yield client


def describe(client) -> str:
    """One line for standard error: the workers, and the dashboard of a remote scheduler if it has one
    (a local cluster runs without one)."""
    info = client.scheduler_info()
    workers = info.get("workers", {})
    threads = sum(w.get("nthreads", 1) for w in workers.values())
    local = client.cluster is not None
    link = None if local or "dashboard" not in info.get("services", {}) else client.dashboard_link
    if link and not _answers(link):
        link = None
    return (f"dask: {len(workers)} worker(s), {threads} thread(s) at {client.scheduler.address}"
            + (f"; dashboard {link}" if link else " (local cluster)" if local else ""))


def _answers(url: str) -> bool:
    import socket
    from urllib.parse import urlparse

    u = urlparse(url)
    try:
        with socket.create_connection((u.hostname, u.port or 80), timeout=0.5):
            return True
    except OSError:
        return False


@dataclass
class Partitions:
    """The input cut into partitions: ``parts`` (Dask delayed DataFrames), ``meta`` (an empty frame with
    the input's columns and types) and whether it is Parquet (ids keep their type)."""

    parts: list
    meta: pd.DataFrame
    parquet: bool


def _read_row_groups(path: str, groups: list[int], columns: list[str] | None) -> pd.DataFrame:
    import pyarrow.parquet as pq

    return pq.ParquetFile(path).read_row_groups(groups, columns=columns).to_pandas()


def _select(part: pd.DataFrame, columns: list[str] | None) -> pd.DataFrame:
    return part if columns is None else part[[c for c in columns if c in part.columns]]


def read_partitions(spec: InputSpec, columns: list[str] | None = None) -> Partitions:
    """The input's partitions, read on the workers: a Parquet file's row groups gathered up to
    PARTITION_ROWS rows (never across files), or blocks of BLOCKSIZE of CSV / JSON Lines files (a glob).
    Lazy: only metadata (or a CSV's first block) is read here, to check the columns before any work."""
    require_dask()
    from dask import delayed

    from rupture_nlp.parquet_io import _open, is_parquet, parquet_files

    path = spec.path
    if path == "-":
        raise InputError("--engine dask cannot read standard input; give a file, a folder or a glob")
    if is_parquet(path, spec.input_format):
        files = parquet_files(path)
        if not files:
            raise InputError(f"{path} holds no .parquet files")
        parts, meta = [], None
        for f in files:
            pf = _open(f)
            meta = pf.schema_arrow.empty_table().to_pandas() if meta is None else meta
            group: list[int] = []
            rows = 0
            for g in range(pf.metadata.num_row_groups):
                group.append(g)
                rows += pf.metadata.row_group(g).num_rows
                if rows >= PARTITION_ROWS:
                    parts.append(delayed(_read_row_groups)(str(f), group, columns))
                    group, rows = [], 0
            if group:
                parts.append(delayed(_read_row_groups)(str(f), group, columns))
        found = list(meta.columns)
        parquet = True
    else:
        import glob

        import dask.dataframe as dd

        matches = sorted(glob.glob(path))
        if not matches:
            raise InputError(f"input not found: {path} (no file matches)")
        fmt = spec.input_format if spec.input_format != "auto" else Path(matches[0]).suffix.lower().lstrip(".")
        if fmt == "csv":
            ddf = dd.read_csv(matches, dtype=str, keep_default_na=False, blocksize=BLOCKSIZE)
        elif fmt in ("jsonl", "ndjson"):
            ddf = dd.read_json(matches, lines=True, blocksize=BLOCKSIZE, dtype=False)
        else:
            raise InputError(f"--engine dask reads Parquet, CSV or JSON Lines, not {fmt!r}; "
                             f"use --input-format or the local engine")
        # No column selection at the Dask level: Dask would fuse the partitions of a projection.
        meta, found, parquet = ddf._meta, list(ddf.columns), False
        parts = [delayed(_select)(p, columns) for p in ddf.to_delayed()]
    if spec.text_column not in found:
        raise no_text_column(path, spec.text_column, found)
    if spec.id_column and spec.id_column not in found:
        raise InputError(f"{path} has no id column {spec.id_column!r}; columns found: {', '.join(map(str, found))}")
    return Partitions(parts, _select(meta, columns), parquet)


def _as_batch(part: pd.DataFrame, spec: InputSpec, parquet: bool) -> pd.DataFrame:
    """A partition in the shape of :func:`rupture_nlp.data.iter_input` (row numbers local, from 1)."""
    rows = list(range(1, len(part) + 1))
    if spec.id_column:
        ids = part[spec.id_column].to_numpy()
        ids = ids if parquet else [str(v) for v in ids]
    else:
        ids = [str(r) for r in rows]
    return pd.DataFrame({"row": rows, "id": ids, "text": part[spec.text_column].astype(object).to_numpy()})


# ------------------------------------------------------------------ predict
def _predict_part(part: pd.DataFrame, sha256: str, spec: InputSpec, explain: int, parquet: bool, number: int):
    from rupture_nlp.predict import predict_frame

    batch = _validate_batch(_as_batch(part, spec, parquet), spec, f"{spec.path} (partition {number})")
    if not len(batch):
        return batch, len(part)
    model = worker_model(sha256)
    result = predict_frame(model, batch["text"], explain, scorer=worker_scorer(sha256) if explain else None)
    return pd.concat([batch[["row", "id"]].reset_index(drop=True), result], axis=1), len(part)


@dataclass
class DaskRequest:
    model_dir: str
    spec: InputSpec
    output: str | None = None
    output_format: str = "jsonl"
    explain: int = 0
    threshold: float | None = None
    force: bool = False
    on_part: Callable[[int, int, int], None] | None = None  # (parts done, parts in all, posts so far)
    stats: dict = field(default_factory=dict)


def predict_dask(client, req: DaskRequest) -> dict:
    """Label every post of ``req.spec`` on the cluster; one output row per input row, in input order."""
    from dask import delayed

    from rupture_nlp.predict import OUTPUT_FORMATS, output_sink

    if req.output_format not in OUTPUT_FORMATS:
        raise InputError(f"unknown output format {req.output_format!r}; choose {', '.join(OUTPUT_FORMATS)}")
    spec = req.spec
    columns = [spec.text_column] + ([spec.id_column] if spec.id_column and spec.id_column != spec.text_column else [])
    source = read_partitions(spec, columns)
    parts, parquet = source.parts, source.parquet
    sha, _ = send_model(client, req.model_dir)
    tasks = (delayed(_predict_part)(p, sha, spec, req.explain, parquet, i) for i, p in enumerate(parts))
    window = 2 * max(1, sum(client.nthreads().values()))
    stats = {"posts": 0, "skipped": 0, "partitions": len(parts)}
    offset, done = 0, 0
    with output_sink(req.output, req.output_format, req.force) as write:
        pending: deque = deque()

        def drain_one():
            nonlocal offset, done
            result, raw = pending.popleft().result()
            result["row"] = result["row"] + offset
            if not spec.id_column:  # the id is the row number, as the local engine gives it
                result["id"] = [str(r) for r in result["row"]]
            offset += raw
            stats["skipped"] += raw - len(result)
            if len(result):
                write(result, stats["posts"] == 0)
            stats["posts"] += len(result)
            done += 1
            if req.on_part:
                req.on_part(done, len(parts), stats["posts"])

        for task in tasks:
            pending.append(client.compute(task))
            if len(pending) >= window:
                drain_one()
        while pending:
            drain_one()
    return stats


# ------------------------------------------------------------------ triage
ROW = "_row"


def _prepare_part(part: pd.DataFrame, spec: InputSpec, number: int) -> pd.DataFrame:
    """Valid posts of a partition with a sortable global key (partition, row) in ``_row``."""
    batch = _validate_batch(_as_batch(part, spec, True), spec, f"{spec.path} (partition {number})")
    kept = part.iloc[batch["row"].to_numpy() - 1].reset_index(drop=True)
    return kept.assign(**{ROW: (number << 32) + batch["row"].to_numpy() - 1})


def _triage_part(posts: pd.DataFrame, sha256: str, text_column: str, explain: int) -> pd.DataFrame:
    from rupture_nlp.api import triage_threads

    if not len(posts):
        return pd.DataFrame()
    posts = posts.sort_values(ROW, kind="stable").reset_index(drop=True)
    keys = posts[ROW].to_numpy()
    return triage_threads(worker_model(sha256), posts.drop(columns=[ROW]), text_column, explain, row_ids=keys)


def triage_dask(client, req: DaskRequest) -> pd.DataFrame:
    """The moderators' queue of ``req.spec``'s threads, as :func:`rupture_nlp.api.triage` gives it."""
    import dask.dataframe as dd
    from dask import delayed
    from distributed import as_completed

    from rupture_nlp.api import finish_queue
    from rupture_nlp.triage import check_structure

    spec = req.spec
    wanted = ["post_id", "thread_id", "author", "position", "created_at", spec.text_column]
    source = read_partitions(spec, wanted)
    check_structure(source.meta)
    parts = source.parts
    sha, model = send_model(client, req.model_dir)
    meta = source.meta.assign(**{ROW: pd.Series(dtype="int64")})
    prepared = dd.from_delayed([delayed(_prepare_part)(p, spec, i) for i, p in enumerate(parts)], meta=meta,
                               verify_meta=False)
    shuffled = prepared.shuffle(on="thread_id", shuffle_method="tasks")
    groups = [delayed(_triage_part)(p, sha, spec.text_column, req.explain)
              for p in shuffled.to_delayed(optimize_graph=False)]
    lengths = [delayed(len)(p) for p in parts]
    futures = client.compute(groups + lengths)
    for done, _ in enumerate(as_completed(futures[:len(groups)]), start=1):
        if req.on_part:
            req.on_part(done, len(groups), 0)
    lens = client.gather(futures[len(groups):])
    results = [f.result() for f in futures[:len(groups)]]
    threads = pd.concat([r for r in results if len(r)], ignore_index=True) if any(len(r) for r in results) \
        else None
    if threads is None:
        raise InputError(f"{spec.path} has no valid posts to triage")
    if "post_id" not in source.meta.columns:  # a (partition, row) key to the row's number in the input, from 0
        starts = [0]
        for n in lens[:-1]:
            starts.append(starts[-1] + n)
        threads["opening_post_id"] = [starts[k >> 32] + (k & 0xFFFFFFFF) for k in threads["opening_post_id"]]
    threads = threads.sort_values("thread_id", kind="stable").reset_index(drop=True)
    req.stats.update(posts=int(threads["n_posts"].sum()), skipped=int(sum(lens) - threads["n_posts"].sum()),
                     partitions=len(parts))
    return finish_queue(model, threads, req.threshold)
