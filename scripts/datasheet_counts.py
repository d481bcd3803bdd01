"""Refresh the count tables in data/README.md from data/posts.csv (between the counts markers).

    python scripts/datasheet_counts.py            # rewrite the block in place
    python scripts/datasheet_counts.py --check    # exit 1 if the block is out of date
"""

from __future__ import annotations

import sys
from pathlib import Path

import pandas as pd

from rupture_nlp.datasheet import END, START, count_tables, embedded_tables

ROOT = Path(__file__).resolve().parents[1]


def main() -> int:
    posts = pd.read_csv(ROOT / "data" / "posts.csv", dtype=str, keep_default_na=False)
    prov = pd.read_csv(ROOT / "data" / "provenance.csv", dtype=str, keep_default_na=False)
    path = ROOT / "data" / "README.md"
    text = path.read_text(encoding="utf-8")
    tables = count_tables(posts, prov).strip()
    if "--check" in sys.argv:
        return 0 if embedded_tables(text) == tables else 1
    head, rest = text.split(START, 1)
    tail = rest.split(END, 1)[1]
    path.write_text(f"{head}{START}\n{tables}\n{END}{tail}", encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
