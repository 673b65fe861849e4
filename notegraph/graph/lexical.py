"""Lexical evidence: TF-IDF and BM25 over sparse matrices (scipy), scored in row blocks."""

from __future__ import annotations

import hashlib
import re
import zipfile
from collections.abc import Callable, Sequence
from functools import cached_property
from itertools import chain
from pathlib import Path

import numpy as np
import scipy.sparse as sp

from notegraph.fsutil import save_npz
from notegraph.graph.similarity import fixed, fixed_dot, fixed_scale

# words that say nothing of what a note is about: left out of the ranking's terms and the cluster labels
STOPWORDS = frozenset(
    """a about above after again against all also am an and any are as at be because been before being below
    between both but by can could did do does doing down during each few for from further had has have having he
    her here hers herself him himself his how i if in into is it its itself just me more most my myself no nor not
    now of off on once only or other our ours ourselves out over own same she should so some such than that the
    their theirs them themselves then there these they this those through to too under until up very was we were
    what when where which while who whom why will with would you your yours yourself yourselves one two may might
    must shall rather than thus yet via per within without across toward towards upon whether however therefore
    note notes paper papers concept concepts synthesis inquiry question questions claim claims use used using uses
    make makes made like well even much many way ways thing things less least whose another every each often
    first second new see e.g i.e etc
    """.split()
)

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
# Terms in at least this share of the notes are multiplied densely in ``Lexical.cosine``, at most this
# many of them (memory: notes x 512 x 4 bytes, 41 MB at 20,000 notes). Measured at 20,000 synthetic
# notes: 256 columns (df >= 5%) took a block of 512 rows from 0.61 s to 0.10 s; 128 to 2,048 columns
# all took 0.10-0.21 s.
DENSE_TERMS_MIN_SHARE = 0.05
DENSE_TERMS_MAX = 512


# Document frequencies above DF_EXACT are rounded to a geometric grid (steps of 2^(1/4), about 19%)
# before they weigh terms. With exact frequencies one edit moved the weight of every term whose count
# it changed in every note using the term, so the fourth decimal of most pairs' scores moved: after the
# benchmark's one-sentence edit in 5,000 notes, the related lists of 1,197 notes differed from the
# last build's, and nothing ranked could be kept. On the grid a count of df crosses a line about once
# in df x 0.17 changes of one, and then moves only that term's weight; after the same edit 26 notes'
# lists differed. Rounding moves a weight by at most half a step in log(df): 0.087 in an idf of 1 to ~10.
DF_EXACT = 16
DF_STEP = 2.0**0.25


def gridded(df: np.ndarray) -> np.ndarray:
    """Document frequencies on the grid: exact up to ``DF_EXACT``, geometric steps of ``DF_STEP`` above."""
    out = np.asarray(df, dtype=np.float64).copy()
    big = out > DF_EXACT
    step = np.log(DF_STEP)
    out[big] = np.exp(np.round(np.log(out[big]) / step) * step)
    return out.astype(np.float32)


