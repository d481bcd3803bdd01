"""Adapting to a forum: sampling, annotation sheets for --extra, and agreement between annotators."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp
from click.testing import CliRunner

from rupture_nlp.adapt import SHEET_COLUMNS, agreement, read_sheets, sample_posts, select
from rupture_nlp.cli import main
from rupture_nlp.data import InputError
from rupture_nlp.persist import load_model

pytestmark = pytest.mark.code

POSTS = pd.DataFrame({
    "id": [f"p{i}" for i in range(12)],
    "text": ["I skipped my session and never told her why", "great session today, my T is lovely",
             "I told him I was angry that he forgot our appointment", "does CBT help with panic?",
             "she apologised and we talked it through", "I cancelled again, can't face it",
             "my pdoc upped the dose without listening and I snapped at him", "hugs, you did well",
             "went quiet in session when she asked how I was", "my mum forgot my birthday again",
             "she said she can't text between sessions and I was gutted", "first appointment next week, nervous"],
})


def sheet(tmp_path, name, rows):
    df = pd.DataFrame(rows)
    for col in SHEET_COLUMNS:
        if col not in df.columns:
            df[col] = ""
    path = tmp_path / name
    df[SHEET_COLUMNS].to_csv(path, index=False)
    return path


def test_sampling_is_seeded_and_skips_labelled_ids(small_model_dir):
    model = load_model(small_model_dir)
    a = sample_posts(model, POSTS, 4, seed=3)
    b = sample_posts(model, POSTS, 4, seed=3)
    assert a.equals(b) and list(a.columns) == SHEET_COLUMNS
    assert (a[["rupture_type", "repair_outcome", "therapist_response", "note"]] == "").all().all()
    skipped = sample_posts(model, POSTS, 4, seed=3, skip_ids=set(a["post_id"]))
    assert not set(skipped["post_id"]) & set(a["post_id"])
    r1 = sample_posts(model, POSTS, 5, strategy="random", seed=1)
    r2 = sample_posts(model, POSTS, 5, strategy="random", seed=2)
    assert set(r1["post_id"]) != set(r2["post_id"])
    with pytest.raises(InputError, match="labelled already"):
        sample_posts(model, POSTS, 3, skip_ids=set(POSTS["id"]))


def test_uncertainty_batch_is_diverse():
    # posts 0-4 are the same post (most uncertain); 5-9 are different, a little less uncertain
    rng = np.random.default_rng(0)
    same = np.tile(rng.random(20), (5, 1))
    X = sp.csr_matrix(np.vstack([same, rng.random((5, 20)) * np.eye(5, 20) * 10 + 0.01]))
    scores = np.array([0.9, 0.9, 0.9, 0.9, 0.9, 0.8, 0.8, 0.8, 0.8, 0.8])
    picked = select(X, scores, 4)
    assert len(set(picked)) == 4
    assert sum(i < 5 for i in picked) == 1, picked  # only one copy of the duplicated post


def test_sample_cli_writes_a_sheet_and_refuses_to_overwrite(small_model_dir, tmp_path):
    src = tmp_path / "forum.csv"
    POSTS.rename(columns={"id": "post_id"}).to_csv(src, index=False)
    out = tmp_path / "sheet.csv"
    args = ["sample", "-m", str(small_model_dir), "--n", "5", "--id-column", "post_id", "-o", str(out), str(src)]
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 0, result.output
    assert len(pd.read_csv(out)) == 5
    again = CliRunner().invoke(main, args)
    assert again.exit_code == 1 and "use --force" in again.output


@pytest.mark.parametrize("fmt", ["csv", "jsonl", "parquet"])
def test_sample_keeps_the_thread_of_each_post(small_model_dir, tmp_path, fmt):
    posts = POSTS.rename(columns={"id": "post_id"}).assign(thread_id=[f"t{i // 3}" for i in range(len(POSTS))])
    src = tmp_path / f"forum.{fmt}"
    {"csv": lambda: posts.to_csv(src, index=False), "parquet": lambda: posts.to_parquet(src),
     "jsonl": lambda: posts.to_json(src, orient="records", lines=True)}[fmt]()
    out = tmp_path / "sheet.csv"
    result = CliRunner().invoke(main, ["sample", "-m", str(small_model_dir), "--n", "6", "--id-column", "post_id",
                                       "-o", str(out), str(src)])
    assert result.exit_code == 0, result.output
    got = pd.read_csv(out, dtype=str, keep_default_na=False)
    assert list(got.columns) == ["post_id", "thread_id", *SHEET_COLUMNS[1:]]
    assert got["thread_id"].tolist() == posts.set_index("post_id").loc[got["post_id"], "thread_id"].tolist()
    labelled = got.assign(rupture_type="none", repair_outcome="not_applicable", therapist_response="not_applicable")
    labelled.to_csv(out, index=False)
    extra, _ = read_sheets([out])  # what train --extra reads: the folds of the sheet gain take these threads
    assert extra["thread_id"].tolist() == got["thread_id"].tolist()


def test_sample_without_threads_and_a_missing_thread_column(small_model_dir, tmp_path):
    src = tmp_path / "posts.txt"
    src.write_text("\n".join(POSTS["text"]) + "\n")
    args = ["sample", "-m", str(small_model_dir), "--n", "3", "-o", str(tmp_path / "s.csv"), str(src)]
    assert CliRunner().invoke(main, args).exit_code == 0
    assert list(pd.read_csv(tmp_path / "s.csv").columns) == SHEET_COLUMNS
    named = CliRunner().invoke(main, [*args[:-1], "--thread-column", "topic", "--force", str(src)])
    assert named.exit_code == 1 and named.output.strip().endswith("has no thread column 'topic'")


def test_extra_sheets_are_merged_and_recorded(small_corpus, tmp_path):
    path = sheet(tmp_path, "sheet.csv", [
        {"post_id": "f1", "text": "my thera ghosted me after I complained", "rupture_type": "confrontation",
         "repair_outcome": "unrepaired", "therapist_response": "unknown", "risk": "none"},
        {"post_id": "f2", "text": "lowkey good sesh today ngl", "rupture_type": "none",
         "repair_outcome": "not_applicable", "therapist_response": "not_applicable", "risk": ""},
        {"post_id": "f3", "text": "not labelled yet"},
    ])
    extra, info = read_sheets([path])
    assert list(extra["post_id"]) == ["f1", "f2"] and pd.isna(extra.loc[1, "risk"])
    assert info[0]["labelled_posts"] == 2 and len(info[0]["sha256"]) == 64
    cfg = tmp_path / "c.toml"
    cfg.write_text("cv_folds = 3\n[pipeline]\ntfidf__word__min_df = 1\ntfidf__char__min_df = 1\n")
    out = tmp_path / "m"
    result = CliRunner().invoke(main, ["train", "--data", str(small_corpus), "--out", str(out), "--config", str(cfg),
                                       "--extra", str(path), "--extra-weight", "2", "--jobs", "1"])
    assert result.exit_code == 0, result.output
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["extra_sheets"][0]["labelled_posts"] == 2 and manifest["extra_weight"] == 2.0
    assert sum(manifest["label_counts"]["rupture_type"].values()) == 24 + 2
    assert sum(manifest["label_counts"]["risk"].values()) == 24 + 1  # a blank risk is not a label
    adaptation = manifest["adaptation"]
    assert adaptation["post_ids"] == ["f1", "f2"] and adaptation["method"] == "weight" and adaptation["weight"] == 2.0
    assert adaptation["expected_gain"]["rupture_type"] > 0 and "evaluate --baseline-data" in adaptation["check"]
    assert adaptation["length_bins"] == [30, 60, 120, 250] == load_model(out).length_bins_  # the model's, saved
    assert adaptation["expected_gain"]["rupture_type"] == 0.045
    assert adaptation["measured_gain"] == {"measured": False, "reason": "the sheets hold 2 labelled posts; the gain is "
                                                                        "measured from 20"}
    assert "not measured: the sheets hold 2" in result.stderr and result.stdout == ""
    assert "What they bought was not measured: the sheets hold 2" in CliRunner().invoke(main, ["card", str(out)]).output


@pytest.mark.code
def test_feature_augmentation_adapts_the_forum_classifier_and_keeps_the_corpus_one(small_corpus):
    """Augmented training gives the forum's posts their own weights; the corpus keeps shared + corpus ones."""
    import numpy as np
    from sklearn.linear_model import LogisticRegression

    from rupture_nlp.model import SOURCE_SCALE, augment, collapse

    rng = np.random.default_rng(0)
    import scipy.sparse as sp

    X = sp.csr_matrix(rng.random((60, 5)))
    target = np.arange(60) >= 40
    y = np.where(target, X[:, 0].toarray().ravel() > 0.5, X[:, 1].toarray().ravel() > 0.5).astype(int)
    clf = LogisticRegression(C=10).fit(augment(X, target), y)
    forum, corpus = collapse(clf, 5, 1.0)
    Xa = augment(X, target).toarray()
    assert np.allclose(forum.decision_function(X[target]), clf.decision_function(Xa[target]))
    assert np.allclose(corpus.decision_function(X[~target]), clf.decision_function(Xa[~target]))
    assert forum.coef_[0, 0] > corpus.coef_[0, 0] and corpus.coef_[0, 1] > forum.coef_[0, 1]
    assert 0 < SOURCE_SCALE < 1


