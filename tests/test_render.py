"""The site writer: pages parsed as HTML and checked for meaning, links, safety, determinism and reuse."""

from __future__ import annotations

import json
import re
from collections import defaultdict
from pathlib import Path
from urllib.parse import unquote, urlsplit

import networkx as nx
import pytest
from bs4 import BeautifulSoup, Tag

from notegraph.graph.edges import Edges
from notegraph.model import Citation, Cluster, Collection, GraphResult, Neighbour, Note, NoteFacts, Related
from notegraph.parallel import cpus
from notegraph.parse import parse_note
from notegraph.render import RenderReport, render_site
from notegraph.render.jsdata import js_call, js_json
from notegraph.render.maps import (
    HOOD_BUDGET,
    HOOD_QUOTAS,
    HoodEntry,
    choose_neighbours,
    graph_data,
    ring_positions,
)
from notegraph.render.slugs import assign_slugs, heading_ids, slugify
from notegraph.resolve import resolve

EVIL = "<script>alert(1)</script>"

NOTES: dict[str, str] = {
    "syntheses/dialogue-failures.md": """---
title: "Why do dialogue failures persist despite scaling language models?"
kind: synthesis
date: 2026-04-14
topics:
  - "Conversational AI and Personalization"
  - "Language, Text, and Discourse"
  - "Psychology, Society, and Alignment"
question: "What kind of thing is an LLM really?"
claim: "LLMs are trained monologically on written language not dialogically in conversation"
aliases: ["dialogue failures"]
tags: [training]
---
If LLMs get better at text tasks with more [[scaling|scale]], why don't dialogue-specific problems improve the same way?

The training mode is monological. It never builds [[common-ground#Lineages|common ground]] and never performs
[[concepts/repair]]; see [[turn-taking]] and [[Turn taking#^rule]]. The paper [[clark-1996]] says so.

## What the model never does

A [[missing note]] stays marked, [[repair]] is ambiguous, and [out](../../outside.md) leaves the folder.
[Web](https://example.org/a?b=1) is external and [bad](javascript:alert(1)) is not a link.
![[figure.png]] is an attachment; ![[common-ground]] is an embed. Self: [[#What the model never does]].

### A deeper heading

Text with <span>raw html</span> and `code`.
""",
    "syntheses/scaling.md": """---
title: Scaling is not dialogue
kind: synthesis
date: 2026-03-01
topics: ["Training and Scaling"]
claim: More text does not teach turn-taking
---
Scaling laws describe [[kaplan-2020]] loss curves, not conversation. Compare [[dialogue-failures]].
""",
    "syntheses/Über # 100% sure?.md": """---
title: Über sure
kind: synthesis
date: 2026-02-02
---
A note whose file name has unicode, spaces, a hash, a percent sign and a question mark. It cites [[clark-1996]].
""",
    "concepts/common-ground.md": """---
title: Common ground
kind: concept
date: 2026-01-21
topics: ["Grounding and Meaning"]
aliases: ["mutual knowledge"]
---
Common ground is what participants take to be shared.

## Lineages

Stalnaker and [[clark-1996]] give two lineages. ^def
""",
    "concepts/repair.md": """---
title: Conversational repair
kind: concept
date: 2026-01-10
---
Repair fixes trouble in talk; see [[common-ground]].
""",
    "concepts/turn-taking.md": """---
title: Turn taking
kind: concept
date: 2026-01-05
---
Speakers alternate. ^rule

It relates to [[papers/repair]].
""",
    "concepts/isolated.md": """---
title: Isolated concept
kind: concept
---
Nothing links here and this note links nowhere.
""",
    "papers/clark-1996.md": """---
title: Using Language
kind: paper
date: 1996-01-01
authors: ["Herbert H. Clark"]
year: 1996
venue: Cambridge University Press
doi: 10.1017/CBO9780511620539
url: https://example.org/using-language
---
Clark's account of language use as joint action.
""",
    "papers/repair.md": """---
title: The preference for self-correction
kind: paper
date: 1977-01-01
aliases: [repair]
url: "javascript:alert(1)"
---
Schegloff, Jefferson and Sacks on [[common-ground]] and repair.
""",
    "papers/kaplan-2020.md": """---
title: Scaling laws for neural language models
kind: paper
date: 2020-01-23
---
Loss falls as a power law in compute. Discussed in [[dialogue-failures]].
""",
    "inquiries/grounding.md": """---
title: How is grounding built?
kind: inquiry
date: 2026-04-01
question: "What does it take to build common ground?"
sources: ["[[common-ground]]", "[[clark-1996]]"]
---
An inquiry drawing on [[common-ground]] and on [[clark-1996]] for the joint-action view.
""",
    "inquiries/why-scale.md": """---
title: Does scale fix dialogue?
kind: inquiry
date: 2026-04-10
sources: ["[[dialogue-failures]]", "[[kaplan-2020]]"]
---
This line follows [[dialogue-failures]] because training mode determines failure mode.
""",
    "inquiries/evil.md": f"""---
title: "{EVIL}"
kind: inquiry
date: 2026-04-11
question: "<img src=x onerror=alert(2)>"
claim: "<b onmouseover=alert(3)>claim</b>"
aliases: ["</script><script>alert(4)</script>"]
tags: ["<script>x</script>", "ok"]
topics: ["<svg onload=alert(5)>"]
sources: ["[[dialogue-failures]]"]
---
Hostile body {EVIL} <img src=x onerror=alert(6)> [x](javascript:alert(7)) [y](data:text/html,hi) [z](vbscript:msgbox)
<a href="javascript:alert(8)" onclick="alert(9)">raw link</a> and [[dialogue-failures]] again.

<script>alert(10)</script>
<iframe src="https://evil.example"></iframe>
""",
}

