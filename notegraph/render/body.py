"""A note's markdown body -> safe HTML: links to note pages, marked dangling links, heading ids, sanitising."""

from __future__ import annotations

import posixpath
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from functools import cache, partial
from pathlib import Path
from typing import Any
from urllib.parse import quote, unquote, urlsplit

from markdown_it.common.utils import escapeHtml, unescapeAll
from markdown_it.renderer import RendererHTML
from markdown_it.token import Token
from markdown_it.utils import OptionsDict

from notegraph.model import Note, RawLink
from notegraph.parse.markdown import blank_comments, make_markdown
from notegraph.parse.note import AUDIO_EXTS, IMAGE_EXTS, VIDEO_EXTS, is_attachment
from notegraph.render.slugs import anchor_key, heading_ids
from notegraph.resolve import AttachmentIndex, NameIndex, resolve_target

_SCHEME_RE = re.compile(r"^([A-Za-z][A-Za-z0-9+.-]*):")
_HTML_TAG_RE = re.compile(r"</?[A-Za-z][^<>]*>")
_BLOCK_TAIL_RE = re.compile(r"(?:^|\s+)\^([A-Za-z0-9-]+)\s*$")
_SIZE_RE = re.compile(r"^(\d{1,5})(?:x(\d{1,5}))?$")
SAFE_SCHEMES = frozenset({"http", "https", "mailto"})
ATTACHMENTS_DIR = "attachments"  # where a site keeps the files its notes embed, under their own paths
MAX_EMBED_DEPTH = 3  # notes embedded in notes embedded in notes, and no deeper


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

    def __init__(
        self,
        notes: Mapping[str, Note],
        slugs: Mapping[str, str],
        files: AttachmentIndex | None = None,
        *,
        remote_images: bool = False,
        dialect: str = "obsidian",
    ) -> None:
        self.notes = notes
        self.slugs = slugs
        self.index = NameIndex.build(notes[k] for k in sorted(notes))
        self.files = files if files is not None else AttachmentIndex(())
        self.remote_images = remote_images
        self.dialect = dialect
        self._ids: dict[str, list[str]] = {}

    def attachment(self, source: Note, target: str) -> str | None:
        """The path (relative to the notes folder) of the file a link in ``source`` names, if there is one."""
        return self.files.find(source.folder, target)

    def embeds(self, note: Note) -> list[Note]:
        """The notes ``note`` shows inside itself (``![[Note]]``), at every depth a page shows, each once."""
        found: dict[str, Note] = {}
        todo = [(note, 0)]
        while todo:
            current, depth = todo.pop()
            if depth >= MAX_EMBED_DEPTH:
                continue
            for raw in current.links:
                if not raw.embed or raw.style != "wiki" or is_attachment(raw.target):
                    continue
                embedded = self.note_named(current, raw.target)
                if embedded is not None and embedded.id not in found and embedded.id != note.id:
                    found[embedded.id] = embedded
                    todo.append((embedded, depth + 1))
        return [found[k] for k in sorted(found)]

    def note_named(self, source: Note, target: str) -> Note | None:
        """The note a wikilink in ``source`` names, when it names exactly one."""
        res = resolve_target(self.index, source, RawLink(target=target, line=0))
        return self.notes.get(res.target) if res.status == "ok" and res.target else None

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
        """Every resolution the body of ``note`` can ask for: part of the page's hash. With the notes it
        embeds (their files and their own links), whose text the page shows."""
        rows = self._own_table(note)
        for embedded in self.embeds(note):
            rows.append(["embedded", embedded.id, embedded.content_hash, embedded.body, self._own_table(embedded)])
        return rows

    def _own_table(self, note: Note) -> list[list[Any]]:
        rows = []
        for raw in note.links:
            if raw.style == "frontmatter":
                continue
            if is_attachment(raw.target):
                rows.append([raw.style, raw.target, raw.heading, raw.block, "attachment", self.attachment(note, raw.target)])
                continue
            target = self.resolve(note, raw.target, raw.heading, raw.block, raw.style)
            rows.append([raw.style, raw.target, raw.heading, raw.block, *target.as_json()])
        return sorted(rows, key=lambda r: [str(x) for x in r])


