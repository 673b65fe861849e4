"""Exact blocked top-k against the approximate path (usearch HNSW) that the build uses above ann_threshold.

    python benchmarks/topk_ann.py [--sizes 5000 20000 50000] [--k 10] [--dim 384] [--data clustered text random] [--threads-cost]

For each size and kind of data, in one run: exact ``top_k`` (the reference), the usearch index as
``similarity.nearest`` builds it (rows added on one thread, which is what makes it deterministic),
with ``--threads-cost`` the same add on all threads (what determinism costs), the query with exact re-scoring of the
candidates, the sampled recall check, and recall@10 of the approximate result against exact. The
``nearest`` column is what the build pays: add + query + check, plus the exact search when the check
fails (the recall column is the index's own, before that fallback). Ratio is nearest / exact (below 1:
the index is faster).

Data: ``clustered`` (unit vectors around 60 centres), ``text`` (notes from benchmarks/generate.py's
word model embedded by notegraph's hashing FakeEmbedder) and ``random`` unit vectors, which have no
neighbourhood structure and are the worst case for any graph index.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

from notegraph.graph import similarity
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


def text_vectors(n: int, dim: int, seed: int = 0) -> np.ndarray:
    """Title-like words plus a ~200-word body per note from generate.py's topic word model, hashed by
    FakeEmbedder: the structure of a real collection without writing files or loading a model."""
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from generate import _Generator, _zipf

    from notegraph.embed import FakeEmbedder

    g = _Generator(n, seed)
    topics = g.rng.choice(g.n_topics, size=n, p=_zipf(g.n_topics, 0.6))
    texts = []
    for t in topics.tolist():
        n_words = max(60, int(g.rng.normal(200, 45)))
        texts.append(" ".join(g.words_only(t, 6)) + " " + " ".join(g.words(t, n_words)))
    return FakeEmbedder(dim).encode(texts)


DATA: dict[str, Callable[[int, int], np.ndarray]] = {"clustered": clustered_vectors, "text": text_vectors, "random": unit_vectors}


def recall(scores: np.ndarray, exact_scores: np.ndarray) -> float:
    """recall@k; a neighbour scoring at least exact's k-th best counts (ties are not misses)."""
    return float((scores >= exact_scores[:, -1:] - 1e-6).mean())


def determinism(n: int, dim: int) -> None:
    x = clustered_vectors(n, dim)
    for threads, label in ((1, "1 thread"), (0, "all threads")):
        first, second = (bytes(similarity.build_index(x, threads=threads).save()) for _ in range(2))
        print(f"  add on {label}: two indexes of the same {n:,} vectors are {'identical' if first == second else 'different'}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[5000, 20000, 50000])
    parser.add_argument("--k", type=int, default=10)
    parser.add_argument("--dim", type=int, default=384)
    parser.add_argument("--data", nargs="+", choices=list(DATA), default=list(DATA))
    parser.add_argument("--threads-cost", action="store_true", help="also time usearch's add on all threads")
    args = parser.parse_args(argv)
    import usearch

    print(
        f"top-k, k={args.k}, dim={args.dim}, {os.cpu_count()} CPUs, numpy {np.__version__}, usearch {usearch.__version__}; "
        f"HNSW connectivity {similarity.ANN_CONNECTIVITY}, expansion_add {similarity.ANN_EXPANSION_ADD}, "
        f"expansion_search {similarity.ANN_EXPANSION_SEARCH}, k+1+{similarity.ANN_EXTRA} candidates re-scored; "
        "seconds, all n rows queried"
    )
    print("determinism of usearch's add:")
    determinism(min(args.sizes), args.dim)
    print(
        f"{'n':>7} {'data':<9} {'exact':>7} {'add':>7} {'add all':>7} {'query':>7} {'check':>6} {'nearest':>8} "
        f"{'ratio':>6} {'recall@k':>8}  fell back to exact"
    )
    for n in args.sizes:
        for label in args.data:
            x = DATA[label](n, args.dim)
            t0 = time.perf_counter()
            _exact_idx, exact_scores = top_k(x, args.k)
            t1 = time.perf_counter()
            index = similarity.build_index(x)
            t2 = time.perf_counter()
            _idx, scores = similarity.index_top_k(index, x, args.k)
            t3 = time.perf_counter()
            sampled = similarity.sampled_recall(x, scores)
            t4 = time.perf_counter()
            del index
            add_all = f"{'-':>7}"
            if args.threads_cost:
                similarity.build_index(x, threads=0)
                add_all = f"{time.perf_counter() - t4:>7.2f}"
            exact_s, add_s, query_s, check_s = t1 - t0, t2 - t1, t3 - t2, t4 - t3
            fell_back = sampled < similarity.ANN_MIN_RECALL
            nearest_s = add_s + query_s + check_s + (exact_s if fell_back else 0.0)
            print(
                f"{n:>7} {label:<9} {exact_s:>7.2f} {add_s:>7.2f} {add_all} {query_s:>7.2f} {check_s:>6.2f} "
                f"{nearest_s:>8.2f} {nearest_s / exact_s:>6.2f} {recall(scores, exact_scores):>8.4f}  "
                f"{'yes' if fell_back else 'no'} (sampled recall {sampled:.3f})"
            )
            sys.stdout.flush()
    return 0


if __name__ == "__main__":
    sys.exit(main())
