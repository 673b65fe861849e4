"""The sample collection built with the real model (offline), and a small golden site."""

from __future__ import annotations

import os
import re
import shutil
from pathlib import Path

import pytest
from bs4 import BeautifulSoup
from click.testing import CliRunner
from conftest import FIXTURES, ROOT

from notegraph.cli import main
from notegraph.config import load_settings
from notegraph.pipeline import analyse, build

GOLDEN = Path(__file__).parent / "golden" / "vault-site"
# files copied verbatim from the package are compared with their source, not stored twice
COPIED = re.compile(r"^assets/(vis-network[^/]*|site\.css|site\.js|graph\.js)$")
STATIC = ROOT / "notegraph" / "render" / "static"


@pytest.fixture(scope="module")
def sample(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    notes = tmp_path_factory.mktemp("sample") / "notes"
    shutil.copytree(ROOT / "notes", notes, ignore=shutil.ignore_patterns(".notegraph"))
    cache = ROOT / "notes" / ".notegraph" / "cache.sqlite"
    if cache.exists():  # a warm cache only saves time; CI starts without one
        (notes / ".notegraph").mkdir()
        shutil.copy(cache, notes / ".notegraph" / "cache.sqlite")
    out = notes.parent / "site"
    build(load_settings(notes, out=out, quiet=True))
    return notes, out


@pytest.mark.slow
def test_sample_is_clean_and_complete(sample: tuple[Path, Path]):
    notes, _ = sample
    result = CliRunner().invoke(main, ["check", str(notes), "--strict"])
    assert result.exit_code == 0, result.output
    collection = analyse(load_settings(notes)).collection
    kinds = [n.kind for n in collection.notes.values()]
    assert len(kinds) >= 90 and kinds.count("synthesis") >= 35 and kinds.count("concept") >= 15
    assert kinds.count("paper") >= 30 and kinds.count("inquiry") >= 10
    assert not any(n.path.startswith("import-examples") for n in collection.notes.values())


@pytest.mark.slow
def test_reference_page_counterpart(sample: tuple[Path, Path]):
    """The page that rewrites the reference page has every part of it, with the graph's own figures."""
    notes, out = sample
    analysis = analyse(load_settings(notes))
    note_id = "synthesis/monological-training-dialogue-failures"
    facts = analysis.graph.facts[note_id]
    page = next((out / "notes").glob("*monological-training-dialogue-failures*.html"))
    soup = BeautifulSoup(page.read_text(encoding="utf-8"), "lxml")
    text = " ".join(soup.get_text(" ").split())
    assert [a.get_text() for a in soup.select("ul.topics a.topic")] == [
        "Conversational AI and Personalization",
        "Language, Text, and Discourse",
        "Psychology, Society, and Alignment",
    ]
    assert soup.h1.get_text(strip=True) == "Why do dialogue failures persist despite scaling language models?"
    assert "Synthesis note · 2026-04-14" in text and "What kind of thing is an LLM really?" in text
    sections = {
        "ng-inquiring": ("Inquiring lines that use this note as a source", len(facts.inquiring_lines)),
        "ng-concepts": ("Related concepts in this collection", len(facts.related_concepts)),
        "ng-papers": ("Related papers in this collection", len(facts.related_papers)),
    }
    for section_id, (heading, count) in sections.items():
        section = soup.find(id=section_id)
        assert section is not None and section.find("h2").get_text(" ", strip=True).startswith(heading)
        assert section.select_one(".count")["data-count"] == str(count)
    assert len(facts.inquiring_lines) == 7  # as on the reference page
    assert f"{facts.direct} direct connections · {facts.two_hop} in 2-hop network · {facts.cluster_size} cluster" in text
    assert "your link" in text and "semantically near" in text and "linked from elsewhere" in text
    scores = [float(s["data-score"]) for s in soup.select("#ng-papers .score")]
    assert scores == sorted(scores, reverse=True) and len(scores) == len(facts.related_papers) > 0
    assert "Original note title" in text
    assert "training mode determines failure mode" in soup.find(id="ng-claim").get_text()
    # body links all work and point at existing pages
    for a in soup.select(".note-body a[href]"):
        href = a["href"].split("#")[0]
        if href and not href.startswith(("http:", "https:")):
            assert (page.parent / href).exists(), href


def test_golden_site(tmp_path: Path):
    """A small collection's whole site, diffed against the stored expected output.

    Regenerate deliberately with NOTEGRAPH_UPDATE_GOLDEN=1 after a reviewed change to the pages."""
    notes = tmp_path / "vault"
    shutil.copytree(FIXTURES / "vault", notes)
    (notes / "notegraph.toml").write_text('model = "fake/hash-64"\ntitle = "Golden vault"\n')
    out = tmp_path / "site"
    build(load_settings(notes, out=out, quiet=True))
    produced = {str(p.relative_to(out)): p.read_bytes() for p in sorted(out.rglob("*")) if p.is_file()}
    for name in ("site.css", "site.js", "graph.js"):
        assert produced[f"assets/{name}"] == (STATIC / name).read_bytes()
    # copied assets are compared with their source above; the manifest is bookkeeping keyed by a digest
    # of the render code, so it changes with any edit to that code and says nothing about the pages
    produced = {k: v for k, v in produced.items() if not COPIED.match(k) and k != ".notegraph-manifest.json"}
    if os.environ.get("NOTEGRAPH_UPDATE_GOLDEN"):
        shutil.rmtree(GOLDEN, ignore_errors=True)
        for name, data in produced.items():
            (GOLDEN / name).parent.mkdir(parents=True, exist_ok=True)
            (GOLDEN / name).write_bytes(data)
    expected = {str(p.relative_to(GOLDEN)): p.read_bytes() for p in sorted(GOLDEN.rglob("*")) if p.is_file()}
    assert sorted(produced) == sorted(expected)
    for name in expected:
        assert produced[name] == expected[name], f"{name} differs from the golden site"
