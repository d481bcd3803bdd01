"""The moderators' desk over HTTP (Flask's test client): access, CSRF, escaping, edit conflicts,
the consistency rule, adding posts, re-ranking, a killed writer, and export -> train --extra."""

from __future__ import annotations

import json
import re
import sqlite3
import subprocess
import sys
import threading
import urllib.request

import pandas as pd
import pytest
from click.testing import CliRunner

from rupture_nlp.cli import main
from tests.conftest import HOSTILE_AUTHOR, HOSTILE_TEXT, write_desk_threads

flask = pytest.importorskip("flask", reason="the desk needs Flask: pip install 'rupture-nlp[review]'")

from rupture_nlp.review.app import create_app, make_server  # noqa: E402
from rupture_nlp.review.build import build_desk, read_threads  # noqa: E402
from rupture_nlp.review.store import Desk  # noqa: E402

pytestmark = pytest.mark.code
CSRF = re.compile(r'name="csrf" value="([^"]+)"')
VERSION = re.compile(r'name="version" value="(\d+)"')


def run(*args):
    return CliRunner().invoke(main, [str(a) for a in args], catch_exceptions=False)


@pytest.fixture(scope="module")
def small_model(small_model_dir):
    from rupture_nlp.persist import load_model

    return load_model(small_model_dir)


@pytest.fixture
def desk_path(tmp_path, small_model, small_model_dir):
    posts, order = read_threads(write_desk_threads(tmp_path / "threads.csv"))
    path = tmp_path / "desk.sqlite"
    build_desk(path, small_model, small_model_dir, posts, order)
    return path


@pytest.fixture
def client(desk_path, small_model, small_model_dir):
    return create_app(desk_path, model=small_model, model_dir=small_model_dir).test_client()


def form_of(page: bytes) -> dict:
    text = page.decode()
    return {"csrf": CSRF.search(text).group(1), "version": VERSION.search(text).group(1)}


def test_queue_puts_the_crisis_thread_first_with_counts(client):
    page = client.get("/").get_data(as_text=True)
    order = re.findall(r'data-href="/thread/([^"]+)"', page)
    assert order[0] == "C1" and set(order) == {"C1", "W1", "H1", "N1"}
    assert "urgent</span> (1)" in page
    urgent = client.get("/?priority=urgent").get_data(as_text=True)
    assert re.findall(r'data-href="/thread/([^"]+)"', urgent) == ["C1"]
    assert "No thread matches" in client.get("/?status=reviewed").get_data(as_text=True)


def test_every_request_without_the_token_is_401(desk_path):
    c = create_app(desk_path, token="s3cret-token").test_client()
    for path in ("/", "/thread/C1", "/static/desk.js", "/?token=wrong"):
        assert c.get(path).status_code == 401, path
    assert c.post("/status", data={"thread_id": "C1", "status": "reviewed"}).status_code == 401
    assert c.get("/", headers={"X-Desk-Token": "s3cret-token"}).status_code == 200
    visit = c.get("/thread/C1?token=s3cret-token")
    assert visit.status_code == 302 and visit.headers["Location"].endswith("/thread/C1")
    assert "desk_token=s3cret-token" in visit.headers["Set-Cookie"] and "HttpOnly" in visit.headers["Set-Cookie"]
    assert c.get("/").status_code == 200  # the cookie now carries it


def test_state_changes_need_post_and_the_csrf_token(client, desk_path):
    page = client.get("/thread/W1").data
    good = {"thread_id": "W1", "status": "reviewed", "note": "", **form_of(page)}
    assert client.get("/status").status_code == 405
    for bad in ({k: v for k, v in good.items() if k != "csrf"}, {**good, "csrf": "forged"}):
        refused = client.post("/status", data=bad)
        assert refused.status_code == 403 and b"CSRF" in refused.data
    other = create_app(desk_path).test_client()  # another browser: its session has no token of ours
    assert other.post("/status", data=good).status_code == 403
    assert client.post("/status", data={**good}, headers={"Origin": "http://evil.example"}).status_code == 403
    assert Desk(desk_path).thread("W1")["status"] == "open"
    assert client.post("/status", data=good).status_code == 302
    assert Desk(desk_path).thread("W1")["status"] == "reviewed"