def test_length_is_explained_away_into_the_intercept():
    """A classifier fit beside length bins, folded, scores every post as the full one would with the
    bins at their training mean (the same decision values, on the words alone)."""
    from sklearn.linear_model import LogisticRegression

    from rupture_nlp.model import explain_away, length_bins

    bins = length_bins(["a b", "a b c d e", "x " * 40, ""], [3, 30])
    assert bins.tolist() == [[1, 0, 0], [0, 1, 0], [0, 0, 1], [1, 0, 0]]
    rng = np.random.default_rng(0)
    X = sp.csr_matrix(rng.random((90, 4)))
    N = np.eye(3)[rng.integers(0, 3, 90)]
    y = np.where(N[:, 0] == 1, 0, (X[:, 2].toarray().ravel() > 0.5).astype(int) + 1)  # short: class 0
    full = LogisticRegression(C=10, max_iter=1000).fit(sp.hstack([X, sp.csr_matrix(N)]).tocsr(), y)
    at_mean = full.decision_function(sp.hstack([X, sp.csr_matrix(np.tile(N.mean(axis=0), (90, 1)))]).tocsr())
    plain = explain_away(full, 4, N.mean(axis=0))
    assert plain.coef_.shape == (3, 4) and plain.n_features_in_ == 4
    assert np.allclose(plain.decision_function(X), at_mean)


