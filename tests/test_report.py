"""The research report, the notebook and the README's API example."""

from __future__ import annotations

import os
import re
import shutil

import pandas as pd
import pytest
from click.testing import CliRunner
from sklearn.metrics import f1_score

from rupture_nlp.cli import main
from rupture_nlp.labels import FACETS
from rupture_nlp.report import ReportRequest, build_report, crosstab

from .conftest import CORPUS, ROOT

PNG = b"\x89PNG\r\n\x1a\n"


@pytest.fixture(scope="module")
def report_dir(model, corpus, tmp_path_factory):
    out = tmp_path_factory.mktemp("reports") / "r"
    build_report(model, corpus, ReportRequest(data=CORPUS, out=out, fractions=[0.5, 1.0], seeds=1, n_boot=200))
    return out


@pytest.mark.model
def test_figures_exist_and_are_png(report_dir):
    for name in ("distributions", "confusion", "reliability", "learning_curve"):
        data = (report_dir / f"{name}.png").read_bytes()
        assert data.startswith(PNG) and len(data) > 5000, name
    summary = (report_dir / "summary.md").read_text()
    for name in re.findall(r"!\[[^\]]*\]\(([^)]+)\)", summary):
        assert (report_dir / name).is_file()


@pytest.mark.model
def test_summary_numbers_match_a_direct_computation(report_dir, model, corpus):
    test = corpus[corpus["split"] == "test"]
    pred = model.predict(test["text"])
    summary = (report_dir / "summary.md").read_text()
    for facet in FACETS:
        direct = f1_score(test[facet], pred[facet], average="macro")
        row = re.search(rf"^\| {facet} \| ([0-9.]+) ", summary, re.MULTILINE)
        assert row and float(row.group(1)) == pytest.approx(direct, abs=5e-4), facet
    table = crosstab(test, "therapist_response", "repair_outcome")
    first = table.iloc[0]
    assert f"| {table.index[0]} | " + " | ".join(first.astype(str)) + " |" in summary
    errors = pd.read_csv(report_dir / "errors.csv")
    assert len(errors) == sum(int((test[f].to_numpy() != pred[f].to_numpy()).sum()) for f in FACETS)
    curve = pd.read_csv(report_dir / "learning_curve.csv")
    assert set(curve["fraction"]) == {0.5, 1.0} and curve["macro_f1"].between(0, 1).all()


@pytest.mark.model
def test_crosstab_counts_and_row_percentages():
    df = pd.DataFrame({"rupture_type": ["withdrawal", "withdrawal", "confrontation", "none"],
                       "repair_outcome": ["repaired", "unrepaired", "repaired", "not_applicable"],
                       "therapist_response": ["accountable", "accountable", "defensive", "not_applicable"]})
    table = crosstab(df, "therapist_response", "repair_outcome")
    assert table.loc["accountable", "repaired"] == "1 (50.0%)"
    assert table.loc["defensive", "repaired"] == "1 (100.0%)"
    assert "not_applicable" not in table.index


@pytest.mark.model
def test_report_refuses_to_overwrite(report_dir, model_dir):
    before = (report_dir / "summary.md").read_text()
    result = CliRunner().invoke(main, ["report", "-m", str(model_dir), "--data", str(CORPUS), "--out", str(report_dir)])
    assert result.exit_code == 1 and "use --force" in result.output
    assert (report_dir / "summary.md").read_text() == before


@pytest.mark.notebook
def test_notebook_runs_end_to_end():
    import nbformat
    from nbclient import NotebookClient

    nb = nbformat.read(ROOT / "notebooks" / "01-rupture-analysis.ipynb", as_version=4)
    NotebookClient(nb, timeout=900, kernel_name="python3", resources={"metadata": {"path": str(ROOT)}}).execute()
    outputs = [o for cell in nb.cells if cell.cell_type == "code" for o in cell.get("outputs", [])]
    assert not [o for o in outputs if o.get("output_type") == "error"]
    assert len(outputs) >= 10


@pytest.mark.model
def test_readme_python_api_example_runs(tmp_path):
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    block = re.search(r"<!-- api-example -->\s*```python\n(.*?)```", readme, re.DOTALL)
    assert block, "README has an API example block"
    shutil.copytree(ROOT / "data", tmp_path / "data", ignore=shutil.ignore_patterns("raw"))
    cwd = os.getcwd()
    os.chdir(tmp_path)
    try:
        namespace: dict = {}
        exec(compile(block.group(1), "README.md", "exec"), namespace)
    finally:
        os.chdir(cwd)
    labels = namespace["labels"]
    assert {"rupture_type", "rupture_type_confidence", "rupture_type_evidence"} <= set(labels.columns)
    assert len(labels) == len(namespace["posts"])
