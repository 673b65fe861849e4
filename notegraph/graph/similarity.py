"""Exact cosine top-k by blocked matrix products (memory stays O(block x n), never n x n)."""

from __future__ import annotations

import numpy as np

BLOCK = 1024


def top_k_cross(
    queries: np.ndarray,
    candidates: np.ndarray,
    k: int,
    *,
    self_columns: np.ndarray | None = None,
    block: int = BLOCK,
) -> tuple[np.ndarray, np.ndarray]:
    """For each query row: the k best candidate rows by dot product (cosine for unit vectors), best first.

    ``self_columns[i]`` is the candidate column that *is* query i (or -1): it is never returned.
    Ties break by column index, so results are deterministic. Returns (indices int64, scores float32).
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
        sims = np.ascontiguousarray(queries[start:stop], dtype=np.float32) @ cand.T
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
    else:
        part = np.tile(np.arange(m), (rows, 1))
    part_scores = np.take_along_axis(scores, part, axis=1)
    order = np.lexsort((part, -part_scores), axis=1)
    return np.take_along_axis(part, order, axis=1), np.take_along_axis(part_scores, order, axis=1)


def top_k(vectors: np.ndarray, k: int, *, block: int = BLOCK) -> tuple[np.ndarray, np.ndarray]:
    """Each row's k nearest other rows."""
    return top_k_cross(vectors, vectors, k, self_columns=np.arange(vectors.shape[0]), block=block)
