"""The desk as a web app (Flask): the queue, a thread page, the moderators' actions.

Safe by default: a token (header ``X-Desk-Token``, or a cookie set by opening ``/?token=...``) when
one is given, 401 without it; state changes are POST only and carry a CSRF token bound to the
signed session; Jinja autoescapes every value; a strict Content-Security-Policy (no inline script
or style, nothing from elsewhere); the request log names method, path and status only (never a
query string, a form or a post's text).
"""

from __future__ import annotations

import hmac
import logging
import secrets
from pathlib import Path

from flask import Flask, abort, current_app, flash, g, redirect, render_template, request, session, url_for
from markupsafe import Markup

from rupture_nlp.labels import DEFINITIONS, DEPENDENT, FACETS, NOT_APPLICABLE
from rupture_nlp.review.store import STATUS_TEXT, STATUSES, Desk, EditConflict, LabelError
from rupture_nlp.triage import PRIORITY_ORDER

CSP = ("default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self'; font-src 'self'; "
       "connect-src 'self'; object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'")
TOKEN_HEADER = "X-Desk-Token"
TOKEN_COOKIE = "desk_token"
log = logging.getLogger("rupture_nlp.review")


def create_app(db_path: str | Path, token: str | None = None, model=None, model_dir=None) -> Flask:
    """The desk over the SQLite file ``db_path``; ``model`` (with ``model_dir``) enables re-ranking."""
    db_path = Path(db_path)
    desk = Desk(db_path)
    secret = desk.meta("secret")
    desk.close()
    here = Path(__file__).parent
    app = Flask(__name__, template_folder=str(here / "templates"), static_folder=str(here / "static"))
    app.config.update(SECRET_KEY=secret, SESSION_COOKIE_HTTPONLY=True, SESSION_COOKIE_SAMESITE="Strict",
                      SESSION_COOKIE_NAME="desk_session", MAX_CONTENT_LENGTH=64 * 1024,
                      DESK_DB=db_path, DESK_TOKEN=token, DESK_MODEL=model, DESK_MODEL_DIR=model_dir)
    app.jinja_env.globals.update(FACETS=FACETS, DEFINITIONS=DEFINITIONS, DEPENDENT=DEPENDENT, NA=NOT_APPLICABLE,
                                 PRIORITIES=PRIORITY_ORDER, STATUSES=STATUSES, STATUS_TEXT=STATUS_TEXT,
                                 csrf_token=csrf_token)
    app.jinja_env.filters["blocks"] = text_blocks
    app.jinja_env.filters["highlighted"] = highlighted

    @app.before_request
    def guard():
        if token:
            given = request.headers.get(TOKEN_HEADER) or request.cookies.get(TOKEN_COOKIE) or ""
            query = request.args.get("token")
            if query is not None and request.method == "GET" and _same(query, token):
                args = {k: v for k, v in request.args.items() if k != "token"}
                response = redirect(url_for(request.endpoint or "queue", **(request.view_args or {}), **args))
                response.set_cookie(TOKEN_COOKIE, token, httponly=True, samesite="Strict")
                return response
            if not _same(given, token):
                return ("401 Unauthorized: this desk needs its token. Open the address printed when the server "
                        "started (it ends in /?token=...), or send the header X-Desk-Token.\n", 401,
                        {"Content-Type": "text/plain; charset=utf-8"})
        if request.method == "POST":
            origin = request.headers.get("Origin")
            if origin and origin.rstrip("/") != request.host_url.rstrip("/"):
                abort(403, "this request came from another site; the desk accepts forms only from itself")
            sent, kept = request.form.get("csrf", ""), session.get("csrf", "")
            if not kept or not _same(sent, kept):
                abort(403, "the form's CSRF token is missing or stale (the form did not come from this desk, "
                           "or the session expired); reload the page and try again")
        g.desk = Desk(db_path)

    @app.teardown_request
    def close(_exc):
        desk = g.pop("desk", None)
        if desk is not None:
            desk.close()

    @app.after_request
    def headers(response):
        response.headers.update({"Content-Security-Policy": CSP, "X-Content-Type-Options": "nosniff",
                                 "X-Frame-Options": "DENY", "Referrer-Policy": "same-origin",
                                 "Cross-Origin-Opener-Policy": "same-origin"})
        if not request.path.startswith("/static/"):
            response.headers["Cache-Control"] = "no-store"
        return response

    @app.errorhandler(403)
    @app.errorhandler(404)
    @app.errorhandler(400)
    def refused(exc):
        return render_template("message.html", title=f"{exc.code}: {exc.name}", message=exc.description,
                               desk_info=None), exc.code

    @app.context_processor
    def desk_context():
        return {"desk_info": _desk_info()} if "desk" in g else {}

    @app.get("/favicon.ico")
    def favicon():
        return "", 204

    @app.get("/")
    def queue():
        priority, status = request.args.get("priority", ""), request.args.get("status", "")
        threads = g.desk.threads()
        shown = [t for t in threads if (not priority or (t["desk_priority"] or t["priority"]) == priority)
                 and (not status or t["status"] == status)]
        by_priority = {p: sum((t["desk_priority"] or t["priority"]) == p for t in threads) for p in PRIORITY_ORDER}
        by_status = {s: sum(t["status"] == s for t in threads) for s in STATUSES}
        return render_template("queue.html", threads=shown, total=len(threads), by_priority=by_priority,
                               by_status=by_status, priority=priority, status=status)

    @app.get("/thread/<path:thread_id>")
    def thread(thread_id):
        t = g.desk.thread(thread_id)
        if t is None:
            abort(404, "no such thread on this desk")
        order = [x["thread_id"] for x in g.desk.threads()]
        i = order.index(thread_id)
        posts = g.desk.posts(thread_id)
        op = posts[0]["author"] if posts else ""
        return render_template("thread.html", t=t, posts=posts, op=op,
                               prev_id=order[i - 1] if i > 0 else None,
                               next_id=order[i + 1] if i + 1 < len(order) else None,
                               position=i + 1, total=len(order))

    @app.post("/status")
    def set_status():
        thread_id = request.form.get("thread_id", "")
        version = _version()
        try:
            g.desk.set_status(thread_id, request.form.get("status", ""), request.form.get("note", ""), version)
        except EditConflict as exc:
            return _conflict(thread_id, exc)
        except LabelError as exc:
            abort(400, str(exc))
        flash(f"thread {thread_id}: {STATUS_TEXT[request.form['status']]}")
        return redirect(url_for("thread", thread_id=thread_id))

    @app.post("/correct")
    def correct():
        post_id = request.form.get("post_id", "")
        thread_id = request.form.get("thread_id", "")
        labels = {f: request.form.get(f, "") for f in FACETS}
        try:
            g.desk.correct(post_id, labels, request.form.get("note", ""), _version())
        except EditConflict as exc:
            return _conflict(thread_id, exc)
        except LabelError as exc:
            abort(400, f"{exc}. Nothing was saved; go back and choose again.")
        flash(f"post {post_id}: labels saved")
        return redirect(url_for("thread", thread_id=thread_id, _anchor=f"post-{post_id}"))

    @app.post("/rerank")
    def rerank():
        from rupture_nlp.review.build import rerank as run

        if model is None:
            abort(400, "this server has no model to re-rank with; run `rupture-nlp review rerank`")
        result = run(g.desk, model, model_dir)
        flash(f"re-ranked {result['posts_labelled']} posts with {model_dir}; decisions and corrections kept")
        return redirect(url_for("queue"))

    return app


