"""The facts memo: facts kept between builds are exactly the facts a build without it computes."""

from __future__ import annotations

import dataclasses
import random
from pathlib import Path

import pytest
from conftest import write
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from test_graph import vecs_for

from notegraph.config import load_settings
from notegraph.graph import GraphSettings, build_graph
from notegraph.graph.edges import Edges
from notegraph.graph.memo import FactKeys, Passages, decode, encode
from notegraph.pipeline import load
from notegraph.render import render_site
from notegraph.render.site import MANIFEST

WORDS = "grounding repair dialogue turn taking scaling compute tokens memory attention graph cluster note paper claim evidence".split()
KINDS = ("synthesis", "concept", "paper", "inquiry")


def collection(root: Path, n: int, rng: random.Random) -> None:
    for i in range(n):
        write(root, f"n{i}.md", note_text(i, n, rng))


def note_text(i: int, n: int, rng: random.Random, title: str | None = None, kind: str | None = None) -> str:
    words = " ".join(rng.choice(WORDS) for _ in range(30))
    # some links name a heading that a later edit may add ("heading" below)
    links = " ".join(f"[[n{rng.randrange(n)}{rng.choice(['', '', '#Part 1'])}]]" for _ in range(rng.randrange(4)))
    kind = kind or KINDS[i % 4]
    return f"---\ntitle: {title or f'Note {i}'}\nkind: {kind}\n---\n{words}. See {links}.\n"


def graph_of(root: Path, state: Path, memo: bool, similar_k: int = 3):
    c = load(load_settings(root))
    memo_path = state / "facts.sqlite" if memo else None
    rank_path, near_path = (state / "rank.npz", state / "near.npz") if memo else (None, None)
    gs = GraphSettings(
        similar_k=similar_k, similar_threshold=0.2, cluster_state=state / "clusters.json", facts_memo=memo_path, rank_state=rank_path, similar_state=near_path
    )
    return build_graph(c, vecs_for(c), gs)


def edit(root: Path, step: int, rng: random.Random) -> str:
    """One change of the kinds a writer makes between builds; returns which."""
    files = sorted(root.glob("*.md"))
    path = rng.choice(files)
    text = path.read_text()
    what = rng.choice(["append", "title", "link", "unlink", "kind", "add", "delete", "heading", "topic", "alias", "question"])
    if what == "append":
        path.write_text(text + f"\nMore about {rng.choice(WORDS)} and {rng.choice(WORDS)}.\n")
    elif what == "title":
        path.write_text(text.replace("title: ", f"title: Renamed {step} ", 1))
    elif what == "link":
        path.write_text(text + f"\nAlso [[{rng.choice(files).stem}]].\n")
    elif what == "unlink":
        path.write_text(text.replace("[[", "", 1).replace("]]", "", 1))
    elif what == "kind":
        path.write_text(text.replace("kind: ", f"kind: {rng.choice(KINDS)}\nold_kind: ", 1))
    elif what == "add":
        write(root, f"new{step}.md", note_text(step, len(files), rng))
    elif what == "delete" and len(files) > 4:
        path.unlink()
    elif what == "heading":  # a heading that links in other notes may already name
        path.write_text(text + f"\n## Part {rng.randrange(2)}\n\nMore.\n")
    elif what == "topic":
        path.write_text(text.replace("kind: ", f"topics: [T{rng.randrange(3)}]\nkind: ", 1))
    elif what == "question":  # shown on the pages of the notes an inquiry cites
        path.write_text(text.replace("kind: ", f"question: Why {step}?\nkind: ", 1))
    elif what == "alias":  # an alias another note's link may now resolve to
        path.write_text(text.replace("kind: ", f"aliases: [A{step}]\nkind: ", 1))
        other = rng.choice(files)
        other.write_text(other.read_text() + f"\nAnd [[A{step}]].\n")
    return what


@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(seed=st.integers(0, 2**32 - 1))
def test_kept_facts_equal_facts_computed_afresh_after_any_edits(tmp_path_factory: pytest.TempPathFactory, seed: int):
    rng = random.Random(seed)
    base = tmp_path_factory.mktemp("memo")
    root = base / "notes"
    collection(root, 24, rng)
    for step in range(5):
        kept = graph_of(root, base / "with", memo=True)
        fresh = graph_of(root, base / "without", memo=False)
        assert kept.facts == fresh.facts
        assert fresh.computed == len(fresh.facts)
        if step:
            assert kept.computed <= len(kept.facts)
        edit(root, step, rng)


