"""Choose hyperparameters by grouped cross-validation (folds by thread) on the train split only."""

from __future__ import annotations

import itertools
from typing import Any

import pandas as pd

from rupture_nlp.config import Config
from rupture_nlp.labels import FACETS
from rupture_nlp.model import RuptureModel

# Shared-feature variants (each changes the features every facet sees) and per-facet C values.
# The normalisation is not tuned: dropping quoted lines and masking names and gender are design
# decisions (what must not decide a label), not knobs.
FEATURE_GRID: dict[str, list[Any]] = {
    "tfidf__char": ["keep", "drop"],
    "tfidf__word__ngram_range": [(1, 1), (1, 2), (1, 3)],
}
C_GRID = [1.0, 4.0, 16.0, 64.0]


def tune(train: pd.DataFrame, base: Config, feature_grid=None, c_grid=None, n_jobs: int = 2) -> pd.DataFrame:
    """Cross-validated macro-F1 per facet for every feature variant and C; one row per fit and facet."""
    feature_grid = FEATURE_GRID if feature_grid is None else feature_grid
    c_grid = C_GRID if c_grid is None else c_grid
    rows = []
    keys = list(feature_grid)
    for values in itertools.product(*(feature_grid[k] for k in keys)):
        variant = dict(zip(keys, values))
        pipeline = dict(base.pipeline)
        for k, v in variant.items():
            if v == "keep":
                continue
            pipeline[k] = list(v) if isinstance(v, tuple) else v
        for c in c_grid:
            cfg = base.with_overrides(pipeline={**pipeline, "clf__C": c}, facets={})
            model = RuptureModel(cfg, n_jobs=n_jobs).fit(train["text"], train, groups=train["thread_id"])
            for facet in FACETS:
                rows.append({**{k: str(v) for k, v in variant.items()}, "C": c, "facet": facet,
                             "cv_macro_f1": model.cv_scores_[facet]["macro_f1"]})
    return pd.DataFrame(rows)


def best_config(results: pd.DataFrame, base: Config) -> tuple[Config, pd.DataFrame]:
    """The feature variant with the best mean (over facets) of each facet's best C, and those Cs."""
    variant_cols = [c for c in results.columns if c not in ("C", "facet", "cv_macro_f1")]
    best_c = results.loc[results.groupby(variant_cols + ["facet"])["cv_macro_f1"].idxmax()]
    summary = best_c.groupby(variant_cols)["cv_macro_f1"].mean().sort_values(ascending=False)
    winner = dict(zip(variant_cols, summary.index[0] if len(variant_cols) > 1 else [summary.index[0]]))
    chosen = best_c
    for k, v in winner.items():
        chosen = chosen[chosen[k] == v]
    pipeline = dict(base.pipeline)
    for k, v in winner.items():
        if v == "keep":
            continue
        pipeline[k] = eval_value(v)
    facets = {row.facet: {"clf__C": float(row.C)} for row in chosen.itertuples()}
    return base.with_overrides(pipeline=pipeline, facets=facets), chosen


def eval_value(text: str):
    """Turn a grid value back from its string form ("(1, 2)", "True", "drop")."""
    if text in ("True", "False"):
        return text == "True"
    if text.startswith("("):
        return [int(x) for x in text.strip("()").split(",") if x.strip()]
    return text


def to_toml(cfg: Config) -> str:
    """Write a Config as TOML (the few value types a config holds)."""
    def value(v):
        if isinstance(v, bool):
            return "true" if v else "false"
        if isinstance(v, int | float):
            return repr(v)
        if isinstance(v, list | tuple):
            return "[" + ", ".join(value(x) for x in v) + "]"
        return '"' + str(v).replace("\\", "\\\\").replace('"', '\\"') + '"'

    lines = ["# Written by `rupture-nlp tune`", f"seed = {cfg.seed}", f"cv_folds = {cfg.cv_folds}", "", "[pipeline]"]
    lines += [f"{k} = {value(v)}" for k, v in cfg.pipeline.items()]
    for facet, params in cfg.facets.items():
        lines += ["", f"[facets.{facet}]"] + [f"{k} = {value(v)}" for k, v in params.items()]
    for section in ("calibration", "risk", "triage"):
        lines += ["", f"[{section}]"] + [f"{k} = {value(v)}" for k, v in getattr(cfg, section).items()]
    return "\n".join(lines) + "\n"
