"""Lexical evidence: TF-IDF and BM25 over sparse matrices (scipy), scored in row blocks."""

from __future__ import annotations

import re
from collections.abc import Sequence

import numpy as np
import scipy.sparse as sp

from notegraph.graph.clusters import STOPWORDS

_TOKEN_RE = re.compile(r"[^\W_][\w'-]*", re.UNICODE)


def tokens(text: str) -> list[str]:
    """The terms of ``text`` in order: lower-cased words, stopwords and numbers dropped, plurals folded."""
    terms = _TERMS
    if len(terms) > _TERMS_MAX:
        terms.clear()
    out = []
    for word in _TOKEN_RE.findall(text.lower()):
        term = terms.get(word)
        if term is None:
            term = terms[word] = _term(word)
        if term:
            out.append(term)
    return out


def _term(word: str) -> str:
    """A word's term, or "" when it is not one."""
    word = word.strip("'-")
    if len(word) < 2 or word in STOPWORDS or word.isdigit():
        return ""
    if len(word) > 4 and word.endswith("s") and not word.endswith("ss"):
        word = word[:-1]  # a crude plural fold: "models" and "model" are one term
    return word


# each distinct word is normalised once (a collection repeats its vocabulary thousands of times)
_TERMS: dict[str, str] = {}
_TERMS_MAX = 500_000


class Lexical:
    """Document-term statistics for one collection; ``tfidf`` and ``bm25`` score a block of rows at once."""

    def __init__(self, texts: Sequence[str], k1: float = 1.2, b: float = 0.75, query_terms: int = 40) -> None:
        vocab: dict[str, int] = {}
        rows: list[int] = []
        cols: list[int] = []
        for row, text in enumerate(texts):
            for token in tokens(text):
                col = vocab.setdefault(token, len(vocab))
                rows.append(row)
                cols.append(col)
        self.vocab = vocab
        n = len(texts)
        shape = (n, max(len(vocab), 1))
        tf = sp.csr_matrix((np.ones(len(rows), dtype=np.float32), (rows, cols)), shape=shape)
        tf.sum_duplicates()
        self.n = n
        df = np.bincount(tf.indices, minlength=shape[1]).astype(np.float32)
        self.idf = np.log((n + 1) / (df + 1)).astype(np.float32) + 1.0
        # TF-IDF rows, sublinear tf, L2-normalised
        tfidf = tf.copy()
        tfidf.data = (1.0 + np.log(tfidf.data)) * self.idf[tfidf.indices]
        self.tfidf = _normalise_rows(tfidf)
        # BM25 document side
        lengths = np.asarray(tf.sum(axis=1)).ravel()
        avg = float(lengths.mean()) if n else 1.0
        bm = tf.copy()
        row_of = np.repeat(np.arange(n), np.diff(bm.indptr))
        denom = bm.data + k1 * (1 - b + b * lengths[row_of] / max(avg, 1e-9))
        bm_idf = np.log(1 + (n - df + 0.5) / (df + 0.5)).astype(np.float32)
        bm.data = (bm.data * (k1 + 1) / denom * bm_idf[bm.indices]).astype(np.float32)
        self.bm25_docs = bm.tocsr()
        # BM25 query side: each note's most distinctive terms, binary (bounds the sparse product)
        self.queries = top_terms(self.tfidf, query_terms)

    @staticmethod
    def transform_like(fitted: Lexical, texts: Sequence[str]) -> sp.csr_matrix:
        """TF-IDF rows for new texts in a fitted vocabulary (unknown words are dropped)."""
        rows: list[int] = []
        cols: list[int] = []
        for row, text in enumerate(texts):
            for token in tokens(text):
                col = fitted.vocab.get(token)
                if col is not None:
                    rows.append(row)
                    cols.append(col)
        tf = sp.csr_matrix((np.ones(len(rows), dtype=np.float32), (rows, cols)), shape=(len(texts), fitted.tfidf.shape[1]))
        tf.sum_duplicates()
        tf.data = (1.0 + np.log(tf.data)) * fitted.idf[tf.indices]
        return _normalise_rows(tf)

    def tfidf_block(self, rows: slice) -> np.ndarray:
        return np.asarray((self.tfidf[rows] @ self.tfidf.T).todense(), dtype=np.float32)

    def bm25_block(self, rows: slice) -> np.ndarray:
        return np.asarray((self.queries[rows] @ self.bm25_docs.T).todense(), dtype=np.float32)


def _normalise_rows(m: sp.csr_matrix) -> sp.csr_matrix:
    norms = np.sqrt(np.asarray(m.multiply(m).sum(axis=1)).ravel())
    norms[norms == 0] = 1.0
    return sp.csr_matrix(sp.diags(1.0 / norms) @ m)


def top_terms(m: sp.csr_matrix, k: int) -> sp.csr_matrix:
    rows: list[int] = []
    cols: list[int] = []
    for row in range(m.shape[0]):
        start, end = m.indptr[row], m.indptr[row + 1]
        if end == start:
            continue
        data = m.data[start:end]
        idx = m.indices[start:end]
        keep = idx[np.argsort(-data, kind="stable")[:k]]
        rows.extend([row] * len(keep))
        cols.extend(keep.tolist())
    return sp.csr_matrix((np.ones(len(rows), dtype=np.float32), (rows, cols)), shape=m.shape)

