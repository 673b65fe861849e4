"""Property-based tests: arbitrary text never crashes the parser, resolver or importer."""

from __future__ import annotations

import string

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from notegraph.parse import parse_note
from notegraph.parse.importers import import_page
from notegraph.resolve import resolve

MARKUP = ["[[", "]]", "|", "\\|", "#", "^", "![[", "](", "[", "]", "(", ")", "<", ">", "`", "```", "%%", "<!--", "-->",
          "---\n", "\n", "\r\n", "title: ", "kind: ", "sources: [", "\"[[", "]]\"", "*", "> ", "- ", "    ", ".md", "../", "\ufeff", "\x00"]
fragments = st.one_of(st.sampled_from(MARKUP), st.text(alphabet=string.printable + "éü🎉中", max_size=12))
documents = st.lists(fragments, max_size=60).map("".join)

COUNT = {"parsed": 0}


@settings(max_examples=3000, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(documents)
def test_parser_never_raises_and_links_lie_inside_the_file(text: str):
    COUNT["parsed"] += 1
    data = text.encode("utf-8", "surrogatepass")
    note, diags = parse_note("doc.md", data)
    # a lone CR ends a line too (old Mac files), as the parser reads it
    lines = data.replace(b"\r\n", b"\n").replace(b"\r", b"\n").count(b"\n") + 1
    for diagnostic in diags:
        assert 1 <= diagnostic.line <= lines + 1
    if note is not None:
        for link in note.links:
            assert 1 <= link.line <= lines, (link, lines)


@settings(max_examples=300, deadline=None)
@given(st.lists(st.tuples(st.text(alphabet=string.ascii_letters + " ./-_", min_size=1, max_size=12), documents), min_size=1, max_size=6))
def test_resolution_never_raises(files):
    notes = []
    for index, (name, text) in enumerate(files):
        note, _ = parse_note(f"{index}/{name.strip('/') or 'x'}.md", text.encode())
        if note is not None:
            notes.append(note)
    collection = resolve("root", notes)
    for link in collection.links:
        assert link.status in ("ok", "dangling", "ambiguous", "outside")
        assert link.status != "ok" or link.target in collection.notes


@settings(max_examples=800, deadline=None)
@given(documents)
def test_importer_never_raises_except_value_error(text: str):
    try:
        note = import_page("page.txt", text, ["Topic One", "Topic Two"], {"Existing title here": "x"})
    except ValueError as exc:
        assert "page.txt" in str(exc)
        return
    parsed, _ = parse_note(note.filename, note.text.encode())
    assert parsed is not None


def _shorten_whole(text: str, limit: int) -> str:
    """render.site._shorten as it was first written: the whole text collapsed, then cut."""
    text = " ".join(text.split())
    if len(text) <= limit:
        return text
    return text[:limit].rsplit(" ", 1)[0].rstrip(",;:") + "…"


@settings(max_examples=2000, deadline=None)
@given(st.lists(st.one_of(st.sampled_from([" ", "  ", "\n", "\t", "\u2003", ",", ";", ":", "x" * 9]), st.text(max_size=9)), max_size=80).map("".join), st.integers(1, 40))
def test_shortening_from_the_start_of_a_text_is_shortening_the_whole(text: str, limit: int):
    from notegraph.render.site import _shorten

    assert _shorten(text, limit) == _shorten_whole(text, limit)
