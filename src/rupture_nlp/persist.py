"""Models on disk (a folder: skops artifact + manifest.json + README.md card) and outputs written atomically.

The artifact is a skops file: loading it builds only the types it is allowed to (see
:mod:`rupture_nlp.trust`), so a model file cannot run code. A folder of the first format holds a
joblib pickle instead, which can; it is loaded only with ``trust_pickle`` (``--trust-pickle``).
"""

from __future__ import annotations

import contextlib
import hashlib
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

FORMAT_VERSION = 2  # 2: model.skops; 1: model.joblib (a pickle, loaded only when trusted)
READABLE_FORMATS = (1, 2)
ARTIFACT = "model.skops"
LEGACY_ARTIFACT = "model.joblib"
MANIFEST = "manifest.json"
CARD = "README.md"


class ModelError(ValueError):
    """A model folder that is missing, damaged or made with other library versions."""


class OutputExistsError(ValueError):
    """An output that exists already and may not be replaced without --force."""


def library_versions() -> dict[str, str]:
    from importlib.metadata import version

    import numpy
    import pandas
    import scipy
    import skops
    import sklearn

    return {"rupture_nlp": __version__, "scikit-learn": sklearn.__version__, "numpy": numpy.__version__,
            "scipy": scipy.__version__, "pandas": pandas.__version__, "joblib": joblib.__version__,
            "skops": skops.__version__, "click": version("click"), "python": platform.python_version()}


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
    """Write ``model`` (skops), its manifest and its model card into the folder ``out`` (via a temporary
    folder). The manifest lists the types the file holds, which loading then trusts and nothing else."""
    import skops.io as sio

    from rupture_nlp.trust import vet

    out = Path(out)
    with atomic_folder(out, force=force, what="model folder") as tmp:
        # Uncompressed: 28% larger than deflated, and loads three times faster (docs/benchmarks.md).
        sio.dump(model, tmp / ARTIFACT)
        full = {"format_version": FORMAT_VERSION, "created_at": datetime.now(timezone.utc).isoformat(),
                "versions": library_versions(), "artifact": ARTIFACT,
                "artifact_sha256": sha256_file(tmp / ARTIFACT), "trusted_types": vet(tmp / ARTIFACT), **manifest}
        (tmp / MANIFEST).write_text(json.dumps(full, indent=2, default=str) + "\n", encoding="utf-8")
        write_card(tmp, full)
    return out


def write_card(folder: Path, manifest: dict[str, Any]) -> None:
    from rupture_nlp.card import model_card

    (Path(folder) / CARD).write_text(model_card(manifest), encoding="utf-8")


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


def available_memory() -> int:
    """Bytes of memory free for a new allocation (MemAvailable on Linux; elsewhere all physical memory)."""
    try:
        with open("/proc/meminfo", encoding="ascii") as fh:
            for line in fh:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError, AttributeError):
        return 1 << 62  # unknown: let the read itself say


def too_big(artifact: Path, size: int, free: int) -> ModelError:
    return ModelError(f"{artifact} ({size / 2**20:,.0f} MiB) does not fit in the memory free here "
                      f"({free / 2**20:,.0f} MiB): it cannot be loaded here; free memory or use a larger machine")


def check_model(folder: str | Path, trust_pickle: bool = False) -> dict[str, Any]:
    """Every check made before a model is loaded, loading nothing: the manifest, the artifact's sha256,
    the library versions and (skops) the types the file names. Raises ModelError on the first failure;
    returns the manifest, the artifact path, its bytes (skops: read once, then hashed, vetted and
    loaded from memory) and the types to trust."""
    from rupture_nlp.trust import UntrustedTypesError, pickle_refusal, pickle_trusted, vet

    folder = Path(folder)
    manifest = read_manifest(folder)
    version = manifest.get("format_version")
    if version not in READABLE_FORMATS:
        raise ModelError(f"{folder} has model format {version}, this rupture-nlp reads formats "
                         f"{', '.join(map(str, READABLE_FORMATS))}; train the model again")
    artifact = folder / manifest.get("artifact", ARTIFACT if version == 2 else LEGACY_ARTIFACT)
    if not artifact.is_file():
        raise ModelError(f"{folder} lacks its artifact {artifact.name}; train the model again")
    # a skops file is read once: its bytes are hashed, vetted and (by load_model) loaded, so the file
    # checked is the file loaded, and it is not read three times
    # (one that would not fit in the memory free here is hashed from disk instead, so a damaged or
    # swapped file still gets the hash's answer, and a real one too big for this machine gets a clear line)
    size, free = artifact.stat().st_size, available_memory()
    data = None
    if artifact.suffix == ".skops" and size <= free:
        try:
            data = artifact.read_bytes()
        except MemoryError:
            data = None
    digest = hashlib.sha256(data).hexdigest() if data is not None else sha256_file(artifact)
    if digest != manifest.get("artifact_sha256"):
        raise ModelError(f"{artifact} does not match the sha256 in its manifest: the file was changed or "
                         f"damaged; do not load it, train the model again")
    if artifact.suffix == ".skops" and data is None:
        raise too_big(artifact, size, free)
    made = manifest.get("versions", {}).get("scikit-learn")
    here = library_versions()["scikit-learn"]
    if made != here:
        raise ModelError(f"{folder} was made with scikit-learn {made} but {here} is installed; "
                         f"install scikit-learn=={made} or train the model again")
    if artifact.suffix != ".skops":
        if not (trust_pickle or pickle_trusted()):
            raise ModelError(pickle_refusal(folder, artifact.name))
        return {"manifest": manifest, "artifact": artifact, "format": "joblib", "types": []}
    try:
        types = vet(artifact, data)
    except UntrustedTypesError as exc:
        raise ModelError(str(exc)) from None
    except MemoryError:
        raise too_big(artifact, size, available_memory()) from None
    declared = set(manifest.get("trusted_types", []))
    if set(types) - declared:
        raise ModelError(f"{artifact} holds types its manifest does not list: {', '.join(sorted(set(types) - declared))}; "
                         f"nothing in it was loaded; train the model again")
    return {"manifest": manifest, "artifact": artifact, "format": "skops", "types": types, "data": data}


