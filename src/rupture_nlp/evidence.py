"""Sentence evidence: which sentences of a post decided each label, scored by leaving each one out.

A post is split into sentences with exact character offsets into the original text (Python string
indices, i.e. Unicode code points). Lines quoted from another post ("> ..." lines, which the
normaliser drops) are marked as quotes and are never evidence.

A sentence's score for a facet is the drop in the probability of the facet's predicted label when
the sentence is deleted from the post: ``p(label | post) - p(label | post without the sentence)``.
Leave-one-out is exact for any pipeline; the sum of a sentence's linear feature contributions is not
for ours: TF-IDF rows are l2-normalised per post (deleting a sentence rescales every other feature),
term frequencies are sublinear (1 + log tf), and word bigrams span sentence boundaries, so the
contributions of sentences do not add up to the decision.

Which probability: rupture_type and risk use their calibrated probability; repair_outcome and
therapist_response their probability given a rupture (the one whose argmax picks their label; the
joint one would credit the rupture's own sentences to them too). The post's calibration temperature
is held fixed, so a score measures content, not the flattening that comes with shorter text.
Sentences are ranked by the drop in the label's log-odds, which orders them exactly as the drop in
probability does but does not round to zero when the probability is saturated (a crisis post at
0.99999); the share is ``score / sum of the positive scores``, or, when every score rounds to zero,
the same ratio of log-odds drops.

Speed: the variants of a post differ from it by one sentence, and our features are counts
(char_wb n-grams inside words, word n-grams of a token stream), so :class:`EvidenceScorer` gets a
variant's counts as ``post - sentence`` (plus the word n-grams across the cut), re-weights only the
features the sentence touches (1 + log tf, idf), updates the l2 norm, and projects that change on
the coefficients: the logits of all variants of a batch come in one pass, without building a row
per variant. A post whose
normalisation is not local to its sentences (checked: the features rebuilt from its sentences must
equal the model's) and any other pipeline take the plain route: the variant texts through
``model.transform``. Tests check that both routes agree.

Shown text: offsets point into the original post; the text shown (``text``, the triage page) has
names masked as "[name]", with the normaliser's own rule.
"""

from __future__ import annotations

from dataclasses import dataclass
from itertools import chain

import numpy as np
import scipy.sparse as sp
from scipy.special import logsumexp, softmax
from sklearn.preprocessing import normalize

from rupture_nlp.labels import DEPENDENT, FACETS, NOT_APPLICABLE
from rupture_nlp.model import aligned_from_raw, stacked_coefficients
from rupture_nlp.ood import covariates, inverse_temperature
from rupture_nlp.sentences import Sentence, name_spans, shown, split_sentences  # noqa: F401 (re-exported)
from rupture_nlp.text import KEEP_CAPITALISED, NAME, names_are_local

SEP = "\x00"
CHUNK_ROWS = 4000  # variants scored per pass: bounds memory however long the batch


@dataclass
class Evidence:
    facet: str
    label: str
    start: int
    end: int
    text: str
    score: float  # drop in p(label) when the sentence is left out
    share: float  # score / sum of the post's positive scores for this facet
    log_odds: float = 0.0  # drop in the label's log-odds: ranks the sentences, and gives the shares
    # when the probability is saturated (every score rounds to 0)

    def as_dict(self) -> dict:
        return {"facet": self.facet, "label": self.label, "start": self.start, "end": self.end, "text": self.text,
                "score": self.score, "share": self.share, "log_odds": self.log_odds}