@pytest.mark.model
def test_a_sheet_with_length_bins_changes_only_rupture_type_and_only_with_a_sheet(corpus):
    from rupture_nlp.config import load_config
    from rupture_nlp.model import RuptureModel

    train = corpus[corpus["split"] == "train"].reset_index(drop=True)
    sheet = corpus[corpus["split"] == "test"].head(30).reset_index(drop=True)
    both = pd.concat([train, sheet], ignore_index=True)
    domain = np.r_[np.zeros(len(train), bool), np.ones(len(sheet), bool)]
    binned_cfg = load_config()  # the default explains length away
    assert binned_cfg.adaptation["length_bins"] == [30, 60, 120, 250]
    plain_cfg = binned_cfg.with_overrides(adaptation={**binned_cfg.adaptation, "length_bins": []})
    fit = lambda cfg, d: RuptureModel(cfg, cross_validate=False).fit(both["text"], both, domain=d)  # noqa: E731
    plain, binned = fit(plain_cfg, domain), fit(binned_cfg, domain)
    assert binned.length_bins_ == [30, 60, 120, 250] and plain.length_bins_ == []
    assert binned.classifiers_["rupture_type"].coef_.shape == plain.classifiers_["rupture_type"].coef_.shape
    assert not np.allclose(binned.classifiers_["rupture_type"].coef_, plain.classifiers_["rupture_type"].coef_)
    for f in ("repair_outcome", "therapist_response", "risk"):
        assert np.allclose(binned.classifiers_[f].coef_, plain.classifiers_[f].coef_)
    no_sheet = fit(binned_cfg, None)  # no forum posts: nothing to explain length away for
    assert no_sheet.length_bins_ == []
    assert np.allclose(no_sheet.classifiers_["rupture_type"].coef_,
                       fit(plain_cfg, None).classifiers_["rupture_type"].coef_)


@pytest.mark.parametrize("rows, message", [
    ([{"post_id": "a", "text": "x", "rupture_type": "angry", "repair_outcome": "repaired",
       "therapist_response": "unknown"}], r"unknown rupture_type label\(s\) \['angry'\] in row\(s\) 2"),
    ([{"post_id": "a", "text": "x"}, {"post_id": "b", "text": "y", "rupture_type": "none",
       "repair_outcome": "repaired", "therapist_response": "not_applicable"}], r"row\(s\) 3 break the consistency"),
    ([{"post_id": "a", "text": "x", "rupture_type": "none", "repair_outcome": "not_applicable",
       "therapist_response": "not_applicable"},
      {"post_id": "a", "text": "y"}], r"duplicate post_id in row\(s\) \[2, 3\]"),
    ([{"post_id": "a", "text": "x", "rupture_type": "withdrawal"}], r"row\(s\) \[2\] have some but not all"),
])
def test_invalid_sheets_name_their_rows(tmp_path, rows, message):
    with pytest.raises(InputError, match=message):
        read_sheets([sheet(tmp_path, "bad.csv", rows)])


