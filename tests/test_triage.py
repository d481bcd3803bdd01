"""Thread roll-up, priorities, thresholds, ordering, the HTML page, and accuracy on the test split."""

from __future__ import annotations

import io

import pandas as pd
import pytest
from click.testing import CliRunner

from rupture_nlp.cli import main
from rupture_nlp.labels import FACETS
from rupture_nlp.triage import (
    PRIORITY_ORDER, StructureError, apply_threshold, check_structure, confident_accuracy, render_html, rollup)

from .conftest import CORPUS, EXAMPLES

pytestmark = pytest.mark.code

NA = "not_applicable"


def thread(*posts):
    """posts: (author, rupture, outcome, response, risk) in thread order."""
    rows = [{"thread_id": "T1", "author": a, "position": i, "text": f"post {i}", "rupture_type": rt,
             "repair_outcome": ro, "therapist_response": tr, "risk": risk}
            for i, (a, rt, ro, tr, risk) in enumerate(posts)]
    return pd.DataFrame(rows)


def roll(df):
    return rollup(df, df[list(FACETS)]).iloc[0]


def test_update_by_the_opening_poster_overrides_the_first_post():
    df = thread(("op", "withdrawal", "in_progress", "unknown", "none"),
                ("other", "none", NA, NA, "none"),
                ("op", "withdrawal", "repaired", "validating", "none"))
    r = roll(df)
    assert (r.rupture_type, r.repair_outcome, r.therapist_response) == ("withdrawal", "repaired", "validating")
    assert r.model_priority == "routine"


def test_replies_by_others_do_not_decide():
    df = thread(("op", "confrontation", "in_progress", "unknown", "none"),
                ("other", "confrontation", "unrepaired", "defensive", "none"))
    r = roll(df)
    assert (r.repair_outcome, r.therapist_response, r.model_priority) == ("in_progress", "unknown", "support")


def test_order_comes_from_position_not_file_order():
    df = thread(("op", "withdrawal", "in_progress", "unknown", "none"),
                ("op", "withdrawal", "unrepaired", "defensive", "none"))
    df = df.iloc[::-1].reset_index(drop=True)
    assert roll(df).repair_outcome == "unrepaired"


def test_a_crisis_anywhere_makes_the_thread_urgent():
    df = thread(("op", "none", NA, NA, "none"),
                ("other", "none", NA, NA, "crisis"))
    r = roll(df)
    assert r.model_priority == "urgent" and r.risk == "crisis"
    queue = apply_threshold(rollup(df, df[list(FACETS)]).assign(confidence=0.01), 0.99)
    assert queue.loc[0, "priority"] == "urgent", "urgent is never hidden behind uncertain"


def test_crisis_phrase_list_fires_without_the_model():
    df = thread(("op", "none", NA, NA, "none"))
    r = rollup(df, df[list(FACETS)], crisis_phrase=[True]).iloc[0]
    assert r.model_priority == "urgent" and r.urgent_by == "phrases"


@pytest.mark.parametrize("posts, expected", [
    ([("op", "confrontation", "unrepaired", "defensive", "none")], "review"),
    ([("op", "none", NA, NA, "none"), ("x", "none", NA, NA, "concern")], "review"),
    ([("op", "withdrawal", "unrepaired", "unknown", "none")], "support"),
    ([("op", "withdrawal", "repaired", "accountable", "none")], "routine"),
    ([("op", "none", NA, NA, "none")], "routine"),
])
def test_priority_rules(posts, expected):
    assert roll(thread(*posts)).model_priority == expected


def test_threshold_marks_uncertain_and_queue_is_ordered():
    threads = pd.DataFrame({"thread_id": list("abcde"),
                            "model_priority": ["routine", "support", "urgent", "review", "routine"],
                            "confidence": [0.95, 0.4, 0.3, 0.8, 0.5]})
    queue = apply_threshold(threads, 0.6)
    assert queue["thread_id"].tolist() == ["c", "d", "b", "e", "a"]
    assert queue["priority"].tolist() == ["urgent", "review", "uncertain", "uncertain", "routine"]
    ranks = queue["priority"].map(PRIORITY_ORDER.index)
    assert ranks.is_monotonic_increasing


def test_missing_structure_is_named():
    with pytest.raises(StructureError, match="thread_id"):
        check_structure(pd.DataFrame({"text": ["x"], "author": ["a"], "position": [0]}))
    assert check_structure(pd.DataFrame({"thread_id": [1], "author": ["a"], "created_at": ["2026"]})) == "created_at"


def test_html_escapes_hostile_text_and_is_self_contained():
    queue = pd.DataFrame([{"priority": "review", "model_priority": "review", "confidence": 0.9, "thread_id": "T<1>",
                           "n_posts": 1, "rupture_type": "confrontation", "repair_outcome": "unrepaired",
                           "therapist_response": "defensive", "risk": "none", "reasons": "rupture_type: <b>x</b>",
                           "opening_author": "<img src=x onerror=alert(1)>",
                           "opening_text": "<script>alert('x')</script> & more"}])
    page = render_html(queue)
    assert "<script>alert" not in page and "&lt;script&gt;" in page
    assert "<img src=x" not in page and "<b>x</b>" not in page
    assert "<script" not in page and "http" not in page and "<link" not in page


