"""Training: the corpus's train split (plus any labelled sheets of the user's own posts) to a model folder."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from rupture_nlp.config import load_config
from rupture_nlp.data import InputError, read_corpus, sha256_file
from rupture_nlp.labels import FACETS
from rupture_nlp.model import RuptureModel
from rupture_nlp.persist import check_writable, save_model


@dataclass
class TrainRequest:
    data: str | Path
    out: str | Path
    config: str | Path | None = None
    force: bool = False
    extra: list[str | Path] = field(default_factory=list)
    extra_weight: float = 1.0
    n_jobs: int = 2
    seed: int | None = None
    measure_gain: bool = True  # with sheets: cross-fit the sheet to measure what it bought (sheet_gain)
    progress: Callable[[str], None] | None = None  # told once the inputs are read and checked, before the fits


def label_counts(df: pd.DataFrame) -> dict[str, dict[str, int]]:
    return {f: {k: int(v) for k, v in df[f].value_counts().items()} for f in FACETS}


def provenance_path(data: str | Path) -> Path:
    """data/posts.csv -> data/provenance.csv; other/forum.csv -> other/forum_provenance.csv."""
    data = Path(data)
    return data.with_name("provenance.csv" if data.stem == "posts" else f"{data.stem}_provenance.csv")


def cv_groups(data, train: pd.DataFrame, extra: pd.DataFrame, unit: str) -> tuple[np.ndarray, str]:
    """Cross-validation groups: whole writer batches (from the provenance file beside the corpus)
    or whole threads. The posts of --extra sheets form one batch: the user's forum."""
    threads = np.concatenate([train["thread_id"].to_numpy(), ("extra:" + extra["post_id"]).to_numpy()])
    prov = provenance_path(data)
    if unit != "writer_batch" or not prov.is_file():
        return threads, "thread"
    batches = pd.read_csv(prov, dtype=str, keep_default_na=False).set_index("post_id")["writer_batch"]
    batch = train["post_id"].map(batches)
    if batch.isna().any() or batch.nunique() < 3:
        return threads, "thread"
    return np.concatenate([batch.to_numpy(), np.full(len(extra), "extra sheets")]), "writer_batch"


def train_model(req: TrainRequest) -> dict:
    """Fit the model on the train split and save it with its manifest; returns the manifest."""
    check_writable(Path(req.out), req.force, "model folder")
    cfg = load_config(req.config)
    if req.seed is not None:
        cfg = cfg.with_overrides(seed=req.seed)
    corpus = read_corpus(req.data)
    train = corpus[corpus["split"] == "train"].reset_index(drop=True)
    if train.empty:
        raise InputError(f"{req.data} has no posts in the train split")
    from rupture_nlp.adapt import read_sheets, training_rows  # the sheets of issue-6 adaptation

    extra, extra_info = read_sheets(req.extra, known_ids=set(corpus["post_id"]))
    if req.extra_weight <= 0:
        raise InputError("--extra-weight must be a positive number")
    texts, labels, weight, domain = training_rows(train, extra, req.extra_weight)
    groups, fold_unit = cv_groups(req.data, train, extra, cfg.calibration.get("folds", "writer_batch"))
    if req.progress is not None:
        req.progress(f"training on the train split of {req.data} ...")
        if req.extra and req.measure_gain:
            req.progress("then what the sheets buy is measured on their own posts (--no-measure-gain skips it) ...")
    if fold_unit != "writer_batch" and cfg.calibration.get("objective") == "worst_batches":
        # the worst "batches" of thread folds would be the worst few posts: calibrate to the mean instead
        cfg = cfg.with_overrides(calibration={**cfg.calibration, "objective": "mean"})
    model = RuptureModel(cfg, n_jobs=req.n_jobs).fit(texts, labels, groups=groups, sample_weight=weight,
                                                     domain=domain)

    from rupture_nlp.triage import choose_confidence_threshold

    triage_choice = choose_confidence_threshold(model, train)
    model.triage_threshold_ = triage_choice["threshold"]
    adaptation = adaptation_summary(cfg, extra, req.extra_weight, model.length_bins_)
    if adaptation is not None and req.measure_gain:
        from rupture_nlp.sheet_gain import measure_sheet_gain

        adaptation["measured_gain"] = measure_sheet_gain(cfg, train, extra, req.extra_weight, n_jobs=req.n_jobs,
                                                         seed=cfg.seed)
    manifest = {
        "training_data": {"path": str(req.data), "sha256": sha256_file(req.data), "split": "train",
                          "posts": int(len(train)), "threads": int(train["thread_id"].nunique())},
        "extra_sheets": extra_info, "extra_weight": float(req.extra_weight),
        "adaptation": adaptation,
        "config": cfg.to_dict(),
        "label_counts": label_counts(labels),
        "cv_scores": model.cv_scores_,
        "calibration": {"method": cfg.calibration.get("method", "temperature"), "folds": fold_unit,
                        "objective": cfg.calibration.get("objective", "mean"),
                        "temperature": {f: 1 / b for f, b in model.temperature_.items()},
                        "covariate_temperature": {f: dict(zip(["a", "b_distance", "b_log_features"],
                                                                  map(float, v)))
                                                  for f, v in model.calibration_params_.items()},
                        "covariate_center": [float(c) for c in model.covariate_center_]},
        "ood": ood_summary(model),
        "crisis_threshold": model.crisis_threshold_,
        "triage": triage_choice,
        "features": int(len(model.feature_names())),
    }
    save_model(model, req.out, manifest, force=req.force)
    return manifest


