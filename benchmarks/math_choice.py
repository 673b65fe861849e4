"""TeX math on the site: build-time MathML (latex2mathml, in Python) against KaTeX and Temml (node).

    python benchmarks/math_choice.py [--no-shots] [--shots DIR] [--node-prefix DIR]

Formulas: every ``$$...$$`` block and ``$...$`` inline formula in the markdown under ../shared/corpora
(skipped with a note when it is missing), plus the hand-written list in benchmarks/math_formulas.txt.
Inline rule (pandoc's): ``$`` followed by a non-space, closing ``$`` preceded by a non-space and not
followed by a digit; ``\\$`` is no delimiter; fenced code, inline code and front matter are skipped.

Converters:
  latex2mathml        the PyPI package, in process (convert())
  notegraph           notegraph.render.math.tex_to_mathml (latex2mathml + fixes + allowlist), if present
  katex-mathml        KaTeX renderToString(output="mathml"), node
  katex-html          KaTeX renderToString() default htmlAndMathml (what KaTeX pages ship), node
  temml               Temml renderToString() (MathML for MathML Core), node, a second reference
The node converters need ``npm install --prefix /tmp/katexbench katex temml @fontsource/stix-two-math
@fontsource/noto-sans-math`` (or --node-prefix / MATHBENCH_NODE_PREFIX); without node they are skipped.

Per converter: formulas that raise; formulas whose output is not fully converted (merror, a literal
``\\command`` in a token element, KaTeX's error span); formulas whose rows are lost in Chromium (a literal
``&`` token or ``<mspace linebreak>``, which MathML Core ignores); mean/p95 time per formula; output
bytes. Then the bytes of the assets each choice makes a site ship, and, with Playwright and Debian's
Chromium, one screenshot page per converter of the hand-written list under --shots (default
/tmp/mathshots), side-by-side comparison pages, the fonts a KaTeX page downloads, and whether
``<semantics>``/``<annotation>`` changes a formula's box in Chromium.
"""

from __future__ import annotations

import argparse
import html
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
FORMULAS_FILE = HERE / "math_formulas.txt"
CORPORA = ROOT.parent / "shared" / "corpora"
CORPUS_DIRS = ("eips/EIPS", "dendron-site/vault", "rustc-dev-guide/src", "silverbullet-docs/docs")
DEFAULT_PREFIX = Path(os.environ.get("MATHBENCH_NODE_PREFIX", "/tmp/katexbench"))
sys.path.insert(0, str(ROOT / "tests"))
from browser_util import CHROMIUM_ARGS  # noqa: E402  (the tests' own flags for Debian's Chromium)

MATH_FONTS = {  # npm package -> (family, woff2 file inside the package)
    "@fontsource/stix-two-math": ("STIX Two Math", "files/stix-two-math-latin-400-normal.woff2"),
    "@fontsource/noto-sans-math": ("Noto Sans Math", "files/noto-sans-math-latin-400-normal.woff2"),
}


@dataclass(frozen=True)
class Formula:
    tex: str
    display: bool
    origin: str  # "hand" or the corpus folder


@dataclass
class Outcome:
    output: str | None  # None: raised
    seconds: float
    error: str = ""


@dataclass
class Column:
    name: str
    outcomes: list[Outcome] = field(default_factory=list)
    note: str = ""


# --- formulas ------------------------------------------------------------------------------------

_FENCE_RE = re.compile(r"^ {0,3}(`{3,}|~{3,})")
_INLINE_CODE_RE = re.compile(r"(?<!`)(`+)(?!`)(.+?)(?<!`)\1(?!`)", re.DOTALL)
_BLANK_LINE_RE = re.compile(r"\n[ \t]*\n")


def strip_code(text: str) -> str:
    """The markdown with front matter, fenced code blocks and inline code spans blanked out."""
    lines = text.split("\n")
    out: list[str] = []
    fence: str | None = None
    start = 0
    if lines and lines[0].strip() == "---":  # YAML front matter
        for k in range(1, len(lines)):
            if lines[k].strip() in ("---", "..."):
                out.extend([""] * (k + 1))
                start = k + 1
                break
    for line in lines[start:]:
        match = _FENCE_RE.match(line)
        if fence is None:
            if match:
                fence = match.group(1)
                out.append("")
                continue
            out.append(line)
        else:
            if (
                match
                and match.group(1)[0] == fence[0]
                and len(match.group(1)) >= len(fence)
                and not line.strip(" `~")
            ):
                fence = None
            out.append("")
    return _INLINE_CODE_RE.sub(lambda m: " " * len(m.group(0)), "\n".join(out))