def test_confident_accuracy_and_coverage():
    pred = pd.DataFrame({"thread_id": list("abcd"), "model_priority": ["routine", "support", "review", "urgent"],
                         "confidence": [0.9, 0.9, 0.2, 0.1]})
    gold = pd.DataFrame({"thread_id": list("abcd"), "model_priority": ["routine", "review", "review", "urgent"]})
    s = confident_accuracy(pred, gold, 0.5)
    assert s["coverage"] == 0.75 and s["confident_accuracy"] == pytest.approx(2 / 3) and s["urgent_recall"] == 1


def test_triage_cli_html_and_csv(small_model_dir, tmp_path):
    out = tmp_path / "queue.html"
    result = CliRunner().invoke(main, ["triage", "-m", str(small_model_dir), "--format", "html", "-o", str(out),
                                       str(EXAMPLES / "threads.csv")])
    assert result.exit_code == 0, result.output
    assert out.read_text().count("<tr>") == 1 + pd.read_csv(EXAMPLES / "threads.csv")["thread_id"].nunique()
    result = CliRunner().invoke(main, ["triage", "-m", str(small_model_dir), "--format", "csv",
                                       str(EXAMPLES / "threads.csv")])
    queue = pd.read_csv(io.StringIO(result.stdout))
    assert queue["priority"].map(PRIORITY_ORDER.index).is_monotonic_increasing
    assert queue.loc[0, "priority"] == "urgent"  # the example thread with a goodbye post


@pytest.mark.model
def test_confident_priorities_on_the_test_split_reach_the_reported_accuracy(model):
    from rupture_nlp.api import evaluate_model

    result = evaluate_model(model, CORPUS, n_boot=100)
    t = result["triage"]
    assert t["coverage"] >= 0.25, "a useful share of threads gets a confident priority"
    assert t["confident_accuracy"] >= 0.85, t
    assert t["urgent_recall"] is None or t["urgent_recall"] >= 0.8


def test_wilson_lower_bound():
    from rupture_nlp.triage import wilson_lower

    assert wilson_lower(0.9, 10) < wilson_lower(0.9, 1000) < 0.9
    assert wilson_lower(0.9, 1000) == pytest.approx(0.884, abs=0.002)
    assert wilson_lower(1.0, 0) == 0.0


def test_triage_names_invalid_rows_and_can_skip_them(small_model_dir, tmp_path):
    threads = pd.read_csv(EXAMPLES / "threads.csv", dtype=str, keep_default_na=False)
    threads.loc[2, "text"] = "   "
    path = tmp_path / "threads.csv"
    threads.to_csv(path, index=False)
    result = CliRunner().invoke(main, ["triage", "-m", str(small_model_dir), str(path)])
    assert result.exit_code == 1 and "row(s) 3 have an empty or non-text 'text'" in result.output
    result = CliRunner().invoke(main, ["triage", "-m", str(small_model_dir), "--skip-invalid", "--format", "csv",
                                       str(path)])
    assert result.exit_code == 0 and "skipped 1 invalid row(s)" in result.stderr
    assert len(pd.read_csv(io.StringIO(result.stdout))) == threads["thread_id"].nunique()


def test_threshold_short_of_the_target_keeps_the_best_lower_bound():
    """A model a few threads short of the confident-accuracy target keeps a usable queue (the
    threshold with the highest lower bound, said so) instead of sending every thread to a person."""
    import numpy as np

    from rupture_nlp.triage import confident_accuracy, threshold_for_target, wilson_lower

    n = 200
    conf = np.linspace(0.5, 0.99, n)
    right = np.r_[np.arange(100) % 3 != 0, np.arange(100) % 12 != 0]  # 67% right below 0.745, 92% above
    pred = pd.DataFrame({"thread_id": [f"t{i}" for i in range(n)], "model_priority": "routine",
                         "confidence": conf})
    gold = pred.assign(model_priority=np.where(right, "routine", "watch"))[["thread_id", "model_priority"]]
    reached = threshold_for_target(pred, gold, 0.80)
    assert reached["target_reached"] and reached["confident_accuracy_lower_bound"] >= 0.80
    short = threshold_for_target(pred, gold, 0.97)
    assert short["target_reached"] is False and short["threshold"] < 1.0 and short["coverage"] > 0.3
    assert "not reachable" in short["chosen_by"]
    bounds = []
    for t in np.round(np.arange(0.0, 1.0001, 0.01), 2):
        s = confident_accuracy(pred, gold, t)
        bounds.append(wilson_lower(s["confident_accuracy"], s["coverage"] * n))
    assert short["confident_accuracy_lower_bound"] == max(bounds)
