"""--engine dask on a real local cluster (two single-threaded worker processes on 127.0.0.1).

Each test compares with the local engine on the same input: the rows must be the same, in order.
"""

from __future__ import annotations

import json
import os
import signal
import sys

import pandas as pd
import pytest
from click.testing import CliRunner

from rupture_nlp.cli import main
from tests.conftest import EXAMPLES

pytest.importorskip("distributed")
pytestmark = pytest.mark.dask


def run(*args):
    return CliRunner().invoke(main, [str(a) for a in args], catch_exceptions=False)


@pytest.fixture(scope="module")
def cluster():
    import logging

    from distributed import LocalCluster

    with LocalCluster(n_workers=2, threads_per_worker=1, processes=True, host="127.0.0.1",
                      dashboard_address=None, silence_logs=logging.CRITICAL) as c:
        yield c


@pytest.fixture(scope="module")
def threads_dataset(tmp_path_factory):
    """The example threads, repeated 6 times under new ids, over 6 Parquet files; thread T1-E01 has
    its posts split between the first two files."""
    base = pd.read_csv(EXAMPLES / "threads.csv", dtype={"position": int})
    copies = [base.assign(thread_id=f"T{k}-" + base["thread_id"], post_id=f"T{k}-" + base["post_id"])
              for k in range(6)]
    df = pd.concat(copies, ignore_index=True)
    folder = tmp_path_factory.mktemp("dask") / "threads"
    folder.mkdir()
    cuts = [0, 2, 9, 18, 27, 40, len(df)]  # the cut at 2 splits thread T0-E01 (posts 0-2)
    for i in range(6):
        df.iloc[cuts[i]:cuts[i + 1]].to_parquet(folder / f"part-{i}.parquet")
    return folder


def test_predict_on_dask_gives_the_local_rows(cluster, small_model_dir, threads_dataset):
    local = run("predict", "-m", small_model_dir, "--id-column", "post_id", "--jobs", 1, "--batch-size", 7,
                threads_dataset, "--quiet")
    dask = run("predict", "-m", small_model_dir, "--id-column", "post_id", "--engine", "dask",
               "--scheduler", cluster.scheduler_address, threads_dataset)
    assert dask.exit_code == 0, dask.output
    assert dask.stdout == local.stdout and len(local.stdout.splitlines()) == 54
    assert "6 partition(s)" in dask.stderr and "2 worker(s)" in dask.stderr


def test_parquet_round_trip_on_dask_is_one_part_per_partition(cluster, small_model_dir, threads_dataset, tmp_path):
    out = tmp_path / "labels"
    result = run("predict", "-m", small_model_dir, "--engine", "dask", "--scheduler", cluster.scheduler_address,
                 "--format", "parquet", "-o", out, threads_dataset, "--quiet")
    assert result.exit_code == 0, result.output
    assert len(list(out.glob("part-*.parquet"))) == 6
    local = tmp_path / "local.parquet"
    run("predict", "-m", small_model_dir, "--format", "parquet", "-o", local, threads_dataset, "--quiet")
    pd.testing.assert_frame_equal(pd.read_parquet(out), pd.read_parquet(local))


def test_triage_on_dask_rolls_up_a_thread_split_across_partitions(cluster, small_model_dir, threads_dataset):
    local = run("triage", "-m", small_model_dir, threads_dataset, "--quiet")
    dask = run("triage", "-m", small_model_dir, "--engine", "dask", "--scheduler", cluster.scheduler_address,
               threads_dataset, "--quiet")
    assert dask.exit_code == 0, dask.output
    assert dask.stdout == local.stdout
    queue = {r["thread_id"]: r for r in map(json.loads, dask.stdout.splitlines())}
    assert len(queue) == 24 and queue["T0-E01"]["n_posts"] == 3  # whole, though in two files


def test_csv_glob_on_dask_gives_the_local_rows(cluster, small_model_dir, tmp_path):
    posts = pd.read_csv(EXAMPLES / "threads.csv", dtype=str, keep_default_na=False)
    posts.iloc[:5].to_csv(tmp_path / "a.csv", index=False)
    posts.iloc[5:].to_csv(tmp_path / "b.csv", index=False)
    dask = run("predict", "-m", small_model_dir, "--engine", "dask", "--scheduler", cluster.scheduler_address,
               "--id-column", "post_id", "--format", "csv", tmp_path / "*.csv", "--quiet")
    local = run("predict", "-m", small_model_dir, "--id-column", "post_id", "--format", "csv",
                EXAMPLES / "threads.csv", "--quiet")
    assert dask.exit_code == 0, dask.output
    assert dask.stdout == local.stdout


def test_parquet_without_the_text_column_on_dask(small_model_dir, threads_dataset, tmp_path):
    src = tmp_path / "no_text.parquet"
    pd.read_parquet(threads_dataset).drop(columns=["text"]).to_parquet(src)
    for command in ("predict", "triage"):
        result = run(command, "-m", small_model_dir, "--engine", "dask", src)  # fails before any cluster starts
        assert result.exit_code == 1 and "no column 'text'" in result.output, command
        assert "Traceback" not in result.output


def test_unreachable_scheduler_is_one_clear_line(small_model_dir, threads_dataset):
    result = run("predict", "-m", small_model_dir, "--engine", "dask", "--scheduler", "tcp://127.0.0.1:9",
                 threads_dataset)
    assert result.exit_code == 1
    assert "cannot reach the Dask scheduler at tcp://127.0.0.1:9" in result.output
    assert "Traceback" not in result.output and len(result.output.strip().splitlines()) == 1


def test_without_the_extra_it_says_what_to_install(small_model_dir, threads_dataset, monkeypatch):
    monkeypatch.setitem(sys.modules, "distributed", None)
    result = run("predict", "-m", small_model_dir, "--engine", "dask", threads_dataset)
    assert result.exit_code == 1 and 'pip install "rupture-nlp[dask]"' in result.output


def test_a_worker_killed_mid_run_costs_only_its_tasks(cluster, small_model_dir, threads_dataset, tmp_path):
    from distributed import Client

    from rupture_nlp.dask_engine import DaskRequest, predict_dask
    from rupture_nlp.data import InputSpec

    out = tmp_path / "labels.jsonl"
    killed = []
    with Client(cluster.scheduler_address, timeout=10) as client:
        def kill_one(done, total, posts):
            if not killed:
                pid = next(iter(client.run(os.getpid).values()))
                os.kill(pid, signal.SIGKILL)
                killed.append(pid)

        stats = predict_dask(client, DaskRequest(model_dir=str(small_model_dir),
                                                 spec=InputSpec(path=str(threads_dataset), id_column="post_id"),
                                                 output=str(out), on_part=kill_one))
        client.wait_for_workers(2, timeout=60)  # the nanny restarts it, for the tests that follow
    assert killed and stats["posts"] == 54
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    assert [r["row"] for r in rows] == list(range(1, 55))
    local = run("predict", "-m", small_model_dir, "--id-column", "post_id", threads_dataset, "--quiet")
    assert rows == [json.loads(line) for line in local.stdout.splitlines()]
