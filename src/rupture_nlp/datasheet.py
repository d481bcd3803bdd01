"""The datasheet's count tables, computed from the corpus (so data/README.md can be checked)."""

from __future__ import annotations

import pandas as pd

from rupture_nlp.labels import FACETS

START, END = "<!-- counts:start -->", "<!-- counts:end -->"


def count_tables(posts: pd.DataFrame, provenance: pd.DataFrame | None = None) -> str:
    """Markdown: label counts per facet and split, length statistics, thread and provenance counts."""
    lines = []
    n_words = posts["text"].str.split().str.len()
    lines += ["| | posts | threads |", "|---|---|---|"]
    for split in ("train", "test"):
        part = posts[posts["split"] == split]
        lines.append(f"| {split} | {len(part)} | {part['thread_id'].nunique()} |")
    lines.append(f"| all | {len(posts)} | {posts['thread_id'].nunique()} |")
    for facet, labels in FACETS.items():
        lines += ["", f"**{facet}**", "", "| label | train | test | all | share |", "|---|---|---|---|---|"]
        for label in labels:
            counts = [int(((posts["split"] == s) & (posts[facet] == label)).sum()) for s in ("train", "test")]
            total = sum(counts)
            lines.append(f"| {label} | {counts[0]} | {counts[1]} | {total} | {100 * total / len(posts):.1f}% |")
    lines += ["", "**Length in words**", "", "| statistic | value |", "|---|---|",
              f"| median | {n_words.median():.0f} |", f"| mean | {n_words.mean():.0f} |",
              f"| under 60 words | {100 * (n_words < 60).mean():.1f}% |",
              f"| over 200 words | {100 * (n_words > 200).mean():.1f}% |",
              f"| over 400 words | {100 * (n_words > 400).mean():.1f}% |",
              f"| longest | {n_words.max()} |"]
    lines += ["", "| rupture_type | median words | under 60 words |", "|---|---|---|"]
    for label in FACETS["rupture_type"]:
        w = n_words[posts["rupture_type"] == label]
        lines.append(f"| {label} | {w.median():.0f} | {100 * (w < 60).mean():.1f}% |")
    if provenance is not None:
        merged = posts.merge(provenance, on="post_id")
        updates = merged[merged["op_update"].astype(str) == "True"]["thread_id"].nunique()
        hard = int((merged["hard_negative"].astype(str) == "True").sum())
        lines += ["", "| provenance | count |", "|---|---|", f"| hard negatives (none posts using rupture words) | {hard} |",
                  f"| threads where the opening poster returns with an update | {updates} |",
                  f"| opening posts / replies | {int((posts['position'].astype(int) == 0).sum())} / "
                  f"{int((posts['position'].astype(int) > 0).sum())} |"]
        lines += ["", "| writer batch | posts | threads |", "|---|---|---|"]
        for batch, part in merged.groupby("writer_batch"):
            lines.append(f"| {batch} | {len(part)} | {part['thread_id'].nunique()} |")
    return "\n".join(lines)


def embedded_tables(readme_text: str) -> str:
    """The count tables as they stand in a datasheet, between the markers."""
    start, end = readme_text.index(START) + len(START), readme_text.index(END)
    return readme_text[start:end].strip()


#: The words of rupture the corpus checks for shortcuts (regular expressions, counted once a post;
#: "quit" does not match "quite").
RUPTURE_WORDS = {
    "angry": r"angry|anger", "furious": r"furious", "hurt": r"hurt", "apologised": r"apologi[sz]|apology",
    "boundary": r"boundar", "quit": r"quit(?!e)", "forgot": r"forg[oe]t", "rupture": r"ruptur", "repair": r"repair",
    "stormed": r"stormed", "ghosted": r"ghost", "defensive": r"defensive", "sorry": r"sorry",
}


def rupture_word_table(posts: pd.DataFrame, hard_negative: pd.Series) -> pd.DataFrame:
    """Share of posts using each rupture word: rupture posts, no-rupture posts, hard negatives."""
    rupture = posts["rupture_type"] != "none"
    rows = {}
    for word, pattern in RUPTURE_WORDS.items():
        has = posts["text"].str.contains(rf"\b(?:{pattern})", case=False, regex=True)
        rows[word] = {"rupture posts": has[rupture].mean(), "none posts": has[~rupture].mean(),
                      "hard negatives": has[hard_negative].mean()}
    return pd.DataFrame(rows).T


def distinct_rupture_words(texts: pd.Series) -> pd.Series:
    """How many different rupture words each text uses."""
    return sum(texts.str.contains(rf"\b(?:{p})", case=False, regex=True).astype(int) for p in RUPTURE_WORDS.values())