def test_a_hostile_post_is_escaped_and_the_page_has_a_strict_csp(client):
    for path in ("/", "/thread/H1"):
        response = client.get(path)
        page = response.get_data(as_text=True)
        assert '<script>alert("x")' not in page and "<img src=x" not in page
        assert 'onmouseover="alert(1)"' not in page
        assert "&lt;script&gt;" in page and "mallory&#34; onmouseover=&#34;alert(1)" in page
        assert not re.search(r"<script(?![^>]*\bsrc=)", page), "no inline script"
        assert " style=" not in page and "<style" not in page, "no inline style"
        csp = response.headers["Content-Security-Policy"]
        assert "default-src 'self'" in csp and "script-src 'self'" in csp and "unsafe-inline" not in csp
        assert response.headers["X-Content-Type-Options"] == "nosniff"
    assert HOSTILE_TEXT.split()[0] not in client.get("/thread/H1").get_data(as_text=True)


def test_the_later_of_two_edits_is_refused_not_silently_kept(desk_path, small_model, small_model_dir):
    app = create_app(desk_path, model=small_model, model_dir=small_model_dir)
    anna, ben = app.test_client(), app.test_client()
    fa, fb = form_of(anna.get("/thread/W1").data), form_of(ben.get("/thread/W1").data)
    saved = anna.post("/correct", data={"thread_id": "W1", "post_id": "W1-0", "rupture_type": "withdrawal",
                                        "repair_outcome": "in_progress", "therapist_response": "unknown",
                                        "risk": "concern", "note": "anna", **fa})
    assert saved.status_code == 302
    late = ben.post("/status", data={"thread_id": "W1", "status": "reviewed", "note": "ben", **fb})
    assert late.status_code == 409
    assert b"changed by someone else since you opened it" in late.data and b"not saved" in late.data
    t = Desk(desk_path).thread("W1")
    assert t["status"] == "open" and t["note"] == ""
    assert Desk(desk_path).posts("W1")[0]["correction"]["risk"] == "concern"
    fresh = form_of(ben.get("/thread/W1").data)  # after reloading, ben's change goes through
    assert ben.post("/status", data={"thread_id": "W1", "status": "reviewed", "note": "ben", **fresh}).status_code == 302


def test_corrections_follow_the_consistency_rule_and_rerank_the_thread(client, desk_path):
    f = form_of(client.get("/thread/N1").data)
    none = {"thread_id": "N1", "post_id": "N1-0", "rupture_type": "none", "repair_outcome": "repaired",
            "therapist_response": "boundary", "risk": "crisis", **f}
    assert client.post("/correct", data=none).status_code == 302
    post = Desk(desk_path).posts("N1")[0]
    assert post["correction"] == {"rupture_type": "none", "repair_outcome": "not_applicable",
                                  "therapist_response": "not_applicable", "risk": "crisis"}
    assert Desk(desk_path).thread("N1")["desk_priority"] == "urgent"
    f = form_of(client.get("/thread/N1").data)
    broken = {**none, **f, "rupture_type": "withdrawal", "repair_outcome": "not_applicable"}
    refused = client.post("/correct", data=broken)
    assert refused.status_code == 400 and b"not_applicable exactly when rupture_type is none" in refused.data
    assert client.post("/correct", data={**none, **f, "risk": "severe"}).status_code == 400
    assert Desk(desk_path).posts("N1")[0]["correction"]["rupture_type"] == "none"


def test_thread_page_marks_updates_quotes_and_phrases(client):
    page = client.get("/thread/W1").get_data(as_text=True)
    assert "opening post" in page and "update by the opening poster" in page
    assert "<blockquote>I skipped my session</blockquote>" in page
    assert 'class="evidence facet-rupture_type"' in page  # the sentences that carried the label
    assert '<mark class="facet-' in page  # and the same sentences highlighted in the post
    assert "moves away: goes quiet" in page  # the spec's one-line definition beside the label
    assert client.get("/thread/nope").status_code == 404


