"""Property-based tests (Hypothesis) of the readers and the HTML writer.

Readers, over arbitrary bytes and over well-formed files: either the rows pandas reads, or one
InputError; never another exception. The HTML page: no text of a post opens a tag or an attribute.
"""

from __future__ import annotations

import csv
import io
import re
import tempfile
from html.parser import HTMLParser
from pathlib import Path

import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from rupture_nlp.data import InputError, InputSpec, read_all, read_csv_strict

pytestmark = pytest.mark.code

FUZZ = settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
# Characters that matter to the readers, mixed with any text.
TRICKY = st.sampled_from([",", '"', "\n", "\r", "\r\n", "\ufeff", "\x00", "{", "}", ":", "[", "]", " ", "\t",
                          "é", "\u2028", "\\", "'", "text", "a", "1"])
TRICKY_TEXT = st.lists(st.one_of(TRICKY, st.text(max_size=5)), max_size=30).map("".join)
RAW = st.one_of(st.binary(max_size=300), TRICKY_TEXT.map(lambda s: s.encode("utf-8")),
                TRICKY_TEXT.map(lambda s: ("text\n" + s).encode("utf-8")),
                TRICKY_TEXT.map(lambda s: s.encode("utf-8", "surrogatepass") + b"\xe9\x81\xff"))
POST = st.text(st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00"), min_size=1,
               max_size=60).filter(lambda s: re.search(r"[^\W\d_]", s))


def _write(data: bytes, suffix: str) -> Path:
    fh = tempfile.NamedTemporaryFile(suffix=suffix, delete=False)
    fh.write(data)
    fh.close()
    return Path(fh.name)


def _read_or_input_error(func, *args):
    try:
        return func(*args)
    except InputError as exc:
        assert str(exc) and "\n" not in str(exc).strip(), str(exc)
        return None


@FUZZ
@given(RAW)
def test_csv_reader_on_any_bytes(data):
    path = _write(data, ".csv")
    try:
        ours = _read_or_input_error(read_csv_strict, path)
        if ours is None:
            return
        try:
            theirs = pd.read_csv(path, dtype=str, keep_default_na=False, encoding="utf-8")
        except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError, ValueError):
            return  # pandas cannot read it; we could: nothing to compare
        if list(theirs.columns) == list(ours.columns):
            assert theirs.to_numpy().tolist() == ours.to_numpy().tolist()
    finally:
        path.unlink()


@FUZZ
@given(RAW, st.sampled_from([".csv", ".jsonl", ".txt", ""]))
def test_post_reader_on_any_bytes(data, suffix):
    path = _write(data, suffix)
    try:
        result = _read_or_input_error(read_all, InputSpec(path=str(path), skip_invalid=True, batch_size=3))
        if result is not None:
            assert list(result.columns) == ["row", "id", "text"] and all(isinstance(t, str) for t in result["text"])
    finally:
        path.unlink()


@FUZZ
@given(st.lists(st.tuples(POST, st.text(st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00"),
                                        max_size=10)), min_size=1, max_size=8),
       st.sampled_from(["\n", "\r\n"]), st.booleans())
def test_well_formed_csv_reads_as_pandas_reads(rows, eol, bom):
    # Well-formed: a field holding a line break is quoted (csv quotes only the terminator's characters).
    frame = pd.DataFrame(rows, columns=["text", "note"])
    data = frame.to_csv(index=False, lineterminator=eol, quoting=csv.QUOTE_ALL).encode("utf-8")
    path = _write((b"\xef\xbb\xbf" if bom else b"") + data, ".csv")
    try:
        theirs = pd.read_csv(path, dtype=str, keep_default_na=False, encoding="utf-8-sig")
        ours = read_csv_strict(path)
        assert list(ours.columns) == list(theirs.columns)
        assert ours.to_numpy().tolist() == theirs.to_numpy().tolist()
        posts = read_all(InputSpec(path=str(path)))
        assert posts["text"].tolist() == theirs["text"].tolist()
    finally:
        path.unlink()


