"""One file's bytes -> a Note: decoding, front matter, markdown tokens, links, tags, lede, clean text."""

from __future__ import annotations

import bisect
import datetime as dt
import hashlib
import posixpath
import re
from collections.abc import Iterable, Mapping
from typing import Any
from urllib.parse import unquote

import yaml
from markdown_it.token import Token

from notegraph.model import KINDS, Diagnostic, Note, RawLink
from notegraph.parse.markdown import (
    BLOCK_ID_RE,
    blank_comments,
    find_tags,
    make_markdown,
    split_wikilink,
)

_WIKILINK_IN_TEXT_RE = re.compile(r"(!?)\[\[([^\[\]\n]+?)\]\]")
_HTML_TAG_RE = re.compile(r"</?[A-Za-z][^<>]*>")
_SCHEME_RE = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*:")
_SENTENCE_END_RE = re.compile(r"(?<=[.!?])\s+(?=[\"'(\[A-Z0-9])")
# files a note can embed or link to besides notes: Obsidian's image, audio, video and PDF types, and a few
# more that vaults keep beside their notes
IMAGE_EXTS = frozenset("png jpg jpeg gif svg webp bmp avif".split())
AUDIO_EXTS = frozenset("mp3 wav m4a flac ogg oga 3gp".split())
VIDEO_EXTS = frozenset("mp4 webm ogv mov mkv".split())
ATTACHMENT_EXTS = IMAGE_EXTS | AUDIO_EXTS | VIDEO_EXTS | frozenset("pdf csv zip excalidraw canvas".split())


def is_attachment(path: str) -> bool:
    """Whether a link target or file name names an attachment (by its extension), not a note."""
    base = path.rsplit("/", 1)[-1]
    return "." in base and base.rsplit(".", 1)[1].lower() in ATTACHMENT_EXTS
_MAX_CONTEXT = 400


class _Diag:
    """Collects diagnostics for one file."""

    def __init__(self, path: str) -> None:
        self.path = path
        self.items: list[Diagnostic] = []

    def error(self, line: int, code: str, message: str) -> None:
        self.items.append(Diagnostic(self.path, max(line, 1), "error", code, message))

    def warn(self, line: int, code: str, message: str) -> None:
        self.items.append(Diagnostic(self.path, max(line, 1), "warning", code, message))


def decode(data: bytes, diag: _Diag) -> str | None:
    """Bytes -> text, best effort: BOMs honoured, UTF-16 accepted, bad bytes replaced and reported."""
    if not data.strip():
        diag.warn(1, "empty-file", "file is empty")
        return ""
    if data.startswith((b"\xff\xfe", b"\xfe\xff")):
        diag.warn(1, "encoding", "file is UTF-16; read it, but save notes as UTF-8")
        text = data.decode("utf-16", errors="replace")
    else:
        if b"\x00" in data[:8192]:
            diag.error(1, "binary-file", "file is binary, not a markdown note; skipped")
            return None
        try:
            text = data.decode("utf-8-sig")
        except UnicodeDecodeError as exc:
            line = data[: exc.start].count(b"\n") + 1
            diag.warn(line, "encoding", f"file is not valid UTF-8 (byte 0x{data[exc.start]:02x}); read with replacement")
            text = data.decode("utf-8-sig", errors="replace")
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    if "\x00" in text:
        line = text[: text.index("\x00")].count("\n") + 1
        diag.warn(line, "nul-byte", f"file holds {text.count(chr(0))} NUL byte(s), the first on this line; read as U+FFFD")
        text = text.replace("\x00", "\ufffd")
    return text.lstrip("\ufeff")


def split_front_matter(text: str, diag: _Diag) -> tuple[dict[str, Any], str, int, list[str]]:
    """Returns (front matter, body, line number of the body's first line, front matter lines)."""
    if not text.startswith("---\n") and text.rstrip("\n") != "---":
        return {}, text, 1, []
    lines = text.split("\n")
    for index in range(1, len(lines)):
        if lines[index].rstrip() in ("---", "..."):
            fm_lines = lines[1:index]
            body = "\n".join(lines[index + 1 :])
            return _load_yaml("\n".join(fm_lines), diag), body, index + 2, fm_lines
    diag.error(1, "front-matter", "front matter opened with '---' but never closed; read as body")
    return {}, text, 1, []