def extract_math(text: str) -> Iterator[tuple[str, bool]]:
    """(tex, display) for each ``$$...$$`` and ``$...$`` in markdown text (code already blanked)."""
    i, n = 0, len(text)
    while i < n:
        c = text[i]
        if c == "\\":
            i += 2
            continue
        if c != "$":
            i += 1
            continue
        if text.startswith("$$", i):
            end = text.find("$$", i + 2)
            if end == -1:
                return
            tex = text[i + 2 : end].strip()
            if tex:
                yield tex, True
            i = end + 2
            continue
        if i + 1 < n and not text[i + 1].isspace():
            j = i + 1
            paragraph_end = _BLANK_LINE_RE.search(text, i)
            limit = paragraph_end.start() if paragraph_end else n
            while j < limit:
                if text[j] == "\\":
                    j += 2
                    continue
                if text[j] == "$" and not text[j - 1].isspace() and not (j + 1 < n and text[j + 1].isdigit()):
                    break
                j += 1
            if j < limit:
                yield text[i + 1 : j], False
                i = j + 1
                continue
        i += 1


def corpus_formulas(root: Path) -> tuple[list[Formula], int]:
    """Unique formulas of the corpora, and how many occurrences there were in all."""
    seen: dict[tuple[str, bool], Formula] = {}
    occurrences = 0
    for sub in CORPUS_DIRS:
        folder = root / sub
        if not folder.is_dir():
            continue
        for path in sorted(folder.rglob("*.md")):
            try:
                text = path.read_text(encoding="utf-8", errors="replace")
            except OSError:
                continue
            for tex, display in extract_math(strip_code(text)):
                occurrences += 1
                seen.setdefault((tex, display), Formula(tex, display, sub))
    return list(seen.values()), occurrences


def hand_formulas(path: Path = FORMULAS_FILE) -> list[Formula]:
    out = []
    for line in path.read_text(encoding="utf-8").splitlines():
        if not line.strip() or line.startswith("#"):
            continue
        display = line.startswith("D:")
        out.append(Formula(line[2:] if display else line, display, "hand"))
    return out


# --- checks ----------------------------------------------------------------------------------------

TOKENS = frozenset({"mi", "mo", "mn", "mtext", "ms"})
_COMMAND_RE = re.compile(r"\\[A-Za-z]+")


