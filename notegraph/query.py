"""Read-only questions over a built graph: find a note, related notes (by note or free text), export."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import networkx as nx
import numpy as np

from notegraph.graph.similarity import top_k_cross
from notegraph.model import Collection, GraphResult, Note
from notegraph.resolve import NameIndex, _key

JSON_VERSION = 1


def find_note(collection: Collection, query: str) -> Note | None:
    """A note by id, path, file name, title or alias (case-insensitive); None when nothing or several match."""
    notes = collection.notes
    q = query.strip()
    for candidate in (q, q.removesuffix(".md")):
        if candidate in notes:
            return notes[candidate]
    index = NameIndex.build(notes.values())
    lower = q.removesuffix(".md").lower()
    if lower in index.ids:
        return notes[index.ids[lower]]
    for table in (index.by_stem, index.by_title, index.by_alias, index.by_suffix):
        found = sorted(set(table.get(_key(q) if table is not index.by_suffix else lower, [])))
        if len(found) == 1:
            return notes[found[0]]
    return None


def related_to_note(graph: GraphResult, note_id: str, k: int, kind: str | None = None) -> list[dict[str, Any]]:
    ranker = graph.ranker
    items = ranker.related(note_id, k, kind=kind)
    return [_item(graph, rank, item.id, item.score, list(item.why), item.passage) for rank, item in enumerate(items, start=1)]


def related_to_text(
    graph: GraphResult, embeddings: Any, text: str, k: int, kind: str | None, encode: Callable[[list[str]], np.ndarray]
) -> list[dict[str, Any]]:
    """Free text: embed it with the collection's model and rank notes by cosine."""
    vector = encode([text])
    ids = embeddings.ids
    notes = graph.graph.nodes
    cols = [i for i, note_id in enumerate(ids) if kind is None or notes[note_id]["kind"] == kind]
    if not cols:
        return []
    idx, scores = top_k_cross(vector, embeddings.vectors[cols], k)
    out = []
    for rank, (col, score) in enumerate(zip(idx[0], scores[0], strict=True), start=1):
        note_id = ids[cols[int(col)]]
        passage = ""
        chunk_vecs = embeddings.chunk_vectors.get(note_id)
        if chunk_vecs is not None and len(chunk_vecs):
            best = int(np.argmax(chunk_vecs @ vector[0]))
            passage = " ".join(embeddings.chunks[note_id][best].split())[:240]
        out.append(_item(graph, rank, note_id, round(float(score), 4), ["similar text"], passage))
    return out


def _item(graph: GraphResult, rank: int, note_id: str, score: float, why: list[str], passage: str) -> dict[str, Any]:
    node = graph.graph.nodes[note_id]
    return {
        "rank": rank,
        "id": note_id,
        "title": node["title"],
        "kind": node["kind"],
        "path": node["path"],
        "score": score,
        "why": why,
        "passage": passage,
    }


def export(graph: GraphResult, fmt: str, related_k: int = 10) -> str:
    """GraphML / GEXF (for Gephi, Cytoscape) or JSON node-link data with each note's ranked related list."""
    g: nx.MultiDiGraph = graph.graph
    if fmt in ("graphml", "gexf"):
        flat = nx.MultiDiGraph()
        for node, data in sorted(g.nodes(data=True)):
            flat.add_node(node, **{k: ("; ".join(v) if isinstance(v, list) else v) for k, v in data.items()})
        for u, v, key, data in sorted(g.edges(keys=True, data=True), key=lambda e: (e[0], e[1], e[2])):
            flat.add_edge(u, v, key=key, **{k: val for k, val in data.items() if val is not None})
        lines = nx.generate_graphml(flat) if fmt == "graphml" else nx.generate_gexf(flat)
        return "\n".join(lines) + "\n"
    if fmt != "json":
        raise ValueError(f"unknown format {fmt}")
    data = nx.node_link_data(g, edges="links")
    facts = graph.facts
    for node in data["nodes"]:
        note_id = node["id"]
        items = graph.ranker.related(note_id, related_k) if graph.ranker else ()
        node["related"] = [{"id": r.id, "score": r.score, "why": list(r.why)} for r in items]
        node["cluster"] = facts[note_id].cluster if note_id in facts else -1
    data["clusters"] = [
        {"id": c.id, "label": c.label, "terms": list(c.terms), "members": list(c.members), "size_class": c.size_class}
        for c in graph.clusters
    ]
    data["model"] = graph.model_id
    data["version"] = JSON_VERSION
    return json.dumps(data, indent=1, ensure_ascii=False, sort_keys=True) + "\n"


def write_export(text: str, out: Path | None) -> None:
    from notegraph.fsutil import atomic_write_text

    if out is not None:
        atomic_write_text(out, text)
