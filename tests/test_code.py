"""Pure functions: labels, text normalisation, config, input reading, metrics."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import f1_score

from rupture_nlp.config import ConfigError, load_config
from rupture_nlp.data import InputError, InputSpec, read_all
from rupture_nlp.evaluate import bootstrap_macro_f1, brier, expected_calibration_error, macro_f1_from_confusion
from rupture_nlp.labels import FACETS, inconsistent_rows, invalid_label_rows
from rupture_nlp.model import choose_crisis_threshold
from rupture_nlp.ood import covariates, fit_covariate_temperature, inverse_temperature
from rupture_nlp.text import ForumNormaliser, normalise

pytestmark = pytest.mark.code


def test_consistency_rule_finds_both_directions():
    df = pd.DataFrame({"rupture_type": ["none", "none", "withdrawal", "withdrawal"],
                       "repair_outcome": ["not_applicable", "repaired", "repaired", "not_applicable"],
                       "therapist_response": ["not_applicable", "not_applicable", "unknown", "unknown"]})
    assert inconsistent_rows(df) == [1, 3]


def test_invalid_labels_are_reported_per_facet():
    df = pd.DataFrame({"rupture_type": ["none", "angry"], "risk": ["crisis", "high"]})
    assert invalid_label_rows(df) == {"rupture_type": [1], "risk": [1]}


def test_quoted_lines_do_not_reach_the_model():
    text = "> I quit my therapist after she yelled\nsorry that happened, hugs"
    assert "yelled" not in normalise(text)
    assert "hugs" in normalise(text)


@pytest.mark.parametrize("raw, expected", [
    ("my T said no", "my therapist said no"),
    ("T's office", "therapist's office"),
    ("saw my pdoc today", "saw my psychiatrist today"),
    ("next sesh", "next session"),
])
def test_forum_shorthand_is_expanded(raw, expected):
    assert normalise(raw, pronouns="keep") == expected


def test_t_shirt_is_not_a_therapist():
    assert "T-shirt" in normalise("I wore a T-shirt")


def test_names_and_gender_are_masked():
    a = normalise("Yesterday I told Sarah that she forgot. Her reply was kind.")
    b = normalise("Yesterday I told Mark that he forgot. His reply was kind.")
    assert a == b
    assert "_name_" in a and "_pron_" in a


def test_a_titled_name_and_a_name_starting_a_sentence_are_masked_like_any_name():
    one = normalise("I told Sarah it hurt. Sarah listened. Mum was there.")
    assert one == normalise("I told Dr Okafor it hurt. Okafor listened. Mum was there.")
    assert one == normalise("I told Dr. Lee it hurt. Lee listened. Mum was there.")
    assert one.count("_name_") == 2 and "Mum" in one


def test_urls_are_masked():
    assert "_url_" in normalise("see https://example.org/a?b=1 for more")


def test_normaliser_is_a_stateless_transformer():
    n = ForumNormaliser(mask_names=False)
    assert n.fit(["x"]).transform(["I told Sarah"]) == ["I told Sarah"]


def test_default_config_loads_and_validates():
    cfg = load_config()
    assert cfg.clf_params("risk")["class_weight"] == "balanced"
    ngrams = cfg.shared_params()["tfidf__word__ngram_range"]
    assert isinstance(ngrams, tuple) and len(ngrams) == 2 and ngrams[0] <= ngrams[1]


def test_user_config_is_laid_over_the_default(tmp_path):
    p = tmp_path / "c.toml"
    p.write_text("[facets.risk]\nclf__C = 0.5\n", encoding="utf-8")
    cfg = load_config(p)
    assert cfg.clf_params("risk")["C"] == 0.5
    assert cfg.clf_params("rupture_type")["C"] == load_config().clf_params("rupture_type")["C"]


@pytest.mark.parametrize("text, message", [
    ("[pipeline]\ntfidf__ngram = 3\n", "unknown config key"),
    ("[facets.risk]\ntfidf__word__min_df = 3\n", "only set clf__"),
    ("[facets.mood]\nclf__C = 1\n", "unknown facet"),
    ("colour = 'red'\n", "unknown config key"),
    ("[pipeline\n", "not valid TOML"),
    ("[calibration]\nobjective = 'max'\n", "objective must be one of"),
    ("[adaptation]\nlength_bins = [60, 30]\n", "length_bins, increasing whole numbers"),
    ("[adaptation]\nlength_bins = 30\n", "length_bins, increasing whole numbers"),
    ("[adaptation]\nlength_bins = [true, 2]\n", "length_bins, increasing whole numbers"),
    ("[adaptation]\nlength_bins = [30, 30]\n", "length_bins, increasing whole numbers"),
    ("[adaptation]\nlength_bins = [0, 30]\n", "length_bins, increasing whole numbers"),
    ("[adaptation]\ntarget_scale = true\n", "target_scale, a positive number"),
    ("[adaptation]\ntarget_scale = 'big'\n", "target_scale, a positive number"),
    ("[adaptation]\ntarget_scale = 0\n", "target_scale, a positive number"),
    ("[risk]\ncrisis_recall_target = 'high'\n", "crisis_recall_target, a number"),
    ("[triage]\nconfidence_threshold = true\n", "confidence_threshold must be"),
    ("[triage]\nood_limit = 'far'\n", "ood_limit must be a number"),
    ("[triage]\nconfident_accuracy_target = 1.5\n", "confident_accuracy_target must be a number"),
    ("[triage]\ncrisis_phrases = 'goodbye'\n", "crisis_phrases must be a list"),
])
def test_bad_config_is_a_clear_error(tmp_path, text, message):
    p = tmp_path / "bad.toml"
    p.write_text(text, encoding="utf-8")
    with pytest.raises(ConfigError, match=message):
        load_config(p)


def write(tmp_path, name, content, mode="w"):
    p = tmp_path / name
    if mode == "wb":
        p.write_bytes(content)
    else:
        p.write_text(content, encoding="utf-8")
    return str(p)


def test_reads_csv_jsonl_and_txt_in_order(tmp_path):
    csv_path = write(tmp_path, "a.csv", 'id,body\nx1,"first, with comma"\nx2,"second\nline"\n')
    df = read_all(InputSpec(csv_path, text_column="body", id_column="id"))
    assert df["id"].tolist() == ["x1", "x2"] and df["text"].tolist()[1] == "second\nline"
    jl = write(tmp_path, "a.jsonl", json.dumps({"text": "one"}) + "\n" + json.dumps({"text": "two"}) + "\n")
    assert read_all(InputSpec(jl))["text"].tolist() == ["one", "two"]
    txt = write(tmp_path, "a.txt", "one post\n\nanother post\n")
    assert read_all(InputSpec(txt))["row"].tolist() == [1, 3]


@pytest.mark.parametrize("name, content, message", [
    ("empty.csv", "", "is empty"),
    ("header.csv", "text\n", "has no posts"),
    ("cols.csv", "body,id\nhello,1\n", "no column 'text'; columns found: body, id"),
    ("blank.csv", 'text\nhello\n""\n1234\n', r"row\(s\) 2, 3 have an empty or non-text"),
    ("bad.jsonl", '{"text": "ok"}\n{"text": 5}\n', r"row\(s\) 2"),
    ("broken.jsonl", '{"text": "ok"}\n{oops\n', "line 2 is not valid JSON"),
])
def test_bad_input_is_a_clear_error(tmp_path, name, content, message):
    with pytest.raises(InputError, match=message):
        read_all(InputSpec(write(tmp_path, name, content)))


def test_missing_file_and_non_utf8(tmp_path):
    with pytest.raises(InputError, match="not found"):
        read_all(InputSpec(str(tmp_path / "nope.csv")))
    path = write(tmp_path, "latin.csv", "text\ncaf\xe9 ok\n".encode("latin-1"), mode="wb")
    with pytest.raises(InputError, match="not UTF-8"):
        read_all(InputSpec(path))


def test_skip_invalid_counts_what_it_skips(tmp_path):
    df = read_all(InputSpec(write(tmp_path, "b.csv", 'text\nhello\n""\nthere\n'), skip_invalid=True))
    assert df["text"].tolist() == ["hello", "there"] and df.attrs["skipped"] == 1


def test_macro_f1_from_confusion_matches_sklearn():
    rng = np.random.default_rng(0)
    y, p = rng.integers(0, 3, 200), rng.integers(0, 3, 200)
    cm = np.zeros((3, 3))
    np.add.at(cm, (y, p), 1)
    assert macro_f1_from_confusion(cm) == pytest.approx(f1_score(y, p, average="macro"))


def test_bootstrap_interval_brackets_the_estimate():
    rng = np.random.default_rng(1)
    y = rng.choice(["a", "b", "c"], 300)
    p = np.where(rng.random(300) < 0.7, y, rng.choice(["a", "b", "c"], 300))
    groups = np.repeat(np.arange(100), 3)
    low, high = bootstrap_macro_f1(y, p, groups, ["a", "b", "c"], n_boot=500)
    point = f1_score(y, p, average="macro")
    assert low < point < high and high - low < 0.25
    assert (low, high) == bootstrap_macro_f1(y, p, groups, ["a", "b", "c"], n_boot=500)


def test_calibration_metrics_on_known_values():
    proba = np.array([[0.9, 0.1], [0.6, 0.4]])
    y = np.array([0, 1])
    assert brier(proba, y) == pytest.approx(((0.1**2 + 0.1**2) + (0.6**2 + 0.6**2)) / 2)
    # bins: 0.9 right (gap 0.1), 0.6 wrong (gap 0.6): ECE = (0.1 + 0.6) / 2
    assert expected_calibration_error(proba, y) == pytest.approx(0.35)


def test_temperature_scaling_cools_an_overconfident_model():
    rng = np.random.default_rng(2)
    y = rng.integers(0, 3, 2000)
    logits = rng.normal(size=(2000, 3))
    logits[np.arange(2000), y] += 1.0
    params = fit_covariate_temperature(logits * 5, y, np.zeros((2000, 2)), use=(False, False))
    assert np.exp(params[0]) == pytest.approx(0.2, rel=0.2)  # five times too confident: beta about 1/5
    assert params[1] == params[2] == 0


def test_worst_batches_calibration_is_set_by_the_hard_batches():
    """Two writer batches, one where the model is right 95% of the time and one (a third of the posts)
    where it is right 60%: the mean fit lies between; the worst-batches fit is the hard batch's own,
    and taking every batch (share 1) is the mean fit again."""
    rng = np.random.default_rng(4)
    n = 3000
    y = rng.integers(0, 3, n)
    hard = np.arange(n) < n // 3
    right = np.where(hard, rng.random(n) < 0.6, rng.random(n) < 0.95)
    logits = rng.normal(size=(n, 3))
    logits[np.arange(n), np.where(right, y, (y + 1) % 3)] += 3.0
    z, use = np.zeros((n, 2)), (False, False)
    batch = np.where(hard, "hard", "easy")
    mean = np.exp(fit_covariate_temperature(logits, y, z, use)[0])
    worst = np.exp(fit_covariate_temperature(logits, y, z, use, batch=batch)[0])
    alone = np.exp(fit_covariate_temperature(logits[hard], y[hard], z[hard], use)[0])
    assert worst < mean and worst == pytest.approx(alone, rel=0.02)
    every = np.exp(fit_covariate_temperature(logits, y, z, use, batch=batch, worst_share=1.0)[0])
    assert every == pytest.approx(mean, rel=0.02)


def test_covariate_temperature_flattens_posts_the_held_out_data_says_are_harder():
    """Where the far half of the posts is right less often, their fitted temperature is higher."""
    rng = np.random.default_rng(3)
    n = 4000
    y = rng.integers(0, 3, n)
    far = np.arange(n) >= n // 2
    logits = rng.normal(size=(n, 3))
    right = np.where(far, rng.random(n) < 0.5, rng.random(n) < 0.95)  # far posts: often wrong
    target = np.where(right, y, (y + 1) % 3)
    logits[np.arange(n), target] += 3.0
    z = covariates(far.astype(float), np.full(n, 50), np.array([0.5, np.log1p(50)]))
    params = fit_covariate_temperature(logits, y, z)
    beta = inverse_temperature(params, z)
    assert params[1] < 0 and beta[far].mean() < beta[~far].mean()


def test_crisis_threshold_reaches_the_recall_target():
    p = np.array([0.9, 0.5, 0.2, 0.05, 0.01, 0.3])
    is_crisis = np.array([True, True, True, True, False, False])
    t = choose_crisis_threshold(p, is_crisis, 0.75)
    assert (p[is_crisis] >= t).mean() >= 0.75 and t == 0.2
    assert set(FACETS) == {"rupture_type", "repair_outcome", "therapist_response", "risk"}


def test_word_cached_char_vectorizer_equals_scikit_learn():
    import pickle

    from sklearn.feature_extraction.text import TfidfVectorizer

    from rupture_nlp.features import WordCachedCharVectorizer

    docs = ["My T forgot our session again", "she said sorry, we're ok now", "Nothing to report!!  ok",
            "forgot forgot forgot", "a b", "naïve café, ok?"]
    params = dict(analyzer="char_wb", ngram_range=(2, 4), min_df=1, sublinear_tf=True)
    ours = WordCachedCharVectorizer(**params).fit(docs)
    ref = TfidfVectorizer(**params).fit(docs)
    new = ["forgot my session", "café ok", "unseen words only: zzz", ""]
    for batch in (docs, new, docs[::-1]):  # warm and cold cache, repeated words
        assert abs(ours.transform(batch) - ref.transform(batch)).max() < 1e-12
    again = pickle.loads(pickle.dumps(ours))
    assert "_word_index" not in again.__dict__
    assert abs(again.transform(new) - ref.transform(new)).max() < 1e-12
    assert ours.get_params() == ref.get_params()


def test_compact_word_vectorizer_equals_scikit_learn():
    import pickle

    from sklearn.feature_extraction.text import TfidfVectorizer

    from rupture_nlp.features import CompactTfidfVectorizer

    docs = ["My T forgot our session again", "she said sorry, we're ok now", "Nothing to report!!  ok",
            "forgot forgot forgot our session", "a b", "naïve café, ok? ok ok", "_pron_ said _pron_ was sorry"]
    new = ["forgot my session", "café ok ok", "unseen words only: zzz", "", "our session our session"]
    for params in (dict(ngram_range=(1, 2)), dict(ngram_range=(1, 1)), dict(ngram_range=(2, 2)),
                   dict(ngram_range=(1, 2), min_df=2, sublinear_tf=True), dict(ngram_range=(1, 2), max_df=0.5)):
        ours = CompactTfidfVectorizer(**params).fit(docs)
        ref = TfidfVectorizer(**params).fit(docs)
        for batch in (docs, new, docs[::-1], new):
            assert abs(ours.transform(batch) - ref.transform(batch)).max() < 1e-12, params
        again = pickle.loads(pickle.dumps(ours))
        assert abs(again.transform(new) - ref.transform(new)).max() < 1e-12


def test_a_posts_features_do_not_depend_on_what_came_before():
    """The caches grow with what they meet; a post's row must still be the same to the last bit
    (the Dask workers and the local engine meet posts in different orders and must agree)."""
    from rupture_nlp.features import CompactTfidfVectorizer, WordCachedCharVectorizer

    docs = ["My T forgot our session again and again", "she said sorry, we're ok now", "ok so T said no",
            "we talked about the session and it was ok", "i left and never said why"]
    post = ["so my T forgot, again, and i said nothing and left the session early; i said nothing"]
    for make in (lambda: WordCachedCharVectorizer(analyzer="char_wb", ngram_range=(2, 4), sublinear_tf=True),
                 lambda: CompactTfidfVectorizer(ngram_range=(1, 2), sublinear_tf=True)):
        cold, warm = make().fit(docs), make().fit(docs)
        warm.transform(["never said why i left, ok", "again and again: the session", docs[2]])
        a, b = cold.transform(post), warm.transform(post)
        assert np.array_equal(a.indices, b.indices) and np.array_equal(a.data, b.data)


def test_column_major_features_equal_the_row_major_ones(monkeypatch):
    """``transform_columns`` (CSC, built column by column, for scoring) holds the same matrix as
    scikit-learn's transform, for each vectorizer setting, a union of blocks and a dropped block."""
    import scipy.sparse as sp
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.pipeline import FeatureUnion, Pipeline

    from rupture_nlp.features import CompactTfidfVectorizer, WordCachedCharVectorizer, transform_columns

    docs = ["My T forgot our session again", "she said sorry, we're ok now", "Nothing to report!!  ok",
            "forgot forgot forgot our session", "a b", "naïve café, ok? ok ok", "_pron_ said _pron_ was sorry"]
    new = ["forgot my session", "café ok ok", "unseen words only: zzz", "", "our session our session"]
    settings = [(CompactTfidfVectorizer, dict(ngram_range=(1, 2))), (CompactTfidfVectorizer, dict(ngram_range=(2, 2))),
                (CompactTfidfVectorizer, dict(ngram_range=(1, 2), min_df=2, sublinear_tf=True, norm="l1")),
                (CompactTfidfVectorizer, dict(ngram_range=(1, 3))),  # not the fast word route
                (WordCachedCharVectorizer, dict(analyzer="char_wb", ngram_range=(2, 4), sublinear_tf=True)),
                (WordCachedCharVectorizer, dict(analyzer="char_wb", ngram_range=(2, 5), norm=None)),
                (WordCachedCharVectorizer, dict(analyzer="char_wb", ngram_range=(1, 3), use_idf=False))]
    for make, params in settings:
        ours, ref = make(**params).fit(docs), TfidfVectorizer(**params).fit(docs)
        for batch in (docs, new, docs[::-1]):
            got = ours.transform_columns(batch)
            assert got.format == "csc" and got.shape == (len(batch), len(ref.vocabulary_)), params
            assert abs(got - ref.transform(batch)).max() < 1e-12, params
            assert np.array_equal(got.getnnz(axis=1), ref.transform(batch).getnnz(axis=1)), params
    union = Pipeline([("tfidf", FeatureUnion([
        ("word", CompactTfidfVectorizer(ngram_range=(1, 2))), ("drop_me", "drop"),
        ("char", WordCachedCharVectorizer(analyzer="char_wb", ngram_range=(2, 4), sublinear_tf=True))]))]).fit(docs)
    got = transform_columns(union, new)
    assert sp.isspmatrix_csc(got) and abs(got - union.transform(new)).max() < 1e-12
    import rupture_nlp.features as features

    monkeypatch.setattr(features, "CACHE_LIMIT", 5)  # the word cache starts afresh every few words
    small = WordCachedCharVectorizer(analyzer="char_wb", ngram_range=(2, 4)).fit(docs)
    ref = TfidfVectorizer(analyzer="char_wb", ngram_range=(2, 4)).fit(docs)
    six, other_six = ["forgot our session again ok now"], ["she said sorry we're fine too"]  # as many words
    for batch in (docs, new, six, other_six, docs[:2], new):
        assert abs(small.transform_columns(batch) - ref.transform(batch)).max() < 1e-12


