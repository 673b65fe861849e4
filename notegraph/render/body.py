"""A note's markdown body -> safe HTML: links to note pages, marked dangling links, heading ids, sanitising."""

from __future__ import annotations

import posixpath
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from functools import cache
from typing import Any
from urllib.parse import unquote

from markdown_it.common.utils import escapeHtml
from markdown_it.renderer import RendererHTML
from markdown_it.token import Token
from markdown_it.utils import OptionsDict

from notegraph.model import Note, RawLink
from notegraph.parse.markdown import blank_comments, make_markdown
from notegraph.parse.note import ATTACHMENT_EXTS
from notegraph.render.slugs import anchor_key, heading_ids
from notegraph.resolve import NameIndex, resolve_target

_SCHEME_RE = re.compile(r"^([A-Za-z][A-Za-z0-9+.-]*):")
_HTML_TAG_RE = re.compile(r"</?[A-Za-z][^<>]*>")
_BLOCK_TAIL_RE = re.compile(r"(?:^|\s+)\^([A-Za-z0-9-]+)\s*$")
SAFE_SCHEMES = frozenset({"http", "https", "mailto"})


@dataclass(frozen=True)
class Target:
    """Where a link in a note leads: a note page (``slug`` + ``anchor``) or nowhere, with the reason."""

    status: str  # ok | dangling | ambiguous | outside | attachment
    slug: str | None = None
    anchor: str | None = None
    title: str = ""
    message: str = ""
    self_link: bool = False

    def as_json(self) -> list[Any]:
        return [self.status, self.slug, self.anchor, self.title, self.message, self.self_link]


class Linker:
    """Resolves links exactly as :mod:`notegraph.resolve` does and maps them to pages and anchors."""

    def __init__(self, notes: Mapping[str, Note], slugs: Mapping[str, str]) -> None:
        self.notes = notes
        self.slugs = slugs
        self.index = NameIndex.build(notes[k] for k in sorted(notes))
        self._ids: dict[str, list[str]] = {}

    def heading_ids(self, note: Note) -> list[str]:
        if note.id not in self._ids:
            self._ids[note.id] = heading_ids(note.headings)
        return self._ids[note.id]

    def heading_anchor(self, note: Note, heading: str) -> str | None:
        wanted = anchor_key(heading)
        for text, anchor in zip(note.headings, self.heading_ids(note), strict=False):
            if anchor_key(text) == wanted:
                return anchor
        return None

    def resolve(self, source: Note, target: str, heading: str | None, block: str | None, style: str) -> Target:
        raw = RawLink(target=target, line=0, style=style, heading=heading, block=block)  # type: ignore[arg-type]
        res = resolve_target(self.index, source, raw)
        if res.status == "ok" and res.target is not None:
            note = self.notes[res.target]
            anchor = None
            if heading:
                anchor = self.heading_anchor(note, heading)
            elif block and block in note.blocks:
                anchor = f"block-{block}"
            return Target("ok", self.slugs[note.id], anchor, note.title, "", note.id == source.id)
        written = target + (f"#{heading}" if heading else "") + (f"#^{block}" if block else "")
        if res.status == "attachment":
            return Target("attachment", message=f"The file “{target}” is not included in the site")
        if res.status == "ambiguous":
            names = ", ".join(res.candidates)
            return Target("ambiguous", message=f"“{written}” is ambiguous: it matches {names}")
        if res.status == "outside":
            return Target("outside", message=f"“{written}” points outside the notes folder; not followed")
        return Target("dangling", message=f"No note named “{written}” in this collection")

    def table(self, note: Note) -> list[list[Any]]:
        """Every resolution the body of ``note`` can ask for: part of the page's hash."""
        rows = []
        for raw in note.links:
            if raw.style == "frontmatter":
                continue
            target = self.resolve(note, raw.target, raw.heading, raw.block, raw.style)
            rows.append([raw.style, raw.target, raw.heading, raw.block, *target.as_json()])
        return sorted(rows, key=lambda r: [str(x) for x in r])


@dataclass(frozen=True)
class Body:
    lede_html: str | None  # the opening paragraph with its links, when it is the note's lede
    html: str
    lede_id: str | None = None  # the lede's block id (`^id`), so links to it still land


