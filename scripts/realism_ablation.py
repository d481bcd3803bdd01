"""Model changes for long reflective posts, judged out of distribution (forum C and forum D).

Each variant is trained on the train split of data/posts.csv and scored (macro-F1) on the test split,
forum C and forum D; a change is kept only if it helps out of distribution.

    python scripts/realism_ablation.py > docs/realism_ablation.json
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from sklearn.metrics import f1_score

from rupture_nlp.config import load_config
from rupture_nlp.data import read_corpus
from rupture_nlp.labels import FACETS
from rupture_nlp.model import RuptureModel

ROOT = Path(__file__).resolve().parents[1]
FOCUS = {"tfidf__focus": "on", "tfidf__focus__tfidf__ngram_range": [1, 2], "tfidf__focus__tfidf__min_df": 2,
         "tfidf__focus__tfidf__sublinear_tf": True}
VARIANTS = {
    "default": {},
    "+ word n-grams of the therapist sentences": {**FOCUS, "tfidf__focus__select__mode": "therapist"},
    "+ word n-grams of the last half of the post": {**FOCUS, "tfidf__focus__select__mode": "late"},
    "word 1-3-grams": {"tfidf__word__ngram_range": [1, 3]},
}


def main() -> int:
    corpus = read_corpus(ROOT / "data" / "posts.csv")
    train = corpus[corpus["split"] == "train"].reset_index(drop=True)
    sets = {"test": corpus[corpus["split"] == "test"],
            "forum_c": read_corpus(ROOT / "data" / "adaptation" / "forum_c.csv"),
            "forum_d": read_corpus(ROOT / "data" / "adaptation" / "forum_d.csv")}
    base = load_config()
    out = {}
    for name, change in VARIANTS.items():
        cfg = base.with_overrides(pipeline={**base.pipeline, **change})
        model = RuptureModel(cfg, cross_validate=False).fit(train["text"], train, groups=train["thread_id"])
        row = {}
        for label, test in sets.items():
            pred = model.predict(test["text"])
            row[label] = {f: round(float(f1_score(test[f], pred[f], average="macro")), 4) for f in list(FACETS)[:3]}
        row["out_of_distribution_mean"] = round(sum(v for s in ("forum_c", "forum_d") for v in row[s].values()) / 6, 4)
        out[name] = row
        print(name, row, file=sys.stderr)
    print(json.dumps({"train_posts": len(train), "variants": out}, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
