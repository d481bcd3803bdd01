"""The terminal annotator, driven by lists of keys (no terminal), and its command."""

from __future__ import annotations

import re

import pandas as pd
import pytest
from click.testing import CliRunner

from rupture_nlp.adapt import SHEET_COLUMNS, read_sheet
from rupture_nlp.annotate import HINT, Annotator
from rupture_nlp.cli import main

pytestmark = pytest.mark.code

SUGGESTIONS = [  # rupture_type, repair_outcome, therapist_response, risk
    ("withdrawal", "in_progress", "unknown", "none"),
    ("none", "not_applicable", "not_applicable", "concern"),
    ("confrontation", "repaired", "accountable", "none"),
]


def make_sheet(path, n=3, labelled=()):
    rows = []
    for i in range(n):
        s = SUGGESTIONS[i % len(SUGGESTIONS)]
        row = {"post_id": f"p{i + 1}", "text": f"Invented post number {i + 1}.\nSecond line.",
               "suggested_rupture_type": s[0], "suggested_repair_outcome": s[1],
               "suggested_therapist_response": s[2], "suggested_risk": s[3], "confidence": "0.61",
               "rupture_type": "", "repair_outcome": "", "therapist_response": "", "risk": "", "note": ""}
        if i in labelled:
            row.update(rupture_type="none", repair_outcome="not_applicable",
                       therapist_response="not_applicable", risk="none")
        rows.append(row)
    pd.DataFrame(rows, columns=SHEET_COLUMNS).to_csv(path, index=False)
    return path


def read(path):
    return pd.read_csv(path, dtype=str, keep_default_na=False)


def drive(path, keys, lines=()):
    """Run an annotator on ``keys``; returns (summary, output lines)."""
    keys, lines, out = list(keys), list(lines), []

    def read_key():
        return keys.pop(0) if keys else ""  # "" is the end of input: save and quit

    result = Annotator(path, read_key, out.append, read_line=lambda prompt: lines.pop(0), width=60).run()
    return result, out


def labels(df, i):
    return tuple(df.loc[i, ["rupture_type", "repair_outcome", "therapist_response", "risk"]])


def test_labels_saved_after_each_post_before_the_session_ends(tmp_path):
    sheet = make_sheet(tmp_path / "s.csv")
    keys = iter(["2", "3", "5", "1"])  # post 1: withdrawal, in_progress, unknown, none
    seen = []

    def read_key():
        try:
            return next(keys)
        except StopIteration:  # a crash in the middle of post 2
            seen.append(read(sheet))
            raise RuntimeError("crash")

    with pytest.raises(RuntimeError):
        Annotator(sheet, read_key, lambda text: None).run()
    df = seen[0]
    assert labels(df, 0) == ("withdrawal", "in_progress", "unknown", "none")
    assert labels(df, 1) == ("", "", "", "")
    assert list(df.columns) == SHEET_COLUMNS and list(df["post_id"]) == ["p1", "p2", "p3"]
    assert df.loc[0, "text"] == "Invented post number 1.\nSecond line."
    assert not [p for p in tmp_path.iterdir() if p.name.endswith(".tmp")]


def test_full_session_labels_every_post_and_reads_back_as_a_valid_sheet(tmp_path):
    sheet = make_sheet(tmp_path / "s.csv")
    result, out = drive(sheet, ["3", "1", "4", "2",   # confrontation, repaired, defensive, concern
                                "1", "1",             # none (dependents not asked), risk none
                                "2", "2", "1", "3"])  # withdrawal, unrepaired, accountable, crisis
    assert result == {"posts": 3, "labelled": 3, "skipped": 0, "quit": False}
    df = read(sheet)
    assert labels(df, 0) == ("confrontation", "repaired", "defensive", "concern")
    assert labels(df, 1) == ("none", "not_applicable", "not_applicable", "none")
    assert labels(df, 2) == ("withdrawal", "unrepaired", "accountable", "crisis")
    assert len(read_sheet(sheet)) == 3  # passes the sheet's own validation
    assert out[-1].startswith("labelled 3 of 3 posts")


