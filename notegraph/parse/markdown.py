"""markdown-it-py set-up shared by parsing and rendering: wikilinks, `<note.md>` links, comments, tags."""

from __future__ import annotations

import bisect
import re
from functools import lru_cache
from typing import Any

from markdown_it import MarkdownIt
from markdown_it.rules_core import StateCore
from markdown_it.rules_inline import StateInline
from markdown_it.token import Token
from mdit_py_plugins.dollarmath import dollarmath_plugin
from mdit_py_plugins.footnote import footnote_plugin
from mdit_py_plugins.tasklists import tasklists_plugin

from notegraph.parse.mark import mark_plugin

# `#tag` and `#nested/tag`: must start after whitespace/start, must contain a non-digit, never a hex colour.
TAG_RE = re.compile(r"(?<![\w/#&;])#([^\s#\[\](){}<>,.;:!?'\"`|\\]+)")
HEX_COLOUR_RE = re.compile(r"^(?:[0-9a-fA-F]{3}|[0-9a-fA-F]{6}|[0-9a-fA-F]{8})$")
BLOCK_ID_RE = re.compile(r"(?:^|\s)\^([A-Za-z0-9-]+)\s*$")
_FENCE_RE = re.compile(r"^( {0,3})(`{3,}|~{3,})")


def find_tags(text: str) -> list[str]:
    tags = []
    for match in TAG_RE.finditer(text):
        tag = match.group(1).rstrip("/-_")
        if not tag or tag.isdigit() or HEX_COLOUR_RE.match(tag):
            continue
        tags.append(tag)
    return tags


def blank_comments(source: str) -> str:
    """Blank out HTML comments and Obsidian `%%comments%%` outside code, keeping line numbers.

    Code wins, as in Obsidian: a `%%` or `<!--` inside a fenced block or an inline code span
    (`` `a %% b` ``) is text, not the start of a comment."""
    out: list[str] = []
    pos = 0
    for start, end in _prose_spans(source):
        out.append(source[pos:start])
        out.append(_blank_in_prose(source[start:end]))
        pos = end
    out.append(source[pos:])
    return "".join(out)


_PROSE_MARK_RE = re.compile(r"`+|%%|<!--")
_BLANK_LINE_RE = re.compile(r"\n[ \t]*\n")


def _blank(text: str) -> str:
    return re.sub(r"[^\n]", " ", text)


def _blank_in_prose(text: str) -> str:
    """One left-to-right pass: a backtick run opens a code span that ends at the next run of the same
    length before a blank line (CommonMark), and is skipped whole; a comment runs to its closing mark
    (or to the end, as an unclosed `%%` does in Obsidian)."""
    if "%%" not in text and "<!--" not in text:
        return text
    out: list[str] = []
    pos = 0
    index = 0
    runs: dict[int, list[int]] = {}  # backtick run length -> starts of runs of that length, in order
    for run in re.finditer(r"`+", text):
        runs.setdefault(len(run.group(0)), []).append(run.start())
    blanks = [blank.start() for blank in _BLANK_LINE_RE.finditer(text)]  # where paragraphs end
    while True:
        match = _PROSE_MARK_RE.search(text, index)
        if match is None:
            break
        mark = match.group(0)
        start = match.start()
        if mark.startswith("`"):
            closer = _code_span_end(runs, blanks, start, len(mark))
            index = closer if closer is not None else match.end()
            continue
        closing = "%%" if mark == "%%" else "-->"
        end = text.find(closing, match.end())
        end = len(text) if end < 0 else end + len(closing)
        out.append(text[pos:start])
        out.append(_blank(text[start:end]))
        pos = index = end
    out.append(text[pos:])
    return "".join(out)


def _code_span_end(runs: dict[int, list[int]], blanks: list[int], start: int, length: int) -> int | None:
    """Where the code span opened by the backtick run at ``start`` ends, or None if no run of the same
    length closes it within its paragraph. Two bisections: linear over the text, whatever it holds."""
    starts = runs[length]
    at = bisect.bisect_right(starts, start)
    if at >= len(starts):
        return None
    closer = starts[at]
    paragraph_end = bisect.bisect_right(blanks, start)
    if paragraph_end < len(blanks) and blanks[paragraph_end] < closer:
        return None
    return closer + length


