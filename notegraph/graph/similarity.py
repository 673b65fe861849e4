"""Cosine top-k: exact by blocked matrix products (memory O(block x n), never n x n); HNSW for large n."""

from __future__ import annotations

import math
from typing import Any

import numpy as np

BLOCK = 1024

# The ranking's dot products (rank.Signals, lexical.Lexical) are taken in fixed point: each value
# becomes a whole number of 1/4,000ths, held in float32. Every product and every partial sum of a dot
# product of such rows is then a whole number below 2^24, which float32 holds exactly, so the result is
# the same in whatever order BLAS adds it up. With ordinary floats it is not: the same row scored in a
# block of other rows came out different in the last bit for ~1 element in 20 (OpenBLAS picks its
# kernels by shape), and a build could not score only the rows an edit touches and get the scores a
# build from nothing gets. A value moves by at most 1/8,000 (a cosine by ~1e-4), far below what tells
# related notes apart.
FIXED_STEPS = 4000.0


def fixed_scale(max_norm: float, dims: int) -> float:
    """Steps per unit for rows of at most ``max_norm`` over ``dims`` columns: 4,000 for unit rows.
    By Cauchy-Schwarz every partial sum of a dot product is at most (scale x norm + rounding)^2, which
    stays below 2^24."""
    unit = not math.isfinite(max_norm) or max_norm <= 1.001  # unit rows, give or take rounding
    bound = 1.001 if unit else max_norm
    scale = FIXED_STEPS if unit else FIXED_STEPS / max_norm
    while (scale * bound + 0.5 * math.sqrt(max(dims, 1))) ** 2 >= 2.0**24:
        scale /= 2.0
    return scale


def fixed(values: np.ndarray, scale: float) -> np.ndarray:
    """``values`` in whole steps of 1/``scale``, as float32."""
    return np.rint(np.asarray(values, dtype=np.float32) * np.float32(scale)).astype(np.float32)


def fixed_rows(vectors: np.ndarray) -> tuple[np.ndarray, float]:
    """``vectors``' rows in fixed point at the scale their longest row allows, and that scale."""
    x = np.ascontiguousarray(vectors, dtype=np.float32)
    norms = np.linalg.norm(x, axis=1) if x.size else np.zeros(0, dtype=np.float32)
    scale = fixed_scale(float(norms.max(initial=0.0)), x.shape[1] if x.ndim == 2 else 1)
    return fixed(x, scale), scale


def fixed_dot(left: np.ndarray, right: np.ndarray, scale: float) -> np.ndarray:
    """``left @ right.T`` of fixed-point rows (``fixed``), exact and back in units."""
    out = np.ascontiguousarray(left, dtype=np.float32) @ np.ascontiguousarray(right, dtype=np.float32).T
    out *= np.float32(1.0 / (scale * scale))
    return out

# HNSW settings, chosen with benchmarks/topk_ann.py (README "Performance"): recall@10 against exact
# stayed at or above 0.995 on clustered vectors and on hashed note text up to 50,000 rows (0.98 with
# expansion_add 64, which builds faster).
ANN_CONNECTIVITY = 16
ANN_EXPANSION_ADD = 128
ANN_EXPANSION_SEARCH = 64
ANN_EXTRA = 10  # candidates fetched beyond k, so that exact re-scoring can reorder near-ties
# The approximate result is checked against exact top-k on this many evenly spaced rows; below
# ANN_MIN_RECALL the whole search is redone exactly (vectors with no structure, where HNSW fails).
ANN_CHECK_ROWS = 256
ANN_MIN_RECALL = 0.95


