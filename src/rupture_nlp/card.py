"""The model card (README.md in each model folder), written from the manifest alone.

What the model is for and not for, what it was trained on, how well it did where it was measured
(and where it was not), the known gap on real posts, the hashes and the versions. ``train`` writes it
and every recorded check (``evaluate --record``, ``shift --record``) writes it again.
"""

from __future__ import annotations

from typing import Any

from rupture_nlp.labels import FACETS

# Measured by hand on 51 real posts (README "Results"; docs/realism.md): the gap to expect on a real forum.
REAL_POSTS = {"posts": 51, "rupture_type": 0.62, "repair_outcome": 0.57, "therapist_response": 0.36}
REPO_EVALUATIONS = [
    ("test split", "data/posts.csv", "rupture-nlp evaluate --record -m MODEL --data data/posts.csv --split test"),
    ("forum C", "data/adaptation/forum_c.csv", "rupture-nlp evaluate --record -m MODEL --data "
     "data/adaptation/forum_c.csv --split new_forum --baseline-data data/posts.csv"),
    ("forum D", "data/adaptation/forum_d.csv", "rupture-nlp evaluate --record -m MODEL --data "
     "data/adaptation/forum_d.csv --split new_forum --baseline-data data/posts.csv"),
    ("forum E", "data/adaptation/forum_e.csv", "rupture-nlp evaluate --record -m MODEL --data "
     "data/adaptation/forum_e.csv --split new_forum --baseline-data data/posts.csv"),
]

INTENDED_USE = """## Intended use

- **Triage support for moderators, not diagnosis,** on forums where people write about their therapy: it ranks
  threads so that a person reads the most pressing first (`rupture-nlp triage`), and labels posts for
  research on alliance ruptures and repair (`rupture-nlp predict`, `evaluate`, `report`).
- Every label is a model's guess from the words of a post. A person reads the post before anything
  is done about it.

## Out of scope: do not use it for

- **Diagnosis**, clinical assessment, or judging a therapist or a client.
- **The sole basis for any action on a person**: a ban, a report, a referral, an outreach or the
  absence of one. A post the model calls routine may still be a crisis; the crisis threshold is set for
  recall, and threads it is unsure of are marked `uncertain` for a person.
- Forums, languages or kinds of writing far from its training data without measuring it there first
  (see "Known gap on real posts")."""

CALIBRATION_OBJECTIVE = {"mean": "the mean log loss of all held-out posts",
                         "worst_batches": "the log loss of the worst held-out writer batches (a third of the posts; "
                                          "risk: the mean)"}


def calibration_line(calibration: dict) -> str:
    method = calibration.get("method")
    if method in (None, "none"):
        return "none"
    return (f"{method}, fitted on held-out {calibration.get('folds', 'thread').replace('_', ' ')} folds to "
            f"{CALIBRATION_OBJECTIVE.get(calibration.get('objective', 'mean'), 'n/a')}")


def evaluation_check(payload: dict[str, Any], data) -> dict[str, Any]:
    """What `evaluate --record` keeps in the manifest: per facet [macro-F1, [low, high]], and triage."""
    from rupture_nlp.data import sha256_file

    model = payload["systems"]["model"]
    triage = payload.get("triage") or {}
    return {"command": "evaluate", "input": f"{data} (split {payload.get('split')})", "data": str(data),
            "data_sha256": sha256_file(data), "split": payload.get("split"), "posts": payload.get("n_posts"),
            "macro_f1": {f: [model[f]["macro_f1"], model[f].get("macro_f1_ci95")] for f in FACETS if f in model},
            "triage": {k: triage.get(k) for k in ("confident_accuracy", "coverage")}}


def _interval(value, ci) -> str:
    if value is None:
        return "n/a"
    return f"{value:.3f} [{ci[0]:.2f}-{ci[1]:.2f}]" if ci else f"{value:.3f}"


