"""Moderator triage: post labels rolled up to threads, a priority per thread, honest uncertainty.

Roll-up. The thread's rupture is the opening poster's (OP's) own story: the label of the OP's
first post, or, if that tells none, of the OP's latest post that tells one. Its outcome comes from
the OP's latest post with a rupture (an update overrides the first post), its therapist response from
the OP's latest post whose response is known. Replies by others never decide these. Risk is the
highest risk of any post in the thread, by anyone.

Priorities (config [triage]; the order is the queue order):
- urgent: a post by anyone whose risk is crisis, by the model (its crisis threshold is set for recall)
  or by the config's high-recall phrase list. Always first, never marked uncertain.
- review: an unrepaired rupture with a defensive therapist, or any post with risk concern.
- support: a rupture that is unrepaired or in progress.
- routine: no rupture, or a repaired one.
- uncertain: the model's probability that the priority it gives is right is below the confidence
  threshold, or the opening poster's deciding post is farther from the training corpus than
  ``ood_limit`` (its OOD score, see rupture_nlp.ood): the model cannot judge it, so a person decides
  (these rank after review and before support, never in routine).
"""

from __future__ import annotations

import html
from dataclasses import dataclass

import numpy as np
import pandas as pd

from rupture_nlp.labels import FACETS
from rupture_nlp.text import normalise

PRIORITY_ORDER = ["urgent", "review", "uncertain", "support", "routine"]
STRUCTURE = ["thread_id", "author"]


class StructureError(ValueError):
    """The input lacks the columns that give threads their structure."""


def check_structure(df: pd.DataFrame) -> str:
    """Return the ordering column (position or created_at) or raise naming what is missing."""
    missing = [c for c in STRUCTURE if c not in df.columns]
    order = "position" if "position" in df.columns else "created_at" if "created_at" in df.columns else None
    if missing or order is None:
        need = missing + ([] if order else ["position or created_at"])
        raise StructureError(f"triage needs thread structure: missing column(s) {', '.join(need)}; "
                             f"columns found: {', '.join(df.columns)}")
    return order


def crisis_phrase_hits(texts, phrases: list[str]) -> np.ndarray:
    lowered = [normalise(str(t), mask_names=False, pronouns="keep").lower().replace("’", "'")
               for t in texts]
    return np.array([any(p in t for p in phrases) for t in lowered], dtype=bool)


@dataclass
class ThreadDecision:
    priority: str
    confidence: float


def _thread_distribution(op_rupture, op_outcome, op_response, risk_any) -> dict[str, float]:
    """P(priority) for a thread, treating the facets of different posts as independent."""
    p_none = op_rupture["none"]
    r = 1 - p_none

    def cond(frame, label):  # P(label | rupture) from the joint probabilities of that post
        rupture_mass = 1 - frame["not_applicable"]
        return frame[label] / rupture_mass if rupture_mass > 1e-12 else 0.0

    q_unrep, q_inprog, q_rep = (cond(op_outcome, k) for k in ("unrepaired", "in_progress", "repaired"))
    q_def = cond(op_response, "defensive")
    p_unrep_def = r * q_unrep * q_def
    no_concern = 1 - risk_any
    return {"review": 1 - no_concern * (1 - p_unrep_def),
            "support": no_concern * r * (q_unrep + q_inprog - q_unrep * q_def),
            "routine": no_concern * (p_none + r * q_rep)}


def priority_from_labels(rupture: str, outcome: str, response: str, risk: str) -> str:
    if risk == "crisis":
        return "urgent"
    if risk == "concern" or (rupture != "none" and outcome == "unrepaired" and response == "defensive"):
        return "review"
    if rupture != "none" and outcome in ("unrepaired", "in_progress"):
        return "support"
    return "routine"


def _ordered(df: pd.DataFrame, order: str) -> pd.DataFrame:
    key = pd.to_numeric(df[order], errors="coerce") if order == "position" else pd.to_datetime(
        df[order], errors="coerce", utc=True, format="ISO8601")
    return df.assign(_order=key, _row=np.arange(len(df))).sort_values(["thread_id", "_order", "_row"],
                                                                       kind="stable")