def _prose_spans(source: str) -> list[tuple[int, int]]:
    """Character spans of the text outside fenced code blocks."""
    spans: list[tuple[int, int]] = []
    offset = 0
    start = 0
    fence: str | None = None
    for line in source.splitlines(keepends=True):
        match = _FENCE_RE.match(line)
        if fence is None and match:
            spans.append((start, offset))
            fence = match.group(2)
        elif fence is not None and match and match.group(2)[0] == fence[0] and len(match.group(2)) >= len(fence):
            fence = None
            start = offset + len(line)
        offset += len(line)
    if fence is None:
        spans.append((start, len(source)))
    return spans


def split_wikilink(inner: str, dendron: bool = False) -> tuple[str, str | None, str | None, str | None]:
    """`Target#Heading|shown` -> (target, heading, block, shown). `\\|` (inside tables) is a separator too.

    Dendron writes the alias first (`[[shown|target]]`) and may prefix `dendron://vault/`."""
    inner = inner.replace("\\|", "|")
    shown: str | None = None
    if "|" in inner:
        if dendron:
            shown, inner = inner.split("|", 1)
        else:
            inner, shown = inner.split("|", 1)
        shown = shown.strip()
    if dendron and inner.startswith("dendron://"):
        inner = inner[len("dendron://") :].split("/", 1)[-1]
    heading: str | None = None
    block: str | None = None
    if "#" in inner:
        inner, anchor = inner.split("#", 1)
        anchor = anchor.strip()
        if anchor.startswith("^"):
            block = anchor[1:]
        else:
            heading = anchor
            if dendron:  # Dendron's heading ranges `#summary,1:#*` and `#start:#end` start at their heading
                heading = re.split(r",\d*(?::|$)|:#", heading, maxsplit=1)[0]
    return inner.strip(), heading, block, shown


MANY_BRACKETS = 64  # brackets in one paragraph past which the guard reads them all once


def _count(state: StateInline, mark: str) -> int:
    """How many times ``mark`` stands in the inline source, counted once per source."""
    cache: dict[str, int] | None = getattr(state, "_ng_count", None)
    if cache is None:
        cache = state._ng_count = {}  # type: ignore[attr-defined]
    found = cache.get(mark)
    if found is None:
        found = cache[mark] = state.src.count(mark)
    return found


def _last(state: StateInline, mark: str) -> int:
    """Where ``mark`` last stands in the inline source, found once per source (the state lives as long
    as its source is parsed)."""
    cache: dict[str, int] | None = getattr(state, "_ng_last", None)
    if cache is None:
        cache = {}
        state._ng_last = cache  # type: ignore[attr-defined]
    found = cache.get(mark)
    if found is None:
        found = cache[mark] = state.src.rfind(mark)
    return found


class _Brackets:
    """One inline source's brackets, read once: each ``[``'s matching ``]`` counted by characters, where
    the next ``]]``, ``[[`` and line break stand, and how many characters that can start another token
    (code, autolink, HTML, math, escapes) come before each position."""

    def __init__(self, src: str) -> None:
        n = len(src)
        self.match = [-1] * n
        stack: list[int] = []
        for i, char in enumerate(src):
            if char == "[":
                stack.append(i)
            elif char == "]" and stack:
                self.match[stack.pop()] = i
        self.next_close = [n] * (n + 2)  # first "]]" at or after i
        self.next_open = [n] * (n + 2)  # first "[[" at or after i
        self.next_break = [n] * (n + 2)
        for i in range(n - 1, -1, -1):
            self.next_close[i] = i if src.startswith("]]", i) else self.next_close[i + 1]
            self.next_open[i] = i if src.startswith("[[", i) else self.next_open[i + 1]
            self.next_break[i] = i if src[i] == "\n" else self.next_break[i + 1]
        self.special = [0] * (n + 1)
        for i, char in enumerate(src):
            self.special[i + 1] = self.special[i] + (char in "`<$\\")

    def wikilink_at(self, i: int) -> bool:
        """Whether ``[[`` at ``i`` may close as a wikilink (the rule's own test, without searching)."""
        start = i + 2
        close = self.next_close[start]
        return close < len(self.match) and self.next_open[start] >= close and self.next_break[start] >= close


