"""Why a label: the words of a post that pushed it most, read from the linear model.

For a facet and its chosen label k, a feature's contribution is x_j * (w_kj - mean_c w_cj): its
value in the post times how much it favours k over the average class. Word n-grams are phrases as
they are; a character n-gram's contribution is shared among the words of the post that contain it,
so that every part of the decision is credited to words the moderator can read.
"""

from __future__ import annotations

import re

import numpy as np

from rupture_nlp.labels import DEPENDENT, FACETS, NOT_APPLICABLE

TOKEN = re.compile(r"\w\w+")
#: How the normaliser's placeholders are shown in reasons.
DISPLAY = {"_pron_": "[he/she]", "_pron_self": "[himself/herself]", "_name_": "[name]", "_url_": "[link]",
           "_title_": "[title]"}


def display(phrase: str) -> str:
    return " ".join(DISPLAY.get(w, w) for w in phrase.split())


class Explainer:
    """Explains a fitted :class:`~rupture_nlp.model.RuptureModel` (built once, reused per batch)."""

    def __init__(self, model):
        self.model = model
        union = model.features_.named_steps["tfidf"]
        self.normalise = model.features_.named_steps["normalise"]
        self.offsets = {}
        start = 0
        names = union.get_feature_names_out()
        for name, transformer in union.transformer_list:
            if transformer == "drop":
                continue
            size = len(transformer.vocabulary_)
            self.offsets[name] = (start, start + size, transformer)
            start += size
        self.names = np.array([n.split("__", 1)[1] for n in names], dtype=object)
        self.is_char = np.zeros(len(names), bool)
        if "char" in self.offsets:
            lo, hi, _ = self.offsets["char"]
            self.is_char[lo:hi] = True

    def _char_features_of(self, word: str) -> list[int]:
        """Columns (in the union's numbering) of the character n-grams a word contains."""
        lo, _, vec = self.offsets["char"]
        return sorted({lo + int(j) for j in vec.word_feature_ids(word)})

    def direction(self, facet: str, label: str) -> np.ndarray:
        clf = self.model.classifiers_[facet]
        coef = clf.coef_ if clf.coef_.shape[0] > 1 else np.vstack([-clf.coef_[0] / 2, clf.coef_[0] / 2])
        k = list(clf.classes_).index(label)
        return coef[k] - coef.mean(axis=0)

    def phrases(self, text: str, x_row, facet: str, label: str, n: int) -> list[tuple[str, float]]:
        """The ``n`` phrases of one post that pushed ``label`` most (positive contributions only)."""
        if n <= 0 or label == NOT_APPLICABLE or label not in self.model.classifiers_[facet].classes_:
            return []
        d = self.direction(facet, label)
        idx, vals = x_row.indices, x_row.data
        contrib = vals * d[idx]
        scores: dict[str, float] = {}
        word_mask = ~self.is_char[idx]
        for j, c in zip(idx[word_mask], contrib[word_mask]):
            scores[self.names[j]] = scores.get(self.names[j], 0.0) + float(c)
        if "char" in self.offsets and (~word_mask).any():
            char_contrib = dict(zip(idx[~word_mask], contrib[~word_mask]))
            words = [w for w in self.normalise.transform([text])[0].lower().split() if TOKEN.search(w)]
            holders: dict[int, list[str]] = {}
            for w in set(words):
                for j in self._char_features_of(w):
                    if j in char_contrib:
                        holders.setdefault(j, []).append(w)
            for j, ws in holders.items():
                share = float(char_contrib[j]) / len(ws)
                for w in ws:
                    key = " ".join(TOKEN.findall(w)) or w
                    scores[key] = scores.get(key, 0.0) + share
        ranked = sorted(((p, s) for p, s in scores.items() if s > 0), key=lambda t: -t[1])
        return [(display(p), round(s, 4)) for p, s in ranked[:n]]

    def explain(self, texts: list[str], X, labels, n: int) -> list[dict[str, list[tuple[str, float]]]]:
        """Per post, per facet: the phrases behind its predicted label."""
        X = X.tocsr()
        out = []
        for i, text in enumerate(texts):
            row = X.getrow(i)
            per = {}
            for facet in FACETS:
                label = labels[facet].iloc[i]
                if facet in DEPENDENT and label == NOT_APPLICABLE:
                    per[facet] = []
                    continue
                per[facet] = self.phrases(text, row, facet, label, n)
            out.append(per)
        return out
