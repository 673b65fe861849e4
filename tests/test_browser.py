"""The sample site in a real Chromium, over file:// and over `notegraph serve`: concept maps walk, the full
graph finds and filters, nothing leaves the site, nothing logs an error, hostile notes run nothing, axe-core
finds no serious problem. Screenshots go to artifacts/ for a human to look at."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest
from browser_util import (
    ARTIFACTS,
    CHROMIUM_ARGS,
    GRAPH,
    MAP,
    NETWORK_HOOK,
    Watch,
    axe_or_skip,
    chromium_or_skip,
    click_node,
    describe_violations,
    js_payload,
    run_axe,
    wait_for_network,
)
from conftest import ROOT, FakeFactory, write

from notegraph.config import Settings, load_settings
from notegraph.errors import BusyError
from notegraph.pipeline import build, load
from notegraph.render.slugs import assign_slugs
from notegraph.serve import LiveSite

pytestmark = pytest.mark.browser

NOTES = ROOT / "notes"
WALK_NOTE = "synthesis/monological-training-dialogue-failures"


# -- the sites ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Built:
    settings: Settings
    out: Path
    slugs: dict[str, str]
    titles: dict[str, str]

    def slug(self, note_id: str) -> str:
        return self.slugs[note_id]


@dataclass(frozen=True)
class Site:
    """One built site as the browser reaches it: ``base`` + a path inside the site is a page's URL."""

    scheme: str
    base: str
    root: Path

    def url(self, rel: str) -> str:
        return self.base + rel


def build_waiting(settings: Settings, factory: Any = None, timeout: float = 300.0) -> None:
    """Other builds of the sample collection (other test runs) hold its lock for a moment: wait for them."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            build(settings, factory)
            return
        except BusyError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.5)


def built(notes: Path, out: Path, factory: Any = None) -> Built:
    settings = load_settings(notes, out=out, quiet=True)
    build_waiting(settings, factory)
    collection = load(settings)
    return Built(settings, out, assign_slugs(collection.notes), {i: n.title for i, n in collection.notes.items()})


@pytest.fixture(scope="session")
def chromium_path() -> str:
    return chromium_or_skip()


@pytest.fixture(scope="session")
def sample(chromium_path: str, tmp_path_factory: pytest.TempPathFactory) -> Built:
    """The sample collection with the real model (its embedding cache makes this quick)."""
    return built(NOTES, tmp_path_factory.mktemp("sample") / "site")


@pytest.fixture(scope="session")
def served(sample: Built, tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveSite]:
    """`notegraph serve` on the sample collection, in threads, with a site folder of its own."""
    out = tmp_path_factory.mktemp("served") / "site"
    build_waiting(load_settings(NOTES, out=out, quiet=True))
    live = LiveSite(lambda: load_settings(NOTES, out=out, quiet=True), port=0, echo=lambda message, err: None)
    live.start()
    try:
        yield live
    finally:
        live.stop()


@pytest.fixture(scope="session", params=["file", "http"])
def site(request: pytest.FixtureRequest, sample: Built) -> Site:
    if request.param == "file":
        return Site("file", sample.out.resolve().as_uri() + "/", sample.out)
    live: LiveSite = request.getfixturevalue("served")
    return Site("http", live.url, live.out)


@pytest.fixture(scope="module")
def browser(chromium_path: str) -> Iterator[Any]:
    """Module-scoped: a running sync_playwright owns the event loop, so it must stop before other test
    modules start their own."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        instance = playwright.chromium.launch(executable_path=chromium_path, headless=True, args=CHROMIUM_ARGS)
        try:
            yield instance
        finally:
            instance.close()


Opener = Callable[..., tuple[Any, Watch]]


@pytest.fixture
def open_page(browser: Any) -> Iterator[Opener]:
    """``open_page(allowed_prefix, **context_options)`` -> (page, watch); contexts close after the test."""
    contexts: list[Any] = []

    def opener(*allowed: str, **options: Any) -> tuple[Any, Watch]:
        options.setdefault("viewport", {"width": 1280, "height": 900})
        context = browser.new_context(**options)
        contexts.append(context)
        context.add_init_script(NETWORK_HOOK)
        page = context.new_page()
        watch = Watch(tuple(allowed))
        watch.attach(page)
        return page, watch

    yield opener
    for context in contexts:
        context.close()


