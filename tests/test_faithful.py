"""Notes render as their writer sees them in Obsidian: callouts, math, code, diagrams, highlights,
attachments, transclusions, nested heading links, titles, and no word lost (issue 26). The fixture vault
tests/fixtures/faithful has one note per feature; pages are parsed, never string-matched."""

from __future__ import annotations

import os
import re
import shutil
from pathlib import Path

import pytest
from bs4 import BeautifulSoup, Tag
from click.testing import CliRunner
from conftest import FIXTURES, write

from notegraph.cli import main
from notegraph.config import load_settings
from notegraph.parse.markdown import blank_comments, make_markdown
from notegraph.parse.note import parse_note
from notegraph.pipeline import build, check, load

VAULT = FIXTURES / "faithful"


@pytest.fixture
def faithful(tmp_path: Path) -> Path:
    notes = tmp_path / "vault"
    shutil.copytree(VAULT, notes)
    return notes


def built(notes: Path, **overrides: object) -> Path:
    out = notes.parent / "site"
    build(load_settings(notes, out=out, quiet=True, **overrides))
    return out


def page(out: Path, slug: str) -> BeautifulSoup:
    return BeautifulSoup((out / "notes" / f"{slug}.html").read_text(encoding="utf-8"), "lxml")


def body(soup: BeautifulSoup) -> Tag:
    found = soup.select_one(".note-body")
    assert isinstance(found, Tag)
    return found


def words(text: str) -> str:
    return " ".join(text.split())


# -- parsing ---------------------------------------------------------------------------------------------


def test_a_comment_mark_inside_code_is_code_and_nothing_is_lost():
    source = "Before `# | ^ : %% [[ ]]` middle [[Real]].\n\nA %%hidden [[Gone]]%% and ``a ` %% b`` end.\n"
    blanked = blank_comments(source)
    assert "middle [[Real]]" in blanked and "[[Gone]]" not in blanked and "hidden" not in blanked
    assert "``a ` %% b`` end." in blanked
    assert len(blanked) == len(source) and blanked.count("\n") == source.count("\n")
    note, _ = parse_note("n.md", source.encode())
    assert note is not None
    assert [link.target for link in note.links] == ["Real"]
    # an unclosed %% runs to the end, as in Obsidian; a backtick without its closer does not start code
    assert "tail" not in blank_comments("a ` b %% tail")


def test_title_is_the_front_matter_title_else_the_file_name_unless_the_setting_says_otherwise():
    note, _ = parse_note("folder/Windowing Systems.md", b"# macOS\n\nText.\n")
    assert note is not None and note.title == "Windowing Systems" and note.headings == ("macOS",)
    note, _ = parse_note("folder/Windowing Systems.md", b"# macOS\n\nText.\n", title_from_heading=True)
    assert note is not None and note.title == "macOS"
    note, _ = parse_note("x.md", b"---\ntitle: Given\n---\n# Heading\n")
    assert note is not None and note.title == "Given"


def test_obsidian_math_rules_keep_money_and_backslashes():
    md = make_markdown()
    inline = md.parse("Costs $5 and $10. Then $a\\,b \\\\ c$ and $$x^2$$.")[1].children or []
    maths = [t.content for t in inline if t.type.startswith("math")]
    assert maths == ["a\\,b \\\\ c", "x^2"]
    # an unclosed display block never swallows the rest of the note
    tokens = md.parse("$$\nunclosed\n\nafter\n")
    assert not any(t.type == "math_block" for t in tokens)


def test_callout_tokens_carry_type_fold_and_title():
    tokens = make_markdown().parse("> [!FAQ]- Why?\n> Because.\n")
    opening = tokens[0]
    assert opening.type == "callout_open" and opening.meta == {"type": "faq", "family": "question", "fold": "-", "titled": True}
    assert [t.type for t in tokens][-1] == "callout_close"


def test_check_names_missing_attachments_and_accepts_nested_heading_links(faithful: Path):
    report = check(load_settings(faithful))
    found = {(d.path, d.code) for d in report.collection.diagnostics}
    assert ("Faithful note.md", "missing-attachment") in found and ("Media.md", "missing-attachment") in found
    missing = [d for d in report.collection.diagnostics if d.code == "missing-attachment" and d.path == "Faithful note.md"]
    source = (faithful / "Faithful note.md").read_text().splitlines()
    assert len(missing) == 1 and "nowhere.png" in source[missing[0].line - 1]
    assert not [d for d in report.collection.diagnostics if d.code in ("dangling-heading", "dangling-link", "dangling-block")]
    result = CliRunner().invoke(main, ["check", str(faithful)])
    assert "Faithful note.md:88: warning: embeds 'nowhere.png'" in result.output


