"""Adapting to a forum: annotation sheets of the user's own posts, read back for training."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from rupture_nlp.data import (CORPUS_COLUMNS, InputError, corpus_frame, read_csv_strict, read_corpus, sha256_file,
                              validate_labels)
from rupture_nlp.labels import FACETS

GOLD = ["rupture_type", "repair_outcome", "therapist_response", "risk"]
REQUIRED = ["post_id", "text", "rupture_type", "repair_outcome", "therapist_response"]
SHEET_COLUMNS = ["post_id", "text", "suggested_rupture_type", "suggested_repair_outcome",
                 "suggested_therapist_response", "suggested_risk", "confidence", *GOLD, "note"]


def labelled_rows(sheet: pd.DataFrame) -> pd.Series:
    """Rows whose three relation labels are filled in (risk may be left empty)."""
    return sheet[GOLD[:3]].apply(lambda col: col.str.strip().ne("")).all(axis=1)


def read_sheet(path: str | Path) -> pd.DataFrame:
    """A sheet's labelled rows, validated; errors name the rows as a spreadsheet numbers them."""
    sheet = read_csv_strict(path, REQUIRED)
    if "risk" not in sheet.columns:
        sheet["risk"] = ""
    for col in GOLD:
        sheet[col] = sheet[col].str.strip()
    filled = sheet[GOLD[:3]].ne("")
    partial = filled.any(axis=1) & ~filled.all(axis=1)
    if partial.any():
        rows = [int(i) + 2 for i in partial.to_numpy().nonzero()[0]]
        raise InputError(f"{path}: row(s) {rows[:10]} have some but not all of rupture_type, repair_outcome, "
                         f"therapist_response filled in")
    dup = sheet["post_id"].duplicated(keep=False) & sheet["post_id"].ne("")
    if dup.any():
        rows = [int(i) + 2 for i in dup.to_numpy().nonzero()[0]]
        raise InputError(f"{path}: duplicate post_id in row(s) {rows[:10]}")
    done = sheet[labelled_rows(sheet)]
    positions = done.index.to_numpy()
    checked = done.reset_index(drop=True)
    risk_given = checked["risk"].ne("")
    try:
        validate_labels(checked.assign(risk=checked["risk"].where(risk_given, "none")), str(path), row_offset=2)
    except InputError as exc:  # name spreadsheet rows of the full sheet, not of the labelled subset
        raise InputError(_renumber(str(exc), positions)) from None
    return done.reset_index(drop=True)


def _renumber(message: str, positions) -> str:
    import re

    return re.sub(r"row\(s\) (\d+(?:, \d+)*)", lambda m: "row(s) " + ", ".join(
        str(int(positions[int(n) - 2]) + 2) for n in m.group(1).split(", ")), message)


def read_sheets(paths, known_ids: set[str] | None = None) -> tuple[pd.DataFrame, list[dict]]:
    """Labelled rows of all sheets as one frame (post_id, text, the four facets), and their provenance."""
    frames, info = [], []
    seen: dict[str, str] = {}
    for path in paths:
        sheet = read_sheet(path)
        for pid in sheet["post_id"]:
            if pid in seen:
                raise InputError(f"post_id {pid!r} is labelled in both {seen[pid]} and {path}")
            seen[pid] = str(path)
        # a thread_id column (optional) lets `train --extra` measure the sheet's gain by whole threads
        thread = sheet["thread_id"].fillna("") if "thread_id" in sheet.columns else ""
        frames.append(sheet[["post_id", "text", *GOLD]].assign(thread_id=thread))
        info.append({"path": str(path), "sha256": sha256_file(path), "labelled_posts": int(len(sheet))})
    if not frames:
        return pd.DataFrame(columns=["post_id", "text", *FACETS, "thread_id"]), info
    extra = pd.concat(frames, ignore_index=True)
    extra["risk"] = extra["risk"].where(extra["risk"].ne(""), None)
    return extra, info