def centre_of_map(page: Any) -> str:
    return str(page.evaluate(f"() => {MAP}.body.data.nodes.get({{ filter: n => n.rel === 'centre' }})[0].id"))


def map_nodes(page: Any) -> list[dict[str, Any]]:
    return list(page.evaluate(f"() => {MAP}.body.data.nodes.get().map(n => ({{ id: n.id, rel: n.rel }}))"))


# -- concept maps ---------------------------------------------------------------------------------------


def test_concept_map_draws_its_neighbourhood(site: Site, sample: Built, open_page: Opener) -> None:
    slug = sample.slug(WALK_NOTE)
    _, hood = js_payload(site.root / "assets" / "hood" / f"{slug}.js")
    page, watch = open_page(site.base)
    page.goto(site.url(f"notes/{slug}.html"))
    wait_for_network(page, MAP)

    drawn = map_nodes(page)
    assert sorted(n["id"] for n in drawn) == sorted(n["id"] for n in hood["nodes"])
    assert len(drawn) == 1 + page.locator("#ng-map .hood-list li").count() == 1 + len(hood["list"])
    assert centre_of_map(page) == slug
    # every node lands on the visible canvas (fitted), not off to one side
    box = page.locator("#ng-map-canvas").bounding_box()
    assert box and box["width"] > 200 and box["height"] > 200
    outside = page.evaluate(
        f"""() => {{
            var n = {MAP}, box = n.body.container.getBoundingClientRect(), out = [];
            Object.entries(n.getPositions()).forEach(([id, p]) => {{
                var d = n.canvasToDOM(p);
                if (d.x < 0 || d.y < 0 || d.x > box.width || d.y > box.height) {{ out.push(id); }}
            }});
            return out;
        }}"""
    )
    assert not outside, f"nodes drawn off the canvas: {outside}"
    # each edge is drawn in its kind's style, which the data file leaves to the shared map options
    (options,) = js_payload(site.root / "assets" / "map-options.js")
    drawn_edges = page.evaluate(f"() => {MAP}.body.data.edges.get().map(e => [e.kind, e.dashes, e.color && e.color.color])")
    assert {kind for kind, _, _ in drawn_edges} == {e["kind"] for e in hood["edges"]}
    for kind, dashes, colour in drawn_edges:
        assert [dashes, colour] == [options["hoodEdges"][kind]["dashes"], options["hoodEdges"][kind]["color"]["color"]], kind
    page.wait_for_timeout(300)
    watch.assert_clean()


def test_concept_map_shows_each_kind_of_edge_the_note_has(site: Site, sample: Built, open_page: Opener) -> None:
    slug = sample.slug(WALK_NOTE)
    (data,) = js_payload(site.root / "assets" / "graph-data.js")
    index = [n[0] for n in data["nodes"]].index(slug)
    kinds = data["edgeKinds"]
    has = {
        "link": any(a == index and kinds[k] == "link" for a, b, k in data["edges"]),
        "backlink": any(b == index and kinds[k] == "link" for a, b, k in data["edges"]),
        "similar": any(index in (a, b) and kinds[k] == "similar" for a, b, k in data["edges"]),
    }
    assert all(has.values()), has  # the sample note has all three

    page, watch = open_page(site.base)
    page.goto(site.url(f"notes/{slug}.html"))
    wait_for_network(page, MAP)
    edges = page.evaluate(f"() => {MAP}.body.data.edges.get().map(e => ({{ from: e.from, to: e.to, kind: e.kind }}))")
    drawn = {e["kind"] for e in edges}
    listed = set(page.locator("#ng-map .hood-list li .rel").all_inner_texts())
    missing = [kind for kind in has if kind not in drawn]
    assert not missing, (
        f"{WALK_NOTE} has {', '.join(missing)} edges but its concept map draws none (drawn: {sorted(drawn)}, "
        f"listed: {sorted(listed)})"
    )
    for edge in edges:  # a star around the note: backlinks point at it, its links and similar notes away
        assert slug in (edge["from"], edge["to"]), edge
        if edge["kind"] in ("link", "similar", "backlink"):
            assert (edge["to"] if edge["kind"] == "backlink" else edge["from"]) == slug, edge
    watch.assert_clean()


