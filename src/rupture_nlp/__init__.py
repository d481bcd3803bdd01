"""rupture-nlp: label forum posts about therapy for alliance ruptures and their repair.

The Python API (see README): ``load_model``, ``predict``, ``explain``, ``train_model``,
``evaluate_model`` and ``triage``, imported on first use so the command line starts fast.
"""

__version__ = "0.1.0"

_API = {"load_model", "predict", "explain", "train_model", "TrainRequest", "evaluate_model", "triage"}


def __getattr__(name):
    if name in _API:
        from rupture_nlp import api

        return getattr(api, name)
    raise AttributeError(f"module 'rupture_nlp' has no attribute {name!r}")


__all__ = ["__version__", *sorted(_API)]
