"""Load time of a model folder: the skops file `train` writes now against the joblib pickle it wrote before.

The joblib folder is made from the same model as the previous rupture-nlp wrote it (format 1,
``joblib.dump(compress=3)``, scikit-learn's own TfidfVectorizer with its vocabulary as a dict). Each
load runs in a fresh process (imports excluded), through ``rupture_nlp.persist.load_model``, so both
include the manifest, the sha256 and the version checks; skops also vets the types. Median of
``--repeats`` runs, formats alternating.

    python scripts/load_time.py --model models/default --repeats 5 > docs/load_time.json
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

PROBE = """
import sys, time
import rupture_nlp.persist as p, skops.io, joblib, sklearn.pipeline, rupture_nlp.model
t = time.perf_counter()
p.load_model(sys.argv[1], trust_pickle=True)
print(time.perf_counter() - t)
"""


def legacy_copy(model_dir: Path, out: Path) -> Path:
    """The model as the previous release saved it: a format-1 folder with a joblib pickle."""
    import joblib
    from sklearn.feature_extraction.text import TfidfVectorizer

    from rupture_nlp.data import sha256_file
    from rupture_nlp.features import CompactTfidfVectorizer
    from rupture_nlp.persist import load_model

    model = load_model(model_dir)
    for est in (e for _, e in model.features_.named_steps["tfidf"].transformer_list):
        for step in (est.steps if hasattr(est, "steps") else [(None, est)]):
            if type(step[1]) is CompactTfidfVectorizer:
                step[1].__class__ = TfidfVectorizer
    del model.manifest_
    shutil.copytree(model_dir, out)
    (out / "model.skops").unlink()
    joblib.dump(model, out / "model.joblib", compress=3)
    manifest = json.loads((out / "manifest.json").read_text())
    manifest.update(format_version=1, artifact="model.joblib", artifact_sha256=sha256_file(out / "model.joblib"))
    (out / "manifest.json").write_text(json.dumps(manifest))
    return out


def load_seconds(folder: Path) -> float:
    result = subprocess.run([sys.executable, "-c", PROBE, str(folder)], capture_output=True, text=True, check=True)
    return float(result.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="models/default", help="A model folder written by `train` (skops).")
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    skops_dir = Path(args.model)
    with tempfile.TemporaryDirectory() as tmp:
        joblib_dir = legacy_copy(skops_dir, Path(tmp) / "legacy")
        times: dict[str, list[float]] = {"skops": [], "joblib": []}
        for _ in range(args.repeats):
            times["joblib"].append(load_seconds(joblib_dir))
            times["skops"].append(load_seconds(skops_dir))
        sizes = {"skops": os.path.getsize(skops_dir / "model.skops"),
                 "joblib": os.path.getsize(joblib_dir / "model.joblib")}
    median = {k: statistics.median(v) for k, v in times.items()}
    print(json.dumps({"model": str(skops_dir), "repeats": args.repeats, "seconds": times, "median_seconds": median,
                      "ratio_skops_over_joblib": median["skops"] / median["joblib"], "file_bytes": sizes}, indent=2))


if __name__ == "__main__":
    main()