SIMILAR = [  # (a, b, score): semantically near, as the graph stage would add them
    ("syntheses/dialogue-failures", "syntheses/scaling", 0.81),
    ("syntheses/dialogue-failures", "papers/kaplan-2020", 0.62),
    ("concepts/common-ground", "concepts/repair", 0.7),
    ("papers/clark-1996", "concepts/turn-taking", 0.55),
    ("syntheses/dialogue-failures", "papers/repair", 0.58),
]
CLUSTERS = (
    Cluster(0, "grounding · repair", ("grounding", "repair"), (
        "concepts/common-ground", "concepts/repair", "concepts/turn-taking", "papers/clark-1996",
        "papers/repair", "inquiries/grounding",
    ), ("concepts/common-ground",), "medium"),
    Cluster(1, "scaling · dialogue", ("scaling", "dialogue"), (
        "syntheses/dialogue-failures", "syntheses/scaling", "papers/kaplan-2020", "inquiries/why-scale",
        "inquiries/evil", "syntheses/Über # 100% sure?",
    ), ("syntheses/dialogue-failures",), "medium"),
)  # fmt: skip


def parse_collection(texts: dict[str, str], allow_html: bool = False) -> Collection:
    notes = []
    for path, text in sorted(texts.items()):
        note, _ = parse_note(path, text.encode("utf-8"), allow_html=allow_html)
        assert note is not None, path
        notes.append(note)
    return resolve("notes", notes)


def make_graph(collection: Collection) -> GraphResult:
    """The graph stage's output, by hand: link/source/similar edges, facts derived from them."""
    notes = collection.notes
    g = nx.MultiDiGraph()
    cluster_of = {m: c.id for c in CLUSTERS for m in c.members}
    for note_id in sorted(notes):
        g.add_node(note_id, kind=notes[note_id].kind, title=notes[note_id].title, cluster=cluster_of.get(note_id, -1))
    for link in collection.resolved():
        kind = "source" if link.raw.field == "sources" else "link"
        if not g.has_edge(link.source, link.target, key=kind):
            g.add_edge(link.source, link.target, key=kind, kind=kind)
    for a, b, score in SIMILAR:
        g.add_edge(a, b, key="similar", kind="similar", score=score)

    facts = {}
    for note_id in sorted(notes):
        relation: dict[str, tuple[int, str, float | None]] = {}
        for _, other, data in g.out_edges(note_id, data=True):
            rank, kind = (2, "similar") if data["kind"] == "similar" else (0, "link")
            if other not in relation or rank < relation[other][0]:
                relation[other] = (rank, kind, data.get("score"))
        for other, _, data in g.in_edges(note_id, data=True):
            rank, kind = (2, "similar") if data["kind"] == "similar" else (1, "backlink")
            if other not in relation or rank < relation[other][0]:
                relation[other] = (rank, kind, data.get("score"))
        relation.pop(note_id, None)
        two_hop = set(relation)
        for other in relation:
            two_hop |= set(g.successors(other)) | set(g.predecessors(other))
        two_hop.discard(note_id)
        citing: dict[str, str] = {}
        for link in collection.links:
            if link.status == "ok" and link.target == note_id and link.source != note_id:
                citing.setdefault(link.source, link.raw.context or notes[link.source].lede)
        backlinks = tuple(Citation(src, ctx) for src, ctx in sorted(citing.items()))
        near = sorted(((s or 0.5), o) for o, (_, _, s) in relation.items())
        related = tuple(
            # the graph stage's evidence names the cosine; a linked-only note has none to show
            Related(o, round(score, 4), ("similar", f"cosine {score - 0.1:.3f}") if score != 0.5 else ("link",), passage=notes[o].lede)
            for score, o in sorted(near, reverse=True)
        )
        facts[note_id] = NoteFacts(
            id=note_id,
            direct=len(relation),
            two_hop=len(two_hop),
            cluster=cluster_of.get(note_id, -1),
            cluster_size="medium",
            neighbours=tuple(Neighbour(o, k, s) for o, (_, k, s) in sorted(relation.items())),  # type: ignore[arg-type]
            related=related,
            related_papers=tuple(r for r in related if notes[r.id].kind == "paper"),
            related_concepts=tuple(r for r in related if notes[r.id].kind == "concept"),
            inquiring_lines=tuple(c for c in backlinks if notes[c.id].kind == "inquiry"),
            backlinks=backlinks,
        )
    return GraphResult(graph=g, facts=facts, clusters=CLUSTERS)


@pytest.fixture(scope="module")
def collection() -> Collection:
    return parse_collection(NOTES)


@pytest.fixture(scope="module")
def graph(collection: Collection) -> GraphResult:
    return make_graph(collection)


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory, collection: Collection, graph: GraphResult) -> Path:
    out = tmp_path_factory.mktemp("site")
    report = render_site(collection, graph, out, title="Why dialogue fails")
    assert report.pages_reused == 0 and report.pages_written > 0
    return out


def page(site: Path, rel: str) -> BeautifulSoup:
    return BeautifulSoup((site / rel).read_text(encoding="utf-8"), "lxml")


def slug_of(collection: Collection, note_id: str) -> str:
    return assign_slugs(collection.notes)[note_id]


def note_page(site: Path, collection: Collection, note_id: str) -> BeautifulSoup:
    return page(site, f"notes/{slug_of(collection, note_id)}.html")


def count_of(section: Tag) -> int:
    span = section.find(class_="count")
    assert isinstance(span, Tag)
    assert span.get_text() == span["data-count"]
    return int(str(span["data-count"]))


def text(node: Tag | None) -> str:
    assert node is not None
    return " ".join(node.get_text(" ").split())


def html_pages(site: Path) -> list[Path]:
    return sorted(site.rglob("*.html"))


def js_payload(path: Path) -> list[object]:
    """The arguments of ``window.NG_X(...)`` in a data file, decoded as JSON."""
    source = path.read_text(encoding="utf-8")
    match = re.fullmatch(r"window\.NG_[A-Z]+\((.*)\);\n", source, re.S)
    assert match, path
    return json.loads(f"[{match.group(1)}]")


# -- the note page -----------------------------------------------------------------------------------


