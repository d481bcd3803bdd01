"""Labels for the desk's posts and the ranking of its threads, as `triage` gives them.

A post's prediction is kept as a plain dict (labels, confidences, every probability, the sentences
that carried each label, the OOD score, a crisis-phrase hit), so that
threads can be ranked again from the desk alone when posts are added or corrected, without the text
going through the model again.
"""

from __future__ import annotations

import pandas as pd

from rupture_nlp.api import MIN_SHARE, SHOWN_ABSENT
from rupture_nlp.evidence import EvidenceScorer
from rupture_nlp.labels import FACETS
from rupture_nlp.triage import PRIORITY_ORDER, apply_threshold, crisis_phrase_hits, rollup

#: Evidence sentences kept per post and facet (those with at least MIN_SHARE of the decision).
EVIDENCE = 2
#: Desks ranked before the sentence evidence hold n-gram phrases; the queue shows the first few.
QUEUE_REASONS = 3


def model_info(model, model_dir) -> dict:
    """What the desk records about the model that ranked it."""
    from rupture_nlp.api import ood_limit

    manifest = getattr(model, "manifest_", {}) or {}
    return {"model_dir": str(model_dir), "model_sha256": str(manifest.get("artifact_sha256", "")),
            "model_created_at": str(manifest.get("created_at", "")),
            "threshold": float(model.triage_threshold_), "ood_limit": float(ood_limit(model))}


def label_posts(model, texts: list[str], evidence: int = EVIDENCE) -> list[dict]:
    """One prediction dict per text (see the module docstring)."""
    texts = [str(t) for t in texts]
    if not texts:
        return []
    X = model.transform(texts)
    distance = model.distance(X)
    proba = model.proba_from_features(X, distance=distance)
    labels = model.labels_from_proba(proba)
    ood = model.ood_score(distance)
    phrase = crisis_phrase_hits(texts, list(model.config_.triage.get("crisis_phrases", [])))
    found = EvidenceScorer(model).explain(texts, X, labels, distance, evidence) if evidence else [{} for _ in texts]
    out = []
    for i in range(len(texts)):
        lab = {f: str(labels[f].iloc[i]) for f in FACETS}
        out.append({
            "labels": lab,
            "confidence": {f: round(float(proba[f].iloc[i][lab[f]]), 4) for f in FACETS},
            "proba": {f: {k: float(v) for k, v in proba[f].iloc[i].items()} for f in FACETS},
            "evidence": {f: [e.as_dict() for e in found[i].get(f, []) if e.share >= MIN_SHARE]
                         for f in FACETS if lab[f] not in SHOWN_ABSENT},
            "ood_score": float(ood[i]), "crisis_phrase": bool(phrase[i]),
        })
    return out


def effective_labels(prediction: dict, correction: dict | None) -> dict:
    """The moderator's labels where they corrected the post, else the model's."""
    return dict(correction) if correction else dict(prediction["labels"])


def rank_threads(posts: pd.DataFrame, threshold: float, ood_limit: float) -> pd.DataFrame:
    """One row per thread, as `triage` ranks it, plus ``desk_priority`` (the priority the corrected
    labels give, for threads with a correction; else None) and ``reasons`` (what decided the labels:
    the leading evidence sentence of each deciding post, or its phrases on a desk ranked before).

    ``posts``: columns thread_id, author, the ordering column, ``prediction`` (dict) and
    ``correction`` (dict or None).
    """
    posts = posts.reset_index(drop=True)
    preds = posts["prediction"].tolist()
    labels = pd.DataFrame([p["labels"] for p in preds])
    proba = {f: pd.DataFrame([p["proba"][f] for p in preds])[list(FACETS[f])] for f in FACETS}
    threads = rollup(posts, labels, proba, [p["crisis_phrase"] for p in preds],
                     ood=[p["ood_score"] for p in preds])
    threads = apply_threshold(threads, threshold, ood_limit)
    threads["reasons"] = [_reasons(preds, r) for r in threads.itertuples(index=False)]
    corrected = posts["correction"].notna()
    threads["desk_priority"] = None
    if corrected.any():
        eff = pd.DataFrame([effective_labels(p, c if isinstance(c, dict) else None)
                            for p, c in zip(preds, posts["correction"])])
        desk = rollup(posts, eff).set_index("thread_id")["model_priority"]
        touched = set(posts.loc[corrected, "thread_id"])
        threads["desk_priority"] = [desk[t] if t in touched else None for t in threads["thread_id"]]
    return threads


def _reasons(preds: list[dict], r) -> str:
    picks = [("risk", r.crisis_row)] if r.crisis_row is not None and not pd.isna(r.crisis_row) else []
    picks += [("rupture_type", r.rupture_row), ("repair_outcome", r.outcome_row),
              ("therapist_response", r.response_row)]
    found = []
    for facet, row in picks:
        pred = preds[int(row)]
        if "evidence" in pred:  # the sentence that carried the label most (desks ranked before: phrases)
            found += [f"{facet}: {e['text']}" for e in pred["evidence"].get(facet, [])[:1]]
        else:
            found += [f"{facet}: {p}" for p, _ in pred["reasons"].get(facet, [])[:QUEUE_REASONS]]
    return "; ".join(dict.fromkeys(found))


def queue_key(thread: dict) -> tuple:
    """Sort key of the queue: the desk's priority (urgent first), what the model said, confidence."""
    rank = {p: i for i, p in enumerate(PRIORITY_ORDER)}
    shown = thread.get("desk_priority") or thread["priority"]
    return (rank[shown], rank[thread["model_priority"]], -float(thread["confidence"]), thread["seq"])