# -- the site ----------------------------------------------------------------------------------------------


def test_every_heading_and_paragraph_of_a_note_reaches_its_page(faithful: Path):
    out = built(faithful)
    collection = load(load_settings(faithful))
    md = make_markdown()
    for note in collection.notes.values():
        soup = page(out, _slug(out, note.title))
        shown = words(soup.select_one("article").get_text(" "))  # type: ignore[union-attr]
        tokens = md.parse(blank_comments(note.body))
        for i, token in enumerate(tokens):
            if token.type != "inline" or tokens[i - 1].type not in ("heading_open", "paragraph_open"):
                continue
            for child in token.children or []:
                if child.type == "text" and child.content.strip() and not child.content.strip().startswith("^"):
                    assert words(child.content.replace("^key-claim", "")) in shown, (note.path, child.content)
    faithful_page = words(page(out, "faithful-note").get_text(" "))
    assert "this sentence survives" in faithful_page and "The last paragraph." in faithful_page
    assert "private comment" not in faithful_page


def test_callouts_render_with_family_icon_fold_and_nesting(faithful: Path):
    soup = page(built(faithful), "faithful-note")
    callouts = body(soup).select(".callout")
    assert [c["data-callout"] for c in callouts] == ["info", "tldr", "faq", "warning", "mystery"]
    assert [c["class"][1] for c in callouts] == ["callout--info", "callout--abstract", "callout--question", "callout--warning", "callout--note"]
    info, summary, faq, warning, mystery = callouts
    assert info.name == "div" and info.select_one(".callout__title a.wikilink") is not None
    assert info.select_one(".callout__body li") is not None and info.select_one(".callout__body code") is not None
    assert summary.name == "details" and summary.has_attr("open")
    assert faq.name == "details" and not faq.has_attr("open") and faq.select_one("summary").get_text(strip=True) == "Folded question"  # type: ignore[union-attr]
    assert warning.find_parent("details") is faq  # nested
    assert all(c.select_one(".callout__icon svg") is not None for c in callouts)
    assert "[!" not in body(soup).get_text()
    assert mystery.select_one(".callout__label").get_text() == "An unknown type"  # type: ignore[union-attr]


def test_math_is_typeset_to_mathml_with_its_tex_intact(faithful: Path):
    soup = page(built(faithful), "faithful-note")
    maths = body(soup).find_all("math")
    assert len(maths) == 3
    display = [m for m in maths if m.get("display") == "block"]
    assert len(display) == 1 and len(display[0].find_all("mtr")) == 2  # the aligned rows
    assert "$5 and $10" in body(soup).get_text()
    assert not body(soup).select(".math-error")
    annotations = [a.get_text() for a in body(soup).find_all("annotation")]
    if annotations:  # the TeX as written, backslashes included
        assert any("\\frac{a}{b}\\,\\sqrt{x}" in a for a in annotations)


def test_code_is_highlighted_with_a_label_and_unknown_languages_stay_plain(faithful: Path):
    out = built(faithful)
    soup = page(out, "faithful-note")
    figures = body(soup).select("figure.code")
    assert [f.select_one(".code__lang").get_text() for f in figures] == ["python", "nosuchlanguage"]  # type: ignore[union-attr]
    assert figures[0].select("span.k") and figures[0].select("span.c1")
    assert not figures[1].select("span") and "plain <text> stays plain" in figures[1].get_text()
    assert any(link["href"] == "../assets/code.css" for link in soup.select("link[rel=stylesheet]"))
    css = (out / "assets" / "code.css").read_text()
    assert ".highlight .k" in css and "prefers-color-scheme: dark" in css


def test_mermaid_is_loaded_only_where_a_diagram_is(faithful: Path):
    out = built(faithful)
    soup = page(out, "faithful-note")
    assert body(soup).select_one("figure.mermaid-diagram pre.mermaid-source code").get_text().startswith("graph TD")  # type: ignore[union-attr]
    scripts = [s["src"] for s in soup.find_all("script")]
    assert "../assets/vendor/mermaid.min.js" in scripts and "../assets/mermaid-init.js" in scripts
    assert scripts.index("../assets/vendor/mermaid.min.js") < scripts.index("../assets/mermaid-init.js")
    other = [s["src"] for s in page(out, "media").find_all("script")]
    assert not any("mermaid" in s for s in other)
    assert (out / "assets" / "vendor" / "mermaid.min.js").stat().st_size > 1_000_000


