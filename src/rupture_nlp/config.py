"""Hyperparameters: one TOML file, read with the standard library and checked against get_params()."""

from __future__ import annotations

import copy
import tomllib
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

from rupture_nlp.labels import FACETS

SECTIONS = {"seed", "cv_folds", "pipeline", "facets", "calibration", "risk", "triage", "ood", "adaptation"}
ADAPTATION_METHODS = {"augment", "weight"}
CALIBRATION_METHODS = {"covariate_temperature", "temperature", "none"}
CALIBRATION_KEYS = {"method", "folds", "objective"}
CALIBRATION_OBJECTIVES = {"mean", "worst_batches"}
FOLD_UNITS = {"writer_batch", "thread"}
OOD_KEYS = {"n_components", "k"}


class ConfigError(ValueError):
    """The configuration file is missing, unreadable or holds an unknown key or value."""


@dataclass(frozen=True)
class Config:
    seed: int = 13
    cv_folds: int = 5
    pipeline: dict[str, Any] = field(default_factory=dict)
    facets: dict[str, dict[str, Any]] = field(default_factory=dict)
    calibration: dict[str, Any] = field(default_factory=dict)
    risk: dict[str, Any] = field(default_factory=dict)
    triage: dict[str, Any] = field(default_factory=dict)
    ood: dict[str, Any] = field(default_factory=dict)
    adaptation: dict[str, Any] = field(default_factory=dict)
    source: str = "default"

    def params_for(self, facet: str) -> dict[str, Any]:
        """Pipeline parameters for one facet: the shared ones, then the facet's clf overrides."""
        params = dict(self.pipeline)
        params.update(self.facets.get(facet, {}))
        return {k: tuple(v) if isinstance(v, list) else v for k, v in params.items()}

    def shared_params(self) -> dict[str, Any]:
        """Parameters of the shared steps; those of a step set to "drop" are left out, and a step set to
        "on" keeps the pipeline's own estimator (so a TOML file can switch an optional block on)."""
        params = {k: v for k, v in self.params_for("rupture_type").items()
                  if not k.startswith("clf__") and v != "on"}
        dropped = [k + "__" for k, v in params.items() if v == "drop"]
        return {k: v for k, v in params.items() if not any(k.startswith(d) for d in dropped)}

    def clf_params(self, facet: str) -> dict[str, Any]:
        return {k[len("clf__"):]: v for k, v in self.params_for(facet).items() if k.startswith("clf__")}

    def ood_params(self) -> dict[str, Any]:
        return {k: int(v) for k, v in self.ood.items() if k in OOD_KEYS}

    def to_dict(self) -> dict[str, Any]:
        return {"seed": self.seed, "cv_folds": self.cv_folds, "pipeline": self.pipeline,
                "facets": self.facets, "calibration": self.calibration, "risk": self.risk,
                "triage": self.triage, "ood": self.ood, "adaptation": self.adaptation,
                "source": self.source}

    def with_overrides(self, **changes) -> Config:
        data = copy.deepcopy(self.to_dict())
        data.update(changes)
        return Config(**data)


def default_config_text() -> str:
    return resources.files("rupture_nlp").joinpath("default_config.toml").read_text(encoding="utf-8")


def merge(base: dict[str, Any], override: dict[str, Any]) -> dict[str, Any]:
    """``override`` on top of ``base``, table by table (lists and values are replaced whole)."""
    out = copy.deepcopy(base)
    for key, value in override.items():
        out[key] = merge(out[key], value) if isinstance(value, dict) and isinstance(out.get(key), dict) else value
    return out


def load_config(path: str | Path | None = None) -> Config:
    """Read and validate a config; ``None`` reads the default shipped in the package.

    A user's file needs only the keys it changes: it is laid over the default, table by table.
    """
    default = tomllib.loads(default_config_text())
    if path is None:
        raw, source = default, "default"
    else:
        path = Path(path)
        if not path.is_file():
            raise ConfigError(f"config file not found: {path}")
        try:
            raw = tomllib.loads(path.read_text(encoding="utf-8"))
        except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
            raise ConfigError(f"config {path} is not valid TOML: {exc}") from None
        source = str(path)
        raw = merge(default, raw)
    return config_from_dict(raw, source=source)


