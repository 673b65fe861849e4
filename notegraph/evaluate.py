"""`notegraph eval`: link prediction with the collection's own links as held-out labels.

For every note with at least one resolved outgoing link, its links are hidden (their shown text removed
from its text, its outgoing edges removed from the graph evidence) and every other note is ranked. The
rest of the collection keeps its links, as it does in real use. Reported per method: recall@5,
recall@10 and MRR (reciprocal rank of the first true target).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, fields, replace
from typing import Any

import numpy as np

from notegraph.graph.lexical import Lexical
from notegraph.graph.rank import DEFAULT_WEIGHTS, Signals, Weights, ranking_text
from notegraph.model import Collection, Note

BLOCK = 256


@dataclass(frozen=True)
class MethodScore:
    method: str
    recall_at_5: float
    recall_at_10: float
    mrr: float

    def to_json(self) -> dict[str, Any]:
        return {"method": self.method, "recall@5": self.recall_at_5, "recall@10": self.recall_at_10, "mrr": self.mrr}


@dataclass(frozen=True)
class EvalReport:
    queries: int
    notes: int
    methods: tuple[MethodScore, ...]

    def to_json(self) -> dict[str, Any]:
        return {"queries": self.queries, "notes": self.notes, "methods": [m.to_json() for m in self.methods]}


def link_targets(collection: Collection) -> dict[str, list[str]]:
    """Each note's distinct resolved link targets (other notes only)."""
    targets: dict[str, set[str]] = {}
    for link in collection.resolved():
        assert link.target is not None
        targets.setdefault(link.source, set()).add(link.target)
    return {source: sorted(t) for source, t in sorted(targets.items())}


def without_links(note: Note) -> Note:
    """The note as the query sees it: the shown text of its links removed from its text."""
    text = note.text
    phrases = {words for raw in note.links for words in (raw.shown, raw.target, posixpath_stem(raw.target)) if words and len(words) > 1}
    # longest first, in a fixed order: a short name removed first would leave pieces of a longer one
    for words in sorted(phrases, key=lambda w: (-len(w), w)):
        text = re.sub(r"(?<!\w)" + re.escape(words) + r"(?!\w)", " ", text, flags=re.I)
    return replace(note, text=" ".join(text.split()), links=())


def posixpath_stem(target: str) -> str:
    name = target.rsplit("/", 1)[-1]
    return name[:-3] if name.lower().endswith(".md") else name


# every signal off (the cap is a parameter, not a signal): a baseline turns exactly one back on
_NONE = Weights(**{f.name: 0.0 for f in fields(Weights) if f.name != "cap"})
METHODS: dict[str, Weights] = {
    "tfidf": replace(_NONE, lexical=1.0),
    "bm25": replace(_NONE, bm25=1.0),
    "embedding": replace(_NONE, cosine=1.0),
    "default": DEFAULT_WEIGHTS,
}


def evaluate(
    collection: Collection,
    embed: Callable[[Mapping[str, Note]], Any],
    methods: Mapping[str, Weights] | None = None,
    *,
    ks: Sequence[int] = (5, 10),
) -> EvalReport:
    """Run link prediction. ``embed`` maps notes -> an Embeddings object (ids, vectors), cached."""
    methods = dict(methods or METHODS)
    notes = collection.notes
    ids = sorted(notes)
    index = {note_id: i for i, note_id in enumerate(ids)}
    truth = {q: [index[t] for t in ts if t in index] for q, ts in link_targets(collection).items() if q in index}
    truth = {q: ts for q, ts in truth.items() if ts}
    queries = sorted(truth)
    if not queries:
        return EvalReport(0, len(ids), tuple(MethodScore(m, 0.0, 0.0, 0.0) for m in methods))

    full = embed(notes)
    vectors = _aligned(full, ids)
    hidden = {f"{q}\x00query": without_links(notes[q]) for q in queries}
    hidden_emb = embed(hidden)
    query_vectors = _aligned(hidden_emb, [f"{q}\x00query" for q in queries])

    edges = [(link.source, link.target) for link in collection.resolved() if link.target]
    signals = Signals(ids, vectors, [ranking_text(notes[i]) for i in ids], edges)
    query_texts = [ranking_text(hidden[f"{q}\x00query"]) for q in queries]
    query_lexical = Lexical.transform_like(signals.lexical, query_texts)

    results: list[MethodScore] = []
    for name, weights in methods.items():
        hits = {k: [] for k in ks}  # type: dict[int, list[float]]
        rr: list[float] = []
        for start in range(0, len(queries), BLOCK):
            block_q = queries[start : start + BLOCK]
            rows = np.array([index[q] for q in block_q])
            scores = signals.block(
                rows,
                weights,
                hide_out_links=True,
                query_vectors=query_vectors[start : start + len(block_q)],
                query_lexical=query_lexical[start : start + len(block_q)],
            )
            scores[np.arange(len(rows)), rows] = -np.inf
            order = np.argsort(-scores, axis=1, kind="stable")
            for r, q in enumerate(block_q):
                wanted = set(truth[q])
                ranked = order[r]
                for k in ks:
                    hits[k].append(len(wanted.intersection(ranked[:k].tolist())) / len(wanted))
                first = next((pos for pos, col in enumerate(ranked[:1000]) if col in wanted), None)
                rr.append(0.0 if first is None else 1.0 / (first + 1))
        results.append(MethodScore(name, round(float(np.mean(hits[5])), 4), round(float(np.mean(hits[10])), 4), round(float(np.mean(rr)), 4)))
    return EvalReport(len(queries), len(ids), tuple(results))


def _aligned(embeddings: Any, ids: Sequence[str]) -> np.ndarray:
    position = {note_id: i for i, note_id in enumerate(embeddings.ids)}
    dim = embeddings.vectors.shape[1] if embeddings.vectors.ndim == 2 else 0
    out = np.zeros((len(ids), dim), dtype=np.float32)
    for row, note_id in enumerate(ids):
        if note_id in position:
            out[row] = embeddings.vectors[position[note_id]]
    return out