def rollup(posts: pd.DataFrame, labels: pd.DataFrame, proba: dict[str, pd.DataFrame] | None = None,
           crisis_phrase: np.ndarray | None = None, ood: np.ndarray | None = None) -> pd.DataFrame:
    """One row per thread: rolled-up labels, the deciding post ids, priority and its confidence.

    ``labels``, ``proba`` and ``ood`` (the posts' OOD scores) are row-aligned with ``posts``. Without
    ``proba`` (gold labels) every confidence is 1. A thread's ``ood_score`` is the highest of the
    opening poster's posts that decide its labels.
    """
    order = check_structure(posts)
    df = posts.reset_index(drop=True)
    lab = labels.reset_index(drop=True)
    phrase = np.zeros(len(df), bool) if crisis_phrase is None else np.asarray(crisis_phrase)
    ood = np.zeros(len(df)) if ood is None else np.asarray(ood, dtype=float)
    rows = []
    for thread_id, group in _ordered(df, order).groupby("thread_id", sort=False):
        idx = group["_row"].to_numpy()
        op = group["author"].iloc[0]
        op_idx = idx[group["author"].to_numpy() == op]
        with_rupture = [i for i in op_idx if lab.at[i, "rupture_type"] != "none"]
        first = op_idx[0]
        rupture_i = first if lab.at[first, "rupture_type"] != "none" or not with_rupture else with_rupture[-1]
        outcome_i = with_rupture[-1] if with_rupture else first
        known = [i for i in with_rupture if lab.at[i, "therapist_response"] != "unknown"]
        response_i = known[-1] if known else outcome_i
        rupture = lab.at[rupture_i, "rupture_type"]
        outcome = lab.at[outcome_i, "repair_outcome"] if rupture != "none" else "not_applicable"
        response = lab.at[response_i, "therapist_response"] if rupture != "none" else "not_applicable"
        risks = lab.loc[idx, "risk"]
        model_crisis = bool((risks == "crisis").any())
        phrase_crisis = bool(phrase[idx].any())
        risk = "crisis" if model_crisis or phrase_crisis else "concern" if (risks == "concern").any() else "none"
        priority = priority_from_labels(rupture, outcome, response, risk)
        if proba is None or priority == "urgent":
            confidence = 1.0 if proba is None else float(max(proba["risk"].loc[idx, "crisis"].max(),
                                                             1.0 if phrase_crisis else 0.0))
        else:
            risk_any = 1 - float(np.prod(1 - proba["risk"].loc[idx, ["concern", "crisis"]].sum(axis=1)))
            dist = _thread_distribution(proba["rupture_type"].loc[rupture_i], proba["repair_outcome"].loc[outcome_i],
                                        proba["therapist_response"].loc[response_i], risk_any)
            confidence = float(dist[priority])
        crisis_post = next((i for i in idx if lab.at[i, "risk"] == "crisis" or phrase[i]), None)
        rows.append({
            "thread_id": thread_id, "model_priority": priority, "confidence": confidence,
            "rupture_type": rupture, "repair_outcome": outcome, "therapist_response": response, "risk": risk,
            "urgent_by": ("model+phrases" if model_crisis and phrase_crisis else "model" if model_crisis
                          else "phrases" if phrase_crisis else ""),
            "ood_score": float(ood[[first, rupture_i, outcome_i, response_i]].max()),
            "n_posts": int(len(idx)), "opening_author": op,
            "first_row": int(first), "rupture_row": int(rupture_i), "outcome_row": int(outcome_i),
            "response_row": int(response_i), "crisis_row": None if crisis_post is None else int(crisis_post),
        })
    return pd.DataFrame(rows)


def apply_threshold(threads: pd.DataFrame, threshold: float, ood_limit: float = 1.0) -> pd.DataFrame:
    """Mark as uncertain the non-urgent threads whose confidence is below ``threshold`` or whose OOD
    score is above ``ood_limit``; sort the queue."""
    out = threads.copy()
    far = out["ood_score"] > ood_limit if "ood_score" in out else False
    doubtful = (out["model_priority"] != "urgent") & ((out["confidence"] < threshold) | far)
    out["priority"] = out["model_priority"].where(~doubtful, "uncertain")
    rank = {p: i for i, p in enumerate(PRIORITY_ORDER)}
    # Uncertain threads are ordered by what the model would have said, most pressing first.
    out = out.assign(_rank=out["priority"].map(rank), _model=out["model_priority"].map(rank))
    out = out.sort_values(["_rank", "_model", "confidence"], ascending=[True, True, False], kind="stable")
    return out.drop(columns=["_rank", "_model"]).reset_index(drop=True)


def confident_accuracy(pred: pd.DataFrame, gold: pd.DataFrame, threshold: float, ood_limit: float = 1.0) -> dict:
    """Accuracy of the priorities not marked uncertain, and their share (coverage)."""
    pred = pred.assign(ood_score=pred["ood_score"] if "ood_score" in pred else 0.0)
    merged = pred[["thread_id", "model_priority", "confidence", "ood_score"]].merge(
        gold[["thread_id", "model_priority"]].rename(columns={"model_priority": "gold"}), on="thread_id")
    confident = (merged["model_priority"] == "urgent") | (
        (merged["confidence"] >= threshold) & (merged["ood_score"] <= ood_limit))
    right = merged["model_priority"] == merged["gold"]
    return {"threshold": float(threshold), "ood_limit": float(ood_limit), "threads": int(len(merged)),
            "coverage": float(confident.mean()) if len(merged) else 0.0,
            "confident_accuracy": float(right[confident].mean()) if confident.any() else None,
            "overall_accuracy": float(right.mean()) if len(merged) else None,
            "urgent_recall": _urgent_recall(merged)}


