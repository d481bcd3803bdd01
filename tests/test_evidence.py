"""Sentence evidence: exact offsets, the fast route against the variant texts, faithfulness, display."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner

from rupture_nlp.cli import main
from rupture_nlp.evidence import EvidenceScorer, evidence_of, shown, split_sentences
from rupture_nlp.labels import DEPENDENT, FACETS, NOT_APPLICABLE
from rupture_nlp.triage import render_post

TRICKY = ("Ma thérapeute m’a dit « non ». J’étais furieuse 😡! Then I left…\r\n"
          "> She said: you always do this.\r\n"
          "&gt; quoted the old way too\n"
          "Dr. Okafor said “it’s fine.” It wasn’t?! 🙃🙃\r"
          "   last line without a full stop   \n\n"
          "naïve café crème, ok. 家に帰りたい。")


@pytest.mark.code
def test_offsets_map_back_to_the_original_text_exactly():
    found = split_sentences(TRICKY)
    for s in found:
        piece = TRICKY[s.start:s.end]
        assert piece and piece == piece.strip() and not any(c in piece for c in "\r\n")
    texts = [(TRICKY[s.start:s.end], s.quote) for s in found]
    assert texts == [
        ("Ma thérapeute m’a dit « non ».", False), ("J’étais furieuse 😡!", False), ("Then I left…", False),
        ("> She said: you always do this.", True), ("&gt; quoted the old way too", True),
        ("Dr. Okafor said “it’s fine.”", False), ("It wasn’t?!", False), ("🙃🙃", False),
        ("last line without a full stop", False), ("naïve café crème, ok.", False), ("家に帰りたい。", False)]
    assert [s.start for s in found] == sorted(s.start for s in found)
    assert split_sentences("") == [] and split_sentences(" \r\n\t ") == []


@pytest.mark.code
def test_names_stay_masked_when_shown():
    text = "I told Okafor I was upset. She said Priya would cover. I'm fine."
    s = split_sentences(text)
    assert shown(text, s[0].start, s[0].end) == "I told [name] I was upset."
    assert shown(text, s[1].start, s[1].end) == "She said [name] would cover."
    html = render_post(text, [{"facet": "risk", "label": "concern", "start": s[2].start, "end": s[2].end,
                               "share": 1.0}])
    assert "Okafor" not in html and "Priya" not in html
    assert '<mark class="facet-risk"' in html and "I&#x27;m fine.</mark>" in html
    hostile = "<script>alert(1)</script> I quit. > <b>quoted</b>"
    page = render_post(hostile, [{"facet": "rupture_type", "label": "x", "start": 0, "end": 7, "share": 0.5}])
    assert "<script" not in page and "<b>" not in page


@pytest.fixture(scope="module")
def test_posts(corpus):
    return corpus[corpus["split"] == "test"].reset_index(drop=True)


@pytest.mark.model
def test_fast_route_equals_leaving_each_sentence_out_of_the_text(model, test_posts):
    texts = test_posts["text"].head(60).tolist() + [TRICKY, "One sentence only.", "> only a quote"]
    fast, plain = EvidenceScorer(model), EvidenceScorer(model, exact_only=True)
    assert fast.fast and not plain.fast
    a, b = evidence_of(model, texts, 50, fast), evidence_of(model, texts, 50, plain)
    for x, y in zip(a, b):
        for f in FACETS:
            assert len(x[f]) == len(y[f]) and np.allclose([e.score for e in x[f]], [e.score for e in y[f]], atol=2e-4)
    assert a[-1] == {f: [] for f in FACETS}
    assert fast.fallbacks < len(texts) * 0.2
    X, prepared = fast.features(texts)
    assert abs(X - model.transform(texts)).max() < 1e-12  # the features built from the sentences are the model's
    assert sum(r is None for r in prepared["rows"]) >= 2  # TRICKY (a name mask after a closing quote), the quote


@pytest.mark.model
def test_evidence_is_what_the_label_loses_without_it(model, test_posts):
    texts = test_posts["text"].head(30).tolist()
    labels = model.predict(texts)
    for i, per in enumerate(evidence_of(model, texts, 3)):
        for f in FACETS:
            found = per[f]
            if f in DEPENDENT and labels[f].iat[i] == NOT_APPLICABLE:
                assert found == []
                continue
            assert len(found) <= 3 and all(e.log_odds > 0 and e.score >= 0 and 0 <= e.share <= 1 for e in found)
            assert [e.score for e in found] == sorted((e.score for e in found), reverse=True)
            assert all(e.label == labels[f].iat[i] and e.facet == f for e in found)
            assert all(shown(texts[i], e.start, e.end) == e.text for e in found)


@pytest.mark.model
def test_deleting_the_top_evidence_lowers_the_label_more_than_a_random_sentence(model, test_posts):
    from rupture_nlp.faithfulness import deletion_rates

    rates = deletion_rates(model, test_posts["text"].head(80).tolist(), ks=(1, 2), seed=0)
    assert rates["posts"] >= 60 and rates["top1"]["pairs"] >= 100
    assert rates["top1"]["rate"] >= 0.9, rates  # leave-one-out: close to true by construction
    assert rates["top2"]["rate"] >= 0.7, rates


@pytest.mark.code
def test_predict_explain_gives_sentence_spans_and_keeps_the_ngrams(small_model_dir, tmp_path):
    src = tmp_path / "in.txt"
    text = "I skipped my session. I told her I was sick. I wasn't."
    src.write_text(text + "\n", encoding="utf-8")
    result = CliRunner().invoke(main, ["predict", "-m", str(small_model_dir), "--explain", "2",
                                       "--explain-ngrams", "2", str(src)])
    assert result.exit_code == 0, result.output
    row = json.loads(result.stdout.splitlines()[0])
    found = row["rupture_type_evidence"]
    assert 1 <= len(found) <= 2 and {"start", "end", "text", "score", "share", "facet", "label"} <= set(found[0])
    for e in found:
        assert text[e["start"]:e["end"]] == e["text"] and e["label"] == row["rupture_type"]
    assert row["rupture_type_reasons"] and all(len(pair) == 2 for pair in row["rupture_type_reasons"])
    out = tmp_path / "out.csv"
    assert CliRunner().invoke(main, ["predict", "-m", str(small_model_dir), "--explain", "1", "--format", "csv",
                                     "-o", str(out), str(src)]).exit_code == 0
    assert "[" in pd.read_csv(out)["rupture_type_evidence"].iat[0]