def test_the_request_log_has_no_post_text_and_no_token(desk_path, caplog):
    app = create_app(desk_path, token="tok-123456")
    server = make_server(app, "127.0.0.1", 0)
    worker = threading.Thread(target=server.serve_forever, daemon=True)
    worker.start()
    caplog.set_level("INFO", logger="rupture_nlp.review")
    try:
        base = f"http://127.0.0.1:{server.port}"
        for path in ("/thread/H1", "/thread/W1"):
            req = urllib.request.Request(base + path, headers={"X-Desk-Token": "tok-123456"})
            assert urllib.request.urlopen(req, timeout=10).status == 200
        with pytest.raises(urllib.error.HTTPError):
            urllib.request.urlopen(base + "/?token=tok-123456-wrong", timeout=10)
    finally:
        server.shutdown()
        worker.join(timeout=10)
    assert "GET /thread/H1 200" in caplog.text and "GET / 401" in caplog.text
    for secret in ("tok-123456", "furious", "skipped", "alert"):
        assert secret not in caplog.text


def test_export_is_a_sheet_that_train_extra_and_agreement_accept(client, desk_path, tmp_path, small_corpus):
    from rupture_nlp.adapt import SHEET_COLUMNS, agreement, read_sheet
    from rupture_nlp.train import TrainRequest, train_model

    assert run("review", "export", "--db", desk_path, "-o", tmp_path / "none.csv").exit_code == 1
    for post_id, labels in (("W1-0", ("withdrawal", "in_progress", "unknown", "none")),
                            ("H1-0", ("confrontation", "repaired", "accountable", "none"))):
        f = form_of(client.get(f"/thread/{post_id[:2]}").data)
        data = dict(zip(("rupture_type", "repair_outcome", "therapist_response", "risk"), labels))
        assert client.post("/correct", data={"thread_id": post_id[:2], "post_id": post_id, "note": "checked",
                                             **data, **f}).status_code == 302
    sheet = tmp_path / "sheet.csv"
    result = run("review", "export", "--db", desk_path, "-o", sheet)
    assert result.exit_code == 0, result.output
    df = pd.read_csv(sheet, dtype=str, keep_default_na=False)
    assert list(df.columns) == SHEET_COLUMNS and set(df["post_id"]) == {"W1-0", "H1-0"}
    assert df.set_index("post_id").at["H1-0", "text"] == HOSTILE_TEXT
    assert len(read_sheet(sheet)) == 2 and agreement(sheet, sheet)["posts"] == 2
    assert run("review", "export", "--db", desk_path, "-o", sheet).exit_code == 1  # no overwrite without --force
    cfg = tmp_path / "small.toml"
    cfg.write_text("cv_folds = 3\n[pipeline]\ntfidf__word__min_df = 1\ntfidf__char__min_df = 1\n", encoding="utf-8")
    manifest = train_model(TrainRequest(data=small_corpus, out=tmp_path / "adapted", config=cfg, extra=[sheet],
                                        n_jobs=1))
    assert manifest["extra_sheets"][0]["labelled_posts"] == 2
    everything = run("review", "export", "--db", desk_path, "-o", tmp_path / "all.csv", "--include-reviewed")
    assert everything.exit_code == 0


