"""markdown-it-py set-up shared by parsing and rendering: wikilinks, `<note.md>` links, comments, tags."""

from __future__ import annotations

import re
from functools import lru_cache

from markdown_it import MarkdownIt
from markdown_it.rules_inline import StateInline
from mdit_py_plugins.footnote import footnote_plugin
from mdit_py_plugins.tasklists import tasklists_plugin

# `#tag` and `#nested/tag`: must start after whitespace/start, must contain a non-digit, never a hex colour.
TAG_RE = re.compile(r"(?<![\w/#&;])#([^\s#\[\](){}<>,.;:!?'\"`|\\]+)")
HEX_COLOUR_RE = re.compile(r"^(?:[0-9a-fA-F]{3}|[0-9a-fA-F]{6}|[0-9a-fA-F]{8})$")
BLOCK_ID_RE = re.compile(r"(?:^|\s)\^([A-Za-z0-9-]+)\s*$")
_FENCE_RE = re.compile(r"^( {0,3})(`{3,}|~{3,})")
_COMMENT_RE = re.compile(r"<!--.*?(?:-->|\Z)|%%.*?(?:%%|\Z)", re.S)


def find_tags(text: str) -> list[str]:
    tags = []
    for match in TAG_RE.finditer(text):
        tag = match.group(1).rstrip("/-_")
        if not tag or tag.isdigit() or HEX_COLOUR_RE.match(tag):
            continue
        tags.append(tag)
    return tags


def blank_comments(source: str) -> str:
    """Blank out HTML comments and Obsidian `%%comments%%` outside fenced code, keeping line numbers."""
    out: list[str] = []
    pos = 0
    for start, end in _prose_spans(source):
        out.append(source[pos:start])
        out.append(_COMMENT_RE.sub(lambda m: re.sub(r"[^\n]", " ", m.group(0)), source[start:end]))
        pos = end
    out.append(source[pos:])
    return "".join(out)


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
    return inner.strip(), heading, block, shown


def _wikilink_rule(state: StateInline, silent: bool, dendron: bool = False) -> bool:
    src = state.src
    pos = state.pos
    embed = src.startswith("![[", pos)
    if not embed and not src.startswith("[[", pos):
        return False
    start = pos + (3 if embed else 2)
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


@lru_cache(maxsize=8)
def make_markdown(allow_html: bool = False, dialect: str = "obsidian") -> MarkdownIt:
    """One configured parser per setting; raw HTML is text unless the collection opts in."""
    md = MarkdownIt("commonmark", {"html": allow_html, "linkify": False, "typographer": False})
    md.enable(["table", "strikethrough"])
    md.use(footnote_plugin).use(tasklists_plugin)
    dendron = dialect == "dendron"
    md.inline.ruler.before("link", "wikilink", lambda state, silent: _wikilink_rule(state, silent, dendron))
    md.inline.ruler.before("autolink", "angle_link", _angle_link_rule)
    return md
