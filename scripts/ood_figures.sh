#!/usr/bin/env bash
# The out-of-distribution figures of docs/shift.md and docs/realism.md, for the model in models/default:
# evaluate on the test split and forums C, D and E (JSON and text in docs/), shift on the four.
#   bash scripts/ood_figures.sh [MODEL]
set -euo pipefail
cd "$(dirname "$0")/.."
model=${1:-models/default}
rn=.venv/bin/rupture-nlp
$rn evaluate -m "$model" -o docs/metrics_test.json --force > docs/evaluation_test.txt
for forum in c d e; do
  $rn evaluate -m "$model" --data "data/adaptation/forum_$forum.csv" --split new_forum --baseline-data data/posts.csv \
    -o "docs/metrics_forum_$forum.json" --force > "docs/evaluation_forum_$forum.txt"
  $rn shift -m "$model" --format json "data/adaptation/forum_$forum.csv" > "docs/shift_forum_$forum.json"
done
.venv/bin/python -c "
import pandas as pd; d = pd.read_csv('data/posts.csv'); d[d.split == 'test'].to_csv('/tmp/rupture_test_split.csv', index=False)"
$rn shift -m "$model" --format json /tmp/rupture_test_split.csv > docs/shift_test.json
.venv/bin/python scripts/ood_table.py test=docs/metrics_test.json "forum C=docs/metrics_forum_c.json" \
  "forum D=docs/metrics_forum_d.json" "forum E=docs/metrics_forum_e.json"
