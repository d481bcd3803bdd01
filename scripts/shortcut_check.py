"""The shortcut check of the datasheet: a unigram model's top words per class.

Fits TfidfVectorizer(unigrams) + LogisticRegression on all posts of data/posts.csv for each facet
and prints the 30 words that weigh most for each class. Words that mark a class only because of how
the corpus was written (not because of what the story says) are artifacts to fix in the writing.

    python scripts/shortcut_check.py [data/posts.csv] [--top 30]
"""

from __future__ import annotations

import argparse

import numpy as np
import pandas as pd
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.linear_model import LogisticRegression

from rupture_nlp.labels import FACETS


def top_words(df: pd.DataFrame, facet: str, top: int) -> dict[str, list[str]]:
    rows = df if facet in ("rupture_type", "risk") else df[df["rupture_type"] != "none"]
    vec = TfidfVectorizer(min_df=3, sublinear_tf=True)
    X = vec.fit_transform(rows["text"])
    clf = LogisticRegression(C=4, class_weight="balanced", max_iter=2000).fit(X, rows[facet])
    names = vec.get_feature_names_out()
    coef = clf.coef_ - clf.coef_.mean(axis=0)
    return {label: list(names[np.argsort(-coef[k])[:top]]) for k, label in enumerate(clf.classes_)}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("data", nargs="?", default="data/posts.csv")
    ap.add_argument("--top", type=int, default=30)
    args = ap.parse_args()
    df = pd.read_csv(args.data, dtype=str, keep_default_na=False)
    for facet in FACETS:
        for label, words in top_words(df, facet, args.top).items():
            print(f"{facet}/{label}: {', '.join(words)}")


if __name__ == "__main__":
    main()