def test_sheet_missing_columns(tmp_path):
    path = tmp_path / "s.csv"
    path.write_text("post_id,text\na,hello\n")
    with pytest.raises(InputError, match="lacks column"):
        read_sheets([path])


def test_kappa_matches_a_hand_computed_example(tmp_path):
    # rupture_type of 10 posts. A: 4 none, 3 withdrawal, 3 confrontation. B agrees on 7.
    a = ["none", "none", "none", "none", "withdrawal", "withdrawal", "withdrawal", "confrontation",
         "confrontation", "confrontation"]
    b = ["none", "none", "none", "withdrawal", "withdrawal", "withdrawal", "confrontation", "confrontation",
         "confrontation", "none"]
    def rows(labels):
        out = []
        for i, lab in enumerate(labels):
            na = lab == "none"
            out.append({"post_id": f"p{i}", "text": f"post {i}", "rupture_type": lab,
                        "repair_outcome": "not_applicable" if na else "in_progress",
                        "therapist_response": "not_applicable" if na else "unknown", "risk": "none"})
        return out
    result = agreement(sheet(tmp_path, "a.csv", rows(a)), sheet(tmp_path, "b.csv", rows(b)))
    # A: none 4, withdrawal 3, confrontation 3; B: none 4, withdrawal 3, confrontation 3
    p_o, p_e = 0.7, (4 * 4 + 3 * 3 + 3 * 3) / 100
    s = result["facets"]["rupture_type"]
    assert s["percent_agreement"] == pytest.approx(70.0)
    assert s["kappa"] == pytest.approx((p_o - p_e) / (1 - p_e))
    assert s["confusion"]["rows_a_columns_b"][0] == [3, 1, 0]
    assert {d["post_id"] for d in result["disagreements"]} == {"p3", "p6", "p9"}
    cli = CliRunner().invoke(main, ["agreement", str(tmp_path / "a.csv"), str(tmp_path / "b.csv")])
    assert cli.exit_code == 0 and "kappa 0.545" in cli.output


def forum_sheet(tmp_path, n=24):
    """A forum whose words the corpus lacks: 'xyzzy' posts are confrontations, 'plugh' posts are not."""
    rows = []
    for i in range(n):
        if i % 2:
            rows.append({"post_id": f"f{i}", "text": f"xyzzy again with my T, week {i}", "rupture_type": "confrontation",
                         "repair_outcome": "unrepaired", "therapist_response": "defensive", "risk": "none"})
        else:
            rows.append({"post_id": f"f{i}", "text": f"plugh plugh, day {i}", "rupture_type": "none",
                         "repair_outcome": "not_applicable", "therapist_response": "not_applicable", "risk": ""})
    return sheet(tmp_path, "forum.csv", rows)


SMALL_CFG = "cv_folds = 3\n[pipeline]\ntfidf__word__min_df = 1\ntfidf__char__min_df = 1\n"


def test_sheet_gain_labels_each_post_by_a_model_that_did_not_see_it(small_corpus, tmp_path, monkeypatch):
    from rupture_nlp import sheet_gain
    from rupture_nlp.config import load_config
    from rupture_nlp.data import read_corpus

    (tmp_path / "c.toml").write_text(SMALL_CFG)
    cfg = load_config(tmp_path / "c.toml")
    train = read_corpus(small_corpus).query("split == 'train'").reset_index(drop=True)
    extra, _ = read_sheets([forum_sheet(tmp_path)])
    seen, labelled = [], []
    real_fit = sheet_gain.fit_with_sheet

    def spying_fit(cfg, train, part, weight, n_jobs=1):
        model = real_fit(cfg, train, part, weight, n_jobs)
        real_predict, ids = model.predict, set(part["post_id"])
        seen.append(ids)

        def predict(texts):
            labelled.append((ids, set(extra.loc[extra["text"].isin(list(texts)), "post_id"])))
            return real_predict(texts)

        model.predict = predict
        return model

    monkeypatch.setattr(sheet_gain, "fit_with_sheet", spying_fit)
    result = sheet_gain.measure_sheet_gain(cfg, train, extra, folds=4)
    assert seen[0] == set() and len(seen) == 5  # the no-labels model, then one per fold
    held = [posts for trained, posts in labelled[1:]]
    assert all(not (trained & posts) for trained, posts in labelled[1:])
    assert sorted(p for posts in held for p in posts) == sorted(extra["post_id"])
    r = result["rupture_type"]
    assert result["measured"] and result["posts"] == 24 and r["posts"] == 24
    assert r["gain"] == pytest.approx(r["with_sheet"] - r["no_labels"], abs=0.002)
    assert r["gain"] > 0.3 and r["gain_ci95"][0] > 0  # the corpus has never seen xyzzy; the other folds have
    assert result["risk"] == {"posts": 12, "measured": False}  # blank risk is not a label; 12 are too few