def test_highlights_strikethrough_footnotes_tasks_and_tables(faithful: Path):
    soup = body(page(built(faithful), "faithful-note"))
    assert soup.find("mark").get_text() == "Highlighted words"  # type: ignore[union-attr]
    assert soup.find("s").get_text() == "struck words"  # type: ignore[union-attr]
    assert soup.select(".footnotes li") and soup.select("input[type=checkbox][checked]")
    assert soup.select_one("table a.wikilink").get_text() == "cell link"  # type: ignore[union-attr]


def test_attachments_are_copied_once_and_shown_at_their_size(faithful: Path):
    out = built(faithful)
    soup = body(page(out, "faithful-note"))
    images = soup.select("img.attachment")
    assert [img["src"] for img in images] == [
        "../attachments/attachments/Engelbart.png",
        "../attachments/attachments/Engelbart.png",
        "../attachments/attachments/Engelbart.png",
        "../attachments/papers/figure%20one.png",
        "../attachments/attachments/diagram.svg",
    ]
    assert images[1]["width"] == "120" and not images[1].has_attr("height")
    assert (images[2]["width"], images[2]["height"]) == ("80", "40")
    assert images[3]["alt"] == "A figure"
    for img in images:
        assert (out / "notes" / img["src"].replace("%20", " ")).is_file()
    assert (out / "attachments" / "attachments" / "Engelbart.png").read_bytes() == (faithful / "attachments" / "Engelbart.png").read_bytes()
    # the SVG is shown as an image, never inlined: the only inline SVGs are the callouts' icons
    assert all(svg.find_parent(class_="callout__icon") for svg in soup.find_all("svg")) and not soup.find("script")
    pdf = soup.select_one(".attachment-pdf")
    assert pdf is not None and pdf.iframe["src"] == "../attachments/attachments/paper.pdf" and pdf.a["href"] == pdf.iframe["src"]  # type: ignore[index]
    assert soup.select_one("audio.attachment[controls]")["src"] == "../attachments/attachments/tone.wav"  # type: ignore[index]
    missing = soup.select(".attachment-missing")
    assert [m.get_text() for m in missing] == ["Missing attachment: nowhere.png"]
    remote = soup.select_one("a.image-link")
    assert remote is not None and remote["href"] == "https://example.com/chart.png" and "example.com" in remote.get_text()
    assert not soup.select("img[src^=http]")
    media = page(out, "media")  # its one paragraph is the lede, in the page's header
    assert media.select_one(".lede .attachment-missing") is not None
    assert media.select_one(".lede a.attachment-link")["href"] == "../attachments/attachments/paper.pdf"  # type: ignore[index]
    # files no note uses are not copied
    assert sorted(str(p.relative_to(out / "attachments")) for p in (out / "attachments").rglob("*") if p.is_file()) == [
        "attachments/Engelbart.png",
        "attachments/diagram.svg",
        "attachments/paper.pdf",
        "attachments/tone.wav",
        "papers/figure one.png",
    ]


def test_remote_images_only_when_the_setting_allows_them(faithful: Path):
    out = built(faithful, remote_images=True)
    soup = page(out, "faithful-note")
    assert body(soup).select_one("img.remote")["src"] == "https://example.com/chart.png"  # type: ignore[index]
    csp = soup.find("meta", attrs={"http-equiv": "Content-Security-Policy"})["content"]  # type: ignore[index]
    assert "img-src 'self' data: https:" in csp
    default = page(built(faithful), "faithful-note")
    assert "https:" not in default.find("meta", attrs={"http-equiv": "Content-Security-Policy"})["content"]  # type: ignore[index]


