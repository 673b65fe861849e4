"""Graph stage on real parsed notes with deterministic vectors: edges, facts, clusters, top-k, export."""

from __future__ import annotations

import hashlib
import json
import random
from pathlib import Path

import networkx as nx
import numpy as np
import pytest
from conftest import write
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from notegraph.config import load_settings
from notegraph.embed import Embeddings
from notegraph.graph import GraphSettings, build_graph
from notegraph.graph.clusters import stable_ids
from notegraph.graph.lexical import DF_EXACT, Lexical, gridded
from notegraph.graph.similarity import top_k
from notegraph.parallel import cpus
from notegraph.pipeline import load
from notegraph.query import export


def bag(text: str, dim: int = 64) -> np.ndarray:
    v = np.zeros(dim, np.float32)
    for word in text.lower().split():
        h = int(hashlib.sha256(word.encode()).hexdigest(), 16)
        v[h % dim] += 1.0
    n = np.linalg.norm(v)
    return v / n if n else v


def vecs_for(collection) -> Embeddings:
    ids = sorted(collection.notes)
    texts = {i: f"{collection.notes[i].title} {collection.notes[i].text}" for i in ids}
    return Embeddings("test/bag", ids, np.stack([bag(texts[i]) for i in ids]), {i: [texts[i]] for i in ids}, {i: bag(texts[i])[None] for i in ids})


def sample(tmp_path: Path) -> Path:
    root = tmp_path / "n"
    write(root, "paper-a.md", "---\ntitle: Paper A\nkind: paper\n---\ngrounding dialogue repair conversation\n")
    write(root, "paper-b.md", "---\ntitle: Paper B\nkind: paper\n---\nscaling laws compute tokens\n")
    write(root, "concept.md", "---\ntitle: Grounding\nkind: concept\n---\ngrounding in dialogue, see [[paper-a]]\n")
    write(root, "syn.md", "---\ntitle: Why grounding?\nkind: synthesis\n---\nDialogue grounding repair fails. It cites [[concept]] and [[paper-a]].\n")
    write(root, "inq.md", '---\ntitle: Inquiry\nkind: inquiry\nsources: ["[[syn]]", "[[paper-b]]"]\n---\nWe ask how [[syn|the synthesis]] matters here.\n')
    write(root, "lonely.md", "nothing in common zebra\n")
    return root


def test_graph_edges_and_facts(tmp_path: Path):
    c = load(load_settings(sample(tmp_path)))
    result = build_graph(c, vecs_for(c), GraphSettings(similar_k=2, similar_threshold=0.1, cluster_state=tmp_path / "clusters.json"))
    g = result.graph
    assert g.has_edge("syn", "concept", key="link") and g.has_edge("inq", "syn", key="source")
    assert g.has_edge("inq", "syn", key="link")  # also cited in the body
    f = result.facts["syn"]
    neighbour_ids = {n.id for n in f.neighbours}
    assert {"concept", "paper-a", "inq"} <= neighbour_ids
    assert f.direct == len(f.neighbours)
    undirected = nx.Graph(g.to_undirected())
    two_hop = set(nx.single_source_shortest_path_length(undirected, "syn", cutoff=2)) - {"syn"}
    assert f.two_hop == len(two_hop)
    assert [c.id for c in f.inquiring_lines] == ["inq"]
    assert f.inquiring_lines[0].context == "We ask how the synthesis matters here."
    assert {n.kind for n in f.neighbours if n.id == "inq"} == {"backlink"}
    assert all(r.id != "syn" for r in f.related)
    assert [r.id for r in result.facts["concept"].related_papers][:1] == ["paper-a"]
    assert all(result.graph.nodes[r.id]["kind"] == "paper" for r in f.related_papers)
    assert any("cosine" in w for r in f.related for w in r.why)
    # every note is in exactly one cluster; facts agree
    members = [m for cl in result.clusters for m in cl.members]
    assert sorted(members) == sorted(c.notes)
    for note_id, facts in result.facts.items():
        assert note_id in next(cl.members for cl in result.clusters if cl.id == facts.cluster)


