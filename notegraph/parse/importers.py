"""Importers: plain-text reference pages, BibTeX and CSL-JSON -> markdown notes (text, never files)."""

from __future__ import annotations

import datetime as dt
import json
import re
import unicodedata
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import yaml

from notegraph.model import KINDS, Diagnostic

_KIND_HEADER_RE = re.compile(r"^(SYNTHESIS|CONCEPT|PAPER|INQUIRY)(?: NOTE)?$")
_META_RE = re.compile(r"^(Synthesis|Concept|Paper|Inquiry) note\s*·\s*(\d{4}-\d{2}-\d{2})\s*$")
# the generated trailing sections of a page: recognised, never copied into the body
_TRAILER_RES = [
    re.compile(r"^Inquiring lines that use this note as a source\s*\d*$"),
    re.compile(r"^This note is a source for these synthesized inquiries\."),
    re.compile(r"^Related concepts in this collection\s*\d*$"),
    re.compile(r"^This note in its neighbourhood"),
    re.compile(r"^Concept map$"),
    re.compile(r"^\d+ direct connections? · \d+ in 2-hop network"),
    re.compile(r"^Click a node to walk"),
    re.compile(r"^your link\s+semantically near\s+linked from elsewhere$"),
    re.compile(r"^Related papers in this collection\s*\d*$"),
    re.compile(r"^Papers most semantically related to this note"),
]
_ORIGINAL_TITLE = "Original note title"
_CONTROL_RE = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")


@dataclass
class ImportedNote:
    """One note to write: its file name (relative), markdown text, and problems met."""

    filename: str
    text: str
    title: str
    diagnostics: list[Diagnostic] = field(default_factory=list)


def slugify(text: str, limit: int = 80) -> str:
    normal = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode()
    slug = re.sub(r"[^a-z0-9]+", "-", normal.lower()).strip("-")
    if len(slug) > limit:
        cut = slug[: limit + 1].rsplit("-", 1)[0]  # whole words only
        slug = cut if "-" in slug[: limit + 1] and len(cut) >= limit // 2 else slug[:limit]
    return slug.rstrip("-") or "note"


def split_topics(line: str, vocabulary: Sequence[str]) -> tuple[list[str], str]:
    """Split a topics line that runs topics together with no separator, using the known topics.

    Longest known topic first at each position; words that match no known topic are gathered into one
    unknown topic (returned second, so the caller can warn)."""
    known = sorted({v.strip() for v in vocabulary if v.strip()}, key=len, reverse=True)
    words = line.split()
    topics: list[str] = []
    unknown: list[str] = []
    pos = 0
    while pos < len(words):
        for topic in known:
            topic_words = topic.split()
            if [w.lower() for w in words[pos : pos + len(topic_words)]] == [w.lower() for w in topic_words]:
                if unknown:
                    topics.append(" ".join(unknown))
                    unknown = []
                topics.append(topic)
                pos += len(topic_words)
                break
        else:
            unknown.append(words[pos])
            pos += 1
    leftover = " ".join(unknown)
    if leftover:
        topics.append(leftover)
    unknown_topics = [t for t in topics if t not in known]
    return topics, "; ".join(unknown_topics)


def link_titles(text: str, titles: Mapping[str, str], min_length: int = 12) -> str:
    """Turn verbatim mentions of existing notes' titles into [[id|Title]] links (first mention each)."""
    for title in sorted(titles, key=len, reverse=True):
        if len(title) < min_length:
            continue
        pattern = re.compile(r"(?<!\[\[)(?<![\w|])" + re.escape(title) + r"(?![\w\]])")
        match = pattern.search(text)
        if match:
            text = text[: match.start()] + f"[[{titles[title]}|{title}]]" + text[match.end() :]
    return text


def _paragraphs(text: str) -> list[tuple[int, str]]:
    """Non-empty lines with their line numbers: in this format every line is one paragraph."""
    lines = text.replace("\r\n", "\n").split("\n")
    return [(number, line.strip()) for number, line in enumerate(lines, start=1) if line.strip()]