@dataclass(frozen=True)
class Body:
    lede_html: str | None  # the opening paragraph with its links, when it is the note's lede
    html: str
    lede_id: str | None = None  # the lede's block id (`^id`), so links to it still land
    features: frozenset[str] = frozenset()  # what the page must load for it: "code", "mermaid"


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
            if meta["embed"] and is_attachment(meta["target"]):
                text = ""
            parts.append(text)
        elif child.type == "angle_link":
            parts.append(child.meta["href"])
        elif child.type == "image":
            parts.append(child.content)
    return " ".join("".join(parts).split())


def _span(css: str, title: str, inner: str) -> str:
    return f'<span class="{css}" title="{escapeHtml(title)}">{inner}</span>'


class _Renderer(RendererHTML):
    """markdown-it's HTML renderer with our link, image, heading, code, math, callout and embed rules.
    One per parser, made once: RendererHTML finds its rules with ``inspect.getmembers`` (0.4 s for 5,000
    notes when it was made for each); ``bind`` gives it the note it renders."""

    _note: Note
    _linker: Linker
    _md: Any
    _features: set[str]
    _stack: list[str]  # the notes being rendered, outermost first: an embed of one of them is a cycle

    def __init__(self, base_rules: Mapping[str, Any]) -> None:
        super().__init__()
        for name, rule in base_rules.items():
            self.rules.setdefault(name, rule)  # footnotes and task lists keep their own rules

    def bind(self, note: Note, linker: Linker, md: Any) -> _Renderer:
        self._note, self._linker, self._md = note, linker, md
        self._features = set()
        self._stack = [note.id]
        return self

    # -- links --------------------------------------------------------------------------------

    def _href(self, target: Target) -> str:
        anchor = f"#{target.anchor}" if target.anchor else ""
        if target.self_link and len(self._stack) == 1:
            return anchor or f"{target.slug}.html"
        return f"{target.slug}.html{anchor}"

    def _label(self, target: Target, heading: str | None) -> str:
        heading = heading.replace("#", " › ") if heading else heading
        if target.self_link and heading:
            return heading
        return f"{target.title} › {heading}" if heading else target.title

    def wikilink(self, tokens: Sequence[Token], idx: int, options: OptionsDict, env: Any) -> str:
        meta = tokens[idx].meta
        raw_target: str = meta["target"]
        shown: str | None = meta["shown"]
        if is_attachment(raw_target):
            return self._attachment(raw_target, shown, embed=meta["embed"])
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

    # -- attachments --------------------------------------------------------------------------

    def _attachment(self, written: str, shown: str | None, *, embed: bool) -> str:
        """A file the note embeds (``![[x.png|400]]``, ``![alt](x.png)``) or links to (``[[x.pdf]]``):
        shown as Obsidian shows it, from the site's own copy; a missing one as a visible placeholder."""
        alt, width, height = _alt_and_size(shown)
        path = self._linker.attachment(self._note, unquote(written))
        name = posixpath.basename(written) or written
        if path is None:
            return _span("attachment-missing", f"“{written}” is not a file in the notes folder", f"Missing attachment: {escapeHtml(name)}")
        src = escapeHtml(attachment_url(path))
        ext = path.rsplit(".", 1)[-1].lower()
        label = escapeHtml(alt or name)
        if not embed:
            return f'<a class="attachment-link" href="{src}">{escapeHtml(shown or name)}</a>'
        size = _size_attrs(width, height)
        if ext in IMAGE_EXTS:  # SVG too, and only as an image: never inlined, so its scripts never run
            return f'<img class="attachment" src="{src}" alt="{label}"{size} loading="lazy" decoding="async">'
        if ext in AUDIO_EXTS:
            return f'<audio class="attachment" controls preload="metadata" src="{src}"><a href="{src}">{label}</a></audio>'
        if ext in VIDEO_EXTS:
            return f'<video class="attachment" controls preload="metadata" src="{src}"{size}><a href="{src}">{label}</a></video>'
        if ext == "pdf":
            return (
                f'<span class="attachment-pdf"><iframe class="attachment" src="{src}" title="{label}"{size}></iframe>'
                f'<a class="attachment-link" href="{src}">Open {label}</a></span>'
            )
        return f'<a class="attachment-link" href="{src}">{label}</a>'

    def image(self, tokens: Sequence[Token], idx: int, options: OptionsDict, env: Any) -> str:
        token = tokens[idx]
        src = str(token.attrs.get("src", ""))
        alt = self.renderInlineAsText(token.children or [], options, env)
        scheme = _SCHEME_RE.match(src)
        if scheme and scheme.group(1).lower() in ("http", "https"):
            alt_text, width, height = _alt_and_size(alt)
            if self._linker.remote_images:
                size = _size_attrs(width, height)
                return f'<img class="remote" src="{escapeHtml(src)}" alt="{escapeHtml(alt_text)}"{size} loading="lazy" referrerpolicy="no-referrer">'
            host = urlsplit(src).netloc
            return (
                f'<a class="external image-link" href="{escapeHtml(src)}" rel="noopener noreferrer" '
                f'title="Images from other sites are not loaded (remote_images = true in notegraph.toml loads them)">'
                f"Image on {escapeHtml(host)}: {escapeHtml(alt_text or posixpath.basename(urlsplit(src).path))}</a>"
            )
        if scheme or src.startswith("//"):
            return _span("dangling", f"{escapeHtml(src[:40])}: not an image this site can show", f"Image: {escapeHtml(alt)}")
        return self._attachment(src.split("#", 1)[0].split("?", 1)[0], alt or None, embed=True)

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
            found = self._linker.attachment(self._note, path) if is_attachment(path) else None
            if found is None:
                return ("span", "attachment-missing", f"The file “{path}” is not in the notes folder")
            return ("a", attachment_url(found), ' class="attachment-link"')
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

    # -- code, diagrams, math -------------------------------------------------------------------

    def fence(self, tokens: Sequence[Token], idx: int, options: OptionsDict, env: Any) -> str:
        token = tokens[idx]
        lang = token.info.strip().split(maxsplit=1)[0].lower() if token.info.strip() else ""
        if lang == "mermaid":
            self._features.add("mermaid")
            return f'<figure class="mermaid-diagram"><pre class="mermaid-source"><code>{escapeHtml(token.content)}</code></pre></figure>\n'
        from notegraph.render.code import highlight_code

        self._features.add("code")
        return highlight_code(token.content, unescapeAll(token.info))

    def _math(self, tex: str, display: bool) -> str:
        from notegraph.render.math import tex_to_mathml

        return tex_to_mathml(tex, display)

    def math_inline(self, tokens: Sequence[Token], idx: int, options: OptionsDict, env: Any) -> str:
        return self._math(tokens[idx].content, False)

    def math_inline_double(self, tokens: Sequence[Token], idx: int, options: OptionsDict, env: Any) -> str:
        return self._math(tokens[idx].content, True)

    def math_block(self, tokens: Sequence[Token], idx: int, options: OptionsDict, env: Any) -> str:
        return f'<div class="math-display">{self._math(tokens[idx].content, True)}</div>\n'

    # -- callouts -----------------------------------------------------------------------------

    def callout_open(self, tokens: Sequence[Token], idx: int, options: OptionsDict, env: Any) -> str:
        meta = tokens[idx].meta
        attrs = f'class="callout callout--{meta["family"]}" data-callout="{escapeHtml(meta["type"])}"'
        if meta["fold"]:
            return f"<details {attrs}{' open' if meta['fold'] == '+' else ''}>\n"
        return f"<div {attrs}>\n"

    def callout_title_open(self, tokens: Sequence[Token], idx: int, options: OptionsDict, env: Any) -> str:
        meta = tokens[idx].meta  # the callout's own (parse.markdown._callouts gives each of its tokens)
        tag = "summary" if meta["fold"] else "div"
        return f'<{tag} class="callout__title">{callout_icon(meta["family"])}<span class="callout__label">'

    def callout_title_close(self, tokens: Sequence[Token], idx: int, options: OptionsDict, env: Any) -> str:
        tag = "summary" if tokens[idx].meta["fold"] else "div"
        return f'</span></{tag}>\n<div class="callout__body">\n'

    def callout_close(self, tokens: Sequence[Token], idx: int, options: OptionsDict, env: Any) -> str:
        return "</div>\n</details>\n" if tokens[idx].meta["fold"] else "</div>\n</div>\n"

    # -- transclusion -------------------------------------------------------------------------

    def transclusion(self, tokens: Sequence[Token], idx: int, options: OptionsDict, env: Any) -> str:
        """``![[Note]]``, ``![[Note#Heading]]``, ``![[Note#^block]]`` on a line of their own: the target's
        rendered text in a frame that names and links it; nested up to MAX_EMBED_DEPTH, never in a cycle."""
        meta = tokens[idx].meta
        source = self._note
        target = self._linker.resolve(source, meta["target"], meta["heading"], meta["block"], "wiki")
        embedded = self._linker.note_named(source, meta["target"]) if target.status == "ok" else None
        written = tokens[idx].content.split("|", 1)[0]
        if embedded is None:
            return f'<p class="transclusion transclusion--missing">{_span("dangling", target.message, escapeHtml(written))}</p>\n'
        label = escapeHtml(self._label(target, meta["heading"]) if not meta["block"] else target.title)
        head = f'<p class="transclusion__source"><a href="{escapeHtml(self._href(target))}">{label}</a></p>'
        if embedded.id in self._stack:
            notice = "This note embeds itself here; it is not shown again." if embedded.id == self._stack[-1] else "Already shown above: this embed would repeat it without end."
            return f'<aside class="transclusion transclusion--stopped">{head}<p class="transclusion__notice">{notice}</p></aside>\n'
        if len(self._stack) > MAX_EMBED_DEPTH:
            return f'<aside class="transclusion transclusion--stopped">{head}<p class="transclusion__notice">Embedded too deeply to show here.</p></aside>\n'
        inner = self._fragment(embedded, meta["heading"], meta["block"])
        if inner is None:
            what = f"block ^{meta['block']}" if meta["block"] else f"heading “{meta['heading']}”"
            return f'<aside class="transclusion transclusion--stopped">{head}<p class="transclusion__notice">No {escapeHtml(what)} in this note.</p></aside>\n'
        return f'<aside class="transclusion" aria-label="Embedded from {label}">{head}<div class="transclusion__body">\n{inner}</div></aside>\n'

    def _fragment(self, note: Note, heading: str | None, block: str | None) -> str | None:
        """The rendered body of ``note`` (or of its section or block), as it stands inside another page."""
        try:
            tokens = self._md.parse(blank_comments(note.body), {})
        except RecursionError:
            return f"<pre>{escapeHtml(note.body)}</pre>"
        if heading:
            tokens = _section(tokens, heading)
        elif block:
            tokens = _block(tokens, block)
        if tokens is None:
            return None
        for token in tokens:
            if token.attrs.get("id"):
                del token.attrs["id"]  # the page's own ids stay unique
        _hide_block_ids(tokens, note)
        _transclusions(tokens)
        saved = self._note
        self._note = note
        self._stack.append(note.id)
        try:
            _shift_headings(tokens, 3)
            for token in tokens:
                if token.type == "inline" and token.children:
                    self._prepare_links(token.children)
            return self.render(tokens, self._md.options, {})
        finally:
            self._stack.pop()
            self._note = saved