def test_sheet_gain_folds_take_whole_threads(small_corpus, tmp_path, monkeypatch):
    from rupture_nlp import sheet_gain
    from rupture_nlp.config import load_config
    from rupture_nlp.data import read_corpus

    (tmp_path / "c.toml").write_text(SMALL_CFG)
    train = read_corpus(small_corpus).query("split == 'train'").reset_index(drop=True)
    extra, _ = read_sheets([forum_sheet(tmp_path)])
    extra["thread_id"] = [f"t{i // 3}" for i in range(len(extra))]  # 8 threads of 3 posts
    thread = dict(zip(extra["post_id"], extra["thread_id"]))
    trained_threads = []
    real_fit = sheet_gain.fit_with_sheet

    def spying_fit(cfg, train, part, weight, n_jobs=1):
        trained_threads.append({thread[p] for p in part["post_id"]})
        return real_fit(cfg, train, part, weight, n_jobs)

    monkeypatch.setattr(sheet_gain, "fit_with_sheet", spying_fit)
    result = sheet_gain.measure_sheet_gain(load_config(tmp_path / "c.toml"), train, extra, folds=4)
    assert result["split"] == "thread" and result["folds"] == 4
    assert all(len(t) == 6 for t in trained_threads[1:])  # each fold trains on 6 whole threads of 8
    with pytest.raises(InputError, match="at least 2 folds"):
        sheet_gain.measure_sheet_gain(load_config(tmp_path / "c.toml"), train, extra, folds=1)


