"""The moderators' desk: a triage queue in SQLite, served as a small local web app (see `rupture-nlp review`).

``rank`` labels posts and ranks threads (plain functions, no web code), ``store`` keeps the desk in
one SQLite file, ``app`` serves it with Flask (the optional ``[review]`` extra).
"""
