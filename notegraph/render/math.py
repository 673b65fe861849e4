"""TeX -> MathML at build time, so that pages typeset their math without a script (Chromium renders
MathML Core). The converter is latex2mathml (imported lazily: the CLI stays fast), with

- a few rewrites of the TeX for what it lacks or gets wrong: ``aligned``/``gathered`` and their kin
  (they would come out on one line with literal ``&``), ``\\\\`` outside an environment in display math,
  ``\\mathrm{x}`` (a single letter came out italic), ``\\arg``, ``\\label``;
- fixes of its tree for MathML Core as Chromium implements it: ``mathvariant`` other than ``normal``
  becomes the Unicode mathematical alphanumerics (Chromium ignores the attribute), function names get
  their thin spaces, ``\\lim``/``\\max``/``\\operatorname*`` take their limits below in display,
  delimiters that TeX would not stretch stop stretching, a matrix's delimiters do stretch, ``\\infty``
  is an ordinary symbol, primes are not raised twice;
- an allowlist: the tree is re-serialised with only the MathML elements and attributes below, its text
  escaped; anything else (``\\href``, ``\\style``, ``\\class``, raw HTML in ``\\text``...) and anything
  that latex2mathml left unconverted (a literal ``\\command``) gives the error ``<code>`` instead.

latex2mathml builds an ElementTree tree and then serialises it without escaping text (``\\text{a<b}``
comes out as ``<mtext>a<b</mtext>``), so this module takes the tree (``convert_to_element``) rather
than parsing that string, and writes the markup itself.
"""

from __future__ import annotations

import functools
import html
import re
import unicodedata
from typing import Any

MAX_TEX = 20_000  # characters; longer formulas are not converted (latex2mathml: ~0.3 s at 20,000)
MAX_DEPTH = 200  # nesting of the MathML tree

ELEMENTS = frozenset(
    "math semantics annotation mrow mi mn mo ms mtext mspace msub msup msubsup mfrac msqrt mroot mstyle "
    "mpadded mphantom menclose munder mover munderover mtable mtr mtd mmultiscripts mprescripts none "
    "merror".split()
)
ATTRIBUTES = frozenset(
    "display mathvariant displaystyle scriptlevel stretchy fence separator lspace rspace minsize maxsize "
    "movablelimits accent accentunder linethickness columnalign rowalign columnspacing rowspacing "
    "columnlines rowlines frame width height depth voffset notation encoding form symmetric largeop "
    "mathcolor mathbackground".split()
)
DROPPED_ATTRIBUTES = frozenset({"linebreak", "xmlns"})  # harmless and useless here: left out silently
_VALUE_RE = re.compile(r"[A-Za-z0-9 .+\-#%]{0,64}")
_CHARREF_RE = re.compile(r"&#(?:x([0-9A-Fa-f]{1,6})|([0-9]{1,7}));")
_COMMAND_RE = re.compile(r"\\(?:[A-Za-z]+|[|{}])")
_CONTROL_RE = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")

# --- TeX rewrites ---------------------------------------------------------------------------------

_ENVIRONMENTS = {  # environment latex2mathml lacks -> one it has ("" = drop the wrapper)
    "aligned": "align*",
    "align": "align*",  # numbered: each formula would count from (1)
    "alignat": "align*",
    "alignat*": "align*",
    "alignedat": "align*",
    "flalign": "align*",
    "flalign*": "align*",
    "gathered": "displaylines",
    "gather": "displaylines",
    "gather*": "displaylines",
    "multline": "displaylines",
    "multline*": "displaylines",
    "equation": "",
    "equation*": "",
}
_TOKEN_RE = re.compile(r"\\(?:[A-Za-z]+|.)|[{}&]|[^\\{}&]+", re.DOTALL)
_ENV_ARG_RE = re.compile(r"\s*\{([A-Za-z]+\*?)\}")
_ALIGNAT_ARG_RE = re.compile(r"\s*\{\s*[0-9]+\s*\}")
_BRACE_ARG_RE = re.compile(r"\s*\{[^{}]*\}")
_OPEN_BRACE_RE = re.compile(r"\s*\{")