def test_clusters_deterministic_and_stable(tmp_path: Path):
    c = load(load_settings(sample(tmp_path)))
    settings = GraphSettings(similar_k=2, similar_threshold=0.1, cluster_state=tmp_path / "clusters.json")
    a = build_graph(c, vecs_for(c), settings)
    b = build_graph(c, vecs_for(c), settings)
    assert [(x.id, x.members, x.label) for x in a.clusters] == [(x.id, x.members, x.label) for x in b.clusters]
    # ids follow membership when barely changed
    previous = {7: {"a", "b", "c", "d"}, 3: {"x", "y"}}
    assigned = dict((tuple(sorted(m)), cid) for cid, m in stable_ids([{"x", "y", "z"}, {"a", "b", "c", "d", "e"}], previous))
    assert assigned[("a", "b", "c", "d", "e")] == 7 and assigned[("x", "y", "z")] == 3


def test_top_k_matches_brute_force():
    rng = np.random.default_rng(0)
    v = rng.normal(size=(300, 16)).astype(np.float32)
    v /= np.linalg.norm(v, axis=1, keepdims=True)
    idx, scores = top_k(v, 7, block=64)
    sims = v @ v.T
    np.fill_diagonal(sims, -np.inf)
    brute = np.argsort(-sims, axis=1, kind="stable")[:, :7]
    assert (idx == brute).all()
    assert np.allclose(scores, np.take_along_axis(sims, brute, axis=1))


def test_export_formats(tmp_path: Path):
    c = load(load_settings(sample(tmp_path)))
    result = build_graph(c, vecs_for(c), GraphSettings(similar_k=2, similar_threshold=0.1))
    data = json.loads(export(result, "json", related_k=3))
    nodes = {n["id"]: n for n in data["nodes"]}
    assert set(nodes) == set(c.notes)
    assert len(nodes["syn"]["related"]) == 3 and "cluster" in nodes["syn"]
    assert {e["kind"] for e in data["links"]} >= {"link", "source"}
    for fmt, reader in (("graphml", nx.read_graphml), ("gexf", nx.read_gexf)):
        path = tmp_path / f"g.{fmt}"
        path.write_text(export(result, fmt))
        g = reader(path)
        assert set(g.nodes) == set(c.notes) and g.number_of_edges() == result.graph.number_of_edges()


def test_facts_and_clusters_from_forked_workers_equal_those_of_one_process(tmp_path: Path, monkeypatch):
    import notegraph.graph.build as graph_build

    c = load(load_settings(sample(tmp_path)))
    settings = GraphSettings(similar_k=2, similar_threshold=0.1)
    one = build_graph(c, vecs_for(c), settings)
    monkeypatch.setattr(graph_build, "PARALLEL_MIN", 2)
    assert graph_build.workers_for(len(c.notes), 2) >= 2 or cpus() == 1
    forked = build_graph(c, vecs_for(c), settings)  # the clusters, too, come from a forked process
    assert list(forked.facts) == list(one.facts) and forked.facts == one.facts
    assert forked.clusters == one.clusters and len(one.clusters) > 1


def test_ranking_tables_from_forked_workers_equal_those_of_one_process(tmp_path: Path, monkeypatch):
    import notegraph.graph.rank as rank

    c = load(load_settings(sample(tmp_path)))
    settings = GraphSettings(similar_k=2, similar_threshold=0.1, full=True)
    monkeypatch.setattr(rank, "BLOCK", 2)  # several row blocks, even in a small collection
    one = build_graph(c, vecs_for(c), settings).ranker
    monkeypatch.setattr(rank, "PARALLEL_MIN", 2)
    assert rank.workers_for(len(c.notes), 2) >= 2 or cpus() == 1
    forked = build_graph(c, vecs_for(c), settings).ranker
    for kind in (None, "paper", "concept"):
        (idx_one, scores_one, _), (idx_forked, scores_forked, _) = one._table(kind), forked._table(kind)
        assert idx_one.shape[0] == len(c.notes)
        assert np.array_equal(idx_one, idx_forked) and np.array_equal(scores_one, scores_forked)


LEX_WORDS = "grounding repair dialogue turn taking scaling compute tokens memory attention".split()