@FUZZ
@given(st.lists(POST, min_size=1, max_size=8), st.booleans(), st.booleans())
def test_well_formed_jsonl_reads_as_pandas_reads(texts, bom, trailing_commas):
    buffer = io.StringIO()
    pd.DataFrame({"text": texts}).to_json(buffer, orient="records", lines=True, force_ascii=False)
    theirs = pd.read_json(io.StringIO(buffer.getvalue()), lines=True, dtype=False)["text"].tolist()
    body = buffer.getvalue()
    if trailing_commas:
        body = "".join(line + ",\n" for line in body.split("\n") if line)
    path = _write((b"\xef\xbb\xbf" if bom else b"") + body.encode("utf-8"), ".jsonl")
    try:
        assert read_all(InputSpec(path=str(path)))["text"].tolist() == theirs
    finally:
        path.unlink()


@FUZZ
@given(st.lists(POST.filter(lambda s: not re.search(r"[\r\n]", s)), min_size=1, max_size=8),
       st.sampled_from(["\n", "\r\n", "\r"]))
def test_well_formed_text_file_is_one_post_a_line(texts, eol):
    path = _write(eol.join(texts).encode("utf-8"), ".txt")
    try:
        ours = read_all(InputSpec(path=str(path), skip_invalid=True))["text"].tolist()
        assert ours == [t for t in texts if t.strip() and re.search(r"[^\W\d_]", t)]
    finally:
        path.unlink()


@FUZZ
@given(RAW)
def test_annotation_sheet_reader_on_any_bytes(data):
    from rupture_nlp.adapt import read_sheet
    from rupture_nlp.annotate import Annotator

    header = b"post_id,text,rupture_type,repair_outcome,therapist_response,risk,note\n"
    for content in (data, header + data):
        path = _write(content, ".csv")
        try:
            _read_or_input_error(read_sheet, path)
            _read_or_input_error(Annotator, path, lambda: "q", lambda text: None)
        finally:
            path.unlink()


# ------------------------------------------------------------------------------------------- HTML
HOSTILE = st.one_of(
    st.sampled_from(['<script>alert(1)</script>', '"><img src=x onerror=alert(1)>', "' onmouseover='x",
                     "</details><b>", "<!--", "]]>", "&lt;script&gt;", "<a href=javascript:x>", "\u2028<", "`${x}`"]),
    st.text(alphabet=st.sampled_from(list("<>\"'&=/ abc;!-")), max_size=40))


class _Tags(HTMLParser):
    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.tags: list[tuple[str, tuple[str, ...]]] = []
        self.attr_values: list[tuple[str, str]] = []

    def handle_starttag(self, tag, attrs):
        self.tags.append((tag, tuple(name for name, _ in attrs)))
        self.attr_values += [(name, value or "") for name, value in attrs]


def _queue(values: list[str]) -> pd.DataFrame:
    cycle = (values * 12)[:12]
    return pd.DataFrame([{
        "priority": cycle[0], "model_priority": cycle[1], "confidence": 0.5, "thread_id": cycle[2], "n_posts": 2,
        "rupture_type": cycle[3], "repair_outcome": cycle[4], "therapist_response": cycle[5], "risk": cycle[6],
        "reasons": f"{cycle[7]}; {cycle[8]}", "opening_author": cycle[9], "opening_text": cycle[10] + cycle[11],
    }])


@FUZZ
@given(st.lists(HOSTILE, min_size=1, max_size=12))
def test_no_post_text_opens_a_tag_or_attribute(values):
    from rupture_nlp.triage import render_html

    hostile, benign = _Tags(), _Tags()
    hostile.feed(render_html(_queue(values)))
    benign.feed(render_html(_queue(["x"])))
    assert hostile.tags == benign.tags  # the same tags with the same attribute names, in the same order
    allowed = {"lang": "en", "charset": "utf-8", "class": None, "style": None}
    for name, value in hostile.attr_values:
        assert name in allowed and (allowed[name] is None or value == allowed[name])
        assert not re.search(r"[<>\"']|javascript:|on\w+=", value), value
