"""Hand revision of existing posts: export them as one text file each, apply the edited files back.

    python scripts/revise_posts.py export --ids ids.txt --out data/raw/revise/r1
    # an editor edits data/raw/revise/r1/posts/*.txt by hand (text only)
    python scripts/revise_posts.py apply data/raw/revise/r1 [more folders] --round 3

`export` writes, for each post id, `posts/<post_id>.txt` (the text exactly as in data/posts.csv) and
an `index.md` with the post's labels, its thread and what to look at. `apply` copies each edited
text back into data/posts.csv, leaving ids, labels, split and every other column as they are, and
marks the post in data/provenance.csv (`revised_round`). It refuses a file that is empty or whose
post id is unknown. The script moves text; it never writes or alters a word of it.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import pandas as pd

POSTS = Path("data/posts.csv")
PROVENANCE = Path("data/provenance.csv")
LABELS = ["rupture_type", "repair_outcome", "therapist_response", "risk"]


def export(ids_file: Path, out: Path, notes: dict[str, str]) -> int:
    df = pd.read_csv(POSTS, dtype=str, keep_default_na=False).set_index("post_id")
    ids = [line.split("\t")[0].strip() for line in ids_file.read_text().splitlines() if line.strip()]
    (out / "posts").mkdir(parents=True, exist_ok=True)
    index = ["| post | thread | position | labels | look at |", "|---|---|---|---|---|"]
    for pid in ids:
        row = df.loc[pid]
        (out / "posts" / f"{pid}.txt").write_text(row["text"], encoding="utf-8")
        labels = " / ".join(row[c] for c in LABELS)
        index.append(f"| {pid} | {row['thread_id']} | {row['position']} | {labels} | {notes.get(pid, '')} |")
    (out / "index.md").write_text("\n".join(index) + "\n", encoding="utf-8")
    return len(ids)


def apply(folders: list[Path], round_: int) -> int:
    df = pd.read_csv(POSTS, dtype=str, keep_default_na=False)
    prov = pd.read_csv(PROVENANCE, dtype=str, keep_default_na=False)
    if "revised_round" not in prov:
        prov["revised_round"] = ""
    where = {pid: i for i, pid in enumerate(df["post_id"])}
    changed = 0
    for folder in folders:
        for path in sorted((folder / "posts").glob("*.txt")):
            pid = path.stem
            if pid not in where:
                sys.exit(f"{path}: no post {pid} in {POSTS}")
            text = path.read_text(encoding="utf-8").strip()
            if not text:
                sys.exit(f"{path}: empty text")
            i = where[pid]
            if df.at[i, "text"] != text:
                df.at[i, "text"] = text
                prov.loc[prov["post_id"] == pid, "revised_round"] = str(round_)
                changed += 1
    df.to_csv(POSTS, index=False, encoding="utf-8")
    prov.to_csv(PROVENANCE, index=False, encoding="utf-8")
    return changed


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = ap.add_subparsers(dest="cmd", required=True)
    e = sub.add_parser("export")
    e.add_argument("--ids", type=Path, required=True, help="one post id a line; a tab, then a note")
    e.add_argument("--out", type=Path, required=True)
    a = sub.add_parser("apply")
    a.add_argument("folders", type=Path, nargs="+")
    a.add_argument("--round", type=int, default=3)
    args = ap.parse_args()
    if args.cmd == "export":
        notes = {}
        for line in args.ids.read_text().splitlines():
            if "\t" in line:
                pid, note = line.split("\t", 1)
                notes[pid.strip()] = note.strip()
        print(f"exported {export(args.ids, args.out, notes)} posts to {args.out}")
    else:
        print(f"applied {apply(args.folders, args.round)} revised posts")
    return 0


if __name__ == "__main__":
    sys.exit(main())
