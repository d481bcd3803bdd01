"""Research report: figures (PNG, matplotlib) and a Markdown summary that links them."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from rupture_nlp.evaluate import evaluate, reliability_table
from rupture_nlp.labels import FACETS, NOT_APPLICABLE
from rupture_nlp.model import RuptureModel
from rupture_nlp.persist import atomic_folder

CROSSTABS = [("therapist_response", "repair_outcome"), ("rupture_type", "repair_outcome")]


@dataclass
class ReportRequest:
    data: str | Path
    out: str | Path
    split: str = "test"
    fractions: list[float] = field(default_factory=lambda: [0.1, 0.25, 0.5, 0.75, 1.0])
    seeds: int = 3
    top_ngrams: int = 15
    force: bool = False
    n_boot: int = 1000
    evidence_per_class: int = 3


def _plt():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def crosstab(df: pd.DataFrame, rows: str, cols: str) -> pd.DataFrame:
    """Counts and row percentages of ``rows`` x ``cols`` among rupture posts, in label order."""
    sub = df[df["rupture_type"] != "none"]
    r_labels = [x for x in FACETS[rows] if x not in ("none", NOT_APPLICABLE)]
    c_labels = [x for x in FACETS[cols] if x not in ("none", NOT_APPLICABLE)]
    counts = pd.crosstab(sub[rows], sub[cols]).reindex(index=r_labels, columns=c_labels, fill_value=0)
    pct = counts.div(counts.sum(axis=1).replace(0, np.nan), axis=0).mul(100).round(1)
    return counts.astype(str) + " (" + pct.fillna(0).astype(str) + "%)"


def top_ngrams(model, n: int) -> pd.DataFrame:
    """Word n-grams with the largest coefficients for each class (relative to the class mean)."""
    names = model.feature_names()
    is_word = np.array([name.startswith("word__") for name in names])
    rows = []
    for facet in FACETS:
        clf = model.classifiers_[facet]
        coef = clf.coef_ - clf.coef_.mean(axis=0)
        for k, label in enumerate(clf.classes_):
            weights = np.where(is_word, coef[k], -np.inf)
            for rank, j in enumerate(np.argsort(weights)[::-1][:n], 1):
                rows.append({"facet": facet, "label": label, "rank": rank, "ngram": names[j][len("word__"):],
                             "weight": round(float(coef[k, j]), 4)})
    return pd.DataFrame(rows)


def evidence_examples(model, test: pd.DataFrame, per_class: int = 3) -> pd.DataFrame:
    """Per facet and predicted class, the test posts' strongest evidence sentences (each post's top
    sentence for that facet, strongest first): what the model keys on, in context."""
    from rupture_nlp.evidence import evidence_of

    rows = []
    for i, per in enumerate(evidence_of(model, test["text"], n=1)):
        for facet, found in per.items():
            for e in found:
                rows.append({"facet": facet, "label": e.label, "gold": test[facet].iat[i],
                             "post_id": test["post_id"].iat[i], "score": e.score, "share": e.share,
                             "sentence": e.text})
    df = pd.DataFrame(rows, columns=["facet", "label", "gold", "post_id", "score", "share", "sentence"])
    order = {(f, k): n for n, (f, k) in enumerate((f, k) for f in FACETS for k in FACETS[f])}
    df = df.assign(_o=[order[(f, k)] for f, k in zip(df["facet"], df["label"])])
    df = df.sort_values(["_o", "score"], ascending=[True, False], kind="stable").drop(columns="_o")
    return df.groupby(["facet", "label"], sort=False).head(per_class).reset_index(drop=True)


def learning_curve(corpus: pd.DataFrame, config, fractions, seeds: int, split: str = "test") -> pd.DataFrame:
    """Test macro-F1 per facet for models trained on growing shares of the train threads."""
    from sklearn.metrics import f1_score

    train = corpus[corpus["split"] == "train"]
    test = corpus[corpus["split"] == split]
    threads = train["thread_id"].unique()
    rows = []
    for seed in range(seeds):
        order = np.random.default_rng(seed).permutation(threads)
        for frac in fractions:
            keep = set(order[: max(2, int(round(frac * len(order))))])
            part = train[train["thread_id"].isin(keep)]
            model = RuptureModel(config, cross_validate=False).fit(part["text"], part, groups=part["thread_id"])
            pred = model.predict(test["text"])
            for facet in FACETS:
                rows.append({"fraction": frac, "seed": seed, "train_posts": len(part), "facet": facet,
                             "macro_f1": f1_score(test[facet], pred[facet], average="macro", zero_division=0)})
    return pd.DataFrame(rows)


def learning_table(curve: pd.DataFrame) -> pd.DataFrame:
    """Mean test macro-F1 per share of the train split (rows) and facet (columns)."""
    table = curve.pivot_table(index="fraction", columns="facet", values="macro_f1", aggfunc="mean")[list(FACETS)]
    table.insert(0, "train_posts", curve.groupby("fraction")["train_posts"].mean().round().astype(int))
    return table.round(3).reset_index()


def _save(fig, path: Path) -> str:
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    _plt().close(fig)
    return path.name


def figures(folder: Path, test: pd.DataFrame, result: dict, model, curve: pd.DataFrame) -> dict[str, str]:
    plt = _plt()
    out = {}
    pred = result["predictions"]
    fig, axes = plt.subplots(1, 4, figsize=(16, 3.6))
    for ax, facet in zip(axes, FACETS):
        labels = list(FACETS[facet])
        gold = test[facet].value_counts().reindex(labels, fill_value=0)
        guess = pred[facet].value_counts().reindex(labels, fill_value=0)
        x = np.arange(len(labels))
        ax.bar(x - 0.2, gold, 0.4, label="gold")
        ax.bar(x + 0.2, guess, 0.4, label="predicted")
        ax.set_xticks(x, [lab.replace("_", "\n") for lab in labels], fontsize=8)
        ax.set_title(facet)
    axes[0].legend()
    out["distributions"] = _save(fig, folder / "distributions.png")

    fig, axes = plt.subplots(1, 4, figsize=(18, 4.4))
    for ax, facet in zip(axes, FACETS):
        cm = result["systems"]["model"][facet]["confusion"]
        ax.imshow(np.array(cm["matrix"]), cmap="Blues")
        ticks = [lab.replace("_", "\n") for lab in cm["labels"]]
        ax.set_xticks(range(len(ticks)), ticks, fontsize=7)
        ax.set_yticks(range(len(ticks)), ticks, fontsize=7)
        for (i, j), v in np.ndenumerate(np.array(cm["matrix"])):
            ax.text(j, i, v, ha="center", va="center", fontsize=8)
        ax.set_title(facet)
        ax.set_xlabel("predicted")
    axes[0].set_ylabel("gold")
    out["confusion"] = _save(fig, folder / "confusion.png")

    X = model.transform(test["text"], columns=True)
    fig, axes = plt.subplots(1, 4, figsize=(16, 4))
    for ax, facet in zip(axes, FACETS):
        y = np.array([list(FACETS[facet]).index(v) for v in test[facet]])
        for calibrated, name in ((False, "before"), (True, "after")):
            table = reliability_table(model.proba_from_features(X, calibrated)[facet].to_numpy(), y)
            ax.plot(table["confidence"], table["accuracy"], marker="o", label=name)
        ax.plot([0, 1], [0, 1], "k--", lw=0.8)
        ax.set_title(f"{facet}: reliability")
        ax.set_xlabel("confidence")
    axes[0].set_ylabel("accuracy")
    axes[0].legend()
    out["reliability"] = _save(fig, folder / "reliability.png")

    fig, ax = plt.subplots(figsize=(7, 4.5))
    for facet, part in curve.groupby("facet", sort=False):
        stats = part.groupby("fraction").agg(posts=("train_posts", "mean"), mean=("macro_f1", "mean"),
                                             std=("macro_f1", "std")).reset_index()
        ax.errorbar(stats["posts"], stats["mean"], yerr=stats["std"].fillna(0), marker="o", capsize=3,
                    label=facet)
    ax.set_xlabel("training posts (mean over seeds; threads are sampled, so counts vary a little)")
    ax.set_ylabel("test macro-F1 (mean ± sd over seeds)")
    ax.legend()
    out["learning_curve"] = _save(fig, folder / "learning_curve.png")
    return out


def error_table(test: pd.DataFrame, result: dict) -> pd.DataFrame:
    pred, proba = result["predictions"], result["proba"]
    rows = []
    for facet in FACETS:
        conf = proba[facet].to_numpy()[np.arange(len(test)), proba[facet].columns.get_indexer(pred[facet])]
        wrong = test[facet].to_numpy() != pred[facet].to_numpy()
        for i in np.flatnonzero(wrong):
            rows.append({"post_id": test["post_id"].iat[i], "facet": facet, "gold": test[facet].iat[i],
                         "predicted": pred[facet].iat[i], "confidence": round(float(conf[i]), 3),
                         "text": test["text"].iat[i]})
    return pd.DataFrame(rows).sort_values(["facet", "confidence"], ascending=[True, False])


def _md_table(df: pd.DataFrame) -> str:
    cols = [str(c) for c in df.columns]
    lines = ["| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
    lines += ["| " + " | ".join(str(v).replace("|", "/").replace("\n", " ") for v in row) + " |"
              for row in df.itertuples(index=False)]
    return "\n".join(lines)


def build_report(model, corpus: pd.DataFrame, req: ReportRequest) -> dict:
    """Write the report folder; returns the numbers the summary states."""
    with atomic_folder(req.out, force=req.force, what="report folder") as folder:
        result = evaluate(model, corpus, split=req.split, n_boot=req.n_boot)
        test = corpus[corpus["split"] == req.split].reset_index(drop=True)
        pred_frame = test.copy()
        for facet in FACETS:
            pred_frame[facet] = result["predictions"][facet].to_numpy()
        curve = learning_curve(corpus, model.config_, req.fractions, req.seeds, req.split)
        curve.to_csv(folder / "learning_curve.csv", index=False)
        grams = top_ngrams(model, req.top_ngrams)
        grams.to_csv(folder / "top_ngrams.csv", index=False)
        examples = evidence_examples(model, test, req.evidence_per_class)
        examples.to_csv(folder / "evidence_examples.csv", index=False)
        errors = error_table(test, result)
        errors.to_csv(folder / "errors.csv", index=False)
        figs = figures(folder, test, result, model, curve)
        scores = {f: result["systems"]["model"][f]["macro_f1"] for f in FACETS}
        lines = [f"# rupture-nlp report: {req.split} split", "",
                 f"{len(test)} posts in {test['thread_id'].nunique()} threads; model trained on "
                 f"{int((corpus['split'] == 'train').sum())} posts. Labels follow the label specification v1.1.",
                 "", "## Scores", "", "| facet | model macro-F1 [95% CI] | plain TF-IDF+LR | keyword rules | majority |",
                 "|---|---|---|---|---|"]
        for facet in FACETS:
            cells = []
            for name in ("model", "plain_tfidf_lr", "keyword_rules", "majority"):
                s = result["systems"][name][facet]
                cells.append(f"{s['macro_f1']:.3f} [{s['macro_f1_ci95'][0]:.2f}-{s['macro_f1_ci95'][1]:.2f}]")
            lines.append(f"| {facet} | " + " | ".join(cells) + " |")
        lines += ["", "## Label distributions", "", f"![distributions]({figs['distributions']})", ""]
        for rows, cols in CROSSTABS:
            for name, frame in (("gold", test), ("predicted", pred_frame)):
                lines += [f"### {rows} × {cols} ({name}; counts and row %; rupture posts)", "",
                          _md_table(crosstab(frame, rows, cols).reset_index()), ""]
        lines += ["## Confusion matrices", "", f"![confusion]({figs['confusion']})", "",
                  "## Calibration", "", f"![reliability]({figs['reliability']})", "",
                  "| facet | ECE before | ECE after | Brier before | Brier after |", "|---|---|---|---|---|"]
        for facet in FACETS:
            c = result["calibration"][facet]
            lines.append(f"| {facet} | {c['ece_before']:.3f} | {c['ece_after']:.3f} | {c['brier_before']:.3f} | "
                         f"{c['brier_after']:.3f} |")
        lines += ["", "## Learning curve", "", f"![learning curve]({figs['learning_curve']})", "",
                  "Mean test macro-F1 over seeds (data: learning_curve.csv):", "",
                  _md_table(learning_table(curve)), "",
                  "## Weightiest n-grams per class (word features; all: top_ngrams.csv)", ""]
        for facet in FACETS:
            sub = grams[(grams["facet"] == facet) & (grams["rank"] <= 8)]
            table = sub.groupby("label", sort=False)["ngram"].apply(", ".join).reset_index()
            lines += [f"**{facet}**", "", _md_table(table), ""]
        lines += ["## Evidence sentences per class (test split; all: evidence_examples.csv)", "",
                  "Per predicted class, the test posts' top evidence sentences: the sentence whose removal "
                  "lowers the label's probability most (score), with its share of the decision and the gold "
                  "label. Names are masked.", "",
                  _md_table(examples.assign(sentence=examples["sentence"].str.slice(0, 160))
                            [["facet", "label", "gold", "score", "share", "sentence"]]), ""]
        lines += ["## Errors", "", f"{len(errors)} misclassifications over all facets (all: errors.csv); the most "
                  "confident ten:", "",
                  _md_table(errors.sort_values("confidence", ascending=False).head(10)
                            .assign(text=lambda d: d["text"].str.slice(0, 140) + "…")), ""]
        (folder / "summary.md").write_text("\n".join(lines), encoding="utf-8")
    return {"macro_f1": scores, "figures": figs, "errors": int(len(errors)), "learning_curve_rows": int(len(curve)),
            "evidence_examples": int(len(examples))}