def _alt_and_size(shown: str | None) -> tuple[str, str, str]:
    """Obsidian's ``|400``, ``|400x300`` and ``alt|400`` after an embed's name: (alt, width, height)."""
    if not shown:
        return "", "", ""
    alt, _, tail = shown.rpartition("|")
    size = _SIZE_RE.match(tail.strip())
    if size:
        return alt.strip(), size.group(1), size.group(2) or ""
    return shown.strip(), "", ""


def _size_attrs(width: str, height: str) -> str:
    return (f' width="{width}"' if width else "") + (f' height="{height}"' if height else "")


def attachment_url(path: str) -> str:
    """A note page's link to the site's copy of an attachment (note pages sit one folder down)."""
    return f"../{ATTACHMENTS_DIR}/{quote(path)}"


@cache
def _icons() -> dict[str, str]:
    import json

    return json.loads((Path(__file__).parent / "static" / "vendor" / "callout-icons.json").read_text(encoding="utf-8"))


def callout_icon(family: str) -> str:
    """The callout family's Lucide icon (the icons Obsidian uses), inline, so it needs no request."""
    icons = _icons()
    return f'<span class="callout__icon">{icons.get(family) or icons.get("note", "")}</span>'


def _drop(tokens: list[Token], start: int) -> tuple[list[Token], list[Token]]:
    """Remove the block opened at ``start`` (open, inline, close); return (rest, removed)."""
    end = start
    depth = 0
    for end in range(start, len(tokens)):
        depth += tokens[end].nesting
        if depth == 0:
            break
    return tokens[:start] + tokens[end + 1 :], tokens[start : end + 1]


