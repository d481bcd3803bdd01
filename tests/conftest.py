"""Shared fixtures: small data built here, and one model trained once per session on the corpus."""

from __future__ import annotations

import csv
from pathlib import Path

import pandas as pd
import pytest

ROOT = Path(__file__).resolve().parents[1]
CORPUS = ROOT / "data" / "posts.csv"
EXAMPLES = ROOT / "data" / "examples"


@pytest.fixture(scope="session")
def corpus() -> pd.DataFrame:
    from rupture_nlp.data import read_corpus

    return read_corpus(CORPUS)


@pytest.fixture(scope="session")
def model_dir(tmp_path_factory) -> Path:
    """The default model trained once on the bundled corpus's train split."""
    from rupture_nlp.train import TrainRequest, train_model

    out = tmp_path_factory.mktemp("models") / "default"
    train_model(TrainRequest(data=CORPUS, out=out))
    return out


@pytest.fixture(scope="session")
def model(model_dir):
    from rupture_nlp.persist import load_model

    return load_model(model_dir)


# Small hand-made posts for the code tests: enough to fit every facet, nothing more.
SMALL_POSTS = [
    ("I skipped my session and told her I was sick. I wasn't.", "withdrawal", "in_progress", "unknown", "none"),
    ("Went quiet for weeks, then told him calmly; he was glad I came back and we're ok.", "withdrawal", "repaired", "validating", "none"),
    ("I stopped replying to my counsellor's emails and never went back.", "withdrawal", "unrepaired", "unknown", "concern"),
    ("I told my T I was furious she forgot our appointment. She apologised, we are fine now.", "confrontation", "repaired", "accountable", "none"),
    ("I shouted at my pdoc about the meds and he discharged me on the spot.", "confrontation", "unrepaired", "defensive", "none"),
    ("I demanded a longer session; she said no but heard me out. Still thinking about it.", "confrontation", "in_progress", "boundary", "concern"),
    ("Does anyone know how long NHS waiting lists are for CBT?", "none", "not_applicable", "not_applicable", "none"),
    ("My sister forgot my birthday and I was so hurt. My therapist helped me think it through.", "none", "not_applicable", "not_applicable", "none"),
    ("Great session today, my T is lovely.", "none", "not_applicable", "not_applicable", "none"),
    ("I can't do this anymore and I've said my goodbyes. This is goodbye.", "none", "not_applicable", "not_applicable", "crisis"),
    ("Told her I felt dismissed when she checked the clock; she apologised and owned it.", "confrontation", "repaired", "accountable", "none"),
    ("I cancelled again, I just can't face telling her the homework thing upset me.", "withdrawal", "in_progress", "unknown", "none"),
]


def write_small_corpus(path: Path, repeat: int = 3) -> Path:
    """A tiny corpus in the real schema: every post in its own thread, a third of them in test."""
    rows = []
    for r in range(repeat):
        for i, (text, rt, ro, tr, risk) in enumerate(SMALL_POSTS):
            t = f"S{r}{i:02d}"
            rows.append({"post_id": f"{t}-00", "thread_id": t, "author": f"user{i}", "position": 0,
                         "reply_to": "", "created_at": "2026-01-01T10:00:00Z", "text": f"{text} ({r})",
                         "rupture_type": rt, "repair_outcome": ro, "therapist_response": tr, "risk": risk,
                         "split": "test" if r == 2 else "train"})
    with open(path, "w", newline="", encoding="utf-8") as fh:
        writer = csv.DictWriter(fh, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    return path


@pytest.fixture(scope="session")
def small_corpus(tmp_path_factory) -> Path:
    return write_small_corpus(tmp_path_factory.mktemp("small") / "posts.csv")


@pytest.fixture(scope="session")
def small_model_dir(tmp_path_factory, small_corpus) -> Path:
    from rupture_nlp.train import TrainRequest, train_model

    out = tmp_path_factory.mktemp("small_models") / "m"
    cfg = tmp_path_factory.mktemp("cfg") / "small.toml"
    cfg.write_text("cv_folds = 3\n[pipeline]\ntfidf__word__min_df = 1\ntfidf__char__min_df = 1\n", encoding="utf-8")
    train_model(TrainRequest(data=small_corpus, out=out, config=cfg, n_jobs=1))
    return out


# Threads for the moderators' desk: a crisis, a withdrawal with a quoted reply and an update by the
# opening poster, a hostile post (markup in the text and an attribute-breaking author), a calm one.
HOSTILE_TEXT = ('<script>alert("x")</script> I told my T I was furious she forgot our appointment. '
                '<img src=x onerror=alert(2)> She apologised, we are fine now.')
HOSTILE_AUTHOR = 'mallory" onmouseover="alert(1)'
DESK_THREADS = [
    ("W1", "ash", "I skipped my session and told her I was sick. I wasn't."),
    ("W1", "kettle", "> I skipped my session\nThat happens, be kind to yourself."),
    ("W1", "ash", "Update: went quiet for weeks, then told him calmly; he was glad I came back and we're ok."),
    ("C1", "quiet", "I can't do this anymore and I've said my goodbyes. This is goodbye."),
    ("C1", "mod", "Please stay with us, a moderator is messaging you now."),
    ("H1", HOSTILE_AUTHOR, HOSTILE_TEXT),
    ("N1", "books", "Great session today, my T is lovely."),
    ("N1", "lantern", "Love this, well done you."),
]


def write_desk_threads(path: Path, rows=DESK_THREADS) -> Path:
    """A CSV of threads in the shape `triage` and `review` read (post_id, thread_id, author, position, text)."""
    seen: dict[str, int] = {}
    out = []
    for thread_id, author, text in rows:
        pos = seen.get(thread_id, 0)
        seen[thread_id] = pos + 1
        out.append({"post_id": f"{thread_id}-{pos}", "thread_id": thread_id, "author": author, "position": pos,
                    "text": text})
    pd.DataFrame(out).to_csv(path, index=False)
    return path
