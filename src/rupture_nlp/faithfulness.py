"""Is the evidence faithful? Delete the top evidence sentences and see the label's probability fall.

For each post with at least two sentences and each facet with a label to explain, the post is
re-scored by the full pipeline (``model.predict_proba``: calibration with the variant's own distance
and length, not the scorer's fixed temperature) without its top ``k`` evidence sentences and without
``k`` other sentences drawn at random. The evidence is faithful for that (post, facet) when deleting
it lowers the label's probability more. With ``k = 1`` this is close to true by construction for
leave-one-out scores (it checks the fast route and the fixed temperature); ``k = 2`` is not (the two
sentences' effects need not add up).
"""

from __future__ import annotations

import numpy as np

from rupture_nlp.evidence import EvidenceScorer, split_sentences
from rupture_nlp.labels import DEPENDENT, FACETS, NOT_APPLICABLE


def _label_proba(model, texts, labels) -> dict[str, np.ndarray]:
    proba = model.predict_proba(texts)
    out = {}
    for f in FACETS:
        frame = proba[f]
        p = frame.to_numpy()[np.arange(len(frame)), frame.columns.get_indexer(labels[f])]
        if f in DEPENDENT:
            p = p / np.maximum(1 - frame[NOT_APPLICABLE].to_numpy(), 1e-12)
        out[f] = p
    return out


def _cut(text: str, spans) -> str:
    for start, end in sorted(spans, reverse=True):
        text = text[:start] + text[end:]
    return text


def deletion_rates(model, texts, ks=(1, 2), seed: int = 0) -> dict:
    """Share of (post, facet) pairs where deleting the top-k evidence lowers p(label) more than
    deleting k random other sentences; also the posts and pairs counted."""
    texts = [str(t) for t in texts]
    spans = [[(s.start, s.end) for s in split_sentences(t) if not s.quote] for t in texts]
    keep = [i for i, s in enumerate(spans) if len(s) >= 2]
    texts = [texts[i] for i in keep]
    spans = [spans[i] for i in keep]
    X = model.transform(texts)
    distance = model.distance(X)
    labels = model.labels_from_proba(model.proba_from_features(X, distance=distance))
    found = EvidenceScorer(model).explain(texts, X, labels, distance, max(ks))
    base = _label_proba(model, texts, labels)
    rng = np.random.default_rng(seed)
    result = {"posts": len(texts)}
    for k in ks:
        jobs = []  # (post, facet, top text, random text)
        for i, per in enumerate(found):
            for f in FACETS:
                top = [(e.start, e.end) for e in per[f][:k]]
                others = [s for s in spans[i] if s not in top]
                if len(top) < k or len(others) < k:
                    continue
                pick = [others[j] for j in rng.choice(len(others), size=k, replace=False)]
                jobs.append((i, f, _cut(texts[i], top), _cut(texts[i], pick)))
        if not jobs:
            result[f"top{k}"] = {"pairs": 0, "rate": None}
            continue
        rows = [i for i, *_ in jobs]
        lab = {f: labels[f].to_numpy()[rows] for f in FACETS}
        p_top = _label_proba(model, [t for *_, t, _ in jobs], lab)
        p_rand = _label_proba(model, [r for *_, r in jobs], lab)
        wins, per_facet = [], {f: [] for f in FACETS}
        for n, (i, f, _, _) in enumerate(jobs):
            win = base[f][i] - p_top[f][n] > base[f][i] - p_rand[f][n]
            wins.append(win)
            per_facet[f].append(win)
        result[f"top{k}"] = {"pairs": len(jobs), "rate": float(np.mean(wins)),
                             "per_facet": {f: round(float(np.mean(w)), 3) for f, w in per_facet.items() if w}}
    return result
