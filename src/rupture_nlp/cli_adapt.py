"""Commands for adapting to a forum: sample, annotate, agreement, shift (registered on the `rupture-nlp` group)."""

from __future__ import annotations

import json
from pathlib import Path

import click

from rupture_nlp.cli import (force_option, log, log_truncated, main, model_option, quiet_option, user_errors,
                             with_input_options)


@main.command()
@model_option
@with_input_options
@click.option("--n", "n", default=50, show_default=True, type=click.IntRange(1, 100000), help="Posts to pick.")
@click.option("--strategy", type=click.Choice(["uncertainty", "random"]), default="uncertainty", show_default=True)
@click.option("--seed", default=0, show_default=True, type=int)
@click.option("--thread-column", help="Column of thread ids, copied to the sheet  [default: thread_id, when the "
                                      "input has it]")
@click.option("--labelled", multiple=True, type=click.Path(dir_okay=False),
              help="A sheet whose labelled post ids are skipped (repeatable).")
@click.option("--output", "-o", required=True, type=click.Path(dir_okay=False), help="Annotation sheet (CSV) to write.")
@force_option
@quiet_option
@user_errors
def sample(model, input_path, text_column, id_column, input_format, skip_invalid, encoding, max_chars, n, strategy,
           seed, thread_column, labelled, output, force, quiet):
    """Pick the posts of your own forum that would teach the model most, as an annotation sheet.

    Uncertainty sampling with diversity (or random), seeded. The sheet has the post id, text, the
    model's suggested labels and confidence, and empty columns for the gold labels and a note; fill
    them in a spreadsheet or with `rupture-nlp annotate`, then train with --extra. When the input has
    a thread_id column the sheet keeps it, and train --extra measures the sheet's gain by whole threads.

    \b
    Example:
      rupture-nlp sample --model models/default --n 50 --id-column post_id -o sheet.csv data/examples/threads.csv
    """
    from rupture_nlp.adapt import labelled_ids, sample_posts
    from rupture_nlp.data import InputError, InputSpec, read_all
    from rupture_nlp.persist import atomic_output, check_writable, load_model

    check_writable(Path(output), force)
    check_not_a_labelled_sheet(Path(output), labelled)
    posts = read_all(InputSpec(path=input_path, text_column=text_column, id_column=id_column,
                               input_format=input_format, skip_invalid=skip_invalid, encoding=encoding,
                               max_chars=max_chars, thread_column=thread_column or "thread_id"))
    if thread_column and "thread" not in posts.columns:
        raise InputError(f"{input_path} has no thread column {thread_column!r}")
    log_truncated(quiet, posts.attrs.get("truncated", 0), max_chars)
    sheet = sample_posts(load_model(model), posts, n, strategy=strategy, seed=seed, skip_ids=labelled_ids(labelled))
    with atomic_output(output, force=force) as fh:
        sheet.to_csv(fh, index=False, lineterminator="\n")
    log(quiet, f"wrote {len(sheet)} posts to {output} (strategy {strategy}, seed {seed})")


def check_not_a_labelled_sheet(output: Path, labelled) -> None:
    """A new sheet never replaces labels, even with --force: neither a --labelled sheet nor a labelled output."""
    from rupture_nlp.adapt import REQUIRED, labelled_rows
    from rupture_nlp.data import InputError, read_csv_strict

    if any(Path(p).resolve() == output.resolve() for p in labelled):
        raise InputError(f"{output} is one of the --labelled sheets: writing the new sheet there would lose its "
                         f"labels; write it to another file")
    if output.is_file():
        try:
            sheet = read_csv_strict(output, REQUIRED)
        except InputError:
            return  # not a sheet of labels: --force may replace it
        done = int(labelled_rows(sheet.fillna("")).sum())
        if done:
            raise InputError(f"{output} holds {done} labelled post(s): a new sheet would lose them, even with "
                             f"--force; pass it with --labelled and write the new sheet to another file")


