"""A graph's edges read once into arrays, for the passes of the graph stage that need every edge."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

import numpy as np

from notegraph.model import edge_rows


class Edges:
    """Every edge of a graph, read from it once, as arrays: sources and targets as indices into
    ``ids``, kinds as indices into ``kind_names`` (the graph's three, then any other in order: a kind's
    code does not depend on which kinds a collection has), and scores (0 where ``scored`` is 0: the
    edge has none). In the order they are given (the graph's)."""

    KINDS = ("link", "similar", "source")

    def __init__(self, ids: Sequence[str], rows: Iterable[tuple[int, int, str, float | None]]) -> None:
        self.ids = list(ids)
        sources: list[int] = []
        targets: list[int] = []
        kinds: list[str] = []
        scores: list[float] = []
        scored: list[int] = []
        for source, target, kind, score in rows:
            sources.append(source)
            targets.append(target)
            kinds.append(kind)
            scores.append(0.0 if score is None else float(score))
            scored.append(score is not None)
        self.kind_names = [*self.KINDS, *sorted(set(kinds) - set(self.KINDS))]
        code = {name: i for i, name in enumerate(self.kind_names)}
        self.sources = np.array(sources, dtype=np.int64)
        self.targets = np.array(targets, dtype=np.int64)
        self.kinds = np.array([code[kind] for kind in kinds], dtype=np.uint8)
        self.scores = np.array(scores, dtype=np.float64)
        self.scored = np.array(scored, dtype=np.uint8)

    @classmethod
    def of(cls, graph: Any, ids: Sequence[str]) -> Edges:
        """The edges of a networkx multigraph that join two notes of ``ids``, of the kind their data
        names (``link`` when none)."""
        index = {note_id: i for i, note_id in enumerate(ids)}
        rows = edge_rows(graph)
        return cls(ids, ((index[u], index[v], data.get("kind", "link"), data.get("score")) for u, v, _key, data in rows if u in index and v in index))

    def by_name(self) -> np.ndarray:
        """The order of the edges sorted by (source, target, kind name), as their notes' and kinds'
        names sort (the ids are sorted, so their indices sort as they do)."""
        kind_order = np.argsort(np.argsort(np.array(self.kind_names)))  # each kind code's place by name
        return np.lexsort((kind_order[self.kinds], self.targets, self.sources))

    def joins(self) -> bytes:
        """A digest of which notes the edges join and with which kind (not their scores), whatever
        their order."""
        import hashlib

        order = self.by_name()
        digest = hashlib.sha256("\0".join(self.ids).encode() + b"\1" + "\0".join(self.kind_names).encode() + b"\1")
        digest.update(np.ascontiguousarray(np.stack([self.sources[order], self.targets[order], self.kinds[order].astype(np.int64)]), dtype="<i8").tobytes())
        return digest.digest()

    def drawn(self) -> np.ndarray:
        """The edges as the graph page draws them, each once and sorted: rows of (source, target, kind)
        between two different notes, the kind as an index into ``KINDS`` (another kind is drawn as a
        link), a similar edge from its lower note whichever way it was found."""
        a, b = self.sources, self.targets
        kinds = np.where(self.kinds < len(self.KINDS), self.kinds, 0).astype(np.int64)
        similar = kinds == self.KINDS.index("similar")
        low, high = np.where(similar, np.minimum(a, b), a), np.where(similar, np.maximum(a, b), b)
        return np.unique(np.stack([low, high, kinds], axis=1)[a != b], axis=0)

    def count(self) -> int:
        """Edges between two different notes, as the graph page draws them (``drawn``)."""
        return len(self.drawn())

    def __len__(self) -> int:
        return len(self.sources)

    def pairs(self, kinds: Iterable[str]) -> list[tuple[str, str]]:
        """(source, target) of each edge of ``kinds``, in order."""
        codes = [self.kind_names.index(kind) for kind in kinds if kind in self.kind_names]
        keep = np.isin(self.kinds, codes)
        ids = self.ids
        return [(ids[u], ids[v]) for u, v in zip(self.sources[keep].tolist(), self.targets[keep].tolist(), strict=True)]

    def triples(self) -> list[tuple[str, str, str]]:
        """(source, target, kind) of each edge, in order."""
        ids, names = self.ids, self.kind_names
        return [(ids[u], ids[v], names[k]) for u, v, k in zip(self.sources.tolist(), self.targets.tolist(), self.kinds.tolist(), strict=True)]