def _block_end(tokens: Sequence[Token], start: int) -> int:
    """The index just after the block opened at ``start``."""
    depth = 0
    for end in range(start, len(tokens)):
        depth += tokens[end].nesting
        if depth <= 0:
            return end + 1
    return len(tokens)


def _section(tokens: list[Token], heading: str) -> list[Token] | None:
    """The heading's section: the heading and what follows it up to the next heading as high or higher."""
    wanted = anchor_key(heading)
    for i, token in enumerate(tokens):
        if token.type == "heading_open" and anchor_key(_plain(tokens[i + 1].children or [])) == wanted:
            level = int(token.tag[1])
            end = next(
                (j for j in range(i + 3, len(tokens)) if tokens[j].type == "heading_open" and tokens[j].level == token.level and int(tokens[j].tag[1]) <= level),
                len(tokens),
            )
            return tokens[i:end]
    return None


def _tail_block_id(token: Token) -> re.Match[str] | None:
    """The ``^id`` an inline token ends with, if it ends with one."""
    if token.type != "inline" or not token.children:
        return None
    last = token.children[-1]
    return _BLOCK_TAIL_RE.search(last.content) if last.type == "text" else None


def _block(tokens: list[Token], block: str) -> list[Token] | None:
    """The block that ends with ``^block``: its paragraph, its list item, or, for a marker on a line of its
    own after a list, table or quote, that block."""
    for i, token in enumerate(tokens):
        match = _tail_block_id(token)
        if not match or match.group(1) != block:
            continue
        start = i - 1
        if start > 0 and tokens[start - 1].type == "list_item_open":
            start -= 1
        if token.content.strip() == f"^{block}" and start > 0:
            # the marker alone on its line: it names the block before it (found from its closing token)
            j, depth = start - 1, 0
            while j > 0:
                depth += tokens[j].nesting
                if depth == 0:
                    break
                j -= 1
            return tokens[j:start]
        return tokens[start : _block_end(tokens, start)]
    return None


