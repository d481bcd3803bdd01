"""Behaviour of the trained model: consistency, determinism, round trip, invariance, direction."""

from __future__ import annotations

import re

import numpy as np
import pytest

from rupture_nlp.labels import DEPENDENT, FACETS, NOT_APPLICABLE
from rupture_nlp.model import RuptureModel
from rupture_nlp.persist import load_model, save_model

pytestmark = pytest.mark.model


@pytest.fixture(scope="module")
def test_posts(corpus):
    return corpus[corpus["split"] == "test"].reset_index(drop=True)


def test_predictions_obey_the_consistency_rule(model, test_posts):
    labels = model.predict(test_posts["text"])
    none = labels["rupture_type"] == "none"
    for facet in DEPENDENT:
        assert ((labels[facet] == NOT_APPLICABLE) == none).all()
    proba = model.predict_proba(test_posts["text"])
    for facet in FACETS:
        assert np.allclose(proba[facet].sum(axis=1), 1)
        assert list(proba[facet].columns) == list(FACETS[facet])


def test_training_is_deterministic(corpus):
    train = corpus[corpus["split"] == "train"].head(300)
    fit = lambda: RuptureModel(n_jobs=1).fit(train["text"], train, groups=train["thread_id"])  # noqa: E731
    a, b = fit(), fit()
    texts = corpus["text"].tail(50)
    for facet in FACETS:
        assert np.array_equal(a.predict_proba(texts)[facet].to_numpy(), b.predict_proba(texts)[facet].to_numpy())


def test_save_load_round_trip(model, tmp_path, test_posts):
    out = save_model(model, tmp_path / "copy", {"note": "round trip"})
    again = load_model(out)
    texts = test_posts["text"].head(40)
    assert again.predict(texts).equals(model.predict(texts))
    assert again.manifest_["note"] == "round trip"


SWAPS = [(r"\bshe\b", "he"), (r"\bShe\b", "He"), (r"\bher\b", "him"), (r"\bHer\b", "His"), (r"\bherself\b", "himself")]


def test_therapist_gender_does_not_change_a_label(model, test_posts):
    texts = test_posts["text"].tolist()
    swapped = texts
    for pattern, repl in SWAPS:
        swapped = [re.sub(pattern, repl, t) for t in swapped]
    assert sum(a != b for a, b in zip(texts, swapped)) > 20
    assert model.predict(swapped).equals(model.predict(texts))


def test_a_name_does_not_change_a_label(model):
    base = ("I have been seeing {} for two years and last week I told {} that I felt brushed off when the "
            "session ran short. {} listened and said that made sense. I am still not sure if I trust it.")
    names = ["Sarah", "Dr Okafor", "Miguel", "Ingrid"]
    preds = [model.predict([base.format(n, n, n)]).iloc[0].tolist() for n in names]
    assert all(p == preds[0] for p in preds)


def test_an_apology_and_a_talk_through_moves_toward_repaired(model, test_posts):
    ruptures = test_posts[test_posts["rupture_type"] != "none"]["text"].tolist()
    added = [t + "\n\nShe apologised and we talked it all through, we're good now." for t in ruptures]
    before = model.predict_proba(ruptures)["repair_outcome"]["repaired"].to_numpy()
    after = model.predict_proba(added)["repair_outcome"]["repaired"].to_numpy()
    assert (after > before).mean() >= 0.8
    assert (after - before).mean() > 0.05


def test_a_crisis_sentence_raises_crisis_probability(model, test_posts):
    calm = test_posts[test_posts["risk"] == "none"]["text"].head(60).tolist()
    added = [t + "\n\nI've made up my mind, I won't be here next week. This is goodbye." for t in calm]
    before = model.predict_proba(calm)["risk"]["crisis"].to_numpy()
    after = model.predict_proba(added)["risk"]["crisis"].to_numpy()
    assert (after > before).mean() >= 0.9


def test_explanations_are_phrases_of_the_post(model, test_posts):
    from rupture_nlp.api import explain
    from rupture_nlp.explain import DISPLAY
    from rupture_nlp.text import normalise

    shown = {v: k for k, v in DISPLAY.items()}

    texts = test_posts["text"].head(10).tolist()
    for text, reasons in zip(texts, explain(model, texts, n=3)):
        lowered = normalise(text).lower()
        for facet, phrases in reasons.items():
            assert len(phrases) <= 3
            for phrase, weight in phrases:
                assert weight > 0
                assert all(shown.get(w, w) in lowered for w in phrase.split()), (phrase, facet)


def test_calibration_does_not_change_labels(model, test_posts):
    X = model.transform(test_posts["text"])
    raw = model.labels_from_proba(model.proba_from_features(X, calibrated=False))
    cal = model.labels_from_proba(model.proba_from_features(X, calibrated=True))
    for facet in ("rupture_type", "repair_outcome", "therapist_response"):
        assert raw[facet].equals(cal[facet])


def test_scoring_features_give_the_same_labels_and_probabilities(model, corpus):
    """predict uses the column-major features; they must label as the row-major ones do."""
    texts = corpus["text"].tolist()
    rows, cols = model.transform(texts), model.transform(texts, columns=True)
    assert cols.format == "csc" and abs(rows - cols).max() < 1e-12
    a, b = model.proba_from_features(rows), model.proba_from_features(cols)
    for facet in a:
        assert np.abs(a[facet].to_numpy() - b[facet].to_numpy()).max() < 1e-5, facet
    assert model.labels_from_proba(a).equals(model.labels_from_proba(b))


def test_unlabelled_forum_posts_shape_the_features_but_are_not_training_rows(corpus):
    train = corpus[corpus["split"] == "train"].head(200)
    forum = ["zorblax said my T was late again", "the zorblax thing happened in session", "zorblax ok"]
    fit = RuptureModel(cross_validate=False).fit(train["text"], train, unlabelled=forum)
    words = fit.features_.named_steps["tfidf"].transformer_list[0][1].vocabulary_
    assert "zorblax" in words
    assert "zorblax" not in RuptureModel(cross_validate=False).fit(train["text"], train).features_.named_steps[
        "tfidf"].transformer_list[0][1].vocabulary_
    assert fit.domain_.embedding_.shape[0] == len(train)  # the corpus's posts only
