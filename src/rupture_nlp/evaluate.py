"""Metrics with honest uncertainty: macro-F1 with a thread-bootstrap interval, per-class scores,
confusion matrices, calibration (Brier, ECE), all side by side with baselines from the same run."""

from __future__ import annotations

import numpy as np
import pandas as pd
from sklearn.metrics import accuracy_score, confusion_matrix, precision_recall_fscore_support

from rupture_nlp.baselines import fit_predict_baselines
from rupture_nlp.labels import DEPENDENT, FACETS, NOT_APPLICABLE, label_given, labels_present

N_BOOT = 1000


def _encode(values, labels: list[str]) -> np.ndarray:
    index = {label: i for i, label in enumerate(labels)}
    return np.array([index[v] for v in values])


def macro_f1_from_confusion(cm: np.ndarray) -> np.ndarray:
    """Macro-F1 of one or many (stacked on axis 0) confusion matrices, over classes seen in gold or prediction."""
    tp = np.diagonal(cm, axis1=-2, axis2=-1)
    gold, pred = cm.sum(axis=-1), cm.sum(axis=-2)
    denom = gold + pred
    f1 = np.divide(2 * tp, denom, out=np.zeros_like(tp, dtype=float), where=denom > 0)
    present = denom > 0
    return (f1 * present).sum(axis=-1) / np.maximum(present.sum(axis=-1), 1)


def _thread_resamples(groups, n_boot: int, seed: int) -> np.ndarray:
    """(n_boot, n_posts): how often each post is drawn when whole threads are resampled with replacement."""
    _, thread_index = np.unique(np.asarray(groups), return_inverse=True)
    n_threads = thread_index.max() + 1
    counts = np.random.default_rng(seed).multinomial(n_threads, np.full(n_threads, 1 / n_threads), size=n_boot)
    return counts[:, thread_index]


def _resampled_macro_f1(yt: np.ndarray, yp: np.ndarray, weights: np.ndarray, k: int) -> np.ndarray:
    cells = yt * k + yp
    cms = np.stack([np.bincount(cells, weights=w, minlength=k * k) for w in weights]).reshape(len(weights), k, k)
    return macro_f1_from_confusion(cms)


def bootstrap_macro_f1(y_true, y_pred, groups, labels: list[str], n_boot: int = N_BOOT, seed: int = 0):
    """95% interval of macro-F1, resampling whole threads with replacement."""
    yt, yp = _encode(y_true, labels), _encode(y_pred, labels)
    scores = _resampled_macro_f1(yt, yp, _thread_resamples(groups, n_boot, seed), len(labels))
    low, high = np.percentile(scores, [2.5, 97.5])
    return float(low), float(high)


def bootstrap_macro_f1_gain(y_true, pred_a, pred_b, groups, labels: list[str], n_boot: int = N_BOOT, seed: int = 0):
    """95% interval of macro-F1(b) - macro-F1(a) on the same posts (paired: one resample of whole
    threads scores both systems)."""
    yt = _encode(y_true, labels)
    weights = _thread_resamples(groups, n_boot, seed)
    gain = (_resampled_macro_f1(yt, _encode(pred_b, labels), weights, len(labels))
            - _resampled_macro_f1(yt, _encode(pred_a, labels), weights, len(labels)))
    low, high = np.percentile(gain, [2.5, 97.5])
    return float(low), float(high)


def brier(proba: np.ndarray, y_index: np.ndarray) -> float:
    onehot = np.zeros_like(proba)
    onehot[np.arange(len(y_index)), y_index] = 1
    return float(((proba - onehot) ** 2).sum(axis=1).mean())


def expected_calibration_error(proba: np.ndarray, y_index: np.ndarray, bins: int = 10) -> float:
    """Top-label ECE: |accuracy - confidence| per confidence bin, weighted by the bin's share."""
    conf = proba.max(axis=1)
    correct = proba.argmax(axis=1) == y_index
    edges = np.linspace(0, 1, bins + 1)
    which = np.clip(np.digitize(conf, edges[1:-1]), 0, bins - 1)
    ece = 0.0
    for b in range(bins):
        in_bin = which == b
        if in_bin.any():
            ece += in_bin.mean() * abs(correct[in_bin].mean() - conf[in_bin].mean())
    return float(ece)


def reliability_table(proba: np.ndarray, y_index: np.ndarray, bins: int = 10) -> pd.DataFrame:
    conf = proba.max(axis=1)
    correct = proba.argmax(axis=1) == y_index
    edges = np.linspace(0, 1, bins + 1)
    which = np.clip(np.digitize(conf, edges[1:-1]), 0, bins - 1)
    rows = [{"bin": b, "confidence": conf[which == b].mean(), "accuracy": correct[which == b].mean(),
             "count": int((which == b).sum())} for b in range(bins) if (which == b).any()]
    return pd.DataFrame(rows)