def _bracket_guard(state: StateInline, silent: bool) -> bool:
    """Brackets that cannot open a link, image or wikilink are text, taken in runs. Without this, every
    ``[`` made markdown-it's link rule scan to its closing bracket or to the end of the paragraph: 100 KB
    of ``[[`` took half a minute, and nested brackets grew with the square of their number.

    A ``[`` opens nothing when no ``]`` follows it at all; or, in a paragraph with no reference
    definitions to name, when its closing bracket is not followed by ``(`` and nothing between them
    (code, autolinks, HTML, math, escapes) could hide a bracket; a ``[[`` that may close as a wikilink
    and a footnote reference ``[^1]`` are left to their rules. Paragraphs with few brackets are left
    to markdown-it whole."""
    src, pos = state.src, state.pos
    char = src[pos]
    if char == "!":
        if not src.startswith("![", pos):
            return False
    elif char != "[":
        return False
    if _last(state, "]") < pos:
        # nothing closes any bracket from here on: take them, with the plain text between, as one run
        # (one append to the pending text, which markdown-it copies whole on every append)
        end = _UNOPENED_RUN.match(src, pos).end()  # type: ignore[union-attr]
    else:
        if state.env.get("references") or _count(state, "[") < MANY_BRACKETS:
            return False  # a paragraph with a few links: markdown-it's own scans cost nothing
        brackets: _Brackets | None = getattr(state, "_ng_brackets", None)
        if brackets is None:
            brackets = state._ng_brackets = _Brackets(src)  # type: ignore[attr-defined]
        end = pos + (char == "!")
        while end < len(src) and src[end] == "[":
            close = brackets.match[end]
            if close < 0 or brackets.special[close] != brackets.special[end]:
                break  # unmatched by characters, or a token between may hide a bracket: let the rules decide
            if src.startswith("(", close + 1) or src.startswith("[^", end) or (src.startswith("[[", end) and brackets.wikilink_at(end)):
                break  # an inline link, a footnote reference, a wikilink: for their own rules
            end += 1
        if end == pos + (char == "!"):
            return False
    if not silent:
        state.pending += src[pos:end]
    state.pos = end
    return True


# characters markdown-it's text rule stops at, but for `[` and `!`: what the guard may take in one run
_UNOPENED_RUN = re.compile(r"[^\n#$%&*+\-:<=>@\\\]^_`{}~]+")


def _wikilink_rule(state: StateInline, silent: bool, dendron: bool = False) -> bool:
    src = state.src
    pos = state.pos
    embed = src.startswith("![[", pos)
    if not embed and not src.startswith("[[", pos):
        return False
    start = pos + (3 if embed else 2)
    if _last(state, "]]") < start:
        return False  # nothing closes it (found once, not searched again for each opener)
    end = src.find("]]", start)
    if end < 0:
        return False
    inner = src[start:end]
    if not inner.strip() or "\n" in inner or "[[" in inner:
        return False
    if not silent:
        target, heading, block, shown = split_wikilink(inner, dendron)
        token = state.push("wikilink", "", 0)
        token.meta = {
            "target": target,
            "heading": heading,
            "block": block,
            "shown": shown,
            "embed": embed,
            "offset": pos,
        }
        token.content = inner
    state.pos = end + 2
    return True


_ANGLE_RE = re.compile(r"<([^<>\n]+?\.md(?:#[^<>\n]*)?)>", re.I)


def _angle_link_rule(state: StateInline, silent: bool) -> bool:
    """`<other note.md>`: CommonMark's autolink wants a URL scheme, Obsidian accepts a note path."""
    if state.src[state.pos] != "<":
        return False
    match = _ANGLE_RE.match(state.src, state.pos)
    if not match or ":" in match.group(1).split("#")[0]:
        return False
    if not silent:
        token = state.push("angle_link", "", 0)
        token.meta = {"href": match.group(1), "offset": state.pos}
        token.content = match.group(1)
    state.pos = match.end()
    return True


