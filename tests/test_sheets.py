"""Never lose a labelled sheet: another program's rewrite, a full disk, a kill at any moment, sample -o."""

from __future__ import annotations

import errno
import random
import subprocess
import sys
import textwrap

import pandas as pd
import pytest
from click.testing import CliRunner

from rupture_nlp.annotate import Annotator
from rupture_nlp.cli import main
from rupture_nlp.data import InputError

from .test_annotate import labels, make_sheet, read

pytestmark = pytest.mark.code


def test_a_sheet_rewritten_by_another_program_is_not_overwritten(tmp_path):
    sheet = make_sheet(tmp_path / "s.csv")
    keys = ["2", "3", "5", "1"]

    def read_key():  # while post 1 is labelled, a spreadsheet saves its own version
        if len(keys) == 4:
            df = read(sheet)
            df.loc[2, "note"] = "written in the spreadsheet"
            df.to_csv(sheet, index=False)
        return keys.pop(0) if keys else "q"

    theirs = None
    with pytest.raises(InputError, match="changed by another program.*not overwritten.*labels are in"):
        try:
            Annotator(sheet, read_key, lambda text: None).run()
        finally:
            theirs = read(sheet)
    assert theirs.loc[2, "note"] == "written in the spreadsheet" and labels(theirs, 0) == ("", "", "", "")
    aside = [p for p in tmp_path.iterdir() if ".unsaved-" in p.name]
    assert len(aside) == 1 and labels(read(aside[0]), 0) == ("withdrawal", "in_progress", "unknown", "none")


def test_cli_says_the_sheet_changed_in_one_line(tmp_path, monkeypatch):
    sheet = make_sheet(tmp_path / "s.csv", n=2)
    import rupture_nlp.annotate as annotate

    versions = iter(range(100))  # the sheet on disk is another version at every look
    monkeypatch.setattr(annotate, "fingerprint", lambda path: next(versions))
    result = CliRunner().invoke(main, ["annotate", str(sheet)], input="11")
    last = result.output.strip().splitlines()[-1]
    assert result.exit_code == 1 and last.startswith("Error: ") and "changed by another program" in last
    assert "Traceback" not in result.output


class FullDisk:
    """A file whose writes fail with ENOSPC after the first few bytes."""

    def __init__(self, fh):
        self._fh, self._written = fh, 0

    def write(self, data):
        if self._written > 20:
            raise OSError(errno.ENOSPC, "No space left on device")
        self._written += len(data)
        return self._fh.write(data[:10])

    def __getattr__(self, name):
        return getattr(self._fh, name)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return self._fh.__exit__(*exc)


def test_a_full_disk_leaves_the_old_sheet_whole(tmp_path, monkeypatch):
    sheet = make_sheet(tmp_path / "s.csv", labelled=(1,))
    before = sheet.read_bytes()
    import rupture_nlp.persist as persist

    real_fdopen = persist.os.fdopen
    monkeypatch.setattr(persist.os, "fdopen", lambda *a, **k: FullDisk(real_fdopen(*a, **k)))
    keys = ["2", "3", "5", "1"]
    with pytest.raises(InputError, match=r"could not save .*No space left on device.*as it was before this post"
                                         r".*could not be saved elsewhere either"):
        Annotator(sheet, lambda: keys.pop(0) if keys else "q", lambda text: None).run()
    assert sheet.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["s.csv"]  # no temporary file left behind


CHILD = textwrap.dedent("""
    import sys
    from rupture_nlp.annotate import Annotator
    annotator = Annotator(sys.argv[1], lambda: "q", lambda text: None)
    print("ready", flush=True)
    n = 0
    while True:
        n += 1
        annotator.sheet["note"] = "A" if n % 2 else "B"
        annotator.save()
""")


def test_a_kill_at_any_moment_leaves_the_old_or_the_new_sheet_whole(tmp_path):
    sheet = make_sheet(tmp_path / "s.csv", n=3000)  # large enough that kills land in the middle of writes
    rows = len(read(sheet))
    rng = random.Random(12)
    notes = set()
    for _ in range(12):  # bounded: 12 kills, each within 0.4 s of the child being ready
        child = subprocess.Popen([sys.executable, "-c", CHILD, str(sheet)], stdout=subprocess.PIPE, text=True)
        assert child.stdout.readline().strip() == "ready"
        try:
            child.wait(timeout=rng.uniform(0.0, 0.4))
        except subprocess.TimeoutExpired:
            pass
        child.kill()
        child.wait(timeout=30)
        child.stdout.close()
        df = pd.read_csv(sheet, dtype=str, keep_default_na=False)
        assert len(df) == rows and df["note"].nunique() <= 1
        notes |= set(df["note"])
        assert list(df["post_id"]) == [f"p{i + 1}" for i in range(rows)]
    assert notes <= {"", "A", "B"} and notes & {"A", "B"}  # saves did happen between the kills


def test_sample_never_writes_over_labels(small_model_dir, tmp_path):
    labelled = make_sheet(tmp_path / "done.csv", labelled=(0, 1))
    run = lambda *a: CliRunner().invoke(main, ["sample", "-m", str(small_model_dir), "--n", "2", *map(str, a)])  # noqa: E731
    posts = tmp_path / "posts.txt"
    posts.write_text("I skipped my session\nGreat session today\nI shouted at my therapist\n", encoding="utf-8")
    before = labelled.read_bytes()
    result = run(posts, "--labelled", labelled, "-o", labelled, "--force")
    assert result.exit_code == 1 and "one of the --labelled sheets" in result.output
    result = run(posts, "-o", labelled, "--force")
    assert result.exit_code == 1 and "holds 2 labelled post(s)" in result.output
    assert labelled.read_bytes() == before
    fresh = make_sheet(tmp_path / "fresh.csv")
    result = run(posts, "--labelled", labelled, "-o", fresh, "--force")
    assert result.exit_code == 0, result.output
    assert len(read(fresh)) == 2
