"""Sentence evidence: faithfulness on the test split and forum C, and the cost of `predict --explain 3`.

Faithfulness (rupture_nlp.faithfulness.deletion_rates): the share of (post, facet) pairs, over posts
with at least two sentences, where deleting the top-k evidence sentences lowers the label's
probability (full pipeline, recalibrated) more than deleting k random other sentences.

Cost: `rupture-nlp predict` with and without `--explain 3` on the benchmark input of
scripts/benchmark.py (posts drawn with replacement from data/posts.csv), same model, same --jobs,
run alternately (plain, explain, plain, explain, ...) so that both see the same machine load; the
ratio is of the medians. Results go to docs/explanations.md by hand; rerun with:

    python scripts/explanation_benchmark.py --model models/default --posts 10000 --repeats 3 \
        > docs/explanation_results.json
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "scripts"))


def timed(cmd: list[str]) -> float:
    start = time.perf_counter()
    subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL)
    return time.perf_counter() - start


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", default=str(ROOT / "models" / "default"))
    ap.add_argument("--posts", type=int, default=10_000)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--jobs", default="1,2", help="--jobs values to time, comma separated")
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()

    from benchmark import make_input

    from rupture_nlp.data import read_corpus
    from rupture_nlp.evidence import EvidenceScorer, evidence_of
    from rupture_nlp.faithfulness import deletion_rates
    from rupture_nlp.persist import load_model

    model = load_model(args.model)
    results: dict = {"faithfulness": {}, "timing": {}}
    sets = {"test": read_corpus(ROOT / "data" / "posts.csv").query("split == 'test'"),
            "forum_c": read_corpus(ROOT / "data" / "adaptation" / "forum_c.csv")}
    for name, frame in sets.items():
        texts = frame["text"].tolist()
        results["faithfulness"][name] = deletion_rates(model, texts, ks=(1, 2), seed=args.seed)
        scorer = EvidenceScorer(model)
        evidence_of(model, texts, 3, scorer)
        results["faithfulness"][name]["plain_route_posts"] = scorer.fallbacks
        results["faithfulness"][name]["all_posts"] = len(texts)
        print(f"{name}: {json.dumps(results['faithfulness'][name])}", file=sys.stderr)

    work = Path(tempfile.mkdtemp(prefix="rupture-explain-bench-"))
    path = make_input(args.posts, work)
    base = [sys.executable, "-m", "rupture_nlp", "predict", "-m", args.model, "--quiet"]
    for jobs in [int(j) for j in args.jobs.split(",")]:
        plain, explained = [], []
        for _ in range(args.repeats):
            plain.append(timed(base + ["--jobs", str(jobs), str(path)]))
            explained.append(timed(base + ["--jobs", str(jobs), "--explain", "3", str(path)]))
        key = f"{args.posts:,} posts, --jobs {jobs}"
        results["timing"][key] = {
            "plain_seconds": [round(t, 2) for t in plain], "explain3_seconds": [round(t, 2) for t in explained],
            "ratio_of_medians": round(statistics.median(explained) / statistics.median(plain), 2)}
        print(f"{key}: {json.dumps(results['timing'][key])}", file=sys.stderr)
    path.unlink()
    print(json.dumps(results, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
