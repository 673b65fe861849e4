"""Approximate top-k (HNSW via usearch) against exact: recall, exact scores, determinism, the build path."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from conftest import write

from notegraph.config import load_settings
from notegraph.graph import similarity
from notegraph.graph.similarity import nearest, top_k
from notegraph.pipeline import analyse


def clustered(n: int, dim: int = 64, seed: int = 0, centres: int = 30) -> np.ndarray:
    rng = np.random.default_rng(seed)
    c = rng.standard_normal((centres, dim)).astype(np.float32)
    c /= np.linalg.norm(c, axis=1, keepdims=True)
    noise = rng.standard_normal((n, dim)).astype(np.float32)
    noise /= np.linalg.norm(noise, axis=1, keepdims=True)
    x = c[rng.integers(centres, size=n)] + 0.6 * noise
    return (x / np.linalg.norm(x, axis=1, keepdims=True)).astype(np.float32)


@pytest.fixture
def no_exact_fallback(monkeypatch: pytest.MonkeyPatch) -> None:
    """Fail if `nearest` answers with the full exact search, so the approximate path is what is tested."""

    def refuse(*args: object, **kwargs: object) -> None:
        raise AssertionError("nearest fell back to exact top_k")

    monkeypatch.setattr(similarity, "top_k", refuse)


def test_recall_and_exact_scores(no_exact_fallback: None):
    x = clustered(3000)
    idx, scores = nearest(x, 10, exact_max=100)
    exact_idx, exact_scores = top_k(x, 10)  # this module's own reference, not the patched one
    assert idx.shape == scores.shape == (3000, 10) and idx.dtype == np.int64 and scores.dtype == np.float32
    # recall@10: a neighbour counts as found when it scores at least exact's 10th best (ties count)
    found = scores >= exact_scores[:, -1:] - 1e-6
    assert found.mean() >= 0.95
    hits = np.mean([len(set(a) & set(e)) / 10 for a, e in zip(idx.tolist(), exact_idx.tolist(), strict=True)])
    assert hits >= 0.95
    # the scores are the exact cosines of the neighbours returned, best first, never the row itself
    true = np.einsum("rd,rkd->rk", x, x[idx])
    np.testing.assert_allclose(scores, true, atol=1e-5)
    assert (np.diff(scores, axis=1) <= 0).all()
    assert not (idx == np.arange(3000)[:, None]).any()
    assert all(len(set(row)) == 10 for row in idx.tolist())


def test_deterministic(no_exact_fallback: None):
    x = clustered(2000, seed=3)
    first = nearest(x, 7, exact_max=0)
    second = nearest(x.copy(), 7, exact_max=0)
    assert np.array_equal(first[0], second[0]) and np.array_equal(first[1], second[1])


def test_exact_at_or_below_threshold():
    x = clustered(500)
    for got, want in zip(nearest(x, 5, exact_max=500), top_k(x, 5), strict=True):
        assert np.array_equal(got, want)


@pytest.mark.parametrize("n", [0, 1, 2, 3, 12])
def test_tiny_inputs(n: int):
    x = clustered(n, dim=8) if n else np.zeros((0, 8), np.float32)
    idx, scores = nearest(x, 5, exact_max=0)
    assert idx.shape == scores.shape == (n, min(5, max(n - 1, 0)))
    assert not (idx == np.arange(n)[:, None]).any()


def test_low_sampled_recall_falls_back_to_exact(monkeypatch: pytest.MonkeyPatch):
    # Vectors without neighbourhood structure (random, many dimensions) defeat HNSW; the sampled
    # recall check then answers exactly. A bar no index can reach forces that path here.
    monkeypatch.setattr(similarity, "ANN_MIN_RECALL", 1.01)
    x = clustered(1000)
    for got, want in zip(nearest(x, 10, exact_max=0), top_k(x, 10), strict=True):
        assert np.array_equal(got, want)


TOPICS = [
    "grounding dialogue repair turn speaker listener acknowledgement clarification backchannel uptake",
    "scaling compute tokens parameters loss curve training budget optimal frontier",
    "infant learner vocabulary word acquisition caregiver gesture pointing joint attention",
    "privacy fairness bias harm audit policy regulation consent disclosure risk",
    "graph node edge community cluster path centrality network hub modularity",
    "prosody rhythm timing pause overlap pitch stress intonation silence tempo",
]


def collection(root: Path, n: int, seed: int = 0) -> Path:
    rng = np.random.default_rng(seed)
    shared = "the of and to in is that for model evidence result study".split()
    for i in range(n):
        topic = TOPICS[i % len(TOPICS)].split()
        words = [str(rng.choice(topic)) if rng.random() < 0.6 else str(rng.choice(shared)) for _ in range(40)]
        write(root, f"t{i % len(TOPICS)}/note-{i:04d}.md", f"---\ntitle: Note {i}\n---\n{' '.join(words)}\n")
    return root


def similar_edges(result) -> dict[str, set[str]]:
    out: dict[str, set[str]] = {}
    for u, v, data in result.graph.edges(data=True):
        if data["kind"] == "similar":
            out.setdefault(u, set()).add(v)
            out.setdefault(v, set()).add(u)
    return out


def test_build_with_low_ann_threshold_matches_exact(tmp_path: Path, no_exact_fallback: None, monkeypatch: pytest.MonkeyPatch):
    root = collection(tmp_path / "notes", 240)
    write(root, "notegraph.toml", 'model = "fake/hash-64"\nann_threshold = 20\nsimilar_threshold = 0.3\n')
    settings = load_settings(root)
    assert settings.ann_threshold == 20
    approx = similar_edges(analyse(settings).graph)
    monkeypatch.undo()  # the exact build below may use top_k
    exact = similar_edges(analyse(load_settings(root, ann_threshold=1000)).graph)
    assert len(exact) > 200
    same = sum(approx.get(note) == edges for note, edges in exact.items())
    assert same >= 0.95 * len(exact)


@pytest.mark.parametrize("n", [0, 1, 2])
def test_tiny_collection_builds(tmp_path: Path, n: int):
    root = collection(tmp_path / "notes", n)
    write(root, "notegraph.toml", 'model = "fake/hash-64"\nann_threshold = 0\n')
    result = analyse(load_settings(root)).graph
    assert result.graph.number_of_nodes() == n