def test_note_page_has_every_part_of_the_reference_in_order(site: Path, collection: Collection, graph: GraphResult) -> None:
    note_id = "syntheses/dialogue-failures"
    soup = note_page(site, collection, note_id)
    facts = graph.facts[note_id]
    article = soup.find("article")
    assert isinstance(article, Tag)
    order = [el for el in article.descendants if isinstance(el, Tag)]

    topics = article.select("ul.topics a.topic")
    assert [t.get_text() for t in topics] == list(collection.notes[note_id].topics)
    assert all(str(t["href"]).startswith("../topics/") for t in topics)
    h1s = soup.find_all("h1")
    assert len(h1s) == 1 and h1s[0].get_text() == collection.notes[note_id].title
    lede = article.find(class_="lede")
    assert text(lede).startswith("If LLMs get better at text tasks")
    assert isinstance(lede, Tag) and lede.find("a", href=f"{slug_of(collection, 'syntheses/scaling')}.html")
    byline = article.find(class_="byline")
    assert text(byline) == "Synthesis note · 2026-04-14"
    question = article.find("h2", class_="question")
    assert text(question) == "What kind of thing is an LLM really?"
    body = article.find(class_="note-body")
    assert isinstance(body, Tag) and "The training mode is monological." in text(body)
    assert "If LLMs get better" not in text(body)  # the lede is shown once, above

    inquiring = soup.find(id="ng-inquiring")
    assert isinstance(inquiring, Tag)
    assert text(inquiring.find("h2")).startswith("Inquiring lines that use this note as a source")
    assert "This note is a source for these synthesized inquiries. Follow a line forward into its question, or open it to trace back to all of its sources." in text(inquiring)
    items = inquiring.select("ol.cards > li")
    assert count_of(inquiring) == len(items) == len(facts.inquiring_lines) == 2
    assert "training mode determines failure mode" in text(inquiring)  # the citing sentence

    concepts = soup.find(id="ng-concepts")
    assert isinstance(concepts, Tag)
    assert text(concepts.find("h2")).startswith("Related concepts in this collection")
    assert "This note in its neighbourhood — explore the map, then jump to a related concept in the list below." in text(concepts)
    assert count_of(concepts) == len(concepts.select("ol.related-list > li")) == len(facts.related_concepts)
    cmap = concepts.find(class_="concept-map")
    assert isinstance(cmap, Tag)
    assert text(cmap.find("h3")) == "Concept map"
    stats = text(cmap.find(class_="map-stats"))
    assert stats.startswith(f"{facts.direct} direct connections · {facts.two_hop} in 2-hop network · medium cluster")
    assert cmap.find("span", attrs={"data-stat": "direct"})["data-count"] == str(facts.direct)  # type: ignore[index]
    assert cmap.find("span", attrs={"data-stat": "two-hop"})["data-count"] == str(facts.two_hop)  # type: ignore[index]
    open_graph = cmap.find("a", class_="open-graph")
    assert isinstance(open_graph, Tag) and text(open_graph) == "Open in graph ↗"
    assert open_graph["href"] == f"../graph.html#{slug_of(collection, note_id)}"
    assert text(cmap.find(class_="map-hint")) == (
        "Click a node to walk · click center to open · click Open in graph to see this note in the full knowledge graph"
    )
    legend = [text(li) for li in cmap.select("ul.legend li")]
    assert legend[:3] == ["your link", "semantically near", "linked from elsewhere"]
    hood_items = cmap.select("ul.hood-list li")
    assert len(hood_items) == int(str(cmap.select_one("ul.hood-list")["data-count"])) == min(facts.direct, HOOD_BUDGET)  # type: ignore[index]

    papers = soup.find(id="ng-papers")
    assert isinstance(papers, Tag)
    assert text(papers.find("h2")).startswith("Related papers in this collection")
    assert "Papers most semantically related to this note, ranked by cosine similarity in the embedding space." in text(papers)
    paper_items = papers.select("ol.related-list > li")
    assert count_of(papers) == len(paper_items) == len(facts.related_papers) == 3
    # in ranking order (data-score); the figure shown is the cosine named in the evidence, when there is one
    scores = [str(s["data-score"]) for s in papers.select(".score")]
    assert scores == [f"{r.score:.3f}" for r in facts.related_papers] and all(re.fullmatch(r"\d\.\d{3}", s) for s in scores)
    for shown, r in zip(papers.select(".score"), facts.related_papers, strict=True):
        cosine = [w.removeprefix("cosine ") for w in r.why if w.startswith("cosine ")]
        assert shown.get_text() == (cosine[0] if cosine else f"{r.score:.3f}")
        assert shown.get("data-cosine") == (cosine[0] if cosine else None)
    assert any(s.get("data-cosine") for s in papers.select(".score"))
    concept_scores = [float(str(s["data-score"])) for s in concepts.select("ol.related-list .score")]
    assert concept_scores == sorted(concept_scores, reverse=True)
    assert papers.select(".evidence") and papers.select(".why__item")

    claim = soup.find(id="ng-claim")
    assert isinstance(claim, Tag) and text(claim.find("h2")) == "Original note title"
    assert text(claim.find(class_="claim")) == collection.notes[note_id].claim

    # the reference page's order
    marks = [topics[0], h1s[0], lede, byline, question, body, inquiring, concepts, cmap, papers, claim]
    positions = [order.index(m) for m in marks]  # type: ignore[arg-type]
    assert positions == sorted(positions)
    # and inside the related-concepts section: the map before the list
    assert order.index(cmap) < order.index(concepts.select_one("ol.related-list"))  # type: ignore[arg-type]

    # backlinks, aliases and tags are shown too
    # the inquiries citing the note are listed once, under inquiring lines, not again as backlinks
    backlinks = soup.find(id="ng-backlinks")
    inquiring_ids = {c.id for c in facts.inquiring_lines}
    others = [c for c in facts.backlinks if c.id not in inquiring_ids]
    assert isinstance(backlinks, Tag) and count_of(backlinks) == len(others) == len(backlinks.select("li")) > 0
    assert len(others) < len(facts.backlinks)
    assert text(backlinks.find(class_="section-intro")).startswith(f"{len(others)} more note")
    assert {text(a) for a in backlinks.select("a.card__title")} == {collection.notes[c.id].title for c in others}
    assert not soup.select(".eyebrow")  # the kind is named once, in the byline
    citing = [text(q) for q in soup.select(".citing")]
    assert citing and not [c for c in citing if re.search(r"[?!]\.(\s|$)", c)]  # "models?." reads "models?"
    assert text(soup.find(class_="aliases")).endswith("dialogue failures")
    assert "#training" in text(soup.find(class_="tags"))


