"""Prediction: labels, probabilities and reasons for posts, streamed in batches over large files."""

from __future__ import annotations

import contextlib
import csv
import itertools
import json
import os
import sys
from collections import deque
from collections.abc import Iterator
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass

import pandas as pd

from rupture_nlp.data import InputError, InputSpec, iter_input
from rupture_nlp.evidence import EvidenceScorer
from rupture_nlp.explain import Explainer
from rupture_nlp.labels import FACETS
from rupture_nlp.persist import atomic_output, load_model

OUTPUT_FORMATS = ("jsonl", "csv", "parquet")


def predict_frame(model, texts, explain: int = 0, explainer: Explainer | None = None, explain_ngrams: int = 0,
                  scorer: EvidenceScorer | None = None) -> pd.DataFrame:
    """Labels, the confidence of each label, every label's probability and (optionally) evidence.

    Columns: ``<facet>``, ``<facet>_confidence``, ``p_<facet>_<label>``, ``ood_score`` (how far the
    post is from the training corpus: the percentile of its distance among the corpus's held-out
    posts; confidence is already flattened for it); with ``explain``, ``<facet>_evidence`` (the
    sentences that carried the label, each a dict with facet, label, start, end, text, score, share;
    see :mod:`rupture_nlp.evidence`); with ``explain_ngrams``, ``<facet>_reasons`` (a list of
    [phrase, weight] pairs, see :mod:`rupture_nlp.explain`).
    """
    texts = [str(t) for t in texts]
    prepared = None
    if explain:  # the evidence scorer builds the features from the sentences and reuses them
        scorer = scorer or EvidenceScorer(model)
        X, prepared = scorer.features(texts)
    else:
        X = model.transform(texts, columns=True)
    distance = model.distance(X)
    proba = model.proba_from_features(X, distance=distance)
    labels = model.labels_from_proba(proba)
    out = {}
    for facet in FACETS:
        out[facet] = labels[facet].to_numpy()
        frame = proba[facet]
        out[f"{facet}_confidence"] = frame.to_numpy()[range(len(frame)), frame.columns.get_indexer(labels[facet])]
    for facet in FACETS:
        for label in FACETS[facet]:
            out[f"p_{facet}_{label}"] = proba[facet][label].to_numpy()
    out["ood_score"] = model.ood_score(distance)
    df = pd.DataFrame(out).round(4)
    if explain:
        found = scorer.explain(texts, X, labels, distance, explain, prepared)
        for facet in FACETS:
            df[f"{facet}_evidence"] = [[e.as_dict() for e in r[facet]] for r in found]
    if explain_ngrams:
        explainer = explainer or Explainer(model)
        reasons = explainer.explain(texts, X, labels, explain_ngrams)
        for facet in FACETS:
            df[f"{facet}_reasons"] = [r[facet] for r in reasons]
    return df


# A worker process keeps its own copy of the model, loaded once.
_WORKER: dict = {}


def _init_worker(model_dir: str, explain: int, model=None, explain_ngrams: int = 0) -> None:
    model = load_model(model_dir) if model is None else model
    _WORKER.update(model=model, explain=explain, explain_ngrams=explain_ngrams,
                   explainer=Explainer(model) if explain_ngrams else None,
                   scorer=EvidenceScorer(model) if explain else None)


def _predict_batch(batch: pd.DataFrame) -> pd.DataFrame:
    w = _WORKER
    result = predict_frame(w["model"], batch["text"], w["explain"], w["explainer"], w["explain_ngrams"],
                           w["scorer"])
    return pd.concat([batch[["row", "id"]].reset_index(drop=True), result], axis=1)


@dataclass
class PredictRequest:
    model_dir: str
    spec: InputSpec
    output: str | None = None
    output_format: str = "jsonl"
    explain: int = 0
    jobs: int = 0
    explain_ngrams: int = 0
    force: bool = False
    progress: bool = False