def test_walking_the_map_then_opening_the_centre_then_the_full_graph(site: Site, sample: Built, open_page: Opener) -> None:
    slug = sample.slug(WALK_NOTE)
    page, watch = open_page(site.base)
    page.goto(site.url(f"notes/{slug}.html"))
    wait_for_network(page, MAP)
    # a neighbour that has a map of its own, so the walk re-centres rather than opening a page
    neighbour = next(
        n["id"] for n in map_nodes(page) if n["rel"] == "link" and (site.root / "assets" / "hood" / f"{n['id']}.js").is_file()
    )
    title = sample.titles[next(i for i, s in sample.slugs.items() if s == neighbour)]

    click_node(page, MAP, neighbour, "#ng-map-canvas")
    page.wait_for_function(
        f"id => {{ var c = {MAP}.body.data.nodes.get({{ filter: n => n.rel === 'centre' }}); return c.length && c[0].id === id; }}",
        arg=neighbour,
    )
    assert page.url == site.url(f"notes/{slug}.html")  # walked, did not navigate
    assert page.locator(".map-list__centre").inner_text() == title
    assert page.locator(".open-graph").get_attribute("href") == f"../graph.html#{neighbour}"
    assert page.locator(".map-home").is_visible()

    with page.expect_navigation():
        click_node(page, MAP, neighbour, "#ng-map-canvas")  # the centre opens its page
    assert page.url == site.url(f"notes/{neighbour}.html")
    assert page.locator("h1").inner_text() == title

    page.click(".open-graph")
    page.wait_for_url(site.url(f"graph.html#{neighbour}"))
    wait_for_network(page, GRAPH)
    page.wait_for_function(f"id => {GRAPH}.getSelectedNodes().indexOf(id) !== -1", arg=neighbour)
    page.wait_for_function("t => { var h = document.querySelector('#ng-graph-info h2'); return h && h.textContent === t; }", arg=title)
    page.wait_for_timeout(700)  # the focus animation; then the focused note is in the middle of the view
    centre = page.evaluate(
        f"""id => {{ var n = {GRAPH}, p = n.canvasToDOM(n.getPositions([id])[id]), b = n.body.container.getBoundingClientRect();
                    return [p.x / b.width, p.y / b.height]; }}""",
        neighbour,
    )
    assert 0.3 < centre[0] < 0.7 and 0.3 < centre[1] < 0.7, centre
    watch.assert_clean()


# -- the full graph and search --------------------------------------------------------------------------


def graph_ids(page: Any) -> list[str]:
    return [i for i in page.evaluate(f"() => {GRAPH}.body.data.nodes.getIds()") if not str(i).startswith(("l:", "c:"))]


