"""Parquet in and out: predict, triage, sample and evaluate on a file or a dataset folder."""

from __future__ import annotations

import json

import pandas as pd
import pytest
from click.testing import CliRunner

from rupture_nlp.cli import main
from tests.conftest import EXAMPLES

pytestmark = pytest.mark.code


def run(*args):
    return CliRunner().invoke(main, [str(a) for a in args], catch_exceptions=False)


def jsonl(text: str) -> pd.DataFrame:
    return pd.DataFrame([json.loads(line) for line in text.splitlines()])


@pytest.fixture()
def threads() -> pd.DataFrame:
    df = pd.read_csv(EXAMPLES / "threads.csv", dtype={"position": int})
    return df.assign(num_id=range(100, 100 + len(df)))


def test_predict_parquet_round_trip_keeps_ids_and_types(small_model_dir, threads, tmp_path):
    src = tmp_path / "posts.parquet"
    threads.to_parquet(src)
    out = tmp_path / "labels.parquet"
    result = run("predict", "-m", small_model_dir, "--id-column", "num_id", "--format", "parquet", "-o", out, src,
                 "--batch-size", 4, "--jobs", 1, "--quiet")
    assert result.exit_code == 0, result.output
    got = pd.read_parquet(out)
    assert got["id"].tolist() == threads["num_id"].tolist() and got["id"].dtype == "int64"
    assert got["row"].tolist() == list(range(1, len(threads) + 1))
    assert got["p_risk_crisis"].dtype == "float64" and pd.api.types.is_string_dtype(got["risk"])
    as_jsonl = run("predict", "-m", small_model_dir, "--id-column", "num_id", src, "--quiet")
    rows = jsonl(as_jsonl.stdout)
    pd.testing.assert_frame_equal(got, rows, check_dtype=False)
    again = run("predict", "-m", small_model_dir, "--format", "parquet", "-o", out, src, "--quiet")
    assert again.exit_code == 1 and "--force" in again.output


def test_dataset_folder_in_and_out_is_one_part_per_batch(small_model_dir, threads, tmp_path):
    folder = tmp_path / "ds"
    folder.mkdir()
    threads.iloc[:5].to_parquet(folder / "part-0.parquet")
    threads.iloc[5:].to_parquet(folder / "part-1.parquet")
    (folder / "_SUCCESS").write_text("")
    single = tmp_path / "all.parquet"
    threads.to_parquet(single)
    out = tmp_path / "labels"
    result = run("predict", "-m", small_model_dir, "--format", "parquet", "-o", out, "--batch-size", 4,
                 "--jobs", 1, folder, "--quiet")
    assert result.exit_code == 0, result.output
    assert sorted(p.name for p in out.iterdir()) == ["part-00000.parquet", "part-00001.parquet", "part-00002.parquet"]
    from_folder = pd.read_parquet(out)
    from_file = jsonl(run("predict", "-m", small_model_dir, single, "--quiet").stdout)
    assert from_folder["row"].tolist() == list(range(1, len(threads) + 1))
    assert from_folder["rupture_type"].tolist() == from_file["rupture_type"].tolist()


def test_parquet_without_the_text_column_is_one_clear_line(small_model_dir, threads, tmp_path):
    src = tmp_path / "posts.parquet"
    threads.drop(columns=["text"]).to_parquet(src)
    for command in ("predict", "sample", "triage"):
        extra = ["-o", tmp_path / f"{command}.csv"] if command == "sample" else []
        result = run(command, "-m", small_model_dir, src, *extra)
        assert result.exit_code == 1, command
        assert "no column 'text'" in result.output and "--text-column" in result.output, command
        assert "Traceback" not in result.output
    assert run("predict", "-m", small_model_dir, "--format", "parquet", src).exit_code == 1
    broken = tmp_path / "broken.parquet"
    broken.write_text("not parquet")
    result = run("predict", "-m", small_model_dir, broken)
    assert result.exit_code == 1 and "not a readable Parquet file" in result.output


def test_triage_parquet_gives_the_csv_queue(small_model_dir, threads, tmp_path):
    src = tmp_path / "threads.parquet"
    threads.to_parquet(src)
    out = tmp_path / "queue.parquet"
    assert run("triage", "-m", small_model_dir, "--format", "parquet", "-o", out, src, "--quiet").exit_code == 0
    from_csv = jsonl(run("triage", "-m", small_model_dir, EXAMPLES / "threads.csv", "--quiet").stdout)
    got = pd.read_parquet(out)
    assert got["thread_id"].tolist() == from_csv["thread_id"].tolist()
    assert got["priority"].tolist() == from_csv["priority"].tolist()
    assert got["confidence"].to_numpy() == pytest.approx(from_csv["confidence"].to_numpy())


def test_sample_and_evaluate_read_parquet(small_model_dir, small_corpus, threads, tmp_path):
    src = tmp_path / "threads.parquet"
    threads.to_parquet(src)
    sheet = tmp_path / "sheet.csv"
    result = run("sample", "-m", small_model_dir, "--n", 3, "--id-column", "post_id", "-o", sheet, src, "--quiet")
    assert result.exit_code == 0, result.output
    assert set(pd.read_csv(sheet)["post_id"]) <= set(threads["post_id"])
    corpus = pd.read_csv(small_corpus, dtype=str, keep_default_na=False)
    folder = tmp_path / "corpus"
    folder.mkdir()
    corpus.assign(position=corpus["position"].astype(int)).to_parquet(folder / "part-0.parquet")
    as_parquet = run("evaluate", "-m", small_model_dir, "--data", folder, "--format", "json", "--bootstrap", 100)
    as_csv = run("evaluate", "-m", small_model_dir, "--data", small_corpus, "--format", "json", "--bootstrap", 100)
    assert as_parquet.exit_code == 0, as_parquet.output
    assert json.loads(as_parquet.stdout)["systems"]["model"] == json.loads(as_csv.stdout)["systems"]["model"]
