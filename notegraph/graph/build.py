"""Collection + embeddings -> networkx graph, clusters and every per-note figure the site shows."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import networkx as nx
import numpy as np
import scipy.sparse as sp

from notegraph.graph.clusters import (
    adjacency,
    communities,
    label_clusters,
    label_terms,
    load_previous,
    save_assignment,
    stable_ids,
)
from notegraph.graph.edges import Edges
from notegraph.graph.lexical import TermCounts
from notegraph.graph.memo import FactKeys, FactsMemo, KeptFacts, Passages, encode, note_digests, salt_of
from notegraph.graph.rank import Ranker
from notegraph.graph.rankstate import similar_notes
from notegraph.graph.similarity import nearest
from notegraph.model import (
    Citation,
    Cluster,
    Collection,
    GraphResult,
    Link,
    Neighbour,
    NoteFacts,
    Related,
)
from notegraph.parallel import fork_call, fork_map, shard, workers_for
from notegraph.version import code_version

PARALLEL_MIN = 2000  # notes below which computing facts in forked workers costs more than it saves
RELATED_PAPERS = 8
RELATED_CONCEPTS = 8


class EmbeddingsLike(Protocol):
    model_id: str
    ids: list[str]
    vectors: np.ndarray
    chunks: dict[str, list[str]]
    chunk_vectors: dict[str, np.ndarray]
    chunk_keys: dict[str, str]  # each note's chunking key, where known (see embed.stage.Embeddings)


@dataclass(frozen=True)
class GraphSettings:
    similar_k: int = 5
    similar_threshold: float = 0.45
    related_k: int = 10
    # above this many embedded notes the similar edges come from an approximate (HNSW) index
    ann_threshold: int = 10_000
    cluster_state: Path | None = None
    # where each note's facts are kept between builds, under a key of their inputs (see graph.memo)
    facts_memo: Path | None = None
    # where the cluster labels' term counts are kept between builds (see graph.lexical.TermCounts)
    label_counts: Path | None = None
    # where the ranking texts' term counts are kept between builds (see graph.lexical.TermCounts)
    term_counts: Path | None = None
    # where the ranking tables are kept between builds, so that an edit scores only the rows it can
    # change (see graph.rankstate)
    rank_state: Path | None = None
    # where the "semantically near" edges are kept between builds (up to ann_threshold notes)
    similar_state: Path | None = None
    # False for one-off queries (`related`): no similar edges, clusters or per-note facts, and the
    # ranker scores only the rows asked for, so a query costs O(n), not O(n^2)
    full: bool = True


def build_graph(collection: Collection, embeddings: EmbeddingsLike, settings: GraphSettings) -> GraphResult:
    notes = collection.notes
    ids = sorted(notes)
    graph = nx.MultiDiGraph()
    for note_id in ids:
        note = notes[note_id]
        graph.add_node(note_id, kind=note.kind, title=note.title, topics=list(note.topics), date=note.date or "", path=note.path)

    # explicit edges: one `link` edge per distinct (source, target); `source` for an inquiry's sources
    seen: set[tuple[str, str, str]] = set()
    for link in collection.resolved():
        assert link.target is not None
        kind = "source" if link.raw.field == "sources" else "link"
        key = (link.source, link.target, kind)
        if key in seen:
            continue
        seen.add(key)
        graph.add_edge(link.source, link.target, key=kind, kind=kind, line=link.raw.line, shown=link.raw.shown or "")

    # semantically near: each note's top-k by cosine above the threshold (exact, or HNSW candidates
    # re-scored exactly when the collection is larger than ann_threshold)
    vectors = embeddings.vectors
    if settings.full and settings.similar_k > 0 and vectors.shape[0] > 1:
        if vectors.shape[0] > settings.ann_threshold:
            idx, scores = nearest(vectors, settings.similar_k, exact_max=settings.ann_threshold)
        else:  # exact, in fixed point, and kept between builds (graph.rankstate)
            idx, scores = similar_notes(embeddings.ids, vectors, settings.similar_k, settings.similar_state)
        near_ids = embeddings.ids
        # the kept (row, rank) places in row order, as the loops over rows and their ranks met them
        rows, ranks = np.nonzero(np.isfinite(scores) & (scores >= settings.similar_threshold))
        for row, col, score in zip(rows.tolist(), idx[rows, ranks].tolist(), scores[rows, ranks].tolist(), strict=True):
            note_id, other = near_ids[row], near_ids[col]
            if graph.has_edge(other, note_id, key="similar"):
                continue
            graph.add_edge(note_id, other, key="similar", kind="similar", score=round(score, 4))

    if not settings.full:
        ranker = Ranker(collection, embeddings, graph, precompute=False)
        return GraphResult(graph=graph, facts={}, clusters=(), model_id=embeddings.model_id, ranker=ranker)

    edges = Edges.of(graph, ids)  # every edge, read once for the passes below
    weights = _pair_weights(edges)
    previous = load_previous(settings.cluster_state)

    label_counts = TermCounts(settings.label_counts, label_terms) if settings.label_counts else None

    def clustering() -> list[Cluster]:
        adj = adjacency(ids, weights)  # only the clusters use it: made in their process
        return label_clusters(stable_ids(communities(adj), previous), notes, adj, counts=label_counts)

    # the clusters need neither the ranking's signals nor its tables: on several cores they are found in
    # a forked process meanwhile (the signals are built on one core; 3.5 s at 20,000 notes)
    with fork_call(clustering, fork=workers_for(len(ids), PARALLEL_MIN) > 1) as clustered:
        counts = TermCounts(settings.term_counts) if settings.term_counts else None
        ranker = Ranker(collection, embeddings, graph, counts=counts, state=settings.rank_state, edges=edges)
        ranker.prepare()  # the ranking tables, computed once before any worker forks
        # what every note's facts key is made from besides its edges, cluster and rows (while the
        # clusters are still being found: made in their process instead, the digests kept this one
        # waiting 0.25 s at 5,000 notes)
        fact_keys = None
        if settings.facts_memo is not None:
            fact_keys = _fact_keys(ids, embeddings, ranker, settings, _digests(ids, collection, embeddings, edges))
        clusters = clustered()
    if settings.cluster_state is not None:
        save_assignment(settings.cluster_state, clusters)
    cluster_of = {member: c for c in clusters for member in c.members}
    for note_id in ids:
        graph.nodes[note_id]["cluster"] = cluster_of[note_id].id if note_id in cluster_of else -1

    facts, keys, computed = _note_facts(ids, collection, embeddings, graph, edges, weights, ranker, cluster_of, settings, fact_keys)
    return GraphResult(
        graph=graph, facts=facts, clusters=tuple(clusters), model_id=embeddings.model_id, ranker=ranker, computed=computed, keys=keys, edges=edges
    )


def _note_facts(
    ids: Sequence[str],
    collection: Collection,
    embeddings: EmbeddingsLike,
    graph: nx.MultiDiGraph,
    edges: Edges,
    pairs: Iterable[tuple[str, str]],
    ranker: Ranker,
    cluster_of: Mapping[str, Cluster],
    settings: GraphSettings,
    fact_keys: FactKeys | None,
) -> tuple[Mapping[str, NoteFacts], dict[str, bytes], int]:
    """Every note's facts, its memo key (none without a memo) and how many were computed, not kept.
    ``fact_keys``: ``_fact_keys`` of this build, when it keeps a memo."""
    emb_index = {note_id: i for i, note_id in enumerate(embeddings.ids)}
    two_hop = dict(zip(ids, two_hop_counts(pairs, ids), strict=True))
    incoming: dict[str, list[Link]] = defaultdict(list)
    for link in collection.links:
        if link.status == "ok" and link.target is not None and link.target != link.source:
            incoming[link.target].append(link)

    def compute(note_id: str) -> NoteFacts:
        local = _relation(note_id, _touching(note_id, graph)), two_hop[note_id]
        return _facts(note_id, local, collection, ranker, cluster_of, emb_index, settings, incoming[note_id])

    # facts whose inputs are unchanged since they were kept are taken from the memo
    memo = FactsMemo(settings.facts_memo) if settings.facts_memo is not None else None
    passages = Passages(embeddings.chunks)
    keys: dict[str, bytes] = {}
    kept: dict[str, bytes] = {}
    if memo is not None and fact_keys is not None:
        clusters = [(c.id, c.size_class) if (c := cluster_of.get(note_id)) else (-1, "") for note_id in ids]
        cited = {note_id: [(link.source, link.raw.context) for link in links] for note_id, links in incoming.items()}
        keys = fact_keys.keys(edges, [two_hop[note_id] for note_id in ids], clusters, cited)
        kept = memo.load(keys)
        if not kept:
            memo.reset()  # every row is replaced: a new file, not one as large as the largest it ever was
    todo = [note_id for note_id in ids if note_id not in kept]

    def facts_of(shard_ids: list[str]) -> list[NoteFacts]:
        computed = [compute(note_id) for note_id in shard_ids]
        if memo is not None and keys:
            memo.store((item.id, keys[item.id], blob) for item in computed if (blob := encode(item, passages)) is not None)
        return computed

    # each note's facts (with the evidence for every related item) are independent: on several cores
    # they are computed in forked workers (which keep them in the memo) and sent back; kept facts are
    # decoded only when asked for (see KeptFacts)
    shards = shard(todo, workers_for(len(todo), PARALLEL_MIN))
    if len(shards) > 1:
        ranker.prepare_explanations()
    computed: dict[str, NoteFacts] = {}
    for part in fork_map(facts_of, shards):
        for item in part:
            computed[item.id] = item
    if memo is not None:
        memo.forget(memo.stale)
    return KeptFacts(ids, computed, kept, passages, compute), keys, len(todo)


def _pair_weights(edges: Edges) -> dict[tuple[str, str], float]:
    """One entry per pair of notes joined either way, weighted by the sum of its edges (a similar
    edge's score, 1 for the others), summed in the order of the edges sorted by (source, target,
    kind) (``Edges.by_name``)."""
    order = edges.by_name()  # (u, v, kind) is unique
    similar = edges.kind_names.index("similar")
    ids = edges.ids
    weights: dict[tuple[str, str], float] = {}
    columns = (edges.sources[order], edges.targets[order], edges.kinds[order], edges.scores[order], edges.scored[order])
    for u, v, kind, score, scored in zip(*(column.tolist() for column in columns), strict=True):
        if u == v:
            continue
        weight = score if kind == similar and scored else 1.0
        a, b = ids[u], ids[v]
        pair = (b, a) if (b, a) in weights else (a, b)
        weights[pair] = weights[pair] + weight if pair in weights else weight
    return weights


_PRIORITY = {"link": 0, "source": 0, "backlink": 1, "similar": 2}
_Relation = dict[str, tuple[int, str, float | None]]  # neighbour -> (priority, kind, score)


_Edge = tuple[str, str, str, float | None]  # (direction, other note, kind, score)


def _touching(note_id: str, graph: nx.MultiDiGraph) -> list[_Edge]:
    """Every edge touching the note as (direction, other note, kind, score), in the graph's order."""
    edges = [("out", target, data["kind"], data.get("score")) for _, target, data in graph.out_edges(note_id, data=True)]
    edges += [("in", source, data["kind"], data.get("score")) for source, _, data in graph.in_edges(note_id, data=True)]
    return edges


