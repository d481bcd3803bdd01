"""The command line, driven through CliRunner: exit codes, standard output, and every error."""

from __future__ import annotations

import json
import shutil

import pandas as pd
import pytest
from click.testing import CliRunner

from rupture_nlp import __version__
from rupture_nlp.cli import main

pytestmark = pytest.mark.code


def run(*args, input=None):
    return CliRunner().invoke(main, [str(a) for a in args], input=input, catch_exceptions=False)


def test_version():
    result = run("--version")
    assert result.exit_code == 0 and __version__ in result.output


def test_every_command_has_help_with_an_example():
    for name, command in main.commands.items():
        result = run(name, "--help")
        assert result.exit_code == 0, name
        assert "Example:" in result.output and f"rupture-nlp {name}" in result.output, name


def test_train_refuses_to_overwrite_without_force(small_corpus, small_model_dir, tmp_path):
    before = (small_model_dir / "manifest.json").read_text()
    result = run("train", "--data", small_corpus, "--out", small_model_dir, "--quiet")
    assert result.exit_code == 1 and "exists already; use --force" in result.output
    assert (small_model_dir / "manifest.json").read_text() == before


def test_train_writes_model_and_manifest(small_corpus, tmp_path):
    cfg = tmp_path / "c.toml"
    cfg.write_text("cv_folds = 3\n[pipeline]\ntfidf__word__min_df = 1\ntfidf__char__min_df = 1\n")
    out = tmp_path / "m"
    result = run("train", "--data", small_corpus, "--out", out, "--config", cfg, "--jobs", 1)
    assert result.exit_code == 0, result.output
    manifest = json.loads((out / "manifest.json").read_text())
    for key in ("versions", "created_at", "config", "training_data", "artifact_sha256", "label_counts",
                "cv_scores", "crisis_threshold", "triage"):
        assert key in manifest
    assert manifest["training_data"]["posts"] == 24
    assert manifest["config"]["pipeline"]["tfidf__word__min_df"] == 1
    # no provenance file: thread folds, whose "worst batches" would be a few posts: the mean fit instead
    assert manifest["calibration"]["folds"] == "thread" and manifest["calibration"]["objective"] == "mean"
    assert "worst" not in (out / "README.md").read_text()
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".m.tmp")]


def test_train_unknown_config_key(small_corpus, tmp_path):
    cfg = tmp_path / "c.toml"
    cfg.write_text("[pipeline]\nclf__colour = 1\n")
    result = run("train", "--data", small_corpus, "--out", tmp_path / "m", "--config", cfg)
    assert result.exit_code == 1 and "unknown config key [pipeline] 'clf__colour'" in result.output
    assert "training on" not in result.output  # no progress line for a run that never starts
    assert not (tmp_path / "m").exists()


def test_train_bad_corpus_names_the_rows(tmp_path, small_corpus):
    df = pd.read_csv(small_corpus, dtype=str, keep_default_na=False)
    df.loc[3, "repair_outcome"] = "not_applicable"
    bad = tmp_path / "bad.csv"
    df.to_csv(bad, index=False)
    result = run("train", "--data", bad, "--out", tmp_path / "m")
    assert result.exit_code == 1 and "row(s) 5 break the consistency rule" in result.output
    assert result.output.count("\n") == 1 and "training on" not in result.output


def test_evaluate_table_json_and_gate(small_model_dir, small_corpus, tmp_path):
    result = run("evaluate", "-m", small_model_dir, "--data", small_corpus, "--bootstrap", 200)
    assert result.exit_code == 0 and "plain_tfidf_lr" in result.output and "keyword_rules" in result.output
    out = tmp_path / "metrics.json"
    result = run("evaluate", "-m", small_model_dir, "--data", small_corpus, "--format", "json", "-o", out,
                 "--bootstrap", 200)
    payload = json.loads(result.output)
    assert json.loads(out.read_text()) == payload
    assert set(payload["systems"]) == {"model", "majority", "keyword_rules", "plain_tfidf_lr"}
    low, high = payload["systems"]["model"]["risk"]["macro_f1_ci95"]
    assert low <= payload["systems"]["model"]["risk"]["macro_f1"] <= high
    gated = run("evaluate", "-m", small_model_dir, "--data", small_corpus, "--fail-under", "rupture_type=1.01",
                "--bootstrap", 200)
    assert gated.exit_code == 1 and "below --fail-under" in gated.output
    assert run("evaluate", "-m", small_model_dir, "--data", small_corpus, "--fail-under", "mood=0.5").exit_code == 2


def test_predict_jsonl_csv_and_stdin(small_model_dir, tmp_path):
    src = tmp_path / "in.csv"
    pd.DataFrame({"pid": ["a", "b", "c"], "body": ["I skipped my session", "great session", "she apologised"]}
                 ).to_csv(src, index=False)
    result = run("predict", "-m", small_model_dir, "--text-column", "body", "--id-column", "pid", src, "--quiet")
    assert result.exit_code == 0
    rows = [json.loads(line) for line in result.stdout.splitlines()]
    assert [r["id"] for r in rows] == ["a", "b", "c"]
    for r in rows:
        assert (r["rupture_type"] == "none") == (r["repair_outcome"] == "not_applicable")
        assert sum(r[f"p_risk_{k}"] for k in ("none", "concern", "crisis")) == pytest.approx(1, abs=1e-3)
    out = tmp_path / "out.csv"
    assert run("predict", "-m", small_model_dir, "--text-column", "body", "--format", "csv", "-o", out, src,
               "--explain", 2).exit_code == 0
    frame = pd.read_csv(out)
    assert len(frame) == 3 and "rupture_type_evidence" in frame.columns
    piped = run("predict", "-m", small_model_dir, "-", input="first post here\nsecond post here\n")
    assert piped.exit_code == 0 and len(piped.stdout.splitlines()) == 2