def test_empty_sections_are_left_out(site: Path, collection: Collection) -> None:
    soup = note_page(site, collection, "concepts/isolated")
    for section in ("ng-inquiring", "ng-concepts", "ng-papers", "ng-claim", "ng-backlinks", "ng-sources"):
        assert soup.find(id=section) is None, section
    assert soup.find(class_="concept-map") is None and soup.find(class_="question") is None
    assert not soup.select('[data-count="0"]')
    assert not (site / "assets" / "hood" / f"{slug_of(collection, 'concepts/isolated')}.js").exists()
    assert not soup.select('script[src*="vis-network"]')


def test_inquiry_lists_its_sources_and_a_paper_its_metadata(site: Path, collection: Collection) -> None:
    soup = note_page(site, collection, "inquiries/grounding")
    sources = soup.find(id="ng-sources")
    assert isinstance(sources, Tag) and count_of(sources) == 2
    assert {text(a) for a in sources.select("a.card__title")} == {"Common ground", "Using Language"}
    paper = note_page(site, collection, "papers/clark-1996")
    meta = text(paper.find(class_="paper-meta"))
    assert "Herbert H. Clark" in meta and "1996" in meta and "Cambridge University Press" in meta
    doi = paper.select_one('.paper-meta a[href^="https://doi.org/"]')
    assert doi is not None and doi["rel"] == ["noopener", "noreferrer"]
    bad = note_page(site, collection, "papers/repair")
    assert not bad.select('a[href^="javascript"]')  # a `url:` that is not a web address is dropped


def test_links_in_the_body(site: Path, collection: Collection) -> None:
    slugs = assign_slugs(collection.notes)
    soup = note_page(site, collection, "syntheses/dialogue-failures")
    body = soup.find(class_="note-body")
    assert isinstance(body, Tag)
    hrefs = {text(a): str(a["href"]) for a in body.find_all("a")}
    assert hrefs["common ground"] == f"{slugs['concepts/common-ground']}.html#lineages"
    assert hrefs["Conversational repair"] == f"{slugs['concepts/repair']}.html"
    pairs = [(text(a), str(a["href"])) for a in body.find_all("a")]
    assert ("Turn taking", f"{slugs['concepts/turn-taking']}.html") in pairs
    assert ("Turn taking", f"{slugs['concepts/turn-taking']}.html#block-rule") in pairs
    assert hrefs["What the model never does"] == "#what-the-model-never-does"
    web = body.find("a", href="https://example.org/a?b=1")
    assert isinstance(web, Tag) and web["rel"] == ["noopener", "noreferrer"]
    embed = body.find("a", class_="embed")
    assert isinstance(embed, Tag) and embed["href"] == f"{slugs['concepts/common-ground']}.html"

    dangling = {text(s): str(s["title"]) for s in body.select("span.dangling")}
    assert "missing note" in dangling and "No note named" in dangling["missing note"]
    assert "ambiguous" in dangling["repair"]
    assert "outside the notes folder" in dangling["out"]
    assert any("not a file in the notes folder" in str(s["title"]) for s in body.select("span.attachment-missing"))
    assert not body.find("a", href=re.compile("missing|outside|javascript|figure"))
    # headings: ids, and body levels below the question's h2
    assert body.find("h3", id="what-the-model-never-does") and body.find("h4", id="a-deeper-heading")
    assert "<span>raw html</span>" in text(body)  # raw HTML is text unless the collection allows it
    target = note_page(site, collection, "concepts/common-ground")
    assert target.find(id="lineages") is not None and target.find(id="block-def") is not None
    assert "^def" not in text(target.find(class_="note-body"))


def test_every_link_resolves_inside_the_site(site: Path) -> None:
    ids: dict[Path, set[str]] = {}

    def ids_of(path: Path) -> set[str]:
        if path not in ids:
            ids[path] = {str(el["id"]) for el in page(site, str(path.relative_to(site))).find_all(id=True)}
        return ids[path]

    checked = 0
    for path in html_pages(site):
        soup = page(site, str(path.relative_to(site)))
        for el in soup.find_all(["a", "link", "script"]):
            url = el.get("href") if el.name != "script" else el.get("src")
            if url is None:
                continue
            url = str(url)
            parts = urlsplit(url)
            if parts.scheme in ("http", "https", "mailto"):
                assert el.name == "a", f"{path}: external resource {url}"
                continue
            assert not parts.scheme, f"{path}: {url}"
            target = (path.parent / unquote(parts.path)).resolve() if parts.path else path
            assert target.is_file(), f"{path}: {url} -> missing {target}"
            assert site.resolve() in target.parents, f"{path}: {url} leaves the site"
            if parts.fragment and target.suffix == ".html" and target.name != "graph.html":
                assert unquote(parts.fragment) in ids_of(target), f"{path}: {url} -> no id {parts.fragment}"
            checked += 1
    assert checked > 100


def test_no_outside_requests_and_one_vis_network(site: Path) -> None:
    copies = list(site.rglob("vis-network.min.js"))
    assert [p.relative_to(site).as_posix() for p in copies] == ["assets/vis-network.min.js"]
    csp = "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; object-src 'none'; base-uri 'none'"
    for path in html_pages(site):
        soup = page(site, str(path.relative_to(site)))
        meta = soup.find("meta", attrs={"http-equiv": "Content-Security-Policy"})
        assert isinstance(meta, Tag) and meta["content"] == csp, path
        for script in soup.find_all("script"):
            assert script.get("src"), f"{path}: inline script"
            assert not re.match(r"^(https?:)?//", str(script["src"])), path
        for link in soup.find_all("link"):
            assert not re.match(r"^(https?:)?//", str(link["href"])), path
        assert not soup.find_all(["img", "iframe", "object", "embed", "video", "audio"]), path
        assert len(soup.find_all("h1")) == 1, path
        assert soup.find("main") and soup.find("header") and soup.find("footer") and soup.find("nav"), path
        assert soup.find("a", class_="skip-link")["href"] == "#ng-main"  # type: ignore[index]
    for path in site.rglob("*.css"):
        assert not re.search(r"url\(\s*['\"]?(https?:)?//", path.read_text(encoding="utf-8")), path


