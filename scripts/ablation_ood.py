"""Feature ablations measured out of distribution: train on the train split of every writer batch
but the blog platform (batches 5 and 8), test on all blog posts and on forum C (data/adaptation),
forum styles the model never saw.
In-distribution cross-validation cannot see a shortcut that the whole corpus shares; a distinct
forum can show some of them. Rerun:

    python scripts/ablation_ood.py > docs/ablation_ood.json
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pandas as pd
from sklearn.metrics import f1_score

from rupture_nlp.config import load_config
from rupture_nlp.data import read_corpus
from rupture_nlp.labels import FACETS
from rupture_nlp.model import RuptureModel

ROOT = Path(__file__).resolve().parents[1]
FORUM_BATCHES = {"batch_5", "batch_8"}
VARIANTS = {
    "default": {},
    "no character n-grams": {"tfidf__char": "drop"},
    "word 1-3-grams": {"tfidf__word__ngram_range": [1, 3]},
    "keep quoted lines": {"normalise__drop_quotes": False},
    "no name masking": {"normalise__mask_names": False},
    "pronouns kept as they are": {"normalise__pronouns": "keep"},
    "pronouns dropped": {"normalise__pronouns": "drop"},
    "no shorthand expansion": {"normalise__shorthand": False},
}


def main() -> int:
    corpus = read_corpus(ROOT / "data" / "posts.csv")
    prov = pd.read_csv(ROOT / "data" / "provenance.csv", dtype=str)
    corpus = corpus.merge(prov[["post_id", "writer_batch"]], on="post_id")
    blog = corpus["writer_batch"].isin(FORUM_BATCHES)
    train = corpus[~blog & (corpus["split"] == "train")]
    test_in = corpus[~blog & (corpus["split"] == "test")]
    test_out = corpus[blog]
    forum_c = read_corpus(ROOT / "data" / "adaptation" / "forum_c.csv")
    base = load_config()
    out = {}
    for name, change in VARIANTS.items():
        cfg = base.with_overrides(pipeline={**base.pipeline, **change})
        model = RuptureModel(cfg, cross_validate=False).fit(train["text"], train, groups=train["thread_id"])
        row = {}
        for label, test in (("in_distribution", test_in), ("blog_forum", test_out), ("forum_c", forum_c)):
            pred = model.predict(test["text"])
            row[label] = {f: round(float(f1_score(test[f], pred[f], average="macro")), 4) for f in FACETS}
        out[name] = row
        print(name, row, file=sys.stderr)
    print(json.dumps({"train_posts": len(train), "in_distribution_test_posts": len(test_in),
                      "blog_forum_posts": len(test_out), "forum_c_posts": len(forum_c), "variants": out}, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