def rewrite_tex(tex: str, display: bool) -> str:
    """The TeX with the environments and commands latex2mathml lacks replaced by ones it has."""
    out: list[str] = []
    pos = 0
    braces = envs = 0
    top_break = False
    while pos < len(tex):
        m = _TOKEN_RE.match(tex, pos)
        assert m is not None  # the pattern matches any character
        token, pos = m.group(0), m.end()
        if token in ("\\begin", "\\end"):
            env = _ENV_ARG_RE.match(tex, pos)
            if env is not None:
                envs += 1 if token == "\\begin" else -1
                name = env.group(1)
                pos = env.end()
                if name in _ENVIRONMENTS:
                    if token == "\\begin" and (name.startswith("alignat") or name == "alignedat"):
                        arg = _ALIGNAT_ARG_RE.match(tex, pos)  # {number of columns}
                        pos = arg.end() if arg else pos
                    new = _ENVIRONMENTS[name]
                    out.append(f"{token}{{{new}}}" if new else "{" if token == "\\begin" else "}")
                else:
                    out.append(f"{token}{{{name}}}")
                continue
        elif token == "\\mathrm":
            brace = _OPEN_BRACE_RE.match(tex, pos)
            if brace is not None:  # \mathrm{d} came out italic; {\rm d} does not
                out.append("{\\rm ")
                pos = brace.end()
                braces += 1
                continue
        elif token == "\\arg":
            token = "\\operatorname{arg}"
        elif token in ("\\label", "\\nonumber", "\\notag"):
            arg = _BRACE_ARG_RE.match(tex, pos) if token == "\\label" else None
            pos = arg.end() if arg else pos
            continue
        elif token == "{":
            braces += 1
        elif token == "}":
            braces -= 1
        elif token == "\\\\" and braces == 0 and envs == 0:
            top_break = True
        out.append(token)
    result = "".join(out)
    if top_break and display:  # rows outside an environment: one centred row each, as MathJax does
        result = "\\begin{displaylines}" + result + "\\end{displaylines}"
    return result


# --- tree fixes for MathML Core ---------------------------------------------------------------------

_VARIANTS = {
    "bold": "BOLD",
    "italic": "ITALIC",
    "bold-italic": "BOLD ITALIC",
    "double-struck": "DOUBLE-STRUCK",
    "script": "SCRIPT",
    "bold-script": "BOLD SCRIPT",
    "fraktur": "FRAKTUR",
    "bold-fraktur": "BOLD FRAKTUR",
    "sans-serif": "SANS-SERIF",
    "bold-sans-serif": "SANS-SERIF BOLD",
    "sans-serif-italic": "SANS-SERIF ITALIC",
    "sans-serif-bold-italic": "SANS-SERIF BOLD ITALIC",
    "monospace": "MONOSPACE",
}
_LETTERLIKE = {"FRAKTUR": "BLACK-LETTER", "ITALIC SMALL H": "PLANCK CONSTANT"}


@functools.cache
def _styled_char(ch: str, variant: str) -> str:
    """``ch`` in a mathematical alphanumeric style (U+1D400...), or ``ch`` where Unicode has none."""
    try:
        name = unicodedata.name(ch)
    except ValueError:
        return ch
    for prefix, repl in (
        ("LATIN CAPITAL LETTER ", "CAPITAL "),
        ("LATIN SMALL LETTER ", "SMALL "),
        ("GREEK CAPITAL LETTER ", "CAPITAL "),
        ("GREEK SMALL LETTER ", "SMALL "),
        ("GREEK ", ""),
        ("DIGIT ", "DIGIT "),
    ):
        if name.startswith(prefix):
            name = repl + name[len(prefix) :]
            break
    else:
        if name not in ("NABLA", "PARTIAL DIFFERENTIAL"):
            return ch
    name = name.replace("LUNATE EPSILON SYMBOL", "EPSILON SYMBOL")
    style = _VARIANTS[variant]
    candidates = [f"MATHEMATICAL {style} {name}"]
    if f"{style} {name}" in _LETTERLIKE:  # the holes of the block are older letterlike symbols
        candidates.append(_LETTERLIKE[f"{style} {name}"])
    candidates.append(f"{_LETTERLIKE.get(style, style)} {name}")
    for candidate in candidates:
        try:
            return unicodedata.lookup(candidate)
        except KeyError:
            continue
    return ch