def facet_scores(y_true, y_pred, groups, facet: str, seed: int = 0, n_boot: int = N_BOOT) -> dict:
    """Accuracy, macro-F1 with its interval, per-class scores and the confusion matrix of one facet."""
    labels = labels_present(facet, y_true, y_pred)
    p, r, f, s = precision_recall_fscore_support(y_true, y_pred, labels=labels, zero_division=0)
    cm = confusion_matrix(y_true, y_pred, labels=labels)
    low, high = bootstrap_macro_f1(y_true, y_pred, groups, labels, n_boot=n_boot, seed=seed)
    out = {
        "n": int(len(y_true)),
        "accuracy": float(accuracy_score(y_true, y_pred)),
        "macro_f1": float(macro_f1_from_confusion(cm)),
        "macro_f1_ci95": [low, high],
        "per_class": {lab: {"precision": float(p[i]), "recall": float(r[i]), "f1": float(f[i]),
                            "support": int(s[i])} for i, lab in enumerate(labels)},
        "confusion": {"labels": labels, "matrix": cm.tolist()},
    }
    if facet in DEPENDENT:
        rupture = np.asarray(y_true) != NOT_APPLICABLE
        real = [label for label in labels if label != NOT_APPLICABLE]
        yt, yp = np.asarray(y_true)[rupture], np.asarray(y_pred)[rupture]
        cm_r = confusion_matrix(yt, yp, labels=real + [NOT_APPLICABLE])[: len(real)]
        f_r = precision_recall_fscore_support(yt, yp, labels=real, zero_division=0)[2]
        out["on_gold_ruptures"] = {"n": int(rupture.sum()), "accuracy": float(np.mean(yt == yp)),
                                   "macro_f1": float(np.mean(f_r)) if len(real) else 0.0,
                                   "missed_as_no_rupture": int(cm_r[:, -1].sum())}
    return out


def scored_rows(df: pd.DataFrame) -> dict[str, np.ndarray]:
    """Per facet, the rows that carry a gold label (a sheet may leave risk blank); facets with none
    are left out."""
    given = {facet: label_given(df[facet]) for facet in FACETS}
    return {facet: mask for facet, mask in given.items() if mask.any()}


def evaluate_predictions(df: pd.DataFrame, systems: dict[str, pd.DataFrame], seed: int = 0,
                         n_boot: int = N_BOOT) -> dict:
    """Score every system's labels against the gold labels in ``df`` (same row order), per facet on
    the rows that carry one."""
    groups = df["thread_id"].to_numpy()
    rows = scored_rows(df)
    return {name: {facet: facet_scores(df[facet].to_numpy()[m], pred[facet].to_numpy()[m], groups[m], facet, seed,
                                       n_boot) for facet, m in rows.items()} for name, pred in systems.items()}


def calibration_scores(model, X, df: pd.DataFrame) -> dict:
    """Brier score and ECE per facet, before and after calibration, on the rows that carry a label."""
    out = {}
    raw, cal = model.proba_from_features(X, calibrated=False), model.proba_from_features(X, calibrated=True)
    for facet, m in scored_rows(df).items():
        y_index = _encode(df[facet][m], list(FACETS[facet]))
        before, after = raw[facet].to_numpy()[m], cal[facet].to_numpy()[m]
        out[facet] = {
            "brier_before": brier(before, y_index),
            "brier_after": brier(after, y_index),
            "ece_before": expected_calibration_error(before, y_index),
            "ece_after": expected_calibration_error(after, y_index),
            "temperature": 1 / model.temperature_[facet],
        }
    return out


def evaluate(model, corpus: pd.DataFrame, split: str = "test", n_boot: int = N_BOOT,
             baseline_corpus: pd.DataFrame | None = None) -> dict:
    """Evaluate ``model`` on one split, with the three baselines trained in this run on the train split
    of ``baseline_corpus`` (default: ``corpus``; give the training corpus when scoring a new forum)."""
    from rupture_nlp.data import InputError

    if split not in set(corpus["split"]):
        raise InputError(f"no posts in split {split!r}; splits found: {', '.join(sorted(set(corpus['split'])))}")
    test = corpus[corpus["split"] == split].reset_index(drop=True)
    source = corpus if baseline_corpus is None else baseline_corpus
    train = source[source["split"] == "train"].reset_index(drop=True)
    if train.empty:
        raise InputError("no train split to train the baselines on; give the training corpus with --baseline-data")
    seed = model.config_.seed
    X = model.transform(test["text"], columns=True)
    distance = model.distance(X)
    proba = model.proba_from_features(X, distance=distance)
    ours = model.labels_from_proba(proba)
    systems = {"model": ours, **fit_predict_baselines(train, test["text"], seed=seed)}
    result = {
        "split": split, "n_posts": int(len(test)), "n_threads": int(test["thread_id"].nunique()),
        "bootstrap": {"resamples": n_boot, "unit": "thread", "seed": seed},
        "systems": evaluate_predictions(test, systems, seed=seed, n_boot=n_boot),
        "calibration": calibration_scores(model, X, test),
        "crisis": {"threshold": model.crisis_threshold_,
                   **_crisis_recall(test["risk"].to_numpy(), ours["risk"].to_numpy())},  # a blank risk is no crisis
    }
    ood = model.ood_score(distance)
    result["shift"] = {"ood_score_median": float(np.median(ood)), "share_out_of_range": float(np.mean(ood > 0.95)),
                       "mean_confidence": {f: float(proba[f].max(axis=1).mean()) for f in FACETS}}
    result["predictions"] = ours
    result["proba"] = proba
    result["ood_score"] = ood
    return result


