"""Model files that cannot run code (skops with a trusted-type list), legacy pickles, card and verify."""

from __future__ import annotations

import datetime
import json
import shutil
import zipfile

import joblib
import numpy as np
import pandas as pd
import pytest
import skops.io as sio
from click.testing import CliRunner

from rupture_nlp.cli import main
from rupture_nlp.data import sha256_file
from rupture_nlp.labels import FACETS
from rupture_nlp.persist import ModelError, load_model
from rupture_nlp.trust import TRUST_PICKLE_ENV, is_trusted

pytestmark = pytest.mark.model

TEXTS = ["I skipped my session and told her I was sick. I wasn't.",
         "I told my T I was furious she forgot our appointment. She apologised.",
         "Does anyone know how long waiting lists are for CBT?", "I can't do this anymore. This is goodbye."]


def run(*args, input=None):
    return CliRunner().invoke(main, [str(a) for a in args], input=input, catch_exceptions=False)


class Payload:
    """A foreign type: building it would write a marker file."""

    def __init__(self, marker):
        self.marker = marker

    def __setstate__(self, state):
        open(state["marker"], "w").close()
        self.__dict__.update(state)


def _rehash(folder, types=None):
    manifest = json.loads((folder / "manifest.json").read_text())
    manifest["artifact_sha256"] = sha256_file(folder / manifest["artifact"])
    if types is not None:
        manifest["trusted_types"] = sorted(set(manifest["trusted_types"]) | set(types))
    (folder / "manifest.json").write_text(json.dumps(manifest))


def legacy_folder(model_dir, tmp_path):
    """The same model as a folder of format 1: a joblib pickle."""
    old = tmp_path / "legacy"
    shutil.copytree(model_dir, old)
    model = load_model(model_dir)
    joblib.dump(model, old / "model.joblib", compress=3)
    (old / "model.skops").unlink()
    manifest = json.loads((old / "manifest.json").read_text())
    manifest.update(format_version=1, artifact="model.joblib", artifact_sha256=sha256_file(old / "model.joblib"))
    manifest.pop("trusted_types")
    (old / "manifest.json").write_text(json.dumps(manifest))
    return old


def test_skops_round_trip_predicts_exactly_as_the_fitted_model(small_corpus, tmp_path):
    from rupture_nlp.config import load_config
    from rupture_nlp.data import read_corpus
    from rupture_nlp.model import RuptureModel
    from rupture_nlp.persist import save_model

    train = read_corpus(small_corpus)
    cfg = load_config().with_overrides(cv_folds=3)
    cfg = cfg.with_overrides(pipeline={**cfg.pipeline, "tfidf__word__min_df": 1, "tfidf__char__min_df": 1})
    fitted = RuptureModel(cfg).fit(train["text"], train[list(FACETS)])
    save_model(fitted, tmp_path / "m", {"training_data": {}})
    loaded = load_model(tmp_path / "m")
    before, after = fitted.predict_proba(TEXTS), loaded.predict_proba(TEXTS)
    for facet in FACETS:
        assert np.array_equal(before[facet].to_numpy(), after[facet].to_numpy()), facet
    assert fitted.features_.named_steps["tfidf"].transformer_list[0][1].vocabulary_ == \
        loaded.features_.named_steps["tfidf"].transformer_list[0][1].vocabulary_
    for facet in FACETS:
        pd.testing.assert_frame_equal(fitted.oof_proba_[facet], loaded.oof_proba_[facet])


def test_skops_and_joblib_give_identical_predictions(small_model_dir, tmp_path, monkeypatch):
    monkeypatch.delenv(TRUST_PICKLE_ENV, raising=False)
    old = legacy_folder(small_model_dir, tmp_path)
    a = load_model(small_model_dir).predict_proba(TEXTS)
    b = load_model(old, trust_pickle=True).predict_proba(TEXTS)
    for facet in FACETS:
        assert np.array_equal(a[facet].to_numpy(), b[facet].to_numpy()), facet
    assert (small_model_dir / "model.skops").is_file() and not (small_model_dir / "model.joblib").exists()