def test_paired_gain_interval():
    from rupture_nlp.evaluate import _encode, _resampled_macro_f1, _thread_resamples, bootstrap_macro_f1_gain

    y = np.array(["a", "b", "c"] * 10)
    groups = np.arange(30) // 3
    labels = ["a", "b", "c"]
    assert bootstrap_macro_f1_gain(y, y, y, groups, labels, n_boot=200) == (0.0, 0.0)
    low, high = bootstrap_macro_f1_gain(y, np.roll(y, 1), y, groups, labels, n_boot=200)
    assert low == high == 1.0  # from all wrong to all right, in every resample
    # two systems that differ on a few posts: the interval is of the per-resample differences (paired)
    a, b = y.copy(), y.copy()
    a[[0, 4, 8]], b[[0, 13]] = "c", "a"
    w = _thread_resamples(groups, 300, 5)
    d = _resampled_macro_f1(_encode(y, labels), _encode(b, labels), w, 3) - _resampled_macro_f1(_encode(y, labels),
                                                                                                _encode(a, labels), w, 3)
    low, high = bootstrap_macro_f1_gain(y, a, b, groups, labels, n_boot=300, seed=5)
    assert (low, high) == tuple(float(v) for v in np.percentile(d, [2.5, 97.5]))
    lo_b, hi_b = bootstrap_macro_f1(y, b, groups, labels, 300, 5)
    lo_a, hi_a = bootstrap_macro_f1(y, a, groups, labels, 300, 6)
    assert high - low < (hi_b - lo_a) - (lo_b - hi_a)  # pairing removes the variation both systems share


