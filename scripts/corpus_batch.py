"""Parse and check a writer's manuscript batch (data/raw/batch_*.txt).

A manuscript holds threads written by hand; this module only reads the
metadata lines around the text and checks them. It never writes or alters text.

Format::

    ### THREAD some-slug
    @@ POST p1 | author=quietfern | reply_to=- | delay=0 | rupture=withdrawal | outcome=in_progress | response=unknown | risk=none | hardneg=no | update=no
    text of the post, any number of lines ...
    @@ POST p2 | author=... | reply_to=p1 | delay=3h | ...

Usage: python scripts/corpus_batch.py data/raw/batch_1.txt [more files]
"""
from __future__ import annotations

import re
import statistics
import sys
from collections import Counter
from pathlib import Path

RUPTURE = {"none", "withdrawal", "confrontation"}
OUTCOME = {"repaired", "unrepaired", "in_progress", "not_applicable"}
RESPONSE = {"accountable", "boundary", "validating", "defensive", "unknown", "not_applicable"}
RISK = {"none", "concern", "crisis"}
DELAY_RE = re.compile(r"^(0|\d+[mhd])$")
KEYS = ["author", "reply_to", "delay", "rupture", "outcome", "response", "risk", "hardneg", "update"]


def parse(path: Path) -> tuple[list[dict], list[str]]:
    posts: list[dict] = []
    errors: list[str] = []
    thread = None
    current = None
    threads_seen: set[str] = set()
    for lineno, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if line.startswith("### THREAD"):
            thread = line[len("### THREAD"):].strip()
            if not thread:
                errors.append(f"line {lineno}: thread without a slug")
            if thread in threads_seen:
                errors.append(f"line {lineno}: thread slug {thread!r} used twice")
            threads_seen.add(thread)
            current = None
            continue
        if line.startswith("@@ POST"):
            parts = [p.strip() for p in line[len("@@ POST"):].split("|")]
            local_id = parts[0]
            meta = {}
            for part in parts[1:]:
                if "=" not in part:
                    errors.append(f"line {lineno}: field without '=': {part!r}")
                    continue
                k, v = part.split("=", 1)
                meta[k.strip()] = v.strip()
            missing = [k for k in KEYS if k not in meta]
            if missing:
                errors.append(f"line {lineno}: missing fields {missing}")
            if thread is None:
                errors.append(f"line {lineno}: post before any ### THREAD line")
            current = {"thread": thread, "local_id": local_id, "line": lineno, "lines": [], **meta}
            posts.append(current)
            continue
        if current is not None:
            current["lines"].append(line)
        elif line.strip():
            errors.append(f"line {lineno}: text outside a post")
    for p in posts:
        p["text"] = "\n".join(p.pop("lines")).strip()
    errors += check(posts)
    return posts, errors


def check(posts: list[dict]) -> list[str]:
    errors = []
    by_thread: dict[str, list[dict]] = {}
    for p in posts:
        by_thread.setdefault(p["thread"], []).append(p)
    for thread, tposts in by_thread.items():
        ids = [p["local_id"] for p in tposts]
        if len(set(ids)) != len(ids):
            errors.append(f"thread {thread}: duplicate post ids {ids}")
        if tposts[0].get("reply_to") != "-":
            errors.append(f"thread {thread}: first post must have reply_to=-")
        seen = set()
        for i, p in enumerate(tposts):
            where = f"thread {thread} post {p['local_id']} (line {p['line']})"
            if i > 0 and p.get("reply_to") not in seen:
                errors.append(f"{where}: reply_to={p.get('reply_to')} is not an earlier post of this thread")
            seen.add(p["local_id"])
            if not p["text"]:
                errors.append(f"{where}: empty text")
            if p.get("rupture") not in RUPTURE:
                errors.append(f"{where}: rupture={p.get('rupture')}")
            if p.get("outcome") not in OUTCOME:
                errors.append(f"{where}: outcome={p.get('outcome')}")
            if p.get("response") not in RESPONSE:
                errors.append(f"{where}: response={p.get('response')}")
            if p.get("risk") not in RISK:
                errors.append(f"{where}: risk={p.get('risk')}")
            if p.get("hardneg") not in {"yes", "no"} or p.get("update") not in {"yes", "no"}:
                errors.append(f"{where}: hardneg and update take yes or no")
            if not DELAY_RE.match(p.get("delay", "")):
                errors.append(f"{where}: delay={p.get('delay')} (use 0, 40m, 5h or 3d)")
            none = p.get("rupture") == "none"
            na = (p.get("outcome") == "not_applicable", p.get("response") == "not_applicable")
            if none and not all(na):
                errors.append(f"{where}: rupture=none needs outcome and response not_applicable")
            if not none and any(na):
                errors.append(f"{where}: a rupture cannot have not_applicable outcome/response")
            if p.get("hardneg") == "yes" and not none:
                errors.append(f"{where}: hardneg=yes only for rupture=none posts")
            if p.get("update") == "yes" and p.get("author") != tposts[0].get("author"):
                errors.append(f"{where}: update=yes only for the opening poster's own later posts")
    return errors


def words(text: str) -> int:
    return len(text.split())


def report(posts: list[dict]) -> str:
    n = len(posts)
    if not n:
        return "no posts"
    lens = [words(p["text"]) for p in posts]
    rup = [p for p in posts if p["rupture"] != "none"]
    out = [f"posts {n}, threads {len({p['thread'] for p in posts})}"]
    out.append("lengths: median %d words; under 60: %.0f%%; over 200: %.0f%%; over 400: %.0f%%" % (
        statistics.median(lens), 100 * sum(x < 60 for x in lens) / n,
        100 * sum(x > 200 for x in lens) / n, 100 * sum(x > 400 for x in lens) / n))
    for key in ["rupture", "risk"]:
        c = Counter(p[key] for p in posts)
        out.append(f"{key}: " + ", ".join(f"{k} {v} ({100*v/n:.0f}%)" for k, v in sorted(c.items())))
    for key in ["outcome", "response"]:
        c = Counter(p[key] for p in rup)
        out.append(f"{key} among ruptures: " + ", ".join(
            f"{k} {v} ({100*v/max(len(rup),1):.0f}%)" for k, v in sorted(c.items())))
    out.append("rupture x outcome: " + ", ".join(
        f"{k[0]}/{k[1]} {v}" for k, v in sorted(Counter((p['rupture'], p['outcome']) for p in rup).items())))
    out.append("crisis by rupture: " + str(dict(Counter(p["rupture"] for p in posts if p["risk"] == "crisis"))))
    out.append(f"hard negatives: {sum(p['hardneg'] == 'yes' for p in posts)}; "
               f"threads with an opening-poster update: {len({p['thread'] for p in posts if p['update'] == 'yes'})}")
    return "\n".join(out)


def main(argv: list[str]) -> int:
    all_posts = []
    bad = False
    for name in argv:
        posts, errors = parse(Path(name))
        all_posts += posts
        print(f"== {name}")
        for e in errors[:50]:
            print("ERROR", e)
        bad |= bool(errors)
        print(report(posts))
    if len(argv) > 1:
        print("== all")
        print(report(all_posts))
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
