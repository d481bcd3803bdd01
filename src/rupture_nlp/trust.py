"""Which types a model file may hold: skops loads only the types it is told to trust.

A ``.skops`` file is a zip of a JSON schema and numpy arrays; ``skops.io.get_untrusted_types`` reads the
schema alone, so the types a file names are known before anything in it is built. A type is trusted
when it is a class (never a function: skops would call it) defined in rupture-nlp, scikit-learn, numpy
or scipy, or a plain builtin data type. Anything else, and ``numpy.memmap`` (its constructor opens
files), is refused with the names of the types.
"""

from __future__ import annotations

import importlib
import os
from pathlib import Path

TRUSTED_PACKAGES = ("rupture_nlp", "sklearn", "numpy", "scipy")
BUILTIN_DATA = {"builtins." + n for n in ("int", "float", "complex", "str", "bytes", "bool", "tuple", "list",
                                          "dict", "set", "frozenset", "slice", "NoneType")}
REFUSED = {"numpy.memmap", "numpy.core.memmap.memmap", "numpy._core.memmap.memmap"}
TRUST_PICKLE_ENV = "RUPTURE_NLP_TRUST_PICKLE"


class UntrustedTypesError(ValueError):
    """A model file names types outside the trusted list."""


def file_types(path: str | Path, data: bytes | None = None) -> list[str]:
    """The types a .skops file names beyond skops' own safe defaults (reads the schema only);
    ``data``: the file's bytes, already read (``path`` then only names it in messages)."""
    import skops.io as sio

    try:
        return sorted(sio.get_untrusted_types(data=data) if data is not None else sio.get_untrusted_types(file=Path(path)))
    except Exception as exc:  # a damaged zip or schema: skops raises several kinds
        raise UntrustedTypesError(f"{path} is not a readable skops file ({type(exc).__name__}); "
                                  f"train the model again") from None


def is_trusted(name: str) -> bool:
    """A class of a trusted package (importing that package's module only), or a builtin data type."""
    if name in BUILTIN_DATA:
        return True
    if name in REFUSED or name.split(".")[0] not in TRUSTED_PACKAGES:
        return False
    module_name, _, attr = name.rpartition(".")
    try:
        obj = getattr(importlib.import_module(module_name), attr)
    except (ImportError, AttributeError, ValueError):
        return False
    import numpy

    return isinstance(obj, type) and not issubclass(obj, numpy.memmap)


def vet(path: str | Path, data: bytes | None = None) -> list[str]:
    """The types to pass to ``skops.io.load(trusted=...)``: exactly those the file holds, each checked;
    raises UntrustedTypesError naming any that is not trusted. ``data``: as for :func:`file_types`."""
    names = file_types(path, data)
    refused = [n for n in names if not is_trusted(n)]
    if refused:
        raise UntrustedTypesError(f"{path} holds types that are not trusted: {', '.join(refused)}; nothing in it "
                                  f"was loaded. A rupture-nlp model holds only rupture-nlp, scikit-learn, numpy "
                                  f"and scipy classes: get the model from its maker again, or train it yourself")
    return names


def pickle_trusted() -> bool:
    return os.environ.get(TRUST_PICKLE_ENV, "").strip().lower() in ("1", "true", "yes")


def pickle_refusal(folder: str | Path, artifact: str) -> str:
    return (f"{folder} holds a joblib pickle ({artifact}); loading a pickle can run any code in it, and the sha256 "
            f"in its manifest only shows the file is the one its manifest describes (whoever wrote the one wrote "
            f"the other). Train the model again to get a model.skops, or, if you made it yourself or trust its "
            f"maker, rerun with --trust-pickle (or set {TRUST_PICKLE_ENV}=1)")