def load_model(folder: str | Path, trust_pickle: bool = False):
    """Load a model after checking its hash, the library versions and the types its file holds.

    A joblib (pickle) model of format 1 needs ``trust_pickle`` or the environment variable
    RUPTURE_NLP_TRUST_PICKLE=1: loading a pickle can run any code.
    """
    checked = check_model(folder, trust_pickle)
    if checked["format"] == "joblib":
        model = joblib.load(checked["artifact"])
    else:
        import skops.io as sio

        try:
            model = sio.loads(checked["data"], trusted=checked["types"])
        except MemoryError:
            raise too_big(checked["artifact"], len(checked["data"]), available_memory()) from None
    model.manifest_ = checked["manifest"]
    return model


def verify_model(folder: str | Path) -> list[tuple[str, bool, str]]:
    """(check, passed, detail) for each check of a model folder, loading nothing into memory that was not
    checked: the manifest, the artifact's sha256, the library versions, the types the file names (skops
    reads the schema alone), the card, and the training data's sha256 when that file is here."""
    from rupture_nlp.trust import UntrustedTypesError, vet

    folder = Path(folder)
    manifest = read_manifest(folder)
    out: list[tuple[str, bool, str]] = []
    version = manifest.get("format_version")
    out.append(("format", version in READABLE_FORMATS, f"model format {version}"
                + (" (joblib pickle)" if version == 1 else "")))
    artifact = folder / manifest.get("artifact", ARTIFACT if version == 2 else LEGACY_ARTIFACT)
    if not artifact.is_file():
        return out + [("artifact", False, f"{artifact.name} is missing")]
    digest = sha256_file(artifact)
    out.append(("artifact sha256", digest == manifest.get("artifact_sha256"),
                f"{artifact.name} {digest}" + ("" if digest == manifest.get("artifact_sha256")
                                                else f" but the manifest says {manifest.get('artifact_sha256')}")))
    here = library_versions()
    for lib in ("scikit-learn", "numpy", "scipy", "skops"):
        made = manifest.get("versions", {}).get(lib)
        if made is None:
            continue
        note = "" if made == here.get(lib) else (" (loading refuses it)" if lib == "scikit-learn"
                                                 else " (loads; retrain to be sure of identical output)")
        out.append((f"version {lib}", made == here.get(lib) or lib != "scikit-learn",
                    f"made with {made}, installed {here.get(lib)}{note}"))
    if artifact.suffix == ".skops":
        try:
            types = vet(artifact)
            undeclared = sorted(set(types) - set(manifest.get("trusted_types", [])))
            out.append(("trusted types", not undeclared, f"{len(types)} types, all rupture-nlp, scikit-learn, numpy or "
                        f"scipy classes" if not undeclared else f"not in the manifest: {', '.join(undeclared)}"))
        except UntrustedTypesError as exc:
            out.append(("trusted types", False, str(exc)))
    else:
        out.append(("trusted types", False, "a joblib pickle cannot be checked without running it; train again "
                                            "to get a model.skops (or load it with --trust-pickle)"))
    card = folder / CARD
    from rupture_nlp.card import model_card

    out.append(("model card", card.is_file(), "README.md matches the manifest" if card.is_file() and
                card.read_text(encoding="utf-8") == model_card(manifest) else
                ("README.md differs from what the manifest gives (edited by hand?)" if card.is_file()
                 else "README.md is missing (rupture-nlp card MODEL prints it)")))
    data = manifest.get("training_data", {})
    if data.get("path") and Path(data["path"]).is_file():
        same = sha256_file(data["path"]) == data.get("sha256")
        out.append(("training data", True, f"{data['path']} " + ("is the file it was trained on" if same else
                                                                  "has changed since training (informational)")))
    return out


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
    with atomic_output(folder / CARD, force=True) as fh:  # the card shows the checks too
        from rupture_nlp.card import model_card

        fh.write(model_card(manifest))


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
            fh.flush()
            os.fsync(fh.fileno())  # the new file is whole on disk before it takes the old one's name
        os.replace(tmp, path)
        _fsync_dir(path.parent)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


def _fsync_dir(folder: Path) -> None:
    """Make a rename durable (POSIX); a no-op where folders cannot be opened (Windows)."""
    with contextlib.suppress(OSError):
        fd = os.open(folder, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


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