# libyaml's parser with PyYAML's safe constructors when PyYAML was built with it (its wheels are): the
# same data, 8x faster than the pure-Python SafeLoader, which was most of parsing a note
def _lenient(base: Any) -> Any:
    """``base`` with PyYAML's timestamp and integer constructors made lenient: a date that is no date
    (``2026-02-30``, ``0000-01-01``, ``25:61:61``) or an integer longer than Python reads (4,300 digits)
    stays the text written, for the field's own check to report, instead of a ValueError from deep
    inside the loader."""

    class Loader(base):
        pass

    def timestamp(loader: Any, node: Any) -> Any:
        try:
            return yaml.constructor.SafeConstructor.construct_yaml_timestamp(loader, node)
        except (ValueError, OverflowError):
            return loader.construct_scalar(node)

    def integer(loader: Any, node: Any) -> Any:
        try:
            return yaml.constructor.SafeConstructor.construct_yaml_int(loader, node)
        except ValueError:
            return loader.construct_scalar(node)

    Loader.add_constructor("tag:yaml.org,2002:timestamp", timestamp)
    Loader.add_constructor("tag:yaml.org,2002:int", integer)
    return Loader


_FAST_LOADER: Any = _lenient(getattr(yaml, "CSafeLoader", yaml.SafeLoader))
_PY_LOADER: Any = _lenient(yaml.SafeLoader)
MAX_FRONT_MATTER_VALUES = 100_000  # values front matter may expand to through YAML aliases


def _parse_yaml(source: str) -> Any:
    """Front matter through libyaml, and through the pure-Python loader where libyaml refuses it.

    The two disagree at the edges: libyaml reads ``[What is X?]`` as YAML 1.2 does, the Python loader
    refuses it; the Python loader takes JSON-style surrogate pairs ("\\ud83c\\udf32", as Dendron writes
    them), libyaml refuses them. A note either accepts is read, and an error is the Python loader's,
    whose line marks are the ones a reader can use (libyaml marks an unclosed list a line late)."""
    try:
        return yaml.load(source, Loader=_FAST_LOADER)
    except yaml.YAMLError:
        if not hasattr(yaml, "CSafeLoader"):
            raise
        data = yaml.load(source, Loader=_PY_LOADER)
        return data if _expanded_size(data) > MAX_FRONT_MATTER_VALUES else _join_surrogates(data)


def _expanded_size(value: Any) -> int:
    """How many values ``value`` holds once its YAML aliases are written out (a 1 KB "billion laughs"
    holds billions), counted over the shared structure, each object once: linear in what was parsed."""
    sizes: dict[int, int] = {}
    keep: list[Any] = []  # ids stay unique while the objects live

    def size(item: Any) -> int:
        key = id(item)
        if key in sizes:
            return sizes[key]
        sizes[key] = MAX_FRONT_MATTER_VALUES + 1  # a value that holds itself never ends
        keep.append(item)
        if isinstance(item, dict):
            total = 1 + sum(size(k) + size(v) for k, v in item.items())
        elif isinstance(item, list):
            total = 1 + sum(size(v) for v in item)
        else:
            total = 1
        sizes[key] = min(total, 10 * MAX_FRONT_MATTER_VALUES)
        return sizes[key]

    return size(value)


def _join_surrogates(value: Any, depth: int = 0) -> Any:
    """Strings with surrogate pairs joined into their characters (the Python loader leaves "\\ud83c
    \\udf32" as two lone surrogates, which no file can be written with) and lone ones replaced."""
    if isinstance(value, str):
        if any("\ud800" <= char <= "\udfff" for char in value):
            return value.encode("utf-16", "surrogatepass").decode("utf-16", "replace")
        return value
    if depth > 50:
        return value
    if isinstance(value, dict):
        return {_join_surrogates(k, depth + 1): _join_surrogates(v, depth + 1) for k, v in value.items()}
    if isinstance(value, list):
        return [_join_surrogates(v, depth + 1) for v in value]
    return value


