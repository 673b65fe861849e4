"""The vendored browser libraries (scripts/vendor.py): every file is the one VENDORED.json names, with its
licence; the callout icons are plain inline SVG; and mermaid.min.js + mermaid-init.js draw diagrams in a
real Chromium from a file:// page under the site's CSP, show a syntax error as text beside the visible
source, follow the colour scheme, and fetch nothing."""

from __future__ import annotations

import hashlib
import html
import importlib.util
import json
import re
import shutil
import sys
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
from browser_util import CHROMIUM_ARGS, Watch, chromium_or_skip
from conftest import ROOT

STATIC = ROOT / "notegraph" / "render" / "static"
VENDOR = STATIC / "vendor"
MANIFEST = VENDOR / "VENDORED.json"
INIT_JS = STATIC / "mermaid-init.js"

CALLOUT_KEYS = {
    "note", "abstract", "info", "todo", "tip", "success", "question",
    "warning", "failure", "danger", "bug", "example", "quote",
}  # fmt: skip

ICON_ATTRIBUTES = ('width="16"', 'height="16"', 'aria-hidden="true"', 'focusable="false"', "viewBox=")
ICON_ATTRIBUTES += ('stroke="currentColor"',)

# the site's own policy (templates/base.html)
CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; "
    "object-src 'none'; base-uri 'none'"
)

GOOD = """flowchart LR
  A[Start] --> B{Is it ok?}
  B -->|yes| C[Done & dusted]
  B -->|no| A"""
# unterminated node shape: mermaid's flowchart parser rejects line 2; the <b> must come back as text
BROKEN = """flowchart LR
  A[<b>Start</b> --> (("""
PARSE_ERROR = "Parse error on line 2"

DRAWN_OR_FAILED = """() => {
  var figures = Array.prototype.slice.call(document.querySelectorAll('figure.mermaid-diagram'));
  return figures.length > 0 && figures.every(function (f) {
    return f.dataset.state === 'drawn' || f.dataset.state === 'error';
  });
}"""