def test_a_pickle_needs_trust_pickle_and_says_why(small_model_dir, tmp_path, monkeypatch):
    monkeypatch.setenv(TRUST_PICKLE_ENV, "0")  # restored after the test (the option sets it)
    old = legacy_folder(small_model_dir, tmp_path)
    with pytest.raises(ModelError, match="can run any code.*--trust-pickle"):
        load_model(old)
    result = run("predict", "-m", old, "-", input="I skipped my session\n")
    assert result.exit_code == 1 and "--trust-pickle" in result.output and "pickle" in result.output
    assert len(result.output.strip().splitlines()) == 1
    result = run("predict", "-m", old, "--trust-pickle", "-", input="I skipped my session\n")
    assert result.exit_code == 0 and json.loads(result.stdout)["rupture_type"] in FACETS["rupture_type"]
    monkeypatch.setenv(TRUST_PICKLE_ENV, "1")
    assert load_model(old) is not None


def test_a_foreign_type_is_refused_and_nothing_runs(small_model_dir, tmp_path):
    marker = tmp_path / "ran"
    sio.dump({"model": Payload(str(marker))}, tmp_path / "probe.skops")
    assert sio.get_untrusted_types(file=tmp_path / "probe.skops") == ["tests.test_trust.Payload"]
    bad = tmp_path / "bad"
    shutil.copytree(small_model_dir, bad)
    shutil.copy(tmp_path / "probe.skops", bad / "model.skops")
    _rehash(bad, ["tests.test_trust.Payload"])  # whoever wrote the file also wrote the manifest
    with pytest.raises(ModelError, match="not trusted: tests.test_trust.Payload; nothing in it was loaded"):
        load_model(bad)
    result = run("predict", "-m", bad, "-", input="hello there\n")
    assert result.exit_code == 1 and "tests.test_trust.Payload" in result.output
    assert not marker.exists()
    sio.load(tmp_path / "probe.skops", trusted=["tests.test_trust.Payload"])  # the probe is live: trusting runs it
    assert marker.exists()


def test_a_model_too_big_for_the_memory_here_gets_one_line_and_is_still_hash_checked(small_model_dir, tmp_path,
                                                                                      monkeypatch):
    import rupture_nlp.persist as persist

    folder = tmp_path / "m"
    shutil.copytree(small_model_dir, folder)
    size = (folder / "model.skops").stat().st_size
    monkeypatch.setattr(persist, "available_memory", lambda: size - 1)  # as if 1 byte short
    with pytest.raises(ModelError, match="does not fit in the memory free here"):
        load_model(folder)
    result = run("predict", "-m", folder, "-", input="I skipped my session\n")
    assert result.exit_code == 1 and "cannot be loaded here" in result.output
    assert len(result.output.strip().splitlines()) == 1
    with open(folder / "model.skops", "ab") as fh:  # a damaged file still gets the hash's answer
        fh.write(b"x")
    with pytest.raises(ModelError, match="does not match the sha256"):
        load_model(folder)
    monkeypatch.setattr(persist, "available_memory", lambda: size + 10)
    with pytest.raises(ModelError, match="does not match the sha256"):
        load_model(folder)
    (folder / "model.skops").write_bytes((small_model_dir / "model.skops").read_bytes())
    assert load_model(folder) is not None  # enough memory: loads as before
    import skops.io as skops_io

    def no_room(*args, **kwargs):
        raise MemoryError
    monkeypatch.setattr(skops_io, "loads", no_room)  # the file fits but what it builds does not
    with pytest.raises(ModelError, match="does not fit in the memory free here"):
        load_model(folder)


