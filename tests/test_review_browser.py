"""The moderators' desk end to end in a real browser: Playwright driving the system's Chromium.

Skipped, with the reason, where no Chromium is installed (`apt-get install -y chromium`); Playwright's
own browser download is not used. With RUPTURE_SCREENSHOTS=1 the test writes docs/review_queue.png
and docs/review_thread.png (so CI leaves the tree clean).
"""

from __future__ import annotations

import os
import shutil
import threading
from pathlib import Path

import pytest
from click.testing import CliRunner

from tests.conftest import EXAMPLES, ROOT

pytest.importorskip("flask", reason="the desk needs Flask: pip install 'rupture-nlp[review]'")
sync_api = pytest.importorskip("playwright.sync_api", reason="needs the playwright package (the test extra)")

CHROMIUM = shutil.which("chromium") or ("/usr/bin/chromium" if os.path.exists("/usr/bin/chromium") else None)
pytestmark = [pytest.mark.browser,
              pytest.mark.skipif(CHROMIUM is None, reason="no Chromium found: apt-get install -y chromium "
                                                          "(the desk's browser test drives the system's Chromium)")]
TOKEN = "browser-test-token"
TIMEOUT_MS = 15_000


@pytest.fixture
def desk_server(tmp_path, model, model_dir):
    from rupture_nlp.review.app import create_app, make_server
    from rupture_nlp.review.build import build_desk, read_threads

    db = tmp_path / "review.sqlite"
    build_desk(db, model, model_dir, *read_threads(EXAMPLES / "threads.csv"))
    server = make_server(create_app(db, token=TOKEN, model=model, model_dir=model_dir), "127.0.0.1", 0)
    worker = threading.Thread(target=server.serve_forever, daemon=True)
    worker.start()
    yield f"http://127.0.0.1:{server.port}", db
    server.shutdown()
    worker.join(timeout=10)


@pytest.fixture
def page():
    with sync_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"], timeout=30_000)
        try:
            context = browser.new_context(viewport={"width": 1280, "height": 900})
            pg = context.new_page()
            pg.set_default_timeout(TIMEOUT_MS)
            pg.errors = []
            pg.on("console", lambda m: pg.errors.append(m.text) if m.type == "error" else None)
            pg.on("pageerror", lambda e: pg.errors.append(str(e)))
            yield pg
        finally:
            browser.close()


def shoot(pg, name: str, full_page: bool = False) -> None:
    if os.environ.get("RUPTURE_SCREENSHOTS") == "1":
        pg.screenshot(path=str(ROOT / "docs" / name), full_page=full_page)


def test_a_moderator_works_through_the_queue_and_the_corrections_train_a_model(desk_server, page, tmp_path,
                                                                                small_corpus):
    from rupture_nlp.adapt import read_sheet
    from rupture_nlp.cli import main
    from rupture_nlp.review.store import Desk
    from rupture_nlp.train import TrainRequest, train_model

    base, db = desk_server
    page.goto(f"{base}/?token={TOKEN}")  # sets the cookie and drops the token from the address
    assert page.url == f"{base}/"
    rows = page.locator("tr[data-href]")
    assert rows.first.get_attribute("data-href") == "/thread/E03"  # the crisis thread first
    assert rows.first.locator(".p").first.inner_text() == "urgent"

    page.keyboard.press("j")  # keyboard: next, previous, open
    assert "current" in rows.nth(1).get_attribute("class")
    page.keyboard.press("k")
    assert "current" in rows.first.get_attribute("class")
    page.keyboard.press("Enter")
    page.wait_for_url(f"{base}/thread/E03")
    page.keyboard.press("r")  # mark reviewed
    page.wait_for_selector(".flash")
    assert "reviewed" in page.locator("h1 .status").inner_text()

    page.click("nav.pager a >> text=queue")
    page.click("a.open >> text=E01")
    page.wait_for_url(f"{base}/thread/E01")
    assert page.locator(".tag.update").count() == 1  # the opening poster's update is marked
    page.keyboard.press("c")  # corrections of the post in view (the first)
    first = page.locator("article.post").first
    assert first.locator("details.correct").get_attribute("open") is not None
    page.keyboard.press("Escape")
    assert first.locator("details.correct").get_attribute("open") is None

    update = page.locator("#post-E01-2")  # by the spec a withdrawal (rule 2), whatever the model said
    update.locator("details.correct summary").click()
    form = update.locator("form")
    form.locator("input[name=rupture_type][value=none]").check()
    assert form.locator("input[name=repair_outcome][value=not_applicable]").is_checked()  # the rule, as you click
    form.locator("input[name=rupture_type][value=withdrawal]").check()
    assert not form.locator("input[name=repair_outcome][value=not_applicable]").is_checked()
    form.locator("input[name=repair_outcome][value=repaired]").check()
    form.locator("input[name=therapist_response][value=accountable]").check()
    form.locator("input[name=note]").fill("withdrew first, told her calmly later")
    form.locator("button[type=submit]").click()
    page.wait_for_selector(".flash >> text=labels saved")
    page.click("#mark-reviewed")
    page.wait_for_selector(".flash >> text=reviewed")

    page.reload()  # kept after a reload
    update = page.locator("#post-E01-2")
    assert "Corrected by a moderator" in update.inner_text()
    assert update.locator("input[name=rupture_type][value=withdrawal]").is_checked()
    assert "reviewed" in page.locator("h1 .status").inner_text()
    page.keyboard.press("c")
    shoot(page, "review_thread.png", full_page=True)
    page.keyboard.press("Escape")

    page.goto(f"{base}/")
    assert page.locator("tr[data-href]").first.get_attribute("data-href") == "/thread/E03"
    assert "1 corrected" in page.locator("tr[data-href='/thread/E01']").inner_text()
    shoot(page, "review_queue.png")
    assert page.errors == [], page.errors  # no CSP violation, no script error

    sheet = tmp_path / "sheet.csv"
    result = CliRunner().invoke(main, ["review", "export", "--db", str(db), "-o", str(sheet)])
    assert result.exit_code == 0, result.output
    labelled = read_sheet(sheet)
    assert labelled["post_id"].tolist() == ["E01-2"] and labelled.at[0, "rupture_type"] == "withdrawal"
    assert Desk(db).thread("E03")["status"] == "reviewed"
    cfg = tmp_path / "small.toml"
    cfg.write_text("cv_folds = 3\n[pipeline]\ntfidf__word__min_df = 1\ntfidf__char__min_df = 1\n", encoding="utf-8")
    manifest = train_model(TrainRequest(data=small_corpus, out=tmp_path / "adapted", config=cfg, extra=[sheet],
                                        n_jobs=1))
    assert manifest["extra_sheets"][0]["labelled_posts"] == 1
    assert Path(tmp_path / "adapted" / "manifest.json").is_file()