def load_vendor_script() -> ModuleType:
    spec = importlib.util.spec_from_file_location("vendor_script", ROOT / "scripts" / "vendor.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # its dataclasses look their module up
    spec.loader.exec_module(module)
    return module


def manifest_packages() -> list[dict[str, Any]]:
    return list(json.loads(MANIFEST.read_text(encoding="utf-8"))["packages"])


# -- fast: the files on disk -------------------------------------------------------------------------------


def test_vendored_files_match_the_manifest() -> None:
    packages = manifest_packages()
    assert {p["name"] for p in packages} == {"mermaid", "lucide-static", "@fontsource/stix-two-math"}
    listed = set()
    for package in packages:
        assert re.fullmatch(r"\d+\.\d+\.\d+", package["version"]), package
        names = [f["file"] for f in package["files"]]
        for entry in package["files"]:
            path = VENDOR / entry["file"]
            assert path.is_file(), f"{package['name']}: {path} is missing (run python scripts/vendor.py)"
            data = path.read_bytes()
            assert hashlib.sha256(data).hexdigest() == entry["sha256"], f"{path} differs from VENDORED.json"
            listed.add(entry["file"])
        licence = VENDOR / package["licence_file"]
        assert package["licence_file"] in names, f"{package['name']}: the licence is not listed with its hash"
        assert licence.is_file() and licence.read_text(encoding="utf-8").strip(), (
            f"{licence} is missing or empty"
        )
    assert {"mermaid.min.js", "callout-icons.json", "mermaid.LICENSE", "lucide.LICENSE", "stix-two-math.woff2", "stix-two-math.LICENSE"} <= listed
    # nothing in vendor/ that the manifest does not account for
    assert {p.name for p in VENDOR.iterdir()} == listed | {"VENDORED.json"}


def test_mermaid_bundle_is_self_contained() -> None:
    # the same check scripts/vendor.py applies: a global `mermaid`, no import(), no chunk files, no CDN
    load_vendor_script().check_mermaid_bundle((VENDOR / "mermaid.min.js").read_bytes())


def test_callout_icons_are_plain_inline_svg() -> None:
    icons = json.loads((VENDOR / "callout-icons.json").read_text(encoding="utf-8"))
    assert set(icons) == CALLOUT_KEYS
    for key, svg in icons.items():
        assert isinstance(svg, str) and svg.startswith("<svg") and svg.endswith("</svg>"), key
        assert "\n" not in svg and "<!--" not in svg and "<?xml" not in svg, key
        assert "<script" not in svg.lower(), key
        assert not re.search(r"\son[a-z]+\s*=", svg, re.IGNORECASE), f"{key}: event handler attribute"
        assert not re.search(r"\sclass\s*=|href", svg, re.IGNORECASE), key
        for attribute in ICON_ATTRIBUTES:
            assert attribute in svg, f"{key}: no {attribute}"


def test_icon_minifier_refuses_anything_but_shapes() -> None:
    vendor = load_vendor_script()
    ok = (
        b'<?xml version="1.0"?><!-- c --><svg xmlns="http://www.w3.org/2000/svg" class="x" width="24" '
        b'height="24" viewBox="0 0 24 24" stroke="currentColor"><path d="M1 1h2"/></svg>'
    )
    assert vendor.minify_icon(ok) == (
        '<svg xmlns="http://www.w3.org/2000/svg" width="16" height="16" viewBox="0 0 24 24" '
        'stroke="currentColor" aria-hidden="true" focusable="false"><path d="M1 1h2"/></svg>'
    )
    for hostile in (
        b'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 24 24" onload="alert(1)"><path d="M1 1"/></svg>',
        b'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 24 24"><script>alert(1)</script></svg>',
        b'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 24 24"><path d="M1 1" onclick="x()"/></svg>',
        b'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 24 24"><foreignObject/></svg>',
    ):
        with pytest.raises(ValueError):
            vendor.minify_icon(hostile)


def test_mermaid_init_is_plain_es5_script() -> None:
    text = INIT_JS.read_text(encoding="utf-8")
    code = re.sub(r"/\*.*?\*/", "", text, flags=re.DOTALL)
    code = re.sub(r"^\s*//.*$", "", code, flags=re.MULTILINE)
    assert "=>" not in code and "`" not in code
    assert not re.search(r"\b(let|const|class|import|export|async|await)\b", code)
    assert "innerHTML" not in code.replace("holder.innerHTML = svg", ""), "only mermaid's SVG goes in as HTML"


# -- browser: mermaid from file:// under the site's CSP ----------------------------------------------------


def figure(source: str, figure_id: str) -> str:
    return (
        f'<figure class="mermaid-diagram" id="{figure_id}"><pre class="mermaid-source"><code>'
        f"{html.escape(source, quote=False)}</code></pre></figure>"
    )


def write_page(folder: Path, body: str, html_attrs: str = "", with_mermaid: bool = True) -> str:
    folder.mkdir(parents=True, exist_ok=True)
    scripts = '<script src="mermaid-init.js" defer></script>'
    if with_mermaid:
        shutil.copyfile(VENDOR / "mermaid.min.js", folder / "mermaid.min.js")
        scripts = '<script src="mermaid.min.js" defer></script>\n' + scripts
    shutil.copyfile(INIT_JS, folder / "mermaid-init.js")
    page = folder / "page.html"
    page.write_text(
        f"""<!doctype html>
<html lang="en"{html_attrs}><head><meta charset="utf-8">
<meta http-equiv="Content-Security-Policy" content="{CSP}">
<title>diagrams</title>
{scripts}
</head><body><main>
{body}
</main></body></html>
""",
        encoding="utf-8",
    )
    return page.as_uri()


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    executable = chromium_or_skip()
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        launched = p.chromium.launch(executable_path=executable, args=CHROMIUM_ARGS)
        try:
            yield launched
        finally:
            launched.close()


def open_page(browser: Any, url: str, color_scheme: str = "light") -> tuple[Any, Any, Watch]:
    context = browser.new_context(color_scheme=color_scheme)
    page = context.new_page()
    watch = Watch(allowed=("file://",))
    watch.attach(page)
    page.goto(url)
    page.wait_for_function(DRAWN_OR_FAILED, timeout=30_000)
    return context, page, watch


def state(page: Any, figure_id: str) -> dict[str, Any]:
    return dict(
        page.evaluate(
            """(id) => {
              var f = document.getElementById(id);
              var pre = f.querySelector('pre.mermaid-source');
              var error = f.querySelector('p.mermaid-error');
              var svg = f.querySelector('div.mermaid-svg > svg');
              var node = svg && svg.querySelector('.node rect, .node polygon');
              return {
                state: f.dataset.state,
                sourceHidden: pre.hidden,
                svg: !!svg,
                svgBoxes: svg ? svg.getBoundingClientRect().width * svg.getBoundingClientRect().height : 0,
                nodeFill: node ? getComputedStyle(node).fill : null,
                error: error ? error.textContent : null,
                errorRole: error ? error.getAttribute('role') : null,
                errorChildren: error ? error.children.length : null,
                labels: svg ? svg.textContent : ''
              };
            }""",
            figure_id,
        )
    )


def leftovers(page: Any) -> list[str]:
    """Anything in <body> other than the page's own <main>: mermaid's temporary #d<id> containers."""
    return list(
        page.evaluate(
            "() => Array.prototype.map.call(document.body.children, function (e) { return e.tagName + '#' + e.id; })"
            ".filter(function (s) { return s !== 'MAIN#'; })"
        )
    )


def luminance(css_colour: str) -> float:
    r, g, b = (int(v) for v in re.findall(r"\d+", css_colour)[:3])
    return 0.2126 * r + 0.7152 * g + 0.0722 * b


@pytest.mark.browser
def test_diagram_draws_and_syntax_error_shows_as_text(browser: Any, tmp_path: Path) -> None:
    url = write_page(tmp_path / "site", figure(GOOD, "good") + "\n" + figure(BROKEN, "broken"))
    context, page, watch = open_page(browser, url)
    try:
        good = state(page, "good")
        assert good["state"] == "drawn", good
        assert good["svg"] and good["svgBoxes"] > 0 and good["sourceHidden"], good
        assert "Done & dusted" in good["labels"] and "Is it ok?" in good["labels"], good["labels"]
        assert good["error"] is None

        broken = state(page, "broken")
        assert broken["state"] == "error", broken
        assert not broken["sourceHidden"] and page.locator("#broken pre.mermaid-source").is_visible()
        assert not broken["svg"]
        assert broken["error"].startswith("Diagram could not be drawn: " + PARSE_ERROR), broken["error"]
        assert broken["errorRole"] == "note"
        assert broken["errorChildren"] == 0, "the message must be text, never markup"
        assert page.locator("#broken p.mermaid-error").is_visible()

        assert leftovers(page) == [], "mermaid's temporary elements were left in <body>"
        assert watch.outside == [], watch.outside
        assert all(u.startswith("file://") for u in watch.requests)
        assert watch.dialogs == []
        # mermaid may report the broken diagram's parse error on the console; nothing else may be logged
        unexpected = [e for e in watch.errors if not (e.startswith("console: ") and PARSE_ERROR in e)]
        assert unexpected == [], "\n".join(unexpected)
    finally:
        context.close()


@pytest.mark.browser
def test_valid_diagram_logs_nothing_and_follows_dark_scheme(browser: Any, tmp_path: Path) -> None:
    url = write_page(tmp_path / "site", figure(GOOD, "good"))
    fills = {}
    for scheme in ("light", "dark"):
        context, page, watch = open_page(browser, url, color_scheme=scheme)
        try:
            good = state(page, "good")
            assert good["state"] == "drawn" and good["svg"] and good["sourceHidden"], (scheme, good)
            fills[scheme] = good["nodeFill"]
            assert leftovers(page) == []
            watch.assert_clean()  # not one console error, exception, dialog or request outside file://
        finally:
            context.close()
    assert fills["light"] and fills["dark"]
    assert luminance(fills["dark"]) < luminance(fills["light"]), fills


@pytest.mark.browser
def test_data_theme_overrides_colour_scheme(browser: Any, tmp_path: Path) -> None:
    def drawn(theme: str, scheme: str) -> dict[str, Any]:
        url = write_page(tmp_path / theme, figure(GOOD, "good"), html_attrs=f' data-theme="{theme}"')
        context, page, watch = open_page(browser, url, color_scheme=scheme)
        try:
            found = state(page, "good")
            watch.assert_clean()
            return found
        finally:
            context.close()

    forced_light, forced_dark = drawn("light", "dark"), drawn("dark", "light")
    assert forced_light["state"] == forced_dark["state"] == "drawn"
    assert luminance(forced_dark["nodeFill"]) < luminance(forced_light["nodeFill"])


@pytest.mark.browser
def test_missing_library_leaves_source_and_says_so(browser: Any, tmp_path: Path) -> None:
    url = write_page(tmp_path / "site", figure(GOOD, "a") + figure(BROKEN, "b"), with_mermaid=False)
    context, page, watch = open_page(browser, url)
    try:
        for figure_id in ("a", "b"):
            got = state(page, figure_id)
            assert got["state"] == "error" and not got["sourceHidden"], got
            assert got["error"].startswith("Diagram could not be drawn: "), got
            assert "mermaid" in got["error"]
        watch.assert_clean()
    finally:
        context.close()