TWO_HOP_BLOCK = 512  # rows of the adjacency squared at once (memory: at most this x notes entries)


def two_hop_counts(pairs: Iterable[tuple[str, str]], ids: Sequence[str]) -> list[int]:
    """For each note of ``ids``, how many other notes are its neighbours or theirs: the nonzero entries
    of its row of A + A², the note itself left out (A is the adjacency, without self-loops). ``pairs``:
    the notes joined, either way (a pair may repeat, reversed or not). Squared in blocks of rows, so
    that a note linked with every other costs one row of n, never n²."""
    index = {note_id: i for i, note_id in enumerate(ids)}
    joined = [(index[u], index[v]) for u, v in pairs if u != v]
    n = len(ids)
    rows = np.array([a for a, b in joined] + [b for a, b in joined], dtype=np.int64)
    cols = np.array([b for a, b in joined] + [a for a, b in joined], dtype=np.int64)
    adjacency = sp.csr_matrix((np.ones(len(rows), dtype=np.float32), (rows, cols)), shape=(n, n))
    adjacency.sum_duplicates()
    degree = np.diff(adjacency.indptr)
    counts: list[int] = []
    for start in range(0, n, TWO_HOP_BLOCK):
        block = adjacency[start : start + TWO_HOP_BLOCK]
        reach = sp.csr_matrix(block + block @ adjacency)  # positive entries only: no sum cancels out
        # the note itself is reached (through any neighbour) exactly when it has one
        counts.extend((np.diff(reach.indptr) - (degree[start : start + TWO_HOP_BLOCK] > 0)).tolist())
    return counts