def _load_yaml(source: str, diag: _Diag) -> dict[str, Any]:
    try:
        data = _parse_yaml(source) if source.strip() else {}
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = (mark.line + 2) if mark is not None else 1
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        diag.error(line, "front-matter", f"invalid YAML front matter: {problem}; front matter ignored")
        return {}
    except RecursionError:
        diag.error(1, "front-matter", "front matter is nested too deeply; ignored")
        return {}
    except (ValueError, TypeError, OverflowError) as exc:  # a value PyYAML's constructors refuse
        diag.error(1, "front-matter", f"invalid value in front matter: {str(exc).splitlines()[0][:200]}; front matter ignored")
        return {}
    try:
        too_big = _expanded_size(data) > MAX_FRONT_MATTER_VALUES
    except RecursionError:
        too_big = True
    if too_big:
        diag.error(1, "front-matter", f"front matter expands to more than {MAX_FRONT_MATTER_VALUES:,} values through YAML aliases; ignored")
        return {}
    if data is None:
        return {}
    if not isinstance(data, dict):
        diag.error(2, "front-matter", f"front matter is a {type(data).__name__}, not a mapping; ignored")
        return {}
    return {str(key): value for key, value in data.items()}


def json_safe(value: Any, depth: int = 0) -> Any:
    """Front matter values as JSON-safe data: dates become ISO strings, unknown objects strings."""
    if depth > 20:
        return None
    if isinstance(value, dt.datetime | dt.date):
        return value.isoformat()
    if isinstance(value, Mapping):
        return {str(k): json_safe(v, depth + 1) for k, v in value.items()}
    if isinstance(value, list | tuple | set):
        return [json_safe(v, depth + 1) for v in value]
    if value is None or isinstance(value, bool | int | float | str):
        return value
    return str(value)


def _field_line(fm_lines: list[str], key: str) -> int:
    prefix = f"{key}:"
    for index, line in enumerate(fm_lines):
        if line.startswith(prefix):
            return index + 2
    return 1


def _string_list(meta: Mapping[str, Any], key: str, fm_lines: list[str], diag: _Diag) -> tuple[str, ...]:
    value = meta.get(key)
    if value is None:
        return ()
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, list):
        diag.warn(_field_line(fm_lines, key), "front-matter-type", f"'{key}' should be a list of strings, not {value!r}; ignored")
        return ()
    out = []
    for item in value:
        if isinstance(item, str | int | float) and not isinstance(item, bool) and str(item).strip():
            out.append(_shown(str(item), key, fm_lines, diag).strip())
        elif item is not None:
            diag.warn(_field_line(fm_lines, key), "front-matter-type", f"'{key}' item {item!r} is not a string; ignored")
    return tuple(dict.fromkeys(out))


_CONTROL_RE = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")


def _shown(value: str, key: str, fm_lines: list[str], diag: _Diag) -> str:
    """A front matter text a page shows, without control characters (a YAML "\\0" is a real NUL)."""
    if not _CONTROL_RE.search(value):
        return value
    diag.warn(_field_line(fm_lines, key), "control-character", f"'{key}' holds control characters; shown as U+FFFD")
    return _CONTROL_RE.sub("\ufffd", value)


def _string(meta: Mapping[str, Any], key: str, fm_lines: list[str], diag: _Diag) -> str | None:
    value = meta.get(key)
    if value is None:
        return None
    if isinstance(value, str | int | float) and not isinstance(value, bool):
        return _shown(str(value), key, fm_lines, diag).strip() or None
    diag.warn(_field_line(fm_lines, key), "front-matter-type", f"'{key}' should be text, not {type(value).__name__}; ignored")
    return None


def _date(meta: Mapping[str, Any], fm_lines: list[str], diag: _Diag) -> str | None:
    value = meta.get("date")
    if value is None:
        return None
    if isinstance(value, dt.datetime):
        return value.date().isoformat()
    if isinstance(value, dt.date):
        return value.isoformat()
    if isinstance(value, str):
        try:
            return dt.date.fromisoformat(value.strip()[:10]).isoformat()
        except ValueError:
            pass
    diag.warn(_field_line(fm_lines, "date"), "front-matter-type", f"'date: {value}' is not a date (use YYYY-MM-DD); ignored")
    return None


