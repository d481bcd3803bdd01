"""Feature extraction that scales: character n-grams computed once per distinct word.

``analyzer="char_wb"`` n-grams never cross a word boundary, so a post's n-gram counts are the sum of
its words' counts. Forum text repeats the same few thousand words, so caching each word's feature
ids makes the transform several times faster than scikit-learn's per-document analysis, with the
same result (a test checks it against ``TfidfVectorizer.transform``). Fitting is scikit-learn's own.
"""

from __future__ import annotations

import itertools
import re

import numpy as np
import scipy.sparse as sp
from sklearn.base import BaseEstimator, TransformerMixin
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.pipeline import FeatureUnion, Pipeline
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


class _RowIndex(dict):
    """token -> row; a token it does not hold is -1 (so ``map(index.__getitem__, tokens)`` needs no
    Python call per known token)."""

    def __missing__(self, key):
        return -1


class _ChunkTokens(dict):
    """A whitespace-separated chunk of text -> the ids of its tokens, computed on first sight. No
    token spans whitespace, so a document's tokens are its chunks' tokens in order."""

    def __init__(self, tokens: _RowIndex, tokenize):
        super().__init__()
        self.tokens, self.tokenize = tokens, tokenize

    def __missing__(self, chunk):
        if len(self) >= CACHE_LIMIT:
            self.clear()
        ids = self[chunk] = tuple(map(self.tokens.__getitem__, self.tokenize(chunk)))
        return ids


