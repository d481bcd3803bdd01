"""The label specification (shared/labels.md v1.1): one source of truth for every module."""

from __future__ import annotations

import pandas as pd

NOT_APPLICABLE = "not_applicable"
SPEC_VERSION = "1.1"

FACETS: dict[str, tuple[str, ...]] = {
    "rupture_type": ("none", "withdrawal", "confrontation"),
    "repair_outcome": ("repaired", "unrepaired", "in_progress", NOT_APPLICABLE),
    "therapist_response": ("accountable", "boundary", "validating", "defensive", "unknown", NOT_APPLICABLE),
    "risk": ("none", "concern", "crisis"),
}
#: Facets that exist only when there is a rupture (not_applicable exactly when rupture_type is none).
DEPENDENT = ("repair_outcome", "therapist_response")

#: One-line definitions, for the annotator and for reports.
DEFINITIONS: dict[str, dict[str, str]] = {
    "rupture_type": {
        "none": "no strain with the author's own therapist (questions, good experiences, advice, other people)",
        "withdrawal": "moves away: goes quiet, hides it, says fine, avoids, skips or cancels, leaves without saying why",
        "confrontation": "moves against: says anger or hurt to the therapist, complains, argues, demands, attacks",
    },
    "repair_outcome": {
        "repaired": "talked through; the relationship is restored or stronger",
        "unrepaired": "stands now: failed or no attempts, dismissive therapist, therapy ended over it",
        "in_progress": "not known yet: plans to raise it, waiting, started talking, undecided",
        NOT_APPLICABLE: "no rupture",
    },
    "therapist_response": {
        "accountable": "apologises, acknowledges their part, names the mistake",
        "boundary": "holds a limit of the frame without apologising, stays open to feelings",
        "validating": "invites, explores and validates the feelings, no apology, no limit",
        "defensive": "denies, blames, dismisses, gets angry, retaliates or ends the work abruptly",
        "unknown": "no response told: not raised yet, or no answer has come",
        NOT_APPLICABLE: "no rupture",
    },
    "risk": {
        "none": "no mention of the author's own self-harm or suicide",
        "concern": "own self-harm or suicidal thoughts, urges or acts, past or present, no plan or intent now",
        "crisis": "intent, a plan, means at hand, a timeline, a goodbye, or harming themselves now",
    },
}


def labels_for(facet: str, *, with_na: bool = True) -> tuple[str, ...]:
    """The labels of a facet, optionally without not_applicable."""
    if facet not in FACETS:
        raise KeyError(f"unknown facet {facet!r}; facets are {', '.join(FACETS)}")
    labels = FACETS[facet]
    return labels if with_na else tuple(label for label in labels if label != NOT_APPLICABLE)


def invalid_label_rows(df: pd.DataFrame) -> dict[str, list[int]]:
    """Row positions whose label is not allowed, per facet present in ``df``."""
    out = {}
    for facet, allowed in FACETS.items():
        if facet in df.columns:
            bad = ~df[facet].isin(allowed)
            if bad.any():
                out[facet] = [int(i) for i in bad.to_numpy().nonzero()[0]]
    return out


def inconsistent_rows(df: pd.DataFrame) -> list[int]:
    """Row positions that break the rule: rupture_type none <=> not_applicable in both dependent facets."""
    none = df["rupture_type"].eq("none")
    bad = pd.Series(False, index=df.index)
    for facet in DEPENDENT:
        bad |= none != df[facet].eq(NOT_APPLICABLE)
    return [int(i) for i in bad.to_numpy().nonzero()[0]]


def label_given(values: pd.Series):
    """A mask (numpy) of the rows that carry a label: not missing and not blank (a sheet may leave risk empty)."""
    return values.notna().to_numpy() & values.astype(str).ne("").to_numpy()


def labels_present(facet: str, *columns) -> list[str]:
    """The facet's labels, in the codebook's order, that occur in any of ``columns`` (gold or
    predicted): the labels a macro-F1 averages over, so a label no post has or gets does not count 0."""
    seen = set().union(*(set(c) for c in columns))
    return [label for label in FACETS[facet] if label in seen]
