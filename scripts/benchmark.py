"""Benchmark: training time, prediction throughput and peak memory of `predict`, ours against the
plain default scikit-learn pipeline (TfidfVectorizer() + LogisticRegression() per facet), in one run
on one machine. Results go to docs/benchmarks.md by hand; rerun with:

    python scripts/benchmark.py --posts 100000 --memory-sizes 10000,1000000

Inputs are posts drawn with replacement from data/posts.csv (any post text would do: speed depends
on length, and these have the corpus's lengths). Peak memory is the summed RSS of the predicting
process and its worker processes, sampled every 50 ms.

The per-core and Dask sections alone (what docs/benchmarks.md "Past one machine" reports):

    python scripts/benchmark.py --sections core,dask --posts-single 20000 --dask-posts 100000
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def tree_rss_kb(pid: int, children_too: bool = True) -> int:
    """Resident memory of a process and (by default) all its descendants, in KiB."""
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat") as fh:
                    ppid = int(fh.read().rsplit(")", 1)[1].split()[1])
                children.setdefault(ppid, []).append(int(entry))
            except (OSError, ValueError, IndexError):
                continue
    total, stack = 0, [pid]
    while stack:
        p = stack.pop()
        try:
            with open(f"/proc/{p}/status") as fh:
                for line in fh:
                    if line.startswith("VmRSS:"):
                        total += int(line.split()[1])
        except OSError:
            pass
        stack += children.get(p, []) if children_too else []
    return total


def run_measured(cmd: list[str]) -> tuple[float, int]:
    start = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL)
    peak = 0
    while proc.poll() is None:
        peak = max(peak, tree_rss_kb(proc.pid))
        time.sleep(0.05)
    if proc.returncode:
        sys.exit(f"command failed: {' '.join(cmd)}")
    return time.perf_counter() - start, peak


def make_input(n: int, folder: Path) -> Path:
    import pandas as pd

    path = folder / f"posts_{n}.jsonl"
    texts = pd.read_csv(ROOT / "data" / "posts.csv", dtype=str, keep_default_na=False)["text"]
    with open(path, "w", encoding="utf-8") as fh:
        rng = __import__("numpy").random.default_rng(0)
        for start in range(0, n, 10000):
            for t in texts.to_numpy()[rng.integers(0, len(texts), min(10000, n - start))]:
                fh.write(json.dumps({"text": t}) + "\n")
    return path


def plain_predict(model_path: str, input_path: str, batch_size: int = 2000) -> None:
    """What a user of the plain pipeline would run: read in batches, label, write JSON Lines."""
    import joblib
    import pandas as pd

    pipes = joblib.load(model_path)
    for chunk in pd.read_json(input_path, lines=True, chunksize=batch_size):
        out = {}
        for facet, pipe in pipes.items():
            proba = pipe.predict_proba(chunk["text"])
            out[facet] = pipe.classes_[proba.argmax(axis=1)]
            out[f"{facet}_confidence"] = proba.max(axis=1)
        sys.stdout.write(pd.DataFrame(out).to_json(orient="records", lines=True))


def make_parquet(n: int, folder: Path, rows_per_file: int = 20_000, row_group: int | None = None) -> Path:
    """A Parquet dataset folder of ``n`` posts (ids and text), ``rows_per_file`` posts a file."""
    import numpy as np
    import pandas as pd

    texts = pd.read_csv(ROOT / "data" / "posts.csv", dtype=str, keep_default_na=False)["text"].to_numpy()
    out = folder / f"posts_{n}_{rows_per_file}_{row_group}"
    out.mkdir()
    rng = np.random.default_rng(0)
    for i, start in enumerate(range(0, n, rows_per_file)):
        k = min(rows_per_file, n - start)
        pd.DataFrame({"post_id": np.arange(start, start + k), "text": texts[rng.integers(0, len(texts), k)]}).to_parquet(
            out / f"part-{i:05d}.parquet", row_group_size=row_group or rows_per_file)
    return out


def dask_run(model_dir: Path, dataset: Path, workers: int, out: Path, partition_rows: int = 20_000) -> dict:
    """Time ``predict --engine dask`` (in this process, on a local cluster of ``workers`` processes) and
    sample the resident memory of each worker process every 100 ms."""
    import threading

    import rupture_nlp.dask_engine as engine
    from rupture_nlp.dask_engine import DaskRequest, connect, predict_dask
    from rupture_nlp.data import InputSpec

    engine.PARTITION_ROWS = partition_rows
    peaks: dict[int, int] = {}
    stop = threading.Event()

    def sample():
        me = os.getpid()
        while not stop.is_set():
            for pid in descendants(me):
                peaks[pid] = max(peaks.get(pid, 0), tree_rss_kb(pid, children_too=False))
            time.sleep(0.1)

    with connect(n_workers=workers) as client:
        client.run(lambda: None)
        thread = threading.Thread(target=sample, daemon=True)
        thread.start()
        t = time.perf_counter()
        stats = predict_dask(client, DaskRequest(model_dir=str(model_dir), spec=InputSpec(path=str(dataset),
                                                 id_column="post_id"), output=str(out), output_format="parquet"))
        seconds = time.perf_counter() - t
        stop.set()
        thread.join()
    return {"posts": stats["posts"], "partitions": stats["partitions"], "seconds": round(seconds, 2),
            "posts_per_second": round(stats["posts"] / seconds, 1),
            "peak_rss_per_worker_mib": round(max(peaks.values()) / 1024, 1) if peaks else None}


def descendants(pid: int) -> list[int]:
    out, stack = [], [pid]
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat") as fh:
                    children.setdefault(int(fh.read().rsplit(")", 1)[1].split()[1]), []).append(int(entry))
            except (OSError, ValueError, IndexError):
                continue
    while stack:
        for c in children.get(stack.pop(), []):
            out.append(c)
            stack.append(c)
    return out


def profile_predict(model_dir: Path, n: int = 4000) -> list[str]:
    """Where one process spends its time labelling ``n`` posts (cProfile, cumulative, top 15)."""
    import cProfile
    import io
    import pstats

    import pandas as pd

    from rupture_nlp.persist import load_model
    from rupture_nlp.predict import predict_frame

    texts = pd.read_csv(ROOT / "data" / "posts.csv", dtype=str, keep_default_na=False)["text"]
    texts = texts.sample(n, replace=True, random_state=0).tolist()
    model = load_model(model_dir)
    predict_frame(model, texts[:200])
    prof = cProfile.Profile()
    prof.enable()
    for start in range(0, n, 2000):
        predict_frame(model, texts[start:start + 2000])
    prof.disable()
    buf = io.StringIO()
    pstats.Stats(prof, stream=buf).sort_stats("tottime").print_stats(15)
    return [line for line in buf.getvalue().splitlines() if line.strip()][-16:]


def core_and_dask(args, work: Path, ours_dir: Path, plain_cmd: list[str], ours_cmd: list[str]) -> dict:
    results: dict = {}
    if "core" in args.sections:
        # Whole runs (start-up, model load, reading and writing included) at two sizes, ours and plain
        # side by side; the difference of the two sizes gives each one's rate once it is running,
        # and what is left of the small run is its fixed start-up cost.
        sizes = (args.posts_single, 5 * args.posts_single)
        seconds: dict[tuple[str, int], float] = {}
        for n in sizes:
            path = make_input(n, work)
            for name, cmd in (("ours", ours_cmd + ["--jobs", "1", str(path)]), ("plain", plain_cmd + [str(path)])):
                seconds[name, n] = run_measured(cmd)[0]
        small, big = sizes
        rates = {}
        for name in ("ours", "plain"):
            for n in sizes:
                rates[f"{name}, 1 process, {n:,} posts"] = round(n / seconds[name, n], 1)
            marginal = (big - small) / (seconds[name, big] - seconds[name, small])
            rates[f"{name}, 1 process, once running"] = round(marginal, 1)
            rates[f"{name}, start-up seconds"] = round(seconds[name, small] - small / marginal, 2)
        for n in sizes:
            rates[f"ratio ours / plain, {n:,} posts"] = round(rates[f"ours, 1 process, {n:,} posts"]
                                                            / rates[f"plain, 1 process, {n:,} posts"], 3)
        rates["ratio ours / plain, once running"] = round(rates["ours, 1 process, once running"]
                                                          / rates["plain, 1 process, once running"], 3)
        results["per_core_posts_per_second"] = rates
        results["profile_ours_tottime_top15"] = profile_predict(ours_dir)
    if "dask" in args.sections:
        data = make_parquet(args.dask_posts, work)
        runs = {}
        for workers in (1, 2):
            runs[f"{workers} worker(s), {args.dask_posts:,} posts"] = dask_run(ours_dir, data, workers,
                                                                              work / f"out_{workers}")
        small = make_parquet(args.dask_posts // 5, work)
        runs[f"2 worker(s), {args.dask_posts // 5:,} posts"] = dask_run(ours_dir, small, 2, work / "out_small")
        tiny = make_parquet(2000, work, rows_per_file=2000, row_group=10)  # 200 partitions of 10 posts
        runs["2 worker(s), 2,000 posts in 200 partitions (per-task overhead)"] = dask_run(ours_dir, tiny, 2,
                                                                                         work / "out_tiny", 10)
        one, two = (runs[f"{w} worker(s), {args.dask_posts:,} posts"] for w in (1, 2))
        per_post = 2 / two["posts_per_second"]  # seconds of one worker per post, from the 2-worker run
        t = runs["2 worker(s), 2,000 posts in 200 partitions (per-task overhead)"]
        overhead = max(0.0, (t["seconds"] - 2000 * per_post / 2) * 2 / t["partitions"])
        results["dask"] = runs | {"scaling 2 workers / 1": round(two["posts_per_second"] / one["posts_per_second"], 3),
                                  "per_post_seconds_one_worker": per_post, "per_task_overhead_seconds": overhead}
    return results


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--sections", default="all", help="all, or some of core,dask (comma-separated)")
    ap.add_argument("--dask-posts", type=int, default=1_000_000, help="posts of the Parquet dataset for Dask")
    ap.add_argument("--posts", type=int, default=100_000)
    ap.add_argument("--memory-sizes", default="10000,1000000")
    ap.add_argument("--posts-single", type=int, default=20_000, help="posts for the one-process run")
    ap.add_argument("--plain-predict", nargs=2, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.plain_predict:
        plain_predict(*args.plain_predict)
        return 0
    import joblib

    from rupture_nlp.baselines import plain_pipelines
    from rupture_nlp.data import read_corpus
    from rupture_nlp.train import TrainRequest, train_model

    work = Path(tempfile.mkdtemp(prefix="rupture-bench-"))
    ours = [sys.executable, "-m", "rupture_nlp", "predict", "-m", str(work / "ours"), "--quiet"]
    plain = [sys.executable, __file__, "--plain-predict", str(work / "plain.joblib")]
    if args.sections != "all":
        args.sections = args.sections.split(",")
        corpus = read_corpus(ROOT / "data" / "posts.csv")
        train_model(TrainRequest(data=ROOT / "data" / "posts.csv", out=work / "ours"))
        joblib.dump(plain_pipelines(corpus[corpus["split"] == "train"]), work / "plain.joblib")
        results = {"machine": {"cpus": os.cpu_count()}, **core_and_dask(args, work, work / "ours", plain, ours)}
        print(json.dumps(results, indent=2))
        return 0
    corpus = read_corpus(ROOT / "data" / "posts.csv")
    train = corpus[corpus["split"] == "train"]
    results: dict = {"machine": {"cpus": os.cpu_count()}, "train_posts": len(train)}
    t = time.perf_counter()
    train_model(TrainRequest(data=ROOT / "data" / "posts.csv", out=work / "ours"))
    results["train_seconds"] = {"ours (with 5-fold CV, calibration, thresholds)": time.perf_counter() - t}
    t = time.perf_counter()
    joblib.dump(plain_pipelines(train), work / "plain.joblib")
    results["train_seconds"]["plain"] = time.perf_counter() - t
    big = make_input(args.posts, work)
    single = make_input(args.posts_single, work)
    results["throughput_posts_per_second"] = {}
    for name, cmd, n in ((f"ours, {args.posts:,} posts, 2 processes", ours + [str(big)], args.posts),
                         (f"plain, {args.posts:,} posts", plain + [str(big)], args.posts),
                         (f"ours, {args.posts_single:,} posts, 1 process", ours + ["--jobs", "1", str(single)],
                          args.posts_single),
                         (f"plain, {args.posts_single:,} posts", plain + [str(single)], args.posts_single)):
        seconds, _ = run_measured(cmd)
        results["throughput_posts_per_second"][name] = round(n / seconds, 1)
    results["peak_memory_mib"] = {}
    for n in [int(x) for x in args.memory_sizes.split(",")]:
        path = make_input(n, work)
        for name, cmd in (("ours", ours + [str(path)]), ("plain", plain + [str(path)])):
            seconds, peak = run_measured(cmd)
            results["peak_memory_mib"][f"{name} {n:,} posts"] = round(peak / 1024, 1)
            results["throughput_posts_per_second"][f"{name}, {n:,} posts (memory run)"] = round(n / seconds, 1)
        path.unlink()
    print(json.dumps(results, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