def top_k_cross(
    queries: np.ndarray,
    candidates: np.ndarray,
    k: int,
    *,
    self_columns: np.ndarray | None = None,
    block: int = BLOCK,
    scale: float | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """For each query row: the k best candidate rows by dot product (cosine for unit vectors), best first.

    ``self_columns[i]`` is the candidate column that *is* query i (or -1): it is never returned.
    Ties break by column index, so results are deterministic. Returns (indices int64, scores float32).
    With ``scale``, the rows are in fixed point (``fixed``) and the products exact (``fixed_dot``).
    """
    n, m = queries.shape[0], candidates.shape[0]
    kk = min(k, m - (1 if self_columns is not None and m > 0 else 0))
    if n == 0 or kk <= 0:
        return np.zeros((n, 0), dtype=np.int64), np.zeros((n, 0), dtype=np.float32)
    cand = np.ascontiguousarray(candidates, dtype=np.float32)
    out_idx = np.empty((n, kk), dtype=np.int64)
    out_score = np.empty((n, kk), dtype=np.float32)
    for start in range(0, n, block):
        stop = min(start + block, n)
        if scale is None:
            sims = np.ascontiguousarray(queries[start:stop], dtype=np.float32) @ cand.T
        else:
            sims = fixed_dot(queries[start:stop], cand, scale)
        if self_columns is not None:
            rows = np.arange(stop - start)
            cols = self_columns[start:stop]
            valid = cols >= 0
            sims[rows[valid], cols[valid]] = -np.inf
        out_idx[start:stop], out_score[start:stop] = select_top(sims, kk)
    return out_idx, out_score


def select_top(scores: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Column indices and values of each row's k largest scores, best first, ties by column index."""
    rows, m = scores.shape
    if k < m:
        part = np.argpartition(-scores, k - 1, axis=1)[:, :k]
        part_scores = np.take_along_axis(scores, part, axis=1)
        # which of several columns tied at the k-th score argpartition keeps depends on the rest of the
        # row: such rows take the tied columns of lowest index, so a row's top k depends only on its
        # top scores (graph.rankstate keeps rows whose other scores changed)
        kth = part_scores.min(axis=1, initial=np.inf)[:, None]
        for row in np.flatnonzero((scores == kth).sum(axis=1) > (part_scores == kth).sum(axis=1)):
            part[row] = np.lexsort((np.arange(m), -scores[row]))[:k]
            part_scores[row] = scores[row, part[row]]
    else:
        part = np.tile(np.arange(m), (rows, 1))
        part_scores = np.take_along_axis(scores, part, axis=1)
    order = np.lexsort((part, -part_scores), axis=1)
    return np.take_along_axis(part, order, axis=1), np.take_along_axis(part_scores, order, axis=1)


def fixed_top_k(fixed_vectors: np.ndarray, scale: float, k: int, rows: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Each of ``rows``' (every row's by default) k best other rows by the dot product of fixed-point
    rows (``fixed``), best first, ties by column index: exact, so a row's result does not depend on
    the rows computed with it."""
    rows = np.arange(fixed_vectors.shape[0]) if rows is None else np.asarray(rows, dtype=np.int64)
    return top_k_cross(fixed_vectors[rows], fixed_vectors, k, self_columns=rows, scale=scale)


def top_k(vectors: np.ndarray, k: int, *, block: int = BLOCK) -> tuple[np.ndarray, np.ndarray]:
    """Each row's k nearest other rows."""
    return top_k_cross(vectors, vectors, k, self_columns=np.arange(vectors.shape[0]), block=block)


def nearest(vectors: np.ndarray, k: int, *, exact_max: int, block: int = BLOCK) -> tuple[np.ndarray, np.ndarray]:
    """Each row's k nearest other rows, like ``top_k``; above ``exact_max`` rows by an HNSW index.

    The index only proposes candidates: they are re-scored exactly, so the scores returned are true
    dot products and only the choice of neighbours is approximate. Deterministic for the same
    vectors (and the same usearch build on the same CPU): rows are added on one thread, because
    usearch's multi-threaded add builds a different graph on each run.
    """
    n = vectors.shape[0]
    kk = min(k, n - 1)
    if n <= exact_max or kk <= 0 or kk + 1 + ANN_EXTRA >= n:
        return top_k(vectors, k, block=block)
    x = np.ascontiguousarray(vectors, dtype=np.float32)
    idx, scores = index_top_k(build_index(x), x, kk, block=block)
    if sampled_recall(x, scores, block=block) < ANN_MIN_RECALL:
        return top_k(x, k, block=block)
    return idx, scores


def build_index(x: np.ndarray, *, threads: int = 1) -> Any:
    """An HNSW index (usearch) over the rows of x, keyed by row number; threads=0 means all cores."""
    from usearch.index import Index  # lazy: only large collections need it

    index = Index(
        ndim=x.shape[1],
        metric="ip",  # the exact path ranks by dot product too (cosine for unit vectors)
        # half precision inside the index: it only ranks candidates, which are re-scored in float32;
        # measured as fast as or faster than f32 with the same recall (i8 lost recall at 50,000)
        dtype="f16",
        connectivity=ANN_CONNECTIVITY,
        expansion_add=ANN_EXPANSION_ADD,
        expansion_search=ANN_EXPANSION_SEARCH,
    )
    index.add(np.arange(x.shape[0], dtype=np.uint64), x, threads=threads)
    return index


def index_top_k(index: Any, x: np.ndarray, k: int, *, block: int = BLOCK) -> tuple[np.ndarray, np.ndarray]:
    """Each row's k best other rows among the index's k + 1 + ANN_EXTRA candidates, re-scored exactly;
    best first, ties by column index. Needs k + 1 + ANN_EXTRA < number of rows."""
    n = x.shape[0]
    count = k + 1 + ANN_EXTRA  # + 1: a row usually finds itself first
    index.expansion_search = max(ANN_EXPANSION_SEARCH, count)
    matches = index.search(x, count)  # read-only, so its threads do not change the result
    candidates = matches.keys.astype(np.int64)
    valid = np.arange(count)[None, :] < np.asarray(matches.counts)[:, None]
    candidates[~valid] = 0
    out_idx = np.empty((n, k), dtype=np.int64)
    out_score = np.empty((n, k), dtype=np.float32)
    for start in range(0, n, block):
        stop = min(start + block, n)
        cand = candidates[start:stop]
        sims = np.einsum("rd,rcd->rc", x[start:stop], x[cand])
        sims[~valid[start:stop] | (cand == np.arange(start, stop)[:, None])] = -np.inf
        order = np.lexsort((cand, -sims), axis=1)[:, :k]
        out_idx[start:stop] = np.take_along_axis(cand, order, axis=1)
        out_score[start:stop] = np.take_along_axis(sims, order, axis=1)
    # a row the index gave fewer than k other candidates is searched exactly
    short = np.flatnonzero(~np.isfinite(out_score).all(axis=1))
    if short.size:
        out_idx[short], out_score[short] = top_k_cross(x[short], x, k, self_columns=short, block=block)
    return out_idx, out_score


def sampled_recall(x: np.ndarray, scores: np.ndarray, *, block: int = BLOCK) -> float:
    """recall@k of an approximate result on ANN_CHECK_ROWS evenly spaced rows, against exact top-k.

    A neighbour scoring at least exact's k-th best counts as found, so ties are not misses."""
    k = scores.shape[1]
    rows = np.unique(np.linspace(0, x.shape[0] - 1, min(ANN_CHECK_ROWS, x.shape[0])).astype(np.int64))
    _idx, exact_scores = top_k_cross(x[rows], x, k, self_columns=rows, block=block)
    return float((scores[rows] >= exact_scores[:, -1:] - 1e-6).mean())
