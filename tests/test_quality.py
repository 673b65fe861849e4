"""`eval` and `suggest`: link prediction figures are computed honestly; a known missing link is found."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

from click.testing import CliRunner
from conftest import FakeFactory, write

from notegraph.cli import main
from notegraph.config import load_settings
from notegraph.evaluate import without_links
from notegraph.graph.rank import Signals, Weights, hierarchy_key
from notegraph.pipeline import evaluate, load, suggest


def topical(tmp_path: Path) -> Path:
    root = tmp_path / "n"
    topics = {
        "bees": "bees hive honey pollen queen swarm nectar comb",
        "ships": "ships hull sail mast harbour anchor keel rudder",
        "stars": "stars galaxy nebula telescope orbit comet quasar",
    }
    for topic, words in topics.items():
        for i in range(4):
            others = [f"[[{topic}-{j}]]" for j in range(4) if j != i and not (topic == "bees" and {i, j} == {0, 1})]
            write(root, f"{topic}-{i}.md", f"# {topic.title()} {i}\n\nAbout {words} number {i}. See {' and '.join(others)}.\n")
    return root


def test_suggest_finds_the_missing_link(tmp_path: Path):
    root = topical(tmp_path)
    items = suggest(load_settings(root), k=5, min_score=None, factory=FakeFactory())
    assert (items[0]["a"]["id"], items[0]["b"]["id"]) == ("bees-0", "bees-1")
    assert any(w.startswith("cited together by") for w in items[0]["why"])


def test_eval_hides_links_and_reports_methods(tmp_path: Path):
    root = topical(tmp_path)
    c = load(load_settings(root))
    hidden = without_links(c.notes["ships-0"])
    assert "ships-1" not in hidden.text and hidden.links == ()
    report = evaluate(load_settings(root), factory=FakeFactory())
    assert report.queries == 12 and {m.method for m in report.methods} == {"tfidf", "bm25", "embedding", "default"}
    by = {m.method: m for m in report.methods}
    # within-topic links are easy: every method beats random (3/11 at k=10 would be chance)
    assert all(0.5 < m.recall_at_10 <= 1.0 and 0 < m.mrr <= 1 for m in report.methods)
    assert by["default"].recall_at_5 >= by["tfidf"].recall_at_5


def test_eval_and_suggest_cli_json(tmp_path: Path, monkeypatch):
    root = topical(tmp_path)
    import notegraph.pipeline as pipeline

    factory = FakeFactory()
    monkeypatch.setattr(pipeline, "embedder_factory_for", lambda settings: factory)
    monkeypatch.setattr(pipeline, "model_id", lambda settings: factory.model_id)
    runner = CliRunner()
    result = runner.invoke(main, ["eval", str(root), "--json"])
    assert result.exit_code == 0, result.output
    data = json.loads(result.output)
    assert data["queries"] == 12 and [m["method"] for m in data["methods"]] == ["tfidf", "bm25", "embedding", "default"]
    result = runner.invoke(main, ["suggest", str(root), "--json", "-k", "2"])
    assert result.exit_code == 0, result.output
    pairs = json.loads(result.output)["suggestions"]
    assert len(pairs) == 2 and pairs[0]["a"]["id"] == "bees-0" and pairs[0]["passage_a"]


def test_hierarchy_ties_a_folder_note_to_its_notes(tmp_path: Path):
    """A folder note links to its folder's notes though their texts share nothing; the hierarchy finds them."""
    assert hierarchy_key("Tools/Databases/Databases") == hierarchy_key("Tools/Databases/index") == ("tools", "databases")
    assert hierarchy_key("careers.mission") == ("careers", "mission")
    root = tmp_path / "n"
    write(root, "Tools/Tools.md", "# Tools\n\nEverything we use, grouped by kind.\n")
    write(root, "Tools/Redis.md", "# Redis\n\nAn in-memory key-value store.\n")
    write(root, "Tools/Kafka.md", "# Kafka\n\nA distributed log for event streams.\n")
    write(root, "Concepts/Queues.md", "# Queues\n\nFIFO and priority queues.\n")
    write(root, "Concepts/Concepts.md", "# Concepts\n\nIdeas behind the software.\n")
    from notegraph.pipeline import related

    _, items = related(load_settings(root), "Tools/Tools", 2, None, factory=FakeFactory())
    assert {item["id"] for item in items} == {"Tools/Redis", "Tools/Kafka"}
    assert all("child in the hierarchy" in item["why"] for item in items)
    _, up = related(load_settings(root), "Tools/Redis", 1, None, factory=FakeFactory())
    assert up[0]["id"] == "Tools/Tools" and "parent in the hierarchy" in up[0]["why"]


