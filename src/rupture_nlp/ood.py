"""How far a post is from the training corpus, and confidence that shrinks with that distance.

``DomainReference`` embeds posts in a small latent space of the model's own TF-IDF features (LSA:
``TruncatedSVD`` of the training matrix, rows normalised) and measures a post's **distance** as
one minus the mean cosine similarity to its ``k`` nearest training posts. The **OOD score** is that
distance as a percentile of the distances of the corpus's own held-out posts (posts of writer
batches the fold never trained on, see ``RuptureModel.fit``): 0.5 is as far as a new writer of our
corpus; 0.99 is farther than 99 in 100 of them.

``fit_covariate_temperature`` fits, per facet, an inverse temperature that depends on the post,
beta = exp(a + b_d (d - d0) + b_n (log n - n0)), with d the distance (b_d <= 0) and n the number of
non-zero features of the post (how much text there is to go on), by log loss on out-of-fold logits
of those held-out batches: the farther or the thinner a post, the flatter its probabilities, as far
as the held-out data says so. With both weights 0 it is plain temperature scaling (Guo et al., 2017).
With ``batch`` the log loss is that of the held-out writer batches the model does worst on
(``[calibration] objective = "worst_batches"``): a new forum is not an average writer of the corpus.
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp
from scipy.optimize import minimize
from scipy.special import log_softmax
from sklearn.base import BaseEstimator
from sklearn.decomposition import TruncatedSVD
from sklearn.feature_extraction.text import HashingVectorizer
from sklearn.random_projection import SparseRandomProjection
from sklearn.preprocessing import normalize
from sklearn.utils.validation import check_is_fitted


FINGERPRINT_DIM = 256
WORST_SHARE = 1 / 3  # of the held-out posts, for the worst-batches calibration objective


def text_fingerprint(texts) -> np.ndarray:
    """A representation of posts fitted on no data (so corpus and forum posts are treated alike):
    hashed word 1-2-grams and character 3-5-grams, projected to 256 dimensions by a fixed sparse
    random projection, beside the style measures of :mod:`rupture_nlp.style`. The domain classifier
    of ``rupture-nlp shift`` works on it; a model keeps its training posts' fingerprints."""
    from rupture_nlp.style import post_measures

    texts = [str(t) for t in texts]
    words = HashingVectorizer(ngram_range=(1, 2), n_features=2**18, alternate_sign=False).transform(texts)
    chars = HashingVectorizer(analyzer="char_wb", ngram_range=(3, 5), n_features=2**18,
                              alternate_sign=False).transform(texts)
    projection = SparseRandomProjection(FINGERPRINT_DIM, dense_output=True, random_state=0).fit(words[:1])
    dense = np.hstack([projection.transform(words), projection.transform(chars)])
    return np.hstack([dense, post_measures(texts).to_numpy()]).astype(np.float32)


class DomainReference(BaseEstimator):
    """Nearest-neighbour distance of posts to the training posts in an LSA space of the features."""

    def __init__(self, n_components: int = 100, k: int = 10, random_state: int = 0):
        self.n_components = n_components
        self.k = k
        self.random_state = random_state

    def fit(self, X):
        n_comp = max(2, min(self.n_components, X.shape[0] - 1, X.shape[1] - 1))
        self.svd_ = TruncatedSVD(n_components=n_comp, random_state=self.random_state).fit(X)
        # kept in the float32 that embed computes in anyway: half the model file (100 x the features)
        self.svd_.components_ = self.svd_.components_.astype(np.float32)
        self.embedding_ = self.embed(X)
        self.reference_ = np.array([0.0, 1.0])
        return self

    def embed(self, X) -> np.ndarray:
        """Rows of ``X`` in the LSA space, normalised. The product is taken in float32: the distance
        needs no more precision, and over the wide TF-IDF matrix it is the costliest step of
        labelling (half the time of float64)."""
        if "_components32" not in self.__dict__:
            self._components32 = np.ascontiguousarray(self.svd_.components_.T, dtype=np.float32)
        if sp.issparse(X):  # (a float32 view of the data; X.astype would also copy and check the indices)
            X = X if X.format in ("csr", "csc") else X.tocsr()
            X = type(X)((X.data.astype(np.float32), X.indices, X.indptr), shape=X.shape, copy=False)
        else:
            X = np.asarray(X, dtype=np.float32)
        return normalize(np.asarray(X @ self._components32)).astype(np.float32)

    def __getstate__(self):
        state = dict(super().__getstate__())
        state.pop("_components32", None)
        return state

    def distance(self, X=None, *, embedding: np.ndarray | None = None, among: np.ndarray | None = None) -> np.ndarray:
        """1 - mean cosine similarity to the k nearest rows of ``among`` (default: all training posts)."""
        check_is_fitted(self, "embedding_")
        emb = self.embed(X) if embedding is None else embedding
        ref = self.embedding_ if among is None else among
        k = min(self.k, len(ref))
        out = np.empty(len(emb), dtype=float)
        for start in range(0, len(emb), 4096):  # bounded memory: 4096 x n_train similarities at a time
            sims = emb[start:start + 4096] @ ref.T
            top = np.partition(sims, sims.shape[1] - k, axis=1)[:, -k:]
            out[start:start + 4096] = 1.0 - top.mean(axis=1)
        return out

    def set_reference(self, held_out_distances: np.ndarray) -> "DomainReference":
        """The distances of held-out corpus posts that OOD scores are percentiles of."""
        self.reference_ = np.sort(np.asarray(held_out_distances, dtype=float))
        return self

    def score(self, distances: np.ndarray) -> np.ndarray:
        """Percentile (0-1) of each distance among the held-out reference distances."""
        ref = self.reference_
        return np.searchsorted(ref, distances, side="right") / len(ref)


