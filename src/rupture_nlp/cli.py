"""The `rupture-nlp` command line: a thin layer over plain functions that return data."""

from __future__ import annotations

import functools
import json
import sys
from pathlib import Path

import click

from rupture_nlp import __version__

DEFAULT_MODEL = "models/default"
DEFAULT_DATA = "data/posts.csv"


def user_errors(func):
    """Turn errors the user can cause into one clear line and exit 1 (never a traceback)."""

    @functools.wraps(func)
    def wrapper(*args, **kwargs):
        from sklearn.utils._param_validation import InvalidParameterError

        from rupture_nlp.config import ConfigError
        from rupture_nlp.data import InputError
        from rupture_nlp.persist import ModelError, OutputExistsError
        from rupture_nlp.triage import StructureError

        try:
            return func(*args, **kwargs)
        except (ConfigError, InputError, ModelError, OutputExistsError, StructureError) as exc:
            raise click.ClickException(str(exc)) from None
        except InvalidParameterError as exc:
            raise click.ClickException(f"invalid value in the config: {exc}") from None
        except KeyboardInterrupt:
            raise click.ClickException("interrupted; no partial output was left in place") from None

    return wrapper


def log(ctx_quiet: bool, message: str) -> None:
    if not ctx_quiet:
        click.echo(message, err=True)


def log_truncated(quiet: bool, count: int, max_chars: int) -> None:
    """Truncation changes what the model reads: say so even with --quiet."""
    if count:
        click.echo(f"cut {count} post(s) longer than {max_chars} characters at --max-chars {max_chars}", err=True)