# Obsidian's callout types, each with its aliases, by the family that gives it a colour and an icon;
# a type not listed here looks like a note, as in Obsidian
CALLOUT_FAMILIES: dict[str, tuple[str, ...]] = {
    "note": ("note",),
    "abstract": ("abstract", "summary", "tldr"),
    "info": ("info",),
    "todo": ("todo",),
    "tip": ("tip", "hint", "important"),
    "success": ("success", "check", "done"),
    "question": ("question", "help", "faq"),
    "warning": ("warning", "caution", "attention"),
    "failure": ("failure", "fail", "missing"),
    "danger": ("danger", "error"),
    "bug": ("bug",),
    "example": ("example",),
    "quote": ("quote", "cite"),
}
CALLOUT_FAMILY = {alias: family for family, aliases in CALLOUT_FAMILIES.items() for alias in aliases}
_CALLOUT_RE = re.compile(r"^\[!([^\]\s]+)\]([+-]?)(?:[ \t]+(.*))?$")


def _callouts(state: StateCore) -> None:
    """`> [!type]± Title` blockquotes -> callout tokens (before inline parsing, so the title and body
    are parsed as markdown). The opening token's meta has the type as written, its family, the fold
    (``+`` open, ``-`` closed, ``""`` not foldable) and whether a title was written."""
    tokens = state.tokens
    out: list[Token] = []
    closes: list[tuple[int, dict[str, Any]]] = []  # (nesting depth, meta) of open callouts, innermost last
    depth = 0
    i = 0
    while i < len(tokens):
        token = tokens[i]
        if token.type == "blockquote_close":
            depth -= 1
            if closes and closes[-1][0] == depth:
                token.meta = closes.pop()[1]
                token.type = "callout_close"
            out.append(token)
            i += 1
            continue
        if token.type != "blockquote_open":
            out.append(token)
            i += 1
            continue
        depth += 1
        inline = tokens[i + 2] if i + 2 < len(tokens) and tokens[i + 1].type == "paragraph_open" else None
        first, _, rest = inline.content.partition("\n") if inline is not None and inline.type == "inline" else ("", "", "")
        match = _CALLOUT_RE.match(first.strip())
        if inline is None or match is None:
            out.append(token)
            i += 1
            continue
        written, fold, title = match.group(1), match.group(2), (match.group(3) or "").strip()
        kind = written.lower()
        token.type = "callout_open"
        token.meta = {"type": kind, "family": CALLOUT_FAMILY.get(kind, "note"), "fold": fold, "titled": bool(title)}
        closes.append((depth - 1, token.meta))
        # every token of the callout carries its meta: the renderer never looks back for the opening one
        heading = Token("callout_title_open", "", 1, map=inline.map, level=token.level + 1, block=True, meta=token.meta)
        text = Token("inline", "", 0, map=inline.map, level=token.level + 2, content=title or written[:1].upper() + written[1:], children=[])
        heading_close = Token("callout_title_close", "", -1, level=token.level + 1, block=True, meta=token.meta)
        out.extend([token, heading, text, heading_close])
        if rest.strip():
            inline.content = rest
            if inline.map:
                inline.map = [inline.map[0] + 1, inline.map[1]]
            i += 1  # the paragraph stays, without its first line
        else:
            i += 4  # the paragraph held only the callout's first line
    state.tokens = out


@lru_cache(maxsize=8)
def make_markdown(allow_html: bool = False, dialect: str = "obsidian") -> MarkdownIt:
    """One configured parser per setting; raw HTML is text unless the collection opts in."""
    md = MarkdownIt("commonmark", {"html": allow_html, "linkify": False, "typographer": False})
    md.enable(["table", "strikethrough"])
    md.use(footnote_plugin).use(tasklists_plugin).use(mark_plugin)
    # Obsidian's math: `$x$` needs no space inside its dollars and no digit after the closing one (so
    # `$5 and $10` is money); `$$…$$` display math may span lines but not a blank line, so an unclosed
    # `$$` never swallows the rest of a note. The TeX reaches the renderer as written, backslashes included
    md.use(dollarmath_plugin, allow_space=False, allow_digits=False, allow_blank_lines=False, allow_labels=False, double_inline=True)
    md.core.ruler.before("inline", "callouts", _callouts)
    dendron = dialect == "dendron"
    md.inline.ruler.before("link", "wikilink", lambda state, silent: _wikilink_rule(state, silent, dendron))
    md.inline.ruler.before("wikilink", "bracket_guard", _bracket_guard)
    md.inline.ruler.before("autolink", "angle_link", _angle_link_rule)
    return md