def _hide_block_ids(tokens: Sequence[Token], note: Note) -> list[tuple[int, str]]:
    """Block ids ``^id`` end a paragraph: hide the marker. Returns (index of the inline token, id) for
    each, so that the caller can anchor the block."""
    found = []
    for i, token in enumerate(tokens):
        match = _tail_block_id(token)
        if match and match.group(1) in note.blocks:
            last = (token.children or [])[-1]
            last.content = last.content[: match.start()]
            found.append((i, match.group(1)))
    return found


def _is_note_embed(child: Token) -> bool:
    return child.type == "wikilink" and child.meta["embed"] and not is_attachment(child.meta["target"])


def _blank(child: Token) -> bool:
    return child.type in ("softbreak", "hardbreak") or (child.type == "text" and not child.content.strip())


def _transclusions(tokens: list[Token]) -> None:
    """A note embed on a line of its own (``![[Note]]``) becomes a ``transclusion`` block: a note's text
    cannot stand inside a paragraph, so the paragraph around it is cut in two there. An embed among other
    words on its line stays a link to the note."""
    i = 0
    while i < len(tokens):
        token = tokens[i]
        if token.type != "paragraph_open" or i + 2 >= len(tokens) or tokens[i + 1].type != "inline":
            i += 1
            continue
        children = tokens[i + 1].children or []
        pieces: list[list[Token] | Token] = [[]]  # runs of inline children, and embeds between them
        line_start = 0  # index in children where the current line starts
        for j, child in enumerate(children):
            if child.type in ("softbreak", "hardbreak"):
                line_start = j + 1
            if _is_note_embed(child) and all(_blank(c) for c in children[line_start:j]):
                end = next((k for k in range(j + 1, len(children)) if children[k].type in ("softbreak", "hardbreak")), len(children))
                if all(_blank(c) for c in children[j + 1 : end]):
                    pieces.append(child)
                    pieces.append([])
                    continue
            current = pieces[-1]
            assert isinstance(current, list)
            current.append(child)
        if len(pieces) == 1:
            i += 1
            continue
        blocks: list[Token] = []
        for piece in pieces:
            if isinstance(piece, Token):
                block = Token("transclusion", "", 0, map=token.map, level=token.level, block=True, content=piece.content)
                block.meta = piece.meta
                blocks.append(block)
                continue
            while piece and _blank(piece[-1]):
                piece.pop()
            while piece and _blank(piece[0]):
                piece.pop(0)
            if piece:
                inline = Token("inline", "", 0, map=token.map, level=tokens[i + 1].level, children=piece)
                closing = Token("paragraph_close", "p", -1, level=token.level, block=True, hidden=token.hidden)
                opening = Token("paragraph_open", "p", 1, map=token.map, level=token.level, block=True, hidden=token.hidden)
                blocks.extend([opening, inline, closing])
        tokens[i : i + 3] = blocks
        i += len(blocks)