def _plain(children: Sequence[Token]) -> str:
    """The plain text parse gives a paragraph (how the lede was found), to recognise it again."""
    parts = []
    for child in children:
        if child.type == "text":
            parts.append(_HTML_TAG_RE.sub("", child.content))
        elif child.type == "code_inline":
            parts.append(child.content)
        elif child.type in ("softbreak", "hardbreak"):
            parts.append(" ")
        elif child.type == "wikilink":
            meta = child.meta
            text = meta["shown"] or meta["target"] or (meta["heading"] or "")
            if meta["embed"] and meta["target"].rsplit(".", 1)[-1].lower() in ATTACHMENT_EXTS:
                text = ""
            parts.append(text)
        elif child.type == "angle_link":
            parts.append(child.meta["href"])
        elif child.type == "image":
            parts.append(child.content)
    return " ".join("".join(parts).split())


def _is_attachment(path: str) -> bool:
    base = posixpath.basename(path)
    return "." in base and base.rsplit(".", 1)[-1].lower() in ATTACHMENT_EXTS


def _span(css: str, title: str, inner: str) -> str:
    return f'<span class="{css}" title="{escapeHtml(title)}">{inner}</span>'


class _Renderer(RendererHTML):
    """markdown-it's HTML renderer with our link, image and heading rules. One per parser, made once:
    RendererHTML finds its rules with ``inspect.getmembers`` (0.4 s for 5,000 notes when it was made for
    each); ``bind`` gives it the note it renders."""

    _note: Note
    _linker: Linker

    def __init__(self, base_rules: Mapping[str, Any]) -> None:
        super().__init__()
        for name, rule in base_rules.items():
            self.rules.setdefault(name, rule)  # footnotes and task lists keep their own rules

    def bind(self, note: Note, linker: Linker) -> _Renderer:
        self._note, self._linker = note, linker
        return self

    # -- links --------------------------------------------------------------------------------

    def _href(self, target: Target) -> str:
        anchor = f"#{target.anchor}" if target.anchor else ""
        if target.self_link:
            return anchor or f"{target.slug}.html"
        return f"{target.slug}.html{anchor}"

    def _label(self, target: Target, heading: str | None) -> str:
        if target.self_link and heading:
            return heading
        return f"{target.title} › {heading}" if heading else target.title

    def wikilink(self, tokens: Sequence[Token], idx: int, options: OptionsDict, env: Any) -> str:
        meta = tokens[idx].meta
        raw_target: str = meta["target"]
        shown: str | None = meta["shown"]
        if meta["embed"] and shown and re.fullmatch(r"\d+(x\d+)?", shown):
            shown = None  # ![[img.png|400]]: a size, not a name
        if _is_attachment(raw_target):
            name = shown or posixpath.basename(raw_target)
            return _span("attachment", f"The file “{raw_target}” is not included in the site", escapeHtml(name))
        target = self._linker.resolve(self._note, raw_target, meta["heading"], meta["block"], "wiki")
        if target.status != "ok":
            written = tokens[idx].content.split("|", 1)[0]
            return _span("dangling", target.message, escapeHtml(shown or written))
        text = escapeHtml(shown or self._label(target, meta["heading"]))
        href = escapeHtml(self._href(target))
        if meta["embed"]:
            return f'<a class="embed" href="{href}"><span class="embed-kind">Embedded note</span> {text}</a>'
        return f'<a class="wikilink" href="{href}">{text}</a>'

    def angle_link(self, tokens: Sequence[Token], idx: int, options: OptionsDict, env: Any) -> str:
        href: str = tokens[idx].meta["href"]
        path, _, fragment = href.partition("#")
        heading = unquote(fragment) if fragment and not fragment.startswith("^") else None
        block = fragment[1:] if fragment.startswith("^") else None
        target = self._linker.resolve(self._note, unquote(path), heading, block, "markdown")
        if target.status != "ok":
            return _span("dangling", target.message, escapeHtml(href))
        return f'<a class="wikilink" href="{escapeHtml(self._href(target))}">{escapeHtml(self._label(target, heading))}</a>'

    def link_open(self, tokens: Sequence[Token], idx: int, options: OptionsDict, env: Any) -> str:
        kind, value, title = tokens[idx].meta["ng"]
        if kind == "a":
            return f'<a href="{escapeHtml(value)}"{title}>'
        return _span(value, title, "")[: -len("</span>")]

    def link_close(self, tokens: Sequence[Token], idx: int, options: OptionsDict, env: Any) -> str:
        return "</a>" if tokens[idx].meta.get("ng") == "a" else "</span>"

    def image(self, tokens: Sequence[Token], idx: int, options: OptionsDict, env: Any) -> str:
        # Images are never loaded: the site makes no requests outside itself and does not copy attachments.
        token = tokens[idx]
        src = str(token.attrs.get("src", ""))
        alt = self.renderInlineAsText(token.children or [], options, env) or posixpath.basename(unquote(src))
        scheme = _SCHEME_RE.match(src)
        if scheme and scheme.group(1).lower() in ("http", "https"):
            return (
                f'<a class="external image-link" href="{escapeHtml(src)}" rel="noopener noreferrer">'
                f"Image: {escapeHtml(alt)}</a>"
            )
        return _span("attachment", "Image not included in the site", f"Image: {escapeHtml(alt)}")

    def _classify(self, href: str) -> tuple[str, str, str]:
        """(``a``, href, extra attributes) or (``span``, css class, title) for a markdown link."""
        if href.startswith("#"):
            fragment = unquote(href[1:])
            if fragment.startswith("^"):
                anchor = f"block-{fragment[1:]}" if fragment[1:] in self._note.blocks else fragment
            else:
                anchor = self._linker.heading_anchor(self._note, fragment) or fragment
            return ("a", f"#{anchor}", "")
        if href.startswith("//"):
            href = f"https:{href}"
        scheme = _SCHEME_RE.match(href)
        if scheme:
            if scheme.group(1).lower() in SAFE_SCHEMES:
                return ("a", href, ' class="external" rel="noopener noreferrer"')
            return ("span", "dangling", f"{scheme.group(1)}: links are not followed")
        path, _, fragment = href.partition("#")
        path = unquote(path)
        base = posixpath.basename(path)
        if path and not path.lower().endswith((".md", ".markdown")) and "." in base:
            return ("span", "attachment", f"The file “{path}” is not included in the site")
        heading = unquote(fragment) if fragment and not fragment.startswith("^") else None
        block = fragment[1:] if fragment.startswith("^") else None
        target = self._linker.resolve(self._note, path, heading, block, "markdown")
        if target.status != "ok":
            return ("span", "dangling", target.message)
        return ("a", self._href(target), ' class="wikilink"')

    def _prepare_links(self, children: Sequence[Token]) -> None:
        pending: Token | None = None
        for child in children:
            if child.type == "link_open":
                decision = self._classify(str(child.attrs.get("href", "")))
                child.meta["ng"] = decision
                pending = child
            elif child.type == "link_close" and pending is not None:
                child.meta["ng"] = pending.meta["ng"][0]
                pending = None
            if child.children:
                self._prepare_links(child.children)