def _evaluations(manifest: dict[str, Any]) -> list[str]:
    checks = [c for c in manifest.get("checks", []) if c.get("command") == "evaluate"]
    lines = ["## Evaluation", ""]
    if checks:
        lines += ["Macro-F1 with 95% intervals (resampling whole threads), recorded by `evaluate --record`:", "",
                  "| data | split | posts | " + " | ".join(FACETS) + " | triage: confident right / coverage |",
                  "|---|---|---|" + "---|" * len(FACETS) + "---|"]
        for c in checks:
            f1 = c.get("macro_f1", {})
            cells = [_interval(*(f1.get(f) or [None, None])) for f in FACETS]
            triage = c.get("triage") or {}
            acc, cov = triage.get("confident_accuracy"), triage.get("coverage")
            tri = f"{acc:.3f} / {cov:.2f}" if acc is not None and cov is not None else "n/a"
            lines.append(f"| {c.get('data')} | {c.get('split')} | {c.get('posts')} | " + " | ".join(cells)
                         + f" | {tri} |")
        lines.append("")
    measured = {c.get("data") for c in checks}
    missing = [(name, cmd) for name, path, cmd in REPO_EVALUATIONS if path not in measured]
    if missing:
        lines += ["Not measured on this model file yet (from a checkout of the repository, record them with):", ""]
        lines += [f"- {name}: `{cmd}`" for name, cmd in missing]
        lines.append("")
    cv = manifest.get("cv_scores", {})
    if cv:
        lines += ["Cross-validated macro-F1 on the training data (" + manifest.get("calibration", {}).get("folds", "thread")
                  + " folds): " + ", ".join(f"{f} {s['macro_f1']:.3f}" for f, s in cv.items()), ""]
    return lines


def _shift(manifest: dict[str, Any]) -> list[str]:
    checks = [c for c in manifest.get("checks", []) if c.get("command") == "shift"]
    if not checks:
        return []
    lines = ["## Distance to forums it was checked on (`shift --record`)", "",
             "| input | posts | domain AUC | median OOD score | level |", "|---|---|---|---|---|"]
    for c in checks:
        lines.append(f"| {c.get('input')} | {c.get('posts')} | {c.get('domain_auc', float('nan')):.3f} | "
                     f"{c.get('ood_score_median', float('nan')):.3f} | {c.get('level')} |")
    return lines + [""]


def _adaptation(manifest: dict[str, Any]) -> list[str]:
    """What the forum's own sheet bought, as `train --extra` measured it on the sheet's posts."""
    adaptation = manifest.get("adaptation") or {}
    gain = adaptation.get("measured_gain")
    if not gain:
        return []
    lines = ["## Adapted to your forum", "",
             f"{adaptation.get('posts')} posts of your forum, method `{adaptation.get('method')}` at weight "
             f"{adaptation.get('weight')}."]
    if not gain.get("measured"):
        return lines + [f"What they bought was not measured: {gain.get('reason')}.", ""]
    from rupture_nlp.sheet_gain import gain_rows

    lines += [f"What they bought, measured by `train --extra` on the sheet's own posts ({gain['folds']} folds: each "
              f"post labelled by a model trained on the corpus and the other folds):", "",
              "| facet | posts | no forum labels | with the sheet | gain (95% interval) |", "|---|---|---|---|---|"]
    for f, r in gain_rows(gain):
        lines.append(f"| {f} | {r['posts']} | {r['no_labels']:.3f} | {r['with_sheet']:.3f} | {r['gain']:+.3f} "
                     f"({r['gain_ci95'][0]:+.3f} to {r['gain_ci95'][1]:+.3f}) |")
    return lines + ["", "A sheet chosen by `sample` holds the posts the model was least sure of: this is the gain on "
                        "such posts, an upper figure for the whole forum (on forum C three times the gain of its "
                        "other posts).", ""]


