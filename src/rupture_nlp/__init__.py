"""rupture-nlp: label forum posts about therapy for alliance ruptures and their repair.

The Python API lives in :mod:`rupture_nlp.api` (``load_model``, ``predict``, ``explain``,
``train_model``, ``evaluate_model``, ``triage``); see the README.
"""

__version__ = "0.1.0"