def _drop(tokens: list[Token], start: int) -> tuple[list[Token], list[Token]]:
    """Remove the block opened at ``start`` (open, inline, close); return (rest, removed)."""
    end = start
    depth = 0
    for end in range(start, len(tokens)):
        depth += tokens[end].nesting
        if depth == 0:
            break
    return tokens[:start] + tokens[end + 1 :], tokens[start : end + 1]


@cache
def _renderer_for(md: Any) -> _Renderer:
    return _Renderer(getattr(md.renderer, "rules", {}))


def render_body(note: Note, linker: Linker, *, allow_html: bool = False, has_question: bool = False) -> Body:
    """Render ``note.body``; the opening ``# Title`` and the lede paragraph move to the page header."""
    md = make_markdown(allow_html)
    env: dict[str, Any] = {}
    try:
        tokens = md.parse(blank_comments(note.body), env)
    except RecursionError:
        return Body(None, f"<pre>{escapeHtml(note.body)}</pre>")
    renderer = _renderer_for(md).bind(note, linker)

    # ids are given by position among all headings, as parse listed them (the title h1 included)
    ids = linker.heading_ids(note)
    heading_opens = [i for i, t in enumerate(tokens) if t.type == "heading_open"]
    if len(ids) != len(heading_opens):
        ids = heading_ids([_plain(tokens[i + 1].children or []) for i in heading_opens])
    for i, anchor in zip(heading_opens, ids, strict=True):
        tokens[i].attrSet("id", anchor)

    # the title the note opens with is the page's h1 already
    if tokens and tokens[0].type == "heading_open" and tokens[0].tag == "h1":
        if _plain(tokens[1].children or []) == " ".join(note.title.split()):
            tokens, _ = _drop(tokens, 0)
    # block ids `^id` end a paragraph: hide the marker and anchor the block
    for i, token in enumerate(tokens):
        if token.type != "inline" or not token.children:
            continue
        last = token.children[-1]
        match = _BLOCK_TAIL_RE.search(last.content) if last.type == "text" else None
        if match and match.group(1) in note.blocks:
            last.content = last.content[: match.start()]
            j = i - 1
            while j > 0 and tokens[j].hidden:
                j -= 1
            if tokens[j].nesting == 1 and not tokens[j].attrGet("id"):
                tokens[j].attrSet("id", f"block-{match.group(1)}")

    # the lede paragraph, when it opens the body, is shown under the title
    lede_children: list[Token] | None = None
    lede_id: str | None = None
    lede = " ".join(_BLOCK_TAIL_RE.sub("", note.lede).split())
    for i, token in enumerate(tokens):
        if token.level != 0 or token.nesting != 1:
            continue
        if token.type == "paragraph_open" and lede and _plain(tokens[i + 1].children or []) == lede:
            lede_children = tokens[i + 1].children or []
            lede_id = token.attrGet("id")  # type: ignore[assignment]
            tokens, _ = _drop(tokens, i)
        break

    # body headings sit under the page's h1 (and the question's h2): shift them, keeping their order
    levels = [int(t.tag[1]) for t in tokens if t.type == "heading_open"]
    if levels:
        top = min(levels)
        base = 3 if has_question else 2
        for token in tokens:
            if token.type in ("heading_open", "heading_close"):
                token.tag = f"h{min(6, base + int(token.tag[1]) - top)}"

    for token in tokens:
        if token.type == "inline" and token.children:
            renderer._prepare_links(token.children)
    if lede_children:
        renderer._prepare_links(lede_children)

    html = renderer.render(tokens, md.options, env)
    lede_html = renderer.renderInline(lede_children, md.options, env) if lede_children else None
    if allow_html:
        html = sanitise(html)
        lede_html = sanitise(lede_html) if lede_html else lede_html
    return Body(lede_html, html, lede_id)


