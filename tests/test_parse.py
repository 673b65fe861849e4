"""Parsing one note: front matter, every link form, tags, lede, and bad bytes."""

from __future__ import annotations

from notegraph.parallel import cpus
from notegraph.parse import parse_note


def parse(text: str | bytes, name: str = "n.md"):
    data = text.encode("utf-8") if isinstance(text, str) else text
    note, diags = parse_note(name, data)
    return note, diags


def test_front_matter_fields_and_unknown_kept():
    note, diags = parse(
        "---\ntitle: T\nkind: paper\ndate: 2024-03-05\ntopics: [A, B]\nclaim: C\nquestion: Q?\n"
        "aliases: [x]\ntags: [t1]\nauthors: [Doe, J.]\nyear: 2020\nvenue: V\nmystery: 42\n---\nLede here.\n\nMore.\n"
    )
    assert not diags
    assert (note.title, note.kind, note.date, note.topics, note.claim, note.question) == ("T", "paper", "2024-03-05", ("A", "B"), "C", "Q?")
    assert note.aliases == ("x",) and "t1" in note.tags
    assert note.meta["mystery"] == 42 and note.meta["date"] == "2024-03-05"
    assert note.lede == "Lede here."
    assert note.body_line == 15


def test_title_is_the_file_name_as_obsidian_shows_it():
    assert parse("# Heading title\n\ntext")[0].title == "n"  # an opening heading is content (issue 26)
    assert parse("text only", "folder/My note.md")[0].title == "My note"
    assert parse("text\n\n# Later heading")[0].title == "n"


def test_wikilink_forms():
    note, _ = parse(
        "See [[Target]], [[Target|shown]], [[Target#Heading]], [[Target#^blk]], [[#Self]].\n"
        "![[embedded note]] and ![[img.png|400]].\n"
    )
    links = [(l.target, l.shown, l.heading, l.block, l.embed) for l in note.links]
    assert links == [
        ("Target", None, None, None, False),
        ("Target", "shown", None, None, False),
        ("Target", None, "Heading", None, False),
        ("Target", None, None, "blk", False),
        ("", None, "Self", None, False),
        ("embedded note", None, None, None, True),
        ("img.png", None, None, None, True),
    ]
    assert all(l.line == 1 for l in note.links[:5]) and note.links[5].line == 2


def test_table_escaped_pipe_and_markdown_links():
    note, _ = parse("| a | b |\n|---|---|\n| [[A\\|alias]] | x |\n\n[t](other%20note.md#Sec) <my note.md> [w](https://x.org)\n")
    assert [(l.target, l.shown, l.style) for l in note.links] == [
        ("A", "alias", "wiki"),
        ("other note.md", "t", "markdown"),
        ("my note.md", None, "markdown"),
    ]
    assert note.links[0].line == 3 and note.links[1].line == 5 and note.links[1].heading == "Sec"


def test_no_links_in_code_or_comments():
    note, _ = parse("```\n[[a]]\n```\n\n`[[b]]` <!-- [[c]] --> %%[[d]]%%\n\n    [[e]] indented code\n\n[[real]]\n")
    assert [l.target for l in note.links] == ["real"]
    assert note.links[0].line == 9


def test_front_matter_links():
    note, _ = parse('---\nkind: inquiry\nsources:\n  - "[[Alpha]]"\n  - Plain Title\nrelated: "[[Beta|b]]"\n---\nBody\n')
    got = [(l.target, l.style, l.field, l.line) for l in note.links]
    assert got == [("Alpha", "frontmatter", "sources", 4), ("Plain Title", "frontmatter", "sources", 5), ("Beta", "frontmatter", "related", 6)]


def test_tags_inline_and_not_colours_or_headings():
    note, _ = parse("# Heading\n\nText #idea and #nested/tag, colour #ff0000, #123, issue#5, `#code`.\n")
    assert note.tags == ("idea", "nested/tag")


def test_link_context_is_the_sentence():
    note, _ = parse("First sentence. The second cites [[Source|a source]] clearly. Third.\n")
    assert note.links[0].context == "The second cites a source clearly."


def test_bad_bytes_are_diagnostics_not_exceptions():
    note, diags = parse(b"\x00\x01binary")
    assert note is None and diags[0].code == "binary-file"
    note, diags = parse(b"")
    assert note is not None and diags[0].code == "empty-file"
    note, diags = parse("\ufeff---\ntitle: Bom\n---\nx\r\ny\r\n".encode())
    assert note.title == "Bom" and not diags and "\r" not in note.body
    note, diags = parse("caf\xe9 latin-1\n".encode("latin-1"))
    assert note is not None and diags[0].code == "encoding" and diags[0].line == 1
    note, diags = parse("---\ntitle: U16\n---\nhi\n".encode("utf-16"))
    assert note.title == "U16" and diags[0].code == "encoding"


