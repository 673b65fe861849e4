"""Seeded Louvain clusters, c-TF-IDF labels, size classes, and ids kept stable across rebuilds."""

from __future__ import annotations

import json
import math
import re
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

import numpy as np
import scipy.sparse as sp

from notegraph.graph.lexical import STOPWORDS, term_counts
from notegraph.model import Cluster, Note

SEED = 42
SMALL_MAX = 9  # clusters of < 10 notes are "small"
MEDIUM_MAX = 49  # 10-49 notes "medium", 50 or more "large"
_WORD_RE = re.compile(r"[a-z][a-z0-9-]{2,}")


def size_class(n: int) -> str:
    if n <= SMALL_MAX:
        return "small"
    if n <= MEDIUM_MAX:
        return "medium"
    return "large"


Adjacency = Mapping[str, Mapping[str, float]]  # note -> neighbour -> weight, both ways


def adjacency(ids: Sequence[str], weights: Mapping[tuple[str, str], float]) -> dict[str, dict[str, float]]:
    """The undirected weighted graph of ``weights`` (one entry per pair of notes) as plain dicts: each
    note's neighbours in the order their pairs come, as networkx's ``Graph`` would hold them after
    ``add_weighted_edges_from`` of the pairs in order (without one: 0.04 s at 5,000 notes, and a view's
    every lookup costs more than a dict's)."""
    adj: dict[str, dict[str, float]] = {note_id: {} for note_id in ids}
    for (u, v), weight in weights.items():
        adj[u][v] = weight
        adj[v][u] = weight
    return adj


def undirected_edges(adj: Adjacency) -> list[tuple[str, str, float]]:
    """Each edge once, with its weight, in the order networkx's ``Graph.edges`` lists them: by node,
    each node's neighbours in order, but those listed before it."""
    listed: list[tuple[str, str, float]] = []
    seen: set[str] = set()
    for node, neighbours in adj.items():
        for other, weight in neighbours.items():
            if other not in seen:
                listed.append((node, other, weight))
        seen.add(node)
    return listed


def communities(adj: Adjacency) -> list[set[str]]:
    """Louvain (igraph's multilevel, the level of best modularity) with a fixed seed over a graph whose
    nodes come in sorted order: same notes, same clusters. igraph's C implementation, not networkx's
    pure-Python one: it found the same partitions on the benchmark collections in a seventh to an
    eighth of the time (0.04 against 0.27 s at 5,000 notes), and the clusters are on the path of every
    build after an edit. The edges are given in the order networkx's ``Graph.edges`` would list them."""
    nodes = list(adj)
    if not nodes:
        return []
    index = {node: i for i, node in enumerate(nodes)}
    listed = undirected_edges(adj)
    if not listed:
        return [{node} for node in sorted(nodes)]
    edges = [(index[u], index[v]) for u, v, _weight in listed]
    weights = [float(weight) for _u, _v, weight in listed]
    import random

    import igraph  # lazy: only builds that cluster need it

    # igraph draws its random numbers from a Python generator: a seeded one of our own, then the default back
    igraph.set_random_number_generator(random.Random(SEED))
    try:
        found = igraph.Graph(n=len(nodes), edges=edges).community_multilevel(weights=weights)
    finally:
        igraph.set_random_number_generator(random)
    return [{nodes[i] for i in members} for members in found]


def stable_ids(found: Sequence[set[str]], previous: Mapping[int, set[str]]) -> list[tuple[int, set[str]]]:
    """Give each community the id of the previous cluster it mostly is (Jaccard > 0.5), else a fresh id."""
    ordered = sorted(found, key=lambda c: (-len(c), min(c)))
    taken: set[int] = set()
    result: list[tuple[int, set[str]]] = []
    pending: list[set[str]] = []
    for members in ordered:
        best, best_j = None, 0.5
        for cid, old in previous.items():
            if cid in taken:
                continue
            inter = len(members & old)
            if not inter:
                continue
            jaccard = inter / len(members | old)
            if jaccard > best_j:
                best, best_j = cid, jaccard
        if best is None:
            pending.append(members)
        else:
            taken.add(best)
            result.append((best, members))
    next_id = max([*previous.keys(), *taken, -1]) + 1
    for members in pending:
        result.append((next_id, members))
        next_id += 1
    return sorted(result, key=lambda item: item[0])


def load_previous(path: Path | None) -> dict[int, set[str]]:
    if path is None or not path.exists():
        return {}
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        return {int(cid): set(members) for cid, members in data.items()}
    except (ValueError, OSError, TypeError, AttributeError):
        return {}  # a damaged state file only costs id stability


def save_assignment(path: Path, clusters: Sequence[Cluster]) -> None:
    from notegraph.fsutil import atomic_write_text

    data = {str(c.id): list(c.members) for c in clusters}
    try:
        atomic_write_text(path, json.dumps(data, sort_keys=True))
    except OSError:
        pass  # not kept: the next build's cluster ids may move, nothing else