def _inline_plain(children: Iterable[Token], links_out: list[tuple[int, dict[str, Any]]] | None = None) -> str:
    """Plain text of an inline token's children; records (offset in the plain text, link info)."""
    parts: list[str] = []
    length = 0
    for child in children:
        text = ""
        if child.type == "text":
            text = _HTML_TAG_RE.sub("", child.content)  # raw HTML is markup, not prose
        elif child.type == "code_inline":
            text = child.content
        elif child.type in ("softbreak", "hardbreak"):
            text = " "
        elif child.type == "wikilink":
            meta = child.meta
            text = meta["shown"] or meta["target"] or (meta["heading"] or "")
            if meta["embed"] and is_attachment(meta["target"]):
                text = ""
            if links_out is not None:
                links_out.append((length, {"kind": "wiki", **meta}))
        elif child.type == "angle_link":
            text = child.meta["href"]
            if links_out is not None:
                links_out.append((length, {"kind": "markdown", "href": child.meta["href"], "shown": None, "offset": child.meta["offset"]}))
        elif child.type == "link_open":
            if links_out is not None:
                links_out.append((length, {"kind": "markdown", "href": str(child.attrs.get("href", "")), "shown": ""}))
        elif child.type == "image":
            text = child.content
            if links_out is not None:
                links_out.append((length, {"kind": "markdown", "href": str(child.attrs.get("src", "")), "shown": text, "embed": True}))
        parts.append(text)
        length += len(text)
    return "".join(parts)


