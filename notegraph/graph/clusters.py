"""Seeded Louvain clusters, c-TF-IDF labels, size classes, and ids kept stable across rebuilds."""

from __future__ import annotations

import json
import math
import re
from collections import Counter
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path

from notegraph.model import Cluster, Note

SEED = 42
SMALL_MAX = 9  # clusters of < 10 notes are "small"
MEDIUM_MAX = 49  # 10-49 notes "medium", 50 or more "large"
_WORD_RE = re.compile(r"[a-z][a-z0-9-]{2,}")
STOPWORDS = frozenset(
    """a about above after again against all also am an and any are as at be because been before being below
    between both but by can could did do does doing down during each few for from further had has have having he
    her here hers herself him himself his how i if in into is it its itself just me more most my myself no nor not
    now of off on once only or other our ours ourselves out over own same she should so some such than that the
    their theirs them themselves then there these they this those through to too under until up very was we were
    what when where which while who whom why will with would you your yours yourself yourselves one two may might
    must shall rather than thus yet via per within without across toward towards upon whether however therefore
    note notes paper papers concept concepts synthesis inquiry question questions claim claims use used using uses
    make makes made like well even much many way ways thing things less least whose another every each often
    first second new see e.g i.e etc
    """.split()
)


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
    atomic_write_text(path, json.dumps(data, sort_keys=True))


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
    tokenize: Callable[[Sequence[str]], Iterable[list[str]]] | None = None,
) -> list[Cluster]:
    """c-TF-IDF: a term is distinctive for a cluster when frequent in it and rare across clusters.
    ``tokenize`` gives ``label_terms`` of each text (a ``lexical.TermsMemo`` keeps them between builds)."""
    order = sorted(member for _cid, members in assigned for member in members)
    texts = [label_text(notes[member]) for member in order]
    terms_of = dict(zip(order, tokenize(texts) if tokenize is not None else map(label_terms, texts), strict=True))
    counts: dict[int, Counter[str]] = {}
    for cid, members in assigned:
        counter: Counter[str] = Counter()
        for member in members:
            counter.update(terms_of[member])
        counts[cid] = counter
    total_per_term: Counter[str] = Counter()
    for counter in counts.values():
        total_per_term.update(counter)
    avg_words = sum(sum(c.values()) for c in counts.values()) / max(len(counts), 1)
    clusters = []
    for cid, members in assigned:
        counter = counts[cid]
        size = sum(counter.values()) or 1
        scored = sorted(
            ((count / size) * math.log(1 + avg_words / total_per_term[term]), term) for term, count in counter.items() if count > 1 or len(members) == 1
        )
        chosen: list[str] = []
        for _, term in sorted(scored, key=lambda s: (-s[0], s[1])):
            if not any(term[:5] == other[:5] for other in chosen):  # "ground" adds nothing to "grounding"
                chosen.append(term)
            if len(chosen) == n_terms:
                break
        terms = tuple(chosen)
        # weighted degree inside the cluster, summed in the adjacency's order as networkx's subgraph
        # degree does, a self-loop counted twice (without the subgraph view: 0.2 s at 5,000 notes)
        degree = {m: _inner_degree(adj[m], m, members) for m in members}
        central = tuple(sorted(members, key=lambda m: (-degree[m], m))[:n_central])
        label = " · ".join(terms) if terms else notes[central[0]].title
        clusters.append(Cluster(id=cid, label=label, terms=terms, members=tuple(sorted(members)), central=central, size_class=size_class(len(members))))
    return clusters


def _inner_degree(neighbours: Mapping[str, float], node: str, members: set[str]) -> float:
    total = sum(weight for other, weight in neighbours.items() if other in members)
    return total + (neighbours[node] if node in neighbours else 0)