def _crafted_call(path, module, name, argument):
    """A skops file whose schema calls ``module.name(argument)`` when built (as an attacker would write it)."""
    sio.dump({"a": datetime.timedelta(0)}, path)
    with zipfile.ZipFile(path) as z:
        files = {n: z.read(n) for n in z.namelist()}
    schema = json.loads(files["schema.json"])
    node = schema["content"]["a"]
    node.update({"__class__": name, "__module__": module, "__loader__": "ConstructorFromReduceNode"})
    node["content"]["content"] = [{"__class__": "str", "__module__": "builtins", "__loader__": "JsonNode",
                                   "content": json.dumps(argument), "is_json": True, "__id__": 1}]
    files["schema.json"] = json.dumps(schema).encode()
    with zipfile.ZipFile(path, "w") as z:
        for n, data in files.items():
            z.writestr(n, data)


@pytest.mark.parametrize("module, name", [("os", "system"), ("builtins", "exec"), ("numpy", "memmap")])
def test_a_crafted_call_is_refused_before_anything_is_built(small_model_dir, tmp_path, module, name):
    marker = tmp_path / "ran"
    bad = tmp_path / "bad"
    shutil.copytree(small_model_dir, bad)
    argument = {"system": f"touch {marker}", "exec": f"open({str(marker)!r}, 'w')", "memmap": str(marker)}[name]
    _crafted_call(bad / "model.skops", module, name, argument)
    _rehash(bad, [f"{module}.{name}"])
    with pytest.raises(ModelError, match=f"not trusted: {module}.{name}"):
        load_model(bad)
    result = run("verify", bad)
    assert result.exit_code == 1 and f"{module}.{name}" in result.output
    assert not marker.exists()


def test_trusted_types_are_classes_of_our_packages_only():
    assert is_trusted("rupture_nlp.model.RuptureModel") and is_trusted("sklearn.linear_model.LogisticRegression")
    assert is_trusted("numpy.ndarray") and is_trusted("builtins.tuple")
    for name in ("rupture_nlp.persist.load_model", "builtins.eval", "numpy.memmap", "datetime.timedelta",
                 "collections.OrderedDict", "sklearn.nothing_here.X", "os.system"):
        assert not is_trusted(name), name


def test_verify_and_card_on_a_model(small_model_dir, tmp_path):
    result = run("verify", small_model_dir)
    assert result.exit_code == 0, result.output
    assert "ok    artifact sha256" in result.output and "ok    trusted types" in result.output
    assert "the model was not loaded" in result.stderr
    report = json.loads(run("verify", small_model_dir, "--format", "json").stdout)
    assert report["ok"] and {c["check"] for c in report["checks"]} >= {"artifact sha256", "version scikit-learn",
                                                                        "trusted types", "model card"}
    tampered = tmp_path / "tampered"
    shutil.copytree(small_model_dir, tampered)
    with open(tampered / "model.skops", "ab") as fh:
        fh.write(b"x")
    result = run("verify", tampered)
    assert result.exit_code == 1 and "FAIL  artifact sha256" in result.output and "1 check(s) failed" in result.output
    text = run("card", small_model_dir).output
    assert text == (small_model_dir / "README.md").read_text()
    for phrase in ("not diagnosis", "sole basis for any action on a person", "data/README.md", "0.62", "0.57",
                   "0.36", "sample", "annotate", "train --extra", "sha256", "scikit-learn", "Not measured"):
        assert phrase.lower() in text.lower(), phrase


def test_evaluate_record_puts_the_metrics_in_the_card(small_model_dir, small_corpus, tmp_path):
    folder = tmp_path / "m"
    shutil.copytree(small_model_dir, folder)
    result = run("evaluate", "-m", folder, "--data", small_corpus, "--bootstrap", 100, "--record")
    assert result.exit_code == 0, result.output
    card = (folder / "README.md").read_text()
    assert f"| {small_corpus} | test |" in card and "[" in card.split(f"| {small_corpus} | test |")[1].splitlines()[0]
    assert run("verify", folder).exit_code == 0