def test_add_keeps_decisions_and_another_model_is_told_to_rerank(client, desk_path, tmp_path, small_model_dir):
    f = form_of(client.get("/thread/W1").data)
    client.post("/status", data={"thread_id": "W1", "status": "escalated", "note": "see mod chat", **f})
    f = form_of(client.get("/thread/W1").data)
    client.post("/correct", data={"thread_id": "W1", "post_id": "W1-0", "rupture_type": "withdrawal",
                                  "repair_outcome": "unrepaired", "therapist_response": "unknown", "risk": "none", **f})
    before = Desk(desk_path).thread("W1")["version"]
    more = write_desk_threads(tmp_path / "more.csv", [
        ("W1", "ash", "I skipped my session and told her I was sick. I wasn't."),
        ("W1", "kettle", "x"), ("W1", "ash", "x"), ("W1", "ash", "Another update: I stopped replying to her emails."),
        ("Z9", "new", "Does anyone know how long waiting lists are for CBT?")])
    added = run("review", "add", "-m", small_model_dir, "--db", desk_path, more)
    assert added.exit_code == 0, added.output
    desk = Desk(desk_path)
    t = desk.thread("W1")
    assert (t["status"], t["note"]) == ("escalated", "see mod chat") and t["version"] > before
    assert desk.posts("W1")[0]["correction"]["repair_outcome"] == "unrepaired"
    posts = desk.posts("W1")  # the same ids are kept as they were, the new one is added
    assert [p["post_id"] for p in posts] == ["W1-0", "W1-1", "W1-2", "W1-3"] and posts[1]["text"] != "x"
    assert desk.thread("Z9") is not None
    with sqlite3.connect(desk_path) as conn:
        conn.execute("UPDATE meta SET value = 'another' WHERE key = 'model_sha256'")
    assert "ranked with another model" in client.get("/").get_data(as_text=True)
    refused = run("review", "add", "-m", small_model_dir, "--db", desk_path, more)
    assert refused.exit_code == 1 and "re-rank it first" in refused.output
    csrf = CSRF.search(client.get("/").get_data(as_text=True)).group(1)
    assert client.post("/rerank", data={"csrf": csrf}).status_code == 302
    assert "ranked with another model" not in client.get("/").get_data(as_text=True)
    assert Desk(desk_path).thread("W1")["status"] == "escalated"
    with sqlite3.connect(desk_path) as conn:
        conn.execute("UPDATE meta SET value = 'another' WHERE key = 'model_sha256'")
    assert run("review", "rerank", "-m", small_model_dir, "--db", desk_path).exit_code == 0
    assert Desk(desk_path).meta("model_sha256") != "another"


WRITER = """
import sys
from rupture_nlp.review.store import Desk
desk = Desk(sys.argv[1])
version = desk.thread("W1")["version"]
for i in range(2000):
    version = desk.set_status("W1", "follow_up", f"edit {i}", version)
    print(i, flush=True)
"""


def test_a_killed_writer_loses_at_most_the_edit_in_flight(desk_path):
    start = Desk(desk_path).thread("W1")["version"]
    proc = subprocess.Popen([sys.executable, "-c", WRITER, str(desk_path)], stdout=subprocess.PIPE, text=True)
    try:
        seen = [proc.stdout.readline() for _ in range(40)]
        assert all(seen), "the writer stopped early"
        proc.kill()
    finally:
        proc.kill()
        proc.wait(timeout=30)
    last_printed = int(seen[-1])
    with sqlite3.connect(desk_path) as conn:
        assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    t = Desk(desk_path).thread("W1")
    done = int(t["note"].split()[1])
    assert done >= last_printed  # every edit reported done is there, whole
    assert t["version"] == start + done + 1 and t["status"] == "follow_up"
    with sqlite3.connect(desk_path) as conn:
        events = conn.execute("SELECT COUNT(*) FROM events WHERE action = 'status'").fetchone()[0]
    assert events == done + 1


def test_serve_on_another_host_makes_a_token_and_every_subcommand_has_an_example(desk_path, small_model_dir,
                                                                                  monkeypatch):
    import rupture_nlp.review.app as app_module

    served = {}
    monkeypatch.setattr(app_module, "serve", lambda app, host, port: served.update(app=app, host=host))
    result = CliRunner().invoke(main, ["review", "serve", "-m", str(small_model_dir), "--db", str(desk_path),
                                       "--host", "0.0.0.0", "--quiet"])
    assert result.exit_code == 0, result.output
    token = served["app"].config["DESK_TOKEN"]
    assert token and f"access token (shown once): {token}" in result.output
    run("review", "serve", "-m", small_model_dir, "--db", desk_path, "--quiet")
    assert served["app"].config["DESK_TOKEN"] is None and served["host"] == "127.0.0.1"
    missing = run("review", "serve", "-m", small_model_dir, "--db", desk_path.with_name("new.sqlite"))
    assert missing.exit_code == 1 and "give the INPUT CSV" in missing.output
    not_desk = desk_path.with_name("x.sqlite")
    not_desk.write_text("hello", encoding="utf-8")
    assert run("review", "export", "--db", not_desk, "-o", desk_path.with_name("s.csv")).exit_code == 1
    for name in ("serve", "add", "export", "rerank"):
        helptext = run("review", name, "--help").output
        assert "Example:" in helptext and f"rupture-nlp review {name}" in helptext, name
    assert json.loads(json.dumps(Desk(desk_path).counts()))["threads"] == 4
