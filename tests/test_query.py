"""`notegraph related` answers from the last build's query index, and only while it is current."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest
from conftest import FakeFactory, write

import notegraph.pipeline as pipeline
from notegraph.config import load_settings
from notegraph.pipeline import build, related

TOPICS = {
    "bees": "bees hive honey pollen queen swarm nectar comb",
    "ships": "ships hull sail mast harbour anchor keel rudder",
    "stars": "stars galaxy nebula telescope orbit comet quasar",
}


def topical(root: Path) -> Path:
    for t, (topic, words) in enumerate(TOPICS.items()):
        for i in range(5):
            kind = "paper" if i % 2 else "synthesis"
            others = " and ".join(f"[[{topic}-{j}]]" for j in range(5) if j not in (i, (i + 1) % 5))
            write(root, f"{topic}-{i}.md", f"---\ntitle: {topic.title()} {i}\nkind: {kind}\naliases: [{topic}{t}{i}]\n---\nAbout {words} number {i}. See {others}.\n")
    return root


def answers(settings, factory, query: str, k: int = 5, kind: str | None = None):
    taken, items = related(settings, query, k, kind, factory)
    return taken, [(i["id"], i["score"], i["passage"]) for i in items], items


@pytest.fixture
def built(tmp_path: Path):
    root = topical(tmp_path / "notes")
    settings = load_settings(root, out=tmp_path / "site")
    factory = FakeFactory()
    build(settings, factory)
    return settings, factory


def test_related_is_answered_from_the_index_the_same_as_from_scratch(built, monkeypatch):
    settings, factory = built
    from_scratch = {}
    index_file = settings.state_dir / pipeline.QUERY_INDEX
    assert index_file.is_file()
    moved = index_file.with_name("moved.sqlite")
    index_file.rename(moved)
    for query, kind in (("Bees 2", None), ("ships3", None), ("stars-4.md", "paper"), ("comet orbit telescope", None), ("hull keel", "paper")):
        from_scratch[(query, kind)] = answers(settings, factory, query, 4, kind)
    moved.rename(index_file)

    def no_ranking(*args, **kwargs):
        raise AssertionError("the index should have answered")

    monkeypatch.setattr(pipeline, "analyse", no_ranking)
    for (query, kind), (taken, ranked, _items) in from_scratch.items():
        again_taken, again, items = answers(settings, factory, query, 4, kind)
        assert (again_taken, [r[:2] for r in again]) == (taken, [r[:2] for r in ranked])
        assert all(item["title"] and item["kind"] and item["why"] for item in items)
        if taken == "text":
            assert again == ranked  # same passages too
    assert from_scratch[("Bees 2", None)][0] == "note:bees-2"
    assert from_scratch[("comet orbit telescope", None)][0] == "text"


def test_a_changed_note_or_setting_or_a_damaged_index_is_not_trusted(built, monkeypatch):
    settings, factory = built
    calls = []
    real = pipeline.analyse
    monkeypatch.setattr(pipeline, "analyse", lambda *a, **kw: calls.append(1) or real(*a, **kw))
    answers(settings, factory, "Bees 1")
    assert calls == []
    note = settings.notes_dir / "bees-1.md"
    note.write_text(note.read_text() + "\nMore about comb.\n")
    answers(settings, factory, "Bees 1")
    assert calls == [1]
    build(settings, factory)
    answers(settings, factory, "Bees 1")
    assert calls == [1]
    # a k or a kind the index does not hold is ranked from scratch
    answers(settings, factory, "Bees 1", k=settings.related_k + 1)
    answers(settings, factory, "Bees 1", kind="synthesis")
    assert calls == [1, 1, 1]
    answers(settings, factory, "Bees 1", kind="paper")
    assert calls == [1, 1, 1]
    index_file = settings.state_dir / pipeline.QUERY_INDEX
    index_file.write_bytes(b"not a database" * 100)
    assert answers(settings, factory, "Bees 1")[0] == "note:bees-1"
    assert len(calls) == 4
    again = build(settings, factory)  # nothing else changed, but the index is rebuilt
    assert again.pages_written == 0 and again.pages_reused > 0
    answers(settings, factory, "Bees 1")
    assert len(calls) == 4


def test_index_is_one_sqlite_file_written_whole(built):
    settings, _factory = built
    with sqlite3.connect(settings.state_dir / pipeline.QUERY_INDEX) as conn:
        tables = {row[0] for row in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
        assert {"meta", "notes", "matrix"} <= tables
        assert conn.execute("SELECT COUNT(*) FROM notes").fetchone()[0] == 15
    assert not list(settings.state_dir.glob("*.tmp"))


def test_the_cli_query_uses_the_index_of_a_site_built_elsewhere(built, monkeypatch):
    from click.testing import CliRunner

    from notegraph.cli import main

    settings, factory = built
    monkeypatch.setattr(pipeline, "embedder_factory_for", lambda s: factory)
    monkeypatch.setattr(pipeline, "model_id", lambda s: factory.model_id)
    monkeypatch.setattr(pipeline, "analyse", lambda *a, **kw: (_ for _ in ()).throw(AssertionError("ranked from scratch")))
    result = CliRunner().invoke(main, ["related", "Ships 2", "--notes", str(settings.notes_dir), "--json"])
    assert result.exit_code == 0, result.output
    assert '"taken_as": "note:ships-2"' in result.output