def test_note_pages_with_a_map_load_vis_and_their_own_neighbourhood(site: Path, collection: Collection) -> None:
    slug = slug_of(collection, "syntheses/dialogue-failures")
    srcs = [str(s["src"]) for s in note_page(site, collection, "syntheses/dialogue-failures").find_all("script")]
    assert srcs == ["../assets/vis-network.min.js", "../assets/site.js", "../assets/map-options.js", f"../assets/hood/{slug}.js"]
    (payload_slug, hood) = js_payload(site / "assets" / "hood" / f"{slug}.js")
    assert payload_slug == slug and isinstance(hood, dict)
    nodes, edges = hood["nodes"], hood["edges"]
    assert nodes[0]["id"] == slug and nodes[0]["x"] == 0 and nodes[0]["y"] == 0
    assert all(isinstance(n["id"], str) and isinstance(n["title"], str) for n in nodes)
    assert len(nodes) == len(edges) + 1 <= HOOD_BUDGET + 1
    for neighbour in hood["list"]:  # every neighbour can be walked to
        assert (site / "assets" / "hood" / f"{neighbour['slug']}.js").is_file()
    (options,) = js_payload(site / "assets" / "map-options.js")
    assert isinstance(options, dict)
    assert options["hood"]["physics"]["enabled"] is False and options["graph"]["physics"]["enabled"] is False
    # the looks of a kind are shared, not repeated in every note's map data
    kinds = {e["kind"] for e in edges}
    assert kinds >= {"link", "similar", "backlink"} and not any("dashes" in e or "color" in e for e in edges)
    styles = {kind: (style["dashes"], style["color"]["color"], style["arrows"]["to"]["enabled"]) for kind, style in options["hoodEdges"].items()}
    assert styles["link"][::2] == (False, True) and styles["similar"][::2] == ([7, 6], False) and styles["backlink"][0] == [2, 5]
    assert len({colour for _, colour, _ in styles.values()}) == len(styles)
    groups = options["hood"]["groups"]
    assert all(n["group"] == n["kind"] and "color" not in n for n in nodes[1:])
    assert len({groups[n["kind"]]["color"]["background"] for n in nodes[1:]}) == len({n["kind"] for n in nodes[1:]})


def test_neighbour_budget_reserves_places_for_each_kind_then_fills_in_priority_order(collection: Collection) -> None:
    notes = dict(collection.notes)
    base = collection.notes["concepts/isolated"]
    extra = {f"x/n{i:02d}": Note(id=f"x/n{i:02d}", path=f"x/n{i:02d}.md", title=f"N{i:02d}", kind="concept") for i in range(60)}
    notes.update(extra)
    slugs = assign_slugs(notes)

    def choose(neighbours: list[Neighbour]) -> list[HoodEntry]:
        facts = NoteFacts(base.id, len(neighbours), 60, 0, "large", tuple(neighbours), (), (), (), (), ())
        return choose_neighbours(facts, notes, slugs, None)

    backlinks = [Neighbour(f"x/n{i:02d}", "backlink") for i in range(0, 10)]
    similar = [Neighbour(f"x/n{i:02d}", "similar", 0.5 + i / 100) for i in range(10, 30)]
    links = [Neighbour(f"x/n{i:02d}", "link") for i in range(30, 35)]
    # 5 links (all: under their quota), similar and backlinks their quota of 5 each, the 9 places left to
    # the next best similar: links first, then similar by score, then backlinks by title
    chosen = choose(backlinks + similar + links)
    assert len(chosen) == HOOD_BUDGET
    rels = [c.rel for c in chosen]
    assert rels == ["link"] * 5 + ["similar"] * (HOOD_BUDGET - 5 - HOOD_QUOTAS["backlink"]) + ["backlink"] * HOOD_QUOTAS["backlink"]
    shown = [c for c in chosen if c.rel == "similar"]
    assert [c.id for c in shown] == [f"x/n{i:02d}" for i in range(29, 29 - len(shown), -1)]  # the best scored
    assert [c.id for c in chosen if c.rel == "backlink"] == [f"x/n{i:02d}" for i in range(5)]  # by title

    # many links: links get their 40% quota, every other kind its reserve, the rest goes to links again
    many = [Neighbour(f"x/n{i:02d}", "link") for i in range(30, 60)]
    chosen = choose(backlinks + similar + many)
    counts = {rel: sum(c.rel == rel for c in chosen) for rel in ("link", "similar", "backlink")}
    assert counts == {"link": HOOD_BUDGET - HOOD_QUOTAS["similar"] - HOOD_QUOTAS["backlink"], "similar": HOOD_QUOTAS["similar"], "backlink": HOOD_QUOTAS["backlink"]}
    assert HOOD_QUOTAS["link"] <= 0.4 * HOOD_BUDGET
    assert [c.id for c in chosen if c.rel == "link"] == [f"x/n{i:02d}" for i in range(30, 30 + counts["link"])]

    # a note with few neighbours shows all of them
    assert len(choose(backlinks[:3] + similar[:2] + links[:1])) == 6
    assert len(set(ring_positions(HOOD_BUDGET))) == HOOD_BUDGET


# -- safety ------------------------------------------------------------------------------------------


def _assert_no_script_injection(site: Path) -> None:
    for path in html_pages(site):
        soup = page(site, str(path.relative_to(site)))
        for script in soup.find_all("script"):
            src = str(script.get("src", ""))
            assert re.fullmatch(r"(\.\./)?assets/[a-z0-9./-]+\.js", src), f"{path}: {script}"
            assert not script.get_text().strip()
        for el in soup.find_all(True):
            for attr, value in el.attrs.items():
                assert not attr.lower().startswith("on"), f"{path}: {el.name} {attr}"
                if attr in ("href", "src", "action", "formaction", "xlink:href"):
                    assert not re.match(r"\s*(javascript|data|vbscript):", str(value), re.I), f"{path}: {attr}={value}"
        assert not soup.find_all(["iframe", "object", "embed", "svg"], attrs={"onload": True})


