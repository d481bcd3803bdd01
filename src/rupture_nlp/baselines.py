"""Baselines trained in the same run as every evaluation: majority class, codebook keyword rules,
and scikit-learn's plain TfidfVectorizer() + LogisticRegression() with default settings."""

from __future__ import annotations

import re

import numpy as np
import pandas as pd
from sklearn.dummy import DummyClassifier
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline

from rupture_nlp.labels import DEPENDENT, FACETS, NOT_APPLICABLE


def _rx(*patterns: str) -> re.Pattern:
    return re.compile("|".join(patterns), re.IGNORECASE)


# Rules written from the codebook's definitions, checked in order; the first match wins.
KEYWORD_RULES: dict[str, list[tuple[str, re.Pattern]]] = {
    "risk": [
        ("crisis", _rx(r"\bgoodbye\b", r"\bi have a plan\b", r"\bmy plan\b", r"won'?t be around",
                       r"\bend(ing)? it (all|tonight)\b", r"\btonight\b.*\b(end|die)\b", r"\bnote\b.*\b(left|wrote|written)\b")),
        ("concern", _rx(r"suicid", r"self[- ]?harm", r"\bsh\b", r"\bcut(ting)?\b", r"\burges?\b",
                        r"want(ed)? to die", r"kill myself", r"overdos")),
    ],
    "rupture_type": [
        ("confrontation", _rx(r"\b(yelled|shouted|snapped|swore)\b", r"\bcomplain", r"\bargued?\b",
                              r"\bconfront", r"\bdemand", r"\bi was (so )?(angry|furious|pissed)\b",
                              r"told (him|her|them) (that )?(i was|i'm|it) (angry|hurt|upset|not ok)",
                              r"called (him|her|them) out", r"how dare")),
        ("withdrawal", _rx(r"\bcancel", r"\bskip", r"no[- ]show", r"\bghost", r"(said|told \w+) i was fine",
                           r"\bpretend", r"(didn'?t|did not|haven'?t|have not|never) (tell|told|say|said|mention)",
                           r"\bavoid", r"went quiet", r"shut down", r"stopped (going|replying|answering)")),
    ],
    "repair_outcome": [
        ("unrepaired", _rx(r"\bquit\b", r"terminat", r"never went back", r"stopped seeing", r"new (therapist|t)\b",
                           r"(find|found|looking for) (a )?new", r"\bdone with\b", r"\bended (therapy|it|things)\b")),
        ("repaired", _rx(r"we'?re (good|ok|okay|fine)", r"talked it (all )?through", r"\bcloser\b", r"\bstronger\b",
                         r"\brepair", r"glad i (said|told|went back)", r"better now")),
    ],
    "therapist_response": [
        ("accountable", _rx(r"apologi[sz]", r"said (she|he|they) (was|were) sorry", r"\badmitted\b",
                            r"(her|his|their) mistake", r"took responsibility")),
        ("defensive", _rx(r"defensive", r"dismiss", r"blamed me", r"overreact", r"got (angry|annoyed|irritated)",
                          r"discharged")),
        ("boundary", _rx(r"boundar", r"\bpolicy\b", r"between sessions", r"out of hours", r"\blimits?\b")),
        ("validating", _rx(r"glad (i|you) (came|told|said)", r"\bwelcom", r"\bvalidat", r"made sense",
                           r"asked (me )?what")),
    ],
}
FALLBACK = {"risk": "none", "rupture_type": "none", "repair_outcome": "in_progress",
            "therapist_response": "unknown"}


def keyword_predict(texts) -> pd.DataFrame:
    """Label posts with the keyword rules; the consistency rule holds by construction."""
    rows = []
    for text in texts:
        row = {}
        for facet in ("risk", "rupture_type", "repair_outcome", "therapist_response"):
            row[facet] = next((label for label, rx in KEYWORD_RULES[facet] if rx.search(text)), FALLBACK[facet])
        if row["rupture_type"] == "none":
            for facet in DEPENDENT:
                row[facet] = NOT_APPLICABLE
        rows.append(row)
    return pd.DataFrame(rows, columns=list(FACETS))


def fit_predict_baselines(train: pd.DataFrame, test_texts, seed: int = 0) -> dict[str, pd.DataFrame]:
    """Fit the majority and plain baselines on ``train`` and label ``test_texts`` with all three."""
    test_texts = list(test_texts)
    out = {"majority": {}}
    for facet in FACETS:
        y = train[facet].to_numpy()
        majority = DummyClassifier(strategy="most_frequent").fit(np.zeros((len(y), 1)), y)
        out["majority"][facet] = majority.predict(np.zeros((len(test_texts), 1)))
    out["plain_tfidf_lr"] = {f: p.predict(test_texts) for f, p in plain_pipelines(train, seed).items()}
    result = {name: pd.DataFrame(cols)[list(FACETS)] for name, cols in out.items()}
    result["keyword_rules"] = keyword_predict(test_texts)
    return result


def plain_pipelines(train: pd.DataFrame, seed: int = 0) -> dict:
    """The plain default pipeline per facet, fitted (used by the benchmark)."""
    return {f: make_pipeline(TfidfVectorizer(), LogisticRegression(random_state=seed)).fit(train["text"], train[f])
            for f in FACETS}