class EvidenceScorer:
    """Leave-one-out sentence scores for a fitted :class:`~rupture_nlp.model.RuptureModel`."""

    def __init__(self, model, exact_only: bool = False):
        self.model = model
        steps = model.features_.named_steps
        self.normalise = steps["normalise"]
        union = steps["tfidf"]
        self.blocks = [(name, t) for name, t in union.transformer_list if t != "drop"]
        fast = not exact_only and all(
            ((name == "word" and t.analyzer == "word") or (name == "char" and t.analyzer == "char_wb"
                                                           and hasattr(t, "_word_row")))
            and t.norm == "l2" and t.use_idf and not t.binary for name, t in self.blocks)
        word = dict(self.blocks).get("word")
        fast = fast and (word is None or (word.ngram_range[1] <= 2 and word.get_stop_words() is None))
        self.fast = fast
        if fast:
            word = dict(self.blocks).get("word")
            if word is not None:
                self._w_pre, self._w_tok = word.build_preprocessor(), word.build_tokenizer()
                self._w_range = word.ngram_range
            char = dict(self.blocks).get("char")
            if char is not None:
                char._cache()
        # per block, every facet's coefficients side by side (features x classes), for one product
        weights, self._facet_cols = stacked_coefficients(model.classifiers_)
        self._weights, at = {}, 0
        for name, t in self.blocks:
            width = len(t.vocabulary_)
            self._weights[name] = np.ascontiguousarray(weights[at:at + width])
            at += width
        self._names = bool(self.normalise.mask_names)
        self.fallbacks = 0  # posts scored by the plain route although the fast one was on

    # --------------------------------------------------------------- features of the variants
    def _word_counts(self, vec, pieces_tokens: list[list[str]], cuts: list[int]):
        """Rows as (columns, values): the post's counts, then per sentence the change (post - variant):
        its own n-grams, the bigrams joining it to its neighbours, minus the bigram that joins them."""
        vocab = vec.vocabulary_
        get = vocab.get
        unigrams, bigrams = self._w_range[0] <= 1, self._w_range[0] <= 2 <= self._w_range[1]
        ids = []
        for t in pieces_tokens:
            grams = (t if unigrams else []) + ([a + " " + b for a, b in zip(t, t[1:])] if bigrams else [])
            ids.append([i for i in map(get, grams) if i is not None])
        filled = [k for k, t in enumerate(pieces_tokens) if t]

        def join(a: int, b: int) -> list[int]:
            g = f"{pieces_tokens[a][-1]} {pieces_tokens[b][0]}"
            return [vocab[g]] if bigrams and g in vocab else []

        joins = [join(a, b) for a, b in zip(filled, filled[1:])]
        full = [c for row in ids for c in row] + [c for j in joins for c in j]
        rows = [(full, [1.0] * len(full))]
        where = {k: n for n, k in enumerate(filled)}
        for p in cuts:
            n = where.get(p)
            if n is None:
                rows.append(([], []))
                continue
            plus = ids[p] + (joins[n - 1] if n > 0 else []) + (joins[n] if n < len(joins) else [])
            minus = join(filled[n - 1], filled[n + 1]) if 0 < n < len(filled) - 1 else []
            rows.append((plus + minus, [1.0] * len(plus) + [-1.0] * len(minus)))
        return rows

    @staticmethod
    def _tf(vec, counts: np.ndarray, cols: np.ndarray) -> np.ndarray:
        """The unnormalised tf-idf weight of ``counts`` (> 0, else 0) of the features ``cols``."""
        safe = np.where(counts > 0, counts, 1.0)
        tf = 1.0 + np.log(safe) if vec.sublinear_tf else safe
        return np.where(counts > 0, tf * vec.idf_[cols], 0.0)

    def _fast_rows(self, text: str, sentences: list[Sentence]):
        """(full counts per block, delta counts per block) for one post, or None if the pieces'
        normalisation is not that of the post (then the plain route is exact)."""
        pieces, cuts, at = [], [], 0
        for s in sentences:
            if s.quote:
                continue
            if at < s.start:
                pieces.append(text[at:s.start])
            cuts.append(len(pieces))
            pieces.append(text[s.start:s.end])
            at = s.end
            if text.startswith((">", "&gt;"), s.start):  # would become a quote line once cut: plain route
                return None
            if self._names and (m := NAME.match(text, s.start)) and m.group(1) not in KEEP_CAPITALISED:
                return None  # a name mask that depends on what stands before the sentence
        if self._names and not names_are_local(text):
            return None  # a name masked because it stands elsewhere too: deleting a sentence can unmask it
        pieces.append(text[at:])
        # One normaliser call for all pieces: no rule of text.normalise crosses a NUL that stands
        # between them as it would not cross the start or end of a string (checked below anyway).
        if SEP in text:
            return None
        normalised = self.normalise.transform([SEP.join(pieces)])[0].split(SEP)
        if len(normalised) != len(pieces):
            return None
        out = {}
        for name, vec in self.blocks:
            if name == "word":
                toks = [self._w_tok(self._w_pre(p)) for p in normalised]
                out[name] = self._word_counts(vec, toks, cuts)
            else:
                pre, word_row = vec._preprocess, vec._word_index.__getitem__  # a new word gets its row
                rows = [list(map(word_row, pre(p).split())) for p in normalised]
                full = [r for row in rows for r in row]
                out[name] = [full] + [rows[c] for c in cuts]
        return out

    def _cache_ids(self) -> tuple:
        return tuple(id(getattr(vec, "_word_index", None)) for _, vec in self.blocks)

    def features(self, texts) -> tuple[sp.csr_matrix, dict]:
        """The model's features of ``texts`` (as ``model.transform``) built from their sentences'
        counts where the fast route applies, and what :meth:`explain` reuses (``prepared``), so that
        explaining costs no second pass over the text."""
        texts = [str(t) for t in texts]
        sentences = [split_sentences(t) for t in texts]
        if not self.fast:
            return self.model.transform(texts), {"sentences": sentences}
        for _, vec in self.blocks:
            if hasattr(vec, "_cache"):
                vec._cache()
        rows = [self._fast_rows(t, s) if any(not q.quote for q in s) else None for t, s in zip(texts, sentences)]
        fast = [i for i, r in enumerate(rows) if r is not None]
        parts = []
        for name, vec in self.blocks:
            F = self._count_matrix(vec, name, [rows[i][name][0] for i in fast])
            F.data = self._tf(vec, F.data, F.indices)
            parts.append(normalize(F))
        built = sp.hstack(parts, format="csr") if fast else None
        other = [i for i, r in enumerate(rows) if r is None]
        stacked = sp.vstack([m for m in (built, self.model.transform([texts[i] for i in other]) if other else None)
                             if m is not None], format="csr")
        order = np.argsort(np.array(fast + other))
        X = stacked[order]
        return X, {"sentences": sentences, "rows": rows, "cache": self._cache_ids()}

    def _fast_logits(self, texts, sentences, X_full, prepared_rows=None):
        """Logits of every variant of the posts taking the fast route, and the posts that cannot.

        A variant's unnormalised tf-idf row is the post's minus a change on the features its sentence
        touches, so its logits are ``(u @ W - change @ W) / ||u - change||`` per block: no variant
        row is ever built.
        """
        for _, vec in self.blocks:
            if hasattr(vec, "_cache"):
                vec._cache()  # may start afresh here, never between the rows of one pass
        blocks = {name: ([], []) for name, _ in self.blocks}  # (full rows, delta rows)
        owners, slow = [], []
        for i, (text, sents) in enumerate(zip(texts, sentences)):
            n = sum(not s.quote for s in sents)
            if prepared_rows is not None:
                rows = prepared_rows[i]
            else:
                rows = self._fast_rows(text, sents) if n else None
            if rows is None:
                slow += [i] if n else []
                continue
            owners.append((i, n))
            for name, _ in self.blocks:
                blocks[name][0].append(rows[name][0])
                blocks[name][1].extend(rows[name][1:])
        if not owners:
            return np.zeros(0, int), None, [], slow
        repeat = np.repeat(np.arange(len(owners)), [n for _, n in owners])
        n_var = len(repeat)
        proj = 0.0
        rebuilt = []
        for name, vec in self.blocks:
            width = len(vec.vocabulary_)
            F = self._count_matrix(vec, name, blocks[name][0])
            F.sort_indices()
            D = self._count_matrix(vec, name, blocks[name][1]).tocoo()
            U = F.copy()
            U.data = self._tf(vec, F.data, F.indices)
            norm2 = np.asarray(U.multiply(U).sum(axis=1)).ravel()
            rebuilt.append(normalize(U))
            keys = np.repeat(np.arange(F.shape[0], dtype=np.int64), np.diff(F.indptr)) * width + F.indices
            query = repeat[D.row].astype(np.int64) * width + D.col
            pos = np.minimum(np.searchsorted(keys, query), max(len(keys) - 1, 0))
            before = np.where(keys[pos] == query, F.data[pos], 0.0) if len(keys) else np.zeros(len(query))
            old, new = self._tf(vec, before, D.col), self._tf(vec, before - D.data, D.col)
            change = sp.csr_matrix((old - new, (D.row, D.col)), shape=(n_var, width))
            norm2_var = norm2[repeat] - np.bincount(D.row, weights=old ** 2 - new ** 2, minlength=n_var)
            inv = np.where(norm2_var > 1e-12, 1.0 / np.sqrt(np.maximum(norm2_var, 1e-12)), 0.0)
            W = self._weights[name]
            proj = proj + (np.asarray(U @ W)[repeat] - np.asarray(change @ W)) * inv[:, None]
        idx = np.array([i for i, _ in owners])
        bad = []
        if prepared_rows is None:  # X_full came from elsewhere: the rows must rebuild it
            diff = abs(sp.hstack(rebuilt, format="csr") - X_full[idx])
            bad = np.flatnonzero(np.asarray(diff.max(axis=1).todense()).ravel() > 1e-9) if diff.nnz else []
        keep = np.ones(len(owners), bool)
        keep[bad] = False
        slow += [owners[k][0] for k in bad]
        proj = proj[keep[repeat]]
        c = self._facet_cols
        logits = {f: self._aligned(f, proj[:, c[k]:c[k + 1]]) for k, f in enumerate(FACETS)}
        return idx[keep], logits, [owners[k][1] for k in np.flatnonzero(keep)], slow

    def _aligned(self, facet: str, raw: np.ndarray) -> np.ndarray:
        """As :func:`rupture_nlp.model.aligned_from_raw`, from ``X @ coef.T`` (without the intercept)."""
        clf = self.model.classifiers_[facet]
        return aligned_from_raw(clf, raw + clf.intercept_, self.model.classes_[facet])

    def _count_matrix(self, vec, name: str, rows) -> sp.csr_matrix:
        if name == "word":
            indptr = np.cumsum([0] + [len(cols) for cols, _ in rows])
            indices = np.fromiter(chain.from_iterable(cols for cols, _ in rows), dtype=np.int64, count=int(indptr[-1]))
            data = np.fromiter(chain.from_iterable(vals for _, vals in rows), dtype=float, count=int(indptr[-1]))
            counts = sp.csr_matrix((data, indices, indptr), shape=(len(rows), len(vec.vocabulary_)))
            counts.sum_duplicates()
            return counts
        indptr = np.cumsum([0] + [len(r) for r in rows])
        return vec.word_counts(np.fromiter(chain.from_iterable(rows), dtype=np.int64, count=int(indptr[-1])), indptr)

    def _plain_variants(self, texts, sentences, which):
        """Feature rows of the variant texts (each sentence cut out), through ``model.transform``."""
        variants, counts = [], []
        for i in which:
            text, kept = texts[i], [s for s in sentences[i] if not s.quote]
            variants += [text[:s.start] + text[s.end:] for s in kept]
            counts.append(len(kept))
        logits = self.model.logits(self.model.transform(variants)) if variants else None
        return np.asarray(which, dtype=int), logits, counts

    # -------------------------------------------------------------------------- scoring
    def _label_proba(self, logits, z, labels_of_rows) -> dict[str, tuple[np.ndarray, np.ndarray]]:
        """Per facet, each row's calibrated probability of its label (given a rupture for dependent
        facets) and its log-odds (which, unlike the probability, does not round to 1 when saturated)."""
        out = {}
        for f in FACETS:
            scaled = inverse_temperature(self.model.calibration_params_[f], z)[:, None] * logits[f]
            classes = list(self.model.classes_[f])
            col = np.array([classes.index(k) if k in classes else -1 for k in labels_of_rows[f]])
            rows, c = np.arange(len(col)), np.maximum(col, 0)
            p = softmax(scaled, axis=1)[rows, c]
            others = scaled.copy()
            others[rows, c] = -np.inf
            log_odds = scaled[rows, c] - logsumexp(others, axis=1)
            out[f] = (np.where(col >= 0, p, np.nan), np.where(col >= 0, log_odds, np.nan))
        return out

    def explain(self, texts, X, labels, distance: np.ndarray, n: int,
                prepared: dict | None = None) -> list[dict[str, list[Evidence]]]:
        """Per post, per facet: its ``n`` best evidence sentences (positive scores only).
        ``prepared``: from :meth:`features` for the same texts, when ``X`` came from there too."""
        texts = [str(t) for t in texts]
        X = X.tocsr()
        result = [{f: [] for f in FACETS} for _ in texts]
        if n <= 0 or not texts:
            return result
        sentences = prepared["sentences"] if prepared else [split_sentences(t) for t in texts]
        rows = prepared.get("rows") if prepared and prepared.get("cache") == self._cache_ids() else None
        z = covariates(distance, X.getnnz(axis=1), self.model.covariate_center_)
        lab = {f: labels[f].to_numpy() for f in FACETS}
        base = self._label_proba(self.model.logits(X), z, lab)
        order = [i for i in range(len(texts)) if any(not s.quote for s in sentences[i])]
        for lo in range(0, len(order), max(1, CHUNK_ROWS // 16)):
            chunk = order[lo:lo + max(1, CHUNK_ROWS // 16)]
            routes = []
            if self.fast:
                idx, var_logits, counts, slow = self._fast_logits(
                    [texts[i] for i in chunk], [sentences[i] for i in chunk], X[chunk],
                    None if rows is None else [rows[i] for i in chunk])
                self.fallbacks += len(slow)
                routes.append(([chunk[k] for k in idx], var_logits, counts))
                if slow:
                    routes.append(self._plain_variants(texts, sentences, [chunk[k] for k in slow]))
            else:
                routes.append(self._plain_variants(texts, sentences, chunk))
            for posts, var_logits, counts in routes:
                if var_logits is None or len(posts) == 0:
                    continue
                rep = np.repeat(np.asarray(posts, dtype=int), counts)
                p_var = self._label_proba(var_logits, z[rep], {f: lab[f][rep] for f in FACETS})
                self._collect(result, texts, sentences, posts, counts, base, p_var, lab, n)
        return result

    def _collect(self, result, texts, sentences, posts, counts, base, p_var, lab, n):
        at = 0
        for i, k in zip(posts, counts):
            kept = [s for s in sentences[i] if not s.quote]
            names = name_spans(texts[i])
            for f in FACETS:
                label = lab[f][i]
                if (f in DEPENDENT and label == NOT_APPLICABLE) or np.isnan(base[f][0][i]):
                    continue
                scores = base[f][0][i] - p_var[f][0][at:at + k]
                drops = base[f][1][i] - p_var[f][1][at:at + k]  # same order as `scores` within a post
                up = drops > 1e-9
                shares = scores if scores[up].sum() > 1e-6 else drops  # saturated: shares of log-odds
                total = shares[up].sum()
                best = [j for j in np.argsort(-drops, kind="stable")[:n] if up[j]]
                result[i][f] = [Evidence(f, str(label), kept[j].start, kept[j].end,
                                         shown(texts[i], kept[j].start, kept[j].end, names),
                                         round(float(scores[j]), 6), round(float(max(shares[j], 0) / total), 4),
                                         round(float(drops[j]), 4))
                                for j in best]
            at += k


def evidence_of(model, texts, n: int = 3, scorer: EvidenceScorer | None = None) -> list[dict[str, list[Evidence]]]:
    """For each text, per facet, the ``n`` sentences that carried its predicted label most."""
    texts = [str(t) for t in texts]
    X = model.transform(texts)
    distance = model.distance(X)
    labels = model.labels_from_proba(model.proba_from_features(X, distance=distance))
    return (scorer or EvidenceScorer(model)).explain(texts, X, labels, distance, n)