@pytest.mark.parametrize("allow_html", [False, True])
def test_hostile_note_is_escaped_everywhere(tmp_path: Path, allow_html: bool) -> None:
    collection = parse_collection(NOTES, allow_html=allow_html)
    out = tmp_path / "site"
    render_site(collection, make_graph(collection), out, allow_html=allow_html)
    _assert_no_script_injection(out)
    soup = note_page(out, collection, "inquiries/evil")
    h1 = soup.find("h1")
    assert isinstance(h1, Tag) and h1.get_text() == EVIL  # shown as text, not run
    assert soup.title is not None and EVIL in soup.title.get_text()
    assert "<img src=x onerror=alert(2)>" == text(soup.find(class_="question"))
    assert "#<script>x</script>" in text(soup.find(class_="tags"))
    article = soup.find("article")
    assert isinstance(article, Tag)
    assert not article.find("a", string=re.compile("^[xyz]$"))
    if allow_html:
        assert article.find("a", string="raw link") is not None and not article.find("a", href=True, string="raw link")
        assert "alert(10)" not in article.decode() and "evil.example" not in article.decode()
    else:
        assert "<script>alert(10)</script>" in text(article.find(class_="note-body"))
        assert '<a href="javascript:alert(8)" onclick="alert(9)">raw link</a>' in text(article.find(class_="lede"))
    # the page that lists the hostile note as an inquiring line escapes it as well
    target = note_page(out, collection, "syntheses/dialogue-failures")
    assert EVIL in text(target.find(id="ng-inquiring"))


def test_data_files_cannot_break_out_of_a_script(site: Path, collection: Collection) -> None:
    files = [site / "assets" / "search-index.js", site / "assets" / "graph-data.js", *sorted((site / "assets" / "hood").glob("*.js"))]
    for path in files:
        raw = path.read_text(encoding="utf-8")
        assert "<" not in raw and ">" not in raw and "&" not in raw and "\u2028" not in raw, path
        js_payload(path)  # still valid JSON inside
    (rows,) = js_payload(site / "assets" / "search-index.js")
    assert isinstance(rows, list)
    evil = [r for r in rows if r[1] == EVIL]
    assert evil and evil[0][3] == ["</script><script>alert(4)</script>"]
    assert "\\u003c/script\\u003e" in (site / "assets" / "search-index.js").read_text(encoding="utf-8")
    assert js_json("a\u2028b</script>&") == '"a\\u2028b\\u003c/script\\u003e\\u0026"'
    with pytest.raises(ValueError):
        js_call("alert(1);x", 1)


# -- the other pages ---------------------------------------------------------------------------------


def test_index_kinds_topics_clusters_and_search(site: Path, collection: Collection) -> None:
    index = page(site, "index.html")
    by_kind = defaultdict(int)
    for note in collection.notes.values():
        by_kind[note.kind] += 1
    for kind, n in by_kind.items():
        card = index.select_one(f"a.kind-card--{kind}")
        assert card is not None and card["href"] == f"kinds/{kind}.html"
        assert card.select_one(".count")["data-count"] == str(n)  # type: ignore[index]
        listing = page(site, f"kinds/{kind}.html")
        assert len(listing.select("li.note-list__item")) == n
    assert [text(a) for a in index.select(".cluster-card__title")] == ["grounding · repair", "scaling · dialogue"]
    recent = [text(a) for a in index.select("#ng-recent-h ~ ul a.note-list__title")]
    assert recent[0] == "Why do dialogue failures persist despite scaling language models?"
    topics = {text(a).rsplit(" ", 1)[0] for a in index.select("ul.topics--cloud a")}
    assert "Grounding and Meaning" in topics and "<svg onload=alert(5)>" in topics

    topic = page(site, f"topics/{slugify('Grounding and Meaning')}.html")
    assert [text(a) for a in topic.select("a.note-list__title")] == ["Common ground"]

    cluster = page(site, "clusters/0.html")
    assert text(cluster.find("h1")) == "grounding · repair"
    cited = [text(a) for a in cluster.select("#ng-cited-h ~ ol a.card__title")]
    assert cited[0] == "Using Language"  # cited by common ground, turn taking's neighbour, the inquiry...
    bridges = [text(a) for a in cluster.select("#ng-bridges-h ~ ul a.card__title")]
    assert "Common ground" in bridges or "Using Language" in bridges
    assert len(cluster.select("#ng-members-h ~ ul li")) == 6

    search = page(site, "search.html")
    assert search.find("input", id="ng-q") is not None
    assert [str(s["src"]) for s in search.find_all("script")] == ["assets/site.js", "assets/search-index.js"]
    for path in html_pages(site):
        form = page(site, str(path.relative_to(site))).find("form", class_="site-search")
        assert isinstance(form, Tag) and form.find("input", attrs={"name": "q"}) is not None


def test_full_graph_page_and_data(site: Path, collection: Collection) -> None:
    soup = page(site, "graph.html")
    srcs = [str(s["src"]) for s in soup.find_all("script")]
    assert srcs == ["assets/vis-network.min.js", "assets/site.js", "assets/map-options.js", "assets/graph.js", "assets/graph-data.js"]
    assert soup.find("input", id="ng-graph-q") and len(soup.select('input[name="kind"]')) == 4
    assert {str(i["value"]) for i in soup.select('input[name="edge"]')} == {"link", "similar", "source"}
    (data,) = js_payload(site / "assets" / "graph-data.js")
    assert isinstance(data, dict)
    slugs = assign_slugs(collection.notes)
    assert [n[0] for n in data["nodes"]] == [slugs[i] for i in sorted(collection.notes)]
    assert len({(n[4], n[5]) for n in data["nodes"]}) == len(data["nodes"])  # no two notes on one spot
    assert all(0 <= a < len(data["nodes"]) and 0 <= b < len(data["nodes"]) for a, b, _ in data["edges"])


