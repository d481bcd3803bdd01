"""The Python API for researchers: the same functions the command line calls.

    >>> from rupture_nlp import load_model, predict
    >>> model = load_model("models/default")
    >>> labels = predict(model, df, text_column="text", explain=3)
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from rupture_nlp.data import InputError, is_valid_text, no_text_column, read_corpus
from rupture_nlp.evaluate import evaluate
from rupture_nlp.evidence import EvidenceScorer, evidence_of
from rupture_nlp.explain import Explainer
from rupture_nlp.labels import NOT_APPLICABLE
from rupture_nlp.persist import load_model
from rupture_nlp.predict import predict_frame
from rupture_nlp.train import TrainRequest, train_model
from rupture_nlp.triage import apply_threshold, check_structure, crisis_phrase_hits, rollup

#: Facets in the order a moderator reads their evidence: risk first.
FACET_ORDER = ("risk", "rupture_type", "repair_outcome", "therapist_response")
SHOWN_ABSENT = {"none", NOT_APPLICABLE}
MIN_SHARE = 0.05  # a sentence with less of the decision is not shown to moderators

__all__ = ["load_model", "predict", "evidence", "explain", "train_model", "TrainRequest", "evaluate_model", "triage"]


def predict(model, df: pd.DataFrame, text_column: str = "text", explain: int = 0,
            explain_ngrams: int = 0) -> pd.DataFrame:
    """Label the posts of a DataFrame; returns ``df`` with the label, confidence and probability columns,
    and with ``explain`` the evidence sentences per facet (``explain_ngrams``: the n-gram reasons)."""
    if text_column not in df.columns:
        raise no_text_column("the DataFrame", text_column, df.columns)
    bad = [i for i, v in enumerate(df[text_column]) if not is_valid_text(v)]
    if bad:
        raise InputError(f"row(s) {', '.join(map(str, bad[:10]))} have an empty or non-text {text_column!r}")
    result = predict_frame(model, df[text_column], explain=explain, explain_ngrams=explain_ngrams)
    result.index = df.index
    return pd.concat([df, result], axis=1)


def evidence(model, texts, n: int = 3) -> list[dict]:
    """For each text, per facet, the ``n`` sentences that carried its predicted label most (as dicts:
    facet, label, start, end, text, score, share, log_odds; see :mod:`rupture_nlp.evidence`)."""
    return [{f: [e.as_dict() for e in found] for f, found in per.items()} for per in evidence_of(model, texts, n)]


def explain(model, texts, n: int = 5) -> list[dict]:
    """For each text, per facet, the ``n`` phrases that pushed its predicted label most."""
    texts = [str(t) for t in texts]
    X = model.transform(texts)
    labels = model.labels_from_proba(model.proba_from_features(X))
    return Explainer(model).explain(texts, X, labels, n)


def evaluate_model(model_or_dir, data: str | Path, split: str = "test", n_boot: int = 1000,
                   baseline_data: str | Path | None = None) -> dict:
    """Metrics of a model on a split of a labelled corpus, with baselines, calibration and triage.

    ``baseline_data``: the corpus whose train split trains the baselines (default: ``data``), for
    scoring a labelled file of a new forum that has no train split of its own.
    """
    from rupture_nlp.adapt import read_labelled

    model = load_model(model_or_dir) if isinstance(model_or_dir, str | Path) else model_or_dir
    corpus = read_labelled(data)
    baseline = read_corpus(baseline_data) if baseline_data else None
    if corpus.attrs.get("sheet"):
        if baseline is None:
            raise InputError(f"{data} is an annotation sheet, with no train split for the baselines; give the "
                             f"training corpus with --baseline-data (e.g. data/posts.csv)")
        result = evaluate(model, corpus, split="sheet", n_boot=n_boot, baseline_corpus=baseline)
        result["triage_note"] = "not scored: a sheet has no thread structure (author, position)"
        return result
    result = evaluate(model, corpus, split=split, n_boot=n_boot, baseline_corpus=baseline)
    posts = corpus[corpus["split"] == split].reset_index(drop=True)
    from rupture_nlp.triage import confident_accuracy

    phrases = model.config_.triage.get("crisis_phrases", [])
    pred = rollup(posts, result["predictions"], result["proba"], crisis_phrase_hits(posts["text"], phrases),
                  ood=result["ood_score"])
    gold = rollup(posts, posts)
    result["triage"] = confident_accuracy(pred, gold, model.triage_threshold_, ood_limit(model))
    return result


def ood_limit(model) -> float:
    """The OOD score above which triage leaves a thread to a person (config [triage] ood_limit)."""
    return float(model.config_.triage.get("ood_limit", 1.0))


def triage(model, posts: pd.DataFrame, text_column: str = "text", explain: int = 3,
           threshold: float | None = None) -> pd.DataFrame:
    """Rank the threads of ``posts`` for moderators: one row per thread, most pressing first."""
    check_structure(posts)
    return finish_queue(model, triage_threads(model, posts.reset_index(drop=True), text_column, explain), threshold)


def triage_threads(model, posts: pd.DataFrame, text_column: str = "text", explain: int = 3,
                   row_ids=None) -> pd.DataFrame:
    """One row per thread of ``posts`` (whole threads, in input order): rolled-up labels and
    confidence, the phrases behind them, the opening text and post id; not yet thresholded or sorted.

    ``row_ids``: what names a row when there is no post_id column (default: its position in ``posts``).
    """
    texts = posts[text_column].astype(str).tolist()
    X = model.transform(texts)
    distance = model.distance(X)
    proba = model.proba_from_features(X, distance=distance)
    labels = model.labels_from_proba(proba)
    phrases = model.config_.triage.get("crisis_phrases", [])
    threads = rollup(posts, labels, proba, crisis_phrase_hits(texts, phrases), ood=model.ood_score(distance))
    threads["evidence_posts"] = thread_evidence(model, threads, posts, texts, (X, labels, distance), explain, row_ids)
    threads["evidence"] = ["; ".join(f"{m['facet']}: {m['text']}" for post in shown for m in post["marks"])
                           for shown in threads["evidence_posts"]]
    threads["opening_text"] = [texts[int(i)] for i in threads["first_row"]]
    ids = row_names(posts, row_ids)
    threads["opening_post_id"] = [ids[int(i)] for i in threads["first_row"]]
    return threads.drop(columns=["first_row", "rupture_row", "outcome_row", "response_row", "crisis_row"])


QUEUE_TAIL = ["evidence_posts", "evidence", "opening_text", "opening_post_id"]


def finish_queue(model, threads: pd.DataFrame, threshold: float | None = None) -> pd.DataFrame:
    """The moderators' queue from :func:`triage_threads` rows: priorities with the confidence threshold,
    most pressing first (ties keep the threads' order)."""
    queue = apply_threshold(threads, model.triage_threshold_ if threshold is None else threshold, ood_limit(model))
    return queue[[c for c in queue.columns if c not in QUEUE_TAIL] + QUEUE_TAIL]


def row_names(posts: pd.DataFrame, row_ids=None) -> list:
    """What names each row of ``posts``: its post_id, else ``row_ids``, else its position."""
    if "post_id" in posts.columns:
        return posts["post_id"].tolist()
    return list(range(len(posts))) if row_ids is None else [int(i) for i in row_ids]


def thread_evidence(model, queue: pd.DataFrame, posts: pd.DataFrame, texts: list[str], scored, n: int,
                    row_ids=None) -> list:
    """Per thread, the posts a moderator should read with the sentences that carried their labels: the
    crisis post first (if it is not the opening post), the opening post, then the opening poster's
    later posts that decide the thread's outcome or the therapist's response. A label that marks an
    absence (no rupture, no risk) has no evidence to show."""
    X, labels, distance = scored
    wanted: list[list[tuple[int, list[str]]]] = []
    for r in queue.itertuples(index=False):
        facets: dict[int, list[str]] = {}
        if r.crisis_row is not None and not pd.isna(r.crisis_row):
            facets.setdefault(int(r.crisis_row), []).append("risk")
        facets.setdefault(int(r.first_row), []).extend(FACET_ORDER)
        for facet, row in (("rupture_type", r.rupture_row), ("repair_outcome", r.outcome_row),
                           ("therapist_response", r.response_row)):
            facets.setdefault(int(row), []).append(facet)
        wanted.append([(row, [f for f in FACET_ORDER if f in fs], row == int(r.first_row)) for row, fs in facets.items()])
    rows = sorted({row for w in wanted for row, _, _ in w})
    if n <= 0 or not rows:
        return [[] for _ in wanted]
    found = dict(zip(rows, EvidenceScorer(model).explain(
        [texts[i] for i in rows], X[rows], labels.iloc[rows].reset_index(drop=True), distance[rows], n)))
    ids = row_names(posts, row_ids)
    out = []
    for w in wanted:
        shown = []
        for row, facets, opening in w:
            marks = [e.as_dict() for f in facets if labels.at[row, f] not in SHOWN_ABSENT for e in found[row][f]
                     if e.share >= MIN_SHARE]
            if marks or opening:
                shown.append({"post_id": str(ids[row]), "author": str(posts.at[row, "author"]),
                              "opening": opening, "text": texts[row], "marks": marks})
        out.append(shown)
    return out
