"""How far a forum is from the training corpus, before anyone trusts a label there.

``shift_report`` takes posts of the user's forum (unlabelled) and reports:
- a **domain classifier**: logistic regression telling the corpus's training posts from the forum's,
  on a representation fitted on neither (hashed word and character n-grams under a fixed random
  projection, and the style measures of :mod:`rupture_nlp.style`; see ``ood.text_fingerprint``), so
  that training posts have no in-sample advantage; its cross-validated ROC AUC, with a 95% bootstrap
  interval. 0.5: the forum reads like the corpus; near 1: it can be told apart post by post;
- the **style and length measures that differ most** between corpus and forum;
- the **share of posts out of the corpus's range** (OOD score above 0.95: farther from the training
  posts than 95% of the corpus's own held-out posts) and the median OOD score;
- the model's **mean confidence** there, beside its mean confidence on held-out corpus posts;
- an **expectation** in words, and how many posts to label.

A large file is sampled (seeded reservoir), so the report costs the same for 20 posts or a million.
"""

from __future__ import annotations

import random

import numpy as np
import pandas as pd
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import roc_auc_score
from sklearn.model_selection import StratifiedKFold, cross_val_predict
from sklearn.preprocessing import StandardScaler

from rupture_nlp.data import InputError, InputSpec, iter_input
from rupture_nlp.labels import FACETS
from rupture_nlp.ood import text_fingerprint
from rupture_nlp.style import MEASURES, compare, profile

MIN_POSTS = 5
LEVELS = [  # (AUC below, level, what to expect, posts to label)
    (0.65, "close", "the forum reads like the training corpus; expect about the test split's accuracy", 25),
    (0.85, "moderate", "the forum differs from the training corpus; expect labels to be less accurate "
                       "than the test split says", 50),
    (1.01, "far", "the forum can be told apart from the training corpus post by post; labels here are "
                  "likely to be much less accurate than the test split says", 100),
]


def sample_texts(spec: InputSpec, n: int, seed: int) -> tuple[list[str], int]:
    """A seeded reservoir sample of ``n`` texts from any input ``predict`` reads, and the total count."""
    rng = random.Random(seed)
    chosen: list[str] = []
    total = 0
    for batch in iter_input(spec):
        for text in batch["text"]:
            total += 1
            if len(chosen) < n:
                chosen.append(text)
            else:
                j = rng.randrange(total)
                if j < n:
                    chosen[j] = text
    return chosen, total


def domain_auc(corpus: np.ndarray, forum: np.ndarray, seed: int, n_boot: int = 1000) -> dict:
    """Cross-validated ROC AUC of corpus-vs-forum fingerprints, with a bootstrap interval over the
    out-of-fold scores."""
    X = np.vstack([corpus, forum]).astype(float)
    y = np.r_[np.zeros(len(corpus)), np.ones(len(forum))]
    X = StandardScaler().fit_transform(X)
    folds = int(min(5, len(forum)))
    clf = LogisticRegression(C=0.5, class_weight="balanced", max_iter=2000, random_state=seed)
    scores = cross_val_predict(clf, X, y, cv=StratifiedKFold(folds, shuffle=True, random_state=seed),
                               method="decision_function")
    auc = float(roc_auc_score(y, scores))
    rng = np.random.default_rng(seed)
    i0, i1 = np.flatnonzero(y == 0), np.flatnonzero(y == 1)
    boot = [roc_auc_score(np.r_[np.zeros(len(i0)), np.ones(len(i1))],
                          np.r_[scores[rng.choice(i0, len(i0))], scores[rng.choice(i1, len(i1))]])
            for _ in range(n_boot)]
    return {"roc_auc": auc, "ci95": [float(np.quantile(boot, 0.025)), float(np.quantile(boot, 0.975))],
            "folds": folds, "corpus_posts": int(len(corpus)), "forum_posts": int(len(forum))}


def shift_report(model, texts: list[str], total: int | None = None, seed: int = 0, n_boot: int = 1000) -> dict:
    """The shift of ``texts`` (the forum's posts, or a sample of them) from the model's training corpus."""
    texts = [str(t) for t in texts]
    if len(texts) < MIN_POSTS:
        raise InputError(f"shift needs at least {MIN_POSTS} posts to compare a forum with the corpus; "
                         f"got {len(texts)}")
    X = model.transform(texts, columns=True)
    distance = model.distance(X)
    ood = model.ood_score(distance)
    fingerprint = text_fingerprint(texts)
    auc = domain_auc(model.corpus_fingerprint_, fingerprint, seed, n_boot)
    proba = model.proba_from_features(X, distance=distance)
    confidence = {f: float(proba[f].max(axis=1).mean()) for f in FACETS}
    reference = getattr(model, "oof_mean_confidence_", None)
    n_style = len(MEASURES)
    corpus_profile = profile(pd.DataFrame(model.corpus_fingerprint_[:, -n_style:], columns=MEASURES))
    forum_profile = profile(pd.DataFrame(fingerprint[:, -n_style:], columns=MEASURES))
    level, expectation, label_n = next((lv, e, n) for bound, lv, e, n in LEVELS if auc["roc_auc"] < bound)
    return {
        "posts": int(total if total is not None else len(texts)), "sampled": int(len(texts)), "seed": seed,
        "domain_classifier": auc,
        "ood_score": {"median": float(np.median(ood)), "share_out_of_range": float(np.mean(ood > 0.95)),
                      "definition": "percentile of a post's distance to the training posts among the corpus's "
                                    "held-out posts; out of range: above 0.95"},
        "style_differences": compare(corpus_profile, forum_profile),
        "mean_confidence": confidence,
        "mean_confidence_on_held_out_corpus": reference,
        "level": level, "expectation": expectation, "label_posts": label_n,
        "advice": f"label {label_n} posts chosen by the model with `rupture-nlp sample --n {label_n}` and "
                  f"`rupture-nlp annotate`, then measure with `rupture-nlp evaluate --baseline-data` and adapt "
                  f"with `rupture-nlp train --extra`",
    }


def render_text(report: dict) -> str:
    d, o = report["domain_classifier"], report["ood_score"]
    lines = [f"{report['posts']} posts ({report['sampled']} sampled, seed {report['seed']}) against the training "
             f"corpus ({d['corpus_posts']} posts)",
             "",
             f"domain classifier ROC AUC   {d['roc_auc']:.3f} [95% CI {d['ci95'][0]:.3f}-{d['ci95'][1]:.3f}]   "
             f"(0.5 = reads like the corpus, 1 = told apart post by post)",
             f"median OOD score            {o['median']:.2f}   (0.5 = as far as a new writer of the corpus)",
             f"posts out of the corpus's range  {100 * o['share_out_of_range']:.0f}%",
             "", "mean confidence       forum   held-out corpus"]
    ref = report.get("mean_confidence_on_held_out_corpus") or {}
    for f, v in report["mean_confidence"].items():
        r = ref.get(f)
        lines.append(f"  {f:20s} {v:6.2f}   {'' if r is None else f'{r:6.2f}'}")
    lines += ["", "style and length, most different first   corpus    forum   ratio"]
    for s in report["style_differences"]:
        lines.append(f"  {s['measure']:38s} {s['corpus']:7.2f}  {s['forum']:7.2f}  {s['ratio']:6.2f}")
    lines += ["", f"shift: {report['level']}. {report['expectation'][0].upper()}{report['expectation'][1:]}.",
              f"What to do: {report['advice']}."]
    return "\n".join(lines)
