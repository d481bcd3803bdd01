"""Filling a desk from a CSV of threads, adding posts later, and re-ranking with another model."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from rupture_nlp.data import InputError, InputSpec, read_csv_strict, valid_rows
from rupture_nlp.review.rank import label_posts, model_info
from rupture_nlp.review.store import Desk
from rupture_nlp.triage import check_structure


def read_threads(path: str | Path, text_column: str = "text", skip_invalid: bool = False) -> tuple[pd.DataFrame, str]:
    """Posts with thread structure (as `triage` reads them) and the name of their ordering column.

    Posts without a ``post_id`` column get ``<thread_id>-<position or created_at>``.
    """
    if str(path) == "-" or not str(path).lower().endswith(".csv"):
        raise InputError("the desk reads a CSV file with the columns thread_id, author, position "
                         "(or created_at) and the text")
    table = read_csv_strict(path)
    order = check_structure(table)
    table = valid_rows(table, InputSpec(path=str(path), text_column=text_column, skip_invalid=skip_invalid))
    if "post_id" not in table.columns:
        table["post_id"] = table["thread_id"].astype(str) + "-" + table[order].astype(str)
    dup = table["post_id"].duplicated(keep=False)
    if dup.any():
        raise InputError(f"{path}: post_id {table.loc[dup, 'post_id'].iloc[0]!r} appears more than once")
    posts = pd.DataFrame({"post_id": table["post_id"].astype(str), "thread_id": table["thread_id"].astype(str),
                          "author": table["author"].astype(str), order: table[order].astype(str),
                          "text": table[text_column].astype(str)})
    posts.attrs["skipped"] = table.attrs.get("skipped", 0)
    return posts, order


def check_same_model(desk: Desk, model, model_dir) -> None:
    """Refuse to mix models in one ranking: new posts need the model that ranked the desk."""
    mine, theirs = model_info(model, model_dir)["model_sha256"], desk.meta("model_sha256")
    if theirs and mine != theirs:
        raise InputError(f"this desk was ranked with another model ({desk.meta('model_dir')}, sha256 "
                         f"{theirs[:12]}); re-rank it first with `rupture-nlp review rerank --model {model_dir} "
                         f"--db {desk.path}`, or pass that model")


def add_posts(desk: Desk, model, model_dir, posts: pd.DataFrame, order: str) -> dict:
    """Label and store the posts the desk does not have yet; decisions on the others are kept."""
    check_same_model(desk, model, model_dir)
    new = posts[~posts["post_id"].isin(desk.known_post_ids())].reset_index(drop=True)
    if new.empty:
        return {"new_posts": 0, "threads_ranked": 0, **desk.counts()}
    predictions = label_posts(model, new["text"].tolist())
    touched = desk.add_posts(new, predictions, model_info(model, model_dir), order)
    return {"new_posts": int(len(new)), "threads_ranked": len(touched), **desk.counts()}


def rerank(desk: Desk, model, model_dir) -> dict:
    """Label every post again with ``model`` and rank every thread; statuses, notes and
    corrections stay (a corrected post keeps its moderator's labels)."""
    posts = desk.posts_frame()
    predictions = label_posts(model, posts["text"].tolist())
    desk.replace_predictions(dict(zip(posts["post_id"], predictions)), model_info(model, model_dir))
    return {"posts_labelled": int(len(posts)), **desk.counts()}


def model_differs(desk: Desk, model, model_dir) -> bool:
    return bool(desk.meta("model_sha256")) and model_info(model, model_dir)["model_sha256"] != desk.meta("model_sha256")


def build_desk(path: str | Path, model, model_dir, posts: pd.DataFrame, order: str) -> dict:
    """A new desk at ``path``, written beside it and renamed into place only when complete."""
    import os
    import tempfile

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    os.unlink(tmp)
    try:
        desk = Desk(tmp, create=True)
        try:
            result = add_posts(desk, model, model_dir, posts, order)
            desk.conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        finally:
            desk.close()
        os.replace(tmp, path)
    finally:
        for leftover in (tmp, f"{tmp}-wal", f"{tmp}-shm"):
            if os.path.exists(leftover):
                os.unlink(leftover)
    return result