def _shift_headings(tokens: Sequence[Token], base: int) -> None:
    """Body headings sit under the page's own: the highest becomes ``base``, the rest keep their order."""
    levels = [int(t.tag[1]) for t in tokens if t.type == "heading_open"]
    if levels:
        top = min(levels)
        for token in tokens:
            if token.type in ("heading_open", "heading_close"):
                token.tag = f"h{min(6, base + int(token.tag[1]) - top)}"


@cache
def _renderer_for(md: Any) -> _Renderer:
    return _Renderer(getattr(md.renderer, "rules", {}))


def render_body(note: Note, linker: Linker, *, allow_html: bool = False, has_question: bool = False) -> Body:
    """Render ``note.body``; the opening ``# Title`` and the lede paragraph move to the page header."""
    md = make_markdown(allow_html, linker.dialect)
    env: dict[str, Any] = {}
    try:
        tokens = md.parse(blank_comments(note.body), env)
    except RecursionError:
        return Body(None, f"<pre>{escapeHtml(note.body)}</pre>")
    renderer = _renderer_for(md).bind(note, linker, md)

    # ids are given by position among all headings, as parse listed them (the title h1 included)
    ids = linker.heading_ids(note)
    heading_opens = [i for i, t in enumerate(tokens) if t.type == "heading_open"]
    if len(ids) != len(heading_opens):
        ids = heading_ids([_plain(tokens[i + 1].children or []) for i in heading_opens])
    for i, anchor in zip(heading_opens, ids, strict=True):
        tokens[i].attrSet("id", anchor)

    # a heading the note opens with that repeats its title is the page's h1 already
    if tokens and tokens[0].type == "heading_open" and tokens[0].tag == "h1":
        if _plain(tokens[1].children or []) == " ".join(note.title.split()):
            tokens, _ = _drop(tokens, 0)
    # block ids `^id` end a paragraph: hide the marker and anchor the block
    for i, block in _hide_block_ids(tokens, note):
        j = i - 1
        while j > 0 and tokens[j].hidden:
            j -= 1
        if tokens[j].nesting == 1 and not tokens[j].attrGet("id"):
            tokens[j].attrSet("id", f"block-{block}")

    _transclusions(tokens)  # before the lede is looked for: an embed on its own line is never the lede
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

    # body headings sit under the page's h1 (and the question's h2)
    _shift_headings(tokens, 3 if has_question else 2)

    for token in tokens:
        if token.type == "inline" and token.children:
            renderer._prepare_links(token.children)
    if lede_children:
        renderer._prepare_links(lede_children)

    html = renderer.render(tokens, md.options, env)
    lede_html = renderer.renderInline(lede_children, md.options, env) if lede_children else None
    if allow_html:
        html = sanitise(html, linker.remote_images)
        lede_html = sanitise(lede_html, linker.remote_images) if lede_html else lede_html
    return Body(lede_html, html, lede_id, frozenset(renderer._features))


# -- sanitising raw HTML (allow_html) -----------------------------------------------------------------