_FUNCTIONS = frozenset(
    "log ln lg exp sin cos tan cot sec csc sinh cosh tanh coth arcsin arccos arctan deg dim hom ker".split()
)
_LIMIT_OPERATORS = frozenset({"lim", "max", "min", "sup", "inf"})  # latex2mathml omits movablelimits
_FENCES = frozenset("()[]{}|\u2016\u2308\u2309\u230a\u230b\u27e8\u27e9\u2223\u2225")
_BARS = frozenset("|\u2016")
_OPENERS = frozenset("([{\u2308\u230a\u27e8")
_ORDINARY_OPERATORS = frozenset("\u221e\u2205\u2207\u2202")  # infinity, empty set, nabla, partial
_PRIMES = frozenset("\u2032\u2033\u2034\u2057")
# elements whose children form a row (an inferred mrow); the others have a fixed number of children
_ROWS = frozenset("math mrow mstyle msqrt mpadded mphantom menclose mtd merror".split())
_ARITY = {
    "msub": 2,
    "msup": 2,
    "mfrac": 2,
    "mroot": 2,
    "munder": 2,
    "mover": 2,
    "msubsup": 3,
    "munderover": 3,
}
_SMALL_ACCENTS = "\u02d9\u00a8\u02c7\u02d8\u00b4`\u02da"  # \dot \ddot \check \breve \acute \grave \mathring
_SCRIPTS = {"msub": "munder", "msup": "mover", "msubsup": "munderover"}


class Rejected(Exception):
    """The formula cannot be shown as MathML; the message says why."""


def _decode(text: str | None) -> str:
    """latex2mathml's element text holds character references as literal ``&#x...;`` strings."""
    if not text:
        return ""

    def char(m: re.Match[str]) -> str:
        code = int(m.group(1), 16) if m.group(1) else int(m.group(2))
        if (
            code in (0x9, 0xA, 0xD)
            or 0x20 <= code <= 0xD7FF
            or 0xE000 <= code <= 0xFFFD
            or 0x10000 <= code <= 0x10FFFF
        ):
            if not 0x7F <= code <= 0x9F:
                return chr(code)
        raise Rejected(f"character U+{code:04X}")

    return _CHARREF_RE.sub(char, text)


def _element(tag: str, text: str = "", **attrib: str) -> Any:
    from xml.etree.ElementTree import Element

    el = Element(tag, attrib)
    el.text = text
    return el


def _is_arrow(ch: str) -> bool:
    code = ord(ch)
    return 0x2190 <= code <= 0x21FF or 0x27F0 <= code <= 0x27FF or 0x2900 <= code <= 0x297F


def _is_function(el: Any) -> bool:
    base = el[0] if el.tag in ("msub", "msup", "msubsup") and len(el) else el
    return base.tag == "mi" and (base.text or "") in _FUNCTIONS


def _fix(el: Any, depth: int = 0, variant: str | None = None) -> None:
    """Fix latex2mathml's tree in place for MathML Core (see the module docstring)."""
    if depth > MAX_DEPTH:
        raise Rejected("nested too deeply")
    own = el.attrib.pop("mathvariant", None)
    variant = own or variant
    if el.tag in ("mi", "mn", "mo", "mtext", "ms") and len(el) and not (el.text or "").strip():
        el.tag = "mrow"  # \mathop{...}, \mathbin{...}: a token around elements; the elements, then
    if el.tag in ("mi", "mn", "mo", "mtext", "ms"):
        text = _decode(el.text)
        if variant in _VARIANTS:
            text = "".join(_styled_char(ch, variant) for ch in text)
        elif variant == "normal" and el.tag == "mi":
            el.set("mathvariant", "normal")
        if _COMMAND_RE.search(text):
            from latex2mathml.symbols_parser import convert_symbol

            def symbol(m: re.Match[str]) -> str:
                code = convert_symbol(m.group(0))
                try:
                    return chr(int(code or "", 16))
                except ValueError:
                    raise Rejected(f"unsupported command {m.group(0)}") from None

            text = _COMMAND_RE.sub(symbol, text)
        if el.tag == "mo" and text in _ORDINARY_OPERATORS:
            el.tag = "mi"
        elif el.tag == "mi" and len(text) == 1 and (text == ":" or _is_arrow(text)):
            el.tag = "mo"  # \iff, \implies, f: A -> B came as identifiers, without the relation's spaces
        if el.tag == "mo" and text in _FENCES and "stretchy" not in el.attrib:
            # plain delimiters do not grow in TeX; \big ones have a size; \left...\right say stretchy
            el.set("stretchy", "true" if "minsize" in el.attrib else "false")
        el.text = text
        if len(el):
            raise Rejected(f"<{el.tag}> with children")  # \mathop{...}: a token holding elements
        return
    if el.text and el.text.strip():
        raise Rejected(f"text directly in <{el.tag}>")
    for child in el:
        _fix(child, depth + 1, variant)
    if el.tag in _SCRIPTS and len(el) and el[0].tag == "mo":
        base = el[0]
        if base.get("movablelimits") == "true" or (base.text or "") in _LIMIT_OPERATORS:
            el.tag = _SCRIPTS[el.tag]  # limits below in display, beside inline: what movablelimits does
            base.set("movablelimits", "true")
    if el.tag == "msup" and len(el) == 2 and _only_primes(el[1]):
        prime = el[1] if el[1].tag == "mi" else _element("mi", "".join(el[1].itertext()))
        el.tag = "mrow"
        el[1] = prime
        prime.tag = "mi"  # the prime glyph is already raised: as a superscript it went up twice
    if el.tag in ("mover", "munder") and len(el) == 2 and el[1].tag == "mo":
        _fix_accent(el)
    if el.tag in _ROWS:
        _fix_row(el)


