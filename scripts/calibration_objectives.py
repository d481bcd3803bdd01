"""Refit the covariate temperature of a trained model under other objectives, from its stored
out-of-fold predictions (nothing is retrained), and score each on the test split, forum C and D.

Objectives (per facet, the same three parameters a, b_distance, b_length of ood.py):
- ``mean``: the mean log loss over the held-out posts (what `train` does; reproduces the manifest);
- ``worst batches``: the log loss of the writer batches the model does worst on, taken from the
  worst down until they hold a third of the held-out posts (a conditional value at risk over
  batches): the temperature a new forum gets if it is as hard as our hardest writers. risk keeps the
  mean fit, as in `train` (its crisis threshold is chosen for recall on the same posts).

    python scripts/calibration_objectives.py [--model models/default] [--shares 1/4,1/3,1/2] [--out FILE]
"""

from __future__ import annotations

import argparse
import json
import sys
from fractions import Fraction
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

from rupture_nlp.data import read_corpus  # noqa: E402
from rupture_nlp.evaluate import calibration_scores  # noqa: E402
from rupture_nlp.labels import DEPENDENT, FACETS  # noqa: E402
from rupture_nlp.model import fit_calibration  # noqa: E402
from rupture_nlp.ood import covariates  # noqa: E402
from rupture_nlp.persist import load_model  # noqa: E402
from rupture_nlp.train import cv_groups  # noqa: E402


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", default=str(ROOT / "models" / "default"))
    ap.add_argument("--out", default=None)
    ap.add_argument("--shares", default="1/3", help="worst shares of the posts to try (comma-separated): the "
                    "default is the one fixed before the first run; others show how much the result moves")
    args = ap.parse_args()
    model = load_model(args.model)
    corpus = read_corpus(ROOT / "data" / "posts.csv")
    train = corpus[corpus["split"] == "train"].reset_index(drop=True)
    if len(train) != len(model.oof_distance_):
        sys.exit("the model was not trained on the bundled train split alone (an --extra sheet?)")
    groups, unit = cv_groups(ROOT / "data" / "posts.csv", train, train.iloc[:0], "writer_batch")
    nnz = model.transform(train["text"], columns=True).getnnz(axis=1)
    z = covariates(model.oof_distance_, nnz, model.covariate_center_)
    rupture = train["rupture_type"].ne("none").to_numpy()
    rows = {f: rupture if f in DEPENDENT else np.ones(len(train), bool) for f in FACETS}
    labels = {f: train[f].to_numpy() for f in FACETS}
    sets = {"test": corpus[corpus["split"] == "test"].reset_index(drop=True)}
    for forum in ("c", "d"):
        sets[f"forum {forum.upper()}"] = read_corpus(ROOT / "data" / "adaptation" / f"forum_{forum}.csv")
    features = {name: model.transform(df["text"], columns=True) for name, df in sets.items()}
    stored = {f: np.asarray(model.calibration_params_[f], dtype=float).copy() for f in FACETS}
    result = {"folds": unit, "objectives": {}}
    shares = [float(Fraction(x)) for x in args.shares.split(",")]
    for objective, share in [("mean", None)] + [(f"worst batches, {x:.3g} of the posts", x) for x in shares]:
        params = fit_calibration(model.oof_logits_, labels, rows, model.classes_, z,
                                 groups=None if share is None else groups, worst_share=share or 1.0)
        model.calibration_params_ = dict(params)
        scores = {name: {f: round(v["ece_after"], 3) for f, v in calibration_scores(model, features[name], df).items()}
                  for name, df in sets.items()}
        result["objectives"][objective] = {"params": {f: [round(float(x), 3) for x in p] for f, p in params.items()},
                                           "ece_calibrated": scores}
        print(objective, json.dumps(scores))
    model.calibration_params_ = stored
    text = json.dumps(result, indent=2)
    if args.out:
        Path(args.out).write_text(text + "\n")
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
