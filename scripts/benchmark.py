"""Benchmark: training time, prediction throughput and peak memory of `predict`, ours against the
plain default scikit-learn pipeline (TfidfVectorizer() + LogisticRegression() per facet), in one run
on one machine. Results go to docs/benchmarks.md by hand; rerun with:

    python scripts/benchmark.py --posts 100000 --memory-sizes 10000,1000000

Inputs are posts drawn with replacement from data/posts.csv (any post text would do: speed depends
on length, and these have the corpus's lengths). Peak memory is the summed RSS of the predicting
process and its worker processes, sampled every 50 ms.
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


def tree_rss_kb(pid: int) -> int:
    """Resident memory of a process and all its descendants, in KiB."""
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
        stack += children.get(p, [])
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


def main() -> int:
    ap = argparse.ArgumentParser()
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
    corpus = read_corpus(ROOT / "data" / "posts.csv")
    train = corpus[corpus["split"] == "train"]
    results: dict = {"machine": {"cpus": os.cpu_count()}, "train_posts": len(train)}
    t = time.perf_counter()
    train_model(TrainRequest(data=ROOT / "data" / "posts.csv", out=work / "ours"))
    results["train_seconds"] = {"ours (with 5-fold CV, calibration, thresholds)": time.perf_counter() - t}
    t = time.perf_counter()
    joblib.dump(plain_pipelines(train), work / "plain.joblib")
    results["train_seconds"]["plain"] = time.perf_counter() - t
    ours = [sys.executable, "-m", "rupture_nlp", "predict", "-m", str(work / "ours"), "--quiet"]
    plain = [sys.executable, __file__, "--plain-predict", str(work / "plain.joblib")]
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