def _urgent_recall(merged: pd.DataFrame):
    urgent = merged["gold"] == "urgent"
    return float((merged.loc[urgent, "model_priority"] == "urgent").mean()) if urgent.any() else None


def choose_confidence_threshold(model, train: pd.DataFrame) -> dict:
    """The lowest threshold whose confident thread priorities, from out-of-fold predictions on the
    train split, are right at least ``confident_accuracy_target`` of the time (see
    :func:`threshold_for_target`)."""
    cfg = model.config_.triage
    target = float(cfg.get("confident_accuracy_target", 0.90))
    phrases = list(cfg.get("crisis_phrases", []))
    if model.oof_proba_ is None:
        return {"threshold": 0.5, "chosen_by": "fallback (no cross-validation)"}
    n = len(train)
    oof = {f: p.iloc[:n].reset_index(drop=True) for f, p in model.oof_proba_.items()}
    pred = rollup(train, model.labels_from_proba(oof), oof, crisis_phrase_hits(train["text"], phrases))
    gold = rollup(train, train[list(FACETS)])
    fixed = cfg.get("confidence_threshold", "auto")
    if fixed != "auto":
        return {"threshold": float(fixed), "chosen_by": "config", **_strip(confident_accuracy(pred, gold, fixed))}
    return threshold_for_target(pred, gold, target)


def threshold_for_target(pred: pd.DataFrame, gold: pd.DataFrame, target: float) -> dict:
    """The lowest confidence threshold (steps of 0.01) whose confident priorities are right with a 95%
    lower bound of at least ``target``. Where no threshold reaches it, the one with the highest lower
    bound, said so (``target_reached`` false): a model a few threads short of the target still
    sends its most doubtful threads to a person, rather than every thread at once."""
    best = None
    for t in np.round(np.arange(0.0, 1.0001, 0.01), 2):
        scores = confident_accuracy(pred, gold, t)
        acc, n_conf = scores["confident_accuracy"], scores["coverage"] * scores["threads"]
        if acc is None:
            continue
        lower = wilson_lower(acc, n_conf)
        if lower >= target:
            return {"chosen_by": f"out-of-fold thread priorities on the train split: the lowest threshold whose "
                                 f"confident accuracy has a 95% lower bound of at least {target}",
                    **_strip(scores), "confident_accuracy_lower_bound": lower, "target_reached": True}
        if best is None or lower > best[0]:
            best = (lower, scores)
    if best is None:
        return {"chosen_by": "no thread to judge; every non-urgent thread goes to a person",
                **_strip(confident_accuracy(pred, gold, 1.01)), "target_reached": False}
    lower, scores = best
    return {"chosen_by": f"target not reachable: no threshold's confident accuracy has a 95% lower bound of "
                         f"{target} on the out-of-fold thread priorities (the best is {lower:.3f}); the threshold "
                         f"with the highest lower bound", **_strip(scores),
            "confident_accuracy_lower_bound": lower, "target_reached": False}


def wilson_lower(p: float, n: float, z: float = 1.645) -> float:
    """One-sided 95% Wilson lower bound of a proportion ``p`` observed on ``n`` cases."""
    if n <= 0:
        return 0.0
    centre = p + z * z / (2 * n)
    margin = z * np.sqrt(p * (1 - p) / n + z * z / (4 * n * n))
    return float((centre - margin) / (1 + z * z / n))


def _strip(scores: dict) -> dict:
    return {k: v for k, v in scores.items() if k != "urgent_recall"} | {"urgent_recall_oof": scores["urgent_recall"]}


FACET_COLOURS = {"risk": "#f5b7b1", "rupture_type": "#f9e79f", "repair_outcome": "#aed6f1",
                 "therapist_response": "#d2b4de"}


def render_post(text: str, marks: list[dict]) -> str:
    """A post as escaped HTML with each evidence sentence in ``<mark class="facet-...">`` (the first
    facet listed wins the colour; every facet is named after it), names masked as "[name]" and quoted
    lines dimmed."""
    from rupture_nlp.evidence import name_spans, shown, split_sentences

    esc = lambda v: html.escape(str(v), quote=True)  # noqa: E731
    names = name_spans(text)
    by_span: dict[tuple[int, int], list[dict]] = {}
    for m in marks:
        by_span.setdefault((m["start"], m["end"]), []).append(m)
    out, at = [], 0
    for s in split_sentences(text):
        out.append(esc(shown(text, at, s.start, names)))
        body = esc(shown(text, s.start, s.end, names))
        found = by_span.get((s.start, s.end))
        if s.quote:
            body = f"<span class=quote>{body}</span>"
        elif found:
            tags = ", ".join(f"{esc(m['facet'])}: {esc(m['label'])} {m['share']:.0%}" for m in found)
            body = (f"<mark class=\"facet-{esc(found[0]['facet'])}\" title=\"{tags}\">{body}</mark>"
                    f"<sup class=tag>{tags}</sup>")
        out.append(body)
        at = s.end
    out.append(esc(shown(text, at, len(text), names)))
    return "".join(out)


