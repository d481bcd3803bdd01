"""Commands about a model folder itself: card, verify (registered on the `rupture-nlp` group)."""

from __future__ import annotations

import json

import click

from rupture_nlp.cli import DEFAULT_MODEL, main, user_errors

model_argument = click.argument("model", default=DEFAULT_MODEL, required=False, type=click.Path(file_okay=False))


@main.command()
@model_argument
@user_errors
def card(model):
    """Print the model card of a model folder: intended use and misuse, training data, metrics, the
    known gap on real posts, hashes and versions.

    Written from the manifest alone (nothing is loaded); it is the folder's README.md.

    \b
    Example:
      rupture-nlp card models/default
    """
    from rupture_nlp.card import model_card
    from rupture_nlp.persist import read_manifest

    click.echo(model_card(read_manifest(model)), nl=False)


@main.command()
@model_argument
@click.option("--format", "fmt", type=click.Choice(["table", "json"]), default="table", show_default=True)
@user_errors
def verify(model, fmt):
    """Check a model folder without loading the model: the artifact's sha256 against the manifest, the
    library versions, the types the skops file names (only rupture-nlp, scikit-learn, numpy and scipy
    classes are trusted; the schema is read, nothing is built), the card and the training data.

    Exit 1 if a check fails. A joblib (pickle) model of the old format cannot be checked this way.

    \b
    Example:
      rupture-nlp verify models/default
    """
    from rupture_nlp.persist import verify_model

    checks = verify_model(model)
    failed = [name for name, ok, _ in checks if not ok]
    if fmt == "json":
        click.echo(json.dumps({"model": str(model), "ok": not failed,
                               "checks": [{"check": n, "ok": ok, "detail": d} for n, ok, d in checks]}, indent=2))
    else:
        for name, ok, detail in checks:
            click.echo(f"{'ok  ' if ok else 'FAIL'}  {name:<20} {detail}")
    if failed:
        raise click.ClickException(f"{model}: {len(failed)} check(s) failed: {', '.join(failed)}")
    click.echo(f"{model}: every check passed; the model was not loaded", err=True)