def test_full_graph_finds_and_filters(site: Site, sample: Built, open_page: Opener) -> None:
    (data,) = js_payload(site.root / "assets" / "graph-data.js")
    kinds = data["kinds"]
    kind_of = {n[0]: kinds[n[2]] for n in data["nodes"]}
    page, watch = open_page(site.base)
    page.goto(site.url("graph.html"))
    wait_for_network(page, GRAPH)
    assert sorted(graph_ids(page)) == sorted(kind_of)
    edge_kinds = data["edgeKinds"]

    def drawn_edges() -> dict[str, int]:
        counts: dict[str, int] = {}
        for edge_id in page.evaluate(f"() => {GRAPH}.body.data.edges.getIds()"):
            kind = edge_kinds[int(str(edge_id).rsplit("|", 1)[1])]
            counts[kind] = counts.get(kind, 0) + 1
        return counts

    everything = drawn_edges()
    assert set(everything) == set(edge_kinds), everything

    # find a note by part of its title
    slug = sample.slug(WALK_NOTE)
    title = sample.titles[WALK_NOTE]
    page.fill("#ng-graph-q", title[5:30].upper())
    page.click("#ng-graph-find button[type=submit]")
    page.wait_for_function("s => window.location.hash === '#' + s", arg=slug)
    page.wait_for_function(f"id => {GRAPH}.getSelectedNodes().indexOf(id) !== -1", arg=slug)
    assert page.locator("#ng-graph-info h2").inner_text() == title
    page.fill("#ng-graph-q", "no such note at all")
    page.click("#ng-graph-find button[type=submit]")
    assert "No note matches" in page.locator("#ng-graph-info").inner_text()

    # kind filters hide that kind's notes (and their edges), and bring them back
    for kind in sorted(set(kind_of.values())):
        box = page.locator(f'input[name="kind"][value="{kind}"]')
        box.uncheck()
        shown = graph_ids(page)
        assert sorted(shown) == sorted(s for s, k in kind_of.items() if k != kind), kind
        box.check()
        assert len(graph_ids(page)) == len(kind_of)

    # edge filters hide their kind of edge only
    for kind in edge_kinds:
        box = page.locator(f'input[name="edge"][value="{kind}"]')
        box.uncheck()
        assert drawn_edges() == {k: n for k, n in everything.items() if k != kind}, kind
        box.check()
        assert drawn_edges() == everything

    # double-clicking a note opens it
    page.fill("#ng-graph-q", title)
    page.click("#ng-graph-find button[type=submit]")
    page.wait_for_timeout(700)  # focus animation
    with page.expect_navigation():
        click_node(page, GRAPH, slug, "#ng-graph-canvas", double=True)
    assert page.url == site.url(f"notes/{slug}.html")
    watch.assert_clean()


def test_search_page_and_header_suggestions(site: Site, sample: Built, open_page: Opener) -> None:
    page, watch = open_page(site.base)
    title = sample.titles[WALK_NOTE]
    page.goto(site.url("search.html") + "?q=" + quote("monological training"))
    page.wait_for_selector("#ng-search-results li")
    assert title in page.locator("#ng-search-results").inner_text()
    assert "match" in page.locator("#ng-search-status").inner_text()

    page.goto(site.url("index.html"))
    page.fill("#ng-site-q", "monological")
    page.wait_for_selector("#ng-suggest li a")
    assert any(title in t for t in page.locator("#ng-suggest li a").all_inner_texts())
    page.press("#ng-site-q", "Enter")
    page.wait_for_selector("#ng-search-results li")
    assert page.url.startswith(site.url("search.html"))
    watch.assert_clean()


def site_pages(root: Path) -> list[str]:
    return sorted(p.relative_to(root).as_posix() for p in root.rglob("*.html"))


def test_every_page_loads_without_errors_or_outside_requests(site: Site, open_page: Opener) -> None:
    pages = site_pages(site.root)
    assert len(pages) > 100
    page, watch = open_page(site.base)
    problems: list[str] = []
    for rel in pages:
        page.goto(site.url(rel))
        page.wait_for_load_state("load")
        if page.locator("#ng-map-canvas").count():
            wait_for_network(page, MAP)
        if rel == "graph.html":
            wait_for_network(page, GRAPH)
        problems += [f"{rel}: {p}" for p in watch.problems()]
        watch.outside.clear()
        watch.errors.clear()
        watch.dialogs.clear()
    assert not problems, "\n".join(problems)
    assert watch.requests and all(u.startswith(site.base) for u in watch.requests)
    if site.scheme == "file":
        assert all(u.startswith("file://") for u in watch.requests)


# -- live reload in the browser -----------------------------------------------------------------------------