def front_matter(meta: Mapping[str, Any]) -> str:
    clean = {k: v for k, v in meta.items() if v not in (None, "", [], ())}
    return "---\n" + yaml.safe_dump(clean, sort_keys=False, allow_unicode=True, width=1000) + "---\n"


def import_page(name: str, text: str, vocabulary: Sequence[str], titles: Mapping[str, str]) -> ImportedNote:
    """One page in the plain-text format of the reference page -> a markdown note."""
    diagnostics: list[Diagnostic] = []
    cleaned = _CONTROL_RE.sub("", text.lstrip("\ufeff"))
    if cleaned != text.lstrip("\ufeff"):
        line = text[: _CONTROL_RE.search(text).start()].count("\n") + 1  # type: ignore[union-attr]
        diagnostics.append(Diagnostic(name, line, "warning", "control-characters", "control characters removed"))
    paragraphs = _paragraphs(cleaned)
    if not paragraphs:
        raise ValueError(f"{name}:1: page is empty")
    kind = "synthesis"
    index = 0
    header = _KIND_HEADER_RE.match(paragraphs[0][1].strip())
    if header:
        kind = header.group(1).lower()
        index = 1
    else:
        diagnostics.append(Diagnostic(name, paragraphs[0][0], "warning", "import-header", "no 'SYNTHESIS NOTE' header line; kind set to synthesis"))
    meta_at = next((i for i, (_, p) in enumerate(paragraphs) if _META_RE.match(p)), None)
    topics: list[str] = []
    title = ""
    lede = ""
    date: dt.date | None = None
    if meta_at is None:
        diagnostics.append(Diagnostic(name, 1, "warning", "import-date", "no 'Synthesis note · YYYY-MM-DD' line; no date"))
        head = paragraphs[index : index + 3]
        body_from = index + 3
    else:
        head = paragraphs[index:meta_at]
        body_from = meta_at + 1
        match = _META_RE.match(paragraphs[meta_at][1])
        assert match is not None
        try:
            date = dt.date.fromisoformat(match.group(2))
        except ValueError:
            diagnostics.append(Diagnostic(name, paragraphs[meta_at][0], "warning", "import-date", f"'{match.group(2)}' is not a date"))
    if len(head) >= 3:
        topic_line = head[0]
        topics, unknown = split_topics(topic_line[1], vocabulary)
        if unknown:
            diagnostics.append(
                Diagnostic(name, topic_line[0], "warning", "unknown-topic", f"topic(s) not in the vocabulary: {unknown} (add them to notegraph.toml 'topics')")
            )
        title, lede = head[1][1], " ".join(p for _, p in head[2:])
    elif len(head) == 2:
        title, lede = head[0][1], head[1][1]
    elif head:
        title = head[0][1]
    if not title:
        raise ValueError(f"{name}:1: no title found")

    rest = paragraphs[body_from:]
    claim = None
    body: list[str] = []
    question = None
    in_trailer = False
    for position, (_line, paragraph) in enumerate(rest):
        if paragraph == _ORIGINAL_TITLE:
            claim = " ".join(p for _, p in rest[position + 1 : position + 2]) or None
            break
        if any(r.match(paragraph) for r in _TRAILER_RES):
            in_trailer = True
            continue
        if in_trailer:
            continue
        if question is None and not body and paragraph.endswith("?") and len(paragraph) < 120:
            question = paragraph
            continue
        body.append(paragraph)

    meta = {
        "title": title,
        "kind": kind if kind in KINDS else "synthesis",
        "date": date,
        "topics": topics,
        "question": question,
        "claim": claim,
    }
    own_titles = {t: i for t, i in titles.items() if t != title}
    body_md = "\n\n".join([lede, *body]) if lede else "\n\n".join(body)
    text_out = front_matter(meta) + "\n" + link_titles(body_md, own_titles) + "\n"
    return ImportedNote(filename=slugify(title, 60) + ".md", text=text_out, title=title, diagnostics=diagnostics)


# --- bibliographies -------------------------------------------------------------------------------