# -- sanitising raw HTML (allow_html) -----------------------------------------------------------------

_EXTRA_TAGS = {"section", "input", "figure", "figcaption", "time", "mark", "details", "summary"}
_GLOBAL_ATTRS = {"class", "id", "title", "lang", "dir"}


@cache
def _nh3_settings() -> tuple[set[str], dict[str, set[str]]]:
    import nh3

    tags = set(nh3.ALLOWED_TAGS) | _EXTRA_TAGS
    attributes = {tag: set(attrs) - {"rel"} for tag, attrs in nh3.ALLOWED_ATTRIBUTES.items()}
    attributes["*"] = set(attributes.get("*", set())) | _GLOBAL_ATTRS
    attributes["input"] = {"type", "checked", "disabled"}
    attributes["time"] = {"datetime"}
    return tags, attributes


def _attribute_filter(tag: str, attr: str, value: str) -> str | None:
    if attr == "src":
        # nothing is fetched from elsewhere; attachments are not copied: only inline images survive
        return value if re.match(r"^data:image/(png|gif|jpeg|webp);", value) else None
    if attr == "href":
        scheme = _SCHEME_RE.match(value)
        if value.startswith("#") or (scheme and scheme.group(1).lower() in SAFE_SCHEMES):
            return value
        return None  # a relative path in raw HTML would be a broken link on the site
    if attr == "type" and tag == "input":
        return value if value == "checkbox" else None
    return value


def sanitise(html: str) -> str:
    """nh3 (ammonia): no scripts, no event handlers, no javascript:/data: URLs, no remote images."""
    import nh3

    tags, attributes = _nh3_settings()
    return nh3.clean(
        html,
        tags=tags,
        attributes=attributes,
        url_schemes={"http", "https", "mailto", "data"},
        attribute_filter=_attribute_filter,
        strip_comments=True,
        link_rel="noopener noreferrer",
    )
