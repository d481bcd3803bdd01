"""The desk on disk: one SQLite file (standard library ``sqlite3``), every change one transaction.

Tables: ``meta`` (the model that ranked the desk, the secret that signs its forms), ``threads``
(rolled-up labels, priority, the moderators' status and note, and ``version``), ``posts`` (text,
the model's prediction as JSON, a moderator's correction), ``events`` (who changed what, when; no
post text). Every change to a thread, its status or a correction of one of its posts, is accepted
only if the version the moderator saw is still the thread's version, and bumps it: of two
moderators editing the same thread, the later save is refused, never silently overwrites. WAL
journal and ``synchronous=FULL``: a killed process loses at most the transaction in flight.
"""

from __future__ import annotations

import contextlib
import json
import secrets
import sqlite3
from datetime import datetime, timezone
from pathlib import Path

import pandas as pd

from rupture_nlp.data import InputError
from rupture_nlp.labels import DEPENDENT, FACETS, NOT_APPLICABLE, inconsistent_rows
from rupture_nlp.review.rank import effective_labels, queue_key, rank_threads

SCHEMA_VERSION = "1"
STATUSES = ("open", "reviewed", "follow_up", "escalated")
STATUS_TEXT = {"open": "open", "reviewed": "reviewed", "follow_up": "needs follow-up", "escalated": "escalated"}
THREAD_COLUMNS = ["priority", "model_priority", "confidence", "rupture_type", "repair_outcome",
                  "therapist_response", "risk", "urgent_by", "ood_score", "n_posts", "opening_author",
                  "reasons", "desk_priority"]
SCHEMA = f"""
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS threads (
  thread_id TEXT PRIMARY KEY, seq INTEGER NOT NULL, {', '.join(f'{c}' for c in THREAD_COLUMNS)},
  status TEXT NOT NULL DEFAULT 'open' CHECK (status IN {STATUSES}), note TEXT NOT NULL DEFAULT '',
  version INTEGER NOT NULL DEFAULT 1, updated_at TEXT);
CREATE TABLE IF NOT EXISTS posts (
  post_id TEXT PRIMARY KEY, thread_id TEXT NOT NULL REFERENCES threads(thread_id), seq INTEGER NOT NULL,
  author TEXT NOT NULL, order_key TEXT NOT NULL, text TEXT NOT NULL, prediction TEXT NOT NULL,
  correction TEXT, note TEXT NOT NULL DEFAULT '', corrected_at TEXT);
CREATE INDEX IF NOT EXISTS posts_thread ON posts(thread_id, seq);
CREATE TABLE IF NOT EXISTS events (id INTEGER PRIMARY KEY, at TEXT NOT NULL, thread_id TEXT NOT NULL,
  post_id TEXT, action TEXT NOT NULL, detail TEXT NOT NULL DEFAULT '{{}}');
"""


class EditConflict(Exception):
    """The thread changed since the moderator opened it; their save was refused."""


class LabelError(ValueError):
    """Labels that are unknown or break the consistency rule."""


def now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