def test_term_columns_do_not_depend_on_the_order_of_the_notes():
    rng = random.Random(2)
    texts = [" ".join(rng.choice(LEX_WORDS) + str(rng.randrange(40)) for _ in range(25)) for _ in range(50)]
    order = list(range(50))
    rng.shuffle(order)
    a = Lexical(texts)
    b = Lexical([texts[i] for i in order])
    assert a.vocab == b.vocab
    back = np.argsort(order)
    assert (a.tfidf != b.tfidf[back]).nnz == 0  # the same bits, not merely close


def test_document_frequencies_on_their_grid():
    df = np.arange(1, 5001, dtype=np.float32)
    g = gridded(df)
    assert np.array_equal(g[:DF_EXACT], df[:DF_EXACT])
    assert np.all(np.diff(g) >= 0)
    assert np.all(np.abs(np.log(g[DF_EXACT:]) - np.log(df[DF_EXACT:])) <= np.log(2.0**0.25) / 2 + 1e-6)
    assert len(np.unique(g[1000:])) < 30  # a count of 1,000 to 5,000 lands on a handful of values


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(seed=st.integers(0, 2**32 - 1))
def test_kept_term_counts_are_the_counts_of_the_texts_bit_for_bit(tmp_path_factory: pytest.TempPathFactory, seed: int):
    """After any series of edits (words new to the collection, words no text has any more, texts added,
    deleted, duplicated, emptied, moved), the kept matrix is the one made from nothing, array for array,
    and only the texts not seen before are tokenized."""
    from notegraph.graph.lexical import TermCounts, term_counts, tokens

    rng = random.Random(seed)
    path = tmp_path_factory.mktemp("counts") / "terms.npz"

    def text() -> str:
        return " ".join(rng.choice(LEX_WORDS) + rng.choice(["", str(rng.randrange(30)), "s"]) for _ in range(rng.randrange(0, 12)))

    texts = [text() for _ in range(rng.randrange(1, 12))]
    for _step in range(6):
        asked: list[str] = []
        kept = TermCounts(path, lambda t, asked=asked: asked.append(t) or tokens(t))
        terms, tf = kept(texts)
        fresh_terms, fresh = term_counts([tokens(t) for t in texts])
        assert terms == fresh_terms and tf.shape == fresh.shape
        for name in ("indptr", "indices", "data"):
            a, b = getattr(tf, name), getattr(fresh, name)
            assert a.dtype == b.dtype and np.array_equal(a, b), name
        assert len(asked) == kept.tokenized
        a, b = Lexical(texts, counts=lambda _t, r=(terms, tf): r), Lexical(texts)
        assert a.vocab == b.vocab and (a.tfidf != b.tfidf).nnz == 0
        what = rng.choice(["edit", "new word", "add", "delete", "duplicate", "empty", "move"])
        i = rng.randrange(len(texts))
        if what == "edit":
            texts[i] = text()
        elif what == "new word":
            texts[i] += f" unheard{rng.randrange(1000)}"
        elif what == "add":
            texts.insert(i, text())
        elif what == "delete" and len(texts) > 1:
            texts.pop(i)
        elif what == "duplicate":
            texts.append(texts[i])
        elif what == "empty":
            texts[i] = ""
        else:
            texts.append(texts.pop(i))
    TermCounts(path)(texts)
    again: list[str] = []
    TermCounts(path, lambda t: again.append(t) or tokens(t))(texts)
    assert again == []  # nothing new: every row kept


def test_a_damaged_term_counts_file_is_no_file(tmp_path: Path):
    from notegraph.graph.lexical import TermCounts, term_counts, tokens

    texts = ["grounding repair", "dialogue turn taking", "repair repair memory"]
    path = tmp_path / "terms.npz"
    TermCounts(path)(texts)
    data = dict(np.load(path))
    fresh = term_counts([tokens(t) for t in texts])
    swapped = data["indices"].copy()
    swapped[[0, 1]] = swapped[[1, 0]]  # the first row's first two columns out of order
    bad_arrays = [("indices", data["indices"] + 100), ("indptr", data["indptr"][::-1].copy()), ("counts", data["counts"] * 0), ("terms", data["terms"][::-1].copy())]
    for name, bad in [*bad_arrays, ("indices", swapped)]:
        np.savez(path, **{**data, name: bad})
        counts = TermCounts(path)
        terms, tf = counts(texts)
        assert counts.tokenized == len(texts) and terms == fresh[0] and (tf != fresh[1]).nnz == 0, name
    path.write_bytes(b"not a numpy file" * 10)
    counts = TermCounts(path)
    assert counts(texts)[0] == fresh[0] and counts.tokenized == len(texts)