def test_with_raw_html_allowed_the_cleaner_keeps_math_icons_and_attachments_and_nothing_hostile(faithful: Path):
    (faithful / "notegraph.toml").write_text('model = "fake/hash-64"\nallow_html = true\n')
    write(faithful, "Raw.md", 'Text <script>alert(1)</script> <svg onload="alert(2)"><circle r="3"/></svg> <iframe src="https://evil.example/"></iframe> end.\n')
    out = built(faithful)
    soup = body(page(out, "faithful-note"))
    assert len(soup.find_all("math")) == 3 and soup.find("annotation") is not None
    assert len(soup.select(".callout__icon svg")) == 5 and soup.select(".callout__icon svg path")
    assert len(soup.select("img.attachment")) == 5 and soup.select_one(".attachment-pdf iframe")["src"].startswith("../attachments/")  # type: ignore[index]
    raw = str(page(out, "raw").select_one("article"))
    assert "<script" not in raw and "onload" not in raw and "evil.example" not in raw and "end." in raw
    # the links the renderer made keep their targets (they were all stripped before)
    hrefs = [a.get("href") for a in soup.select("a.wikilink, a.attachment-link")]
    assert hrefs and all(hrefs) and all((out / "notes" / h.split("#")[0].replace("%20", " ")).is_file() for h in hrefs)
    (faithful / "notegraph.toml").write_text('model = "fake/hash-64"\nallow_html = true\nremote_images = true\n')
    assert body(page(built(faithful), "faithful-note")).select_one("img.remote")["src"] == "https://example.com/chart.png"  # type: ignore[index]


def test_a_changed_attachment_is_copied_again_and_an_unchanged_one_kept(faithful: Path):
    out = built(faithful)
    copy = out / "attachments" / "attachments" / "Engelbart.png"
    inode = copy.stat().st_ino
    # a note edit: the attachment is linked from the previous site, not copied
    (faithful / "Media.md").write_text("A note, edited.\n")
    built(faithful)
    assert copy.stat().st_ino == inode
    new = (faithful / "papers" / "figure one.png").read_bytes() + b"\0"
    (faithful / "papers" / "figure one.png").write_bytes(new)
    os.utime(faithful / "papers" / "figure one.png", ns=(1, 1))
    built(faithful)
    assert (out / "attachments" / "papers" / "figure one.png").read_bytes() == new


def test_transclusions_inline_notes_sections_and_blocks_and_stop_at_cycles(faithful: Path):
    out = built(faithful)
    soup = body(page(out, "faithful-note"))
    frames = soup.find_all("aside", class_="transclusion", recursive=False)
    sources = [f.select_one(".transclusion__source a").get_text() for f in frames]  # type: ignore[union-attr]
    assert sources == ["Transcluded", "Transcluded › Second section", "Transcluded", "Transcluded › Part › Deep heading"]
    whole, section, block, deep = frames
    assert "The first paragraph of the embedded note." in whole.get_text()
    assert section.select_one("h3,h4,h5,h6").get_text() == "Second section" and "Deep text" not in section.get_text()  # type: ignore[union-attr]
    assert words(block.select_one(".transclusion__body").get_text(" ")) == "The key claim of this note."  # type: ignore[union-attr]
    assert "Deep text under part." in deep.get_text() and "Second section" not in deep.get_text()
    # nesting: Transcluded embeds Level one, which embeds Level two ...; the page stops after three levels
    assert "Level one text." in whole.get_text() and "Level two text." in whole.get_text()
    assert "Level three text." not in whole.get_text()
    assert whole.select(".transclusion--stopped")
    # ids of the embedded text never repeat the page's
    ids = [t["id"] for t in soup.find_all(id=True)]
    assert len(ids) == len(set(ids))
    # an embed on a line of its own inside a paragraph (here a list item's) cuts it there
    item = next(li for li in soup.select("li") if "whose next line embeds" in li.get_text())
    assert item.select_one("aside.transclusion .transclusion__body").get_text(strip=True) == "The key claim of this note."  # type: ignore[union-attr]
    cycle = body(page(out, "cycle-a"))
    assert "Cycle B text." in cycle.get_text() and cycle.select_one(".transclusion__notice") is not None
    # the embedded text belongs to the page, not to the note's own text for ranking
    collection = load(load_settings(faithful))
    assert "first paragraph of the embedded note" not in collection.notes["Faithful note"].text


def test_an_edit_to_an_embedded_note_rewrites_the_pages_that_show_it(faithful: Path):
    out = built(faithful)
    (faithful / "Transcluded.md").write_text((faithful / "Transcluded.md").read_text().replace("Text of the second section.", "Edited second section."))
    built(faithful)
    assert "Edited second section." in body(page(out, "faithful-note")).get_text()


