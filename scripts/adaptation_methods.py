"""Which way of learning from a forum's own labels pays most with few labels?

For each seed a new forum's threads are split into a pool (70%) and held-out posts (30%); N posts of
the pool are labelled (chosen by the model's uncertainty with diversity, the code of `rupture-nlp
sample`, or at random) and added to the corpus's train split by each method; macro-F1 on the held-out
posts, against the model with no forum labels, same seed, same split:

- weight W: the forum's posts as extra training rows with sample weight W (`--extra-weight`);
- augment S: feature augmentation (Daume III, 2007): shared, corpus-only and forum-only copies of every
  feature, the forum copy scaled by S (`[adaptation] method = "augment"`, `target_scale`);
- bias: no retraining; per facet, one offset per label added to the model's logits, fit to the N
  labelled posts by L2-regularised log loss (prior-shift correction: a forum that has more
  withdrawals, or tells them more quietly, moves the offsets, not the weights);
- weight 1 + bias: the weight-1 model with the offsets fit on the base model's logits of the same
  N posts (the base model never saw them, so the offsets are not fit on training rows);
- weight 1 + forum vocabulary: weight 1, with the features (vocabularies, idf) fit on the forum's
  unlabelled pool posts too, so the forum's own words are features the sheet can weight;
- weight 1 + importance: weight 1, and the corpus's posts weighted by how much they read like the
  forum's unlabelled pool (covariate-shift importance weights from a domain classifier);
- weight 1 + length bins: weight 1, with one-hot bins of the posts' lengths fit beside the features (rupture_type only) and
  folded into the intercept at their mean (`[adaptation] length_bins`): length is explained away, not learnt;
- prior: no retraining of the corpus model; per facet its weights W become W + D, with D fit to the N
  labelled posts alone under an L2 penalty lambda |D|^2 / 2 that pulls them back to the corpus model
  (Chelba and Acero, 2004, "Adaptation of maximum entropy capitalizer: little data can help a lot");
  lambda per facet chosen by 5-fold grouped cross-validation over the labelled posts (log loss), no
  change among the choices;
- self-train: weight 1, then the forum's unlabelled pool posts that this model labels with calibrated
  confidence >= 0.8 on every facet are added with their predicted labels at weight 0.5 and the model
  is fit again (pseudo-labelling; the held-out posts are never used).

With ``--sheet-gain`` each seed also records what `train --extra` reports for its sheet (the gain measured
on the sheet's own posts by five folds, ``rupture_nlp.sheet_gain``), to set beside the gain on the
held-out posts.

    python scripts/adaptation_methods.py --forum data/adaptation/forum_c.csv --seeds 5 > docs/adaptation_methods_forum_c.json
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np
import pandas as pd
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import f1_score

from rupture_nlp.adapt import select, uncertainty
from rupture_nlp.config import load_config
from rupture_nlp.data import read_corpus
from rupture_nlp.labels import FACETS
from rupture_nlp.model import RuptureModel

ROOT = Path(__file__).resolve().parents[1]
METHODS = {"none": None, "weight 1": ("weight", 1.0, 1.0), "weight 3": ("weight", 3.0, 1.0),
           "augment 1": ("augment", 1.0, 1.0), "augment 1 weight 3": ("augment", 3.0, 1.0),
           "augment 2 weight 3": ("augment", 3.0, 2.0), "self-train": ("weight", 1.0, 1.0)}
METHODS |= {"bias": None, "weight 1 + bias": ("weight", 1.0, 1.0), "weight 1 + forum vocabulary": ("weight", 1.0, 1.0),
            "weight 1 + importance": ("weight", 1.0, 1.0), "weight 1 + length bins": ("weight", 1.0, 1.0),
            "prior": None}
LENGTH_BINS = [30, 60, 120, 250]  # fixed before any run (scripts/representation_checks.py)
IMPORTANCE_CLIP = (0.2, 5.0)  # fixed before any run: no corpus post counts less than a fifth or more than five
BIAS_L2 = 0.1  # fixed before any run: a squared offset of 1 costs as much as 0.1 nats of mean log loss
PRIOR_GRID = [None, 1.0, 0.3, 0.1, 0.03, 0.01, 0.003]  # fixed before any run; None: the corpus model unchanged
SELF_TRAIN_CONFIDENCE = 0.8
SELF_TRAIN_WEIGHT = 0.5


def fit(train: pd.DataFrame, extra: pd.DataFrame, method, extra_weight=None, unlabelled=None,
        corpus_weight=None, length_bins=()) -> RuptureModel:
    cfg = load_config()
    kind, weight, scale = method or ("weight", 1.0, 1.0)
    cfg = cfg.with_overrides(adaptation={"method": kind, "target_scale": scale, "length_bins": list(length_bins)})
    data = pd.concat([train, extra], ignore_index=True)
    w = np.r_[np.ones(len(train)) if corpus_weight is None else corpus_weight,
              np.full(len(extra), weight) if extra_weight is None else extra_weight]
    domain = np.r_[np.zeros(len(train), bool), np.ones(len(extra), bool)]
    return RuptureModel(cfg, cross_validate=False).fit(data["text"], data, groups=data["thread_id"],
                                                       sample_weight=w, domain=domain, unlabelled=unlabelled)


def importance_weights(train: pd.DataFrame, unlabelled: pd.DataFrame, seed: int) -> np.ndarray:
    """Covariate-shift weights of the corpus's posts (Shimodaira, 2000): the odds that a domain
    classifier (the fingerprints of `rupture-nlp shift`) gives a post of being the forum's, scaled to
    mean 1 over the corpus and clipped: corpus posts that read like the forum count more."""
    from sklearn.preprocessing import StandardScaler

    from rupture_nlp.ood import text_fingerprint

    a, b = text_fingerprint(train["text"]), text_fingerprint(unlabelled["text"])
    X = StandardScaler().fit_transform(np.vstack([a, b]).astype(float))
    y = np.r_[np.zeros(len(a)), np.ones(len(b))]
    clf = LogisticRegression(C=0.5, class_weight="balanced", max_iter=2000, random_state=seed).fit(X, y)
    odds = np.exp(clf.decision_function(X[: len(a)]))
    w = np.clip(odds / odds.mean(), *IMPORTANCE_CLIP)
    return w / w.mean()


def self_train(train: pd.DataFrame, extra: pd.DataFrame, unlabelled: pd.DataFrame) -> RuptureModel:
    first = fit(train, extra, ("weight", 1.0, 1.0))
    proba = first.predict_proba(unlabelled["text"])
    sure = np.min([proba[f].max(axis=1).to_numpy() for f in FACETS], axis=0) >= SELF_TRAIN_CONFIDENCE
    pseudo = unlabelled[sure].copy()
    pred = first.predict(pseudo["text"])
    for f in FACETS:
        pseudo[f] = pred[f].to_numpy()
    print(f"  self-train: {int(sure.sum())} of {len(unlabelled)} unlabelled posts pseudo-labelled", file=sys.stderr)
    both = pd.concat([extra, pseudo], ignore_index=True)
    return fit(train, both, ("weight", 1.0, 1.0), np.r_[np.ones(len(extra)), np.full(len(pseudo), SELF_TRAIN_WEIGHT)])


def fit_offsets(base: RuptureModel, extra: pd.DataFrame) -> dict[str, np.ndarray]:
    """Per facet, offsets of the logits that minimise the mean log loss of the labelled posts plus
    BIAS_L2 x the squared offsets (dependent facets: the posts with a rupture only)."""
    from scipy.optimize import minimize

    logits = base.logits(base.transform(extra["text"]))
    out = {}
    for f in FACETS:
        classes = list(base.classes_[f])
        keep = extra[f].isin(classes).to_numpy()
        z, y = logits[f][keep], np.array([classes.index(v) for v in extra.loc[keep, f]], dtype=int)
        if len(y) == 0:
            out[f] = np.zeros(len(classes))
            continue

        def loss(b):
            v = z + b
            v = v - v.max(axis=1, keepdims=True)
            logp = v - np.log(np.exp(v).sum(axis=1, keepdims=True))
            return -logp[np.arange(len(y)), y].mean() + BIAS_L2 * float(b @ b)

        b = minimize(loss, np.zeros(len(classes)), method="L-BFGS-B").x
        out[f] = b - b.mean()
    return out


def with_offsets(model: RuptureModel, offsets: dict[str, np.ndarray]) -> RuptureModel:
    """A shallow copy of ``model`` whose logits carry ``offsets`` (the original is untouched)."""
    import copy

    shifted = copy.copy(model)
    plain = model.logits
    shifted.logits = lambda X: {f: v + offsets[f] for f, v in plain(X).items()}
    return shifted


def _full_weights(clf: LogisticRegression, d: int) -> tuple[np.ndarray, np.ndarray]:
    """(d x K) weights and (K,) intercept in ``clf.classes_`` order (a binary fit as two columns)."""
    if clf.coef_.shape[0] == 1:
        w, b = clf.coef_[0] / 2, clf.intercept_[0] / 2
        return np.column_stack([-w, w]), np.array([-b, b])
    return clf.coef_.T.copy(), clf.intercept_.copy()


def _fit_delta(X, y: np.ndarray, W0: np.ndarray, b0: np.ndarray, lam: float) -> tuple[np.ndarray, np.ndarray]:
    """The change (D, db) to the weights that minimises the mean log loss of (X, y) + lam/2 |(D, db)|^2."""
    from scipy.optimize import minimize
    from scipy.special import log_softmax, softmax

    d, K = W0.shape
    Z0, Y = np.asarray(X @ W0) + b0, np.eye(K)[y]

    def loss(theta):
        D, db = theta[: d * K].reshape(d, K), theta[d * K:]
        Z = Z0 + np.asarray(X @ D) + db
        G = (softmax(Z, axis=1) - Y) / len(y)
        grad = np.concatenate([np.asarray(X.T @ G).ravel(), G.sum(axis=0)]) + lam * theta
        return -(log_softmax(Z, axis=1) * Y).sum() / len(y) + lam / 2 * float(theta @ theta), grad

    theta = minimize(loss, np.zeros(d * K + K), jac=True, method="L-BFGS-B", options={"maxiter": 500}).x
    return theta[: d * K].reshape(d, K), theta[d * K:]


def _choose_lambda(X, y: np.ndarray, groups: np.ndarray, W0: np.ndarray, b0: np.ndarray):
    """The PRIOR_GRID entry with the lowest grouped 5-fold log loss over the labelled posts."""
    from scipy.special import log_softmax
    from sklearn.model_selection import GroupKFold

    k = min(5, len(np.unique(groups)))
    if k < 2 or len(np.unique(y)) < 2:
        return None
    loss = {}
    for i, lam in enumerate(PRIOR_GRID):
        total = 0.0
        for tr, te in GroupKFold(n_splits=k).split(X, groups=groups):
            D, db = (0.0, 0.0) if lam is None else _fit_delta(X[tr], y[tr], W0, b0, lam)
            total -= log_softmax(np.asarray(X[te] @ (W0 + D)) + b0 + db, axis=1)[np.arange(len(te)), y[te]].sum()
        loss[i] = total
    return PRIOR_GRID[min(loss, key=loss.get)]


def prior_adapted(base: RuptureModel, extra: pd.DataFrame) -> RuptureModel:
    """A shallow copy of ``base`` whose classifiers are adapted to ``extra`` by the prior method (the
    original is untouched); the chosen lambdas in ``prior_lambda_``."""
    import copy

    from rupture_nlp.labels import DEPENDENT

    X = base.transform(extra["text"])
    model = copy.copy(base)
    model.classifiers_, model.prior_lambda_ = dict(base.classifiers_), {}
    model.__dict__.pop("_stacked", None)
    for f in FACETS:
        clf = base.classifiers_[f]
        classes = list(clf.classes_)
        keep = extra[f].isin(classes).to_numpy() & (extra["rupture_type"].ne("none").to_numpy() if f in DEPENDENT else True)
        y = np.array([classes.index(v) for v in extra.loc[keep, f]], dtype=int)
        W0, b0 = _full_weights(clf, X.shape[1])
        lam = _choose_lambda(X[keep], y, extra.loc[keep, "thread_id"].to_numpy(), W0, b0)
        model.prior_lambda_[f] = lam
        if lam is None:
            continue
        D, db = _fit_delta(X[keep], y, W0, b0, lam)
        W, b, new = W0 + D, b0 + db, copy.deepcopy(clf)
        if clf.coef_.shape[0] == 1:
            new.coef_, new.intercept_ = (W[:, 1] - W[:, 0])[None, :], np.array([b[1] - b[0]])
        else:
            new.coef_, new.intercept_ = np.ascontiguousarray(W.T), b
        model.classifiers_[f] = new
    print(f"  prior: lambda {model.prior_lambda_}", file=sys.stderr)
    return model


def split_forum(forum: pd.DataFrame, rng: np.random.Generator) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(pool, held-out): 30% of the forum's threads, drawn with ``rng``, are held out; the rest is the
    pool a team labels from. Whole threads, so no held-out post has a labelled post of its thread."""
    threads = forum["thread_id"].unique()
    held_threads = set(rng.permutation(threads)[: int(round(0.3 * len(threads)))])
    held = forum["thread_id"].isin(held_threads)
    return forum[~held].reset_index(drop=True), forum[held].reset_index(drop=True)


