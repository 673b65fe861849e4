"""`notegraph import`: reference-format pages, BibTeX and CSL-JSON."""

from __future__ import annotations

import json
from pathlib import Path

from click.testing import CliRunner
from conftest import write

from notegraph.cli import main
from notegraph.config import load_settings
from notegraph.pipeline import load

PAGE = """SYNTHESIS NOTE
Grounding and Meaning Training and Scaling Something Brand New

Can a model ground words it never heard spoken?

A short lede about grounding. It has two sentences.

Synthesis note · 2025-11-02
Where does meaning come from?

First body paragraph mentions Alpha and the Beta Note Title explicitly.

Second body paragraph.

Inquiring lines that use this note as a source 2

This note is a source for these synthesized inquiries. Follow a line forward into its question, or open it to trace back to all of its sources.

Related concepts in this collection 1

This note in its neighbourhood — explore the map, then jump to a related concept in the list below.

Concept map
3 direct connections · 9 in 2-hop network ·small cluster Open in graph ↗

Click a node to walk · click center to open · click Open in graph to see this note in the full knowledge graph

your link semantically near linked from elsewhere

Related papers in this collection 4

Papers most semantically related to this note, ranked by cosine similarity in the embedding space.

Original note title

Grounding needs a partner — meaning is built, not read
"""


def test_import_page(tmp_path: Path):
    notes = tmp_path / "notes"
    write(notes, "notegraph.toml", 'topics = ["Grounding and Meaning", "Training and Scaling"]\n')
    write(notes, "beta.md", "---\ntitle: Beta Note Title\n---\nx\n")
    page = write(tmp_path, "page.txt", PAGE)
    runner = CliRunner()
    result = runner.invoke(main, ["import", str(page), "--into", str(notes)])
    assert result.exit_code == 0, result.output
    assert "page.txt:2: warning: topic(s) not in the vocabulary: Something Brand New" in result.output
    c = load(load_settings(notes))
    note = c.notes["can-a-model-ground-words-it-never-heard-spoken"]
    assert note.kind == "synthesis" and note.date == "2025-11-02"
    assert note.topics == ("Grounding and Meaning", "Training and Scaling", "Something Brand New")
    assert note.question == "Where does meaning come from?"
    assert note.claim == "Grounding needs a partner — meaning is built, not read"
    assert note.lede == "A short lede about grounding. It has two sentences."
    assert "Second body paragraph." in note.body
    for generated in ("Inquiring lines", "Concept map", "Related papers", "direct connections", "Original note title"):
        assert generated not in note.body
    # the existing note's title became a link that resolves
    assert [(l.target, l.status) for l in c.links if l.source == note.id] == [("beta", "ok")]
    # never overwrite without --force
    path = notes / "can-a-model-ground-words-it-never-heard-spoken.md"
    path.write_text(path.read_text() + "\nMy own edit.\n")
    result = runner.invoke(main, ["import", str(page), "--into", str(notes)])
    assert "not overwritten" in result.output and "My own edit." in path.read_text()
    result = runner.invoke(main, ["import", str(page), "--into", str(notes), "--force"])
    assert "My own edit." not in path.read_text()


def test_import_bibtex_and_csl(tmp_path: Path):
    bib = write(
        tmp_path,
        "refs.bib",
        "@inproceedings{bender2020climbing,\n  title={Climbing towards {NLU}: On Meaning, Form, and Understanding},\n"
        "  author={Bender, Emily M. and Koller, Alexander},\n  booktitle={Proceedings of ACL},\n  year={2020},\n"
        "  doi={10.18653/v1/2020.acl-main.463},\n  abstract={We argue form alone cannot give meaning.}\n}\n",
    )
    csl = write(
        tmp_path,
        "refs.json",
        json.dumps([{"id": "clark1991", "title": "Grounding in communication", "author": [{"family": "Clark", "given": "Herbert H."}],
                     "issued": {"date-parts": [[1991]]}, "container-title": "Perspectives on socially shared cognition"}]),
    )
    notes = tmp_path / "notes"
    result = CliRunner().invoke(main, ["import", str(bib), str(csl), "--into", str(notes)])
    assert result.exit_code == 0, result.output
    c = load(load_settings(notes))
    bender = c.notes["bender2020climbing"]
    assert bender.kind == "paper" and bender.title == "Climbing towards NLU: On Meaning, Form, and Understanding"
    assert bender.meta["authors"] == ["Bender, Emily M.", "Koller, Alexander"] and bender.meta["year"] == 2020
    assert bender.meta["doi"] == "10.18653/v1/2020.acl-main.463" and bender.lede == "We argue form alone cannot give meaning."
    clark = c.notes["clark1991"]
    assert clark.meta["authors"] == ["Clark, Herbert H."] and clark.meta["venue"] == "Perspectives on socially shared cognition"


def test_import_bad_input_is_reported(tmp_path: Path):
    bad = write(tmp_path, "bad.json", "{not json")
    result = CliRunner().invoke(main, ["import", str(bad), "--into", str(tmp_path / "n")])
    assert result.exit_code == 1 and "bad.json:1: error" in result.output and "Traceback" not in result.output