def _evidence_cell(r, esc) -> str:
    posts = getattr(r, "evidence_posts", None)
    if not isinstance(posts, list):  # a queue without evidence (e.g. built by hand)
        reasons = "; ".join(esc(p) for p in str(getattr(r, "reasons", "") or "").split("; ") if p)
        return (f"<div class=small>{reasons}</div><details><summary>{esc(r.opening_author)}: "
                f"{esc(str(r.opening_text)[:90])}…</summary><div class=post>{esc(r.opening_text)}</div></details>")
    parts = []
    for post in posts:
        role = "opening post" if post.get("opening") else "later post"
        listed = "".join(f"<li><mark class=\"facet-{esc(m['facet'])}\">{esc(m['facet'])}: {esc(m['label'])}</mark> "
                         f"{esc(m['text'])} <span class=small>({m['share']:.0%})</span></li>" for m in post["marks"])
        parts.append(f"<div class=small>{esc(role)} {esc(post['post_id'])} by {esc(post['author'])}</div>"
                     f"<ul class=ev>{listed or '<li class=small>no sentence carries a rupture or risk label</li>'}</ul>"
                     f"<details open><summary class=small>the post, evidence highlighted</summary>"
                     f"<div class=post>{render_post(post['text'], post['marks'])}</div></details>")
    return "".join(parts)


def render_html(queue: pd.DataFrame, title: str = "rupture-nlp triage queue") -> str:
    """One self-contained page: no scripts, no external files; every post text is escaped. Evidence
    sentences are highlighted per facet with CSS only, risk first."""
    esc = lambda v: html.escape(str(v), quote=True)  # noqa: E731
    colours = {"urgent": "#b00020", "review": "#d35400", "uncertain": "#7d3c98", "support": "#1f618d",
               "routine": "#566573"}
    rows = []
    for r in queue.itertuples(index=False):
        rows.append(
            f"<tr><td><span class=p style='background:{colours.get(r.priority, '#333')}'>{esc(r.priority)}</span>"
            f"<div class=small>model: {esc(r.model_priority)}</div></td>"
            f"<td>{r.confidence:.2f}</td><td>{esc(r.thread_id)}<div class=small>{r.n_posts} posts</div></td>"
            f"<td>{esc(r.rupture_type)}<br>{esc(r.repair_outcome)}<br>{esc(r.therapist_response)}"
            f"<br>risk: {esc(r.risk)}</td><td>{_evidence_cell(r, esc)}</td></tr>")
    counts = queue["priority"].value_counts()
    summary = ", ".join(f"{counts.get(p, 0)} {p}" for p in PRIORITY_ORDER)
    marks_css = " ".join(f"mark.facet-{f}{{background:{c}}}" for f, c in FACET_COLOURS.items())
    legend = " ".join(f"<mark class=facet-{f}>{f}</mark>" for f in FACET_COLOURS)
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>{esc(title)}</title>
<style>
body{{font-family:system-ui,sans-serif;margin:1.5em;color:#222}} table{{border-collapse:collapse;width:100%}}
th,td{{border-bottom:1px solid #ddd;padding:.4em;vertical-align:top;text-align:left}}
.p{{color:#fff;border-radius:3px;padding:.1em .4em;font-weight:600}} .small{{font-size:.8em;color:#555}}
.post{{white-space:pre-wrap;max-width:60em;margin-top:.5em}} summary{{cursor:pointer}}
mark{{border-radius:2px;padding:0 .1em;color:inherit}} {marks_css}
sup.tag{{font-size:.65em;color:#555;margin-left:.2em}} .quote{{color:#888;font-style:italic}}
ul.ev{{margin:.2em 0 .4em 1.2em;padding:0}}
</style></head><body>
<h1>{esc(title)}</h1>
<p>{len(queue)} threads: {esc(summary)}. Uncertain threads need a person: the model is not confident
enough in their priority. Labels are model predictions, not diagnoses.</p>
<p class=small>Evidence: the sentences whose removal lowers the label's probability most (share: of the
decision), risk first: {legend}. Names are masked as [name]; quoted lines are never evidence.</p>
<table><thead><tr><th>priority</th><th>confidence</th><th>thread</th><th>labels</th>
<th>evidence, highlighted where it stands</th></tr></thead><tbody>
{chr(10).join(rows)}
</tbody></table></body></html>
"""
