"""Commands for researchers: report (figures and a summary) and tune (registered on the `rupture-nlp` group)."""

from __future__ import annotations

import json
from pathlib import Path

import click

from rupture_nlp.cli import DEFAULT_DATA, force_option, log, main, model_option, quiet_option, user_errors


@main.command()
@model_option
@click.option("--data", "-d", default=DEFAULT_DATA, show_default=True, type=click.Path(dir_okay=False))
@click.option("--out", "-o", required=True, type=click.Path(file_okay=False), help="Report folder to write.")
@click.option("--split", default="test", show_default=True)
@click.option("--seeds", default=3, show_default=True, type=click.IntRange(1, 20), help="Seeds per learning-curve point.")
@click.option("--fractions", default="0.1,0.25,0.5,0.75,1.0", show_default=True,
              help="Shares of the train threads for the learning curve.")
@force_option
@quiet_option
@user_errors
def report(model, data, out, split, seeds, fractions, force, quiet):
    """Write PNG figures and a Markdown summary for researchers.

    Distributions, cross-tabulations (gold and predicted), confusion matrices, reliability curves,
    the weightiest n-grams per class, a learning curve and an error table.

    \b
    Example:
      rupture-nlp report --model models/default --data data/posts.csv --out reports/default
    """
    from rupture_nlp.data import read_corpus
    from rupture_nlp.persist import check_writable, load_model
    from rupture_nlp.report import ReportRequest, build_report

    try:
        shares = [float(x) for x in fractions.split(",")]
    except ValueError:
        raise click.BadParameter("give numbers separated by commas, e.g. 0.25,0.5,1", param_hint="--fractions") from None
    if not shares or not all(0 < x <= 1 for x in shares):
        raise click.BadParameter("each share must be in (0, 1]", param_hint="--fractions")
    check_writable(Path(out), force, "report folder")
    m = load_model(model)
    log(quiet, "building the report (the learning curve trains several models) ...")
    summary = build_report(m, read_corpus(data), ReportRequest(data=data, out=out, split=split, fractions=shares,
                                                              seeds=seeds, force=force))
    log(quiet, f"report written to {out}/summary.md")
    click.echo(json.dumps(summary))


@main.command()
@click.option("--data", "-d", default=DEFAULT_DATA, show_default=True, type=click.Path(dir_okay=False))
@click.option("--config", "-c", type=click.Path(dir_okay=False), help="Base config (default: the shipped one).")
@click.option("--output", "-o", required=True, type=click.Path(dir_okay=False), help="TOML config to write.")
@click.option("--results", type=click.Path(dir_okay=False), help="Also write every cross-validation score (CSV).")
@click.option("--jobs", default=2, show_default=True, type=click.IntRange(1, 64))
@force_option
@quiet_option
@user_errors
def tune(data, config, output, results, jobs, force, quiet):
    """Choose features and C per facet by cross-validation on the train split (folds by thread).

    Never looks at the test split. Writes a complete config to use with `train --config`.

    \b
    Example:
      rupture-nlp tune --data data/posts.csv -o tuned.toml --results tuning.csv
    """
    from rupture_nlp.config import load_config
    from rupture_nlp.data import read_corpus
    from rupture_nlp.persist import atomic_output, check_writable
    from rupture_nlp.tune import best_config, to_toml
    from rupture_nlp.tune import tune as run_tune

    check_writable(Path(output), force)
    if results:
        check_writable(Path(results), force)
    base = load_config(config)
    corpus = read_corpus(data)
    train = corpus[corpus["split"] == "train"].reset_index(drop=True)
    log(quiet, f"cross-validating on {len(train)} train posts ...")
    scores = run_tune(train, base, n_jobs=jobs)
    cfg, chosen = best_config(scores, base)
    with atomic_output(output, force=force) as fh:
        fh.write(to_toml(cfg))
    if results:
        with atomic_output(results, force=force) as fh:
            scores.to_csv(fh, index=False, lineterminator="\n")
    click.echo(chosen.to_string(index=False))
