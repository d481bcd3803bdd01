"""What a labelled sheet of the forum's own posts buys, measured on the sheet itself.

The sheet is split into folds (of whole threads when the sheet has a ``thread_id`` column); each
fold's posts are labelled by a model trained as `train --extra` trains (the corpus's train split plus
the other folds of the sheet) and by the model with no forum labels. The gain is the difference of
their macro-F1 on the same posts, with a paired bootstrap interval. It needs no labelled posts beyond
the sheet, and it is the check a team would otherwise do by hand (train on four fifths of the sheet,
evaluate on the rest, five times).

Read it as an upper figure. A sheet chosen by `sample` holds the posts the model was least sure of, not
a sample of the forum: on forum C three such sheets of 40 measured rupture_type gains of +0.132 to
+0.159 on themselves (mean +0.141) where the forum's held-out posts gained +0.037 to +0.052 (mean
+0.045); on forum D both were about 0 (docs/shift.md). Forty posts also give a wide interval (about
0.25). The models of the folds learn from four fifths of the sheet, so the figure is for a slightly
smaller sheet than the saved model's. The fits are uncalibrated (no cross-validation), both sides
alike: their labels are those a calibrated model fit on the same posts would give (calibration keeps
each facet's ranking), except that risk's crisis threshold is 0.5.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from sklearn.metrics import confusion_matrix
from sklearn.model_selection import GroupKFold

from rupture_nlp.adapt import training_rows
from rupture_nlp.data import InputError
from rupture_nlp.evaluate import N_BOOT, bootstrap_macro_f1_gain, macro_f1_from_confusion
from rupture_nlp.labels import FACETS, label_given, labels_present
from rupture_nlp.model import RuptureModel

MIN_POSTS = 20  # below this, five folds of a sheet say nothing a reader could use
FOLDS = 5


def fit_with_sheet(cfg, train: pd.DataFrame, sheet: pd.DataFrame, weight: float, n_jobs: int = 1) -> RuptureModel:
    """The model `train --extra` fits, without its cross-validation (no calibration, crisis at 0.5)."""
    texts, labels, sample_weight, domain = training_rows(train, sheet, weight)
    return RuptureModel(cfg, cross_validate=False, n_jobs=n_jobs).fit(texts, labels, sample_weight=sample_weight,
                                                                      domain=domain)


def _macro_f1(y_true: np.ndarray, y_pred: np.ndarray, labels: list[str]) -> float:
    return float(macro_f1_from_confusion(confusion_matrix(y_true, y_pred, labels=labels)))


def measure_sheet_gain(cfg, train: pd.DataFrame, sheet: pd.DataFrame, weight: float = 1.0, folds: int = FOLDS,
                       n_jobs: int = 1, seed: int = 0, n_boot: int = N_BOOT) -> dict:
    """Per facet, macro-F1 on the sheet's posts with no forum labels and with the other folds of the
    sheet, the gain and its 95% interval. With a ``thread_id`` column the folds and the bootstrap take
    whole threads (a post's thread-mates would otherwise teach the model its answer); without one,
    single posts. A sheet of fewer than MIN_POSTS posts is not measured (``{"measured": False,
    "reason": ...}``), nor a facet with fewer than MIN_POSTS labels (risk may be left blank)."""
    sheet = sheet.reset_index(drop=True)
    if folds < 2:
        raise InputError("the gain of a sheet is measured with at least 2 folds")
    if len(sheet) < MIN_POSTS:
        return {"measured": False, "reason": f"the sheets hold {len(sheet)} labelled posts; the gain is measured "
                                             f"from {MIN_POSTS}"}
    by_thread = "thread_id" in sheet.columns and sheet["thread_id"].astype(str).ne("").all()
    groups = sheet["thread_id"].astype(str).to_numpy() if by_thread else np.arange(len(sheet))
    folds = min(folds, len(np.unique(groups)))
    if folds < 2:
        return {"measured": False, "reason": "the sheets' posts are all from one thread"}
    base = fit_with_sheet(cfg, train, sheet.iloc[:0], weight, n_jobs).predict(sheet["text"])
    adapted = base.copy()
    for fit_rows, held in GroupKFold(n_splits=folds, shuffle=True, random_state=seed).split(sheet, groups=groups):
        model = fit_with_sheet(cfg, train, sheet.iloc[fit_rows], weight, n_jobs)
        adapted.iloc[held] = model.predict(sheet["text"].iloc[held]).to_numpy()
    out = {"measured": True, "posts": int(len(sheet)), "folds": folds, "split": "thread" if by_thread else "post",
           "seed": seed, "on": "the sheet's own posts, each labelled by a model that did not see it"}
    for f in FACETS:
        given = label_given(sheet[f])
        if given.sum() < MIN_POSTS:
            out[f] = {"posts": int(given.sum()), "measured": False}
            continue
        y, a, b = sheet[f].to_numpy()[given], base[f].to_numpy()[given], adapted[f].to_numpy()[given]
        labels = labels_present(f, y, a, b)
        before, after = _macro_f1(y, a, labels), _macro_f1(y, b, labels)
        low, high = bootstrap_macro_f1_gain(y, a, b, groups[given], labels, n_boot=n_boot, seed=seed)
        out[f] = {"posts": int(given.sum()), "measured": True, "no_labels": round(before, 3),
                  "with_sheet": round(after, 3), "gain": round(after - before, 3),
                  "gain_ci95": [round(low, 3), round(high, 3)]}
    return out


def gain_rows(result: dict) -> list[tuple[str, dict]]:
    """(facet, figures) of the measured facets, in the specification's order."""
    return [(f, result[f]) for f in FACETS if result.get(f, {}).get("measured")]


def render_gain(result: dict) -> str:
    """Lines for standard error after `train --extra`."""
    if not result.get("measured"):
        return f"gain of the sheet not measured: {result['reason']}"
    unit = "whole threads" if result.get("split") == "thread" else "single posts"
    lines = [f"what the sheet bought, on its own {result['posts']} posts ({result['folds']} folds of {unit}; each "
             f"post labelled by a model that did not see it), macro-F1:"]
    for f, r in gain_rows(result):
        lines.append(f"  {f:<19} {r['no_labels']:.3f} -> {r['with_sheet']:.3f}  ({r['gain']:+.3f}, 95% interval "
                     f"{r['gain_ci95'][0]:+.3f} to {r['gain_ci95'][1]:+.3f}; {r['posts']} posts)")
    skipped = [f"{f} ({result[f]['posts']} labels)" for f in FACETS if f in result and not result[f]["measured"]]
    if skipped:
        lines.append(f"  not measured, fewer than {MIN_POSTS} labels: {', '.join(skipped)}")
    lines.append("  (an upper figure: a sheet from `sample` holds the posts the model was least sure of;\n"
                 "   on forum C such sheets measured three times the gain of the rest of the forum. Check the model\n"
                 "   on a random sample of posts the sheet does not hold: `evaluate --baseline-data`)")
    return "\n".join(lines)