@click.group(context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.version_option(__version__, prog_name="rupture-nlp")
def main():
    """Label forum posts about therapy: rupture type, repair outcome, the therapist's response and risk.

    Labels follow the label specification v1.1 (see data/codebook.md). A model folder holds a skops
    file, which loads only the types it is allowed to (`verify` checks it), and its model card (`card`).

    \b
    Example:
      rupture-nlp train --data data/posts.csv --out models/default
      rupture-nlp evaluate --model models/default --data data/posts.csv
      rupture-nlp predict --model models/default data/examples/posts.txt
    """


def _trust_pickle(ctx, param, value):
    if value:  # the environment reaches the worker processes of predict too
        import os

        from rupture_nlp.trust import TRUST_PICKLE_ENV

        os.environ[TRUST_PICKLE_ENV] = "1"


def model_option(func):
    """--model, and --trust-pickle for a model folder of the old joblib format."""
    func = click.option("--trust-pickle", is_flag=True, expose_value=False, callback=_trust_pickle,
                        help="Load a joblib (pickle) model of the old format: a pickle can run any code, so only "
                             "one you made or trust (also RUPTURE_NLP_TRUST_PICKLE=1).")(func)
    return click.option("--model", "-m", default=DEFAULT_MODEL, show_default=True,
                        type=click.Path(file_okay=False), help="Model folder.")(func)
quiet_option = click.option("--quiet", "-q", is_flag=True, help="No progress or log lines on standard error.")
force_option = click.option("--force", is_flag=True, help="Replace an existing output.")


@main.command()
@click.option("--data", "-d", default=DEFAULT_DATA, show_default=True, type=click.Path(dir_okay=False),
              help="Labelled corpus (CSV with the corpus columns); its train split is used.")
@click.option("--out", "-o", default=DEFAULT_MODEL, show_default=True, type=click.Path(file_okay=False),
              help="Model folder to write.")
@click.option("--config", "-c", type=click.Path(dir_okay=False), help="TOML config (default: the shipped one).")
@click.option("--extra", multiple=True, type=click.Path(dir_okay=False),
              help="A labelled annotation sheet of your own posts (repeatable); see `sample`.")
@click.option("--extra-weight", default=1.0, show_default=True, type=float,
              help="Weight of each --extra post relative to a corpus post.")
@click.option("--measure-gain/--no-measure-gain", default=True, show_default=True,
              help="With --extra: measure what the sheets buy on their own posts (cross-fitting; six more fits).")
@click.option("--seed", type=int, help="Override the config's seed.")
@click.option("--jobs", default=2, show_default=True, type=click.IntRange(1, 64), help="Processes for cross-validation.")
@force_option
@quiet_option
@user_errors
def train(data, out, config, extra, extra_weight, measure_gain, seed, jobs, force, quiet):
    """Train the four-facet model on the train split and save it with its manifest.

    Cross-validation on the train split (folds of whole writer batches when the corpus has a
    provenance.csv beside it, else of whole threads) gives the scores, calibration and thresholds
    saved in manifest.json. With --extra sheets of your own posts, what they buy is measured on
    their posts (each labelled by a model trained without it) and saved in the manifest and the
    card. Never overwrites a model without --force.

    \b
    Example:
      rupture-nlp train --data data/posts.csv --out models/default --force
    """
    from rupture_nlp.train import TrainRequest, train_model

    manifest = train_model(TrainRequest(data=data, out=out, config=config, force=force, extra=list(extra),
                                        extra_weight=extra_weight, n_jobs=jobs, seed=seed, measure_gain=measure_gain,
                                        progress=lambda line: log(quiet, line)))
    scores = ", ".join(f"{f} {s['macro_f1']:.3f}" for f, s in manifest["cv_scores"].items())
    unit = {"writer_batch": "writer batch"}.get(manifest["calibration"]["folds"], "thread")
    log(quiet, f"cross-validated macro-F1 (train split, folds by {unit}): {scores}")
    triage = manifest["triage"]
    if triage.get("target_reached") is False:  # said even with --quiet: the queue's promise is weaker
        click.echo(f"warning: triage confidence threshold {triage['threshold']:.2f}: {triage['chosen_by']}; "
                   f"{triage['coverage']:.0%} of threads get a confident priority", err=True)
    gain = (manifest.get("adaptation") or {}).get("measured_gain")
    if gain:
        from rupture_nlp.sheet_gain import render_gain

        log(quiet, render_gain(gain))
    log(quiet, f"model written to {out}")


def _parse_fail_under(values: tuple[str, ...]) -> dict[str, float]:
    from rupture_nlp.labels import FACETS

    gates: dict[str, float] = {}
    for value in values:
        facet, _, number = value.rpartition("=")
        try:
            threshold = float(number)
        except ValueError:
            raise click.BadParameter(f"{value!r}: give FACET=NUMBER or NUMBER", param_hint="--fail-under") from None
        for f in ([facet] if facet else FACETS):
            if f not in FACETS:
                raise click.BadParameter(f"unknown facet {f!r}; facets are {', '.join(FACETS)}",
                                         param_hint="--fail-under")
            gates[f] = threshold
    return gates


@main.command()
@model_option
@click.option("--data", "-d", default=DEFAULT_DATA, show_default=True, type=click.Path(),
              help="Labelled corpus: CSV, or Parquet (a file or a dataset folder) with the same columns; or a "
                   "labelled annotation sheet (scored whole; needs --baseline-data).")
@click.option("--split", default="test", show_default=True, help="Split to evaluate on (a corpus).")
@click.option("--format", "fmt", type=click.Choice(["table", "json"]), default="table", show_default=True)
@click.option("--output", "-o", type=click.Path(dir_okay=False), help="Also write the metrics as JSON here.")
@click.option("--record", is_flag=True, help="Record the macro-F1 and its interval in the model's manifest and card.")
@click.option("--fail-under", multiple=True, metavar="[FACET=]F1",
              help="Exit 1 if a facet's macro-F1 is below this (repeatable; no FACET means every facet).")
@click.option("--bootstrap", default=1000, show_default=True, type=click.IntRange(100, 100000),
              help="Thread resamples for the 95% intervals.")
@click.option("--baseline-data", type=click.Path(dir_okay=False),
              help="Corpus whose train split trains the baselines (default: --data); for a new forum's file.")
@force_option
@user_errors
def evaluate(model, data, split, fmt, output, record, fail_under, bootstrap, baseline_data, force):
    """Score a model on a split, side by side with three baselines trained in the same run.

    Per facet: accuracy, macro-F1 with a 95% bootstrap interval (resampling threads), per-class
    precision/recall/F1, confusion matrix, Brier score and ECE before and after calibration, crisis
    recall, and the triage accuracy of confident thread priorities with its coverage.

    --data may be an annotation sheet you labelled (sample --strategy random, then annotate): its
    labelled posts are scored (a blank risk is not), by whole threads when it has a thread_id
    column; triage is not scored, as a sheet has no thread structure.

    \b
    Example:
      rupture-nlp evaluate --model models/default --data data/posts.csv --fail-under 0.5
      rupture-nlp evaluate --record --data data/posts.csv --split test
      rupture-nlp evaluate --data data/adaptation/forum_c.csv --split new_forum --baseline-data data/posts.csv
      rupture-nlp evaluate -m models/my-forum --data check_sheet.csv --baseline-data data/posts.csv
    """
    from rupture_nlp.api import evaluate_model
    from rupture_nlp.persist import atomic_output, check_writable

    gates = _parse_fail_under(fail_under)
    if output:
        check_writable(Path(output), force)
    result = evaluate_model(model, data, split=split, n_boot=bootstrap, baseline_data=baseline_data)
    payload = {k: v for k, v in result.items() if k not in ("predictions", "proba", "ood_score")}
    if output:
        with atomic_output(output, force=force) as fh:
            json.dump(payload, fh, indent=2)
    if fmt == "json":
        click.echo(json.dumps(payload, indent=2))
    else:
        from rupture_nlp.evaluate import render_text

        click.echo(render_text(payload))
    if record:
        from rupture_nlp.card import evaluation_check
        from rupture_nlp.persist import record_check

        record_check(model, evaluation_check(payload, data))
    scores = payload["systems"]["model"]
    failed = [f"{f} not scored (no post in {data} carries a {f} label)" if f not in scores
              else f"{f} {scores[f]['macro_f1']:.3f} < {t}" for f, t in gates.items()
              if f not in scores or scores[f]["macro_f1"] < t]
    if failed:
        raise click.ClickException("macro-F1 below --fail-under: " + "; ".join(failed))


input_options = [
    click.argument("input_path", metavar="INPUT", type=str),
    click.option("--text-column", default="text", show_default=True, help="Column (CSV) or field (JSONL) with the post."),
    click.option("--id-column", help="Column or field kept as the post's id (default: the row number)."),
    click.option("--input-format", type=click.Choice(["auto", "csv", "jsonl", "txt", "xlsx", "parquet"]),
                 default="auto", show_default=True, help="auto goes by the file's extension (a folder of .parquet "
                 "files is a dataset), then its first line."),
    click.option("--skip-invalid", is_flag=True, help="Skip empty or non-text rows (counted on standard error)."),
    click.option("--encoding", default="utf-8", show_default=True,
                 help="Text encoding of INPUT, e.g. cp1252 or latin-1 for a CSV saved by Excel on Windows."),
    click.option("--max-chars", default=100_000, show_default=True, type=click.IntRange(1),
                 help="Cut longer posts here (counted on standard error)."),
]


def with_input_options(func):
    for option in reversed(input_options):
        func = option(func)
    return func


engine_options = [
    click.option("--engine", type=click.Choice(["local", "dask"]), default="local", show_default=True,
                 help="dask: spread the posts over a Dask cluster (needs rupture-nlp[dask]); see --scheduler."),
    click.option("--scheduler", metavar="ADDRESS",
                 help="Dask scheduler, e.g. tcp://10.0.0.5:8786 (default: a local cluster, one worker a core)."),
]


def with_engine_options(func):
    for option in reversed(engine_options):
        func = option(func)
    return func


@main.command()
@model_option
@with_input_options
@click.option("--output", "-o", type=click.Path(), help="Write here instead of standard output "
              "(Parquet: a .parquet file, or a folder for a dataset).")
@click.option("--format", "fmt", type=click.Choice(["jsonl", "csv", "parquet"]), default="jsonl", show_default=True)
@click.option("--explain", default=0, show_default=True, type=click.IntRange(0, 50),
              help="Also give, per facet, the N sentences that carried the label most (offsets into the post, "
                   "score: the drop in the label's probability without the sentence, share of the decision).")
@click.option("--explain-ngrams", default=0, show_default=True, type=click.IntRange(0, 50),
              help="Also give the N word n-grams that pushed each label most (the linear model's weights).")
@click.option("--batch-size", default=2000, show_default=True, type=click.IntRange(1, 1_000_000))
@click.option("--jobs", default=0, show_default=True, type=click.IntRange(0, 64),
              help="Worker processes (0: one per core, used when the input has more than one batch).")
@with_engine_options
@force_option
@quiet_option
@user_errors
def predict(model, input_path, text_column, id_column, input_format, skip_invalid, encoding, max_chars, output,
            fmt, explain, explain_ngrams, batch_size, jobs, engine, scheduler, force, quiet):
    """Label posts from a CSV, JSON Lines, plain-text, Excel or Parquet file (or dataset folder), or -
    for standard input.

    One output row per input row, in input order, with its id, the four labels, the confidence of each
    label and every label's probability.

    \b
    Example:
      rupture-nlp predict --model models/default --explain 3 data/examples/posts.txt
      rupture-nlp predict -m models/default --format csv -o labels.csv data/examples/posts.csv
      rupture-nlp predict -m models/default --format parquet -o labels.parquet data/examples/posts.csv
      rupture-nlp predict -m models/default --engine dask --format parquet -o labels data/examples/posts.csv
    """
    from rupture_nlp.data import InputSpec
    from rupture_nlp.predict import PredictRequest, predict_file

    spec = InputSpec(path=input_path, text_column=text_column, id_column=id_column, input_format=input_format,
                     skip_invalid=skip_invalid, batch_size=batch_size, encoding=encoding, max_chars=max_chars)
    if engine == "dask":
        if explain_ngrams:
            raise click.UsageError("--explain-ngrams runs on the local engine only; use --explain with --engine dask")
        from rupture_nlp.cli_dask import predict_on_dask

        return predict_on_dask(model, spec, output, fmt, explain, scheduler, force, quiet)
    stats = predict_file(PredictRequest(model_dir=model, spec=spec, output=output, output_format=fmt,
                                        explain=explain, explain_ngrams=explain_ngrams, jobs=jobs, force=force,
                                        progress=not quiet and sys.stderr.isatty()))
    if stats["skipped"]:
        log(quiet, f"skipped {stats['skipped']} invalid row(s)")
    log_truncated(quiet, stats.get("truncated", 0), max_chars)
    log(quiet, f"labelled {stats['posts']} posts")


@main.command()
@model_option
@with_input_options
@click.option("--output", "-o", type=click.Path(), help="Write here instead of standard output "
              "(Parquet: a .parquet file, or a folder for a dataset).")
@click.option("--format", "fmt", type=click.Choice(["jsonl", "csv", "html", "parquet"]), default="jsonl",
              show_default=True)
@click.option("--explain", default=3, show_default=True, type=click.IntRange(0, 20),
              help="Evidence sentences per facet of the posts that decide each thread (highlighted in html).")
@click.option("--threshold", type=click.FloatRange(0, 1),
              help="Confidence below which a priority is marked uncertain (default: the model's, chosen by CV).")
@with_engine_options
@force_option
@quiet_option
@user_errors
def triage(model, input_path, text_column, id_column, input_format, skip_invalid, encoding, max_chars, output, fmt,
           explain, threshold, engine, scheduler, force, quiet):
    """Rank threads for moderators: urgent, review, uncertain, support, routine.

    INPUT (CSV or Parquet) needs the columns thread_id, author and position (or created_at) beside the
    text. Sorted by priority, then confidence. --format html writes one self-contained page.

    \b
    Example:
      rupture-nlp triage --model models/default --format html -o queue.html data/examples/threads.csv
      rupture-nlp triage --model models/default --engine dask data/examples/threads.csv
    """
    from rupture_nlp.api import triage as triage_posts
    from rupture_nlp.data import InputSpec, read_csv_strict, valid_rows
    from rupture_nlp.parquet_io import is_parquet, read_table
    from rupture_nlp.persist import check_writable, load_model
    from rupture_nlp.triage import check_structure

    if output:
        check_writable(Path(output), force)
    if engine == "dask":
        from rupture_nlp.cli_dask import triage_on_dask

        return triage_on_dask(model, InputSpec(path=input_path, text_column=text_column, input_format=input_format,
                                               skip_invalid=skip_invalid, encoding=encoding, max_chars=max_chars),
                              output, fmt, explain, threshold, scheduler, force, quiet)
    parquet = is_parquet(input_path, input_format)
    if not parquet and (input_path == "-" or input_format not in ("auto", "csv", "xlsx")
                        or not input_path.lower().endswith((".csv", ".xlsx"))):
        raise click.ClickException("triage reads a CSV, .xlsx or Parquet file with the columns thread_id, author, "
                                   "position (or created_at) and the text")
    posts = read_table(input_path) if parquet else read_csv_strict(input_path, encoding=encoding)
    check_structure(posts)
    spec = InputSpec(path=input_path, text_column=text_column, id_column=id_column, skip_invalid=skip_invalid,
                     max_chars=max_chars)
    posts = valid_rows(posts, spec)
    if posts.attrs.get("skipped"):
        log(quiet, f"skipped {posts.attrs['skipped']} invalid row(s)")
    log_truncated(quiet, posts.attrs.get("truncated", 0), max_chars)
    m = load_model(model)
    queue = triage_posts(m, posts, text_column=text_column, explain=explain, threshold=threshold)
    write_queue(queue, output, fmt, force, quiet)


def write_queue(queue, output, fmt: str, force: bool, quiet: bool) -> None:
    """The triage queue to ``output`` (standard output for None) as JSONL, CSV, HTML or Parquet."""
    from rupture_nlp.persist import atomic_output
    from rupture_nlp.predict import output_sink
    from rupture_nlp.triage import render_html

    if fmt == "html":
        with atomic_output(output, force=force) as fh:
            fh.write(render_html(queue))
    else:
        with output_sink(output, fmt, force) as write:
            write(queue.drop(columns="evidence_posts") if fmt in ("csv", "parquet") else queue, True)
    counts = queue["priority"].value_counts().to_dict()
    log(quiet, f"{len(queue)} threads: " + ", ".join(f"{v} {k}" for k, v in counts.items()))


# The other commands live in their own modules; importing them registers them on `main`.
from rupture_nlp import cli_adapt  # noqa: E402,F401  (sample, annotate, agreement, shift)
from rupture_nlp import cli_model  # noqa: E402,F401  (card, verify)
from rupture_nlp import cli_research  # noqa: E402,F401  (report, tune)
from rupture_nlp import cli_review  # noqa: E402,F401  (the moderators' desk: `review`)
