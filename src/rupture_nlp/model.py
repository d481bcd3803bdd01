"""The four-facet model: shared TF-IDF features, one calibrated logistic regression per facet.

Shape: ``normalise -> tfidf (word + char n-grams) -> clf``. The first two steps are fitted once on
all training posts; each facet has its own ``LogisticRegression``. repair_outcome and
therapist_response are fitted on rupture posts only and combined with rupture_type so that the
probabilities form one joint distribution: P(not_applicable) = P(none) and
P(k) = (1 - P(none)) * P(k | rupture). Predicted labels therefore always obey the consistency rule.

Cross-validation on the training data, by the groups the caller gives (whole writer batches or whole
threads; see rupture_nlp.train.cv_groups), gives out-of-fold scores, the data for the calibration (a
temperature per post, fitted by log loss, which keeps every predicted label as it is; see
rupture_nlp.ood) and the crisis threshold, chosen for recall.
"""

from __future__ import annotations

import copy

import numpy as np
import pandas as pd
import scipy.sparse as sp
from joblib import Parallel, delayed
from scipy.special import softmax
from sklearn.base import BaseEstimator, clone
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import f1_score
from sklearn.model_selection import GroupKFold
from sklearn.pipeline import FeatureUnion, Pipeline
from sklearn.utils.validation import check_is_fitted

from rupture_nlp.config import Config, load_config
from rupture_nlp.features import (CompactTfidfVectorizer, SentenceFocus, WordCachedCharVectorizer,
                                  transform_columns)
from rupture_nlp.labels import DEPENDENT, FACETS, NOT_APPLICABLE, label_given, labels_for, labels_present
from rupture_nlp.ood import (WORST_SHARE, DomainReference, covariates, fit_covariate_temperature,
                             inverse_temperature, text_fingerprint)
from rupture_nlp.text import ForumNormaliser

MISSING_CLASS_LOGIT = -30.0
SOURCE_SCALE = 0.3  # the corpus-only copy of feature augmentation (see augment)
# Length is explained away for rupture_type alone: that a post is short says nothing of whether its
# author moved away from or against the therapist, but a short post does tell the therapist's
# response and the outcome less often (``unknown``, ``in_progress``), so there length is signal, and
# risk's crisis threshold is chosen for recall on the corpus's own posts. Binning every facet cost
# therapist_response on forum D on all three seeds (docs/shift.md, section 3).
LENGTH_FACETS = ("rupture_type",)


def template_pipeline() -> Pipeline:
    """The pipeline whose parameter names the config uses (normalise, tfidf__word, tfidf__char, clf)."""
    return Pipeline([
        ("normalise", ForumNormaliser()),
        ("tfidf", FeatureUnion([("word", CompactTfidfVectorizer()),
                                ("char", WordCachedCharVectorizer(analyzer="char_wb")),
                                ("focus", Pipeline([("select", SentenceFocus()), ("tfidf", CompactTfidfVectorizer())]))])),
        ("clf", LogisticRegression()),
    ])


def _fit_lr(base: LogisticRegression, X, y, weight, target=None, scale: float = 1.0, nuisance=None):
    """A fitted copy of ``base``; with ``target`` (a mask of the forum's own posts) the fit uses
    feature augmentation and returns (forum classifier, corpus classifier), see :func:`augment`.
    ``nuisance``: dense columns (length bins) fit beside the features and then folded into the
    intercept at their mean under the fit's sample weights, see :func:`explain_away`."""
    augmented = target is not None and target.any()
    Xa = augment(X, target, scale) if augmented else X
    if nuisance is None:
        clf = clone(base).fit(Xa, y, sample_weight=weight)
    else:
        clf = explain_away(clone(base).fit(sp.hstack([Xa, sp.csr_matrix(nuisance)]).tocsr(), y, sample_weight=weight),
                           Xa.shape[1], np.average(nuisance, axis=0, weights=weight))
    return collapse(clf, X.shape[1], scale) if augmented else clf


def length_bins(texts, edges) -> np.ndarray:
    """One-hot bins of each post's length in words (bin k: edges[k-1] <= words < edges[k])."""
    words = np.array([len(str(t).split()) for t in texts])
    return np.eye(len(edges) + 1)[np.digitize(words, edges)]