def read_labelled(path: str | Path) -> pd.DataFrame:
    """What `evaluate` scores: a labelled corpus (the corpus's columns, CSV or Parquet), or a labelled
    annotation sheet (post_id, text and the labels, as `sample` and `annotate` leave it) in the corpus's
    shape: its labelled rows, all in the split "sheet", each post its own thread unless the sheet has a
    thread_id column; a blank risk stays blank (not scored)."""
    from rupture_nlp.parquet_io import is_parquet

    if is_parquet(str(path)):
        return read_corpus(path)
    table = read_csv_strict(path)
    if set(CORPUS_COLUMNS) <= set(table.columns):
        return corpus_frame(table[CORPUS_COLUMNS + [c for c in table.columns if c not in CORPUS_COLUMNS]], path)
    if not set(REQUIRED) <= set(table.columns):
        missing = [c for c in CORPUS_COLUMNS if c not in table.columns]
        raise InputError(f"{path} lacks column(s) {', '.join(missing)}; columns found: {', '.join(table.columns)}. "
                         f"A labelled sheet needs {', '.join(REQUIRED)}")
    sheet = read_sheet(path)
    if sheet.empty:
        raise InputError(f"{path} has no labelled posts: fill in rupture_type, repair_outcome and "
                         f"therapist_response (rupture-nlp annotate)")
    thread = sheet["thread_id"].where(sheet["thread_id"].ne(""), sheet["post_id"]) if "thread_id" in sheet \
        else sheet["post_id"]
    posts = pd.DataFrame({"post_id": sheet["post_id"], "thread_id": thread, "author": "", "position": 0,
                          "reply_to": "", "created_at": pd.NaT, "text": sheet["text"],
                          **{f: sheet[f] for f in GOLD}, "split": "sheet"})
    posts.attrs["sheet"] = True  # no thread structure: evaluate scores no triage on it
    return posts


RELATION_FACETS = ["rupture_type", "repair_outcome", "therapist_response"]
STRATEGIES = ("uncertainty", "random")


def training_rows(train: pd.DataFrame, extra: pd.DataFrame, weight: float):
    """The corpus's train split and the sheets' posts as one training set: (texts, labels, sample
    weights, the mask of the forum's own posts)."""
    texts = pd.concat([train["text"], extra["text"]], ignore_index=True)
    labels = pd.concat([train[list(FACETS)], extra[list(FACETS)]], ignore_index=True)
    sample_weight = np.concatenate([np.ones(len(train)), np.full(len(extra), float(weight))])
    return texts, labels, sample_weight, np.r_[np.zeros(len(train), bool), np.ones(len(extra), bool)]


def labelled_ids(paths) -> set[str]:
    """post_ids already labelled in the given sheets (unlabelled rows do not count)."""
    ids: set[str] = set()
    for path in paths:
        sheet = read_csv_strict(path, REQUIRED)
        ids |= set(sheet.loc[labelled_rows(sheet.fillna("")), "post_id"])
    return ids


def uncertainty(proba: dict[str, pd.DataFrame]) -> np.ndarray:
    """Mean over the relation facets of 1 - P(predicted label): high where the model is unsure."""
    return np.mean([1 - proba[f].to_numpy().max(axis=1) for f in RELATION_FACETS], axis=0)


def select(X, scores: np.ndarray, n: int, pool_factor: int = 5) -> list[int]:
    """Greedy batch: from the ``pool_factor * n`` most uncertain posts, pick one at a time the post
    with the highest uncertainty x (1 - its highest cosine similarity to those already picked)."""
    n = min(n, len(scores))
    pool = np.argsort(-scores, kind="stable")[: max(n, pool_factor * n)]
    Xp = X[pool]
    norms = np.sqrt(np.asarray(Xp.multiply(Xp).sum(axis=1)).ravel()) + 1e-12
    picked: list[int] = []
    max_sim = np.zeros(len(pool))
    for _ in range(n):
        gain = scores[pool] * (1 - max_sim)
        gain[picked] = -np.inf
        best = int(np.argmax(gain))
        picked.append(best)
        sim = np.asarray((Xp @ Xp[best].T).todense()).ravel() / (norms * norms[best])
        max_sim = np.maximum(max_sim, sim)
    return [int(pool[i]) for i in picked]