def test_nested_heading_links_land_on_the_last_heading(faithful: Path):
    soup = body(page(built(faithful), "faithful-note"))
    link = next(a for a in soup.select("a.wikilink") if "Deep heading" in a.get_text())
    assert link["href"] == "transcluded.html#deep-heading"


def test_text_shown_off_its_page_names_links_by_title(faithful: Path):
    out = built(faithful)
    index = (out / "assets" / "search-index.js").read_text()
    assert "cites Climbing towards NLU by its file name" in index and "cites bender-koller" not in index


def test_an_empty_note_is_listed_but_never_offered_as_related(faithful: Path):
    out = built(faithful)
    assert (out / "notes" / "empty-note.html").is_file()
    for path in (out / "notes").glob("*.html"):
        soup = BeautifulSoup(path.read_text(encoding="utf-8"), "lxml")
        titles = [a.get_text() for a in soup.select(".related__title")]
        assert "Empty note" not in titles, path.name


def test_an_opening_heading_is_content_unless_it_repeats_the_title(tmp_path: Path):
    notes = tmp_path / "n"
    write(notes, "Windowing Systems.md", "# macOS\n\nText.\n")
    write(notes, "Same.md", "# Same\n\nBody.\n")
    write(notes, "notegraph.toml", 'model = "fake/hash-64"\n')
    out = built(notes)
    soup = page(out, "windowing-systems")
    assert soup.h1.get_text() == "Windowing Systems" and body(soup).find("h2").get_text() == "macOS"  # type: ignore[union-attr]
    same = page(out, "same")
    assert same.h1.get_text() == "Same" and not re.search(r"\bSame\b", body(same).get_text()) if same.select_one(".note-body") else True


def _digest_of_a(notes: Path) -> bytes:
    from notegraph.graph.memo import note_digests

    collection = load(load_settings(notes))
    chunks = type("Chunks", (), {"chunks": {}, "chunk_keys": {note_id: "same" for note_id in collection.notes}})()
    return note_digests(["a"], collection.notes, chunks, {}, {}, collection.display_names)["a"]


def _slug(out: Path, title: str) -> str:
    for path in (out / "notes").glob("*.html"):
        soup = BeautifulSoup(path.read_text(encoding="utf-8"), "lxml")
        if soup.h1 and soup.h1.get_text() == title:
            return path.stem
    raise AssertionError(f"no page titled {title}")


# -- in a real browser -------------------------------------------------------------------------------------


@pytest.mark.browser
def test_the_page_in_chromium_typesets_draws_folds_and_loads_everything_offline(faithful: Path):
    from browser_util import ARTIFACTS, CHROMIUM_ARGS, Watch, chromium_or_skip
    from playwright.sync_api import sync_playwright

    chromium = chromium_or_skip()
    out = built(faithful)
    # Chromium's own PDF viewer (chrome-extension://, chrome://) draws the embedded PDF: nothing leaves the machine
    watch = Watch(allowed=("file://", "chrome-extension://", "chrome://"))
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=chromium, args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport={"width": 1100, "height": 900})
            watch.attach(page)
            page.goto((out / "notes" / "faithful-note.html").as_uri())
            page.wait_for_function("() => document.querySelector('figure.mermaid-diagram').dataset.state === 'drawn'", timeout=20_000)
            assert page.locator("figure.mermaid-diagram .mermaid-svg svg").count() == 1
            assert page.locator("figure.mermaid-diagram pre.mermaid-source").is_hidden()
            # MathML laid out by the browser: every formula has a size, fractions stack
            sizes = page.evaluate("() => [...document.querySelectorAll('.note-body math')].map(m => m.getBoundingClientRect().height)")
            assert len(sizes) == 3 and all(h > 10 for h in sizes), sizes
            assert page.evaluate("() => document.querySelector('.note-body math mfrac').getBoundingClientRect().height") > 15
            # images load (the SVG too, as an image)
            page.evaluate("() => Promise.all([...document.images].map(i => i.decode().catch(() => null)))")
            widths = page.evaluate("() => [...document.querySelectorAll('img.attachment')].map(i => [i.getAttribute('src'), i.naturalWidth])")
            assert widths and all(w > 0 for _src, w in widths), widths
            # a folded callout opens on a click, without any script of ours
            faq = page.locator("details.callout[data-callout=faq]")
            assert not faq.evaluate("d => d.open") and page.get_by_text("The answer is hidden").is_hidden()
            faq.locator("summary").click()
            assert faq.evaluate("d => d.open") and page.get_by_text("The answer is hidden").is_visible()
            ARTIFACTS.mkdir(exist_ok=True)
            page.screenshot(path=str(ARTIFACTS / "faithful-note.png"), full_page=True)
        finally:
            browser.close()
    watch.assert_clean()