def test_train_extra_reports_and_records_what_the_sheet_bought(small_corpus, tmp_path):
    (tmp_path / "c.toml").write_text(SMALL_CFG)
    path, out = forum_sheet(tmp_path), tmp_path / "m"
    args = ["train", "--data", str(small_corpus), "--config", str(tmp_path / "c.toml"), "--extra", str(path),
            "--jobs", "1"]
    result = CliRunner().invoke(main, [*args, "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert "what the sheet bought, on its own 24 posts (5 folds of single posts" in result.stderr
    assert result.stdout == ""  # standard output carries data only
    gain = json.loads((out / "manifest.json").read_text())["adaptation"]["measured_gain"]
    assert gain["measured"] and gain["folds"] == 5 and gain["split"] == "post" and gain["rupture_type"]["gain"] > 0
    assert gain["risk"] == {"posts": 12, "measured": False}  # 12 risk labels: fewer than 20
    assert "not measured, fewer than 20 labels: risk (12 labels)" in result.stderr
    card = CliRunner().invoke(main, ["card", str(out)]).output
    assert "## Adapted to your forum" in card and f"{gain['rupture_type']['gain']:+.3f}" in card
    result = CliRunner().invoke(main, [*args, "--out", str(tmp_path / "m2"), "--no-measure-gain"])
    assert result.exit_code == 0 and "what the sheet bought" not in result.output
    assert "measured_gain" not in json.loads((tmp_path / "m2" / "manifest.json").read_text())["adaptation"]


def _check_sheet(tmp_path, small_corpus, all_risk_blank=False):
    """A random check sheet as `sample` and `annotate` leave it: the small corpus's test posts, labelled,
    every other one (or every one) with risk left blank, the last one not labelled at all, in threads of two."""
    test = pd.read_csv(small_corpus, dtype=str, keep_default_na=False).query("split == 'test'").reset_index(drop=True)
    rows = [{"post_id": r.post_id, "thread_id": f"t{i // 2}", "text": r.text, "rupture_type": r.rupture_type,
             "repair_outcome": r.repair_outcome, "therapist_response": r.therapist_response,
             "risk": "" if all_risk_blank or i % 2 else r.risk} for i, r in enumerate(test.itertuples())]
    rows[-1].update(rupture_type="", repair_outcome="", therapist_response="", risk="")
    df = pd.DataFrame(rows)
    for col in SHEET_COLUMNS:
        if col not in df.columns:
            df[col] = ""
    path = tmp_path / "check.csv"
    df[["post_id", "thread_id", *[c for c in SHEET_COLUMNS if c != "post_id"]]].to_csv(path, index=False)
    return path, test


def test_evaluate_scores_a_labelled_sheet_on_its_labelled_rows(small_model_dir, small_corpus, tmp_path):
    path, test = _check_sheet(tmp_path, small_corpus)
    result = CliRunner().invoke(main, ["evaluate", "-m", str(small_model_dir), "--data", str(path), "--baseline-data",
                                       str(small_corpus), "--bootstrap", "100", "--format", "json"])
    assert result.exit_code == 0, result.output
    payload = json.loads(result.output)
    labelled = len(test) - 1
    assert payload["split"] == "sheet" and payload["n_posts"] == labelled
    assert payload["n_threads"] == (labelled + 1) // 2  # the sheet's thread_id, not one thread per post
    model = payload["systems"]["model"]
    assert model["rupture_type"]["n"] == labelled
    assert model["risk"]["n"] == len(range(0, labelled, 2))  # a blank risk is not scored
    assert "triage" not in payload and "thread structure" in payload["triage_note"]
    # the same posts scored as a corpus split give the same rupture_type figures
    corpus = tmp_path / "as_corpus.csv"
    full = pd.read_csv(small_corpus, dtype=str, keep_default_na=False)
    keep = full["post_id"].isin(test["post_id"].iloc[:-1])
    full.loc[keep, "split"] = "check"
    full.loc[keep, "thread_id"] = [f"t{i // 2}" for i in range(labelled)]
    full.to_csv(corpus, index=False)
    same = CliRunner().invoke(main, ["evaluate", "-m", str(small_model_dir), "--data", str(corpus), "--split", "check",
                                     "--baseline-data", str(small_corpus), "--bootstrap", "100", "--format", "json"])
    as_corpus = json.loads(same.output)["systems"]["model"]["rupture_type"]
    assert {k: as_corpus[k] for k in ("macro_f1", "macro_f1_ci95")} == \
        {k: model["rupture_type"][k] for k in ("macro_f1", "macro_f1_ci95")}


def test_evaluate_a_sheet_without_risk_labels_scores_three_facets(small_model_dir, small_corpus, tmp_path):
    path, _ = _check_sheet(tmp_path, small_corpus, all_risk_blank=True)
    args = ["evaluate", "-m", str(small_model_dir), "--data", str(path), "--baseline-data", str(small_corpus),
            "--bootstrap", "100"]
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 0, result.output
    assert "rupture_type (model)" in result.output and "risk (model)" not in result.output
    gated = CliRunner().invoke(main, [*args, "--fail-under", "risk=0.1"])
    assert gated.exit_code == 1 and "risk not scored" in gated.output and "Traceback" not in gated.output
    own = tmp_path / "m"
    shutil.copytree(small_model_dir, own)  # --record writes to the model folder
    record = CliRunner().invoke(main, [*args[:2], str(own), *args[3:], "--record"])
    assert record.exit_code == 0, record.output
    check = json.loads((own / "manifest.json").read_text())["checks"][-1]
    assert check["split"] == "sheet" and set(check["macro_f1"]) == {"rupture_type", "repair_outcome",
                                                                    "therapist_response"}


@pytest.mark.parametrize("content, message", [
    ("post_id,text,rupture_type,repair_outcome,therapist_response\np1,hello,,,\n", "has no labelled posts"),
    ("text\nhello\n", "A labelled sheet needs post_id, text"),
])
def test_evaluate_a_sheet_errors(small_model_dir, small_corpus, tmp_path, content, message):
    path = tmp_path / "sheet.csv"
    path.write_text(content)
    result = CliRunner().invoke(main, ["evaluate", "-m", str(small_model_dir), "--data", str(path),
                                       "--baseline-data", str(small_corpus)])
    assert result.exit_code == 1 and message in result.output and len(result.output.strip().splitlines()) == 1


def test_evaluate_a_sheet_needs_baseline_data(small_model_dir, small_corpus, tmp_path):
    path, _ = _check_sheet(tmp_path, small_corpus)
    result = CliRunner().invoke(main, ["evaluate", "-m", str(small_model_dir), "--data", str(path)])
    assert result.exit_code == 1 and "--baseline-data" in result.output