def model_card(manifest: dict[str, Any]) -> str:
    data = manifest.get("training_data", {})
    versions = manifest.get("versions", {})
    lines = [
        "# Model card: rupture-nlp", "",
        f"A four-facet classifier of forum posts about therapy (rupture_type, repair_outcome, "
        f"therapist_response, risk; label specification v1.1, `data/codebook.md`): TF-IDF word and "
        f"character n-grams, one calibrated logistic regression per facet. Created "
        f"{manifest.get('created_at', 'n/a')}; model format {manifest.get('format_version')}, artifact "
        f"`{manifest.get('artifact')}`.", "",
        INTENDED_USE, "",
        "## Training data", "",
        f"- `{data.get('path')}`, split `{data.get('split')}`: {data.get('posts')} posts in "
        f"{data.get('threads')} threads, sha256 `{data.get('sha256')}`.",
        "- The bundled corpus (`data/posts.csv`) was written for this project in the style of real forums "
        "(no real person's post is in it) and labelled by the label specification. Its datasheet (who "
        "wrote it, how, what it lacks) is `data/README.md` in the repository.",
    ]
    for sheet in manifest.get("extra_sheets", []):
        lines.append(f"- Annotation sheet `{sheet['path']}`: {sheet['labelled_posts']} labelled posts, "
                     f"sha256 `{sheet['sha256']}`.")
    counts = manifest.get("label_counts", {})
    if counts:
        lines.append("- Labels: " + "; ".join(f"{f}: " + ", ".join(f"{k} {v}" for k, v in c.items())
                                              for f, c in counts.items()))
    lines += ["", *_evaluations(manifest), *_shift(manifest), *_adaptation(manifest),
              "## Known gap on real posts", "",
              f"The test split and forums C, D and E were written by writers of the same kind as the training "
              f"posts. On a sample of {REAL_POSTS['posts']} real posts an earlier model scored macro-F1 "
              f"rupture_type {REAL_POSTS['rupture_type']}, repair_outcome {REAL_POSTS['repair_outcome']} and "
              f"therapist_response {REAL_POSTS['therapist_response']}: expect far less on your forum than the "
              f"table above says. What to do:", "",
              "1. `rupture-nlp shift -m MODEL your_posts.csv`: how far your forum is from the training data.",
              "2. `rupture-nlp sample -m MODEL --n 50 -o sheet.csv your_posts.csv`, then "
              "`rupture-nlp annotate sheet.csv`: label your own posts.",
              "3. `rupture-nlp train --extra sheet.csv --out models/yours`, and measure it on posts of your "
              "forum the sheet does not hold (`evaluate --baseline-data`).", "",
              "## Decisions built in", "",
              f"- Crisis threshold on P(crisis): {float(manifest.get('crisis_threshold') or 0):.3f} (chosen for recall).",
              f"- Triage confidence threshold: {manifest.get('triage', {}).get('threshold')} "
              f"({manifest.get('triage', {}).get('chosen_by', 'n/a')}).",
              f"- Calibration: {calibration_line(manifest.get('calibration', {}))}.", "",
              "## Hashes", "",
              f"- artifact `{manifest.get('artifact')}`: sha256 `{manifest.get('artifact_sha256')}`",
              f"- training data: sha256 `{data.get('sha256')}`", "",
              "A hash shows the file is the one the manifest describes, not who made it. The artifact is a "
              "skops file: loading builds only the types listed below (rupture-nlp, scikit-learn, numpy and "
              "scipy classes) and refuses a file naming any other, so it cannot run code. "
              "`rupture-nlp verify MODEL` checks the hashes, the versions and the types without loading it.", "",
              "Types the file holds beyond skops' defaults: "
              + (", ".join(f"`{t}`" for t in manifest.get("trusted_types", [])) or "n/a"), "",
              "## Versions", "",
              ", ".join(f"{k} {v}" for k, v in versions.items()), ""]
    return "\n".join(lines)
