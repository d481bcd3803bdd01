"""Honesty off the corpus: the shift report, the per-post OOD score, confidence that shrinks with it."""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner

from rupture_nlp.cli import main
from rupture_nlp.data import read_corpus
from rupture_nlp.labels import DEPENDENT, FACETS, NOT_APPLICABLE
from rupture_nlp.shift import shift_report

from .conftest import ROOT

FORUM_C = ROOT / "data" / "adaptation" / "forum_c.csv"


def run(*args):
    return CliRunner().invoke(main, [str(a) for a in args], catch_exceptions=False)


@pytest.mark.model
def test_shift_ranks_forum_c_above_the_test_split(model, corpus):
    test = corpus.loc[corpus["split"] == "test", "text"].tolist()
    forum = read_corpus(FORUM_C)["text"].tolist()
    near, far = shift_report(model, test, n_boot=200), shift_report(model, forum, n_boot=200)
    assert far["domain_classifier"]["roc_auc"] > near["domain_classifier"]["roc_auc"] + 0.2
    assert near["domain_classifier"]["ci95"][0] < 0.6  # the test split reads like the training posts
    assert far["ood_score"]["median"] > near["ood_score"]["median"]
    assert far["level"] == "far" and near["level"] == "close"


@pytest.mark.model
def test_confidence_shrinks_with_distance(model, corpus):
    X = model.transform(corpus.loc[corpus["split"] == "test", "text"].head(60))
    d = model.distance(X)
    near = model.proba_from_features(X, distance=d)
    far = model.proba_from_features(X, distance=d + 0.3)
    for facet in FACETS:
        assert model.calibration_params_[facet][1] <= 0
    # The independent facets' confidence shrinks. A dependent facet's probabilities are P(rupture) x
    # P(label | rupture): its conditional confidence shrinks (or stays, where the held-out batches
    # asked for no flattening), but flattening a confident "none" raises P(rupture), so the joint
    # maximum can rise a little (round 6 model: 8 of 888 test rows, by at most 0.02; docs/shift.md).
    for facet in ("rupture_type", "risk"):
        assert (far[facet].max(axis=1) <= near[facet].max(axis=1) + 1e-9).all(), facet
    for facet in DEPENDENT:
        def conditional(p):
            return p.drop(columns=NOT_APPLICABLE).div(1.0 - p[NOT_APPLICABLE], axis=0).max(axis=1)
        assert (conditional(far[facet]) <= conditional(near[facet]) + 1e-9).all(), facet
    assert any(model.calibration_params_[f][1] < 0 for f in FACETS)  # the held-out batches asked for it


@pytest.mark.model
def test_predict_gives_an_ood_score_per_post(model_dir, tmp_path):
    result = run("predict", "-m", model_dir, ROOT / "data" / "examples" / "posts.txt")
    rows = [json.loads(line) for line in result.stdout.splitlines()]
    assert rows and all(0 <= r["ood_score"] <= 1 for r in rows)


@pytest.mark.model
def test_shift_command_table_json_and_record(model_dir, tmp_path):
    copy = tmp_path / "model"
    import shutil

    shutil.copytree(model_dir, copy)
    table = run("shift", "-m", copy, FORUM_C)
    assert table.exit_code == 0 and "domain classifier ROC AUC" in table.output and "What to do" in table.output
    result = run("shift", "-m", copy, "--format", "json", "--record", "--quiet", FORUM_C)
    report = json.loads(result.stdout)
    assert report["posts"] == 224 and report["label_posts"] == 100
    manifest = json.loads((copy / "manifest.json").read_text())
    assert manifest["checks"][-1]["command"] == "shift" and manifest["checks"][-1]["posts"] == 224
    from rupture_nlp.persist import load_model

    load_model(copy)  # the artifact's hash still holds after the manifest records a check


@pytest.mark.code
@pytest.mark.parametrize("content, message", [
    (b"", "is empty"),
    (b"text\nMy T forgot our session and I said nothing.\n", "at least 5 posts"),
    (b"text\n" + "caf\u00e9 ".encode("cp1252") * 3 + b"\n", "not UTF-8"),
])
def test_shift_bad_input_is_one_clear_line(small_model_dir, tmp_path, content, message):
    path = tmp_path / "forum.csv"
    path.write_bytes(content)
    result = run("shift", "-m", small_model_dir, path)
    assert result.exit_code == 1 and message in result.output
    assert result.output.count("\n") == 1 and "Traceback" not in result.output


@pytest.mark.code
def test_shift_samples_a_large_file_seeded(small_model_dir, tmp_path):
    path = tmp_path / "big.txt"
    path.write_text("".join(f"post {i}: I cancelled my session with my therapist again\n" for i in range(3000)))
    a = json.loads(run("shift", "-m", small_model_dir, "--sample", 50, "--format", "json", path).stdout)
    b = json.loads(run("shift", "-m", small_model_dir, "--sample", 50, "--format", "json", path).stdout)
    assert a["posts"] == 3000 and a["sampled"] == 50 and a == b