def _crisis_recall(gold, pred) -> dict:
    crisis = gold == "crisis"
    return {"support": int(crisis.sum()),
            "recall": float((pred[crisis] == "crisis").mean()) if crisis.any() else None,
            "flagged": int((pred == "crisis").sum())}


def summary_table(result: dict) -> pd.DataFrame:
    """One row per facet: macro-F1 (95% CI) of the model and each baseline, plus calibration."""
    rows = []
    for facet in [f for f in FACETS if f in result["systems"]["model"]]:
        row = {"facet": facet}
        for name, scores in result["systems"].items():
            s = scores[facet]
            lo, hi = s["macro_f1_ci95"]
            row[name] = f"{s['macro_f1']:.3f} [{lo:.2f}-{hi:.2f}]"
        row["accuracy"] = f"{result['systems']['model'][facet]['accuracy']:.3f}"
        cal = result["calibration"][facet]
        row["ECE before/after"] = f"{cal['ece_before']:.3f}/{cal['ece_after']:.3f}"
        row["Brier before/after"] = f"{cal['brier_before']:.3f}/{cal['brier_after']:.3f}"
        rows.append(row)
    return pd.DataFrame(rows)


def render_text(payload: dict) -> str:
    """The evaluation as the terminal table `rupture-nlp evaluate` prints."""
    lines = [f"split {payload['split']}: {payload['n_posts']} posts in {payload['n_threads']} threads; "
             f"macro-F1 [95% CI, {payload['bootstrap']['resamples']} thread resamples]", ""]
    lines.append(summary_table(payload).to_string(index=False))
    for facet in [f for f in FACETS if f in payload["systems"]["model"]]:
        s = payload["systems"]["model"][facet]
        lines += ["", f"{facet} (model): accuracy {s['accuracy']:.3f}, macro-F1 {s['macro_f1']:.3f}"]
        per = pd.DataFrame(s["per_class"]).T.round(3)
        per["support"] = per["support"].astype(int)
        lines.append(per.to_string())
        cm = s["confusion"]
        lines.append("confusion (rows gold, columns predicted):")
        lines.append(pd.DataFrame(cm["matrix"], index=cm["labels"], columns=cm["labels"]).to_string())
        if "on_gold_ruptures" in s:
            g = s["on_gold_ruptures"]
            lines.append(f"on gold ruptures only ({g['n']} posts): macro-F1 {g['macro_f1']:.3f}, "
                         f"accuracy {g['accuracy']:.3f}, missed as no rupture {g['missed_as_no_rupture']}")
    c = payload["crisis"]
    recall = "n/a" if c["recall"] is None else f"{c['recall']:.3f}"
    lines += ["", f"crisis: recall {recall} of {c['support']} crisis posts; {c['flagged']} posts flagged "
                  f"(threshold P(crisis) >= {c['threshold']:.3f})"]
    if payload.get("triage_note"):
        lines.append(f"triage: {payload['triage_note']}")
    if "triage" in payload:
        t = payload["triage"]
        acc = "n/a" if t["confident_accuracy"] is None else f"{t['confident_accuracy']:.3f}"
        lines.append(f"triage: {t['threads']} threads; confident priorities right {acc}, coverage "
                     f"{t['coverage']:.3f} (threshold {t['threshold']:.2f}); urgent recall {t['urgent_recall']}")
    if "shift" in payload:
        sh = payload["shift"]
        conf = ", ".join(f"{f} {v:.2f}" for f, v in sh["mean_confidence"].items())
        lines.append(f"distance from the training corpus: median OOD score {sh['ood_score_median']:.2f} "
                     f"(0.5 = like a new writer of the corpus), {100 * sh['share_out_of_range']:.0f}% of posts "
                     f"beyond the 95th percentile; mean confidence {conf}")
    return "\n".join(lines)