def test_an_open_page_reloads_after_a_rebuild(tmp_path: Path, chromium_path: str, open_page: Opener) -> None:
    notes = tmp_path / "notes"
    write(notes, "a.md", "---\ntitle: A\n---\nThe first text of A links [[B]].\n")
    write(notes, "b.md", "---\ntitle: B\n---\nB is linked from A.\n")
    settings = load_settings(notes, out=tmp_path / "site", quiet=True)
    with LiveSite(settings, port=0, factory=FakeFactory(), echo=lambda m, e: None, debounce_ms=300, step_ms=50) as live:
        page, watch = open_page(live.url)
        page.goto(live.url + "notes/a.html")
        assert "The first text of A" in page.locator(".lede, .note-body").first.inner_text()
        assert page.locator('script[src="/__notegraph/reload.js"]').count() == 1
        page.wait_for_timeout(1200)  # at least one poll at the old version
        write(notes, "a.md", "---\ntitle: A\n---\nThe second text of A links [[B]].\n")
        page.wait_for_function("() => document.body.textContent.indexOf('The second text of A') !== -1", timeout=30_000)
        page.wait_for_timeout(1500)  # no reload loop: the page stays
        assert "The second text of A" in page.locator("body").inner_text()
        watch.assert_clean()
        page.close()


# -- hostile notes ------------------------------------------------------------------------------------------

EVIL_TITLE = '<img src=x onerror="window.__xss=1">'
EVIL = f"""---
title: '{EVIL_TITLE}'
kind: synthesis
date: 2026-01-01
topics: ["<svg onload=window.__xss=2>"]
tags: ["<script>window.__xss=3</script>", "onerror=window.__xss=4"]
aliases: ["javascript:window.__xss=5"]
question: "<script>window.__xss=6</script>"
claim: '"><img src=x onerror=window.__xss=7>'
---
<img src=x onerror="window.__xss=8"> The lede is about dialogue <script>window.__xss=9</script>.

A [click me](javascript:window.__xss=10) link, a <a href="javascript:window.__xss=11">raw one</a>,
and [[friend|<b onmouseover=window.__xss=12>friend</b>]] about dialogue and repair.

#<script>window.__xss=13</script>
"""
FRIEND = """---
title: Friend
topics: ["<svg onload=window.__xss=2>"]
---
Friend is about dialogue and repair and links to [[evil]].
"""


def test_hostile_note_shows_its_payloads_as_text_and_runs_nothing(tmp_path: Path, chromium_path: str, open_page: Opener) -> None:
    notes = tmp_path / "notes"
    write(notes, "evil.md", EVIL)
    write(notes, "friend.md", FRIEND)
    evil = built(notes, tmp_path / "site", FakeFactory())
    evil_slug, friend_slug = evil.slug("evil"), evil.slug("friend")
    assert evil.titles["evil"] == EVIL_TITLE
    with LiveSite(evil.settings, port=0, factory=FakeFactory(), echo=lambda m, e: None) as live:
        for base in (evil.out.resolve().as_uri() + "/", live.url):
            page, watch = open_page(base)

            def visit(rel: str, page: Any = page, base: str = base) -> None:
                page.goto(base + rel)
                page.wait_for_load_state("load")
                assert page.evaluate("() => window.__xss") is None, rel

            visit(f"notes/{evil_slug}.html")
            assert page.locator("h1").inner_text() == EVIL_TITLE
            assert "<script>window.__xss=3</script>" in page.locator(".tags").inner_text()
            assert "<script>window.__xss=6</script>" in page.locator(".question").inner_text()
            assert page.locator("article img, article script, article svg:not(.legend__line)").count() == 0
            assert page.locator('[href^="javascript:" i], [src^="javascript:" i]').count() == 0
            assert page.locator("[onerror], [onload], [onmouseover]").count() == 0
            page.get_by_text("click me").first.click()
            page.mouse.move(5, 5)
            wait_for_network(page, MAP)
            assert page.evaluate("() => window.__xss") is None

            # its neighbour's map: the hostile title is a node label and a tooltip
            visit(f"notes/{friend_slug}.html")
            wait_for_network(page, MAP)
            page.locator("#ng-map-canvas").scroll_into_view_if_needed()
            position = page.evaluate(
                f"""id => {{ var n = {MAP}, p = n.canvasToDOM(n.getPositions([id])[id]),
                            b = n.body.container.getBoundingClientRect(); return [b.left + p.x, b.top + p.y]; }}""",
                evil_slug,
            )
            page.mouse.move(position[0], position[1])
            page.wait_for_selector(".vis-tooltip", state="visible")
            tooltip = page.locator(".vis-tooltip")
            # vis sets the tooltip's innerText: line breaks become <br>, nothing else becomes an element
            assert EVIL_TITLE in tooltip.inner_text() and tooltip.locator(":not(br)").count() == 0
            assert page.evaluate("() => window.__xss") is None

            page.fill("#ng-site-q", "<img")
            page.wait_for_selector("#ng-suggest li a")
            assert EVIL_TITLE in page.locator("#ng-suggest").inner_text()
            assert page.locator("#ng-suggest img").count() == 0

            visit("search.html?q=" + quote("<img src"))
            page.wait_for_selector("#ng-search-results li")
            assert page.locator("#ng-search-results img, #ng-search-results script").count() == 0

            visit(f"graph.html#{evil_slug}")
            wait_for_network(page, GRAPH)
            page.wait_for_function("t => { var h = document.querySelector('#ng-graph-info h2'); return h && h.textContent === t; }", arg=EVIL_TITLE)
            for rel in site_pages(evil.out):
                visit(rel)
            assert page.evaluate("() => window.__xss") is None
            watch.assert_clean()