def explain_away(clf: LogisticRegression, d: int, mean: np.ndarray) -> LogisticRegression:
    """A classifier fit with nuisance columns after the first ``d`` as one on the first ``d`` alone: the
    nuisance columns' weights at their (weighted) training mean go into the intercept. Fit with the length bins,
    the words carry what the post says whatever its length, and the labels do not follow the corpus's
    lengths (in the corpus 96% of posts of 30 words or fewer are ``none``; on forum C, a chat forum, 73%)."""
    clf.intercept_ = clf.intercept_ + clf.coef_[:, d:] @ mean
    clf.coef_ = np.ascontiguousarray(clf.coef_[:, :d])
    clf.n_features_in_ = d
    return clf


def augment(X, target: np.ndarray, scale: float = 1.0, source_scale: float = SOURCE_SCALE):
    """Feature augmentation for domain adaptation (Daume III, 2007, "Frustratingly easy domain
    adaptation"): each feature has a shared copy, a corpus-only copy (scaled by ``source_scale``) and a
    forum-only copy (scaled by ``scale``). Under L2 the corpus's signal would split evenly between the
    shared and the corpus-only copy, leaving the forum with half of it; a small ``source_scale`` keeps
    it in the shared copy, so only what the corpus says that the forum does not goes to the corpus copy."""
    target = np.asarray(target, dtype=float)
    return sp.hstack([X, sp.diags(source_scale * (1 - target)) @ X, sp.diags(scale * target) @ X]).tocsr()


def collapse(clf: LogisticRegression, d: int, scale: float) -> tuple[LogisticRegression, LogisticRegression]:
    """The augmented classifier as two plain ones on the original features: forum posts are scored
    with shared + forum weights, corpus posts with shared + corpus weights."""
    out = []
    for block in (slice(2 * d, 3 * d), slice(d, 2 * d)):
        part = copy.deepcopy(clf)
        part.coef_ = clf.coef_[:, :d] + (scale if block.start == 2 * d else SOURCE_SCALE) * clf.coef_[:, block]
        part.n_features_in_ = d
        out.append(part)
    return out[0], out[1]


def _aligned_logits(clf: LogisticRegression, X, classes: tuple[str, ...]) -> np.ndarray:
    """Decision values in the facet's label order; a class the fold never saw gets a very low logit."""
    raw = clf.decision_function(X)
    return aligned_from_raw(clf, raw[:, None] if raw.ndim == 1 else raw, classes)


def aligned_from_raw(clf: LogisticRegression, raw: np.ndarray, classes: tuple[str, ...]) -> np.ndarray:
    """``X @ coef.T + intercept`` (one column per row of ``coef_``) in the facet's label order: with
    two classes seen, sklearn's one column is the logit of the second; a class not seen gets a very
    low logit."""
    if raw.shape[1] == 1:
        raw = np.column_stack([-raw[:, 0] / 2, raw[:, 0] / 2])
    out = np.full((raw.shape[0], len(classes)), MISSING_CLASS_LOGIT)
    for j, label in enumerate(clf.classes_):
        out[:, classes.index(label)] = raw[:, j]
    return out


def stacked_coefficients(classifiers: dict) -> tuple[np.ndarray, np.ndarray]:
    """Every facet's coefficients side by side (features x all classes, C order) and where each
    facet's columns start: one sparse product scores all facets (the same sums, in the same order,
    as one ``decision_function`` per facet)."""
    weights = np.ascontiguousarray(np.vstack([classifiers[f].coef_ for f in FACETS]).T)
    return weights, np.cumsum([0] + [classifiers[f].coef_.shape[0] for f in FACETS])