class CompactTfidfVectorizer(CompactVocabulary, TfidfVectorizer):
    """scikit-learn's ``TfidfVectorizer``, stored compactly (see :class:`CompactVocabulary`).

    For word 1- and 2-grams with the default tokenising (the model's word blocks), ``transform``
    looks each token up once and finds the bigrams by array search instead of building each n-gram
    string in Python; the counts are the ones ``CountVectorizer`` would make (a test checks the
    matrix against scikit-learn's own transform), and scikit-learn's ``TfidfTransformer`` weights them.
    """

    def _fast_words(self) -> bool:
        return (self.analyzer == "word" and self.tokenizer is None and self.preprocessor is None
                and self.stop_words is None and not self.binary and 1 <= self.ngram_range[0]
                and self.ngram_range[1] <= 2 and self.ngram_range[0] <= self.ngram_range[1])

    def _token_tables(self):
        """Token ids for every token of the vocabulary; the column of each unigram, and the sorted
        (first id x n_tokens + second id) keys of the bigrams with their columns."""
        if "_tokens" not in self.__dict__:
            tokens = _RowIndex()
            for term in self.vocabulary_:
                for tok in term.split(" "):
                    if tok not in tokens:
                        tokens[tok] = len(tokens)
            n_tok = len(tokens)
            unigram = np.full(n_tok, -1, dtype=np.int64)
            keys, cols = [], []
            for term, col in self.vocabulary_.items():
                parts = term.split(" ")
                if len(parts) == 1:
                    unigram[tokens[parts[0]]] = col
                else:
                    keys.append(tokens[parts[0]] * n_tok + tokens[parts[1]])
                    cols.append(col)
            keys, cols = np.asarray(keys, dtype=np.int64), np.asarray(cols, dtype=np.int64)
            order = np.argsort(keys)
            # tokens that start a bigram of the vocabulary (the last entry: a token not in it, id -1)
            self._opens_bigram = np.zeros(n_tok + 1, dtype=bool)
            self._opens_bigram[keys // max(n_tok, 1)] = True
            self._tokens, self._unigram, self._bigram = tokens, unigram, (keys[order], cols[order])
            self._chunks = _ChunkTokens(tokens, self.build_tokenizer())
            self._preprocess = self.build_preprocessor()
        return self._tokens

    def _pairs(self, raw_documents) -> tuple[np.ndarray, np.ndarray, int]:
        """(document, column) of every word 1- or 2-gram of the vocabulary in the documents, and their number."""
        index = self._token_tables()
        chunk_ids, preprocess, decode = self._chunks.__getitem__, self._preprocess, self.decode
        ids: list[int] = []
        indptr = [0]
        for doc in raw_documents:
            ids.extend(itertools.chain.from_iterable(map(chunk_ids, preprocess(decode(doc)).split())))
            indptr.append(len(ids))
        ids_a = np.asarray(ids, dtype=np.int64)
        lengths = np.diff(np.asarray(indptr, dtype=np.int64))
        doc = np.repeat(np.arange(len(lengths)), lengths)
        rows, cols = [np.zeros(0, np.int64)], [np.zeros(0, np.int64)]
        if self.ngram_range[0] == 1:
            col = np.where(ids_a >= 0, self._unigram[np.maximum(ids_a, 0)], -1)
            keep = col >= 0
            rows.append(doc[keep])
            cols.append(col[keep])
        if self.ngram_range[1] == 2 and len(ids_a) > 1:
            keys, key_cols = self._bigram
            first, second = ids_a[:-1], ids_a[1:]
            pair = (doc[:-1] == doc[1:]) & self._opens_bigram[first] & (second >= 0)
            key = first[pair] * len(index) + second[pair]
            at = np.minimum(np.searchsorted(keys, key), max(len(keys) - 1, 0))
            found = keys[at] == key if len(keys) else np.zeros(len(key), bool)
            rows.append(doc[:-1][pair][found])
            cols.append(key_cols[at][found])
        return np.concatenate(rows), np.concatenate(cols), len(lengths)

    def transform(self, raw_documents):
        if isinstance(raw_documents, str) or not self._fast_words():
            return super().transform(raw_documents)
        check_is_fitted(self, "vocabulary_")
        rows, cols, n_docs = self._pairs(raw_documents)
        width = len(self.vocabulary_)
        # one sort of (document, column) keys gives the counts in CSR order, with sorted columns
        keys, n = np.unique(rows * width + cols, return_counts=True)
        indptr = np.searchsorted(keys, np.arange(n_docs + 1, dtype=np.int64) * width)
        counts = sp.csr_matrix((n.astype(self.dtype), keys % width, indptr), shape=(n_docs, width))
        return self._tfidf.transform(counts, copy=False)

    def transform_columns(self, raw_documents) -> sp.csc_matrix:
        """``transform`` as a CSC matrix, built column by column (see :func:`weight_counts`)."""
        if isinstance(raw_documents, str) or not self._fast_words():
            return sp.csc_matrix(self.transform(raw_documents))
        check_is_fitted(self, "vocabulary_")
        rows, cols, n_docs = self._pairs(raw_documents)
        width = len(self.vocabulary_)
        keys, n = np.unique(cols * n_docs + rows, return_counts=True)  # (column, document) order
        indptr = np.searchsorted(keys, np.arange(width + 1, dtype=np.int64) * n_docs)
        counts = sp.csc_matrix((n.astype(self.dtype), keys % n_docs, indptr), shape=(n_docs, width))
        return weight_counts(self, counts)

    def __getstate__(self):
        state = dict(super().__getstate__())
        for key in ("_tokens", "_unigram", "_bigram", "_opens_bigram", "_chunks", "_preprocess"):
            state.pop(key, None)
        return state


def weight_counts(vectorizer: TfidfVectorizer, counts: sp.csr_matrix | sp.csc_matrix):
    """What the fitted ``vectorizer`` does to raw counts (sublinear tf, idf, row norm), in place, on a
    CSR or a CSC matrix.

    CSC is the scoring layout: labelling multiplies the features by dense weights (every facet's
    coefficients, the OOD projection), and CSC order reads each weight row once per batch, where CSR
    rows reach all over a weight matrix too big for the cache: three times faster, and cheaper than
    converting. A document's values there equal the CSR ones to rounding (its norm sums the same
    squares in column order) and depend on nothing but the document."""
    data, by_column = counts.data, counts.format == "csc"
    if vectorizer.sublinear_tf:
        np.log(data, out=data)
        data += 1.0
    if vectorizer.use_idf:
        data *= np.repeat(vectorizer.idf_, np.diff(counts.indptr)) if by_column else vectorizer.idf_[counts.indices]
    if not vectorizer.norm:
        return counts
    if not by_column or vectorizer.norm not in ("l1", "l2"):
        return type(counts)(normalize(counts.tocsr(), norm=vectorizer.norm, copy=False))
    size = np.abs(data) if vectorizer.norm == "l1" else data * data
    norms = np.bincount(counts.indices, weights=size, minlength=counts.shape[0])
    norms = np.sqrt(norms) if vectorizer.norm == "l2" else norms
    norms[norms == 0] = 1.0
    data /= norms[counts.indices]
    return counts


def transform_columns(step, X) -> sp.csc_matrix:
    """``step.transform(X)`` as a CSC matrix, for a fitted vectorizer, FeatureUnion or Pipeline of them:
    each block built column-major where it can be (``transform_columns``), the blocks side by side
    (for CSC a concatenation, where stacking CSR blocks copies and re-indexes every row)."""
    if hasattr(step, "transform_columns"):
        return step.transform_columns(X)
    if isinstance(step, Pipeline):
        for _, inner in step.steps[:-1]:
            if inner not in ("drop", "passthrough", None):
                X = inner.transform(X)
        return transform_columns(step.steps[-1][1], X)
    if isinstance(step, FeatureUnion) and not step.transformer_weights:
        blocks = [t for _, t in step.transformer_list if t not in ("drop", None)]
        if "passthrough" not in blocks:
            return sp.hstack([transform_columns(t, X) for t in blocks], format="csc")
    return sp.csc_matrix(step.transform(X))


def char_wb_grams(word: str, min_n: int, max_n: int) -> list[str]:
    """The ``char_wb`` n-grams of one word, as scikit-learn's ``_char_wb_ngrams`` makes them (the
    word padded with a space each side; a word shorter than n counted once, whole, and no longer n),
    without its per-character loop."""
    w = " " + word + " "
    size = len(w)
    grams: list[str] = []
    for n in range(min_n, max_n + 1):
        if n >= size:
            grams.append(w)
            break
        grams += [w[i:i + n] for i in range(size - n + 1)]
    return grams


class _NewWordRow(dict):
    """word -> cache row of a :class:`WordCachedCharVectorizer`; a word not yet seen gets its row."""

    def __init__(self, owner):
        super().__init__()
        self.owner = owner

    def __missing__(self, word):
        return self.owner._new_word_row(word)


class WordCachedCharVectorizer(CompactVocabulary, TfidfVectorizer):
    """``TfidfVectorizer`` whose transform, for ``analyzer="char_wb"``, computes each word's n-grams once.

    A batch becomes (documents x words) counts times a cached (words x features) matrix of each
    word's n-gram counts: the per-document work left in Python is splitting and one dict lookup a word.
    """

    def _cache(self):
        if "_word_index" not in self.__dict__ or len(self._word_index) >= CACHE_LIMIT:
            self._word_index: dict[str, int] = _NewWordRow(self)
            self._word_rows: list[np.ndarray] = []
            self._word_matrix = sp.csr_matrix((0, len(self.vocabulary_)))
            self._word_matrix_t = None  # its transpose, for transform_columns
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
        return self._word_index[word]

    def _new_word_row(self, word: str) -> int:
        row = self._word_index[word] = len(self._word_rows)
        if self.analyzer == "char_wb" and self.preprocessor is None:
            grams = char_wb_grams(self._preprocess(word), *self.ngram_range)
        else:
            grams = self._analyse_word(word)
        get = self.vocabulary_.get
        self._word_rows.append(np.array([c for c in map(get, grams) if c is not None], dtype=np.int64))
        return row

    def word_feature_ids(self, word: str) -> np.ndarray:
        """Column indices of the n-grams of one word that are in the vocabulary (used by explanations)."""
        check_is_fitted(self, "vocabulary_")
        self._cache()
        return self._word_rows[self._word_row(self._preprocess(word))]

    def transform(self, raw_documents):
        check_is_fitted(self, "vocabulary_")
        if not self._word_route():
            return super().transform(raw_documents)
        return weight_counts(self, self.word_counts(*self._document_words(raw_documents)))

    def _word_route(self) -> bool:
        """Whether a document's n-grams are its words' (char_wb), so the word cache applies."""
        return self.analyzer == "char_wb" and not self.binary and self.use_idf

    def _document_words(self, raw_documents) -> tuple[np.ndarray, np.ndarray]:
        """The cache rows of the documents' words, in order, and where each document starts."""
        word_row, preprocess, decode = self._cache().__getitem__, self._preprocess, self.decode
        indptr, words = [0], []
        for doc in raw_documents:
            words.extend(map(word_row, preprocess(decode(doc)).split()))
            indptr.append(len(words))
        return np.asarray(words, dtype=np.int64), np.asarray(indptr, dtype=np.int64)

    def transform_columns(self, raw_documents) -> sp.csc_matrix:
        """``transform`` as a CSC matrix: the counts come out column-major as (features x words) @
        (words x documents), so neither they nor the weighted matrix are ever converted."""
        check_is_fitted(self, "vocabulary_")
        if not self._word_route():
            return sp.csc_matrix(self.transform(raw_documents))
        words, indptr = self._document_words(raw_documents)
        n_docs = len(indptr) - 1
        docs_t = sp.csc_matrix((np.ones(len(words), dtype=self.dtype), words, indptr), shape=(len(self._word_rows), n_docs))
        by_feature = self._grown_transposed() @ docs_t.tocsr()  # features x documents, CSR
        counts = sp.csc_matrix((by_feature.data, by_feature.indices, by_feature.indptr), shape=(n_docs, by_feature.shape[0]))
        return weight_counts(self, counts)

    def _grown_transposed(self) -> sp.csr_matrix:
        """The (features x words) transpose of :meth:`_grow`, rebuilt only when words were added."""
        words = self._grow()
        if self._word_matrix_t is None or self._word_matrix_t.shape[1] != words.shape[0]:
            self._word_matrix_t = words.T.tocsr()
        return self._word_matrix_t

    def word_counts(self, words: np.ndarray, indptr: np.ndarray) -> sp.csr_matrix:
        """n-gram counts of documents given as cache rows of their words (``words[indptr[i]:indptr[i+1]]``
        for document i), as (documents x words) @ (words x features). The columns of a row are in the
        product's order, not sorted (sorting cost a twentieth of labelling; nothing needs it). That
        order follows the words as they stand in the document, never the cache rows' numbers (which
        depend on what the cache met before): so a post gets the very same row, to the last bit,
        whatever was labelled before it, in whichever batch, process or Dask worker; and the
        explanations, which build a post's row from its sentences' words in order, get it too.
        (Summing a repeated word's entries first would order the row by cache row number.)"""
        docs = sp.csr_matrix((np.ones(len(words)), words, indptr), shape=(len(indptr) - 1, len(self._word_rows)))
        return (docs @ self._grow()).tocsr()

    def __getstate__(self):
        state = dict(super().__getstate__())
        for key in ("_word_index", "_word_rows", "_word_matrix", "_word_matrix_t", "_analyse_word", "_preprocess"):
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
