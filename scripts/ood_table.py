"""Markdown rows from `evaluate --format json` outputs: macro-F1 [95% CI], plain baseline, ECE, triage.

    python scripts/ood_table.py NAME=metrics.json [NAME=metrics.json ...]
"""
import json
import sys

FACETS = ["rupture_type", "repair_outcome", "therapist_response", "risk"]


def rows(name: str, path: str) -> list[str]:
    r = json.load(open(path))
    m, p, c = r["systems"]["model"], r["systems"]["plain_tfidf_lr"], r["calibration"]
    out = []
    for f in FACETS:
        lo, hi = m[f]["macro_f1_ci95"]
        out.append(f"| {name} | {f} | {m[f]['macro_f1']:.3f} [{lo:.2f}-{hi:.2f}] | {p[f]['macro_f1']:.3f} | "
                   f"{c[f]['ece_before']:.3f} | {c[f]['ece_after']:.3f} |")
    t = r.get("triage", {})
    if t.get("confident_accuracy") is not None:
        out.append(f"| {name} | triage: confident right / coverage | {t['confident_accuracy']:.3f} / "
                   f"{t['coverage']:.2f} | | | |")
    return out


if __name__ == "__main__":
    print("| set | facet | macro-F1 [95% CI] | plain TF-IDF + LR | ECE raw | ECE calibrated |")
    print("|---|---|---|---|---|---|")
    for arg in sys.argv[1:]:
        name, path = arg.split("=", 1)
        print("\n".join(rows(name, path)))
