"""Exact blocked top-k (notegraph.graph.similarity.top_k) against an approximate index (hnswlib).

    python benchmarks/topk_ann.py [--sizes 5000 20000 50000] [--k 10] [--dim 384]

Random unit vectors are the worst case for an approximate index (no cluster structure to exploit), so
recall here is a lower bound; clustered vectors (real notes) give higher recall at the same settings.
Exact is the reference for recall@k. hnswlib is optional: without it only exact is timed.
"""

from __future__ import annotations

import argparse
import os
import sys
import time

import numpy as np

from notegraph.graph.similarity import top_k


def unit_vectors(n: int, dim: int, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((n, dim), dtype=np.float32)
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    return x


def clustered_vectors(n: int, dim: int, seed: int = 0, clusters: int = 60) -> np.ndarray:
    """Vectors around ``clusters`` centres, closer to the geometry of note embeddings."""
    rng = np.random.default_rng(seed)
    centres = unit_vectors(clusters, dim, seed + 1)
    x = centres[rng.integers(clusters, size=n)] + 0.6 * unit_vectors(n, dim, seed + 2)
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    return x.astype(np.float32)


def time_exact(x: np.ndarray, k: int) -> tuple[float, np.ndarray]:
    start = time.perf_counter()
    idx, _scores = top_k(x, k)
    return time.perf_counter() - start, idx


def time_hnsw(x: np.ndarray, k: int, ef: int, m: int = 16) -> tuple[float, float, np.ndarray] | None:
    try:
        import hnswlib
    except ImportError:
        return None
    n, dim = x.shape
    start = time.perf_counter()
    index = hnswlib.Index(space="ip", dim=dim)
    index.init_index(max_elements=n, ef_construction=200, M=m, random_seed=0)
    index.set_num_threads(os.cpu_count() or 1)
    index.add_items(x, np.arange(n))
    build = time.perf_counter() - start
    index.set_ef(max(ef, k + 1))
    start = time.perf_counter()
    labels, _dist = index.knn_query(x, k=k + 1)
    query = time.perf_counter() - start
    # Drop each row's own id (hnsw usually returns it first); keep k.
    out = np.empty((n, k), dtype=np.int64)
    for row in range(n):
        own = labels[row][labels[row] != row]
        out[row] = own[:k]
    return build, query, out


def recall(approx: np.ndarray, exact: np.ndarray) -> float:
    k = exact.shape[1]
    hits = sum(len(set(a.tolist()) & set(e.tolist())) for a, e in zip(approx, exact, strict=True))
    return hits / (exact.shape[0] * k)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[5000, 20000, 50000])
    parser.add_argument("--k", type=int, default=10)
    parser.add_argument("--dim", type=int, default=384)
    parser.add_argument("--ef", type=int, nargs="+", default=[50, 200])
    args = parser.parse_args(argv)
    print(f"top-k, k={args.k}, dim={args.dim}, {os.cpu_count()} CPUs, numpy {np.__version__}; times in seconds, all n rows queried")
    print(f"{'n':>7} {'data':<9} {'exact':>7} {'hnsw build':>10} {'ef':>4} {'hnsw query':>10} {'hnsw total':>10} {'recall@k':>9}")
    for n in args.sizes:
        for label, make in (("random", unit_vectors), ("clustered", clustered_vectors)):
            x = make(n, args.dim)
            exact_s, exact_idx = time_exact(x, args.k)
            results = [(ef, time_hnsw(x, args.k, ef)) for ef in args.ef]
            if results[0][1] is None:
                print(f"{n:>7} {label:<9} {exact_s:>7.2f}   (hnswlib not installed)")
                continue
            for ef, res in results:
                assert res is not None
                build, query, idx = res
                print(f"{n:>7} {label:<9} {exact_s:>7.2f} {build:>10.2f} {ef:>4} {query:>10.2f} {build + query:>10.2f} {recall(idx, exact_idx):>9.4f}")
            sys.stdout.flush()
    return 0


if __name__ == "__main__":
    sys.exit(main())
