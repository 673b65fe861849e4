"""`notegraph related` answers from the last build's query index, and only while it is current."""

from __future__ import annotations

import os
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


def test_after_edits_the_index_is_updated_in_place_and_answers_as_one_written_whole(built):
    from notegraph.query import QueryIndex

    settings, factory = built
    index_file = settings.state_dir / pipeline.QUERY_INDEX
    inode = index_file.stat().st_ino

    def made() -> dict[str, bytes]:
        with sqlite3.connect(index_file) as conn:
            return dict(conn.execute("SELECT id, made FROM notes"))

    # an alias changes no facts: that row alone is made again
    before = made()
    ships = settings.notes_dir / "ships-2.md"
    ships.write_text(ships.read_text().replace("aliases: [ships12]", "aliases: [flagship]"))
    build(settings, factory)
    after = made()
    assert [note_id for note_id in after if after[note_id] != before[note_id]] == ["ships-2"]
    # a text edit changes the facts of every note of this small collection
    bees = settings.notes_dir / "bees-1.md"
    bees.write_text(bees.read_text() + "\nMore about comb and the queen's swarm.\n")

    def everything() -> dict:
        from notegraph.parse.collection import file_stamps

        stamps = file_stamps(settings.notes_dir, settings.exclude, (settings.out,), pipeline._max_bytes(settings))
        index = QueryIndex.open(index_file, pipeline.settings_key(settings, factory.model_id), stamps)
        assert index is not None
        try:
            notes = index.notes()
            out = {(note_id, kind): index.related(note_id, 10, kind) for note_id in notes for kind in (None, "paper")}
            out["aliases"] = sorted((n.id, n.aliases) for n in notes.values())
            out["text"] = index.related_to_text(factory().encode(["queen swarm comb"]), 5, None)
            return out
        finally:
            index.close()

    build(settings, factory)
    assert index_file.stat().st_ino == inode  # updated, not written anew
    updated, updated_made = everything(), made()
    assert ("ships-2", ("flagship",)) in updated["aliases"]
    index_file.unlink()
    build(settings, factory)  # the same notes: the index alone is written, whole
    assert index_file.stat().st_ino != inode
    assert made() == updated_made and everything() == updated


def test_the_index_answers_in_a_folder_whose_name_reads_as_a_uri(tmp_path: Path, monkeypatch):
    """The index is opened by URI: a folder named with %20, ? or # is still that folder."""
    root = topical(tmp_path / "notes 100%20 sure?#1")
    settings = load_settings(root, out=tmp_path / "site")
    factory = FakeFactory()
    build(settings, factory)
    assert (settings.state_dir / pipeline.QUERY_INDEX).is_file()

    def no_ranking(*args, **kwargs):
        raise AssertionError("the index should have answered")

    monkeypatch.setattr(pipeline, "analyse", no_ranking)
    monkeypatch.setattr(pipeline, "embed", no_ranking)
    note = root / "bees-2.md"
    os.utime(note, ns=(note.stat().st_atime_ns, note.stat().st_mtime_ns + 5_000_000_000))
    build(settings, factory)  # saved again unchanged: the index takes the new stamps (query.restamp)
    taken, items = related(settings, "Bees 2", 3, None, factory)
    assert taken == "note:bees-2" and len(items) == 3
