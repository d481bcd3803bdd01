"""Adapting to a forum: annotation sheets of the user's own posts, read back for training."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from rupture_nlp.data import InputError, read_csv_strict, sha256_file, validate_labels
from rupture_nlp.labels import FACETS

GOLD = ["rupture_type", "repair_outcome", "therapist_response", "risk"]
REQUIRED = ["post_id", "text", "rupture_type", "repair_outcome", "therapist_response"]
SHEET_COLUMNS = ["post_id", "text", "suggested_rupture_type", "suggested_repair_outcome",
                 "suggested_therapist_response", "suggested_risk", "confidence", *GOLD, "note"]


def labelled_rows(sheet: pd.DataFrame) -> pd.Series:
    """Rows whose three relation labels are filled in (risk may be left empty)."""
    return sheet[GOLD[:3]].apply(lambda col: col.str.strip().ne("")).all(axis=1)


def read_sheet(path: str | Path) -> pd.DataFrame:
    """A sheet's labelled rows, validated; errors name the rows as a spreadsheet numbers them."""
    sheet = read_csv_strict(path, REQUIRED)
    if "risk" not in sheet.columns:
        sheet["risk"] = ""
    for col in GOLD:
        sheet[col] = sheet[col].str.strip()
    filled = sheet[GOLD[:3]].ne("")
    partial = filled.any(axis=1) & ~filled.all(axis=1)
    if partial.any():
        rows = [int(i) + 2 for i in partial.to_numpy().nonzero()[0]]
        raise InputError(f"{path}: row(s) {rows[:10]} have some but not all of rupture_type, repair_outcome, "
                         f"therapist_response filled in")
    dup = sheet["post_id"].duplicated(keep=False) & sheet["post_id"].ne("")
    if dup.any():
        rows = [int(i) + 2 for i in dup.to_numpy().nonzero()[0]]
        raise InputError(f"{path}: duplicate post_id in row(s) {rows[:10]}")
    done = sheet[labelled_rows(sheet)]
    positions = done.index.to_numpy()
    checked = done.reset_index(drop=True)
    risk_given = checked["risk"].ne("")
    try:
        validate_labels(checked.assign(risk=checked["risk"].where(risk_given, "none")), str(path), row_offset=2)
    except InputError as exc:  # name spreadsheet rows of the full sheet, not of the labelled subset
        raise InputError(_renumber(str(exc), positions)) from None
    return done.reset_index(drop=True)


def _renumber(message: str, positions) -> str:
    import re

    return re.sub(r"row\(s\) ([\d, ]+)", lambda m: "row(s) " + ", ".join(
        str(int(positions[int(n) - 2]) + 2) for n in m.group(1).split(", ") if n.strip()), message)


def read_sheets(paths, known_ids: set[str] | None = None) -> tuple[pd.DataFrame, list[dict]]:
    """Labelled rows of all sheets as one frame (post_id, text, the four facets), and their provenance."""
    frames, info = [], []
    seen: dict[str, str] = {}
    for path in paths:
        sheet = read_sheet(path)
        for pid in sheet["post_id"]:
            if pid in seen:
                raise InputError(f"post_id {pid!r} is labelled in both {seen[pid]} and {path}")
            seen[pid] = str(path)
        frames.append(sheet[["post_id", "text", *GOLD]])
        info.append({"path": str(path), "sha256": sha256_file(path), "labelled_posts": int(len(sheet))})
    if not frames:
        return pd.DataFrame(columns=["post_id", "text", *FACETS]), info
    extra = pd.concat(frames, ignore_index=True)
    extra["risk"] = extra["risk"].where(extra["risk"].ne(""), None)
    return extra, info
