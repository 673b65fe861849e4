"""notegraph.render.math: TeX -> MathML at build time, through an allowlist (no browser here)."""

from __future__ import annotations

import subprocess
import sys
import time
import xml.etree.ElementTree as ET
from html.parser import HTMLParser

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

pytest.importorskip("latex2mathml")

from notegraph.render.math import ATTRIBUTES, ELEMENTS, MAX_TEX, tex_to_mathml  # noqa: E402

CONSTRUCTS = [
    (r"\frac{a}{b} + \frac{1}{2}", False),
    (r"\frac{1}{1 + \frac{1}{1 + \frac{1}{x}}}", True),
    (r"\sqrt{2} + \sqrt[n]{x^n + y^n}", False),
    (r"\sum_{i=1}^{n} i^2 = \frac{n(n+1)(2n+1)}{6}", True),
    (r"\int_{0}^{\infty} e^{-x^2}\,dx = \frac{\sqrt{\pi}}{2}", True),
    (r"A = \begin{pmatrix} a_{11} & a_{12} \\ a_{21} & a_{22} \end{pmatrix}", True),
    (r"\begin{bmatrix} 1 & 0 \\ 0 & 1 \end{bmatrix}", True),
    (r"\begin{matrix} a & b \\ c & d \end{matrix}", True),
    (r"\begin{aligned} f(x) &= (x+1)^2 \\ &= x^2 + 2x + 1 \end{aligned}", True),
    (r"|x| = \begin{cases} x & \text{if } x \ge 0 \\ -x & \text{otherwise} \end{cases}", True),
    (r"x \in \mathbb{R}^n", False),
    (r"\mathcal{L}(\theta)", False),
    (r"\mathrm{d}x", False),
    (r"\operatorname{argmax}_x f(x)", True),
    (r"\text{if } x>0", False),
    (r"\left( \frac{a}{b} \right)", True),
    (r"\hat{x} \bar{y} \vec{v} \tilde{z}", False),
    (r"\mathbf{x}^\top \mathbf{W}", False),
    (r"\alpha \beta \Gamma \Omega \varepsilon", False),
    (r"a \le b \ne c \approx d \in E, \forall x \exists y : x \to \infty", False),
    (r"a\,b \; c \quad d", False),
    (r"a = b \\ c = d", True),
    (r"\boldsymbol{\alpha} + \boldsymbol{x}", False),
    (r"\underbrace{1 + \cdots + n}_{n} = \overbrace{a + \cdots + a}^{k}", True),
    (r"\binom{n}{k}", False),
    (r"\lim_{x\to 0} \frac{\sin x}{x} = 1", True),
    (r"x_i^2 + x_{i,j}^{(k)} + {x^2}_3 + a^{b^{c}}", False),
    (r"\underset{x}{\arg\min} f(x)", True),
    (r"\overline{AB} \; \widehat{xyz}", False),
    (r"\begin{gathered} a + b = c \\ d = e \end{gathered}", True),
    (r"\begin{align} x &= 1 \\ y &= 2 \end{align}", True),
    (r"\textbf{bold} \; \textit{it}", False),
]

HOSTILE = [
    r"\text{<script>alert(1)</script>}",
    r"\href{javascript:alert(1)}{x}",
    r"\style{color:red}{x}",
    r"\style{background:url(javascript:alert(1))}{x}",
    r"\unicode{x41}",
    r"\unicode{xD800}",
    r"\unicode{x0}",
    r"\class{evil}{x}",
    '\\color{red" onclick="alert(1)}{x}',
    "\\color{red' onmouseover='alert(1)}{x}",
    r"\text{<img src=x onerror=alert(1)>}",
    r"\mathrm{<svg onload=alert(1)>}",
    r"\def\a{\a\a}\a",
    "x+" * 25_000,  # 50 KB
    "{" * 5000,
    "{" * 5000 + "x" + "}" * 5000,
    r"\frac{" * 500 + "x" + "}{y}" * 500,
    r"\begin{matrix}"
    + r"\\".join("&".join(["a"] * 100) for _ in range(100))
    + r"\end{matrix}",  # 10,000 cells
    r"\begin{matrix}"
    + r"\\".join("&".join(["a"] * 95) for _ in range(100))
    + r"\end{matrix}",  # under MAX_TEX
    "a\x00b\x07c",
]