def _desk_info() -> dict:
    from rupture_nlp.review.build import model_differs

    app_model, model_dir = current_app.config["DESK_MODEL"], current_app.config["DESK_MODEL_DIR"]
    sha = g.desk.meta("model_sha256") or ""
    return {"counts": g.desk.counts(), "model_dir": g.desk.meta("model_dir"),
            "model_name": f"{Path(g.desk.meta('model_dir') or '?').name} (sha256 {sha[:10]})",
            "differs": app_model is not None and model_differs(g.desk, app_model, model_dir),
            "server_model": model_dir}


def _version() -> int:
    try:
        return int(request.form.get("version", ""))
    except ValueError:
        abort(400, "the form lacks the thread's version; reload the page")


def _conflict(thread_id: str, exc: EditConflict):
    return render_template("message.html", title="409: not saved, the thread changed", message=str(exc),
                           link=url_for("thread", thread_id=thread_id) if thread_id else None), 409


def _same(a: str, b: str) -> bool:
    return hmac.compare_digest(a.encode(), b.encode())


def csrf_token() -> str:
    if "csrf" not in session:
        session["csrf"] = secrets.token_urlsafe(32)
    return session["csrf"]


def highlighted(text: str, evidence: dict) -> Markup:
    """The post as escaped HTML with its evidence sentences marked per facet, risk first
    (:func:`rupture_nlp.triage.render_post`: CSS only, names masked)."""
    from rupture_nlp.triage import render_post

    order = ["risk", "rupture_type", "repair_outcome", "therapist_response"]
    marks = [m for f in order for m in (evidence or {}).get(f, [])]
    return Markup(render_post(text, marks))


def text_blocks(text: str) -> list[tuple[str, str]]:
    """A post as blocks to show: ("quote", lines) for runs of lines starting with '>', else ("text", lines)."""
    blocks: list[tuple[str, list[str]]] = []
    for line in str(text).splitlines() or [""]:
        kind = "quote" if line.lstrip().startswith(">") else "text"
        content = line.lstrip()[1:].lstrip() if kind == "quote" else line
        if blocks and blocks[-1][0] == kind:
            blocks[-1][1].append(content)
        else:
            blocks.append((kind, [content]))
    return [(kind, "\n".join(lines).strip("\n")) for kind, lines in blocks if "".join(lines).strip()]


def make_server(app: Flask, host: str, port: int):
    """A threaded WSGI server for the desk (port 0: any free port, see ``server.port``) whose log line
    of a request is its method, path and status only."""
    from werkzeug.serving import WSGIRequestHandler
    from werkzeug.serving import make_server as werkzeug_server

    class QuietHandler(WSGIRequestHandler):
        def log_request(self, code="-", size="-"):
            log.info("%s %s %s", self.command, self.path.split("?", 1)[0], code)

        def log_error(self, format, *args):  # noqa: A002  (the signature of http.server)
            log.warning("error answering %s %s", self.command, self.path.split("?", 1)[0])

    return werkzeug_server(host, port, app, threaded=True, request_handler=QuietHandler)


def serve(app: Flask, host: str, port: int) -> None:
    """Serve until interrupted."""
    server = make_server(app, host, port)
    try:
        server.serve_forever()
    finally:
        server.server_close()