def _paper(key: str, title: str, authors: Iterable[str], year: Any, venue: str | None, doi: str | None, url: str | None, abstract: str | None) -> ImportedNote:
    year_int: int | None = None
    if year not in (None, ""):
        match = re.search(r"\d{4}", str(year))
        year_int = int(match.group(0)) if match else None
    meta = {
        "title": title,
        "kind": "paper",
        "authors": [a for a in authors if a],
        "year": year_int,
        "venue": venue,
        "doi": doi,
        "url": url,
        "citekey": key,
    }
    body = (abstract or "").strip()
    return ImportedNote(filename=slugify(key, 80) + ".md", text=front_matter(meta) + ("\n" + body + "\n" if body else ""), title=title)


_LATEX_RE = re.compile(r"[{}]|\\[a-zA-Z]+\s*")


def _clean_tex(value: str | None) -> str | None:
    if value is None:
        return None
    try:
        from pylatexenc.latex2text import LatexNodes2Text

        value = LatexNodes2Text().latex_to_text(value)
    except Exception:  # pylatexenc is optional and its parser can reject odd input
        value = _LATEX_RE.sub("", value)
    return " ".join(value.split())


def import_bibtex(name: str, text: str) -> list[ImportedNote]:
    """Every BibTeX entry -> a paper note named by its citation key (bibtexparser v2)."""
    import logging

    import bibtexparser

    logging.getLogger("bibtexparser").setLevel(logging.CRITICAL)  # failures are reported as diagnostics
    library = bibtexparser.parse_string(text)
    notes: list[ImportedNote] = []
    for block in library.failed_blocks:
        line = getattr(block, "start_line", 0) + 1
        notes.append(ImportedNote("", "", "", [Diagnostic(name, line, "error", "bibtex", f"entry could not be parsed: {str(getattr(block, 'error', ''))[:120]}")]))
    for entry in library.entries:
        fields: dict[str, Any] = {k.lower(): str(v.value) for k, v in entry.fields_dict.items()}
        title = _clean_tex(fields.get("title")) or entry.key
        authors = [_name_from_bib(a) for a in re.split(r"\s+and\s+", _clean_tex(fields.get("author")) or "") if a.strip()]
        venue = _clean_tex(fields.get("journal") or fields.get("booktitle") or fields.get("publisher") or fields.get("school"))
        note = _paper(entry.key, title, authors, fields.get("year"), venue, fields.get("doi"), fields.get("url"), _clean_tex(fields.get("abstract")))
        notes.append(note)
    return notes


def _name_from_bib(name: str) -> str:
    name = name.strip()
    if "," in name:
        return name
    parts = name.split()
    return f"{parts[-1]}, {' '.join(parts[:-1])}" if len(parts) > 1 else name


def import_csl_json(name: str, text: str) -> list[ImportedNote]:
    """CSL-JSON (Zotero's export) -> one paper note per item, named by its id / citation key."""
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ValueError(f"{name}:{exc.lineno}: not valid JSON: {exc.msg}") from None
    if isinstance(data, dict):
        data = data.get("items", [data])
    if not isinstance(data, list):
        raise ValueError(f"{name}:1: CSL-JSON must be a list of items")
    notes = []
    for position, item in enumerate(data):
        if not isinstance(item, dict) or not item.get("title"):
            notes.append(ImportedNote("", "", "", [Diagnostic(name, 1, "error", "csl-json", f"item {position + 1} has no title; skipped")]))
            continue
        key = str(item.get("citation-key") or item.get("id") or slugify(item["title"]))
        authors = []
        for author in item.get("author", []) or []:
            if isinstance(author, dict):
                if author.get("literal"):
                    authors.append(str(author["literal"]))
                else:
                    authors.append(", ".join(x for x in (author.get("family"), author.get("given")) if x))
        issued = item.get("issued", {}) or {}
        year = None
        if isinstance(issued, dict) and issued.get("date-parts"):
            try:
                year = issued["date-parts"][0][0]
            except (IndexError, TypeError):
                year = None
        venue = item.get("container-title") or item.get("publisher")
        notes.append(_paper(key, str(item["title"]), authors, year, venue, item.get("DOI"), item.get("URL"), item.get("abstract")))
    return notes