def _relation(note_id: str, edges: Sequence[_Edge]) -> _Relation:
    """The note's relation to each neighbour: a link before a backlink before a similar edge, with the
    similar edge's score. The same whatever the order of ``edges``."""
    relation: _Relation = {}

    def offer(other: str, kind: str, score: float | None) -> None:
        if other == note_id:
            return
        current = relation.get(other)
        mapped = "link" if kind == "source" else kind
        best_score = score if score is not None else (current[2] if current else None)
        if current is None or _PRIORITY[kind] < current[0]:
            relation[other] = (_PRIORITY[kind], mapped, best_score)
        elif score is not None and current[2] is None:
            relation[other] = (current[0], current[1], score)

    for direction, other, kind, score in edges:
        if direction == "out":
            offer(other, kind, score)
        else:
            offer(other, "similar" if kind == "similar" else "backlink", score)
    return relation


def _digests(ids: Sequence[str], collection: Collection, embeddings: EmbeddingsLike, edges: Edges) -> dict[str, bytes]:
    """Every note's digest for the facts keys (see graph.memo.note_digests)."""
    explicit_out: dict[str, list[str]] = defaultdict(list)
    explicit_in: dict[str, list[str]] = defaultdict(list)
    for u, v in edges.pairs(kind for kind in edges.kind_names if kind != "similar"):
        explicit_out[u].append(v)
        explicit_in[v].append(u)
    return note_digests(ids, collection.notes, embeddings, explicit_out, explicit_in, collection.display_names)