class RuptureModel(BaseEstimator):
    """Labels posts on the four facets of the label specification.

    Parameters
    ----------
    config : Config or None
        Hyperparameters; None uses the default shipped in the package.
    cross_validate : bool
        Run grouped cross-validation while fitting (out-of-fold scores, calibration and the crisis
        threshold). Off only for quick fits such as learning curves.
    n_jobs : int
        Processes for the cross-validation fits.
    """

    def __init__(self, config: Config | None = None, cross_validate: bool = True, n_jobs: int = 1):
        self.config = config
        self.cross_validate = cross_validate
        self.n_jobs = n_jobs

    # ---------------------------------------------------------------- fitting
    def fit(self, texts, labels: pd.DataFrame, groups=None, sample_weight=None, domain=None, unlabelled=None):
        """``domain``: a mask of the posts from the user's own forum (annotation sheets); with
        ``[adaptation] method = "augment"`` the model is adapted to that forum by feature augmentation.
        ``unlabelled``: texts of the forum's own unlabelled posts; the features (vocabularies, idf) are
        fit on them too, so that words of the forum the corpus lacks are features a labelled sheet can
        weight. They are never training rows."""
        cfg = self.config if self.config is not None else load_config()
        texts = [str(t) for t in texts]
        labels = labels.reset_index(drop=True)
        n = len(texts)
        grouped = groups is not None
        groups = np.arange(n) if groups is None else np.asarray(groups)
        weight = np.ones(n) if sample_weight is None else np.asarray(sample_weight, dtype=float)
        self.config_ = cfg
        self.features_ = Pipeline(template_pipeline().steps[:-1]).set_params(**cfg.shared_params())
        if unlabelled is None or not len(unlabelled):
            X = self.features_.fit_transform(texts)
        else:
            X = self.features_.fit(texts + [str(t) for t in unlabelled]).transform(texts)
        self.domain_ = DomainReference(random_state=cfg.seed, **cfg.ood_params()).fit(X)
        self.corpus_fingerprint_ = text_fingerprint(texts)  # for `rupture-nlp shift`
        embedding = self.domain_.embedding_
        rupture = labels["rupture_type"].ne("none").to_numpy()
        # A row without a label for a facet (e.g. risk left blank on an annotation sheet) is not
        # used for that facet; dependent facets learn from rupture posts only.
        given = {f: label_given(labels[f]) for f in FACETS}
        fit_rows = {f: given[f] & (rupture if f in DEPENDENT else True) for f in FACETS}
        base = {f: LogisticRegression(random_state=cfg.seed, **cfg.clf_params(f)) for f in FACETS}
        y = {f: labels[f].to_numpy() for f in FACETS}

        splits = []
        if self.cross_validate:
            k = min(cfg.cv_folds, len(np.unique(groups)))
            splits = list(GroupKFold(n_splits=k, shuffle=True, random_state=cfg.seed).split(X, groups=groups))
        jobs = [(f, None, fit_rows[f]) for f in FACETS]
        for i, (train, _) in enumerate(splits):
            for f in FACETS:
                mask = np.zeros(n, bool)
                mask[train] = True
                jobs.append((f, i, mask & fit_rows[f]))
        has_sheet = domain is not None and np.asarray(domain).any()
        target = None
        if has_sheet and cfg.adaptation.get("method", "weight") == "augment":
            target = np.asarray(domain, dtype=bool)
        scale = float(cfg.adaptation.get("target_scale", 1.0))
        # with a sheet of the forum's own posts, length is explained away (see explain_away)
        edges = cfg.adaptation.get("length_bins", [])
        nuisance = length_bins(texts, edges) if has_sheet and edges else None
        fitted = Parallel(n_jobs=self.n_jobs)(
            delayed(_fit_lr)(base[f], X[m], y[f][m], weight[m], None if target is None else target[m], scale,
                             nuisance[m] if nuisance is not None and f in LENGTH_FACETS else None)
            for f, _, m in jobs)
        self.adapted_ = target is not None
        self.length_bins_ = list(edges) if nuisance is not None else []

        self.classifiers_ = {}
        self.__dict__.pop("_stacked", None)  # the stacked coefficients of an earlier fit
        self.classes_ = {f: labels_for(f, with_na=False) for f in FACETS}
        self.temperature_ = {f: 1.0 for f in FACETS}
        self.calibration_params_ = {f: np.zeros(3) for f in FACETS}
        self.covariate_center_ = np.zeros(2)
        self.crisis_threshold_ = 0.5
        self.oof_proba_ = None
        self.cv_scores_ = {}
        oof_logits = {f: np.zeros((n, len(self.classes_[f]))) for f in FACETS}
        for (f, fold, _), clf in zip(jobs, fitted):
            forum_clf, corpus_clf = clf if isinstance(clf, tuple) else (clf, clf)
            if fold is None:
                self.classifiers_[f] = forum_clf  # an adapted model labels the forum's posts
            else:
                test = splits[fold][1]
                oof_logits[f][test] = _aligned_logits(corpus_clf, X[test], self.classes_[f])
                if forum_clf is not corpus_clf and target[test].any():
                    mine = test[target[test]]
                    oof_logits[f][mine] = _aligned_logits(forum_clf, X[mine], self.classes_[f])
        if splits:
            # Distance of each held-out post to the posts its fold trained on: with folds of whole
            # writer batches, what a post of a new writer (or forum) looks like.
            oof_distance = np.zeros(n)
            for train, test in splits:
                oof_distance[test] = self.domain_.distance(embedding=embedding[test], among=embedding[train])
            self.domain_.set_reference(oof_distance)
            nnz = X.getnnz(axis=1)
            self.covariate_center_ = np.median(covariates(oof_distance, nnz, np.zeros(2)), axis=0)
            z = covariates(oof_distance, nnz, self.covariate_center_)
            method = cfg.calibration.get("method", "temperature")
            use = {"covariate_temperature": (True, True), "temperature": (False, False)}.get(method)
            # the worst groups of the folds (writer batches, or threads); without groups, the mean
            worst = grouped and cfg.calibration.get("objective", "mean") == "worst_batches"
            if use is not None:
                self.calibration_params_ = fit_calibration(oof_logits, y, fit_rows, self.classes_, z, use,
                                                           groups if worst else None)
                self.temperature_ = {f: float(np.exp(p[0])) for f, p in self.calibration_params_.items()}
            self.oof_distance_ = oof_distance
            self.oof_logits_ = oof_logits
            self.oof_proba_ = self._joint({f: self._conditional(f, oof_logits[f], z=z) for f in FACETS})
            self.crisis_threshold_ = choose_crisis_threshold(
                self.oof_proba_["risk"]["crisis"].to_numpy()[given["risk"]], y["risk"][given["risk"]] == "crisis",
                cfg.risk.get("crisis_recall_target", 0.95))
            oof_labels = self.labels_from_proba(self.oof_proba_)
            self.oof_mean_confidence_ = {f: float(self.oof_proba_[f].to_numpy()[given[f]].max(axis=1).mean())
                                         for f in FACETS}
            for f in FACETS:
                scored = given[f]
                gold, pred = y[f][scored], oof_labels[f].to_numpy()[scored]
                self.cv_scores_[f] = {  # averaged over the labels present, as `evaluate` does
                    "macro_f1": float(f1_score(gold, pred, average="macro", labels=labels_present(f, gold, pred),
                                               zero_division=0)),
                    "folds": len(splits)}
        return self

    # ---------------------------------------------------------- persistence
    def __getstate__(self):
        """Plain arrays instead of DataFrames, so that skops can store the model without pickle (a
        DataFrame's internals are not a type skops knows); the manifest is added back on loading."""
        state = dict(super().__getstate__())
        state.pop("manifest_", None)
        state.pop("_stacked", None)
        if isinstance(state.get("oof_proba_"), dict):
            state["oof_proba_"] = {f: {"columns": [str(c) for c in p.columns], "values": p.to_numpy()}
                                   for f, p in state["oof_proba_"].items()}
        return state

    def __setstate__(self, state):
        state = dict(state)
        proba = state.get("oof_proba_")
        if isinstance(proba, dict):
            state["oof_proba_"] = {f: pd.DataFrame(p["values"], columns=p["columns"]) if isinstance(p, dict) else p
                                   for f, p in proba.items()}
        super().__setstate__(state)

    # ------------------------------------------------------------- prediction
    def transform(self, texts, columns: bool = False) -> sp.spmatrix:
        """The features of ``texts`` (CSR). ``columns=True``: the same matrix as CSC, built column-major,
        for scoring only (products with the dense weights are three times faster; see
        :func:`rupture_nlp.features.weight_counts`); rows of a CSC matrix are slow to take."""
        check_is_fitted(self, "classifiers_")
        texts = [str(t) for t in texts]
        return transform_columns(self.features_, texts) if columns else self.features_.transform(texts)

    def _conditional(self, facet: str, logits: np.ndarray, calibrated: bool = True,
                     z: np.ndarray | None = None) -> np.ndarray:
        if not calibrated:
            return softmax(logits, axis=1)
        if z is None:
            return softmax(self.temperature_[facet] * logits, axis=1)
        beta = inverse_temperature(self.calibration_params_[facet], z)
        return softmax(beta[:, None] * logits, axis=1)

    def _joint(self, conditional: dict[str, np.ndarray]) -> dict[str, pd.DataFrame]:
        out = {}
        p_none = None
        for f in FACETS:
            frame = pd.DataFrame(conditional[f], columns=list(self.classes_[f]))
            if f == "rupture_type":
                p_none = frame["none"].to_numpy()
            if f in DEPENDENT:
                frame = frame.mul(1 - p_none, axis=0)
                frame[NOT_APPLICABLE] = p_none
            out[f] = frame[list(FACETS[f])]
        return out

    def logits(self, X) -> dict[str, np.ndarray]:
        if "_stacked" not in self.__dict__:
            self._stacked = stacked_coefficients(self.classifiers_)
        weights, cols = self._stacked
        raw = np.asarray(X @ weights)
        return {f: aligned_from_raw(self.classifiers_[f], raw[:, cols[k]:cols[k + 1]] + self.classifiers_[f].intercept_,
                                    self.classes_[f]) for k, f in enumerate(FACETS)}

    def distance(self, X) -> np.ndarray:
        """Each post's distance to the training posts (see :mod:`rupture_nlp.ood`)."""
        check_is_fitted(self, "domain_")
        return self.domain_.distance(X)

    def ood_score(self, distance: np.ndarray) -> np.ndarray:
        """Percentile of each distance among the corpus's held-out posts (0.5 typical, near 1 far off)."""
        return self.domain_.score(distance)

    def proba_from_features(self, X, calibrated: bool = True, distance: np.ndarray | None = None
                            ) -> dict[str, pd.DataFrame]:
        """Joint probabilities; calibrated ones are flattened for posts far from the corpus or thin on text."""
        logits = self.logits(X)
        z = None
        if calibrated:
            distance = self.distance(X) if distance is None else distance
            z = covariates(distance, X.getnnz(axis=1), self.covariate_center_)
        return self._joint({f: self._conditional(f, logits[f], calibrated, z) for f in FACETS})

    def predict_proba(self, texts, calibrated: bool = True) -> dict[str, pd.DataFrame]:
        """Joint probabilities per facet, one column per label in the specification's order."""
        return self.proba_from_features(self.transform(texts, columns=True), calibrated)

    def labels_from_proba(self, proba: dict[str, pd.DataFrame]) -> pd.DataFrame:
        """Labels that obey the consistency rule; crisis wins whenever P(crisis) reaches its threshold."""
        rupture = proba["rupture_type"].idxmax(axis=1)
        out = {"rupture_type": rupture}
        for f in DEPENDENT:
            best = proba[f].drop(columns=NOT_APPLICABLE).idxmax(axis=1)
            out[f] = best.where(rupture.ne("none"), NOT_APPLICABLE)
        risk = proba["risk"]
        out["risk"] = risk.idxmax(axis=1).where(risk["crisis"] < self.crisis_threshold_, "crisis")
        return pd.DataFrame(out)[list(FACETS)]

    def predict(self, texts) -> pd.DataFrame:
        return self.labels_from_proba(self.predict_proba(texts))

    def feature_names(self) -> np.ndarray:
        check_is_fitted(self, "classifiers_")
        return self.features_.named_steps["tfidf"].get_feature_names_out()