def test_display_shows_progress_text_suggestion_and_definitions(tmp_path):
    sheet = make_sheet(tmp_path / "s.csv", labelled=(0,))
    _, out = drive(sheet, ["q"])
    text = "\n".join(out)
    assert "post 2 of 3, 1 labelled" in text and "post_id: p2" in text
    assert "Invented post number 2." in text
    assert "model suggests: rupture_type none" in text and "(confidence 0.61)" in text.replace("\n  ", " ")
    assert "withdrawal" in text and "moves away: goes quiet" in text
    options = re.split(r"\n(?= [ >] \d )", "\n".join(out[out.index("rupture_type:") + 1:]))
    assert options[0].startswith(" > 1 none") and "[suggested]" in options[0]  # marked and default
    assert text.count("[suggested]") == 1
    shown = "\n".join(out[:-1]).splitlines()  # all but the summary, which names the file
    assert max(len(line) for line in shown) <= 60 and len(shown) > len(out[:-1])  # wrapped to the width


def test_resume_starts_at_first_unlabelled_row(tmp_path):
    sheet = make_sheet(tmp_path / "s.csv", n=4, labelled=(0, 1, 3))
    _, out = drive(sheet, ["1", "1"])  # none, risk none
    assert any("post 3 of 4" in line for line in out)
    assert not any("post 1 of 4" in line or "post 2 of 4" in line for line in out)
    assert read(sheet)["rupture_type"].ne("").all()


def test_all_labelled_says_so_and_changes_nothing(tmp_path):
    sheet = make_sheet(tmp_path / "s.csv", labelled=(0, 1, 2))
    before = sheet.read_bytes()
    result, out = drive(sheet, [])
    assert result["labelled"] == 3 and "all 3 posts" in out[0] and "labelled already" in out[0]
    assert sheet.read_bytes() == before


def test_enter_accepts_the_suggestion(tmp_path):
    sheet = make_sheet(tmp_path / "s.csv", n=1)
    drive(sheet, ["\r", "\n", "\r", "\r"])
    assert labels(read(sheet), 0) == SUGGESTIONS[0]


def test_none_sets_not_applicable_and_skips_those_questions(tmp_path):
    sheet = make_sheet(tmp_path / "s.csv", n=1)
    _, out = drive(sheet, ["1", "3"])  # rupture none, then the next question must be risk
    assert labels(read(sheet), 0) == ("none", "not_applicable", "not_applicable", "crisis")
    assert "repair_outcome:" not in out and "therapist_response:" not in out and "risk:" in out


def test_not_applicable_never_offered_with_a_rupture(tmp_path):
    sheet = make_sheet(tmp_path / "s.csv", n=1)
    # withdrawal; 4 would be not_applicable for repair_outcome if offered, 6 for therapist_response
    _, out = drive(sheet, ["2", "4", "1", "6"])
    options = [line for line in out if re.match(r"^ [ >] \d ", line)]
    assert len(options) == 3 + 3 + 5 and not [line for line in options if "not_applicable" in line]
    assert [line for line in out if line.startswith("keys:")] == [
        HINT.format(k=3), HINT.format(k=5)]  # 4 and 6 refused
    assert labels(read(sheet), 0) == ("", "", "", "")  # input ended mid-post: nothing half-saved


def test_back_changes_an_earlier_answer_in_the_same_post(tmp_path):
    sheet = make_sheet(tmp_path / "s.csv", n=1)
    drive(sheet, ["2", "1", "b", "b", "3", "2", "4", "1"])
    assert labels(read(sheet), 0) == ("confrontation", "unrepaired", "defensive", "none")


def test_back_into_previous_post_changes_its_saved_labels(tmp_path):
    sheet = make_sheet(tmp_path / "s.csv", n=2)
    keys = ["2", "1", "1", "1",  # post 1 saved: withdrawal, repaired, accountable, none
            "b",                 # at post 2's first facet: back to post 1's risk
            "b",                 # back to post 1's therapist_response
            "4",                 # defensive
            "\r",                # risk: Enter keeps the saved label
            "1", "2"]            # post 2: none, concern
    _, out = drive(sheet, keys)
    df = read(sheet)
    assert labels(df, 0) == ("withdrawal", "repaired", "defensive", "none")
    assert labels(df, 1) == ("none", "not_applicable", "not_applicable", "concern")
    assert sum("post 1 of 2" in line for line in out) == 2


def test_changing_rupture_to_none_on_back_clears_the_dependents(tmp_path):
    sheet = make_sheet(tmp_path / "s.csv", n=2)
    drive(sheet, ["2", "1", "1", "1", "b", "b", "b", "b", "1", "\r", "1", "1"])
    assert labels(read(sheet), 0) == ("none", "not_applicable", "not_applicable", "none")


