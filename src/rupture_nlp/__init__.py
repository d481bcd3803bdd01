"""rupture-nlp: label forum posts about therapy for alliance ruptures and their repair."""

__version__ = "0.1.0"
