"""Link resolution the way Obsidian does it, and `notegraph check` on real files."""

from __future__ import annotations

import json
import random
from pathlib import Path

import pytest
from click.testing import CliRunner
from conftest import FIXTURES, write
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from notegraph.cli import main
from notegraph.config import load_settings
from notegraph.pipeline import load


def links_of(collection, source):
    return {(l.raw.target, l.raw.heading, l.raw.block): (l.status, l.target) for l in collection.links if l.source == source}


def test_vault_resolution(vault: Path):
    c = load(load_settings(vault))
    home = links_of(c, "Home")
    assert home[("Alpha", None, None)] == ("ok", "Alpha")
    assert home[("Alpha", "Details", None)] == ("ok", "Alpha")
    assert home[("Alpha", None, "key-point")] == ("ok", "Alpha")
    assert home[("", "Welcome section", None)] == ("ok", "Home")
    assert home[("Nowhere", None, None)] == ("dangling", None)
    assert home[("Meeting", None, None)] == ("ambiguous", None)
    assert home[("people/Meeting", None, None)] == ("ok", "people/Meeting")
    assert home[("Beta note.md", None, None)] == ("ok", "Beta note")
    # same folder wins a tie
    assert links_of(c, "projects/Meeting")[("Meeting", None, None)] == ("ok", "projects/Meeting")
    # sources in front matter: by link and by plain title; aliases resolve too
    assert links_of(c, "Isolated") == {("Alpha", None, None): ("ok", "Alpha"), ("Home", None, None): ("ok", "Home")}
    ambiguous = [l for l in c.links if l.status == "ambiguous"][0]
    assert ambiguous.candidates == ("people/Meeting", "projects/Meeting")
    # the collection still loads around the broken note
    assert "Broken yaml" in c.notes and c.notes["Broken yaml"].lede == "Body survives."


def test_titles_aliases_case_and_shortest_path(tmp_path: Path):
    write(tmp_path, "a.md", "[[my alias]] [[THE TITLE]] [[deep]] [[Sub/Deep]] [[../../etc/passwd]] [x](../../../secret.md)\n")
    write(tmp_path, "b.md", "---\ntitle: The Title\naliases: [My Alias]\n---\nb\n")
    write(tmp_path, "x/deep.md", "shallow\n")
    write(tmp_path, "x/y/sub/deep.md", "deeper\n")
    c = load(load_settings(tmp_path))
    got = [(l.raw.target, l.status, l.target) for l in c.links if l.source == "a"]
    assert got == [
        ("my alias", "ok", "b"),
        ("THE TITLE", "ok", "b"),
        ("deep", "ok", "x/deep"),
        ("Sub/Deep", "ok", "x/y/sub/deep"),
        ("../../etc/passwd", "outside", None),
        ("../../../secret.md", "outside", None),
    ]
    codes = {d.code for d in c.diagnostics if d.path == "a.md"}
    assert "ambiguous-link" in codes and "outside-link" in codes  # shortest-path pick is reported, not silent


def test_check_cli_exit_codes_and_json(vault: Path):
    runner = CliRunner()
    result = runner.invoke(main, ["check", str(vault)])
    assert result.exit_code == 1, result.output  # the broken YAML is an error
    assert "Broken yaml.md:2: error" in result.output
    assert "Home.md:10: warning: link [[Nowhere]] points to no note" in result.output
    (vault / "Broken yaml.md").unlink()
    result = runner.invoke(main, ["check", str(vault)])
    assert result.exit_code == 0, result.output  # dangling links are warnings
    result = runner.invoke(main, ["check", str(vault), "--strict"])
    assert result.exit_code == 1
    result = runner.invoke(main, ["check", str(vault), "--json"])
    data = json.loads(result.output)
    assert data["counts"]["dangling"] == 1 and data["counts"]["ambiguous"] == 1
    assert {"path": "Home.md", "line": 12, "severity": "warning", "code": "ambiguous-link"}.items() <= data["diagnostics"][1].items() or any(
        d["code"] == "ambiguous-link" and d["line"] == 12 for d in data["diagnostics"]
    )
    result = runner.invoke(main, ["check", str(vault / "nope")])
    assert result.exit_code == 1 and "does not exist" in result.output and "Traceback" not in result.output
    result = runner.invoke(main, ["check", "--bogus"])
    assert result.exit_code == 2


def test_real_collection_slice_loads():
    c = load(load_settings(FIXTURES / "dew"))
    statuses = [l.status for l in c.links]
    assert len(c.notes) == 75
    assert statuses.count("ok") > 100 and statuses.count("ambiguous") == 0
    assert all(d.line >= 1 for d in c.diagnostics)