def test_skip_leaves_post_unlabelled_and_moves_on(tmp_path):
    sheet = make_sheet(tmp_path / "s.csv")
    result, out = drive(sheet, ["s", "1", "1", "s"])
    df = read(sheet)
    assert labels(df, 0) == ("", "", "", "") and labels(df, 2) == ("", "", "", "")
    assert labels(df, 1)[0] == "none"
    assert result == {"posts": 3, "labelled": 1, "skipped": 2, "quit": False}
    assert "labelled 1 of 3 posts, 2 skipped" in out[-1]
    # the next session asks the skipped post again
    _, out = drive(sheet, ["q"])
    assert any("post 1 of 3" in line for line in out)


def test_quit_keeps_earlier_posts_and_drops_the_unfinished_one(tmp_path):
    sheet = make_sheet(tmp_path / "s.csv")
    result, out = drive(sheet, ["3", "1", "1", "1", "2", "q"])
    df = read(sheet)
    assert labels(df, 0) == ("confrontation", "repaired", "accountable", "none")
    assert labels(df, 1) == ("", "", "", "")
    assert result["quit"] and result["labelled"] == 1
    assert out[-1].startswith("labelled 1 of 3 posts")


def test_note_is_stored_and_unknown_keys_give_a_hint(tmp_path):
    sheet = make_sheet(tmp_path / "s.csv", n=1)
    _, out = drive(sheet, ["x", "n", "1", "0", "1"], lines=["sarcastic, hard to call"])
    df = read(sheet)
    assert df.loc[0, "note"] == "sarcastic, hard to call"
    assert labels(df, 0) == ("none", "not_applicable", "not_applicable", "none")
    assert sum(line.startswith("keys: 1-3") for line in out) == 2  # "x" and "0"


def test_cli_annotates_from_keys_and_writes_labels(tmp_path):
    sheet = make_sheet(tmp_path / "s.csv", n=2)
    result = CliRunner().invoke(main, ["annotate", str(sheet)], input="2\r\r\r" + "11")
    assert result.exit_code == 0, result.output
    df = read(sheet)
    assert labels(df, 0) == ("withdrawal", "in_progress", "unknown", "none")
    assert labels(df, 1) == ("none", "not_applicable", "not_applicable", "none")
    assert "labelled 2 of 2 posts" in result.output


def test_cli_note_and_end_of_input_quit_cleanly(tmp_path):
    sheet = make_sheet(tmp_path / "s.csv", n=2)
    result = CliRunner().invoke(main, ["annotate", str(sheet)], input="1nlooks like advice\n1")
    assert result.exit_code == 0, result.output
    df = read(sheet)
    assert df.loc[0, "note"] == "looks like advice" and labels(df, 0)[0] == "none"
    assert labels(df, 1) == ("", "", "", "")


def test_cli_missing_file_is_one_clear_line(tmp_path):
    result = CliRunner().invoke(main, ["annotate", str(tmp_path / "nope.csv")])
    assert result.exit_code == 1
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("Error:") and "nope.csv" in lines[0]
    assert "Traceback" not in result.output


def test_cli_missing_columns_and_bad_encoding(tmp_path):
    bad = tmp_path / "bad.csv"
    bad.write_text("post_id,text\np1,hello\n")
    result = CliRunner().invoke(main, ["annotate", str(bad)])
    assert result.exit_code == 1 and "lacks column(s) rupture_type" in result.output
    latin = tmp_path / "latin.csv"
    latin.write_bytes(",".join(SHEET_COLUMNS).encode() + "\np1,caf\xe9".encode("latin-1") + b",,,,,,,,,,,\n")
    result = CliRunner().invoke(main, ["annotate", str(latin)])
    assert result.exit_code == 1 and "UTF-8" in result.output and "Traceback" not in result.output


def test_empty_sheet_and_note_interrupted(tmp_path):
    empty = tmp_path / "empty.csv"
    pd.DataFrame(columns=SHEET_COLUMNS).to_csv(empty, index=False)
    result, out = drive(empty, [])
    assert result["posts"] == 0 and out == [f"{empty} has no posts"]
    sheet = make_sheet(tmp_path / "s.csv", n=1)

    def interrupted(prompt):
        raise KeyboardInterrupt

    out = []
    keys = iter(["1", "n"])
    result = Annotator(sheet, lambda: next(keys), out.append, read_line=interrupted).run()
    assert result["quit"] and labels(read(sheet), 0) == ("", "", "", "")