# -- accessibility and screenshots ----------------------------------------------------------------------------


def test_accessibility_has_no_serious_or_critical_violations(sample: Built, open_page: Opener) -> None:
    axe = axe_or_skip()
    base = sample.out.resolve().as_uri() + "/"
    first_topic = sorted((sample.out / "topics").glob("*.html"))[0].name
    first_cluster = sorted((sample.out / "clusters").glob("*.html"))[0].name
    pages = [
        "index.html",
        f"notes/{sample.slug(WALK_NOTE)}.html",
        "graph.html",
        f"topics/{first_topic}",
        "search.html?q=dialogue",
        "kinds/paper.html",
        f"clusters/{first_cluster}",
    ]
    report: list[str] = []
    for scheme in ("light", "dark"):
        page, watch = open_page(base, bypass_csp=True, color_scheme=scheme)  # axe arrives as an inline script
        for rel in pages:
            page.goto(base + rel)
            page.wait_for_load_state("load")
            if page.locator("#ng-map-canvas").count():
                wait_for_network(page, MAP)
            if rel == "graph.html":
                wait_for_network(page, GRAPH)
            if rel.startswith("search.html"):
                page.wait_for_selector("#ng-search-results li")
            violations = run_axe(page, axe)
            if violations:
                report.append(describe_violations(f"{rel} ({scheme})", violations))
        watch.assert_clean()
    if report:
        print("\n".join(report))
    assert not report, "\n".join(report)


def test_screenshots_for_a_human(sample: Built, open_page: Opener) -> None:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    base = sample.out.resolve().as_uri() + "/"
    slug = sample.slug(WALK_NOTE)
    for scheme in ("light", "dark"):
        page, watch = open_page(base, color_scheme=scheme, viewport={"width": 1280, "height": 900})
        page.goto(base + f"notes/{slug}.html")
        wait_for_network(page, MAP)
        page.wait_for_timeout(300)
        page.screenshot(path=str(ARTIFACTS / f"note-{scheme}.png"), full_page=True)
        page.goto(base + "graph.html")
        wait_for_network(page, GRAPH)
        page.wait_for_timeout(300)
        page.screenshot(path=str(ARTIFACTS / f"graph-{scheme}.png"))
        page.goto(base + "index.html")
        page.screenshot(path=str(ARTIFACTS / f"index-{scheme}.png"), full_page=True)
        watch.assert_clean()
    for name in ("note-light.png", "graph-light.png", "note-dark.png", "graph-dark.png"):
        assert (ARTIFACTS / name).stat().st_size > 10_000, name
