"""The moderators' desk on the command line: `rupture-nlp review serve|add|export|rerank`."""

from __future__ import annotations

import ipaddress
import logging
import secrets
import sys
from pathlib import Path

import click

from rupture_nlp.cli import force_option, log, main, model_option, quiet_option, user_errors

DEFAULT_DB = "review.sqlite"
db_option = click.option("--db", default=DEFAULT_DB, show_default=True, type=click.Path(dir_okay=False),
                         help="The desk's SQLite file.")
text_column_option = click.option("--text-column", default="text", show_default=True, help="Column with the post.")
skip_option = click.option("--skip-invalid", is_flag=True, help="Skip empty or non-text rows (counted on standard error).")


@main.group()
def review():
    """The moderators' desk: the triage queue in your browser, and corrections that teach the model.

    `serve` labels and ranks the threads of a CSV (as `triage`), keeps them in one SQLite file and
    serves the desk on http://127.0.0.1:8000; `add` adds new posts, keeping every decision; `export`
    writes the corrected posts as an annotation sheet for `train --extra`; `rerank` labels the desk
    again with another model. Needs Flask: pip install 'rupture-nlp[review]'.

    \b
    Example:
      rupture-nlp review serve --model models/default --db review.sqlite data/examples/threads.csv
      rupture-nlp review export --db review.sqlite -o sheet.csv
      rupture-nlp train --extra sheet.csv --out models/my-forum
      rupture-nlp review rerank --model models/my-forum --db review.sqlite
    """


def _loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _load(model):
    from rupture_nlp.persist import load_model

    return load_model(model)


def _read(input_path, text_column, skip_invalid, quiet):
    from rupture_nlp.review.build import read_threads

    posts, order = read_threads(input_path, text_column, skip_invalid)
    if posts.attrs.get("skipped"):
        log(quiet, f"skipped {posts.attrs['skipped']} invalid row(s)")
    return posts, order


def _summary(result: dict) -> str:
    return (f"{result['threads']} threads, {result['posts']} posts on the desk ({result['reviewed']} reviewed, "
            f"{result['follow_up']} need follow-up, {result['escalated']} escalated, "
            f"{result['corrected_posts']} posts corrected)")


@review.command()
@model_option
@db_option
@click.argument("input_path", metavar="[INPUT]", required=False)
@text_column_option
@skip_option
@click.option("--host", default="127.0.0.1", show_default=True,
              help="Address to listen on; anything but loopback needs a token.")
@click.option("--port", default=8000, show_default=True, type=click.IntRange(0, 65535))
@click.option("--token", envvar="RUPTURE_DESK_TOKEN",
              help="Access token (env RUPTURE_DESK_TOKEN); generated and printed once when --host is not loopback.")
@quiet_option
@user_errors
def serve(model, db, input_path, text_column, skip_invalid, host, port, token, quiet):
    """Label and rank the threads of INPUT into the desk --db (made if new), and serve it.

    INPUT is a CSV with thread_id, author, position (or created_at) and the text, as for `triage`.
    On an existing desk INPUT is optional; its posts not yet on the desk are added (as `add`), and
    every decision is kept. Binds to 127.0.0.1; another --host needs --token (one is generated and
    printed once if not given). Open the address shown; Ctrl-C stops the server.

    \b
    Example:
      rupture-nlp review serve --model models/default --db review.sqlite data/examples/threads.csv
      rupture-nlp review serve --db review.sqlite --host 0.0.0.0 --port 8080
    """
    try:
        from rupture_nlp.review.app import create_app
        from rupture_nlp.review.app import serve as run
    except ImportError:
        raise click.ClickException("the desk needs Flask: pip install 'rupture-nlp[review]'") from None
    from rupture_nlp.review.build import add_posts, build_desk, model_differs
    from rupture_nlp.review.store import Desk

    m = _load(model)
    if not Path(db).exists():
        if not input_path:
            raise click.ClickException(f"no desk at {db} yet: give the INPUT CSV of threads to fill it")
        log(quiet, f"labelling and ranking {input_path} into {db} ...")
        log(quiet, _summary(build_desk(db, m, model, *_read(input_path, text_column, skip_invalid, quiet))))
    else:
        desk = Desk(db)
        try:
            if input_path:
                result = add_posts(desk, m, model, *_read(input_path, text_column, skip_invalid, quiet))
                log(quiet, f"added {result['new_posts']} new posts; " + _summary(result))
            if model_differs(desk, m, model):
                log(quiet, f"note: this desk was ranked with {desk.meta('model_dir')}, not {model}; the desk offers "
                           f"to re-rank (or run `rupture-nlp review rerank --model {model} --db {db}`)")
        finally:
            desk.close()
    if not _loopback(host) and not token:
        token = secrets.token_urlsafe(24)
        click.echo(f"access token (shown once): {token}", err=True)
    url = f"http://{host if ':' not in host else f'[{host}]'}:{port}/"
    logging.basicConfig(level=logging.WARNING if quiet else logging.INFO, format="%(asctime)s %(message)s",
                        stream=sys.stderr)
    log(quiet, f"serving the desk {db} on {url}" + (" (open it with ?token=YOUR_TOKEN once)" if token else "")
        + "; Ctrl-C stops")
    try:
        run(create_app(db, token=token, model=m, model_dir=model), host, port)
    except OSError as exc:
        raise click.ClickException(f"cannot listen on {host}:{port}: {exc.strerror or exc}") from None
    except KeyboardInterrupt:
        log(quiet, "stopped")