@settings(max_examples=60, deadline=None)
@given(n=st.integers(1, 700), pairs=st.lists(st.tuples(st.integers(0, 699), st.integers(0, 699)), max_size=900), hub=st.booleans())
def test_two_hop_counts_are_the_sizes_of_the_two_hop_sets(n: int, pairs: list[tuple[int, int]], hub: bool):
    """Blocks of A + A² count exactly the notes within two hops (self-loops, isolated notes, a note
    linked with all others, more rows than one block), from the pairs of notes joined."""
    from notegraph.graph.build import two_hop_counts

    ids = [f"n{i:03d}" for i in range(n)]
    joined = [(ids[a % n], ids[b % n]) for a, b in pairs] + ([(ids[0], other) for other in ids[1:]] if hub else [])
    g = nx.Graph()
    g.add_nodes_from(ids)
    g.add_edges_from(joined)
    expected = []
    for x in ids:
        near = set(g.adj[x]) - {x}
        reach = near.union(*(set(g.adj[o]) for o in near))
        reach.discard(x)
        expected.append(len(reach))
    assert two_hop_counts(joined, ids) == expected  # repeated and reversed pairs as they come


KIND_NAMES = ("link", "similar", "source")


@settings(max_examples=60, deadline=None)
@given(
    n=st.integers(1, 40),
    edges=st.lists(st.tuples(st.integers(0, 39), st.integers(0, 39), st.sampled_from(KIND_NAMES), st.floats(0.3, 1.0)), max_size=200),
)
def test_the_pair_weights_and_adjacency_are_what_networkx_made(n: int, edges: list[tuple[int, int, str, float]]):
    """The undirected weighted graph the clusters are found in, made from the edges' arrays and plain
    dicts, is the one networkx's views and Graph made: the same sums in the same order, the same
    neighbour order and the same edge order (Louvain's result depends on them)."""
    from notegraph.graph.build import _pair_weights
    from notegraph.graph.clusters import adjacency, undirected_edges
    from notegraph.graph.edges import Edges

    ids = [f"n{i:02d}" for i in range(n)]
    g = nx.MultiDiGraph()
    g.add_nodes_from(reversed(ids))  # any node order: the ids are what is sorted
    for a, b, kind, score in edges:
        g.add_edge(ids[a % n], ids[b % n], key=kind, kind=kind, **({"score": round(score, 4)} if kind == "similar" else {}))
    expected: dict[tuple[str, str], float] = {}
    for u, v, kind, score in sorted(g.edges(keys=True, data="score")):
        if u != v:
            weight = float(score if score is not None else 1.0) if kind == "similar" else 1.0
            pair = (v, u) if (v, u) in expected else (u, v)
            expected[pair] = expected[pair] + weight if pair in expected else weight
    weights = _pair_weights(Edges.of(g, ids))
    assert list(weights.items()) == list(expected.items())
    undirected = nx.Graph()
    undirected.add_nodes_from(ids)
    undirected.add_weighted_edges_from((u, v, w) for (u, v), w in expected.items())
    adj = adjacency(ids, weights)
    assert [(node, list(neighbours.items())) for node, neighbours in adj.items()] == [
        (node, [(other, data["weight"]) for other, data in undirected.adj[node].items()]) for node in undirected
    ]
    assert undirected_edges(adj) == list(undirected.edges(data="weight"))
    # the graph page's edge count, and the key of which notes the edges join
    pairs = set()
    for u, v, kind in g.edges(keys=True):
        if u != v:
            pairs.add((min(u, v), max(u, v), kind) if kind == "similar" else (u, v, kind))
    read = Edges.of(g, ids)
    assert read.count() == len(pairs)
    kind_code = {kind: i for i, kind in enumerate(Edges.KINDS)}
    assert read.drawn().tolist() == sorted([ids.index(u), ids.index(v), kind_code[kind]] for u, v, kind in pairs)
    joined = {note_id: len((set(g.successors(note_id)) | set(g.predecessors(note_id))) - {note_id}) for note_id in ids}
    assert read.joined().tolist() == [joined[note_id] for note_id in ids]
    shuffled = list(g.edges(keys=True, data=True))
    random.Random(n).shuffle(shuffled)
    again = nx.MultiDiGraph()
    again.add_nodes_from(ids)
    again.add_edges_from((u, v, kind, {**data, "score": 0.5} if "score" in data else data) for u, v, kind, data in shuffled)
    assert Edges.of(again, ids).joins() == read.joins()  # neither the order nor the scores
    if shuffled:
        u, v, kind, data = shuffled[0]
        again.remove_edge(u, v, key=kind)
        if not again.has_edge(v, u, key=kind) and u != v:
            again.add_edge(v, u, key=kind, **data)  # the other way round
            assert Edges.of(again, ids).joins() != read.joins()