def _fix_accent(el: Any) -> None:
    """\\hat, \\bar, \\vec...: latex2mathml's characters come out big, raised or invisible in Chromium
    with the OpenType math fonts tried (STIX Two Math, Noto Sans Math, DejaVu Math TeX Gyre); these not."""
    over = el[1]
    ch, stretchy = over.text or "", over.get("stretchy")
    accent = over.attrib.pop("accent", None) == "true" or el.get("accent") == "true"
    if ch == "^":  # \hat (an accent) or \widehat
        ch, stretchy = ("\u02c6", "false") if accent else ("\u0302", "true")
    elif ch == "~":  # \tilde (stretchy="false") or \widetilde
        ch, stretchy = "\u02dc", "false" if stretchy == "false" else "true"
    elif ch == "\u00af":  # \bar; as an accent Chromium sets it onto the letter
        over.set("stretchy", "false")
        el.attrib.pop("accent", None)
        return
    elif ch == "\u2015":  # \overline, \underline
        ch, stretchy = "\u203e", "true"
    elif ch == "\u2192" and stretchy == "true":  # \vec (\overrightarrow has no stretchy attribute);
        over.text = "\u20d7"  # the combining arrow, small; as an accent Chromium shifts it to the left
        over.set("stretchy", "false")
        el.attrib.pop("accent", None)
        return
    elif ch and ch in _SMALL_ACCENTS:
        stretchy = "false"
    else:
        return
    over.text = ch
    over.set("stretchy", stretchy or "false")
    el.set("accentunder" if el.tag == "munder" else "accent", "true")


def _only_primes(el: Any) -> bool:
    text = "".join(el.itertext())
    return (
        bool(text)
        and all(ch in _PRIMES for ch in text)
        and all(e.tag in ("mi", "mo", "mrow") for e in el.iter())
    )


def _fix_row(el: Any) -> None:
    children = list(el)
    if not children:
        return
    # |x| and \|v\|: the same character opens and closes; in the middle of a row MathML Core takes
    # the closing one for an infix operator, with space around it. Pair them up, in order.
    bars = [c for c in children if c.tag == "mo" and (c.text or "") in _BARS and "form" not in c.attrib]
    for opening, closing in zip(bars[0::2], bars[1::2], strict=False):
        opening.set("form", "prefix")
        closing.set("form", "postfix")
    out: list[Any] = []
    k = 0
    while k < len(children):
        child = children[k]
        nxt = children[k + 1] if k + 1 < len(children) else None
        # a matrix's delimiters: (mo, mtable, mo) -> their own mrow, stretchy
        if (
            child.tag == "mo"
            and nxt is not None
            and nxt.tag == "mtable"
            and k + 2 < len(children)
            and children[k + 2].tag == "mo"
            and (child.text or "") in _FENCES
            and (children[k + 2].text or "") in _FENCES
        ):
            group = _element("mrow")
            for mo, form in ((child, "prefix"), (children[k + 2], "postfix")):
                mo.set("stretchy", "true")
                mo.set("form", form)
            group.extend([child, nxt, children[k + 2]])
            out.append(group)
            k += 3
            continue
        if child.tag == "mspace" and "linebreak" in child.attrib and len(child.attrib) == 1:
            k += 1  # a line break MathML Core ignores (inline \\): nothing
            continue
        if child.tag == "mi" and child.text == "&":
            k += 1  # a stray alignment tab outside any environment
            continue
        if _is_function(child):
            prev = out[-1] if out else None
            if prev is not None and prev.tag in ("mi", "mn", "msub", "msup", "msubsup", "mfrac"):
                out.append(_element("mspace", width="0.1667em"))
            out.append(child)
            out.append(_element("mo", "\u2061"))  # function application: for screen readers, no space
            # a thin space before what it applies to, unless that is an operator or a bracket (log(n))
            if nxt is not None and nxt.tag not in ("mo", "mspace"):
                if not (
                    nxt.tag == "mrow" and len(nxt) and nxt[0].tag == "mo" and (nxt[0].text or "") in _OPENERS
                ):
                    out.append(_element("mspace", width="0.1667em"))
            k += 1
            continue
        out.append(child)
        k += 1
    if len(out) != len(children) or any(a is not b for a, b in zip(out, children, strict=True)):
        for child in children:
            el.remove(child)
        el.extend(out)


