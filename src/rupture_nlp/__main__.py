"""`python -m rupture_nlp` runs the command line."""

from rupture_nlp.cli import main

main(prog_name="rupture-nlp")