def _fresh(root: Path):
    """The collection resolved without any kept state (no parse cache, no resolved links)."""
    return load(load_settings(root), use_cache=False)


def _same(a, b) -> None:
    assert a.links == b.links
    assert a.diagnostics == b.diagnostics
    assert a.notes == b.notes


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(seed=st.integers(0, 2**32 - 1))
def test_kept_links_equal_links_resolved_afresh_after_any_edits(tmp_path_factory: pytest.TempPathFactory, seed: int):
    """Links kept between builds (resolved.json) equal links resolved from nothing after any series of
    edits, each changing one thing: a body and its links, a title, aliases, a heading, a block id, a
    rename into another folder or to another suffix, a deletion, a new note, or a damaged or foreign
    resolved.json."""
    rng = random.Random(seed)
    root = tmp_path_factory.mktemp("kept-links")
    names = [f"n{i}" for i in range(12)]
    folders = ["", "a/", "b/"]

    def body() -> str:
        targets = rng.sample(names, 3) + [f"Title {rng.randrange(4)}", f"Alias {rng.randrange(4)}", "missing"]
        links = " ".join(
            rng.choice([f"[[{t}]]", f"[[{t}#Part {rng.randrange(3)}]]", f"[[{t}#^b{rng.randrange(3)}]]", f"[{t}](../{t}.md)"]) for t in targets
        )
        return f"Some words about {rng.choice(names)} and {links}."

    parts = {
        i: {"title": f"Title {rng.randrange(4)}", "aliases": f"Alias {rng.randrange(4)}", "body": body(), "heading": "Part 0", "block": "b0"}
        for i in range(12)
    }
    paths = {i: f"{rng.choice(folders)}{names[i]}.md" for i in range(12)}

    def save(i: int) -> None:
        part = parts[i]
        text = f"---\ntitle: {part['title']}\naliases: [{part['aliases']}]\n---\n{part['body']}\n\n## {part['heading']}\n\nA block ^{part['block']}\n"
        write(root, paths[i], text)

    for i in range(12):
        save(i)
    settings_ = load_settings(root)
    for _step in range(8):
        _same(load(settings_), _fresh(root))
        for _ in range(rng.randrange(1, 3)):
            i = rng.randrange(12)
            action = rng.choice(["body", "title", "aliases", "heading", "block", "rename", "delete", "damage"])
            if action == "body":
                parts[i]["body"] = body()
            elif action == "title":
                parts[i]["title"] = f"Title {rng.randrange(4)}"
            elif action == "aliases":
                parts[i]["aliases"] = f"Alias {rng.randrange(4)}"
            elif action == "heading":
                parts[i]["heading"] = f"Part {rng.randrange(3)}"
            elif action == "block":
                parts[i]["block"] = f"b{rng.randrange(3)}"
            elif action == "rename":
                (root / paths[i]).unlink(missing_ok=True)
                paths[i] = f"{rng.choice(folders)}{names[i]}{rng.choice(['.md', '.markdown'])}"
            elif action == "delete":
                (root / paths[i]).unlink(missing_ok=True)
                continue
            else:
                (root / ".notegraph" / "resolved.json").write_bytes(rng.choice([b"{", b"[]", b'{"format": 1, "names": "x", "notes": {}}', b"\x00\x01"]))
                continue
            save(i)
    _same(load(settings_), _fresh(root))


def test_an_edit_resolves_only_the_edited_notes_links(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    """After a body edit, the other notes' links come from resolved.json; a title edit resolves all
    again (any link may now point elsewhere)."""
    import notegraph.resolve as resolve_module

    for i in range(30):
        write(tmp_path, f"n{i}.md", f"# Note {i}\n\nSee [[n{(i + 1) % 30}]] and [[n{(i + 2) % 30}]] and [[Note {(i + 3) % 30}]].\n")
    settings_ = load_settings(tmp_path)
    load(settings_)
    kept: list[str] = []
    real = resolve_module._Memo.links

    def counting(self, note):
        found = real(self, note)
        if found is not None:
            kept.append(note.id)
        return found

    monkeypatch.setattr(resolve_module._Memo, "links", counting)
    write(tmp_path, "n4.md", "# Note 4\n\nSee [[n5]] and [[n6]] and [[Note 7]], and now [[n9]].\n")
    collection = load(settings_)
    assert sorted(kept) == sorted(f"n{i}" for i in range(30) if i != 4)
    assert collection.links == _fresh(tmp_path).links
    kept.clear()
    load(settings_)
    assert len(kept) == 30  # nothing changed: nothing resolved
    kept.clear()
    write(tmp_path, "n9.md", "# A new title for nine\n\nSee [[n10]].\n")
    collection = load(settings_)
    assert kept == []
    assert collection.links == _fresh(tmp_path).links