def fit_calibration(logits: dict[str, np.ndarray], y: dict[str, np.ndarray], rows: dict[str, np.ndarray],
                    classes: dict[str, tuple[str, ...]], z: np.ndarray, use: tuple[bool, bool] = (True, True),
                    groups: np.ndarray | None = None, worst_share: float = WORST_SHARE) -> dict[str, np.ndarray]:
    """Per facet, the covariate temperature's (a, b_distance, b_length), fit on the out-of-fold
    ``logits`` of the posts in ``rows``. With ``groups`` (writer batches), to the worst batches (see
    :func:`rupture_nlp.ood.fit_covariate_temperature`), except risk, which keeps the mean fit: its
    crisis threshold is chosen for recall on these same posts."""
    out = {}
    for f in FACETS:
        r = rows[f]
        y_index = np.array([classes[f].index(v) for v in y[f][r]])
        out[f] = fit_covariate_temperature(logits[f][r], y_index, z[r], use,
                                           batch=None if groups is None or f == "risk" else groups[r],
                                           worst_share=worst_share)
    return out


def choose_crisis_threshold(p_crisis: np.ndarray, is_crisis: np.ndarray, target: float) -> float:
    """Highest threshold on P(crisis) whose recall of true crises reaches ``target``."""
    scores = np.sort(p_crisis[is_crisis])[::-1]
    if len(scores) == 0:
        return 0.5
    needed = int(np.ceil(target * len(scores)))
    return float(min(0.5, scores[needed - 1]))