def label_text(note: Note) -> str:
    """The text a note lends its cluster's label."""
    return " ".join([note.title, note.title, note.claim or "", note.lede, " ".join(note.topics), note.text[:4000]])


def label_terms(text: str) -> list[str]:
    """Its words of three letters or more (a word starts with a letter), stopwords dropped."""
    return [w for w in _WORD_RE.findall(text.lower()) if w not in STOPWORDS]


def label_clusters(
    assigned: Sequence[tuple[int, set[str]]],
    notes: Mapping[str, Note],
    adj: Adjacency,
    n_terms: int = 3,
    n_central: int = 5,
    *,
    counts: Callable[[Sequence[str]], tuple[list[str], sp.csr_matrix]] | None = None,
) -> list[Cluster]:
    """c-TF-IDF: a term is distinctive for a cluster when frequent in it and rare across clusters.
    ``counts`` gives ``term_counts`` of ``label_terms`` of each text (a ``lexical.TermCounts`` keeps
    them between builds): a cluster's counts are the sum of its members' rows."""
    order = sorted(member for _cid, members in assigned for member in members)
    texts = [label_text(notes[member]) for member in order]
    terms, tf = counts(texts) if counts is not None else term_counts([label_terms(text) for text in texts])
    row = {member: i for i, member in enumerate(order)}
    members_at = [(i, row[member]) for i, (_cid, members) in enumerate(assigned) for member in members]
    which = sp.csr_matrix(
        (np.ones(len(members_at)), ([i for i, _ in members_at], [r for _, r in members_at])), shape=(len(assigned), len(order))
    )
    per = sp.csr_matrix(which @ tf.astype(np.float64))  # clusters x terms: whole counts, exact in float64
    total_per_term = np.asarray(per.sum(axis=0)).ravel()
    words = [int(w) for w in np.asarray(per.sum(axis=1)).ravel().tolist()]
    avg_words = sum(words) / max(len(assigned), 1)
    clusters = []
    for i, (cid, members) in enumerate(assigned):
        start, stop = per.indptr[i], per.indptr[i + 1]
        counted = (per.indices[start:stop], per.data[start:stop])
        chosen = _distinctive(terms, *counted, total_per_term, words[i] or 1, avg_words, len(members) == 1, n_terms)
        # weighted degree inside the cluster, summed in the adjacency's order as networkx's subgraph
        # degree does, a self-loop counted twice (without the subgraph view: 0.2 s at 5,000 notes)
        degree = {m: _inner_degree(adj[m], m, members) for m in members}
        central = tuple(sorted(members, key=lambda m: (-degree[m], m))[:n_central])
        label = " · ".join(chosen) if chosen else notes[central[0]].title
        clusters.append(Cluster(id=cid, label=label, terms=chosen, members=tuple(sorted(members)), central=central, size_class=size_class(len(members))))
    return clusters


CANDIDATES = 64  # a cluster's terms scored exactly: the best by numpy's scores (more where they tie)


def _distinctive(
    terms: Sequence[str], cols: np.ndarray, counts: np.ndarray, total_per_term: np.ndarray, size: int, avg_words: float, single: bool, n_terms: int
) -> tuple[str, ...]:
    """A cluster's ``n_terms`` best terms by ``(count / size) * log(1 + avg_words / total)``, ties by
    name, a term that starts as a chosen one does (five letters) left out; only terms used twice,
    unless the cluster is one note. Ranked by Python's floats (numpy's log may differ in the last bit):
    the best ``CANDIDATES`` by numpy's scores, and every term if those run out."""
    keep = counts > 1 if not single else np.ones(len(counts), dtype=bool)
    cols, counts = cols[keep], counts[keep]
    if not len(cols):
        return ()
    approx = (counts / size) * np.log(1 + avg_words / total_per_term[cols])
    everything = np.ones(len(cols), dtype=bool)
    near = everything
    if len(cols) > CANDIDATES:
        bar = np.partition(approx, len(approx) - CANDIDATES)[len(approx) - CANDIDATES]
        near = approx >= bar - abs(bar) * 1e-9  # every term that could rank above the bar's, by a bit
    chosen: list[str] = []
    for pick in (near, everything):
        scored = [
            ((count / size) * math.log(1 + avg_words / total), terms[col])
            for col, count, total in zip(cols[pick].tolist(), counts[pick].tolist(), total_per_term[cols[pick]].tolist(), strict=True)
        ]
        chosen = []
        for _, term in sorted(scored, key=lambda s: (-s[0], s[1])):
            if not any(term[:5] == other[:5] for other in chosen):  # "ground" adds nothing to "grounding"
                chosen.append(term)
            if len(chosen) == n_terms:
                return tuple(chosen)
        if pick is everything:
            break
    return tuple(chosen)


def _inner_degree(neighbours: Mapping[str, float], node: str, members: set[str]) -> float:
    total = sum(weight for other, weight in neighbours.items() if other in members)
    return total + (neighbours[node] if node in neighbours else 0)