def _labels_by_counting(assigned, notes, n_terms=3):
    """The cluster labels' terms as c-TF-IDF defines them, counted term by term (what label_clusters
    computes with sparse sums)."""
    import math
    from collections import Counter

    from notegraph.graph.clusters import label_terms, label_text

    counts = {cid: Counter(t for m in members for t in label_terms(label_text(notes[m]))) for cid, members in assigned}
    total: Counter[str] = Counter()
    for counter in counts.values():
        total.update(counter)
    avg_words = sum(sum(c.values()) for c in counts.values()) / max(len(counts), 1)
    out = {}
    for cid, members in assigned:
        size = sum(counts[cid].values()) or 1
        scored = [((n / size) * math.log(1 + avg_words / total[t]), t) for t, n in counts[cid].items() if n > 1 or len(members) == 1]
        chosen: list[str] = []
        for _, term in sorted(scored, key=lambda s: (-s[0], s[1])):
            if not any(term[:5] == other[:5] for other in chosen):
                chosen.append(term)
            if len(chosen) == n_terms:
                break
        out[cid] = tuple(chosen)
    return out


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(seed=st.integers(0, 10_000), vocabulary=st.integers(3, 400), clusters=st.integers(1, 12))
def test_cluster_labels_are_the_distinctive_terms_and_kept_counts_change_nothing(tmp_path: Path, seed: int, vocabulary: int, clusters: int):
    """Many tied scores (a small vocabulary), shared prefixes ("groun..."), clusters of one note, and
    more terms than the exactly scored candidates (a large one)."""
    from notegraph.graph.clusters import label_clusters, label_terms
    from notegraph.graph.lexical import TermCounts
    from notegraph.model import Note

    rng = random.Random(seed)
    words = [f"{rng.choice(['ground', 'repair', 'dialog', 'scal'])}{rng.choice('abcdefgh')}{i}" for i in range(vocabulary)]
    notes = {}
    for i in range(rng.randrange(clusters, 60)):
        text = " ".join(rng.choice(words[: rng.randrange(1, vocabulary + 1)]) for _ in range(rng.randrange(0, 80)))
        notes[f"n{i:02d}"] = Note(id=f"n{i:02d}", path=f"n{i:02d}.md", title=rng.choice(words), text=text)
    ids = sorted(notes)
    assigned = [(cid, set(ids[cid::clusters])) for cid in range(clusters) if ids[cid::clusters]]
    adj: dict[str, dict[str, float]] = {note_id: {} for note_id in ids}
    got = label_clusters(assigned, notes, adj)
    assert {c.id: c.terms for c in got} == _labels_by_counting(assigned, notes)
    kept = TermCounts(tmp_path / f"labels-{seed}-{vocabulary}-{clusters}.npz", label_terms)
    label_clusters(assigned, notes, adj, counts=kept)
    notes[ids[0]] = Note(id=ids[0], path=f"{ids[0]}.md", title="grounding", text="grounding " * 5)  # an edit
    again = label_clusters(assigned, notes, adj, counts=kept)
    assert kept.tokenized == 1
    assert [(c.terms, c.label) for c in again] == [(c.terms, c.label) for c in label_clusters(assigned, notes, adj)]
    assert {c.id: c.terms for c in again} == _labels_by_counting(assigned, notes)