class Lexical:
    """Document-term statistics for one collection; ``tfidf`` and ``bm25`` score a block of rows at once.

    The BM25 side (``bm25_docs``, ``queries``) is a baseline for `eval`, built the first time it is asked
    for; a build needs only TF-IDF."""

    def __init__(
        self,
        texts: Sequence[str],
        k1: float = 1.2,
        b: float = 0.75,
        query_terms: int = 40,
        *,
        counts: Callable[[Sequence[str]], tuple[list[str], sp.csr_matrix]] | None = None,
    ) -> None:
        """``counts`` gives the texts' ``term_counts`` (of ``tokens`` of each, unless given: a
        ``TermCounts`` keeps them between builds)."""
        self.terms, tf = counts(texts) if counts is not None else term_counts(list(map(tokens, texts)))
        self.vocab = {term: i for i, term in enumerate(self.terms)}
        n = len(texts)
        self.n = n
        self._tf, self._k1, self._b, self._query_terms = tf, k1, b, query_terms
        self.df = np.bincount(tf.indices, minlength=tf.shape[1]).astype(np.float32)
        self.idf = np.log((n + 1) / (gridded(self.df) + 1)).astype(np.float32) + 1.0
        # TF-IDF rows, sublinear tf, L2-normalised
        tfidf = tf.copy()
        tfidf.data = (1.0 + np.log(tfidf.data)) * self.idf[tfidf.indices]
        self.tfidf = _normalise_rows(tfidf)

    @cached_property
    def _split(self) -> tuple[np.ndarray, np.ndarray, np.ndarray, sp.csr_matrix, float]:
        """The TF-IDF columns of common terms as a dense matrix in fixed point, the rest sparse (see
        ``cosine``): (common columns, mask of the other columns, dense part, sparse part transposed,
        the dense part's fixed-point scale)."""
        n = self.n
        df = gridded(self.df)  # as the weights: an edit rarely moves a term across the line (see gridded)
        by_df = np.argsort(-df, kind="stable")[:DENSE_TERMS_MAX]
        common = np.sort(by_df[df[by_df] >= max(DENSE_TERMS_MIN_SHARE * n, 2.0)])
        rare_mask = np.ones(self.tfidf.shape[1], dtype=np.float32)
        rare_mask[common] = 0.0
        scale = fixed_scale(1.0, len(common))  # rows of unit length, so any part of them is shorter
        dense = fixed(self.tfidf[:, common].toarray(), scale)
        return common, rare_mask, dense, _drop_columns(self.tfidf, rare_mask).T.tocsr(), scale

    def common_terms(self) -> list[str]:
        """The terms whose columns are multiplied densely, in column order."""
        return [self.terms[i] for i in self._split[0]]

    def split_scale(self) -> float:
        return self._split[4]

    def columns(self, cols: np.ndarray) -> np.ndarray:
        """``cosine`` of every note with the notes ``cols`` (all notes x cols, dense), as ``cosine``
        computes it for their rows, up to float rounding in the sparse part."""
        _common, _rare_mask, dense_part, rare_t, scale = self._split
        out = fixed_dot(dense_part, dense_part[cols], scale)
        out += (rare_t.T @ rare_t[:, cols]).toarray()
        return out

    def prepare(self) -> None:
        """Make the dense/sparse split now (before workers fork, so that they share one copy)."""
        _ = self._split

    def release(self) -> None:
        """Free the dense/sparse split (41 MB at 20,000 notes) once the ranking tables are made; the
        next ``cosine`` makes it again."""
        self.__dict__.pop("_split", None)

    def cosine(self, left: sp.csr_matrix) -> tuple[np.ndarray, sp.csr_matrix]:
        """TF-IDF cosine of ``left``'s rows (rows of ``tfidf``, or queries in its vocabulary) with every
        note, as a dense part and a sparse part whose sum is ``left @ tfidf.T``.

        Terms that a large share of the notes use make that product almost entirely non-zero: computed
        sparse, it cost 90% of a ranking block at 20,000 notes. Their columns are multiplied densely
        (BLAS, in fixed point: see graph.similarity.fixed), and the rest, whose product stays sparse,
        through scipy: 6x faster, the same up to 1/8,000 of a term weight. Each row's result is the
        same whichever other rows it is computed with."""
        common, rare_mask, dense_part, rare_t, scale = self._split
        left = sp.csr_matrix(left)
        dense = fixed_dot(fixed(left[:, common].toarray(), scale), dense_part, scale)
        return dense, sp.csr_matrix(_drop_columns(left, rare_mask) @ rare_t)

    @cached_property
    def bm25_docs(self) -> sp.csr_matrix:
        """BM25's document side."""
        tf, n, k1, b = self._tf, self.n, self._k1, self._b
        lengths = np.asarray(tf.sum(axis=1)).ravel()
        avg = float(lengths.mean()) if n else 1.0
        bm = tf.copy()
        row_of = np.repeat(np.arange(n), np.diff(bm.indptr))
        denom = bm.data + k1 * (1 - b + b * lengths[row_of] / max(avg, 1e-9))
        bm_idf = np.log(1 + (n - self.df + 0.5) / (self.df + 0.5)).astype(np.float32)
        bm.data = (bm.data * (k1 + 1) / denom * bm_idf[bm.indices]).astype(np.float32)
        return bm.tocsr()

    @cached_property
    def queries(self) -> sp.csr_matrix:
        """BM25's query side: each note's most distinctive terms, binary (bounds the sparse product)."""
        return top_terms(self.tfidf, self._query_terms)

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


