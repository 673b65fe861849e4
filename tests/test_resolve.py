"""Link resolution the way Obsidian does it, and `notegraph check` on real files."""

from __future__ import annotations

import json
from pathlib import Path

from click.testing import CliRunner
from conftest import FIXTURES, write

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