def ood_summary(model) -> dict:
    """The reference distances (held-out corpus posts) that OOD scores are percentiles of."""
    ref = model.domain_.reference_
    return {"method": "1 - mean cosine similarity to the k nearest training posts (LSA of the features)",
            "n_components": int(model.domain_.svd_.n_components), "k": int(model.domain_.k),
            "held_out_distance_quantiles": {str(q): float(np.quantile(ref, q)) for q in (0.05, 0.25, 0.5, 0.75, 0.95, 0.99)}}


# Measured with scripts/adaptation_methods.py (docs/shift.md): macro-F1 gain on a held-out part of
# forum C from 40 of its posts chosen by `sample`, mean over seeds, against no forum labels.
EXPECTED_GAIN_40 = {"forum": "forum C (chat style), 40 posts chosen by uncertainty, weight 1 with length explained "
                             "away for rupture_type, mean of 3 seeds (forum D: about 0)",
                    "rupture_type": 0.045, "repair_outcome": 0.045, "therapist_response": 0.041,
                    "source": "docs/shift.md, docs/adaptation_length_forum_c.json"}
EXPECTED_GAIN_40_WEIGHT_ONLY = {"forum": "forum C (chat style), 40 posts chosen by uncertainty, weight 1, mean of 3 seeds",
                                "rupture_type": 0.023, "repair_outcome": 0.025, "therapist_response": 0.011,
                                "source": "docs/shift.md, docs/adaptation_length_forum_c.json"}


def adaptation_summary(cfg, extra: pd.DataFrame, weight: float, length_bins: list[int]) -> dict | None:
    """What the model learnt of the user's forum: the sheet's posts, the method, the gain to expect.
    ``length_bins``: the bins the fitted model explained length away with ([] when it did not)."""
    if extra.empty:
        return None
    binned = bool(length_bins) and cfg.adaptation.get("method", "weight") == "weight"
    return {"posts": int(len(extra)), "post_ids": extra["post_id"].astype(str).tolist(),
            "method": cfg.adaptation.get("method", "weight"), "weight": float(weight),
            "target_scale": float(cfg.adaptation.get("target_scale", 1.0)),
            "length_bins": list(length_bins),  # rupture_type fit with length explained away
            "expected_gain": EXPECTED_GAIN_40 if binned else EXPECTED_GAIN_40_WEIGHT_ONLY,
            "check": "measure it on posts of your forum the sheet does not hold: rupture-nlp evaluate --baseline-data"}
