"""A keyboard-driven annotator for annotation sheets (see `sample`), one post and one facet at a time.

The terminal is reached only through the callables given to :class:`Annotator`, so tests can drive
it with a list of keys. Every completed post is saved at once (the whole CSV, written atomically).
"""

from __future__ import annotations

import shutil
import textwrap
from pathlib import Path
from typing import Callable

import pandas as pd

from rupture_nlp.adapt import GOLD, REQUIRED, labelled_rows
from rupture_nlp.data import InputError, read_csv_strict, sha256_file
from rupture_nlp.labels import DEFINITIONS, DEPENDENT, NOT_APPLICABLE, labels_for
from rupture_nlp.persist import atomic_output

ENTER = ("\r", "\n")
HINT = "keys: 1-{k} pick a label, Enter accept the marked label, b back, s skip post, n note, q save and quit"


def _prompt_note(prompt: str) -> str:
    import click

    try:
        return click.prompt(prompt, default="", show_default=False)
    except click.Abort:  # Ctrl-C or the end of input while typing
        raise EOFError from None


def fingerprint(path: Path) -> tuple[int, str] | None:
    """Size and sha256 of a sheet as it is on disk (None if it is gone)."""
    try:
        return path.stat().st_size, sha256_file(path)
    except FileNotFoundError:
        return None