def test_bootstrap_interval_is_pinned():
    """The thread bootstrap's numbers do not drift when its code is refactored."""
    rng = np.random.default_rng(3)
    y, p = rng.choice(list("abc"), 40), rng.choice(list("abc"), 40)
    low, high = bootstrap_macro_f1(y, p, np.arange(40) // 2, ["a", "b", "c"], n_boot=200, seed=1)
    assert (round(low, 6), round(high, 6)) == (0.238831, 0.526033)  # before and after the paired-gain refactor


def test_cv_macro_f1_averages_over_the_labels_present_as_evaluate_does(small_corpus, tmp_path):
    from rupture_nlp.data import read_corpus
    from rupture_nlp.evaluate import facet_scores
    from rupture_nlp.persist import load_model
    from rupture_nlp.train import TrainRequest, train_model

    corpus = pd.read_csv(small_corpus, dtype=str, keep_default_na=False)
    no_boundary = tmp_path / "posts.csv"  # no post of this corpus has the therapist_response `boundary`
    corpus.assign(therapist_response=corpus["therapist_response"].replace("boundary", "unknown")).to_csv(
        no_boundary, index=False)
    cfg = tmp_path / "c.toml"
    cfg.write_text("cv_folds = 3\n[pipeline]\ntfidf__word__min_df = 1\ntfidf__char__min_df = 1\n")
    train_model(TrainRequest(data=no_boundary, out=tmp_path / "m", config=cfg, n_jobs=1))
    model = load_model(tmp_path / "m")
    train = read_corpus(no_boundary).query("split == 'train'")
    oof = model.labels_from_proba(model.oof_proba_)
    for facet in FACETS:
        expected = facet_scores(train[facet].to_numpy(), oof[facet].to_numpy(), train["thread_id"].to_numpy(),
                                facet, n_boot=10)["macro_f1"]
        assert model.cv_scores_[facet]["macro_f1"] == pytest.approx(expected), facet
    assert "boundary" not in set(oof["therapist_response"])  # so the old average (over every label) was lower