def test_predict_never_overwrites_and_leaves_no_partial_file(small_model_dir, tmp_path):
    src = tmp_path / "in.txt"
    src.write_text("fine post\n" * 5 + "1234\n")
    out = tmp_path / "out.jsonl"
    out.write_text("keep me")
    result = run("predict", "-m", small_model_dir, src, "-o", out)
    assert result.exit_code == 1 and "use --force" in result.output and out.read_text() == "keep me"
    result = run("predict", "-m", small_model_dir, src, "-o", out, "--force", "--batch-size", 2)
    assert result.exit_code == 1 and "row(s) 6" in result.output
    assert out.read_text() == "keep me" and len(list(tmp_path.iterdir())) == 2
    result = run("predict", "-m", small_model_dir, src, "-o", out, "--force", "--skip-invalid")
    assert result.exit_code == 0 and "skipped 1" in result.stderr and len(out.read_text().splitlines()) == 5


@pytest.mark.parametrize("setup, message", [
    ("missing", "input file not found"),
    ("empty", "is empty"),
    ("nocol", "no column 'text'; columns found: body"),
    ("latin", "not UTF-8"),
])
def test_predict_bad_input(small_model_dir, tmp_path, setup, message):
    path = tmp_path / "in.csv"
    if setup == "empty":
        path.write_text("")
    elif setup == "nocol":
        path.write_text("body\nhello\n")
    elif setup == "latin":
        path.write_bytes("text\ncaf\xe9\n".encode("latin-1"))
    result = run("predict", "-m", small_model_dir, path)
    assert result.exit_code == 1 and message in result.output
    assert "Traceback" not in result.output and len(result.output.strip().splitlines()) == 1


def test_model_hash_and_version_checks(small_model_dir, tmp_path):
    tampered = tmp_path / "tampered"
    shutil.copytree(small_model_dir, tampered)
    with open(tampered / "model.skops", "ab") as fh:
        fh.write(b"x")
    result = run("predict", "-m", tampered, "-", input="hello there\n")
    assert result.exit_code == 1 and "does not match the sha256" in result.output
    old = tmp_path / "old"
    shutil.copytree(small_model_dir, old)
    manifest = json.loads((old / "manifest.json").read_text())
    manifest["versions"]["scikit-learn"] = "1.2.0"
    (old / "manifest.json").write_text(json.dumps(manifest))
    result = run("predict", "-m", old, "-", input="hello there\n")
    assert result.exit_code == 1 and "made with scikit-learn 1.2.0" in result.output
    result = run("predict", "-m", tmp_path / "nothing", "-", input="hello\n")
    assert result.exit_code == 1 and "model folder not found" in result.output


def test_triage_needs_structure(small_model_dir, tmp_path):
    path = tmp_path / "posts.csv"
    path.write_text("text,author\nhello there,a\n")
    result = run("triage", "-m", small_model_dir, path)
    assert result.exit_code == 1 and "missing column(s) thread_id, position or created_at" in result.output



def test_evaluate_a_new_forum_needs_baseline_data(small_model_dir, small_corpus, tmp_path):
    df = pd.read_csv(small_corpus, dtype=str, keep_default_na=False)
    forum = tmp_path / "forum.csv"
    df.assign(split="new_forum").to_csv(forum, index=False)
    result = run("evaluate", "-m", small_model_dir, "--data", forum, "--split", "new_forum", "--bootstrap", 100)
    assert result.exit_code == 1 and "--baseline-data" in result.output
    result = run("evaluate", "-m", small_model_dir, "--data", forum, "--split", "new_forum", "--bootstrap", 100,
                 "--baseline-data", small_corpus, "--format", "json")
    assert result.exit_code == 0 and json.loads(result.output)["n_posts"] == len(df)
    result = run("evaluate", "-m", small_model_dir, "--data", small_corpus, "--split", "dev")
    assert result.exit_code == 1 and "no posts in split 'dev'" in result.output


def test_predict_in_batches_over_workers_keeps_input_order(small_model_dir, tmp_path):
    src = tmp_path / "in.txt"
    lines = [f"post number {i}: I skipped my session" if i % 2 else f"post number {i}: good session" for i in range(7)]
    src.write_text("\n".join(lines) + "\n")
    one = run("predict", "-m", small_model_dir, "--jobs", "1", "--explain", "2", src)
    many = run("predict", "-m", small_model_dir, "--jobs", "2", "--batch-size", "2", "--explain", "2", src)
    assert one.exit_code == 0 and many.exit_code == 0
    rows = [json.loads(line) for line in many.stdout.splitlines()]
    assert [r["row"] for r in rows] == list(range(1, 8))
    assert one.stdout == many.stdout