def covariates(distance: np.ndarray, nnz: np.ndarray, center: np.ndarray) -> np.ndarray:
    """Calibration covariates of posts: distance to the corpus, and log of the number of non-zero
    features (how much text there is to go on), both centred on the corpus's held-out posts."""
    return np.column_stack([np.asarray(distance, dtype=float), np.log1p(np.asarray(nnz, dtype=float))]) - center


def fit_covariate_temperature(logits: np.ndarray, y_index: np.ndarray, z: np.ndarray,
                              use: tuple[bool, bool] = (True, True), batch: np.ndarray | None = None,
                              worst_share: float = WORST_SHARE) -> np.ndarray:
    """(a, b_distance, b_length) of beta = exp(a + z @ b), minimising the log loss.

    b_distance <= 0: a post farther from the corpus is never made more confident than a near one.
    A covariate not in ``use`` keeps a weight of 0 (plain temperature scaling with neither).
    ``batch`` (the writer batch of each post): minimise instead the log loss of the batches the model
    does worst on, from the worst down until they hold ``worst_share`` of the posts (a conditional
    value at risk over batches): calibrated for a forum as hard as the hardest writers, not the
    average one.
    """
    rows = np.arange(len(y_index))
    if batch is not None:
        _, which = np.unique(np.asarray(batch), return_inverse=True)
        sizes = np.bincount(which).astype(float)

    def loss(params):
        beta = np.exp(params[0] + z @ params[1:])[:, None]
        nll = -log_softmax(beta * logits, axis=1)[rows, y_index]
        if batch is None:
            return nll.mean()
        per_batch = np.bincount(which, weights=nll) / sizes
        order = np.argsort(-per_batch, kind="stable")
        # each batch weighs its posts, the one that crosses the share only in part (so the loss does
        # not jump when two batches change places)
        budget = worst_share * len(nll)
        before = np.cumsum(sizes[order]) - sizes[order]
        taken = np.clip(budget - before, 0.0, sizes[order])
        return float((per_batch[order] * taken).sum() / taken.sum())

    bounds = [(-5.0, 5.0), (-50.0, 0.0) if use[0] else (0.0, 0.0), (-5.0, 5.0) if use[1] else (0.0, 0.0)]
    x0 = np.zeros(3)
    if batch is not None:  # start from the mean fit: the worst batches' loss is not smooth
        x0 = fit_covariate_temperature(logits, y_index, z, use)
    result = minimize(loss, x0=x0, bounds=bounds, method="L-BFGS-B")
    best = result.x if loss(result.x) <= loss(x0) else x0  # a line search that gave up keeps the start
    return np.asarray(best, dtype=float)


def inverse_temperature(params: np.ndarray, z: np.ndarray) -> np.ndarray:
    params = np.asarray(params, dtype=float)
    return np.exp(params[0] + z @ params[1:])