def _fact_keys(ids: Sequence[str], embeddings: EmbeddingsLike, ranker: Ranker, settings: GraphSettings, digests: Mapping[str, bytes]) -> FactKeys:
    """What every note's memo key is made from besides its own edges, cluster and rows: the build's
    salt, each note's digest and each ranking row's hash (see graph.memo)."""
    chosen = (settings.similar_k, settings.similar_threshold, settings.related_k, settings.ann_threshold, RELATED_PAPERS, RELATED_CONCEPTS)
    return FactKeys(salt_of(code_version(), embeddings, chosen, ranker.global_key()), ids, digests, ranker.ids, ranker.site_tables())


def _facts(
    note_id: str,
    local: tuple[_Relation, int],
    collection: Collection,
    ranker: Ranker,
    cluster_of: Mapping[str, Cluster],
    emb_index: Mapping[str, int],
    settings: GraphSettings,
    incoming: Sequence[Link],
) -> NoteFacts:
    notes = collection.notes
    relation, two_hop = local
    neighbours = tuple(
        Neighbour(id=other, kind=kind, score=score)  # type: ignore[arg-type]
        for other, (_, kind, score) in sorted(relation.items(), key=lambda item: (item[1][0], -(item[1][2] or 0.0), item[0]))
    )
    direct = len(relation)
    cluster = cluster_of.get(note_id)

    # citations: who links here, with the sentence that does it
    backlinks: dict[str, str] = {}
    for link in incoming:
        context = link.raw.context
        if link.source not in backlinks or (context and not backlinks[link.source]):
            backlinks[link.source] = context
    backlink_list = tuple(
        Citation(id=src, context=ctx or notes[src].lede) for src, ctx in sorted(backlinks.items(), key=lambda kv: (notes[kv[0]].title.lower(), kv[0]))
    )
    inquiring = tuple(c for c in backlink_list if notes[c.id].kind == "inquiry")

    related = ranker.related(note_id, settings.related_k) if note_id in emb_index else ()
    papers = ranker.related(note_id, RELATED_PAPERS, kind="paper") if note_id in emb_index else ()
    linked_concepts = [
        other for other, (_, kind, _s) in relation.items() if notes[other].kind == "concept" and kind in ("link", "backlink")
    ]
    concept_ranked = list(ranker.related(note_id, RELATED_CONCEPTS, kind="concept", min_score=settings.similar_threshold)) if note_id in emb_index else []
    concepts: list[Related] = []
    for other in sorted(linked_concepts, key=lambda o: (notes[o].title.lower(), o)):
        concepts.append(ranker.explain(note_id, other, why=("link",)))
    for item in concept_ranked:
        if item.id not in linked_concepts and len(concepts) < RELATED_CONCEPTS:
            concepts.append(item)
    return NoteFacts(
        id=note_id,
        direct=direct,
        two_hop=two_hop,
        cluster=cluster.id if cluster else -1,
        cluster_size=cluster.size_class if cluster else "small",
        neighbours=neighbours,
        related=tuple(related),
        related_papers=tuple(papers),
        related_concepts=tuple(concepts[:RELATED_CONCEPTS]),
        inquiring_lines=inquiring,
        backlinks=backlink_list,
    )