class _Sentences:
    """Sentence boundaries of one paragraph, found once; each link's sentence is then a bisect."""

    def __init__(self, text: str) -> None:
        self.text = text
        self.starts = [0]
        self.ends: list[int] = []
        for match in _SENTENCE_END_RE.finditer(text):
            self.ends.append(match.start())
            self.starts.append(match.end())
        self.ends.append(len(text))

    def at(self, offset: int) -> str:
        i = max(bisect.bisect_right(self.starts, offset) - 1, 0)
        # a window around the link bounds the work when a "sentence" is a megabyte long
        start = max(self.starts[i], offset - _MAX_CONTEXT // 2)
        end = min(self.ends[i], offset + _MAX_CONTEXT // 2)
        words = self.text[start:end].split()
        head = "…" if start > self.starts[i] else ""
        tail = "…" if end < self.ends[i] else ""
        if head and words:
            words = words[1:]  # the window may have cut the first word
        if tail and words:
            words = words[:-1]
        sentence = head + " ".join(words) + tail
        if len(sentence) > _MAX_CONTEXT:
            sentence = sentence[:_MAX_CONTEXT].rsplit(" ", 1)[0] + "…"
        return sentence


def _shown_of_markdown_link(children: list[Token], start: int) -> str:
    parts = []
    for child in children[start + 1 :]:
        if child.type == "link_close":
            break
        parts.append(child.content)
    return "".join(parts)


class _Lines:
    """Newline offsets of one inline token's source, found once; a link's line is then a bisect."""

    def __init__(self, src: str, token_map: list[int] | None, body_line: int) -> None:
        self.base = body_line + (token_map[0] if token_map else 0)
        self.newlines = [i for i, ch in enumerate(src) if ch == "\n"] if "\n" in src else []

    def at(self, offset: int) -> int:
        return self.base + bisect.bisect_left(self.newlines, max(offset, 0))


def _make_raw_link(info: dict[str, Any], line: int, context: str) -> RawLink | None:
    if info["kind"] == "wiki":
        shown = info["shown"]
        target = info["target"]
        if info["embed"] and shown is not None and re.fullmatch(r"\d+(x\d+)?", shown):
            shown = None  # ![[img.png|400]] is a size, not an alias
        return RawLink(
            target=target,
            line=line,
            style="wiki",
            shown=shown,
            heading=info["heading"],
            block=info["block"],
            embed=info["embed"],
            context=context,
        )
    href = info["href"].strip()
    if not href or _SCHEME_RE.match(href) or href.startswith("//"):
        return None  # external URL: not a note link
    path, _, anchor = href.partition("#")
    path = unquote(path)
    if path and not path.lower().endswith(".md") and "." in posixpath.basename(path):
        ext = posixpath.basename(path).rsplit(".", 1)[-1].lower()
        if ext not in ATTACHMENT_EXTS:
            return None  # a link to some other kind of file (html, txt...): not ours to resolve
    heading = unquote(anchor) if anchor and not anchor.startswith("^") else None
    block = anchor[1:] if anchor.startswith("^") else None
    embed = bool(info.get("embed"))
    return RawLink(target=path, line=line, style="markdown", shown=info.get("shown") or None, heading=heading, block=block, embed=embed, context=context)


def parse_note(
    relpath: str, data: bytes, *, allow_html: bool = False, dialect: str = "obsidian", title_from_heading: bool = False
) -> tuple[Note | None, list[Diagnostic]]:
    """Parse one note. Never raises for bad content: problems become diagnostics.

    The title is the front matter's ``title``, else the file name, as Obsidian shows it; an opening
    ``# Heading`` is content (``# ToC``, ``# Resources``), unless ``title_from_heading``."""
    diag = _Diag(relpath)
    text = decode(data, diag)
    if text is None:
        return None, diag.items
    meta, body, body_line, fm_lines = split_front_matter(text, diag)
    body_clean = blank_comments(body)
    md = make_markdown(allow_html, dialect)
    try:
        tokens = md.parse(body_clean)
    except RecursionError:
        diag.error(body_line, "too-deep", "markdown is nested too deeply to parse; body read as plain text")
        tokens = []

    links: list[RawLink] = []
    headings: list[str] = []
    paragraphs: list[str] = []
    plain_parts: list[str] = []
    first_h1: str | None = None
    lede = ""
    tags: list[str] = []
    parents: list[str] = []
    for index, token in enumerate(tokens):
        if token.nesting == 1:
            parents.append(token.type)
        elif token.nesting == -1 and parents:
            parents.pop()
        if token.type != "inline":
            continue  # fences and code blocks carry no links, tags or prose
        children = token.children or []
        found: list[tuple[int, dict[str, Any]]] = []
        plain = _inline_plain(children, found)
        parent = tokens[index - 1].type if index else ""
        if parent == "heading_open":
            headings.append(plain.strip())
            if not plain_parts and tokens[index - 1].tag == "h1":
                first_h1 = plain.strip()  # a title only when the note opens with it
        else:
            tags.extend(find_tags(" ".join(c.content for c in children if c.type == "text")))
            quoted = "blockquote_open" in parents or "callout_open" in parents
            if parent == "paragraph_open" and not quoted and plain.strip() and not _only_embeds(children):
                paragraphs.append(plain.strip())
                if not lede and "list_item_open" not in parents:
                    lede = " ".join(plain.split())
        plain_parts.append(plain)
        # line numbers: offsets of link syntax in the inline source
        src = token.content
        lines = _Lines(src, token.map, body_line)
        sentences = _Sentences(plain) if found else None
        search_from = 0
        md_link_children = [i for i, c in enumerate(children) if c.type == "link_open"]
        md_iter = iter(md_link_children)
        for plain_offset, info in found:
            if info["kind"] == "wiki" or "offset" in info:
                src_offset = info.get("offset", 0)
            else:
                href = info["href"]
                pos = src.find("](" + href, search_from)
                if pos < 0:
                    pos = src.find(href, search_from)
                src_offset = max(pos, 0)
                search_from = src_offset + 1
                child_index = None if info.get("embed") else next(md_iter, None)
                if child_index is not None:
                    info["shown"] = _shown_of_markdown_link(children, child_index)
            assert sentences is not None
            raw = _make_raw_link(info, lines.at(src_offset), sentences.at(plain_offset))
            if raw is not None:
                links.append(raw)

    blocks = tuple(m.group(1) for m in (BLOCK_ID_RE.search(line) for line in body.split("\n")) if m)

    stem = posixpath.splitext(posixpath.basename(relpath))[0]
    note_id = posixpath.splitext(relpath)[0]

    title = _string(meta, "title", fm_lines, diag) or (first_h1 if title_from_heading else None) or stem
    kind = (_string(meta, "kind", fm_lines, diag) or "synthesis").lower()
    if kind not in KINDS:
        diag.warn(_field_line(fm_lines, "kind"), "unknown-kind", f"kind '{kind}' is not one of {', '.join(KINDS)}; using synthesis")
        kind = "synthesis"

    # links written in front matter values: `sources: ["[[Note]]"]`, `related: "[[X]]"`
    _string_list(meta, "sources", fm_lines, diag)  # type check only; the links are taken below
    for key, value in meta.items():
        for item in _strings_in(value):
            line = _fm_line_of(fm_lines, key, item)
            matched = False
            for match in _WIKILINK_IN_TEXT_RE.finditer(item):
                target, heading, block, shown = split_wikilink(match.group(2), dialect == "dendron")
                links.append(RawLink(target=target, line=line, style="frontmatter", shown=shown, heading=heading, block=block, field=key))
                matched = True
            if key == "sources" and not matched and item.strip():
                links.append(RawLink(target=item.strip(), line=line, style="frontmatter", field=key))

    links.extend(_numbered_requires(meta, fm_lines, stem))
    lede_text = " ".join(paragraphs[0].split()) if paragraphs and not lede else lede
    tags_all = tuple(dict.fromkeys([*_string_list(meta, "tags", fm_lines, diag), *tags]))
    note = Note(
        id=note_id,
        path=relpath,
        title=title,
        kind=kind,
        date=_date(meta, fm_lines, diag),
        topics=_string_list(meta, "topics", fm_lines, diag),
        claim=_string(meta, "claim", fm_lines, diag),
        question=_string(meta, "question", fm_lines, diag),
        aliases=_string_list(meta, "aliases", fm_lines, diag),
        tags=tuple(t.lstrip("#") for t in tags_all),
        lede=lede_text,
        body=body,
        body_line=body_line,
        meta=json_safe(meta),
        headings=tuple(headings),
        blocks=blocks,
        links=tuple(links),
        text=" ".join(" ".join(plain_parts).split()),
        content_hash=hashlib.sha256(data).hexdigest(),
    )
    return note, diag.items


def _only_embeds(children: list[Token]) -> bool:
    """A paragraph of embeds alone (``![[Other note]]``, ``![[img.png]]``) shows other files: never the lede."""
    embeds = [c for c in children if c.type == "wikilink" and c.meta["embed"] or c.type == "image"]
    return bool(embeds) and all(c in embeds or c.type in ("softbreak", "hardbreak") or (c.type == "text" and not c.content.strip()) for c in children)


def _numbered_requires(meta: Mapping[str, Any], fm_lines: list[str], stem: str) -> list[RawLink]:
    """`requires: 1559, 20` in numbered collections (EIPs, RFCs, PEPs): links to siblings `eip-1559`, `eip-20`."""
    value = meta.get("requires")
    match = re.match(r"^(.*?\D)\d+$", stem)
    if value is None or not match:
        return []
    items = value if isinstance(value, list) else re.split(r"[,\s]+", str(value))
    line = _field_line(fm_lines, "requires")
    return [
        RawLink(target=f"{match.group(1)}{int(str(item).strip())}", line=line, style="frontmatter", field="requires")
        for item in items
        if str(item).strip().isdigit()
    ]


def _strings_in(value: Any, depth: int = 0) -> list[str]:
    if depth > 10:
        return []
    if isinstance(value, str):
        return [value]
    if isinstance(value, list | tuple):
        return [s for item in value for s in _strings_in(item, depth + 1)]
    if isinstance(value, dict):
        return [s for item in value.values() for s in _strings_in(item, depth + 1)]
    return []


def _fm_line_of(fm_lines: list[str], key: str, item: str) -> int:
    needle = item.strip()[:40]
    start = _field_line(fm_lines, key) - 2
    for index in range(max(start, 0), len(fm_lines)):
        if needle and needle in fm_lines[index]:
            return index + 2
    return start + 2 if start >= 0 else 1