def test_graph_layout_scales_and_collapses(collection: Collection) -> None:
    notes = {f"n{i:04d}": Note(id=f"n{i:04d}", path=f"n{i:04d}.md", title=f"Note {i}", kind="concept") for i in range(3000)}
    g = nx.MultiDiGraph()
    g.add_nodes_from(notes)
    for i in range(3000):
        g.add_edge(f"n{i:04d}", f"n{(i * 7 + 1) % 3000:04d}", kind="link")
    clusters = tuple(Cluster(c, f"c{c}", (), tuple(f"n{i:04d}" for i in range(c, 3000, 30)), (), "medium") for c in range(30))
    edges = Edges.of(g, sorted(notes))
    data = graph_data(notes, edges, clusters, {k: k for k in notes})
    assert len(data["nodes"]) == 3000 and len(data["nodes"]) > data["budget"]
    assert len({(n[4], n[5]) for n in data["nodes"]}) == 3000
    # clusters do not overlap
    circles = [(c[2], c[3], c[4]) for c in data["clusters"]]
    for i, (x1, y1, r1) in enumerate(circles):
        for x2, y2, r2 in circles[i + 1 :]:
            assert (x1 - x2) ** 2 + (y1 - y2) ** 2 >= (r1 + r2) ** 2 - 1e-6
    assert graph_data(notes, edges, clusters, {k: k for k in notes}) == data


# -- determinism and reuse ---------------------------------------------------------------------------


def _files(root: Path) -> dict[str, bytes]:
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def test_two_renders_are_byte_identical(tmp_path: Path, site: Path, collection: Collection, graph: GraphResult) -> None:
    again = tmp_path / "again"
    render_site(collection, graph, again, title="Why dialogue fails")
    assert _files(again) == _files(site)


def test_pages_written_by_forked_workers_are_the_same_files(
    tmp_path: Path, site: Path, collection: Collection, graph: GraphResult, monkeypatch
) -> None:
    import notegraph.render.site as site_module

    monkeypatch.setattr(site_module, "PARALLEL_MIN", 2)
    assert site_module.workers_for(len(collection.notes), 2) >= 2 or cpus() == 1
    parallel = tmp_path / "parallel"
    report = render_site(collection, graph, parallel, title="Why dialogue fails")
    assert _files(parallel) == _files(site)
    again = render_site(collection, graph, tmp_path / "reused", title="Why dialogue fails", previous=parallel)
    assert again.pages_written == 0 and again.pages_reused == report.pages_written


def test_previous_site_is_reused_where_nothing_changed(tmp_path: Path, collection: Collection, graph: GraphResult) -> None:
    first, second, third = tmp_path / "a", tmp_path / "b", tmp_path / "c"
    r1 = render_site(collection, graph, first)
    r2 = render_site(collection, graph, second, previous=first)
    assert isinstance(r2, RenderReport)
    assert r2.pages_written == 0 and r2.pages_reused == r1.pages_written and r2.files == r1.files
    assert _files(second) == _files(first)
    manifest = json.loads((second / ".notegraph-manifest.json").read_text())
    assert all(re.fullmatch(r"[0-9a-f]{64}", h) for h in manifest["pages"].values())

    # one note's body changes: its page is rendered again, pages that do not show it are reused
    changed = dict(NOTES)
    changed["concepts/isolated.md"] = NOTES["concepts/isolated.md"].replace("links nowhere.", "links nowhere, still.")
    collection2 = parse_collection(changed)
    r3 = render_site(collection2, make_graph(collection2), third, previous=second)
    slug = slug_of(collection, "concepts/isolated")
    assert "links nowhere, still." in (third / "notes" / f"{slug}.html").read_text()
    assert 1 <= r3.pages_written <= 3 and r3.pages_reused >= r1.pages_written - 3

    # a damaged or missing previous file is rendered again, never copied (unlink first: files are hard links)
    (second / "notes" / f"{slug}.html").unlink()
    (second / "notes" / f"{slug}.html").write_text("tampered")
    (second / "index.html").unlink()
    fourth = tmp_path / "d"
    render_site(collection, graph, fourth, previous=second)
    assert _files(fourth) == _files(first)
    (second / ".notegraph-manifest.json").write_text("{not json")
    fifth = tmp_path / "e"
    r5 = render_site(collection, graph, fifth, previous=second)
    assert r5.pages_reused == 0 and _files(fifth) == _files(first)


def test_listing_pages_are_kept_whole_until_what_they_list_changes(tmp_path: Path, collection: Collection, graph: GraphResult, monkeypatch: pytest.MonkeyPatch) -> None:
    """The search, topic and kind pages list every note: they are kept without building their contexts
    while no listed field changed, and made again when one did."""
    from notegraph.render import site as site_module

    first = tmp_path / "a"
    render_site(collection, graph, first)
    made: list[str] = []
    for name in ("write_search", "write_topics", "write_kinds", "write_index", "write_graph", "write_clusters"):
        original = getattr(site_module._Site, name)
        monkeypatch.setattr(site_module._Site, name, lambda self, w, inputs=None, _o=original, _n=name: (made.append(_n), _o(self, w, inputs))[1])

    # a paragraph added after the lede: nothing any listing shows
    changed = dict(NOTES)
    changed["concepts/isolated.md"] = NOTES["concepts/isolated.md"] + "\nA second paragraph.\n"
    collection2 = parse_collection(changed)
    second = tmp_path / "b"
    render_site(collection2, make_graph(collection2), second, previous=first)
    assert not {"write_search", "write_topics", "write_kinds"} & set(made)
    for rel in ("search.html", "assets/search-index.js", "kinds/concept.html"):
        assert (second / rel).stat().st_ino == (first / rel).stat().st_ino  # the previous file, linked
    assert "A second paragraph." in (second / "notes" / f"{slug_of(collection, 'concepts/isolated')}.html").read_text()

    # a title edit: every listing is made again, and shows it
    made.clear()
    changed["concepts/isolated.md"] = changed["concepts/isolated.md"].replace("title: Isolated concept", "title: Lonely concept")
    collection3 = parse_collection(changed)
    third = tmp_path / "c"
    render_site(collection3, make_graph(collection3), third, previous=second)
    assert set(made) == {"write_search", "write_topics", "write_kinds", "write_index", "write_graph", "write_clusters"}
    for rel in ("assets/search-index.js", "kinds/concept.html", "assets/graph-data.js"):
        assert "Lonely concept" in (third / rel).read_text() and "Isolated concept" not in (third / rel).read_text()
    fresh = tmp_path / "fresh"
    render_site(collection3, make_graph(collection3), fresh)
    assert _files(third) == _files(fresh)


