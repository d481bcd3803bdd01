"""Evidence for `sample` + `train --extra`: does labelling a few posts of a new forum pay, and do
posts chosen by uncertainty teach more than posts chosen at random?

The "new forum" is the slice of the corpus written in a distinct style: the therapy-journal
blogging platform (writer batches 5 and 8: blog entries with readers' comments; see
data/provenance.csv). The base model never sees it: it is trained on the train split of the other
batches. For each seed the forum's threads are split into a pool (about 70%) and held-out posts
(about 30%); labels are "bought" from the pool 25 at a time, the way a team would work (sample 25,
label them, retrain, sample again), either by the model's uncertainty with diversity (the code of
`rupture-nlp sample`) or at random, and macro-F1 is measured on the held-out posts.

    python scripts/adaptation_experiment.py --seeds 5 > docs/adaptation_results.json
    python scripts/adaptation_experiment.py --forum data/adaptation/forum_c.csv --budgets 0,25,50,100,150 \
        > docs/adaptation_forum_c.json
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np
import pandas as pd
from sklearn.metrics import f1_score

from rupture_nlp.adapt import select, uncertainty
from rupture_nlp.config import load_config
from rupture_nlp.data import read_corpus
from rupture_nlp.labels import FACETS
from rupture_nlp.model import RuptureModel

sys.path.insert(0, str(Path(__file__).resolve().parent))
from adaptation_methods import split_forum  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
FORUM_BATCHES = {"batch_5", "batch_8"}
STEP = 25


CONFIG = load_config()


def fit(base: pd.DataFrame, extra: pd.DataFrame) -> RuptureModel:
    data = pd.concat([base, extra], ignore_index=True)
    domain = np.r_[np.zeros(len(base), bool), np.ones(len(extra), bool)]  # the sheet, as `train --extra` marks it
    return RuptureModel(CONFIG, cross_validate=False).fit(data["text"], data, groups=data["thread_id"], domain=domain)


def scores(model, held: pd.DataFrame) -> dict[str, float]:
    pred = model.predict(held["text"])
    return {f: float(f1_score(held[f], pred[f], average="macro", zero_division=0)) for f in FACETS}


def load_forum(which: str) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """(base training posts, the new forum's posts, the base's own test posts)."""
    corpus = read_corpus(ROOT / "data" / "posts.csv")
    if which == "blog":
        prov = pd.read_csv(ROOT / "data" / "provenance.csv", dtype=str)
        corpus = corpus.merge(prov[["post_id", "writer_batch"]], on="post_id")
        in_forum = corpus["writer_batch"].isin(FORUM_BATCHES)
        return (corpus[~in_forum & (corpus["split"] == "train")].reset_index(drop=True),
                corpus[in_forum].reset_index(drop=True), corpus[~in_forum & (corpus["split"] == "test")])
    forum = read_corpus(which)
    return (corpus[corpus["split"] == "train"].reset_index(drop=True), forum.reset_index(drop=True),
            corpus[corpus["split"] == "test"])


def run(seeds: int, budgets: list[int], which: str = "blog") -> dict:
    base, forum, out_of_forum_test = load_forum(which)
    base_model = fit(base, base.iloc[:0])
    rows = []
    for seed in range(seeds):
        rng = np.random.default_rng(seed)
        pool, held = split_forum(forum, rng)
        for strategy in ("uncertainty", "random"):
            chosen: list[int] = []
            model = base_model
            order = list(rng.permutation(len(pool))) if strategy == "random" else None
            for budget in budgets:
                while len(chosen) < min(budget, len(pool)):
                    take = min(STEP, budget - len(chosen), len(pool) - len(chosen))
                    remaining = [i for i in range(len(pool)) if i not in set(chosen)]
                    if strategy == "random":
                        chosen += [i for i in order if i not in set(chosen)][:take]
                    else:
                        rest = pool.iloc[remaining]
                        X = model.transform(rest["text"])
                        picked = select(X, uncertainty(model.proba_from_features(X)), take)
                        chosen += [remaining[i] for i in picked]
                    model = fit(base, pool.iloc[chosen])
                rows.append({"seed": seed, "strategy": strategy, "labelled": len(chosen),
                             "pool": len(pool), "held_out": len(held), **scores(model, held)})
                print(f"seed {seed} {strategy}: {len(chosen)} labelled", file=sys.stderr)
    frame = pd.DataFrame(rows)
    summary = frame.groupby(["strategy", "labelled"])[list(FACETS)].agg(["mean", "std"]).round(3)
    return {"forum": which, "base_train_posts": len(base), "forum_posts": len(forum),
            "base_model_on_other_test_posts": scores(base_model, out_of_forum_test),
            "runs": rows, "summary": {f"{s}|{n}": {f"{f}_{stat}": summary.loc[(s, n), (f, stat)]
                                                   for f in FACETS for stat in ("mean", "std")}
                                     for s, n in summary.index}}


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--seeds", type=int, default=5)
    ap.add_argument("--budgets", default="0,25,50,100,200")
    ap.add_argument("--forum", default="blog",
                    help='"blog" (writer batches 5 and 8 of the corpus) or a CSV of a new forum\'s labelled posts')
    args = ap.parse_args()
    result = run(args.seeds, [int(b) for b in args.budgets.split(",")], args.forum)
    print(json.dumps(result, indent=1, default=float))
    return 0


if __name__ == "__main__":
    sys.exit(main())