def config_from_dict(raw: dict[str, Any], source: str = "dict") -> Config:
    unknown = set(raw) - SECTIONS - {"source"}
    if unknown:
        raise ConfigError(f"unknown config key(s) {sorted(unknown)} in {source}; allowed: {sorted(SECTIONS)}")
    cfg = Config(
        seed=raw.get("seed", 13), cv_folds=raw.get("cv_folds", 5), pipeline=dict(raw.get("pipeline", {})),
        facets={k: dict(v) for k, v in raw.get("facets", {}).items()},
        calibration=dict(raw.get("calibration", {"method": "temperature"})),
        risk=dict(raw.get("risk", {"crisis_recall_target": 0.95})),
        triage=dict(raw.get("triage", {})), ood=dict(raw.get("ood", {})),
        adaptation=dict(raw.get("adaptation", {})), source=source)
    validate(cfg)
    return cfg


def _number(value) -> bool:
    """An int or a float, not a bool or text (TOML's true is an int to Python)."""
    return isinstance(value, int | float) and not isinstance(value, bool)


def validate(cfg: Config) -> None:
    from rupture_nlp.model import template_pipeline

    if not isinstance(cfg.seed, int) or not isinstance(cfg.cv_folds, int) or cfg.cv_folds < 2:
        raise ConfigError("seed must be an integer and cv_folds an integer of at least 2")
    allowed = set(template_pipeline().get_params(deep=True))
    for key in cfg.pipeline:
        if key not in allowed:
            raise ConfigError(f"unknown config key [pipeline] {key!r}: not a parameter of the pipeline "
                              f"(examples: tfidf__word__ngram_range, clf__C)")
    for facet, params in cfg.facets.items():
        if facet not in FACETS:
            raise ConfigError(f"unknown facet [facets.{facet}]; facets are {', '.join(FACETS)}")
        for key in params:
            if not key.startswith("clf__") or key not in allowed:
                raise ConfigError(f"unknown config key [facets.{facet}] {key!r}: a facet may only set "
                                  f"clf__* parameters of LogisticRegression")
    method = cfg.calibration.get("method", "temperature")
    if method not in CALIBRATION_METHODS or set(cfg.calibration) - CALIBRATION_KEYS:
        raise ConfigError(f"[calibration] takes method = one of {sorted(CALIBRATION_METHODS)}, "
                          f"folds = one of {sorted(FOLD_UNITS)} and objective = one of {sorted(CALIBRATION_OBJECTIVES)}")
    if cfg.calibration.get("folds", "writer_batch") not in FOLD_UNITS:
        raise ConfigError(f"[calibration] folds must be one of {sorted(FOLD_UNITS)}")
    if cfg.calibration.get("objective", "mean") not in CALIBRATION_OBJECTIVES:
        raise ConfigError(f"[calibration] objective must be one of {sorted(CALIBRATION_OBJECTIVES)}")
    bins = cfg.adaptation.get("length_bins", [])
    if (set(cfg.adaptation) - {"method", "target_scale", "length_bins"}
            or cfg.adaptation.get("method", "weight") not in ADAPTATION_METHODS
            or not _number(cfg.adaptation.get("target_scale", 1.0)) or not cfg.adaptation.get("target_scale", 1.0) > 0
            or not isinstance(bins, list) or not all(type(b) is int and b > 0 for b in bins)
            or bins != sorted(set(bins))):
        raise ConfigError(f"[adaptation] takes method = one of {sorted(ADAPTATION_METHODS)}, "
                          f"target_scale, a positive number, and length_bins, increasing whole numbers of words")
    if set(cfg.ood) - OOD_KEYS or not all(isinstance(v, int) and v >= 2 for v in cfg.ood.values()):
        raise ConfigError(f"[ood] takes {sorted(OOD_KEYS)}, whole numbers of at least 2")
    target = cfg.risk.get("crisis_recall_target", 0.95)
    if set(cfg.risk) - {"crisis_recall_target"} or not _number(target) or not 0 < target <= 1:
        raise ConfigError("[risk] takes crisis_recall_target, a number in (0, 1]")
    triage_keys = {"confidence_threshold", "confident_accuracy_target", "crisis_phrases", "ood_limit"}
    if set(cfg.triage) - triage_keys:
        raise ConfigError(f"unknown config key(s) in [triage]: {sorted(set(cfg.triage) - triage_keys)}")
    threshold = cfg.triage.get("confidence_threshold", "auto")
    if threshold != "auto" and not (_number(threshold) and 0 <= threshold <= 1):
        raise ConfigError('[triage] confidence_threshold must be "auto" or a number in [0, 1]')
    for key in ("confident_accuracy_target", "ood_limit"):
        value = cfg.triage.get(key, 1.0)
        if not (_number(value) and 0 < value <= 1):
            raise ConfigError(f"[triage] {key} must be a number in (0, 1]")
    phrases = cfg.triage.get("crisis_phrases", [])
    if not (isinstance(phrases, list) and all(isinstance(x, str) and x.strip() for x in phrases)):
        raise ConfigError("[triage] crisis_phrases must be a list of phrases (text)")