class Annotator:
    """Label the rows of the sheet at ``sheet_path``; ``read_key()`` returns one keypress,
    ``write(text)`` shows a line, ``read_line(prompt)`` reads a typed line (the note)."""

    def __init__(self, sheet_path: str | Path, read_key: Callable[[], str], write: Callable[[str], None],
                 read_line: Callable[[str], str] | None = None, width: int | None = None):
        self.path = Path(sheet_path)
        self.read_key = read_key
        self.write = write
        self.read_line = read_line or _prompt_note
        self.width = width or shutil.get_terminal_size((80, 24)).columns
        self.fingerprint = fingerprint(self.path)
        self.sheet = read_csv_strict(self.path, REQUIRED)
        for col in ("risk", "note"):  # sheets made by hand may lack them; they are needed to store labels
            if col not in self.sheet.columns:
                self.sheet[col] = ""
        self.skipped: set[int] = set()
        self.history: list[int] = []  # posts visited before the current one, for "b"

    # -- reading and writing the sheet ------------------------------------------------------------
    def labelled(self) -> pd.Series:
        return labelled_rows(self.sheet)

    def save(self) -> None:
        """Write the whole sheet atomically (a temporary file, fsync, rename): a kill, a full disk or a
        locked file leave the sheet as it was. A sheet another program rewrote since it was read is
        never overwritten; this session's labels then go to a file beside it."""
        if fingerprint(self.path) != self.fingerprint:
            raise InputError(f"{self.path} was changed by another program since it was read, so it was not "
                             f"overwritten; {self._save_aside()}. Close the other program, then run annotate again")
        try:
            self._write(self.path)
        except OSError as exc:
            raise InputError(f"could not save {self.path} ({exc.strerror or exc}); the sheet is as it was before "
                             f"this post; {self._save_aside()}") from None
        self.fingerprint = fingerprint(self.path)

    def _write(self, path: Path) -> None:
        with atomic_output(path, force=True) as fh:
            self.sheet.to_csv(fh, index=False, lineterminator="\n")

    def _save_aside(self) -> str:
        from datetime import datetime

        aside = self.path.with_name(f"{self.path.stem}.unsaved-{datetime.now():%Y%m%dT%H%M%S}{self.path.suffix}")
        try:
            self._write(aside)
        except OSError as exc:
            return f"this session's labels could not be saved elsewhere either ({exc.strerror or exc})"
        return f"this session's labels are in {aside}"

    def next_row(self) -> int | None:
        """The first row neither labelled nor skipped in this session."""
        todo = ~self.labelled() & ~self.sheet.index.isin(list(self.skipped))
        return int(todo.to_numpy().nonzero()[0][0]) if todo.any() else None

    # -- the session ------------------------------------------------------------------------------
    def run(self) -> dict:
        """Annotate until every row is done or the user quits; return counts for the summary."""
        n = len(self.sheet)
        row = self.next_row()
        if row is None:
            self.write(f"{self.path} has no posts" if n == 0 else f"all {n} posts of {self.path} are labelled already")
            return self.summary(quit=False)
        at_end = False  # start a post at its last facet (after "b" from the next post)
        quit_ = False
        while row is not None:
            action = self.annotate_post(row, at_end)
            if action == "quit":
                quit_ = True
                break
            if action == "back":
                if self.history:
                    row = self.history.pop()
                elif row > 0:
                    row = row - 1
                else:
                    self.write("this is the first post; nothing to go back to")
                    at_end = False
                    continue
                self.skipped.discard(row)
                at_end = bool(self.labelled().iloc[row])
                continue
            if action == "skip":
                self.skipped.add(row)
            self.history.append(row)
            at_end = False
            row = self.next_row()
        result = self.summary(quit=quit_)
        self.write(f"labelled {result['labelled']} of {result['posts']} posts"
                   + (f", {result['skipped']} skipped" if result["skipped"] else "")
                   + f"; saved to {self.path}")
        return result

    def summary(self, quit: bool) -> dict:
        return {"posts": len(self.sheet), "labelled": int(self.labelled().sum()),
                "skipped": int((~self.labelled()).iloc[sorted(self.skipped)].sum()), "quit": quit}

    def annotate_post(self, row: int, at_end: bool = False) -> str:
        """Ask the facets of one post; returns "done", "skip", "back" or "quit"."""
        answers = {col: self.sheet.at[row, col].strip() for col in [*GOLD, "note"]}
        if answers["rupture_type"] not in ("", "none"):  # a stale not_applicable may not stand
            for facet in DEPENDENT:
                if answers[facet] == NOT_APPLICABLE:
                    answers[facet] = ""
        self.show_post(row)
        step = len(self.facets(answers)) - 1 if at_end else 0
        while step < len(self.facets(answers)):
            facet = self.facets(answers)[step]
            choice = self.ask(row, facet, answers)
            if choice in ("skip", "quit"):
                if choice == "quit" and answers["note"] != self.sheet.at[row, "note"].strip():
                    self.sheet.at[row, "note"] = answers["note"]  # a typed note is kept, labels are not
                    self.save()
                return choice
            if choice == "back":
                if step == 0:
                    return "back"
                step -= 1
                continue
            answers[facet] = choice
            if facet == "rupture_type":
                for dep in DEPENDENT:
                    if choice == "none":
                        answers[dep] = NOT_APPLICABLE
                    elif answers[dep] == NOT_APPLICABLE:
                        answers[dep] = ""
            step += 1
        for col, value in answers.items():
            self.sheet.at[row, col] = value
        self.save()
        return "done"

    @staticmethod
    def facets(answers: dict) -> list[str]:
        """The facets to ask: the dependent ones only when there is a rupture."""
        if answers["rupture_type"] == "none":
            return ["rupture_type", "risk"]
        return ["rupture_type", *DEPENDENT, "risk"]

    # -- showing and asking -----------------------------------------------------------------------
    def suggestion(self, row: int, facet: str) -> str:
        col = f"suggested_{facet}"
        return self.sheet.at[row, col].strip() if col in self.sheet.columns else ""

    def show_post(self, row: int) -> None:
        rec = self.sheet.loc[row]
        self.write("")
        self.write("=" * min(self.width, 80))
        self.write(f"post {row + 1} of {len(self.sheet)}, {int(self.labelled().sum())} labelled")
        self.write(f"post_id: {rec['post_id']}")
        self.write("")
        for para in str(rec["text"]).splitlines() or [""]:
            self.write(textwrap.fill(para, width=max(self.width, 20)) if para.strip() else "")
        self.write("")
        suggested = [f"{f} {self.suggestion(row, f)}" for f in GOLD if self.suggestion(row, f)]
        if suggested:
            conf = str(rec.get("confidence", "")).strip()
            line = "model suggests: " + ", ".join(suggested) + (f" (confidence {conf})" if conf else "")
            self.write(textwrap.fill(line, width=max(self.width, 40), subsequent_indent="  "))
        if str(rec["note"]).strip():
            self.write(f"note: {rec['note']}")

    def ask(self, row: int, facet: str, answers: dict) -> str:
        """One facet: returns a label, or "back", "skip" or "quit"."""
        choices = labels_for(facet, with_na=False)
        suggested = self.suggestion(row, facet)
        default = answers[facet] if answers[facet] in choices else (suggested if suggested in choices else "")
        self.write("")
        self.write(f"{facet}:")
        for i, label in enumerate(choices, 1):
            marks = [m for m, hit in (("suggested", label == suggested), ("answered", label == answers[facet]))
                     if hit]
            line = (f" {'>' if label == default else ' '} {i} {label:<15} {DEFINITIONS[facet][label]}"
                    + (f"  [{', '.join(marks)}]" if marks else ""))
            self.write(textwrap.fill(line, width=max(self.width, 40), subsequent_indent=" " * 21))
        while True:
            try:
                key = self.read_key()
            except (KeyboardInterrupt, EOFError):
                key = "q"
            key = key or "q"  # end of input: save and quit
            if key.isdigit() and 1 <= int(key) <= len(choices):
                return choices[int(key) - 1]
            if key in ENTER and default:
                return default
            if key in ENTER:
                self.write("no suggestion to accept here; press a number")
            elif key in ("b", "B"):
                return "back"
            elif key in ("s", "S"):
                return "skip"
            elif key in ("q", "Q"):
                return "quit"
            elif key in ("n", "N"):
                try:
                    answers["note"] = self.read_line("note").strip()
                except (KeyboardInterrupt, EOFError):
                    return "quit"
                self.write(f"note: {answers['note'] or '(empty)'} (saved with the post's labels)")
            else:
                self.write(HINT.format(k=len(choices)))
