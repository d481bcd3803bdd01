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
from rupture_nlp.explain import Explainer
from rupture_nlp.persist import load_model
from rupture_nlp.predict import predict_frame
from rupture_nlp.train import TrainRequest, train_model
from rupture_nlp.triage import apply_threshold, check_structure, crisis_phrase_hits, rollup

__all__ = ["load_model", "predict", "explain", "train_model", "TrainRequest", "evaluate_model", "triage"]


def predict(model, df: pd.DataFrame, text_column: str = "text", explain: int = 0) -> pd.DataFrame:
    """Label the posts of a DataFrame; returns ``df`` with the label, confidence and probability columns."""
    if text_column not in df.columns:
        raise no_text_column("the DataFrame", text_column, df.columns)
    bad = [i for i, v in enumerate(df[text_column]) if not is_valid_text(v)]
    if bad:
        raise InputError(f"row(s) {', '.join(map(str, bad[:10]))} have an empty or non-text {text_column!r}")
    result = predict_frame(model, df[text_column], explain=explain)
    result.index = df.index
    return pd.concat([df, result], axis=1)


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
    model = load_model(model_or_dir) if isinstance(model_or_dir, str | Path) else model_or_dir
    corpus = read_corpus(data)
    baseline = read_corpus(baseline_data) if baseline_data else None
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
    explainer = Explainer(model) if explain else None
    reasons, opening = [], []
    for r in threads.itertuples(index=False):
        opening.append(texts[r.first_row])
        if not explainer:
            reasons.append("")
            continue
        picks = [("risk", r.crisis_row)] if r.crisis_row is not None and not pd.isna(r.crisis_row) else []
        picks += [("rupture_type", r.rupture_row), ("repair_outcome", r.outcome_row),
                  ("therapist_response", r.response_row)]
        found = []
        for facet, row in picks:
            row = int(row)
            phrases_ = explainer.phrases(texts[row], X[row], facet, labels.at[row, facet], explain)
            found += [f"{facet}: {p}" for p, _ in phrases_]
        reasons.append("; ".join(found))
    threads["reasons"] = reasons
    threads["opening_text"] = opening
    ids = posts["post_id"].to_numpy() if "post_id" in posts.columns else (
        range(len(posts)) if row_ids is None else list(row_ids))
    threads["opening_post_id"] = [ids[int(i)] if "post_id" in posts.columns else int(ids[int(i)])
                                  for i in threads["first_row"]]
    return threads.drop(columns=["first_row", "rupture_row", "outcome_row", "response_row", "crisis_row"])


QUEUE_TAIL = ["reasons", "opening_text", "opening_post_id"]


def finish_queue(model, threads: pd.DataFrame, threshold: float | None = None) -> pd.DataFrame:
    """The moderators' queue from :func:`triage_threads` rows: priorities with the confidence threshold,
    most pressing first (ties keep the threads' order)."""
    queue = apply_threshold(threads, model.triage_threshold_ if threshold is None else threshold, ood_limit(model))
    return queue[[c for c in queue.columns if c not in QUEUE_TAIL] + QUEUE_TAIL]