class _Markup(HTMLParser):
    """Every element and attribute of an HTML fragment, and its text."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.tags: list[str] = []
        self.attrs: list[tuple[str, str]] = []
        self.text: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append(tag)
        self.attrs.extend((name, value or "") for name, value in attrs)

    def handle_data(self, data: str) -> None:
        self.text.append(data)


def markup(fragment: str) -> _Markup:
    parser = _Markup()
    parser.feed(fragment)
    parser.close()
    return parser


def assert_safe(out: str) -> None:
    """Only allowlisted MathML (or the error <code>), no script, handlers or javascript: URLs."""
    m = markup(out)
    if m.tags[0] == "code":
        assert m.tags == ["code"], out[:300]
        assert sorted(name for name, _ in m.attrs) == ["class", "title"]
    else:
        assert m.tags[0] == "math", out[:300]
        assert set(m.tags) <= ELEMENTS, set(m.tags) - ELEMENTS
        assert {name for name, _ in m.attrs} <= ATTRIBUTES, out[:300]
    assert "<script" not in out.lower()
    for name, value in m.attrs:
        assert not name.lower().startswith("on") and name.lower() not in (
            "href",
            "src",
            "style",
            "xlink:href",
        )
        assert "javascript:" not in value.lower()


@pytest.fixture(autouse=True)
def fresh_cache():
    tex_to_mathml.cache_clear()
    yield
    tex_to_mathml.cache_clear()


@pytest.mark.parametrize(("tex", "display"), CONSTRUCTS)
def test_constructs_convert(tex: str, display: bool) -> None:
    out = tex_to_mathml(tex, display)
    assert out.startswith("<math"), out
    assert "math-error" not in out
    assert "merror" not in out
    body = out.split("<annotation")[0]
    assert "\\" not in body, body  # no command left unconverted
    assert "&amp;" not in body, body  # no stray alignment tab shown as text
    ET.fromstring(out)  # well-formed XML too
    assert_safe(out)


def test_display_flag() -> None:
    assert tex_to_mathml("x", True).startswith('<math display="block">')
    inline = tex_to_mathml("x", False)
    assert inline.startswith("<math>") and "display=" not in inline


def test_thin_space_survives() -> None:
    out = tex_to_mathml(r"a\,b", False)
    assert '<mspace width="0.167em">' in out


def test_aligned_has_two_rows() -> None:
    out = tex_to_mathml(r"\begin{aligned} a&=b\\ c&=d \end{aligned}", True)
    root = ET.fromstring(out)
    assert len(root.findall(".//mtr")) == 2
    assert len(root.findall(".//mtd")) == 4
    assert "&amp;" not in out.split("<annotation")[0]


def test_rows_outside_an_environment_in_display() -> None:
    root = ET.fromstring(tex_to_mathml(r"a = b \\ c = d", True))
    assert len(root.findall(".//mtr")) == 2
    inline = tex_to_mathml(r"a \\ b", False)  # MathML Core has no line breaks: nothing is shown for it
    assert "linebreak" not in inline and "<mtr>" not in inline


def test_backslashes_reach_the_converter_as_written() -> None:
    assert '<mo stretchy="false">{</mo>' in tex_to_mathml(r"\{ x \}", False)
    out = tex_to_mathml(r"\begin{matrix} a & b \\ c & d \end{matrix}", True)
    assert out.count("<mtr>") == 2


def test_annotation_keeps_the_tex() -> None:
    out = tex_to_mathml(r"\frac{a}{b} < c & d", False)
    assert '<annotation encoding="application/x-tex">\\frac{a}{b} &lt; c &amp; d</annotation>' in out
    assert out.endswith("</annotation></semantics></math>")


def test_chromium_fixes() -> None:
    assert '<mi mathvariant="normal">d</mi>' in tex_to_mathml(r"\mathrm{d}x", False)
    assert "\U0001d736" in tex_to_mathml(r"\boldsymbol{\alpha}", False)  # bold italic alpha
    assert "\U0001d41b\U0001d428\U0001d425\U0001d41d" in tex_to_mathml(r"\textbf{bold}", False)
    assert "mathvariant" not in tex_to_mathml(r"\mathbf{x} \boldsymbol{y} \mathscr{F}", False)
    lim = tex_to_mathml(r"\lim_{x\to 0} f", True)
    assert '<munder><mo movablelimits="true">lim</mo>' in lim
    log = tex_to_mathml(r"n \log n", False)
    assert '<mi>log</mi><mo>\u2061</mo><mspace width="0.1667em"></mspace>' in log
    assert '<mspace width="0.1667em"></mspace><mi>log</mi>' in log
    assert "<mi>\u221e</mi>" in tex_to_mathml(r"x \to \infty", False)
    assert "<mo>\u27fa</mo>" in tex_to_mathml(r"A \iff B", False)
    assert "<mo>:</mo>" in tex_to_mathml(r"f: A \to B", False)
    vmatrix = tex_to_mathml(r"\begin{vmatrix} a \end{vmatrix} = 1", True)
    assert '<mrow><mo stretchy="true" form="prefix">|</mo><mtable>' in vmatrix
    assert '<mo stretchy="false" form="postfix">|</mo>' in tex_to_mathml(r"|x| = 1", False)


@pytest.mark.parametrize("tex", HOSTILE, ids=lambda t: t[:30].encode("unicode_escape").decode())
@pytest.mark.parametrize("display", [False, True])
def test_hostile_input(tex: str, display: bool) -> None:
    start = time.perf_counter()
    out = tex_to_mathml(tex, display)
    assert time.perf_counter() - start < 2.0  # ~0.4 s for the longest accepted formula on a CI core
    assert_safe(out)
    assert "\x00" not in out and "\x07" not in out


def test_hostile_text_is_escaped_text() -> None:
    out = tex_to_mathml(r"\text{<script>alert(1)</script>}", False)
    assert "<mtext>&lt;script&gt;alert(1)&lt;/script&gt;</mtext>" in out


@pytest.mark.parametrize(
    ("tex", "reason"),
    [
        (r"\href{javascript:alert(1)}{x}", "attribute href"),
        (r"\style{color:red}{x}", "attribute style"),
        (r"\class{a}{x}", "attribute class"),
        (r"\foo x", "unsupported command \\foo"),
        (r"\unicode{xD800}", "character U+D800"),
        ("x+" * (MAX_TEX // 2 + 1), "longer than"),
        ("{" * 5000, "nested too deeply"),
        (r"\frac{a", "mfrac"),
    ],
)
def test_rejected_formulas_fall_back_to_code(tex: str, reason: str) -> None:
    out = tex_to_mathml(tex, False)
    assert out.startswith('<code class="math-error" title="cannot typeset: ')
    title = markup(out).attrs[1][1]
    assert reason in title, title


def test_error_fallback_escapes_its_tex() -> None:
    out = tex_to_mathml(r"\foo <b onclick='x'>&amp;", True)
    assert out == (
        '<code class="math-error" title="cannot typeset: unsupported command \\foo">'
        "\\foo &lt;b onclick='x'&gt;&amp;amp;</code>"
    )
    assert markup(out).tags == ["code"]


def test_memoised_and_bounded() -> None:
    assert tex_to_mathml.cache_info().maxsize == 4096
    tex_to_mathml("x^2", False)
    tex_to_mathml("x^2", False)
    assert tex_to_mathml.cache_info().hits == 1


def test_latex2mathml_is_imported_lazily() -> None:
    code = "import sys, notegraph.render.math as m; assert 'latex2mathml' not in sys.modules; m.tex_to_mathml('x', False); assert 'latex2mathml' in sys.modules"
    subprocess.run([sys.executable, "-c", code], check=True)


_TEX_PIECES = st.sampled_from(
    list("{}^_&\\$%#~ ax1+=<>\"'")
    + [
        r"\frac",
        r"\sqrt",
        r"\begin{matrix}",
        r"\end{matrix}",
        r"\\",
        r"\left(",
        r"\right)",
        r"\text{",
        r"\mathrm{",
        r"\begin{aligned}",
        r"\end{aligned}",
        r"\href{",
        r"\style{",
        r"\unicode{",
        r"\def",
        r"\hat",
        r"\log",
        r"\lim",
        "<script>",
    ]
)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(_TEX_PIECES, max_size=40).map("".join), st.booleans())
def test_never_raises_and_stays_safe(tex: str, display: bool) -> None:
    out = tex_to_mathml(tex, display)
    assert out.startswith(("<math", '<code class="math-error"'))
    assert_safe(out)
    if out.startswith("<math"):
        ET.fromstring(out)
