"""Style measures of posts: how people write, apart from what they write about.

The measures are those of the project's realism yardstick (the style profile held against real
posts when the corpus is written): length, sentence length, how much a post narrates dialogue,
names feelings and the therapist, addresses the reader, quotes, counts, asks and exclaims. Here
they are per post, so that a forum can be compared with the training corpus (``rupture-nlp shift``).
"""

from __future__ import annotations

import re

import numpy as np
import pandas as pd

QUOTES = str.maketrans({"\u2019": "'", "\u2018": "'", "\u201c": '"', "\u201d": '"'})
WORD = re.compile(r"[a-z']+")
SENTENCE = re.compile(r"[.!?]+\s+")
GROUPS = {
    "dialogue verbs per 1,000 words": {"said", "asked", "told", "says", "asks", "tells", "replied"},
    "feeling words per 1,000 words": {"feel", "felt", "feeling", "feelings"},
    "therapy words per 1,000 words": {"therapist", "therapy", "counselor", "counsellor", "psychologist",
                                      "psychiatrist"},
    "second person per 1,000 words": {"you", "your", "you're", "yours"},
    "first person per 1,000 words": {"i", "me", "my", "i'm", "i've", "i'd", "i'll", "myself", "mine"},
    "hedges per 1,000 words": {"maybe", "perhaps", "just", "really", "probably", "kind", "sort"},
}
MEASURES = ["words per post", "words per sentence", *GROUPS, "has a quotation mark", "has a digit",
            "question marks", "exclamation marks", "paragraph breaks", "lower-case letters, share"]


def post_measures(texts) -> pd.DataFrame:
    """One row per post, one column per measure (rates per 1,000 words; counts per post)."""
    rows = []
    for text in texts:
        t = str(text).translate(QUOTES)
        words = WORD.findall(t.lower())
        n = max(len(words), 1)
        sentences = [len(s.split()) for s in SENTENCE.split(t) if s.strip()]
        letters = [c for c in t if c.isalpha()]
        row = {"words per post": len(words),
               "words per sentence": float(np.median(sentences)) if sentences else 0.0}
        for name, group in GROUPS.items():
            row[name] = 1000 * sum(w in group for w in words) / n
        row.update({"has a quotation mark": float('"' in t), "has a digit": float(bool(re.search(r"\d", t))),
                    "question marks": t.count("?"), "exclamation marks": t.count("!"),
                    "paragraph breaks": len(re.findall(r"\n\s*\n", t)),
                    "lower-case letters, share": sum(c.islower() for c in letters) / max(len(letters), 1)})
        rows.append(row)
    return pd.DataFrame(rows, columns=MEASURES, dtype=float)


def profile(measures: pd.DataFrame) -> dict[str, float]:
    """Corpus-level figures: medians for lengths, means for the rest."""
    return {m: float(measures[m].median() if m.startswith("words per") else measures[m].mean()) for m in MEASURES}


def compare(corpus: dict[str, float], forum: dict[str, float], top: int = 5) -> list[dict]:
    """The measures that differ most (by |log ratio|), largest first."""
    out = []
    for m in MEASURES:
        a, b = corpus.get(m, 0.0), forum.get(m, 0.0)
        ratio = (b + 1e-3) / (a + 1e-3)
        out.append({"measure": m, "corpus": a, "forum": b, "ratio": ratio})
    return sorted(out, key=lambda r: -abs(np.log(r["ratio"])))[:top]