def sample_posts(model, posts: pd.DataFrame, n: int, strategy: str = "uncertainty", seed: int = 0,
                 skip_ids: set[str] | None = None) -> pd.DataFrame:
    """The annotation sheet: ``n`` posts (columns ``id`` and ``text`` in ``posts``) chosen to teach most.
    With a ``thread`` column in ``posts`` the sheet has a ``thread_id`` column after ``post_id``, so that
    `train --extra` can measure the sheet's gain by whole threads."""
    if strategy not in STRATEGIES:
        raise InputError(f"unknown strategy {strategy!r}; choose {', '.join(STRATEGIES)}")
    if n < 1:
        raise InputError("--n must be at least 1")
    candidates = posts[~posts["id"].astype(str).isin(skip_ids or set())].reset_index(drop=True)
    if candidates.empty:
        raise InputError("every post of the input is labelled already in the given sheet(s)")
    X = model.transform(candidates["text"])
    proba = model.proba_from_features(X)
    labels = model.labels_from_proba(proba)
    scores = uncertainty(proba)
    if strategy == "random":
        chosen = list(np.random.default_rng(seed).permutation(len(candidates))[:n])
    else:
        # a seeded, tiny jitter breaks ties between equally uncertain posts reproducibly
        jitter = np.random.default_rng(seed).uniform(0, 1e-9, len(scores))
        chosen = select(X, scores + jitter, n)
    sheet = pd.DataFrame({
        "post_id": candidates["id"].astype(str).to_numpy()[chosen],
        "text": candidates["text"].to_numpy()[chosen],
        **{f"suggested_{f}": labels[f].to_numpy()[chosen] for f in FACETS},
        "confidence": np.round(1 - scores[chosen], 3),
    })
    for col in [*GOLD, "note"]:
        sheet[col] = ""
    if "thread" not in candidates.columns:
        return sheet[SHEET_COLUMNS]
    sheet["thread_id"] = candidates["thread"].to_numpy()[chosen]
    return sheet[[SHEET_COLUMNS[0], "thread_id", *SHEET_COLUMNS[1:]]]


def agreement(path_a: str | Path, path_b: str | Path) -> dict:
    """Cohen's kappa, percent agreement and a confusion table per facet for two annotators."""
    from sklearn.metrics import cohen_kappa_score

    a, b = read_sheet(path_a), read_sheet(path_b)
    both = a.merge(b, on="post_id", suffixes=("_a", "_b"))
    if both.empty:
        raise InputError(f"{path_a} and {path_b} have no labelled post_id in common")
    out = {"posts": int(len(both)), "facets": {}, "disagreements": []}
    for facet in GOLD:
        pair = both[[f"{facet}_a", f"{facet}_b"]].fillna("")
        pair = pair[(pair[f"{facet}_a"] != "") & (pair[f"{facet}_b"] != "")]
        if pair.empty:
            continue
        labels = [x for x in FACETS[facet] if x in set(pair.to_numpy().ravel())]
        ya, yb = pair[f"{facet}_a"], pair[f"{facet}_b"]
        kappa = cohen_kappa_score(ya, yb, labels=labels) if len(set(ya) | set(yb)) > 1 else 1.0
        table = pd.crosstab(ya, yb).reindex(index=labels, columns=labels, fill_value=0)
        out["facets"][facet] = {"n": int(len(pair)), "kappa": float(kappa),
                                "percent_agreement": float((ya == yb).mean() * 100),
                                "confusion": {"labels": labels, "rows_a_columns_b": table.to_numpy().tolist()}}
    for row in both.itertuples(index=False):
        diffs = {f: [getattr(row, f"{f}_a"), getattr(row, f"{f}_b")] for f in GOLD
                 if getattr(row, f"{f}_a") and getattr(row, f"{f}_b")
                 and getattr(row, f"{f}_a") != getattr(row, f"{f}_b")}
        if diffs:
            out["disagreements"].append({"post_id": row.post_id, **diffs})
    return out
