"""Sentences of a post with exact offsets into the original text, and how they are shown.

Every line break (LF, CRLF, CR, U+2028/9) ends a sentence; inside a line a sentence ends at . ! ? …
(or 。！？), repeated or mixed, with any closing quotes or brackets, before white space; a few
abbreviations do not end one. Offsets are Python string indices (Unicode code points). Lines quoted
from another post ("> ..." or "&gt; ...", the lines the normaliser drops) are marked as quotes.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from rupture_nlp.text import name_spans

LINE = re.compile(r"[^\r\n\u2028\u2029]+")
QUOTE_START = re.compile(r"[ \t]*(?:>|&gt;)")
# A sentence ends at . ! ? or … (repeated or mixed), with any closing quotes or brackets, before a space.
SENTENCE_END = re.compile(r"[.!?…。！？]+[\"'”’»)\]」』]*(?=\s|$)")
ABBREVIATIONS = {"dr", "mr", "mrs", "ms", "st", "vs", "etc", "e.g", "i.e", "approx", "appt", "prof", "no"}
ABBREVIATED = re.compile(r"(?<![\w.])[\w.]+$")
NAME_SHOWN = "[name]"


@dataclass(frozen=True)
class Sentence:
    start: int
    end: int
    quote: bool = False


def split_sentences(text: str) -> list[Sentence]:
    """Sentences and quoted lines of ``text`` in order; ``text[s.start:s.end]`` is the sentence, with
    no surrounding white space. Line breaks (LF, CRLF, CR) always end a sentence."""
    out = []
    for line in LINE.finditer(text):
        lo, hi = line.span()
        if QUOTE_START.match(text, lo):
            out.append(_trimmed(text, lo, hi, quote=True))
            continue
        start = lo
        for m in SENTENCE_END.finditer(text, lo, hi):
            if m.group() == ".":
                word = ABBREVIATED.search(text, max(start, m.start() - 8), m.start())
                if word and word.group().lower() in ABBREVIATIONS:
                    continue
            out.append(_trimmed(text, start, m.end()))
            start = m.end()
        out.append(_trimmed(text, start, hi))
    return [s for s in out if s is not None]


def _trimmed(text: str, lo: int, hi: int, quote: bool = False) -> Sentence | None:
    while lo < hi and text[lo].isspace():
        lo += 1
    while hi > lo and text[hi - 1].isspace():
        hi -= 1
    return Sentence(lo, hi, quote) if hi > lo else None


def shown(text: str, start: int, end: int, names: list[tuple[int, int]] | None = None) -> str:
    """``text[start:end]`` with names replaced by "[name]"."""
    names = name_spans(text) if names is None else names
    parts, at = [], start
    for a, b in names:
        if a >= start and b <= end:
            parts += [text[at:a], NAME_SHOWN]
            at = b
    return "".join(parts) + text[at:end]
