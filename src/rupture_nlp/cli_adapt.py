"""Commands for adapting to a forum: sample, annotate, agreement (registered on the `rupture-nlp` group)."""

from __future__ import annotations

import json
from pathlib import Path

import click

from rupture_nlp.cli import force_option, log, main, model_option, quiet_option, user_errors, with_input_options


@main.command()
@model_option
@with_input_options
@click.option("--n", "n", default=50, show_default=True, type=click.IntRange(1, 100000), help="Posts to pick.")
@click.option("--strategy", type=click.Choice(["uncertainty", "random"]), default="uncertainty", show_default=True)
@click.option("--seed", default=0, show_default=True, type=int)
@click.option("--labelled", multiple=True, type=click.Path(dir_okay=False),
              help="A sheet whose labelled post ids are skipped (repeatable).")
@click.option("--output", "-o", required=True, type=click.Path(dir_okay=False), help="Annotation sheet (CSV) to write.")
@force_option
@quiet_option
@user_errors
def sample(model, input_path, text_column, id_column, input_format, skip_invalid, n, strategy, seed, labelled,
           output, force, quiet):
    """Pick the posts of your own forum that would teach the model most, as an annotation sheet.

    Uncertainty sampling with diversity (or random), seeded. The sheet has the post id, text, the
    model's suggested labels and confidence, and empty columns for the gold labels and a note; fill
    them in a spreadsheet or with `rupture-nlp annotate`, then train with --extra.

    \b
    Example:
      rupture-nlp sample --model models/default --n 50 --id-column post_id -o sheet.csv data/examples/threads.csv
    """
    from rupture_nlp.adapt import labelled_ids, sample_posts
    from rupture_nlp.data import InputSpec, read_all
    from rupture_nlp.persist import atomic_output, check_writable, load_model

    check_writable(Path(output), force)
    posts = read_all(InputSpec(path=input_path, text_column=text_column, id_column=id_column,
                               input_format=input_format, skip_invalid=skip_invalid))
    sheet = sample_posts(load_model(model), posts, n, strategy=strategy, seed=seed, skip_ids=labelled_ids(labelled))
    with atomic_output(output, force=force) as fh:
        sheet.to_csv(fh, index=False, lineterminator="\n")
    log(quiet, f"wrote {len(sheet)} posts to {output} (strategy {strategy}, seed {seed})")


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

