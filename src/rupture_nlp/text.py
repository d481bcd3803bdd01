"""Forum-aware text normalisation, a scikit-learn transformer.

Forum posts carry things that must not drive a label: lines quoted from the post being answered
(the replier's label is about the replier), links, names, and the therapist's gender. They also
carry shorthand ("my T", "pdoc", "sesh") that means the same as the long words.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

from sklearn.base import BaseEstimator, TransformerMixin

QUOTE_LINE = re.compile(r"^[ \t]*(>|&gt;).*$", re.MULTILINE)
URL = re.compile(r"(https?://|www\.)\S+", re.IGNORECASE)
# "T" alone, as forums write it for therapist: "my T", "T said", "T's office"; not "T-shirt".
LONE_T = re.compile(r"T(?<![\w\-'’]T)(?=['’]s\b|[^\w\-'’]|$)")
SHORTHAND = re.compile(r"(?=[psatw])\b(?:(p-?docs?)|(sesh(?:es)?)|(appts?)|(thx|thnx)|(w/o))\b", re.IGNORECASE)
SHORTHAND_WORDS = (None, "psychiatrist", "session", "appointment", "thanks", "without")  # by group number
SHORTHAND_CUES = ("doc", "sesh", "appt", "thx", "thnx", "w/o")
# One pass for the reflexives, the titles and the pronouns (group 1, 2 or 3); the lookahead lets the
# regular expression engine skip to the letters these words start with.
PRONOUN_WORDS = re.compile(r"(?=[hms])\b(?:(himself|herself)|(mr|mrs|ms|miss)|(he|she|him|her|his|hers))\b",
                           re.IGNORECASE)
PRONOUN_NEUTRAL = (None, "_pron_self", "_title_", "_pron_")  # by group number
# A capitalised word that does not start a sentence is most often a name: mask it so that who the
# therapist is cannot decide a label. Words that are capitalised for other reasons stay.
# (The capital comes first and the lookbehind after it, so the engine skips to capitals.)
NAME = re.compile(r"([A-Z](?<=[^\s.!?:\"“(\n][ \t][A-Z])[a-z]+(?:-[A-Z][a-z]+)?)\b")
KEEP_CAPITALISED = {"I", "Mum", "Mom", "Dad", "Mam", "God", "Christmas", "Edit", "Update", "Ok", "Okay"}
# A title and the name after it are one name ("Dr Okafor" masks as one placeholder, like "Sarah").
TITLED_NAME = re.compile(r"(?=[DP])\b(?:Dr|Doctor|Prof|Professor)\.?[ \t]+([A-Z][a-z]+(?:-[A-Z][a-z]+)?)\b")


def _inside_names(text: str) -> list[re.Match]:
    return [m for m in NAME.finditer(text) if m.group(1) not in KEEP_CAPITALISED]


def name_spans(text: str) -> list[tuple[int, int]]:
    """Where ``text`` holds a name, as (start, end), in order: a titled name ("Dr Okafor", title
    included), a capitalised word inside a sentence, and that same word wherever else it stands
    ("... told Sarah. Sarah said"). The one rule of name masking: the normaliser and the evidence
    display both use it."""
    titled = [m for m in TITLED_NAME.finditer(text)] if ("Dr" in text or "Doctor" in text or "Prof" in text) else []
    names = {m.group(1) for m in _inside_names(text)} | {m.group(1) for m in titled if m.group(1) not in KEEP_CAPITALISED}
    spans = [m.span() for m in titled]
    if names:
        spans += [s for s in _occurrences(text, names) if not any(a <= s[0] < b for a, b in spans[:len(titled)])]
    return sorted(spans)


def _is_word_char(c: str) -> bool:
    return c.isalnum() or c == "_"  # what the regular expression \w matches in a str


def _occurrences(text: str, words: set[str]) -> list[tuple[int, int]]:
    """Where any of ``words`` stands as a whole word, left to right without overlaps, the longest
    word first where two start at one place: what ``\b(?:longest|...|shortest)\b`` finds, without
    compiling a regular expression for every post."""
    found = []
    for word in words:
        at = text.find(word)
        while at >= 0:
            end = at + len(word)
            if (at == 0 or not _is_word_char(text[at - 1])) and (end == len(text) or not _is_word_char(text[end])):
                found.append((at, end))
            at = text.find(word, at + 1)
    found.sort(key=lambda s: (s[0], s[0] - s[1]))
    out, reach = [], 0
    for a, b in found:
        if a >= reach:
            out.append((a, b))
            reach = b
    return out


def mask_names_in(text: str) -> str:
    """``text`` with every name of :func:`name_spans` replaced by "_name_"."""
    spans = name_spans(text)
    if not spans:
        return text
    parts, at = [], 0
    for a, b in spans:
        parts += [text[at:a], "_name_"]
        at = b
    return "".join(parts) + text[at:]


def names_are_local(text: str) -> bool:
    """True when every name mask of ``text`` stands on its own occurrence: no capitalised word is
    masked only because the same word stands inside a sentence elsewhere (or after a title). Then
    deleting a sentence changes the masks of that sentence only."""
    return name_spans(text) == [m.span(1) for m in _inside_names(text)]


PRONOUN_MODES = ("neutral", "drop", "keep")


def normalise(text: str, *, drop_quotes: bool = True, shorthand: bool = True, mask_urls: bool = True,
              mask_names: bool = True, pronouns: str = "neutral") -> str:
    """Normalise one post; each step can be switched off for ablations.

    ``pronouns``: "neutral" replaces he/she/him/her/his/hers (and titles) by one placeholder, "drop"
    removes them, "keep" leaves them; the first two make the therapist's gender invisible.
    """
    # Cheap substring tests skip a regular expression that cannot match (most posts have no quote,
    # link or shorthand); they change no result.
    if drop_quotes and (">" in text or "&gt;" in text):
        text = QUOTE_LINE.sub(" ", text)
    lowered = text.lower()
    if mask_urls and ("http" in lowered or "www." in lowered):
        text = URL.sub(" _url_ ", text)
    if shorthand:
        if "T" in text:
            text = LONE_T.sub("therapist", text)
        if any(cue in lowered for cue in SHORTHAND_CUES):
            text = SHORTHAND.sub(lambda m: SHORTHAND_WORDS[m.lastindex], text)
    if mask_names:
        text = mask_names_in(text)
    if pronouns == "neutral":
        text = PRONOUN_WORDS.sub(lambda m: PRONOUN_NEUTRAL[m.lastindex], text)
    elif pronouns == "drop":
        text = PRONOUN_WORDS.sub(" ", text)
    elif pronouns != "keep":
        raise ValueError(f"pronouns must be one of {PRONOUN_MODES}, not {pronouns!r}")
    return text


class ForumNormaliser(TransformerMixin, BaseEstimator):
    """Stateless transformer applying :func:`normalise` to each text."""

    def __init__(self, drop_quotes=True, shorthand=True, mask_urls=True, mask_names=True, pronouns="neutral"):
        self.drop_quotes = drop_quotes
        self.shorthand = shorthand
        self.mask_urls = mask_urls
        self.mask_names = mask_names
        self.pronouns = pronouns

    def fit(self, X, y=None):
        self.n_features_in_ = 1
        return self

    def transform(self, X: Iterable[str]) -> list[str]:
        options = self.get_params()
        return [normalise(str(x), **options) for x in X]

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.string = True
        tags.input_tags.two_d_array = False
        tags.requires_fit = False
        return tags