def _batches_in_order(req: PredictRequest, model, batches: Iterator[pd.DataFrame]) -> Iterator[pd.DataFrame]:
    """Predict batches in input order; with more than one batch, spread them over worker processes
    (each loads the model once); a single batch, or --jobs 1, runs here with the model already loaded."""
    jobs = req.jobs or os.cpu_count() or 1
    head = list(itertools.islice(batches, 2))
    if len(head) < 2 or jobs == 1:
        _init_worker(req.model_dir, req.explain, model, req.explain_ngrams)
        for batch in itertools.chain(head, batches):
            yield _predict_batch(batch)
        return
    with ProcessPoolExecutor(max_workers=jobs, initializer=_init_worker,
                             initargs=(req.model_dir, req.explain, None, req.explain_ngrams)) as pool:
        pending: deque = deque()
        for batch in itertools.chain(head, batches):
            pending.append(pool.submit(_predict_batch, batch))
            if len(pending) >= 2 * jobs:  # bounded: memory stays flat however long the input
                yield pending.popleft().result()
        while pending:
            yield pending.popleft().result()


JSONL_ENCODER = json.JSONEncoder(ensure_ascii=False)


def write_rows(df: pd.DataFrame, fh, fmt: str, header: bool) -> None:
    if fmt == "jsonl":  # one encoder and one write for the batch (json.dumps makes an encoder per row)
        fh.write("".join(f"{line}\n" for line in map(JSONL_ENCODER.encode, df.to_dict(orient="records"))))
        return
    flat = df.copy()
    for col in [c for c in flat.columns if c.endswith("_reasons")]:
        flat[col] = flat[col].map(lambda pairs: "; ".join(f"{p} ({w:+.3f})" for p, w in pairs))
    for col in [c for c in flat.columns if c.endswith("_evidence")]:
        flat[col] = flat[col].map(lambda found: " | ".join(
            f"{e['text']} [{e['start']}:{e['end']}] ({e['score']:+.3f}, {e['share']:.0%})" for e in found))
    flat.to_csv(fh, header=header, index=False, quoting=csv.QUOTE_MINIMAL, lineterminator="\n")


@contextlib.contextmanager
def output_sink(output: str | None, fmt: str, force: bool = False):
    """Yield ``write(df, first)`` for batches of rows: JSON Lines or CSV to a file or standard output,
    or Parquet to a file (``*.parquet``) or a dataset folder (one part a batch); in place only at the end."""
    if fmt == "parquet":
        from rupture_nlp.parquet_io import parquet_output

        if output is None or str(output) == "-":
            raise InputError("--format parquet needs --output/-o: a file ending in .parquet, or a folder")
        with parquet_output(output, force=force) as write:
            yield write
        return
    with atomic_output(output, force=force) as fh:
        yield lambda df, first: write_rows(df, fh, fmt, header=first)
        fh.flush()


def predict_file(req: PredictRequest) -> dict:
    """Label every post of ``req.spec`` and write one output row per input row, in input order."""
    if req.output_format not in OUTPUT_FORMATS:
        raise ValueError(f"unknown output format {req.output_format!r}; choose {', '.join(OUTPUT_FORMATS)}")
    model = load_model(req.model_dir)  # fail early, before any output is opened, on a bad model
    stats = {"posts": 0, "skipped": 0, "truncated": 0}
    batches = iter_input(req.spec)

    def counted():
        for batch in batches:
            stats["skipped"] += batch.attrs.get("skipped", 0)
            stats["truncated"] += batch.attrs.get("truncated", 0)
            if len(batch):
                yield batch

    with output_sink(req.output, req.output_format, req.force) as write:
        for i, result in enumerate(_batches_in_order(req, model, counted())):
            write(result, i == 0)
            stats["posts"] += len(result)
            if req.progress:
                print(f"\rlabelled {stats['posts']:,} posts", end="", file=sys.stderr, flush=True)
    if req.progress:
        print(file=sys.stderr)
    return stats