@settings(max_examples=10, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(seed=st.integers(0, 2**32 - 1))
def test_kept_pages_equal_pages_rendered_afresh_after_any_edits(tmp_path_factory: pytest.TempPathFactory, seed: int):
    """Pages kept by their inputs key (without building their contexts) are byte for byte the pages a
    render of the same graph without keys makes."""
    rng = random.Random(seed)
    base = tmp_path_factory.mktemp("pages")
    root = base / "notes"
    collection(root, 20, rng)
    previous = None
    for step in range(6):
        c = load(load_settings(root))
        result = graph_of(root, base / "state", memo=True)
        kept_site = base / f"kept{step}"
        report = render_site(c, result, kept_site, previous=previous)
        fresh_site = base / f"fresh{step}"
        render_site(c, dataclasses.replace(result, keys={}), fresh_site)
        assert files_of(kept_site) == files_of(fresh_site)
        if step:
            assert report.pages_reused > 0
        previous = kept_site
        edit(root, step, rng)


def linked_collection(root: Path, n: int) -> None:
    """n notes of 40 words each, drawn from 960, each note linking to one other."""
    rng = random.Random(7)
    for i in range(n):
        words = " ".join(f"{rng.choice(WORDS)}{rng.randrange(60)}" for _ in range(40))
        write(root, f"n{i}.md", f"---\ntitle: Note {i}\nkind: {KINDS[i % 4]}\n---\n{words}. See [[n{rng.randrange(n)}]].\n")


def repeat_a_word(path: Path) -> None:
    """A sentence of a word the note already has: no document frequency, so no other note's term
    weights, moves."""
    text = path.read_text()
    path.write_text(text + f"\nOnce more, {text.split('---')[2].split()[0]}\n")


def test_note_pages_are_kept_by_their_quick_key_until_a_name_changes(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    """A note page is kept without resolving its links while its own fields, its facts and every
    note's names are unchanged; a new heading (which links elsewhere may name) resolves them all again,
    and the pages are those of a render from nothing."""
    from notegraph.render.body import Linker

    # as in the test below: enough notes for an edit to reach only some facts, and no similar edges
    root, n = tmp_path / "notes", 250
    linked_collection(root, n)
    write(root, "target.md", "---\ntitle: Target\nkind: concept\n---\nNo parts yet.\n")
    write(root, "pointer.md", "---\ntitle: Pointer\nkind: synthesis\n---\nSee [[target#Part 9]].\n")
    resolved: list[str] = []
    table = Linker.table
    monkeypatch.setattr(Linker, "table", lambda self, note: (resolved.append(note.id), table(self, note))[1])

    def render(step: str, previous: Path | None, memo: bool = True) -> Path:
        c = load(load_settings(root))
        out = tmp_path / step
        result = graph_of(root, tmp_path / "state", memo=True, similar_k=0)
        render_site(c, result if memo else dataclasses.replace(result, keys={}), out, previous=previous)
        return out

    first = render("first", None)
    assert len(resolved) == n + 2
    resolved.clear()
    repeat_a_word(root / "n32.md")
    second = render("second", first)
    assert "n32" in resolved and len(resolved) < n // 2  # the others were kept by their quick key
    resolved.clear()
    write(root, "target.md", "---\ntitle: Target\nkind: concept\n---\nNo parts yet.\n\n## Part 9\n\nNow there is.\n")
    third = render("third", second)
    assert len(resolved) == n + 2  # a heading is a name: every note's links are resolved again
    assert 'href="target.html#part-9"' in (third / "notes" / "pointer.html").read_text()
    assert files_of(third) == files_of(render("fresh", None, memo=False))


def test_a_page_is_kept_by_its_file_only_under_the_settings_it_was_parsed_with(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    """The quick key names a note's own fields by its file's content hash and the settings it was
    parsed with (``Collection.parsed_by``). Under other settings, or none known, no page is kept by it:
    every note's links are resolved again, and the pages are still those the first render made."""
    from notegraph.render.body import Linker

    root, n = tmp_path / "notes", 40
    linked_collection(root, n)
    resolved: list[str] = []
    table = Linker.table
    monkeypatch.setattr(Linker, "table", lambda self, note: (resolved.append(note.id), table(self, note))[1])
    c = load(load_settings(root))
    assert c.parsed_by and all(note.content_hash for note in c.notes.values())
    result = graph_of(root, tmp_path / "state", memo=True, similar_k=0)
    first = tmp_path / "first"
    render_site(c, result, first)
    resolved.clear()
    render_site(c, result, tmp_path / "same", previous=first)
    assert resolved == []
    for name, parsed_by in (("other", c.parsed_by + ";other"), ("unknown", "")):
        resolved.clear()
        out = tmp_path / name
        report = render_site(dataclasses.replace(c, parsed_by=parsed_by), result, out, previous=first)
        assert sorted(resolved) == sorted(c.notes) and report.pages_written == 0
        assert files_of(out) == files_of(first)


def files_of(site: Path) -> dict[str, bytes]:
    return {str(p.relative_to(site)): p.read_bytes() for p in sorted(site.rglob("*")) if p.is_file() and p.name != MANIFEST}


def test_an_edit_recomputes_only_the_notes_it_touches(tmp_path: Path):
    # each note's ranking rows keep its 50 best candidates: the collection must be several times larger
    # for an edited note to be in only some of them. Without similar edges the clusters (found over
    # the whole graph, where one changed edge weight can move many notes) stay as they are.
    root, n = tmp_path / "notes", 250
    linked_collection(root, n)
    first = graph_of(root, tmp_path, memo=True, similar_k=0)
    assert first.computed == n
    again = graph_of(root, tmp_path, memo=True, similar_k=0)
    assert again.computed == 0 and again.facts == first.facts
    # a word the note already has: no other note's term weights move, so the notes recomputed are
    # those that have this one among their candidates (a synthesis note: the 62 papers are each in
    # almost every row's 50 best papers)
    repeat_a_word(root / "n32.md")
    after = graph_of(root, tmp_path, memo=True, similar_k=0)
    assert 1 <= after.computed < n // 2
    assert after.facts == graph_of(root, tmp_path / "fresh", memo=False, similar_k=0).facts


def test_a_key_changes_with_each_of_its_notes_inputs_and_no_other_notes_key():
    """The keys are made for all notes at once from arrays: each input moves the keys of exactly the
    notes it is an input of (the end-to-end tests cannot tell, since most edits move several inputs)."""
    import numpy as np

    ids = ["a", "b", "c", "d"]
    digests = {note_id: bytes([n]) * 16 for n, note_id in enumerate(ids)}
    edges = [(0, 1, "link", None), (1, 2, "similar", 0.5), (2, 0, "source", None)]
    two_hop, clusters = [2, 2, 2, 0], [(0, "small"), (0, "small"), (0, "small"), (1, "small")]
    incoming = {"b": [("a", "a sentence citing b")], "a": [("c", "")]}
    rows = (np.array([[1, 2], [2, 0], [0, 1], [0, 1]]), np.array([[0.9, 0.5], [0.8, 0.1], [0.7, 0.6], [0.2, 0.1]], dtype=np.float32))

    def keys(**changed: object) -> dict[str, bytes]:
        given = {"edges": edges, "digests": digests, "two_hop": two_hop, "clusters": clusters, "incoming": incoming, "rows": rows, **changed}
        made = FactKeys(b"salt", ids, given["digests"], ids, [given["rows"]])  # type: ignore[list-item, arg-type]
        return made.keys(Edges(ids, given["edges"]), given["two_hop"], given["clusters"], given["incoming"])  # type: ignore[arg-type]

    base = keys()
    assert len(set(base.values())) == len(ids)
    assert keys(edges=list(reversed(edges))) == base  # the order the graph lists its edges in is no input

    def moved(**changed: object) -> set[str]:
        new = keys(**changed)
        return {note_id for note_id in ids if new[note_id] != base[note_id]}

    assert moved(edges=[edges[0], (1, 2, "similar", 0.6), edges[2]]) == {"b", "c"}  # a score
    assert moved(edges=[(1, 0, "link", None), *edges[1:]]) == {"a", "b"}  # a direction
    assert moved(edges=[(0, 1, "source", None), *edges[1:]]) == {"a", "b"}  # a kind
    assert moved(edges=[(0, 3, "link", None), *edges[1:]]) == {"a", "b", "d"}  # the other end
    assert moved(edges=[*edges, (3, 3, "link", None)]) == {"d"}
    assert moved(digests={**digests, "c": b"x" * 16}) == {"a", "b", "c"}  # c, and the notes it is joined with
    assert moved(digests={**digests, "a": b"x" * 16}) == {"a", "b", "c", "d"}  # and d, whose ranking row holds a
    assert moved(digests={**digests, "d": b"x" * 16}) == {"d"}  # joined with none, in no other row
    joined = [*edges, (0, 3, "link", None)]
    before, after = keys(edges=joined), keys(edges=joined, digests={**digests, "d": b"x" * 16})
    assert {note_id for note_id in ids if before[note_id] != after[note_id]} == {"a", "d"}  # named by a's link only
    assert moved(two_hop=[2, 3, 2, 0]) == {"b"}
    assert moved(clusters=[(0, "small"), (0, "small"), (2, "small"), (1, "small")]) == {"c"}
    assert moved(clusters=[*clusters[:3], (1, "medium")]) == {"d"}
    assert moved(incoming={**incoming, "b": [("a", "another sentence citing b")]}) == {"b"}
    assert moved(incoming={**incoming, "d": [("a", "")]}) == {"d"}
    assert moved(rows=(rows[0], rows[1] + np.array([[0], [0], [0], [0.01]], dtype=np.float32))) == {"d"}


@settings(max_examples=8, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(seed=st.integers(0, 2**32 - 1))
def test_a_warm_build_makes_the_site_a_build_from_the_files_makes(tmp_path_factory: pytest.TempPathFactory, seed: int):
    """serve's builds keep each note as parsed and each vector and chunk list as read (pipeline.Warm):
    after any series of edits, and of the parse settings and the model, its site is byte for byte the
    site of a build that read everything from its files."""
    import shutil

    from notegraph.pipeline import Warm, build

    rng = random.Random(seed)
    base = tmp_path_factory.mktemp("warm")
    warm_root, cold_root = base / "warm" / "notes", base / "cold" / "notes"
    collection(warm_root, 16, rng)
    configs = ['model = "fake/hash-64"\n', 'model = "fake/hash-64"\nallow_html = true\n', 'model = "fake/hash-32"\n']
    warm = Warm()
    for step in range(6):
        (warm_root / "notegraph.toml").write_text(configs[step // 2 % len(configs)])
        # the same notes in the other folder, which keeps its own state (the cluster ids follow the last build's)
        for gone in set(cold_root.glob("*.md")) - {cold_root / p.name for p in warm_root.glob("*.md")}:
            gone.unlink()
        shutil.copytree(warm_root, cold_root, ignore=shutil.ignore_patterns(".notegraph"), dirs_exist_ok=True)
        warm_report = build(load_settings(warm_root, out=base / "warm" / "site"), warm=warm)
        build(load_settings(cold_root, out=base / "cold" / "site"))
        assert files_of(base / "warm" / "site") == files_of(base / "cold" / "site")
        assert warm_report.notes and set(warm.parsed.results) == {p.name for p in warm_root.glob("*.md")}
        assert warm.embedded.model_id == configs[step // 2 % len(configs)].split('"')[1]
        edit(warm_root, step, rng)


def test_a_warm_build_decodes_and_reads_only_what_changed(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    from notegraph.embed.cache import EmbeddingCache
    from notegraph.parse import cache as parse_cache
    from notegraph.pipeline import Warm, build

    root = tmp_path / "notes"
    collection(root, 12, random.Random(5))
    write(root, "notegraph.toml", 'model = "fake/hash-64"\n')
    warm = Warm()
    build(load_settings(root, out=tmp_path / "site"), warm=warm)
    decoded: list[str] = []
    read: list[int] = []
    real_decode, real_get_many = parse_cache._safe_decode, EmbeddingCache.get_many
    monkeypatch.setattr(parse_cache, "_safe_decode", lambda text: decoded.append(text) or real_decode(text))
    monkeypatch.setattr(EmbeddingCache, "get_many", lambda self, model, hashes: read.append(len(hashes := list(hashes))) or real_get_many(self, model, hashes))
    files: list[str] = []
    real_read_bytes = Path.read_bytes
    monkeypatch.setattr(Path, "read_bytes", lambda self: files.append(self.name) or real_read_bytes(self))
    (root / "n3.md").write_text((root / "n3.md").read_text() + "\nOne more sentence about repair.\n")
    report = build(load_settings(root, out=tmp_path / "site"), warm=warm)
    assert report.embedded == 1 and report.pages_written
    assert decoded == [] and read == [1]  # the edited note was parsed, its one new text looked up
    assert "resolved.json" not in files  # the other notes' links were the last build's, in memory
    stamp, result = warm.parsed.results["n3.md"]
    assert warm.parsed.get("n3.md", stamp) == result and warm.parsed.get("n3.md", (*stamp[:3], "other settings")) is None
    cold = Warm()
    build(load_settings(root, out=tmp_path / "other"), warm=cold)
    assert len(decoded) == 12 and read[-1] > 1 and files.count("resolved.json") == 1


def test_a_digest_moves_with_each_thing_other_notes_take_from_the_note_and_the_salt_with_the_model():
    """A note's digest names its vectors by its chunk texts (the embedding cache's one vector per text
    under the model), or the texts by the note's chunking key: each of its inputs moves it, and the
    model and the vectors' size move the salt."""
    import numpy as np

    from notegraph.embed.stage import Embeddings
    from notegraph.graph.memo import note_digests, salt_of
    from notegraph.model import Note

    note = Note(id="a", path="a.md", title="A", kind="concept", lede="Lede.", question=None)
    vectors = np.ones((1, 4), dtype=np.float32)
    base_embeddings = Embeddings("m", ["a"], vectors, {"a": ["chunk one"]}, {"a": vectors})

    def digest(
        note: Note = note, chunks: list[str] | None = None, out: tuple[str, ...] = ("b",), into: tuple[str, ...] = (), chunk_key: str | None = None
    ) -> bytes:
        keys = {"a": chunk_key} if chunk_key is not None else {}
        embeddings = dataclasses.replace(base_embeddings, chunks={"a": chunks or ["chunk one"]}, chunk_keys=keys)
        return note_digests(["a"], {"a": note}, embeddings, {"a": list(out)}, {"a": list(into)})["a"]

    base = digest()
    changes = [
        digest(note=dataclasses.replace(note, title="B")),
        digest(note=dataclasses.replace(note, kind="paper")),
        digest(note=dataclasses.replace(note, lede="Other.")),
        digest(note=dataclasses.replace(note, question="Why?")),
        digest(chunks=["chunk two"]),
        digest(chunks=["chunk one", "chunk two"]),
        digest(out=("c",)),
        digest(out=()),
        digest(into=("b",)),
        digest(chunk_key="k1"),
        digest(chunk_key="k2"),
    ]
    assert base not in changes and len(set(changes)) == len(changes)
    assert digest(out=("b",)) == base
    # where the embedding stage gives a note's chunking key, the key names its chunks (it is made from
    # what they are cut from, under the chunker's code and settings): the texts are not serialised again
    assert digest(chunk_key="k1", chunks=["chunk two"]) == digest(chunk_key="k1")
    salt = salt_of("code", base_embeddings, (5, 0.5), b"ranking")
    others = [
        salt_of("code2", base_embeddings, (5, 0.5), b"ranking"),
        salt_of("code", dataclasses.replace(base_embeddings, model_id="m2"), (5, 0.5), b"ranking"),
        salt_of("code", dataclasses.replace(base_embeddings, vectors=np.ones((1, 8), dtype=np.float32)), (5, 0.5), b"ranking"),
        salt_of("code", base_embeddings, (6, 0.5), b"ranking"),
        salt_of("code", base_embeddings, (5, 0.5), b"ranking2"),
    ]
    assert salt not in others and len(set(others)) == len(others)


def test_a_damaged_memo_is_an_empty_one(tmp_path: Path):
    rng = random.Random(3)
    root = tmp_path / "notes"
    collection(root, 12, rng)
    first = graph_of(root, tmp_path, memo=True)
    (tmp_path / "facts.sqlite").write_bytes(b"not a database" * 100)
    for suffix in ("-wal", "-shm"):
        Path(f"{tmp_path / 'facts.sqlite'}{suffix}").unlink(missing_ok=True)
    second = graph_of(root, tmp_path, memo=True)
    assert second.facts == first.facts and second.computed == 12
    assert graph_of(root, tmp_path, memo=True).computed == 0  # kept anew


def test_kept_facts_are_decoded_when_asked_for_and_a_bad_row_is_computed(tmp_path: Path):
    import sqlite3

    rng = random.Random(4)
    root = tmp_path / "notes"
    collection(root, 12, rng)
    first = graph_of(root, tmp_path, memo=True)
    with sqlite3.connect(tmp_path / "facts.sqlite") as conn:
        conn.execute("UPDATE facts SET data = ? WHERE id = 'n3'", (b'["n3", 1, 2',))  # cut short: not JSON
        conn.execute("UPDATE facts SET data = ? WHERE id = 'n5'", (b'["n5", 1]',))  # JSON of the wrong shape
    second = graph_of(root, tmp_path, memo=True)
    assert second.computed == 0 and len(second.facts) == 12 and list(second.facts) == sorted(first.facts)
    assert not second.facts._facts  # nothing decoded yet
    assert second.facts["n3"] == first.facts["n3"] and second.facts["n5"] == first.facts["n5"]
    assert second.facts == first.facts
    with pytest.raises(KeyError):
        second.facts["not-a-note"]


def test_deleted_notes_leave_the_memo(tmp_path: Path):
    import sqlite3

    rng = random.Random(5)
    root = tmp_path / "notes"
    collection(root, 10, rng)
    graph_of(root, tmp_path, memo=True)
    (root / "n4.md").unlink()
    graph_of(root, tmp_path, memo=True)
    with sqlite3.connect(tmp_path / "facts.sqlite") as conn:
        ids = {row[0] for row in conn.execute("SELECT id FROM facts")}
    assert "n4" not in ids and "n3" in ids


def test_facts_round_trip_through_their_json(tmp_path: Path):
    rng = random.Random(11)
    root = tmp_path / "notes"
    collection(root, 16, rng)
    result = graph_of(root, tmp_path, memo=False)
    c = load(load_settings(root))
    passages = Passages(vecs_for(c).chunks)
    referenced = 0
    for facts in result.facts.values():
        blob = encode(facts, passages)
        assert blob is not None and decode(blob, Passages(vecs_for(c).chunks)) == facts
        referenced += blob.count(b'",0,') + blob.count(b",0]")
    assert referenced  # passages travel as chunk numbers, not text
    broken = dataclasses.replace(next(iter(result.facts.values())))
    if broken.related:
        nan = dataclasses.replace(broken, related=(dataclasses.replace(broken.related[0], score=float("nan")),))
        assert encode(nan, passages) is None  # JSON has no NaN: such facts are computed again, never kept wrong


def test_a_build_after_edits_equals_a_build_from_nothing(tmp_path: Path):
    """Through the whole pipeline: after a series of edits, the site a build makes with its memo,
    previous site and caches is byte for byte the site a build of the same notes makes from nothing
    (given the same cluster numbering, which follows the previous build's on purpose)."""
    import shutil

    from conftest import FakeFactory

    from notegraph.pipeline import build

    rng = random.Random(17)
    root = tmp_path / "notes"
    collection(root, 40, rng)
    out = tmp_path / "site"
    factory = FakeFactory()
    build(load_settings(root, out=out), factory=factory)
    kinds = set()
    for step in range(10):
        kinds.add(edit(root, step, rng))
        report = build(load_settings(root, out=out), factory=factory)
    assert report.pages_reused > 0 and len(kinds) >= 6
    fresh_root = tmp_path / "fresh" / "notes"
    shutil.copytree(root, fresh_root, ignore=shutil.ignore_patterns(".notegraph"))
    (fresh_root / ".notegraph").mkdir()
    shutil.copy(root / ".notegraph" / "clusters.json", fresh_root / ".notegraph" / "clusters.json")
    fresh_out = tmp_path / "fresh" / "site"
    fresh = build(load_settings(fresh_root, out=fresh_out), factory=FakeFactory())
    assert fresh.pages_reused == 0 and fresh.facts_computed == fresh.notes
    assert files_of(out) == files_of(fresh_out)
