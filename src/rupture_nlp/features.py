"""Feature extraction that scales: character n-grams computed once per distinct word.

``analyzer="char_wb"`` n-grams never cross a word boundary, so a post's n-gram counts are the sum of
its words' counts. Forum text repeats the same few thousand words, so caching each word's feature
ids makes the transform several times faster than scikit-learn's per-document analysis, with the
same result (a test checks it against ``TfidfVectorizer.transform``). Fitting is scikit-learn's own.
"""

from __future__ import annotations

import re

import numpy as np
import scipy.sparse as sp
from sklearn.base import BaseEstimator, TransformerMixin
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.preprocessing import normalize
from sklearn.utils.validation import check_is_fitted

CACHE_LIMIT = 300_000  # distinct words kept per process; the cache starts afresh beyond it


class CompactVocabulary:
    """Stores a fitted ``vocabulary_`` as two arrays (terms, column ids) instead of a dict.

    skops writes a dict one node per entry (and each numpy integer as a file of its own): for the tens
    of thousands of n-grams of a vocabulary that made a model file of 140 MB that loaded in twice the
    time of the joblib pickle. Two arrays are two files. The dict is rebuilt, the same, on loading.
    """

    def __getstate__(self):
        state = dict(super().__getstate__())
        vocab = state.pop("vocabulary_", None)
        if isinstance(vocab, dict):
            state["vocabulary_terms_"] = np.array(list(vocab), dtype=str)
            state["vocabulary_ids_"] = np.fromiter(vocab.values(), dtype=np.int64, count=len(vocab))
        return state

    def __setstate__(self, state):
        state = dict(state)
        terms, ids = state.pop("vocabulary_terms_", None), state.pop("vocabulary_ids_", None)
        if terms is not None:
            state["vocabulary_"] = dict(zip(terms.tolist(), ids.tolist()))
        super().__setstate__(state)


class CompactTfidfVectorizer(CompactVocabulary, TfidfVectorizer):
    """scikit-learn's ``TfidfVectorizer``, stored compactly (see :class:`CompactVocabulary`)."""


class WordCachedCharVectorizer(CompactVocabulary, TfidfVectorizer):
    """``TfidfVectorizer`` whose transform, for ``analyzer="char_wb"``, computes each word's n-grams once.

    A batch becomes (documents x words) counts times a cached (words x features) matrix of each
    word's n-gram counts: the per-document work left in Python is splitting and one dict lookup a word.
    """

    def _cache(self):
        if "_word_index" not in self.__dict__ or len(self._word_index) >= CACHE_LIMIT:
            self._word_index: dict[str, int] = {}
            self._word_rows: list[np.ndarray] = []
            self._word_matrix = sp.csr_matrix((0, len(self.vocabulary_)))
            self._analyse_word = self.build_analyzer()
            self._preprocess = self.build_preprocessor()
        return self._word_index

    def _grow(self) -> sp.csr_matrix:
        """The words x features matrix, extended by the words met since it was last built."""
        built = self._word_matrix.shape[0]
        if built < len(self._word_rows):
            new = self._word_rows[built:]
            indptr = np.concatenate([[0], np.cumsum([len(r) for r in new])])
            indices = np.concatenate(new) if new else np.zeros(0, dtype=np.int64)
            block = sp.csr_matrix((np.ones(len(indices)), indices, indptr), shape=(len(new), len(self.vocabulary_)))
            block.sum_duplicates()
            self._word_matrix = sp.vstack([self._word_matrix, block], format="csr")
        return self._word_matrix

    def _word_row(self, word: str) -> int:
        """The cache row of a (preprocessed) word, computing its n-gram feature ids on first sight."""
        index = self._word_index
        row = index.get(word)
        if row is None:
            vocab = self.vocabulary_
            row = index[word] = len(self._word_rows)
            self._word_rows.append(np.array([vocab[g] for g in self._analyse_word(word) if g in vocab],
                                            dtype=np.int64))
        return row

    def word_feature_ids(self, word: str) -> np.ndarray:
        """Column indices of the n-grams of one word that are in the vocabulary (used by explanations)."""
        check_is_fitted(self, "vocabulary_")
        self._cache()
        return self._word_rows[self._word_row(self._preprocess(word))]

    def transform(self, raw_documents):
        check_is_fitted(self, "vocabulary_")
        if self.analyzer != "char_wb" or self.binary or not self.use_idf:
            return super().transform(raw_documents)
        self._cache()
        word_row, preprocess = self._word_row, self._preprocess
        indptr, words = [0], []
        for doc in raw_documents:
            words.extend(word_row(word) for word in preprocess(self.decode(doc)).split())
            indptr.append(len(words))
        docs = sp.csr_matrix((np.ones(len(words)), np.asarray(words, dtype=np.int64), np.asarray(indptr)),
                             shape=(len(indptr) - 1, len(self._word_rows)))
        counts = (docs @ self._grow()).tocsr()
        counts.sum_duplicates()
        if self.sublinear_tf:
            np.log(counts.data, out=counts.data)
            counts.data += 1.0
        X = counts @ sp.diags(self.idf_)
        return normalize(X, norm=self.norm, copy=False) if self.norm else X

    def __getstate__(self):
        state = dict(super().__getstate__())
        for key in ("_word_index", "_word_rows", "_word_matrix", "_analyse_word", "_preprocess"):
            state.pop(key, None)
        return state


SENTENCE_END = re.compile(r"(?<=[.!?])\s+|\n+")
THERAPY_CUES = re.compile(r"\b(?:therapist|therapy|counsell?or|psychologist|psychiatrist|session|_pron_)", re.I)
FOCUS_MODES = ("therapist", "late")


class SentenceFocus(TransformerMixin, BaseEstimator):
    """Keeps part of each (normalised) post, for a feature block of its own.

    ``mode="therapist"``: the sentences that name the therapist, the therapy or a session, or hold a
    masked pronoun (in posts about therapy mostly the therapist): where the relationship is told.
    ``mode="late"``: the last half of the sentences: real posts tell the rupture late in a long story.
    """

    def __init__(self, mode: str = "therapist"):
        self.mode = mode

    def fit(self, X, y=None):
        if self.mode not in FOCUS_MODES:
            raise ValueError(f"SentenceFocus mode must be one of {FOCUS_MODES}, not {self.mode!r}")
        return self

    def transform(self, X):
        out = []
        for text in X:
            sentences = [s for s in SENTENCE_END.split(str(text)) if s.strip()]
            if self.mode == "therapist":
                kept = [s for s in sentences if THERAPY_CUES.search(s)]
            else:
                kept = sentences[len(sentences) // 2:]
            out.append(" ".join(kept))
        return out