# --- serialisation through the allowlist ------------------------------------------------------------


def _serialise(el: Any, out: list[str], depth: int = 0) -> None:
    if depth > MAX_DEPTH:
        raise Rejected("nested too deeply")
    tag = el.tag
    if not isinstance(tag, str) or tag not in ELEMENTS:
        raise Rejected(f"element <{tag}>")
    out.append("<" + tag)
    for name, value in el.attrib.items():
        if name in DROPPED_ATTRIBUTES:
            continue
        if name not in ATTRIBUTES:
            raise Rejected(f"attribute {name}")
        if not _VALUE_RE.fullmatch(value):
            raise Rejected(f"attribute value {name}={value[:40]!r}")
        out.append(f' {name}="{html.escape(value)}"')
    out.append(">")
    if tag in _ARITY and len(el) != _ARITY[tag]:
        raise Rejected(f"<{tag}> with {len(el)} children")
    if el.text:
        out.append(html.escape(el.text, quote=False))
    for child in el:
        _serialise(child, out, depth + 1)
        if child.tail and child.tail.strip():
            raise Rejected(f"text after <{child.tag}>")
    out.append(f"</{tag}>")


def _convert(tex: str, display: bool) -> str:
    if len(tex) > MAX_TEX:
        raise Rejected(f"formula longer than {MAX_TEX:,} characters")
    if not tex.strip():
        raise Rejected("empty formula")
    import latex2mathml.converter

    clean = _CONTROL_RE.sub(" ", tex)
    root = latex2mathml.converter.convert_to_element(
        rewrite_tex(clean, display), display="block" if display else "inline"
    )
    if root.tag != "math" or len(root) != 1:
        raise Rejected("unexpected converter output")
    row = root[0]
    _fix(row)
    out = ['<math display="block">' if display else "<math>", "<semantics>"]
    _serialise(row, out)
    out.append(f'<annotation encoding="application/x-tex">{_escape_source(tex)}</annotation>')
    out.append("</semantics></math>")
    return "".join(out)


def _escape_source(tex: str) -> str:
    return html.escape(_CONTROL_RE.sub(" ", tex), quote=False)


def error_html(tex: str, reason: str) -> str:
    """The fallback: the TeX source in a ``<code class="math-error">``, the reason in its title."""
    title = html.escape(_CONTROL_RE.sub(" ", reason)[:200], quote=True)
    return f'<code class="math-error" title="{title}">{_escape_source(tex)}</code>'


@functools.lru_cache(maxsize=4096)
def tex_to_mathml(tex: str, display: bool) -> str:
    """TeX -> a safe HTML fragment: <math> (display="block" when display) or, when the TeX cannot be
    converted, <code class="math-error" title="...reason...">the TeX source</code>. Never raises."""
    try:
        return _convert(tex, display)
    except Rejected as exc:
        return error_html(tex, f"cannot typeset: {exc}")
    except RecursionError:
        return error_html(tex, "cannot typeset: nested too deeply")
    except Exception as exc:  # latex2mathml's errors name the problem in the class: MissingEndError...
        detail = str(exc).strip()
        return error_html(tex, f"cannot typeset: {type(exc).__name__}" + (f": {detail}" if detail else ""))