@review.command()
@model_option
@db_option
@click.argument("input_path", metavar="INPUT")
@text_column_option
@skip_option
@quiet_option
@user_errors
def add(model, db, input_path, text_column, skip_invalid, quiet):
    """Add the posts of INPUT that the desk does not have yet; statuses, notes and corrections stay.

    New posts are labelled with the desk's model (the one that ranked it) and their threads ranked
    again; a thread that changes needs a fresh look (a moderator's open page is then out of date).

    \b
    Example:
      rupture-nlp review add --model models/default --db review.sqlite data/examples/threads.csv
    """
    from rupture_nlp.review.build import add_posts
    from rupture_nlp.review.store import Desk

    desk = Desk(db)
    try:
        result = add_posts(desk, _load(model), model, *_read(input_path, text_column, skip_invalid, quiet))
    finally:
        desk.close()
    log(quiet, f"added {result['new_posts']} new posts in {result['threads_ranked']} threads; " + _summary(result))


@review.command()
@db_option
@click.option("--output", "-o", required=True, type=click.Path(dir_okay=False), help="Annotation sheet (CSV) to write.")
@click.option("--include-reviewed", is_flag=True,
              help="Also every post of a thread marked reviewed, its labels confirmed as shown.")
@force_option
@quiet_option
@user_errors
def export(db, output, include_reviewed, force, quiet):
    """Write the posts moderators corrected as an annotation sheet (the columns of `sample`).

    `train --extra` and `agreement` read the sheet as it is; the model's labels are in the
    suggested_ columns, the moderators' in rupture_type .. risk.

    \b
    Example:
      rupture-nlp review export --db review.sqlite -o sheet.csv
      rupture-nlp train --extra sheet.csv --out models/my-forum
    """
    from rupture_nlp.persist import atomic_output, check_writable
    from rupture_nlp.review.store import Desk

    check_writable(Path(output), force)
    desk = Desk(db)
    try:
        sheet = desk.export_frame(include_reviewed)
    finally:
        desk.close()
    if sheet.empty:
        raise click.ClickException("nothing to export: no post on the desk is corrected"
                                   + ("" if include_reviewed else " (--include-reviewed adds reviewed threads)"))
    with atomic_output(output, force=force) as fh:
        sheet.to_csv(fh, index=False, lineterminator="\n")
    log(quiet, f"wrote {len(sheet)} posts to {output}")


@review.command()
@model_option
@db_option
@quiet_option
@user_errors
def rerank(model, db, quiet):
    """Label every post of the desk again with --model and rank the threads; decisions stay.

    For the model you trained on the desk's export. A corrected post keeps its moderator's labels.

    \b
    Example:
      rupture-nlp review rerank --model models/default --db review.sqlite
    """
    from rupture_nlp.review.build import rerank as run
    from rupture_nlp.review.store import Desk

    m = _load(model)
    desk = Desk(db)
    try:
        result = run(desk, m, model)
    finally:
        desk.close()
    log(quiet, f"re-ranked {result['posts_labelled']} posts with {model}; " + _summary(result))
