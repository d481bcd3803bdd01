"""Hold writing against the style of real posts, and find phrases shared with other posts.

    python scripts/corpus_style.py data/raw/batch_13.txt            # a manuscript (or several)
    python scripts/corpus_style.py data/posts.csv                   # a corpus CSV
    python scripts/corpus_style.py FILE --against data/posts.csv --against 'data/raw/batch_*.txt'

For each measure of ../shared/realism/profile.py it prints the real posts' figure, yours and the
ratio (lengths on opening posts only, as the real posts are mostly opening posts), then the summary
distance. Then the 8-word runs the file shares with itself or with the --against files: a stock
phrase repeated across writers is a shortcut for the model and a mark of writing, not of people.
Lines quoted from another post ("> ...") are left out of the run count: quoting is copying by design.
It reads text only; it never writes or alters a post.
"""
from __future__ import annotations

import argparse
import csv
import glob
import importlib.util
import json
import math
import re
import sys
from collections import defaultdict
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from corpus_batch import parse  # noqa: E402

REALISM = Path(__file__).resolve().parents[2] / "shared" / "realism"
RUN = 8


def load_profile():
    spec = importlib.util.spec_from_file_location("realism_profile", REALISM / "profile.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module, json.loads((REALISM / "real.json").read_text())


def read_posts(path: str) -> list[dict]:
    """Posts as dicts with id, text, opening (bool), from a manuscript or a corpus CSV."""
    if path.endswith(".csv"):
        csv.field_size_limit(sys.maxsize)
        with open(path, newline="", encoding="utf-8-sig") as fh:
            return [{"id": r.get("post_id") or str(i), "text": r["text"],
                     "opening": str(r.get("position", "0")) == "0"} for i, r in enumerate(csv.DictReader(fh))]
    posts, errors = parse(Path(path))
    if errors:
        print(f"{path}: {len(errors)} format errors (run corpus_batch.py); first: {errors[0]}", file=sys.stderr)
    first = {}
    for p in posts:
        first.setdefault(p["thread"], p["local_id"])
    stem = Path(path).stem
    return [{"id": f"{stem}:{p['thread']}:{p['local_id']}", "text": p["text"],
             "opening": first[p["thread"]] == p["local_id"]} for p in posts]


def unquoted(text: str) -> str:
    return "\n".join(line for line in text.splitlines() if not line.lstrip().startswith(">"))


def runs(text: str, quotes) -> set[str]:
    words = re.findall(r"[a-z']+", unquoted(text).lower().translate(quotes))
    return {" ".join(words[i:i + RUN]) for i in range(len(words) - RUN + 1)}


def shared_runs(posts: list[dict], others: list[dict], quotes) -> dict[str, set[str]]:
    """For each post of `posts`: the 8-word runs it shares with any other post (of either list)."""
    where: dict[str, set[str]] = defaultdict(set)
    for p in posts + others:
        for r in runs(p["text"], quotes):
            where[r].add(p["id"])
    out = {}
    for p in posts:
        common = {r for r in runs(p["text"], quotes) if len(where[r]) > 1}
        if common:
            out[p["id"]] = common
    return out


def style_table(mod, real, posts) -> tuple[list[str], float]:
    mine = mod.profile([p["text"] for p in posts])
    opening = mod.profile([p["text"] for p in posts if p["opening"]] or [p["text"] for p in posts])
    lines = [f"{'measure':56s} {'real':>7s} {'yours':>7s} {'ratio':>6s}"]
    logs = []
    for key, rv in real.items():
        if key in ("posts", "function words"):
            continue
        length = key.startswith("words per post")
        mv = (opening if length else mine)[key]
        ratio = mv / rv if rv else float("inf")
        if not length and mv:
            logs.append(abs(math.log(ratio)))
        flag = "  <- off by more than 1.5x" if ratio > 1.5 or ratio < 1 / 1.5 else ""
        label = key + (" (opening posts)" if length else "")
        lines.append(f"{label:56s} {rv:7.1f} {mv:7.1f} {ratio:6.2f}{flag}")
    distance = sum(logs) / len(logs)
    lines.append(f"posts {mine['posts']} (opening {opening['posts']}); style distance, mean |log ratio| "
                 f"(0 = same, 0.25 = the target): {distance:.3f}")
    return lines, distance


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("files", nargs="+", help="manuscripts (.txt) or corpus CSVs")
    ap.add_argument("--against", action="append", default=[],
                    help="files (globs allowed) to look for shared 8-word runs in; repeatable")
    ap.add_argument("--show", type=int, default=25, help="how many shared runs to list")
    args = ap.parse_args()
    mod, real = load_profile()
    posts = [p for f in args.files for p in read_posts(f)]
    if not posts:
        sys.exit("no posts read")
    lines, _ = style_table(mod, real, posts)
    print("\n".join(lines))
    mine = set(args.files)
    others = [p for pattern in args.against for f in sorted(glob.glob(pattern))
              if f not in mine for p in read_posts(f)]
    shared = shared_runs(posts, others, mod.QUOTES)
    print(f"\nposts sharing an {RUN}-word run with another post: {len(shared)} of {len(posts)} "
          f"({100 * len(shared) / len(posts):.1f}%; the bound is 15%)")
    for pid, rs in sorted(shared.items(), key=lambda kv: -len(kv[1]))[:args.show]:
        print(f"  {pid}: " + " | ".join(sorted(rs)[:3]))
    return 0


if __name__ == "__main__":
    sys.exit(main())
