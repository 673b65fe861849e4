"""The related-notes ranking shared by the site, `related`, `export` and `eval`, with its evidence."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import networkx as nx
import numpy as np

from notegraph.graph.similarity import top_k_cross
from notegraph.model import Collection, Related

POOL = 50  # candidates kept per note and kind before filtering


class Ranker:
    """Ranks notes for a note by cosine of note vectors, computed once per kind in blocked products."""

    def __init__(self, collection: Collection, embeddings: Any, graph: nx.MultiDiGraph) -> None:
        self.collection = collection
        self.embeddings = embeddings
        self.graph = graph
        self.ids: list[str] = list(embeddings.ids)
        self.index = {note_id: i for i, note_id in enumerate(self.ids)}
        self.vectors: np.ndarray = embeddings.vectors
        self._tables: dict[str | None, tuple[np.ndarray, np.ndarray, list[str]]] = {}

    def _table(self, kind: str | None) -> tuple[np.ndarray, np.ndarray, list[str]]:
        if kind not in self._tables:
            notes = self.collection.notes
            cols = [i for i, note_id in enumerate(self.ids) if kind is None or notes[note_id].kind == kind]
            cand_ids = [self.ids[i] for i in cols]
            position = {note_index: col for col, note_index in enumerate(cols)}
            self_cols = np.array([position.get(i, -1) for i in range(len(self.ids))], dtype=np.int64)
            idx, scores = top_k_cross(self.vectors, self.vectors[cols] if cols else self.vectors[:0], POOL, self_columns=self_cols)
            self._tables[kind] = (idx, scores, cand_ids)
        return self._tables[kind]

    def related(self, note_id: str, k: int, *, kind: str | None = None, min_score: float | None = None) -> tuple[Related, ...]:
        row = self.index.get(note_id)
        if row is None:
            return ()
        idx, scores, cand_ids = self._table(kind)
        out: list[Related] = []
        for col, score in zip(idx[row], scores[row], strict=True):
            if not np.isfinite(score) or score <= 0.0:
                continue
            if min_score is not None and score < min_score:
                break
            out.append(self.explain(note_id, cand_ids[int(col)], score=float(score)))
            if len(out) >= k:
                break
        return tuple(out)

    def score(self, a: str, b: str) -> float:
        ia, ib = self.index.get(a), self.index.get(b)
        if ia is None or ib is None:
            return 0.0
        return float(self.vectors[ia] @ self.vectors[ib])

    def explain(self, note_id: str, other: str, *, score: float | None = None, why: tuple[str, ...] = ()) -> Related:
        """The evidence a reader can check: relations in the graph and the best-matching passage pair."""
        reasons = list(why)
        g = self.graph
        for kind, label in (("link", "link"), ("source", "cited source")):
            if (g.has_edge(note_id, other, key=kind) or g.has_edge(other, note_id, key=kind)) and label not in reasons:
                reasons.append(label)
        if (g.has_edge(note_id, other, key="similar") or g.has_edge(other, note_id, key="similar")) and "similar" not in reasons:
            reasons.append("similar")
        shared = _shared_sources(self.collection.notes, g, note_id, other)
        if shared:
            reasons.append(f"shared sources: {shared}")
        own, theirs = self.passages(note_id, other)
        return Related(
            id=other,
            score=round(score if score is not None else self.score(note_id, other), 4),
            why=tuple(reasons),
            passage=theirs,
            own_passage=own,
        )

    def passages(self, a: str, b: str) -> tuple[str, str]:
        chunks = self.embeddings.chunks
        vecs = self.embeddings.chunk_vectors
        if a not in vecs or b not in vecs or len(vecs[a]) == 0 or len(vecs[b]) == 0:
            return "", ""
        sims = vecs[a] @ vecs[b].T
        i, j = np.unravel_index(int(np.argmax(sims)), sims.shape)
        return _excerpt(chunks[a][i]), _excerpt(chunks[b][j])


def _shared_sources(notes: Mapping[str, Any], graph: nx.MultiDiGraph, a: str, b: str) -> int:
    """How many notes both a and b link to or cite (co-citation evidence)."""
    if a not in graph or b not in graph:
        return 0
    out_a = {t for _, t, d in graph.out_edges(a, data=True) if d["kind"] != "similar"}
    out_b = {t for _, t, d in graph.out_edges(b, data=True) if d["kind"] != "similar"}
    return len(out_a & out_b)


def _excerpt(text: str, limit: int = 240) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[:limit].rsplit(" ", 1)[0] + "…"