def test_the_rendering_docs_command_prints_what_they_say(tmp_path: Path):
    """docs/rendering.md quotes `notegraph check tests/fixtures/faithful`: the line it shows is printed."""
    docs = (Path(__file__).resolve().parent.parent / "docs" / "rendering.md").read_text(encoding="utf-8")
    quoted = re.search(r"`(Faithful note\.md:\d+: warning: [^`]+?)`;", docs.replace("\n", " "))
    assert quoted is not None
    notes = tmp_path / "vault"
    shutil.copytree(VAULT, notes)
    result = CliRunner().invoke(main, ["check", str(notes)])
    assert " ".join(quoted.group(1).split()) in " ".join(result.output.split())


def test_related_on_the_command_line_reads_links_by_title(faithful: Path):
    import json

    built(faithful)
    for args in (["related", "Climbing towards NLU"], ["related", "cites by its file name"]):
        result = CliRunner().invoke(main, [*args, "--notes", str(faithful), "--json", "-k", "20"])
        assert result.exit_code == 0, result.output
        items = {item["id"]: item for item in json.loads(result.output)["results"]}
        assert "Stem links" in items, (args, list(items))
        assert "Climbing towards NLU" in items["Stem links"]["passage"] and "bender-koller" not in items["Stem links"]["passage"]


def test_renaming_a_note_rewrites_the_passages_that_quote_a_link_to_it(tmp_path: Path):
    """A passage on C's page quotes A, whose text links [[b]] by its file name and so reads b's title:
    renaming b must rewrite C's page although neither A nor C changed (graph.memo's digests hold the
    titles a note's links read by)."""
    notes = tmp_path / "n"
    words = "grounding repair dialogue turn taking evidence claim"
    write(notes, "a.md", f"---\ntitle: Alpha\nkind: concept\n---\nAlpha studies {words}, as [[b]] argued first.\n")
    write(notes, "b.md", "---\ntitle: Bee\n---\nA short note.\n")
    write(notes, "c.md", f"---\ntitle: Gamma\n---\nGamma also studies {words}, and [[a]] too.\n")
    # C's facts name A alone (one related note, no similar edges): only the quoted title can move its page
    write(notes, "notegraph.toml", 'model = "fake/hash-64"\nrelated_k = 1\nsimilar_k = 0\n')
    out = built(notes)

    def passages() -> list[str]:
        return [q.get_text() for q in page(out, "c").select(".evidence")]

    assert any("as Bee argued first" in p for p in passages()), passages()
    digest_before = _digest_of_a(notes)
    (notes / "b.md").write_text("---\ntitle: Wasp\n---\nA short note.\n")
    # in a collection this small every note is every other's candidate, so C's facts move anyway; in a
    # large one only A's digest, which the facts of the notes that quote A hold, carries the new title
    assert _digest_of_a(notes) != digest_before
    built(notes)
    assert any("as Wasp argued first" in p for p in passages()) and not any("Bee" in p for p in passages())


def test_obsidians_attachment_folder_decides_between_files_of_one_name_and_a_change_to_it_rebuilds(tmp_path: Path):
    notes = tmp_path / "n"
    png = (VAULT / "attachments" / "Engelbart.png").read_bytes()
    write(notes, "a/pic.png", png)
    write(notes, "b/pic.png", png + b"\0")
    write(notes, "Note.md", "An image:\n\n![[pic.png]]\n")
    write(notes, "notegraph.toml", 'model = "fake/hash-64"\n')
    write(notes, ".obsidian/app.json", '{"attachmentFolderPath": "b"}')
    out = built(notes)
    assert page(out, "note").select_one("img.attachment")["src"] == "../attachments/b/pic.png"  # type: ignore[index]
    write(notes, ".obsidian/app.json", '{"attachmentFolderPath": "a"}')
    built(notes)
    assert page(out, "note").select_one("img.attachment")["src"] == "../attachments/a/pic.png"  # type: ignore[index]