def term_counts(per_text: Sequence[list[str]]) -> tuple[list[str], sp.csr_matrix]:
    """The texts' terms, sorted, and how often each text has each: a texts x terms matrix (float32
    counts, each row's columns in order).

    Term ids are in the terms' own order, not in the order notes first use them: an edit that brings a
    word into an earlier note must not move its column among the others (sums would change order). The
    vocabulary is made from a set and the ids looked up with map() (C loops), into 4-byte ids (not
    Python ints: 165 MB at 20,000 notes)."""
    lengths = np.fromiter(map(len, per_text), dtype=np.int64, count=len(per_text))
    terms = sorted(set(chain.from_iterable(per_text)))
    vocab = {term: i for i, term in enumerate(terms)}
    cols = np.fromiter(map(vocab.__getitem__, chain.from_iterable(per_text)), dtype=np.int32, count=int(lengths.sum()))
    n = len(per_text)
    rows = np.repeat(np.arange(n, dtype=np.int32), lengths)
    tf = sp.csr_matrix((np.ones(len(cols), dtype=np.float32), (rows, cols)), shape=(n, max(len(terms), 1)))
    tf.sum_duplicates()
    return terms, tf


COUNTS_FORMAT = 1


class TermCounts:
    """``term_counts`` of the ranking texts, kept between builds in one numpy file under a hash of each
    text and notegraph's code: a build tokenizes only the texts it has not seen.

    Reading terms back per text and building the matrix again took 0.17 s of a one-edit build at
    5,000 notes; the kept matrix is read in one go, the rows of texts that changed are tokenized, and
    the columns of both are mapped onto the new vocabulary (sorted, so each kept row's columns stay in
    order). The result is the matrix ``term_counts`` makes from nothing, bit for bit (tests/test_graph.py).
    Stored with numpy (``allow_pickle=False``), so loading it runs no code; a damaged file is no file."""

    def __init__(self, path: Path, tokenizer: Callable[[str], list[str]] = tokens) -> None:
        self.path = path
        self.tokenizer = tokenizer
        self.tokenized = 0  # texts tokenized by the last call (the others were kept)

    def __call__(self, texts: Sequence[str]) -> tuple[list[str], sp.csr_matrix]:
        from notegraph.version import code_version

        keys = _text_keys(texts, f"{code_version()}\0{COUNTS_FORMAT}\0")
        kept = self._load()
        old_row: dict[bytes, int] = {}
        if kept is not None:
            for i, key in enumerate(kept[0]):
                old_row.setdefault(key, i)
        rows = np.array([old_row.get(key, -1) for key in keys], dtype=np.int64)
        missing = np.flatnonzero(rows < 0)
        self.tokenized = len(missing)
        new_terms, new_tf = term_counts([self.tokenizer(texts[i]) for i in missing.tolist()])
        if kept is None or len(missing) == len(texts):
            terms, tf = new_terms, new_tf
        else:
            _old_keys, old_terms, old_tf = kept
            present = rows[rows >= 0]
            kept_tf = old_tf[present]
            used = np.zeros(len(old_terms), dtype=bool)
            used[kept_tf.indices] = True
            terms = sorted({term for term, u in zip(old_terms, used.tolist(), strict=True) if u}.union(new_terms))
            column = {term: i for i, term in enumerate(terms)}
            width = max(len(terms), 1)
            old_to_new = np.array([column.get(term, -1) for term in old_terms] or [0], dtype=np.int32)
            new_to_new = np.array([column[term] for term in new_terms] or [0], dtype=np.int32)
            kept_tf = sp.csr_matrix((kept_tf.data, old_to_new[kept_tf.indices], kept_tf.indptr), shape=(len(present), width))
            new_tf = sp.csr_matrix((new_tf.data, new_to_new[new_tf.indices], new_tf.indptr), shape=(len(missing), width))
            # kept rows then new rows, put back in the texts' order
            order = np.empty(len(texts), dtype=np.int64)
            order[rows >= 0] = np.arange(len(present))
            order[missing] = len(present) + np.arange(len(missing))
            tf = sp.csr_matrix(sp.vstack([kept_tf, new_tf], format="csr")[order])
        if kept is None or kept[0] != keys:  # new texts, or texts gone or moved
            self._save(keys, terms, tf)
        return terms, tf

    def _load(self) -> tuple[list[bytes], list[str], sp.csr_matrix] | None:
        try:
            with np.load(self.path, allow_pickle=False) as data:
                if int(data["format"]) != COUNTS_FORMAT:
                    return None
                keys, blob = data["keys"], data["terms"].tobytes()
                indptr, indices, counts = data["indptr"].astype(np.int64), data["indices"].astype(np.int32), data["counts"].astype(np.float32)
        except (OSError, ValueError, KeyError, TypeError, EOFError, zipfile.BadZipFile):
            return None
        try:
            terms = blob.decode("utf-8").split("\n") if blob else []
        except UnicodeDecodeError:
            return None
        m = len(keys)
        intact = (
            keys.ndim == 2
            and keys.shape[1] == 16
            and indptr.shape == (m + 1,)
            and indptr[0] == 0
            and indptr[-1] == len(indices) == len(counts)
            and bool(np.all(np.diff(indptr) >= 0))
            and (not len(indices) or (int(indices.min()) >= 0 and int(indices.max()) < len(terms)))
            and _rows_ascending(indices, indptr)
            and bool(np.all(counts >= 1))
            and terms == sorted(set(terms))
        )
        if not intact:
            return None
        tf = sp.csr_matrix((counts, indices, indptr), shape=(m, max(len(terms), 1)))
        return [bytes(key) for key in keys], terms, tf

    def _save(self, keys: list[bytes], terms: list[str], tf: sp.csr_matrix) -> None:
        arrays = {
            "format": np.array(COUNTS_FORMAT),
            "keys": np.frombuffer(b"".join(keys), dtype=np.uint8).reshape(len(keys), 16),
            "terms": np.frombuffer("\n".join(terms).encode("utf-8"), dtype=np.uint8),
            "indptr": tf.indptr.astype(np.int64),
            "indices": tf.indices.astype(np.int32),
            "counts": tf.data.astype(np.float32),
        }
        save_npz(self.path, arrays)


def _text_keys(texts: Sequence[str], salt: str) -> list[bytes]:
    """Each text's key in a kept file: a blake2b hash of ``salt`` (what else its entry depends on)
    and the text."""
    prefix = salt.encode()
    return [hashlib.blake2b(prefix + text.encode("utf-8", "surrogatepass"), digest_size=16).digest() for text in texts]


def _rows_ascending(indices: np.ndarray, indptr: np.ndarray) -> bool:
    """Whether each row's columns are strictly ascending (sorted, no column twice), as ``term_counts`` makes them."""
    steps = np.diff(indices)
    within = np.ones(len(steps), dtype=bool)
    ends = indptr[1:-1] - 1  # a step from a row's last entry to the next row's first
    within[ends[(ends >= 0) & (ends < len(steps))]] = False
    return bool(np.all(steps[within] > 0))


def _drop_columns(m: sp.csr_matrix, keep: np.ndarray) -> sp.csr_matrix:
    """``m`` with the columns where ``keep`` is 0 removed from its stored entries."""
    out = sp.csr_matrix(m, copy=True)
    out.data = out.data * keep[out.indices]
    out.eliminate_zeros()
    return out


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