class Desk:
    """An open desk. One connection, for one thread of one process (open one per request)."""

    def __init__(self, path: str | Path, create: bool = False):
        self.path = Path(path)
        if not create and not self.path.is_file():
            raise InputError(f"no desk at {self.path}; make one with `rupture-nlp review serve --db {self.path} INPUT`")
        self.conn = sqlite3.connect(self.path, timeout=15, isolation_level=None)
        self.conn.row_factory = sqlite3.Row
        try:
            self.conn.execute("PRAGMA journal_mode=WAL")
            self.conn.execute("PRAGMA synchronous=FULL")
            self.conn.execute("PRAGMA foreign_keys=ON")
            if create:
                self.conn.executescript(SCHEMA)
                if self.meta("schema") is None:
                    with self.transaction():
                        self.set_meta(schema=SCHEMA_VERSION, secret=secrets.token_urlsafe(32), created_at=now())
            elif self.meta("schema") != SCHEMA_VERSION:
                raise InputError(f"{self.path} is not a rupture-nlp desk (schema {self.meta('schema')!r})")
        except sqlite3.DatabaseError as exc:
            self.conn.close()
            raise InputError(f"{self.path} is not a readable desk: {exc}") from None

    def close(self) -> None:
        self.conn.close()

    @contextlib.contextmanager
    def transaction(self):
        """BEGIN IMMEDIATE ... COMMIT: the write lock is taken first; any error rolls back."""
        self.conn.execute("BEGIN IMMEDIATE")
        try:
            yield self.conn
        except BaseException:
            self.conn.execute("ROLLBACK")
            raise
        self.conn.execute("COMMIT")

    # -- meta ---------------------------------------------------------------------------------------
    def meta(self, key: str) -> str | None:
        try:
            row = self.conn.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
        except sqlite3.OperationalError:  # no meta table: not a desk
            return None
        return None if row is None else row["value"]

    def set_meta(self, **values) -> None:
        self.conn.executemany("INSERT INTO meta(key, value) VALUES (?, ?) ON CONFLICT(key) DO UPDATE SET "
                              "value = excluded.value", [(k, str(v)) for k, v in values.items()])

    def model(self) -> dict:
        keys = ("model_dir", "model_sha256", "model_created_at", "threshold", "ood_limit", "order_column")
        return {k: self.meta(k) for k in keys}

    # -- filling and ranking ------------------------------------------------------------------------
    def known_post_ids(self) -> set[str]:
        return {r[0] for r in self.conn.execute("SELECT post_id FROM posts")}

    def add_posts(self, posts: pd.DataFrame, predictions: list[dict], info: dict, order_column: str) -> set[str]:
        """Store new posts (columns post_id, thread_id, author, the ordering column, text) and their
        predictions, then rank the threads they belong to; returns those thread ids."""
        known = self.meta("order_column")
        if known and known != order_column:
            raise InputError(f"this desk orders posts by {known}; the input must have that column")
        with self.transaction():
            if not known:
                self.set_meta(order_column=order_column, **info)
            next_seq = self.conn.execute("SELECT COALESCE(MAX(seq), -1) + 1 FROM threads").fetchone()[0]
            existing = {r[0] for r in self.conn.execute("SELECT thread_id FROM threads")}
            for tid in dict.fromkeys(posts["thread_id"]):
                if tid not in existing:
                    self.conn.execute("INSERT INTO threads(thread_id, seq, priority, model_priority, confidence) "
                                      "VALUES (?, ?, 'routine', 'routine', 0)", (tid, next_seq))
                    next_seq += 1
            self.conn.executemany(
                "INSERT INTO posts(post_id, thread_id, seq, author, order_key, text, prediction) "
                "VALUES (?, ?, 0, ?, ?, ?, ?)",
                [(r.post_id, r.thread_id, r.author, str(getattr(r, order_column)), r.text, json.dumps(p))
                 for r, p in zip(posts.itertuples(index=False), predictions)])
            touched = set(posts["thread_id"])
            self._rank(touched, action="posts added")
        return touched

    def replace_predictions(self, predictions: dict[str, dict], info: dict) -> None:
        """Re-rank: every post's prediction from another model; decisions and corrections kept."""
        with self.transaction():
            self.conn.executemany("UPDATE posts SET prediction = ? WHERE post_id = ?",
                                  [(json.dumps(p), pid) for pid, p in predictions.items()])
            self.set_meta(**info)
            self._rank(None, action="re-ranked")

    def posts_frame(self, thread_ids=None) -> pd.DataFrame:
        rows = [dict(r) for r in self.conn.execute("SELECT post_id, thread_id, author, order_key, text, prediction, "
                                                   "correction FROM posts ORDER BY rowid")]
        if thread_ids is not None:
            rows = [r for r in rows if r["thread_id"] in thread_ids]
        for r in rows:
            r["prediction"] = json.loads(r["prediction"])
            r["correction"] = json.loads(r["correction"]) if r["correction"] else None
        df = pd.DataFrame(rows, columns=["post_id", "thread_id", "author", "order_key", "text", "prediction",
                                         "correction"])
        df["correction"] = pd.Series([r["correction"] for r in rows], dtype=object)
        return df

    def _rank(self, thread_ids, action: str) -> None:
        """Rank threads again from their stored posts (inside the caller's transaction); bumps versions."""
        order = self.meta("order_column") or "position"
        posts = self.posts_frame(thread_ids)
        if posts.empty:
            return
        posts[order] = posts["order_key"]
        threads = rank_threads(posts, float(self.meta("threshold")), float(self.meta("ood_limit")))
        stamp = now()
        for r in threads.to_dict(orient="records"):
            values = [_plain(r[c]) for c in THREAD_COLUMNS]
            self.conn.execute(f"UPDATE threads SET {', '.join(f'{c} = ?' for c in THREAD_COLUMNS)}, "
                              "version = version + 1, updated_at = ? WHERE thread_id = ?",
                              [*values, stamp, r["thread_id"]])
            self._event(r["thread_id"], None, action, {})
        from rupture_nlp.triage import _ordered

        ordered = _ordered(posts, order)
        ordered["seq"] = ordered.groupby("thread_id").cumcount()
        self.conn.executemany("UPDATE posts SET seq = ? WHERE post_id = ?",
                              [(int(s), p) for s, p in zip(ordered["seq"], ordered["post_id"])])

    def _event(self, thread_id: str, post_id: str | None, action: str, detail: dict) -> None:
        self.conn.execute("INSERT INTO events(at, thread_id, post_id, action, detail) VALUES (?, ?, ?, ?, ?)",
                          (now(), thread_id, post_id, action, json.dumps(detail)))

    # -- reading --------------------------------------------------------------------------------------
    def threads(self) -> list[dict]:
        """Every thread in queue order, with the opening post's first words."""
        rows = self.conn.execute(
            "SELECT t.*, p.text AS opening_text, (SELECT COUNT(*) FROM posts c WHERE c.thread_id = t.thread_id "
            "AND c.correction IS NOT NULL) AS corrected FROM threads t "
            "LEFT JOIN posts p ON p.thread_id = t.thread_id AND p.seq = 0").fetchall()
        return sorted((dict(r) for r in rows), key=queue_key)

    def thread(self, thread_id: str) -> dict | None:
        row = self.conn.execute("SELECT * FROM threads WHERE thread_id = ?", (thread_id,)).fetchone()
        return None if row is None else dict(row)

    def posts(self, thread_id: str) -> list[dict]:
        out = []
        for r in self.conn.execute("SELECT * FROM posts WHERE thread_id = ? ORDER BY seq", (thread_id,)):
            d = dict(r)
            d["prediction"] = json.loads(d["prediction"])
            d["correction"] = json.loads(d["correction"]) if d["correction"] else None
            out.append(d)
        return out

    # -- the moderators' changes ----------------------------------------------------------------------
    def _bump(self, thread_id: str, version: int) -> int:
        """Take the thread's next version if ``version`` is still current, else refuse."""
        cur = self.conn.execute("UPDATE threads SET version = version + 1, updated_at = ? "
                                "WHERE thread_id = ? AND version = ?", (now(), thread_id, int(version)))
        if cur.rowcount == 1:
            return int(version) + 1
        row = self.thread(thread_id)
        if row is None:
            raise LabelError(f"no thread {thread_id!r} on this desk")
        raise EditConflict(f"thread {thread_id} was changed by someone else since you opened it (it is at "
                           f"version {row['version']}, you saw version {version}); your change was not saved. "
                           f"Reload the thread, look at what changed, and make your change again.")

    def set_status(self, thread_id: str, status: str, note: str, version: int) -> int:
        if status not in STATUSES:
            raise LabelError(f"unknown status {status!r}; choose one of {', '.join(STATUSES)}")
        with self.transaction():
            new = self._bump(thread_id, version)
            self.conn.execute("UPDATE threads SET status = ?, note = ? WHERE thread_id = ?",
                              (status, note.strip(), thread_id))
            self._event(thread_id, None, "status", {"status": status, "note_chars": len(note.strip())})
        return new

    def correct(self, post_id: str, labels: dict, note: str, version: int) -> int:
        """Store a moderator's four labels for a post (checked against the label spec)."""
        labels = check_labels(labels)
        row = self.conn.execute("SELECT thread_id FROM posts WHERE post_id = ?", (post_id,)).fetchone()
        if row is None:
            raise LabelError(f"no post {post_id!r} on this desk")
        with self.transaction():
            new = self._bump(row["thread_id"], version)
            self.conn.execute("UPDATE posts SET correction = ?, note = ?, corrected_at = ? WHERE post_id = ?",
                              (json.dumps(labels), note.strip(), now(), post_id))
            self._event(row["thread_id"], post_id, "correction", labels)
            self._rank({row["thread_id"]}, action="ranked after a correction")
            self.conn.execute("UPDATE threads SET version = ? WHERE thread_id = ?", (new, row["thread_id"]))
        return new

    # -- export ---------------------------------------------------------------------------------------
    def export_frame(self, include_reviewed: bool = False) -> pd.DataFrame:
        """The annotation sheet (the columns of `sample`): corrected posts, and with
        ``include_reviewed`` every post of a thread marked reviewed (its labels confirmed as shown)."""
        from rupture_nlp.adapt import GOLD, SHEET_COLUMNS

        sql = ("SELECT p.* FROM posts p JOIN threads t ON t.thread_id = p.thread_id WHERE p.correction IS NOT NULL"
               + (" OR t.status = 'reviewed'" if include_reviewed else "") + " ORDER BY t.seq, p.seq")
        rows = []
        for r in self.conn.execute(sql):
            pred = json.loads(r["prediction"])
            gold = effective_labels(pred, json.loads(r["correction"]) if r["correction"] else None)
            relation = [pred["confidence"][f] for f in GOLD[:3]]
            rows.append({"post_id": r["post_id"], "text": r["text"],
                         **{f"suggested_{f}": pred["labels"][f] for f in FACETS},
                         "confidence": round(sum(relation) / len(relation), 3), **gold, "note": r["note"]})
        return pd.DataFrame(rows, columns=SHEET_COLUMNS)

    def counts(self) -> dict:
        by = self.conn.execute("SELECT status, COUNT(*) FROM threads GROUP BY status").fetchall()
        corrected = self.conn.execute("SELECT COUNT(*) FROM posts WHERE correction IS NOT NULL").fetchone()[0]
        return {"threads": sum(n for _, n in by), "posts": self.conn.execute("SELECT COUNT(*) FROM posts").fetchone()[0],
                "corrected_posts": corrected, **{s: 0 for s in STATUSES}, **dict(by)}


def check_labels(labels: dict) -> dict:
    """The four labels of a post, validated; rupture_type none sets the dependent facets to
    not_applicable (the spec's rule), a rupture with a not_applicable facet is refused."""
    out = {}
    for facet, allowed in FACETS.items():
        value = str(labels.get(facet, "")).strip()
        if value not in allowed:
            raise LabelError(f"{facet} must be one of {', '.join(allowed)} (got {value or 'nothing'!r})")
        out[facet] = value
    if out["rupture_type"] == "none":
        out.update({f: NOT_APPLICABLE for f in DEPENDENT})
    if inconsistent_rows(pd.DataFrame([out])):
        raise LabelError(f"a {out['rupture_type']} rupture needs a repair_outcome and a therapist_response other "
                         f"than not_applicable (not_applicable exactly when rupture_type is none)")
    return out


def _plain(value):
    """numpy scalars and NaN as SQLite values."""
    if value is None or (isinstance(value, float) and value != value):
        return None
    return value.item() if hasattr(value, "item") else value
