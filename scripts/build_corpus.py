"""Build data/posts.csv and data/provenance.csv from the writers' manuscripts (data/raw/batch_*.txt).

Run once, when the corpus was written: it assigns ids, timestamps and the train/test split (whole
threads, about 20% of each writer's posts in test, seeded). It copies each post's text exactly as
written and never alters, combines or generates text. The split is then fixed: do not rerun this
over an existing posts.csv (it refuses without --force).

A later round of writing is added with --append: the new manuscripts' threads get the next thread
ids and their own split (the same rule); every existing post keeps its id, text, labels and split.

    python scripts/build_corpus.py --append --pattern 'batch_1[3-6].txt'
"""

from __future__ import annotations

import argparse
import random
import sys
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pandas as pd

sys.path.insert(0, str(Path(__file__).parent))
from corpus_batch import parse  # noqa: E402

UNITS = {"m": "minutes", "h": "hours", "d": "days"}
TEST_SHARE = 0.20


def delay(value: str) -> timedelta:
    if value == "0":
        return timedelta(0)
    return timedelta(**{UNITS[value[-1]]: int(value[:-1])})


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--raw", default="data/raw")
    ap.add_argument("--out", default="data")
    ap.add_argument("--seed", type=int, default=20261127)
    ap.add_argument("--force", action="store_true")
    ap.add_argument("--pattern", default="batch_*.txt", help="manuscripts to read from --raw")
    ap.add_argument("--name", default="posts", help="file stem: NAME.csv (and provenance beside it)")
    ap.add_argument("--prefix", default="T", help="thread id prefix")
    ap.add_argument("--all-split", help="put every thread in this split (a held-out set) instead of train/test")
    ap.add_argument("--append", action="store_true", help="add the manuscripts' threads to the existing file")
    args = ap.parse_args()
    out = Path(args.out)
    prov_name = "provenance.csv" if args.name == "posts" else f"{args.name}_provenance.csv"
    old_rows = old_prov = None
    if args.append:
        old_rows = pd.read_csv(out / f"{args.name}.csv", dtype=str, keep_default_na=False)
        old_prov = pd.read_csv(out / prov_name, dtype=str, keep_default_na=False)
        done = set(old_prov["writer_batch"])
        again = [p.stem for p in Path(args.raw).glob(args.pattern) if p.stem in done]
        if again:
            sys.exit(f"already in {args.name}.csv: {', '.join(again)}")
    elif (out / f"{args.name}.csv").exists() and not args.force:
        sys.exit(f"{out / args.name}.csv exists and its split is fixed; use --force only to rebuild it on purpose")
    rng = random.Random(args.seed)
    threads = []
    for path in sorted(Path(args.raw).glob(args.pattern)):
        posts, errors = parse(path)
        if errors:
            sys.exit(f"{path}: {len(errors)} format errors, first: {errors[0]}")
        batch = path.stem
        by_thread: dict[str, list[dict]] = {}
        for p in posts:
            by_thread.setdefault(p["thread"], []).append(p)
        slugs = list(by_thread)
        rng.shuffle(slugs)
        total = sum(len(v) for v in by_thread.values())
        in_test = 0
        for slug in slugs:
            tposts = by_thread[slug]
            split = "test" if in_test + len(tposts) / 2 <= TEST_SHARE * total else "train"
            split = args.all_split or split
            in_test += len(tposts) if split == "test" else 0
            threads.append((batch, slug, split, tposts))
    rng.shuffle(threads)
    rows, prov = [], []
    start0 = datetime(2023, 1, 9, tzinfo=timezone.utc)
    handles: dict[str, str] = {}
    taken = set() if old_rows is None else set(old_rows["author"])
    first = 1 if old_rows is None else 1 + max(int(t[len(args.prefix):]) for t in old_rows["thread_id"])
    for t, (batch, slug, split, tposts) in enumerate(threads, first):
        thread_id = f"{args.prefix}{t:04d}"
        when = start0 + timedelta(minutes=rng.randrange(0, 60 * 24 * 365 * 3 + 60 * 24 * 290))
        ids = {}
        for pos, p in enumerate(tposts):
            post_id = f"{thread_id}-{pos:02d}"
            ids[p["local_id"]] = post_id
            when += delay(p["delay"]) + (timedelta(minutes=rng.randrange(0, 50)) if pos else timedelta(0))
            key = f"{batch}:{p['author']}"
            author = handles.setdefault(key, p["author"] if p["author"] not in taken | {
                h for k, h in handles.items() if not k.startswith(batch + ":")} else f"{p['author']}_{batch[-2:]}")
            rows.append({"post_id": post_id, "thread_id": thread_id, "author": author, "position": pos,
                         "reply_to": ids.get(p["reply_to"], ""), "created_at": when.strftime("%Y-%m-%dT%H:%M:%SZ"),
                         "text": p["text"], "rupture_type": p["rupture"], "repair_outcome": p["outcome"],
                         "therapist_response": p["response"], "risk": p["risk"], "split": split})
            prov.append({"post_id": post_id, "writer_batch": batch, "thread_slug": slug,
                         "hard_negative": p["hardneg"] == "yes", "op_update": p["update"] == "yes"})
    out.mkdir(parents=True, exist_ok=True)
    rows, prov = pd.DataFrame(rows), pd.DataFrame(prov)
    if old_rows is not None:
        rows, prov = pd.concat([old_rows, rows], ignore_index=True), pd.concat([old_prov, prov], ignore_index=True)
    rows.to_csv(out / f"{args.name}.csv", index=False, encoding="utf-8")
    prov.to_csv(out / prov_name, index=False, encoding="utf-8")
    print(f"wrote {len(rows)} posts in {len(threads)} threads")
    return 0


if __name__ == "__main__":
    sys.exit(main())