def test_bad_front_matter_named_with_line():
    note, diags = parse("---\ntitle: ok\nbad: [unclosed\n---\nBody text.\n")
    assert note.title == "n" and note.lede == "Body text."
    assert diags[0].code == "front-matter" and diags[0].line >= 3
    note, diags = parse("---\n- a list\n---\nx\n")
    assert diags[0].code == "front-matter" and "list" in diags[0].message
    note, diags = parse("---\ndate: banana\ntopics: 5\nkind: poem\n---\nx\n")
    assert note.date is None and note.topics == () and note.kind == "synthesis"
    assert sorted((d.code, d.line) for d in diags) == [("front-matter-type", 2), ("front-matter-type", 3), ("unknown-kind", 4)]


def test_front_matter_either_yaml_loader_accepts_is_read():
    # YAML 1.2 reads a question mark inside a flow list (libyaml does; PyYAML's Python loader refuses it)
    note, diags = parse("---\naliases: [What does a data engineer do?]\n---\nBody.\n")
    assert diags == [] and note.aliases == ("What does a data engineer do?",)
    # JSON-style surrogate pairs, as Dendron writes an emoji (the Python loader takes them, libyaml does not)
    note, diags = parse('---\ntitle: "Welcome to Dendron \\ud83c\\udf32"\n---\nBody.\n')
    assert not [d for d in diags if d.code == "front-matter"] and note.title == "Welcome to Dendron \U0001f332"
    note, diags = parse('---\ntitle: "half \\ud83c a pair"\n---\nBody.\n')
    assert note.title == "half \ufffd a pair"  # a lone surrogate could not be written to any page


def test_parsing_in_forked_workers_gives_the_same_notes_and_diagnostics(monkeypatch, tmp_path):
    import shutil
    from pathlib import Path

    import notegraph.parse.collection as collection
    from notegraph.parse.cache import ParseCache

    root = tmp_path / "notes"
    shutil.copytree(Path(__file__).parent / "fixtures" / "dew", root)
    (root / "broken.md").write_bytes(b"---\ntitle: [unclosed\n---\nbody\n")
    (root / "binary.md").write_bytes(b"\x89PNG\r\n\x1a\n\x00\x00")
    serial = collection.read_notes(root)
    monkeypatch.setattr(collection, "PARALLEL_MIN", 2)
    assert collection.workers_for(len(serial[0]), 2) >= 2 or cpus() == 1
    assert collection.read_notes(root) == serial
    cache = ParseCache(tmp_path / "parse.sqlite", "k")
    assert collection.read_notes(root, cache=cache) == serial  # stored by the parent ...
    assert collection.read_notes(root, cache=ParseCache(tmp_path / "parse.sqlite", "k")) == serial  # ... and read back
    assert any(d.path == "broken.md" for d in serial[1]) and any(d.path == "binary.md" for d in serial[1])


def test_parse_cache_lets_go_of_its_json_once_read_and_loses_nothing(tmp_path):
    """The cached JSON of every note (146 MB at 20,000 notes) is not held for the rest of the build:
    what the build still asks the cache (digest, stamps) is unchanged, and later builds still read it."""
    import shutil
    from pathlib import Path

    from notegraph.parse.cache import ParseCache
    from notegraph.parse.collection import read_notes

    root = tmp_path / "notes"
    shutil.copytree(Path(__file__).parent / "fixtures" / "dew", root)
    path = tmp_path / "parse.sqlite"
    first = ParseCache(path, "k")
    notes = read_notes(root, cache=first)
    assert first.dirty and not any(row[3] for row in first.dirty.values())  # written, then let go
    warm = ParseCache(path, "k")
    assert warm.rows and all(row[3] for row in warm.rows.values())
    assert read_notes(root, cache=warm) == notes
    assert not any(row[3] for row in warm.rows.values()) and not warm.dirty  # every note came from the cache
    assert (warm.digest(), warm.stamps()) == (first.digest(), first.stamps())
    again = ParseCache(path, "k")
    assert read_notes(root, cache=again) == notes and not again.dirty  # nothing was lost from the file


def test_parse_cache_reads_back_what_orjson_cannot(tmp_path):
    """Cached rows are read with orjson; an integer beyond 64 bits (YAML gives one for a long number),
    NaN and infinity are read back by the standard library instead, and the note is as parsed afresh."""
    from notegraph.parse.cache import ParseCache
    from notegraph.parse.collection import read_notes

    root = tmp_path / "notes"
    root.mkdir()
    (root / "big.md").write_text("---\ntitle: Big\nserial: 123456789012345678901234567890\n---\nBody.\n")
    (root / "plain.md").write_text("---\ntitle: Plain\nyear: 2024\nodd: [.nan, -.inf]\n---\nBody.\n")
    fresh = read_notes(root)
    assert fresh[0][0].meta["serial"] == 123456789012345678901234567890
    read_notes(root, cache=ParseCache(tmp_path / "parse.sqlite", "k"))
    warm = ParseCache(tmp_path / "parse.sqlite", "k")
    again = read_notes(root, cache=warm)
    assert again[0][0] == fresh[0][0] and again[0][1].meta["year"] == 2024 and str(again[0][1].meta["odd"]) == "[nan, -inf]"
    assert not warm.dirty  # both came from the cache, neither was parsed again