def scores(model, held: pd.DataFrame) -> dict[str, float]:
    pred = model.predict(held["text"])
    return {f: float(f1_score(held[f], pred[f], average="macro", zero_division=0)) for f in FACETS}


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--forum", default=str(ROOT / "data" / "adaptation" / "forum_c.csv"))
    ap.add_argument("--seeds", type=int, default=5)
    ap.add_argument("--n", type=int, default=40, help="forum posts labelled")
    ap.add_argument("--strategy", choices=["uncertainty", "random"], default="uncertainty")
    ap.add_argument("--methods", default=",".join(METHODS))
    ap.add_argument("--sheet-gain", action="store_true", help="also record the gain train --extra measures on the sheet")
    args = ap.parse_args()
    corpus = read_corpus(ROOT / "data" / "posts.csv")
    train = corpus[corpus["split"] == "train"].reset_index(drop=True)
    forum = read_corpus(args.forum).reset_index(drop=True)
    base = fit(train, train.iloc[:0], None)
    rows, sheet_gains = [], []
    for seed in range(args.seeds):
        rng = np.random.default_rng(seed)
        pool, held = split_forum(forum, rng)
        if args.strategy == "random":
            chosen = list(rng.permutation(len(pool))[: args.n])
        else:
            X = base.transform(pool["text"])
            chosen = select(X, uncertainty(base.proba_from_features(X)) + rng.uniform(0, 1e-9, len(pool)), args.n)
        extra = pool.iloc[chosen]
        for name in args.methods.split(","):
            if name == "self-train":
                model = self_train(train, extra, pool.drop(pool.index[chosen]))
            elif name == "prior":
                model = prior_adapted(base, extra)
            elif name == "bias":
                model = with_offsets(base, fit_offsets(base, extra))
            elif name == "weight 1 + importance":  # the pool's unlabelled posts, never the held-out ones
                w = importance_weights(train, pool.drop(pool.index[chosen]), seed)
                model = fit(train, extra, METHODS[name], extra_weight=None, corpus_weight=w)
            elif name == "weight 1 + forum vocabulary":  # the pool's other posts, never the held-out ones
                model = fit(train, extra, METHODS[name], unlabelled=pool.drop(pool.index[chosen])["text"].tolist())
            elif name == "weight 1 + length bins":
                model = fit(train, extra, METHODS[name], length_bins=LENGTH_BINS)
            elif name == "weight 1 + bias":
                model = with_offsets(fit(train, extra, METHODS[name]), fit_offsets(base, extra))
            else:
                model = base if METHODS[name] is None else fit(train, extra, METHODS[name])
            rows.append({"seed": seed, "method": name, "labelled": len(extra), **scores(model, held),
                         **({"lambda": model.prior_lambda_} if name == "prior" else {})})
            print(f"seed {seed} {name}: " + " ".join(f"{rows[-1][f]:.3f}" for f in FACETS), file=sys.stderr)
        if args.sheet_gain:
            from rupture_nlp.sheet_gain import measure_sheet_gain

            measured = measure_sheet_gain(load_config(), train, extra, 1.0, seed=seed)
            sheet_gains.append({"seed": seed, "split": measured["split"],
                                **{f: measured[f].get("gain") for f in FACETS},
                                **{f"{f}_ci95": measured[f].get("gain_ci95") for f in FACETS}})
            print(f"seed {seed} measured on the sheet: {sheet_gains[-1]}", file=sys.stderr)
    frame = pd.DataFrame(rows)
    gain = frame.set_index(["seed", "method"])[list(FACETS)]
    gain = gain - gain.xs("none", level="method").reindex(gain.index, level="seed").to_numpy()
    summary = {m: {**{f"{f}_mean": round(float(frame.loc[frame.method == m, f].mean()), 3) for f in FACETS},
                   **{f"{f}_gain": round(float(gain.xs(m, level="method")[f].mean()), 3) for f in FACETS},
                   **{f"{f}_gain_min": round(float(gain.xs(m, level="method")[f].min()), 3) for f in FACETS}}
               for m in args.methods.split(",")}
    print(json.dumps({"forum": str(args.forum), "labelled": args.n, "strategy": args.strategy,
                      "seeds": args.seeds, "summary": summary, "runs": rows,
                      **({"measured_on_sheet": sheet_gains} if args.sheet_gain else {})}, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