@main.command()
@click.argument("sheet_a", type=click.Path(dir_okay=False))
@click.argument("sheet_b", type=click.Path(dir_okay=False))
@click.option("--format", "fmt", type=click.Choice(["table", "json"]), default="table", show_default=True)
@user_errors
def agreement(sheet_a, sheet_b, fmt):
    """Agreement between two annotators of the same posts: Cohen's kappa, % agreement, confusions.

    Lists the posts they disagree on, for adjudication.

    \b
    Example:
      rupture-nlp agreement sheet_anna.csv sheet_ben.csv --format json
    """
    import pandas as pd

    from rupture_nlp.adapt import agreement as compute

    result = compute(sheet_a, sheet_b)
    if fmt == "json":
        click.echo(json.dumps(result, indent=2))
        return
    lines = [f"{result['posts']} posts labelled by both"]
    for facet, s in result["facets"].items():
        lines += ["", f"{facet}: kappa {s['kappa']:.3f}, agreement {s['percent_agreement']:.1f}% (n={s['n']})",
                  "rows: A, columns: B"]
        labels = s["confusion"]["labels"]
        lines.append(pd.DataFrame(s["confusion"]["rows_a_columns_b"], index=labels, columns=labels).to_string())
    lines += ["", f"{len(result['disagreements'])} posts with a disagreement:"]
    for d in result["disagreements"]:
        lines.append(f"  {d['post_id']}: " + "; ".join(f"{f} A={v[0]} B={v[1]}" for f, v in d.items() if f != "post_id"))
    click.echo("\n".join(lines))


@main.command()
@click.argument("sheet", type=click.Path(dir_okay=False))
@user_errors
def annotate(sheet):
    """Label an annotation sheet in the terminal, one post and one facet at a time.

    Shows each post with the model's suggestion and asks rupture_type, repair_outcome,
    therapist_response and risk. Keys: a number picks a label, Enter accepts the marked one (the
    saved label, else the suggestion), b goes back, s skips the post, n adds a note, q saves and
    quits. Each finished post is saved at once; run it again to resume at the first unlabelled post.

    \b
    Example:
      rupture-nlp sample --model models/default --n 50 --id-column post_id -o sheet.csv data/examples/threads.csv
      rupture-nlp annotate sheet.csv
    """
    from rupture_nlp.annotate import Annotator

    Annotator(sheet, read_key=lambda: click.getchar(), write=click.echo).run()



@main.command()
@model_option
@with_input_options
@click.option("--sample", "n_sample", default=2000, show_default=True, type=click.IntRange(5, 1_000_000),
              help="Posts to compare (a seeded random sample of a larger file).")
@click.option("--seed", default=0, show_default=True, type=int)
@click.option("--format", "fmt", type=click.Choice(["table", "json"]), default="table", show_default=True)
@click.option("--output", "-o", type=click.Path(dir_okay=False), help="Also write the report as JSON here.")
@click.option("--record", is_flag=True, help="Record the figures in the model folder's manifest (checks).")
@force_option
@quiet_option
@user_errors
def shift(model, input_path, text_column, id_column, input_format, skip_invalid, encoding, max_chars, n_sample, seed,
          fmt, output, record, force, quiet):
    """How far your forum is from the training corpus, before you trust a label there.

    Reads your own unlabelled posts (any input predict reads) and reports a domain classifier's
    cross-validated ROC AUC between corpus and forum posts (with its 95% interval), the style and
    length measures that differ most, the share of posts out of the corpus's range, the model's mean
    confidence there, and what to expect and do. Needs at least 5 posts; a large file is sampled.

    \b
    Example:
      rupture-nlp shift data/examples/posts.txt
      rupture-nlp shift --format json --text-column text data/adaptation/forum_c.csv
    """
    from rupture_nlp.data import InputSpec
    from rupture_nlp.persist import atomic_output, check_writable, load_model, record_check
    from rupture_nlp.shift import render_text, sample_texts, shift_report

    if output:
        check_writable(Path(output), force)
    m = load_model(model)
    spec = InputSpec(path=input_path, text_column=text_column, id_column=id_column, input_format=input_format,
                     skip_invalid=skip_invalid, encoding=encoding, max_chars=max_chars)
    texts, total = sample_texts(spec, n_sample, seed)
    result = shift_report(m, texts, total=total, seed=seed)
    text = json.dumps(result, indent=2) if fmt == "json" else render_text(result)
    click.echo(text)
    if output:
        with atomic_output(output, force=force) as fh:
            fh.write(json.dumps(result, indent=2) + "\n")
    if record:
        record_check(model, {"command": "shift", "input": str(input_path), **_check_summary(result)})
        log(quiet, f"recorded in {model}/manifest.json")


def _check_summary(result: dict) -> dict:
    return {"posts": result["posts"], "domain_auc": result["domain_classifier"]["roc_auc"],
            "domain_auc_ci95": result["domain_classifier"]["ci95"], "ood_score_median": result["ood_score"]["median"],
            "share_out_of_range": result["ood_score"]["share_out_of_range"], "level": result["level"],
            "mean_confidence": result["mean_confidence"]}