class _Scan(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.stack: list[str] = []
        self.unconverted = False
        self.rows_lost = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        names = dict(attrs)
        if tag == "merror" or "katex-error" in (names.get("class") or ""):
            self.unconverted = True
        if tag == "mspace" and "linebreak" in names:
            self.rows_lost = True
        if tag not in ("mspace", "mprescripts", "none", "br", "img"):  # void in practice
            self.stack.append(tag)

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.handle_starttag(tag, attrs)
        if self.stack and self.stack[-1] == tag:
            self.stack.pop()

    def handle_endtag(self, tag: str) -> None:
        if tag in self.stack:
            while self.stack and self.stack.pop() != tag:
                pass

    def handle_data(self, data: str) -> None:
        if not self.stack or "annotation" in self.stack:
            return
        if self.stack[-1] in TOKENS:
            if _COMMAND_RE.search(data):
                self.unconverted = True
            if data.strip() == "&":
                self.rows_lost = True


def scan(output: str) -> tuple[bool, bool]:
    """(unconverted, rows_lost) for a converter's HTML/MathML output."""
    parser = _Scan()
    parser.feed(output)
    parser.close()
    return parser.unconverted, parser.rows_lost


# --- converters --------------------------------------------------------------------------------------


def timed_python(convert: Callable[[str, bool], str], formulas: list[Formula]) -> list[Outcome]:
    out = []
    for f in formulas:
        start = time.perf_counter()
        try:
            result: str | None = convert(f.tex, f.display)
            error = ""
        except Exception as exc:  # noqa: BLE001 - a benchmark counts every failure
            result, error = None, f"{type(exc).__name__}: {exc}"[:200]
        out.append(Outcome(result, time.perf_counter() - start, error))
    return out


def latex2mathml_column(formulas: list[Formula]) -> Column | None:
    start = time.perf_counter()
    try:
        import latex2mathml.converter as l2m
    except ImportError:
        return Column("latex2mathml", note="not installed (pip install latex2mathml)")
    import_s = time.perf_counter() - start

    def convert(tex: str, display: bool) -> str:
        return l2m.convert(tex, display="block" if display else "inline")

    convert(r"\frac{a}{b}", True)  # warm-up
    from importlib.metadata import version

    col = Column(f"latex2mathml {version('latex2mathml')}", timed_python(convert, formulas))
    col.note = f"import {import_s * 1000:.0f} ms"
    return col


def notegraph_column(formulas: list[Formula]) -> Column | None:
    try:
        from notegraph.render import math as ng_math
    except ImportError:
        return None
    raw = getattr(ng_math.tex_to_mathml, "__wrapped__", ng_math.tex_to_mathml)
    raw(r"\frac{a}{b}", True)  # warm-up (imports latex2mathml)
    outcomes = timed_python(raw, formulas)
    for o in outcomes:  # the module never raises; its fallback is the error <code>
        if o.output is not None and 'class="math-error"' in o.output:
            title = re.search(r'title="([^"]*)"', o.output)
            o.error = html.unescape(title.group(1)) if title else "math-error"
            o.output = None
    return Column("notegraph.render.math", outcomes)


NODE_SCRIPT = r"""
const prefix = process.argv[2];
const t0 = process.hrtime.bigint();
const load = (name) => require(require.resolve(name, {paths: [prefix]}));
const katex = load("katex");
let temml = null;
try { temml = load("temml"); } catch (e) {}
const loadMs = Number(process.hrtime.bigint() - t0) / 1e6;
const formulas = JSON.parse(require("fs").readFileSync(0, "utf8"));
const converters = {
  "katex-mathml": (f) => katex.renderToString(f.tex, {displayMode: f.display, output: "mathml",
                                                      throwOnError: true, strict: "ignore", trust: false}),
  "katex-html": (f) => katex.renderToString(f.tex, {displayMode: f.display, output: "htmlAndMathml",
                                                    throwOnError: true, strict: "ignore", trust: false}),
};
if (temml) converters["temml"] = (f) => temml.renderToString(f.tex, {displayMode: f.display,
                                                    throwOnError: true, strict: false, trust: false});
const out = {load_ms: loadMs, versions: {katex: katex.version, temml: temml ? temml.version : null}, columns: {}};
for (const [name, fn] of Object.entries(converters)) {
  try { fn({tex: "\\frac{a}{b}", display: true}); } catch (e) {}
  const rows = [];
  for (const f of formulas) {
    const s = process.hrtime.bigint();
    let output = null, error = "";
    try { output = fn(f); } catch (e) { error = String(e.message || e).slice(0, 200); }
    rows.push({output, error, seconds: Number(process.hrtime.bigint() - s) / 1e9});
  }
  out.columns[name] = rows;
}
process.stdout.write(JSON.stringify(out));
"""


def node_columns(formulas: list[Formula], prefix: Path) -> tuple[list[Column], dict[str, Any], str]:
    node = shutil.which("node")
    if node is None:
        return [], {}, "node not found: KaTeX and Temml columns skipped"
    if not (prefix / "node_modules" / "katex").is_dir():
        return (
            [],
            {},
            (
                f"KaTeX not installed under {prefix}: KaTeX and Temml columns skipped "
                f"(npm install --prefix {prefix} katex temml @fontsource/stix-two-math @fontsource/noto-sans-math)"
            ),
        )
    with tempfile.NamedTemporaryFile("w", suffix=".js", delete=False) as fh:
        fh.write(NODE_SCRIPT)
        script = fh.name
    try:
        start = time.perf_counter()
        proc = subprocess.run(
            [node, script, str(prefix)],
            input=json.dumps([{"tex": f.tex, "display": f.display} for f in formulas]),
            capture_output=True,
            text=True,
            timeout=600,
        )
        wall = time.perf_counter() - start
    finally:
        os.unlink(script)
    if proc.returncode != 0:
        return [], {}, f"node failed: {proc.stderr.strip()[-300:]}"
    data = json.loads(proc.stdout)
    cols = []
    for name, rows in data["columns"].items():
        version = data["versions"]["temml" if name == "temml" else "katex"]
        label = f"{name} {version}"
        cols.append(Column(label, [Outcome(r["output"], r["seconds"], r["error"]) for r in rows]))
    meta = {"load_ms": data["load_ms"], "wall_s": wall, "versions": data["versions"]}
    return cols, meta, ""


# --- summary ------------------------------------------------------------------------------------------


@dataclass
class Summary:
    n: int
    errors: list[int]
    unconverted: list[int]
    rows_lost: list[int]
    mean_ms: float
    p95_ms: float
    mean_bytes: float
    total_bytes: int


def summarise(col: Column) -> Summary:
    errors, unconverted, rows_lost = [], [], []
    sizes = []
    for k, o in enumerate(col.outcomes):
        if o.output is None:
            errors.append(k)
            continue
        sizes.append(len(o.output.encode("utf-8")))
        bad, lost = scan(o.output)
        lost = lost and 'class="katex-html"' not in o.output  # KaTeX's HTML draws \\ rows; its MathML not
        if bad:
            unconverted.append(k)
        elif lost:
            rows_lost.append(k)
    times = sorted(o.seconds * 1000 for o in col.outcomes) or [0.0]
    p95 = times[min(len(times) - 1, int(round(0.95 * (len(times) - 1))))]
    return Summary(
        len(col.outcomes),
        errors,
        unconverted,
        rows_lost,
        statistics.fmean(times),
        p95,
        statistics.fmean(sizes) if sizes else 0.0,
        sum(sizes),
    )


def table(title: str, cols: list[Column]) -> str:
    lines = [
        f"#### {title}",
        "",
        "| converter | formulas | raise | not converted | rows lost | mean ms | p95 ms | mean bytes | total KB |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for col in cols:
        s = summarise(col)
        lines.append(
            f"| {col.name} | {s.n} | {len(s.errors)} | {len(s.unconverted)} | {len(s.rows_lost)} | "
            f"{s.mean_ms:.3f} | {s.p95_ms:.3f} | {s.mean_bytes:.0f} | {s.total_bytes / 1024:.1f} |"
        )
    return "\n".join(lines)


def failures(col: Column, formulas: list[Formula], limit: int = 12) -> list[str]:
    s = summarise(col)
    out = []
    for label, idx in (("raise", s.errors), ("not converted", s.unconverted), ("rows lost", s.rows_lost)):
        for k in idx[:limit]:
            f = formulas[k]
            why = col.outcomes[k].error if label == "raise" else ""
            tex = f.tex.replace("\n", " ")
            out.append(f"  {label:13} {'D' if f.display else 'i'} {tex[:90]!r} {why[:90]}")
        if len(idx) > limit:
            out.append(f"  {label:13} ... and {len(idx) - limit} more")
    return out


def asset_bytes(prefix: Path) -> list[tuple[str, int]]:
    nm = prefix / "node_modules"
    rows: list[tuple[str, int]] = []
    kdist = nm / "katex" / "dist"
    if kdist.is_dir():
        css = (kdist / "katex.min.css").stat().st_size
        woff2 = sum(p.stat().st_size for p in (kdist / "fonts").glob("*.woff2"))
        allfonts = sum(p.stat().st_size for p in (kdist / "fonts").iterdir())
        js = (kdist / "katex.min.js").stat().st_size
        rows += [
            ("KaTeX katex.min.css", css),
            (
                f"KaTeX fonts, {len(list((kdist / 'fonts').glob('*.woff2')))} woff2 (what Chromium fetches, at most)",
                woff2,
            ),
            ("KaTeX fonts, woff2+woff+ttf (as the npm package ships them)", allfonts),
            ("KaTeX katex.min.js (only for rendering in the browser)", js),
        ]
    tdist = nm / "temml" / "dist"
    if tdist.is_dir():
        rows.append(
            (
                "Temml Temml-Local.css + Temml.woff2",
                (tdist / "Temml-Local.css").stat().st_size + (tdist / "Temml.woff2").stat().st_size,
            )
        )
    for pkg, (family, rel) in MATH_FONTS.items():
        path = nm / pkg / rel
        if path.is_file():
            rows.append((f"{family} ({pkg}) woff2", path.stat().st_size))
    return rows


# --- screenshots -----------------------------------------------------------------------------------------


def font_face_css(prefix: Path) -> tuple[str, list[str]]:
    css, families = [], []
    for pkg, (family, rel) in MATH_FONTS.items():
        path = prefix / "node_modules" / pkg / rel
        if path.is_file():
            css.append(
                f"@font-face {{ font-family: '{family}'; src: url('{path.as_uri()}') format('woff2'); }}"
            )
            families.append(family)
    return "\n".join(css), families


def site_math_css() -> str:
    """The site stylesheet's math rules (notegraph/render/static/site.css), applied on every screenshot
    page, so that formulas are looked at as the site shows them. Its @font-face is left out: each page
    names the fonts it compares."""
    css = (ROOT / "notegraph" / "render" / "static" / "site.css").read_text(encoding="utf-8")
    rules = [line for line in css.splitlines() if line.startswith(("math", ".math-error")) and "font-family" not in line]
    return "\n".join(rules) + "\n"


SITE_CSS = site_math_css()

PAGE_CSS = (
    """
body { font: 16px/1.5 'DejaVu Serif', serif; margin: 16px; width: 1180px; }
table { border-collapse: collapse; width: 100%; }
td, th { border-top: 1px solid #ccc; padding: 6px 8px; vertical-align: middle; text-align: left; }
td.src { font: 11px/1.3 'DejaVu Sans Mono', monospace; color: #555; width: 300px; word-break: break-all; }
td.num { color: #999; font-size: 11px; width: 20px; }
.err { color: #b00; font: 12px monospace; }
"""
    + SITE_CSS
)


def page(title: str, head: str, rows: list[tuple[str, list[str]]], headers: list[str]) -> str:
    body = "".join(
        f"<tr><td class=num>{k + 1}</td><td class=src>{html.escape(src)}</td>"
        + "".join(f"<td>{cell}</td>" for cell in cells)
        + "</tr>\n"
        for k, (src, cells) in enumerate(rows)
    )
    ths = "".join(f"<th>{html.escape(h)}</th>" for h in headers)
    return (
        f"<!doctype html><html><head><meta charset=utf-8><title>{html.escape(title)}</title>"
        f"<style>{PAGE_CSS}</style>{head}</head><body><h3>{html.escape(title)}</h3>"
        f"<table><tr><th></th><th>TeX</th>{ths}</tr>\n{body}</table></body></html>"
    )


def cell(o: Outcome) -> str:
    return o.output if o.output is not None else f"<span class=err>{html.escape(o.error[:80])}</span>"


def screenshots(hand: list[Formula], cols: list[Column], prefix: Path, outdir: Path) -> list[str]:
    """Per-converter pages + comparison pages of the hand list; returns notes (fonts fetched, annotation)."""
    chromium = next(
        (p for p in ("/usr/bin/chromium", shutil.which("chromium")) if p and Path(p).is_file()), None
    )
    if chromium is None:
        return ["no Chromium: screenshots skipped"]
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        return ["playwright not installed: screenshots skipped"]
    outdir.mkdir(parents=True, exist_ok=True)
    faces, families = font_face_css(prefix)
    katex_css = prefix / "node_modules" / "katex" / "dist" / "katex.min.css"
    temml_css = prefix / "node_modules" / "temml" / "dist" / "Temml-Local.css"
    srcs = [("$$ " if f.display else "$ ") + f.tex for f in hand]
    pages: dict[str, tuple[str, str]] = {}  # file stem -> (html, kind)
    for col in cols:
        stem = col.name.split()[0].replace(".", "-")
        rows = [(s, [cell(o)]) for s, o in zip(srcs, col.outcomes, strict=True)]
        head = ""
        if stem == "katex-html" and katex_css.is_file():
            head = f"<link rel=stylesheet href='{katex_css.as_uri()}'>"
        if stem == "temml" and temml_css.is_file():
            head = f"<link rel=stylesheet href='{temml_css.as_uri()}'>"
        pages[stem] = (page(f"{col.name} (system math font)", head, rows, [col.name]), stem)
        if stem in ("latex2mathml", "notegraph-render-math", "temml"):
            for family in families:
                fam_head = head + f"<style>{faces}\nmath {{ font-family: '{family}', math; }}</style>"
                fam_stem = f"{stem}-{family.split()[0].lower()}"
                pages[fam_stem] = (page(f"{col.name} + {family}", fam_head, rows, [col.name]), fam_stem)
    # side by side, in chunks a screenshot can show legibly
    wanted = [
        c
        for c in cols
        if c.name.split()[0] in ("latex2mathml", "notegraph.render.math", "katex-html", "temml")
    ]
    if wanted:
        head = f"<style>{faces}\n.stix math {{ font-family: 'STIX Two Math', math; }}</style>"
        if katex_css.is_file():
            head += f"<link rel=stylesheet href='{katex_css.as_uri()}'>"
        headers, per_col = [], []
        for c in wanted:
            headers.append(c.name + (" + STIX Two Math" if "katex" not in c.name and families else ""))
            per_col.append(c)
        step = 12
        for start in range(0, len(hand), step):
            rows = [
                (
                    srcs[k],
                    [
                        f"<div class={'stix' if 'katex' not in c.name else ''}>{cell(c.outcomes[k])}</div>"
                        for c in per_col
                    ],
                )
                for k in range(start, min(len(hand), start + step))
            ]
            html_text = page(f"compare {start + 1}-{start + len(rows)}", head, rows, headers)
            html_text = html_text.replace("<tr><td class=num>", f"<tr><td class=num data-k={start}>", 1)
            pages[f"compare-{start // step + 1}"] = (html_text, "compare")
    notes = []
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=chromium, args=CHROMIUM_ARGS)
        try:
            for stem, (html_text, _kind) in pages.items():
                path = outdir / f"{stem}.html"
                path.write_text(html_text, encoding="utf-8")
                pg = browser.new_page(viewport={"width": 1220, "height": 800})
                fetched: list[str] = []
                pg.on("requestfinished", lambda r, fetched=fetched: fetched.append(r.url))
                pg.goto(path.as_uri())
                pg.evaluate("document.fonts.ready")
                pg.wait_for_timeout(200)
                pg.screenshot(path=str(outdir / f"{stem}.png"), full_page=True)
                if stem == "katex-html":
                    fonts = [Path(u).name for u in fetched if u.endswith((".woff2", ".woff", ".ttf"))]
                    size = sum(
                        (katex_css.parent / "fonts" / f).stat().st_size
                        for f in fonts
                        if (katex_css.parent / "fonts" / f).is_file()
                    )
                    notes.append(
                        f"the KaTeX page of the hand list fetched {len(fonts)} fonts, {size / 1024:.0f} KB: "
                        + ", ".join(sorted(fonts))
                    )
                pg.close()
            notes.append(annotation_check(browser, hand, cols, outdir))
        finally:
            browser.close()
    notes.append(f"screenshots: {outdir}/*.png")
    return notes


def annotation_check(browser: Any, hand: list[Formula], cols: list[Column], outdir: Path) -> str:
    """Does wrapping each formula in <semantics>...<annotation> change its box in Chromium?"""
    col = next((c for c in cols if c.name.startswith("latex2mathml")), None)
    if col is None:
        return "annotation check skipped (no latex2mathml)"
    plain, annotated = [], []
    for f, o in zip(hand, col.outcomes, strict=True):
        if o.output is None or not o.output.startswith("<math"):
            continue
        head, _, rest = o.output.partition(">")
        inner = rest[: -len("</math>")]
        plain.append(f"<p>{o.output}</p>")
        annotated.append(
            f'<p>{head}><semantics><mrow>{inner}</mrow><annotation encoding="application/x-tex">'
            f"{html.escape(f.tex)}</annotation></semantics></math></p>"
        )
    doc = "<!doctype html><meta charset=utf-8><body style='width:900px'><div id=a>{}</div><div id=b>{}</div>"
    path = outdir / "annotation-check.html"
    path.write_text(doc.format("".join(plain), "".join(annotated)), encoding="utf-8")
    pg = browser.new_page()
    pg.goto(path.as_uri())
    boxes = pg.evaluate(
        """() => ['a', 'b'].map(id => [...document.querySelectorAll('#' + id + ' math')].map(m => {
            const r = m.getBoundingClientRect(); return [Math.round(r.width * 10) / 10, Math.round(r.height * 10) / 10];
        }))"""
    )
    visible = pg.evaluate(
        "() => [...document.querySelectorAll('annotation')].filter(a => a.getBoundingClientRect().height > 0).length"
    )
    pg.close()
    same = sum(1 for a, b in zip(boxes[0], boxes[1], strict=True) if a == b)
    return (
        f"<semantics>+<annotation>: {same}/{len(boxes[0])} formulas keep the same box in Chromium; "
        f"{visible} annotations visible"
    )


# --- main -----------------------------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--node-prefix", type=Path, default=DEFAULT_PREFIX)
    ap.add_argument("--shots", type=Path, default=Path("/tmp/mathshots"))
    ap.add_argument("--no-shots", action="store_true")
    ap.add_argument("--corpora", type=Path, default=CORPORA)
    ap.add_argument("--show-failures", type=int, default=12, help="failing formulas listed per converter")
    args = ap.parse_args(argv)

    hand = hand_formulas()
    notes: list[str] = []
    if args.corpora.is_dir():
        corpus, occurrences = corpus_formulas(args.corpora)
        per = {sub: sum(1 for f in corpus if f.origin == sub) for sub in CORPUS_DIRS}
        notes.append(
            f"corpus: {occurrences} formulas in {args.corpora}, {len(corpus)} unique "
            f"({sum(f.display for f in corpus)} display); " + ", ".join(f"{k}: {v}" for k, v in per.items())
        )
    else:
        corpus = []
        notes.append(f"corpus skipped: {args.corpora} not found (hand-written formulas only)")
    sets = [("hand-written list (benchmarks/math_formulas.txt)", hand)]
    if corpus:
        sets.append(("corpus formulas (unique)", corpus))

    report: list[str] = []
    node_meta: dict[str, Any] = {}
    hand_cols: list[Column] = []
    for title, formulas in sets:
        cols: list[Column] = []
        for make in (latex2mathml_column, notegraph_column):
            col = make(formulas)
            if col is not None:
                if col.note and f"{col.name}: {col.note}" not in notes and "import 0 ms" not in col.note:
                    notes.append(f"{col.name}: {col.note}")
                if col.outcomes:
                    cols.append(col)
        ncols, meta, why = node_columns(formulas, args.node_prefix)
        if why:
            notes.append(why)
        else:
            node_meta = meta
            notes.append(
                f"node ({title}): load {meta['load_ms']:.0f} ms, whole process {meta['wall_s']:.2f} s "
                f"for {len(formulas)} formulas x {len(ncols)} converters"
            )
        cols += ncols
        report.append(table(f"{title}: {len(formulas)} formulas", cols))
        for col in cols:
            lines = failures(col, formulas, args.show_failures)
            if lines:
                report.append(f"\n{col.name} on {title}:\n" + "\n".join(lines))
        report.append("")
        if formulas is hand:
            hand_cols = cols

    report.append("#### assets a site ships")
    report.append("")
    report.append("| asset | KB |")
    report.append("| --- | ---: |")
    for name, size in asset_bytes(args.node_prefix):
        report.append(f"| {name} | {size / 1024:.1f} |")
    if not args.no_shots and hand_cols:
        notes += screenshots(hand, hand_cols, args.node_prefix, args.shots)
    del node_meta
    print("\n".join(report))
    print()
    for note in notes:
        print(f"note: {note}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