def test_returned_links_count_as_much_as_the_collection_returns_them():
    """Reciprocal evidence is scaled by P(a links to b | b links to a) on the visible links, and a hidden
    note's own links never enter that estimate."""
    import numpy as np

    ids = ["a", "b", "c", "d"]
    vectors = np.eye(4, dtype=np.float32)
    only = Weights(cosine=0, lexical=0, reciprocal=1, cocited=0, cociting=0, neighbour_links=0, popularity=0, path=0, hierarchy=0)
    # every link returned: a <-> b, c <-> d
    mutual = Signals(ids, vectors, ["x"] * 4, [("a", "b"), ("b", "a"), ("c", "d"), ("d", "c")])
    assert mutual.block(np.array([0]), only)[0, 1] == 1.0
    # a <-> b is the only returned pair; hiding a's links leaves b->a, c->d, d->b: none returned
    one_way = Signals(ids, vectors, ["x"] * 4, [("a", "b"), ("b", "a"), ("c", "d"), ("d", "b")])
    assert one_way.block(np.array([0]), only)[0, 1] == 0.5
    assert one_way.block(np.array([0]), only, hide_out_links=True)[0, 1] == 0.0


def test_groups_that_never_link_are_pushed_down():
    """Papers here only ever cite papers; an essay is penalised for a paper, a paper is not for an essay."""
    import numpy as np

    ids = [f"papers/p{i:02}" for i in range(12)] + [f"essays/e{i}" for i in range(3)]
    edges = [(f"papers/p{i:02}", f"papers/p{(i + j) % 12:02}") for i in range(12) for j in range(1, 5)]
    edges += [(f"essays/e{i}", f"papers/p{i:02}") for i in range(3)]
    signals = Signals(ids, np.eye(15, dtype=np.float32), ["x"] * 15, edges)
    only = Weights(cosine=0, lexical=0, reciprocal=0, cocited=0, cociting=0, neighbour_links=0, popularity=0, path=0, hierarchy=0, rare_groups=1)
    paper = signals.block(np.array([0]), only, hide_out_links=True)[0]
    assert (paper[12:] < 0).all() and (paper[:12] == 0).all()
    # three links are too few to call any pair rare: the estimate is pulled towards "as expected"
    essay = signals.block(np.array([12]), only, hide_out_links=True)[0]
    assert (essay == 0).all()


def test_hidden_link_text_is_removed_longest_first():
    """A short link name removed before a longer one would leave half of the longer one in the query."""
    from notegraph.model import Note, RawLink

    links = (RawLink(target="Data", line=1, shown="data"), RawLink(target="Data Warehouse", line=1, shown="data warehouse"))
    note = Note(id="q", path="q.md", title="Q", text="Load the data warehouse nightly; the data warehouse holds data.", links=links)
    assert "warehouse" not in without_links(note).text.lower()


def test_hierarchy_counts_only_the_directions_this_collection_links():
    """Folder notes link down to their notes, which never link back up: a child gets less for its parent
    than a parent for its children (towards 0 and 2 as the pairs grow). A hidden link never vouches for
    its direction."""
    import numpy as np

    ids = [f"{f}/{f}" for f in "ab"] + [f"{f}/n{i}" for f in "ab" for i in range(3)]
    edges = [(f"{f}/{f}", f"{f}/n{i}") for f in "ab" for i in range(3)]
    signals = Signals(ids, np.eye(len(ids), dtype=np.float32), ["x"] * len(ids), edges)
    only = Weights(cosine=0, lexical=0, reciprocal=0, cocited=0, cociting=0, neighbour_links=0, popularity=0, path=0, hierarchy=1, rare_groups=0)
    child = signals.block(np.array([ids.index("a/n0")]), only)[0]
    parent = signals.block(np.array([ids.index("a/a")]), only)[0]
    assert child[ids.index("a/a")] < 1.0 < parent[ids.index("a/n0")] and parent[ids.index("b/n0")] == 0.0
    # hiding a/a's links leaves b/b's: still only downward
    assert signals.block(np.array([ids.index("a/a")]), only, hide_out_links=True)[0][ids.index("a/n0")] > 1.0
    # with b/b's links hidden too nothing is left to say which way links go: both directions count once
    bare = Signals(ids, np.eye(len(ids), dtype=np.float32), ["x"] * len(ids), edges[:3])
    assert bare.block(np.array([ids.index("a/a")]), only, hide_out_links=True)[0][ids.index("a/n0")] == 1.0


def test_second_order_finds_what_the_best_candidates_link_to():
    """q is close to a and b, which both link to t; t shares nothing with q. Only the second pass finds t,
    and q's own (hidden) link to t plays no part in it."""
    import numpy as np

    ids = ["q", "a", "b", "t", "u"]
    vectors = np.array([[1, 0, 0], [0.9, 0.436, 0], [0.9, 0, 0.436], [0, 0, 1], [0, 0, 1]], dtype=np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    edges = [("a", "t"), ("b", "t"), ("q", "t")]
    signals = Signals(ids, vectors, ["x"] * 5, edges)
    none = Weights(cosine=1, lexical=0, reciprocal=0, cocited=0, cociting=0, neighbour_links=0, popularity=0, path=0, hierarchy=0, rare_groups=0, second_order=0)
    plain = signals.block(np.array([0]), none, hide_out_links=True)[0]
    assert plain[3] == plain[4]
    second = signals.block(np.array([0]), replace(none, second_order=1.0), hide_out_links=True)[0]
    assert second[3] > second[4] and np.allclose(np.delete(second, 3), np.delete(plain, 3))
