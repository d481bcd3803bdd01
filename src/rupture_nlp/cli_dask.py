"""`predict --engine dask` and `triage --engine dask`: the command-line side of rupture_nlp.dask_engine."""

from __future__ import annotations

import sys

import click

from rupture_nlp.cli import log, write_queue


def _progress(quiet: bool, what: str):
    if quiet or not sys.stderr.isatty():
        return None

    def show(done: int, total: int, posts: int) -> None:
        count = f"{posts:,} posts, " if posts else ""
        click.echo(f"\r{what}: {count}{done}/{total} partitions", err=True, nl=done == total)

    return show


def _check_first(model, spec, threads: bool = False) -> None:
    """Clear errors on the model folder and the input before a cluster is started or reached."""
    from rupture_nlp.dask_engine import read_partitions
    from rupture_nlp.persist import read_manifest
    from rupture_nlp.triage import check_structure

    read_manifest(model)
    source = read_partitions(spec)
    if threads:
        check_structure(source.meta)


def predict_on_dask(model, spec, output, fmt, explain, scheduler, force, quiet) -> None:
    from pathlib import Path

    from rupture_nlp.dask_engine import DaskRequest, connect, describe, predict_dask
    from rupture_nlp.persist import check_writable

    if output and output != "-":
        check_writable(Path(output), force)
    if fmt == "parquet" and (not output or output == "-"):
        raise click.ClickException("--format parquet needs --output/-o: a file ending in .parquet, or a folder")
    _check_first(model, spec)
    with connect(scheduler) as client:
        log(quiet, describe(client))
        stats = predict_dask(client, DaskRequest(model_dir=model, spec=spec, output=output, output_format=fmt,
                                                 explain=explain, force=force,
                                                 on_part=_progress(quiet, "labelled")))
    if stats["skipped"]:
        log(quiet, f"skipped {stats['skipped']} invalid row(s)")
    log(quiet, f"labelled {stats['posts']} posts in {stats['partitions']} partition(s)")


def triage_on_dask(model, spec, output, fmt, explain, threshold, scheduler, force, quiet) -> None:
    from rupture_nlp.dask_engine import DaskRequest, connect, describe, triage_dask

    req = DaskRequest(model_dir=model, spec=spec, explain=explain, threshold=threshold,
                      on_part=_progress(quiet, "rolled up"))
    if fmt == "parquet" and (not output or output == "-"):
        raise click.ClickException("--format parquet needs --output/-o: a file ending in .parquet, or a folder")
    _check_first(model, spec, threads=True)
    with connect(scheduler) as client:
        log(quiet, describe(client))
        queue = triage_dask(client, req)
    if req.stats.get("skipped"):
        log(quiet, f"skipped {req.stats['skipped']} invalid row(s)")
    write_queue(queue, output, fmt, force, quiet)