_EXTRA_TAGS = {"section", "input", "figure", "figcaption", "time", "mark", "details", "summary"}
_GLOBAL_ATTRS = {"class", "id", "title", "lang", "dir"}
_SHAPE = {"fill", "stroke", "stroke-width", "stroke-linecap", "stroke-linejoin"}
_ICON_SVG = {
    "svg": {"xmlns", "width", "height", "viewBox", "viewbox", "aria-hidden", "focusable"} | _SHAPE,
    "path": {"d"} | _SHAPE,
    "circle": {"cx", "cy", "r"} | _SHAPE,
    "ellipse": {"cx", "cy", "rx", "ry"} | _SHAPE,
    "rect": {"x", "y", "width", "height", "rx", "ry"} | _SHAPE,
    "line": {"x1", "y1", "x2", "y2"} | _SHAPE,
    "polyline": {"points"} | _SHAPE,
    "polygon": {"points"} | _SHAPE,
}


@cache
def _nh3_settings() -> tuple[set[str], dict[str, set[str]]]:
    import nh3

    from notegraph.render.math import ATTRIBUTES as MATH_ATTRIBUTES
    from notegraph.render.math import ELEMENTS as MATH_ELEMENTS

    tags = set(nh3.ALLOWED_TAGS) | _EXTRA_TAGS | set(MATH_ELEMENTS) | {"audio", "video", "iframe", "source"}
    attributes = {tag: set(attrs) - {"rel"} for tag, attrs in nh3.ALLOWED_ATTRIBUTES.items()}
    attributes["*"] = set(attributes.get("*", set())) | _GLOBAL_ATTRS
    for tag in MATH_ELEMENTS:  # our own MathML (math.py's allowlist), kept when the note's HTML is cleaned
        attributes[tag] = set(MATH_ATTRIBUTES)
    for tag, attrs in _ICON_SVG.items():  # the callouts' icons: shapes only, no scripts, links or styles
        tags.add(tag)
        attributes[tag] = attrs
    for tag in ("div", "details"):
        attributes[tag] = attributes.get(tag, set()) | {"data-callout"}
    for tag in ("audio", "video", "iframe", "img"):  # attachments: src is checked by _attribute_filter
        attributes[tag] = attributes.get(tag, set()) | {"src", "controls", "preload", "width", "height", "loading", "decoding", "title", "alt"}
    attributes["input"] = {"type", "checked", "disabled"}
    attributes["time"] = {"datetime"}
    return tags, attributes


_OWN_PAGE_RE = re.compile(r"^[a-z0-9-]+\.html(?:#[^\s\"'<>]*)?$")  # a link the renderer makes to a note page


def _own_file(value: str) -> bool:
    """A link the renderer itself made: to a note page beside this one, or to the site's copy of an
    attachment."""
    return bool(_OWN_PAGE_RE.match(value)) or (value.startswith(f"../{ATTACHMENTS_DIR}/") and "/../" not in value)


def _attribute_filter(tag: str, attr: str, value: str, remote_images: bool = False) -> str | None:
    if attr == "src":
        # nothing is fetched from elsewhere (unless remote_images): inline images and the site's own files
        if re.match(r"^data:image/(png|gif|jpeg|webp);", value) or _own_file(value):
            return value
        if remote_images and tag == "img" and value.lower().startswith("https://"):
            return value
        return None
    if attr == "href":
        scheme = _SCHEME_RE.match(value)
        if value.startswith("#") or (scheme and scheme.group(1).lower() in SAFE_SCHEMES) or _own_file(value):
            return value
        return None  # a relative path in raw HTML would be a broken link on the site
    if attr == "type" and tag == "input":
        return value if value == "checkbox" else None
    return value


def sanitise(html: str, remote_images: bool = False) -> str:
    """nh3 (ammonia): no scripts, no event handlers, no javascript:/data: URLs, no remote images unless
    ``remote_images``; the links the renderer made to note pages and attachments stay."""
    import nh3

    tags, attributes = _nh3_settings()
    return nh3.clean(
        html,
        tags=tags,
        attributes=attributes,
        url_schemes={"http", "https", "mailto", "data"},
        attribute_filter=partial(_attribute_filter, remote_images=remote_images),
        strip_comments=True,
        link_rel="noopener noreferrer",
    )