def test_writing_a_site_leaves_ipython_unimported() -> None:
    """pyvis imports IPython for its notebook display only; a build imports pyvis without it, and a
    later ``import IPython`` still gets the real package."""
    import subprocess
    import sys

    code = (
        "import sys\n"
        "from notegraph.render.maps import shared_options\n"
        "from notegraph.render.site import vis_dir\n"
        "assert (vis_dir() / 'vis-network.min.js').is_file() and shared_options()['hood']\n"
        "assert 'pyvis.network' in sys.modules and not any(m == 'IPython' or m.startswith('IPython.') for m in sys.modules)\n"
        "import IPython.display\n"
        "assert isinstance(IPython.display.IFrame, type), IPython.display\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr[-2000:]


def test_missing_previous_site_is_no_error(tmp_path: Path, collection: Collection, graph: GraphResult) -> None:
    report = render_site(collection, graph, tmp_path / "out", previous=tmp_path / "not-there")
    assert report.pages_reused == 0 and report.pages_written > 0


def test_title_and_allow_html_change_every_page(tmp_path: Path, collection: Collection, graph: GraphResult) -> None:
    first = tmp_path / "a"
    render_site(collection, graph, first)
    r = render_site(collection, graph, tmp_path / "b", title="Another title", previous=first)
    assert r.pages_reused == 0


# -- names -------------------------------------------------------------------------------------------


def test_slugs_are_url_safe_stable_and_unique(site: Path, collection: Collection) -> None:
    slugs = assign_slugs(collection.notes)
    assert all(re.fullmatch(r"[a-z0-9]+(-[a-z0-9]+)*", s) for s in slugs.values())
    assert len(set(slugs.values())) == len(slugs)
    assert slugs["syntheses/Über # 100% sure?"] == "syntheses-uber-100-sure"
    assert (site / "notes" / "syntheses-uber-100-sure.html").is_file()
    tricky = assign_slugs(["A b", "a-b", "日本語", "中文", "con", "x/y"])
    assert len(set(tricky.values())) == 6
    assert tricky["x/y"] == "x-y" and re.fullmatch(r"a-b-[0-9a-f]{8}", tricky["A b"]) and tricky["con"] != "con"
    assert tricky["日本語"].startswith("note-")
    assert assign_slugs(["A b", "a-b", "zzz"]) == {k: v for k, v in assign_slugs(["zzz", "a-b", "A b"]).items()}
    assert heading_ids(["Intro", "Intro", "", "Main", "ng-x"]) == ["intro", "intro-2", "section", "h-main", "h-ng-x"]


def test_importing_the_renderer_does_not_import_pyvis() -> None:
    import subprocess
    import sys

    code = "import sys, notegraph.render; assert not {'pyvis', 'IPython'} & set(sys.modules), sorted(sys.modules)"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr[-2000:]


# -- in a real browser (skipped where no Chromium can be started) -------------------------------------


def _chromium(playwright: object) -> object:
    """The same browser, flags and skip rule as tests/test_browser.py: Debian's Chromium, never a download."""
    from browser_util import CHROMIUM_ARGS, chromium_or_skip

    path = chromium_or_skip()
    return playwright.chromium.launch(executable_path=path, headless=True, args=CHROMIUM_ARGS)  # type: ignore[attr-defined]


@pytest.mark.browser
def test_pages_work_in_a_browser_offline(site: Path, collection: Collection) -> None:
    from browser_util import chromium_or_skip

    chromium_or_skip()  # skips (or fails in CI) before playwright is imported when there is no browser
    from playwright import sync_api

    slug = slug_of(collection, "syntheses/dialogue-failures")
    with sync_api.sync_playwright() as playwright:
        browser = _chromium(playwright)
        page_ = browser.new_page()  # type: ignore[attr-defined]
        problems: list[str] = []
        requests: list[str] = []
        page_.on("console", lambda m: problems.append(m.text) if m.type in ("error", "warning") else None)
        page_.on("pageerror", lambda e: problems.append(str(e)))
        page_.on("request", lambda r: requests.append(r.url))
        page_.on("dialog", lambda d: (problems.append(f"script ran: {d.message}"), d.dismiss()))

        page_.goto((site / "notes" / f"{slug}.html").as_uri())
        page_.wait_for_selector("#ng-map-canvas canvas")
        first = page_.locator(".hood-list li").first
        name = first.locator("a").inner_text()
        first.locator("button").click()  # walk: the map re-centres without leaving the page
        page_.wait_for_function("n => document.querySelector('.map-list__centre').textContent === n", arg=name)
        assert page_.url.endswith(f"{slug}.html")
        page_.locator(".map-home").click()
        page_.wait_for_function(
            "t => document.querySelector('.map-list__centre').textContent === t",
            arg=collection.notes["syntheses/dialogue-failures"].title,
        )

        page_.fill("#ng-site-q", "common")
        page_.wait_for_selector("#ng-suggest li a")
        page_.goto((site / "search.html").as_uri() + "?q=scaling")
        page_.wait_for_selector("#ng-search-results li")
        assert "Scaling is not dialogue" in page_.locator("#ng-search-results").inner_text()

        page_.goto((site / "graph.html").as_uri() + f"#{slug}")
        page_.wait_for_selector("#ng-graph-canvas canvas")
        page_.wait_for_function("() => document.querySelector('#ng-graph-info h2') !== null")
        assert collection.notes["syntheses/dialogue-failures"].title in page_.locator("#ng-graph-info").inner_text()

        for note_id in ("inquiries/evil", "syntheses/dialogue-failures"):  # the hostile note, and a page citing it
            page_.goto((site / "notes" / f"{slug_of(collection, note_id)}.html").as_uri())
            page_.hover("#ng-title")
            page_.wait_for_timeout(200)
        browser.close()  # type: ignore[attr-defined]
    assert not problems, problems
    assert all(url.startswith("file://") for url in requests), [u for u in requests if not u.startswith("file://")]
