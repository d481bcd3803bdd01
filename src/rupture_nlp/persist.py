"""Models on disk (a folder: joblib artifact + manifest.json) and outputs written atomically.

A joblib file is a pickle: loading one runs code. Only load models from someone you trust.
"""

from __future__ import annotations

import contextlib
import json
import os
import platform
import shutil
import tempfile
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import joblib

from rupture_nlp import __version__
from rupture_nlp.data import sha256_file

FORMAT_VERSION = 1
ARTIFACT = "model.joblib"
MANIFEST = "manifest.json"


class ModelError(ValueError):
    """A model folder that is missing, damaged or made with other library versions."""


class OutputExistsError(ValueError):
    """An output that exists already and may not be replaced without --force."""


def library_versions() -> dict[str, str]:
    from importlib.metadata import version

    import numpy
    import pandas
    import scipy
    import sklearn

    return {"rupture_nlp": __version__, "scikit-learn": sklearn.__version__, "numpy": numpy.__version__,
            "scipy": scipy.__version__, "pandas": pandas.__version__, "joblib": joblib.__version__,
            "click": version("click"), "python": platform.python_version()}


def check_writable(path: Path, force: bool, what: str = "output") -> None:
    if path.exists() and not force:
        raise OutputExistsError(f"{what} {path} exists already; use --force to replace it")


def _replace_dir(tmp: Path, target: Path) -> None:
    """Move a finished folder into place; an existing target is swapped out only at the end."""
    backup = None
    if target.exists():
        backup = target.with_name(f".{target.name}.old-{os.getpid()}")
        target.rename(backup)
    tmp.rename(target)
    if backup is not None:
        shutil.rmtree(backup) if backup.is_dir() else backup.unlink()


def save_model(model, out: str | Path, manifest: dict[str, Any], force: bool = False) -> Path:
    """Write ``model`` and its manifest into the folder ``out`` (via a temporary folder)."""
    out = Path(out)
    with atomic_folder(out, force=force, what="model folder") as tmp:
        joblib.dump(model, tmp / ARTIFACT, compress=3)
        full = {"format_version": FORMAT_VERSION, "created_at": datetime.now(timezone.utc).isoformat(),
                "versions": library_versions(), "artifact": ARTIFACT,
                "artifact_sha256": sha256_file(tmp / ARTIFACT), **manifest}
        (tmp / MANIFEST).write_text(json.dumps(full, indent=2, default=str) + "\n", encoding="utf-8")
    return out


def read_manifest(folder: str | Path) -> dict[str, Any]:
    folder = Path(folder)
    if not folder.is_dir():
        raise ModelError(f"model folder not found: {folder} (train one with `rupture-nlp train`)")
    path = folder / MANIFEST
    if not path.is_file():
        raise ModelError(f"{folder} has no {MANIFEST}: it is not a rupture-nlp model folder")
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError):
        raise ModelError(f"{path} is damaged (not valid JSON); train the model again") from None


def load_model(folder: str | Path):
    """Load a model after checking its hash and the library versions it was made with."""
    folder = Path(folder)
    manifest = read_manifest(folder)
    if manifest.get("format_version") != FORMAT_VERSION:
        raise ModelError(f"{folder} has model format {manifest.get('format_version')}, this rupture-nlp "
                         f"reads format {FORMAT_VERSION}; train the model again")
    artifact = folder / manifest.get("artifact", ARTIFACT)
    if not artifact.is_file():
        raise ModelError(f"{folder} lacks its artifact {artifact.name}; train the model again")
    if sha256_file(artifact) != manifest.get("artifact_sha256"):
        raise ModelError(f"{artifact} does not match the sha256 in its manifest: the file was changed or "
                         f"damaged; do not load it, train the model again")
    made = manifest.get("versions", {}).get("scikit-learn")
    here = library_versions()["scikit-learn"]
    if made != here:
        raise ModelError(f"{folder} was made with scikit-learn {made} but {here} is installed; "
                         f"install scikit-learn=={made} or train the model again")
    model = joblib.load(artifact)
    model.manifest_ = manifest
    return model


def record_check(folder: str | Path, entry: dict[str, Any]) -> None:
    """Append what a model was checked on (a forum's shift, an evaluation) to its manifest's ``checks``.

    The manifest is rewritten atomically; the artifact and its hash are untouched. A later check of the
    same command on a file of the same name replaces the earlier one.
    """
    folder = Path(folder)
    manifest = read_manifest(folder)
    entry = {"recorded_at": datetime.now(timezone.utc).isoformat(), **entry}
    checks = [c for c in manifest.get("checks", [])
              if (c.get("command"), c.get("input")) != (entry.get("command"), entry.get("input"))]
    manifest["checks"] = checks + [entry]
    with atomic_output(folder / MANIFEST, force=True) as fh:
        fh.write(json.dumps(manifest, indent=2, default=str) + "\n")


@contextlib.contextmanager
def atomic_output(path: str | Path | None, force: bool = False, mode: str = "w"):
    """Yield a stream for ``path`` (stdout for None or '-'), renamed into place only on success."""
    import sys

    if path is None or str(path) == "-":
        yield sys.stdout if "b" not in mode else sys.stdout.buffer
        return
    path = Path(path)
    check_writable(path, force)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, mode, **({} if "b" in mode else {"encoding": "utf-8", "newline": ""})) as fh:
            yield fh
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


@contextlib.contextmanager
def atomic_folder(path: str | Path, force: bool = False, what: str = "folder"):
    """Yield a temporary folder that becomes ``path`` only when the block succeeds."""
    path = Path(path)
    check_writable(path, force, what)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{path.name}.tmp-", dir=path.parent))
    try:
        yield tmp
        _replace_dir(tmp, path)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
