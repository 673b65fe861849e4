"""Frozen dataclasses passed between pipeline stages: notes, links, diagnostics, graph facts."""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any, Literal

KINDS: tuple[str, ...] = ("synthesis", "concept", "paper", "inquiry")
Severity = Literal["error", "warning"]
LinkStatus = Literal["ok", "dangling", "ambiguous", "outside"]
EdgeKind = Literal["link", "similar", "source"]


_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029]")


def printable(text: str) -> str:
    """``text`` with control characters (and Unicode line separators) written as escapes."""
    return _CONTROL.sub(lambda m: m.group(0).encode("unicode_escape").decode("ascii"), text) if _CONTROL.search(text) else text


@dataclass(frozen=True, order=True)
class Diagnostic:
    """A problem found in a note: always names the file (relative to the notes folder) and line."""

    path: str
    line: int
    severity: Severity
    code: str
    message: str

    def format(self) -> str:
        """One line, whatever the file is called: control characters in a name or message are shown
        escaped, so a newline in a file name cannot print a forged second diagnostic."""
        return f"{printable(self.path)}:{self.line}: {self.severity}: {printable(self.message)} [{self.code}]"

    def to_json(self) -> dict[str, Any]:
        return {
            "path": self.path,
            "line": self.line,
            "severity": self.severity,
            "code": self.code,
            "message": self.message,
        }


def summarised(diagnostics: Iterable[Diagnostic], keep: int = 5) -> list[str]:
    """Diagnostics as lines, a file's repeats of one problem summarised after ``keep`` of them: a note
    with 20,000 dangling links is five lines and a count, not 20,000 (``check --json`` keeps them all)."""
    items = list(diagnostics)
    totals = Counter((d.path, d.code) for d in items)
    seen: Counter[tuple[str, str]] = Counter()
    lines = []
    for diagnostic in items:
        group = (diagnostic.path, diagnostic.code)
        seen[group] += 1
        if seen[group] <= keep:
            lines.append(diagnostic.format())
        if seen[group] == keep and totals[group] > keep:
            more = totals[group] - keep
            lines.append(f"{printable(diagnostic.path)}: ... and {more} more [{diagnostic.code}] in this file (check --json lists them all)")
    return lines


@dataclass(frozen=True)
class RawLink:
    """A link as written in a note, before resolution.

    ``target`` is the name or path part (no heading/block); empty for a self link ``[[#Heading]]``.
    ``style`` is ``wiki`` for ``[[...]]``, ``markdown`` for ``[text](path)``/``<path>``, ``frontmatter``
    for a link found in a front matter value (``sources: ["[[Note]]"]``).
    """

    target: str
    line: int
    style: Literal["wiki", "markdown", "frontmatter"] = "wiki"
    shown: str | None = None
    heading: str | None = None
    block: str | None = None
    embed: bool = False
    field: str | None = None  # front matter field for style == "frontmatter"
    context: str = ""  # the sentence around the link, with link syntax reduced to its text


@dataclass(frozen=True)
class Note:
    """One parsed note. ``id`` is its path relative to the notes folder, POSIX, without ``.md``."""

    id: str
    path: str
    title: str
    kind: str = "synthesis"
    date: str | None = None
    topics: tuple[str, ...] = ()
    claim: str | None = None
    question: str | None = None
    aliases: tuple[str, ...] = ()
    tags: tuple[str, ...] = ()
    lede: str = ""
    body: str = ""  # markdown without front matter
    body_line: int = 1  # line number of the body's first line in the file
    meta: Mapping[str, Any] = field(default_factory=dict)  # all front matter, JSON-safe, unknown keys kept
    headings: tuple[str, ...] = ()
    blocks: tuple[str, ...] = ()
    links: tuple[RawLink, ...] = ()
    text: str = ""  # clean plain text of the body (no link syntax, no markup)
    content_hash: str = ""  # hash of the whole file's bytes

    @property
    def stem(self) -> str:
        return self.id.rsplit("/", 1)[-1]

    @property
    def folder(self) -> str:
        return self.id.rsplit("/", 1)[0] if "/" in self.id else ""


@dataclass(frozen=True)
class Link:
    """A resolved (or unresolvable) link from ``source`` note."""

    source: str
    raw: RawLink
    status: LinkStatus
    target: str | None = None  # note id when status == "ok"
    candidates: tuple[str, ...] = ()  # for ambiguous links


@dataclass(frozen=True)
class Collection:
    """Every note of a collection with its links resolved: the input of the graph and render stages."""

    root: str
    notes: Mapping[str, Note]
    links: tuple[Link, ...]
    diagnostics: tuple[Diagnostic, ...]
    # the settings the notes were parsed with (the parse cache's key), when each note is what the parser
    # makes of its file's bytes under them (``Note.content_hash``); empty when not known
    parsed_by: str = ""
    # the files notes can embed (images, PDFs, media): path relative to the notes folder -> size, mtime_ns
    attachments: Mapping[str, tuple[int, int]] = field(default_factory=dict)
    attachment_folder: str = ""  # Obsidian's "attachment folder" ("", "./", "./sub", "Assets")

    def resolved(self) -> list[Link]:
        return [link for link in self.links if link.status == "ok" and link.target != link.source]

    @cached_property
    def display_names(self) -> dict[str, dict[str, str]]:
        """For each note, its links written without shown text (`[[topic-drift]]`) and the titles of the
        notes they resolve to: how its text reads wherever it is shown off its page (resolve.with_titles).
        Made once per collection: the graph, the site and the query index all read it."""
        out: dict[str, dict[str, str]] = {}
        notes = self.notes
        for link in self.links:
            raw = link.raw
            target = notes.get(link.target) if link.status == "ok" and link.target else None
            if target is not None and not raw.shown and raw.target and raw.style != "frontmatter":
                out.setdefault(link.source, {})[raw.target] = target.title
        return out


@dataclass(frozen=True, slots=True)  # one per related item or edge: hundreds of thousands at 20,000 notes
class Related:
    """One ranked related note with its score and the evidence that makes it checkable."""

    id: str
    score: float
    why: tuple[str, ...] = ()  # e.g. ("link", "similar", "source", "shared sources: X")
    passage: str = ""  # best-matching passage of the related note
    own_passage: str = ""  # the passage of this note it matched


@dataclass(frozen=True, slots=True)  # one per related item or edge: hundreds of thousands at 20,000 notes
class Neighbour:
    """One edge of a note's concept map, seen from the note."""

    id: str
    kind: Literal["link", "similar", "backlink", "source"]
    score: float | None = None


@dataclass(frozen=True, slots=True)
class Citation:
    """An inquiry note citing this note, with the sentence that cites it."""

    id: str
    context: str


@dataclass(frozen=True, slots=True)
class NoteFacts:
    """Everything the site and the CLI show about one note, derived from the graph."""

    id: str
    direct: int
    two_hop: int
    cluster: int
    cluster_size: str  # small | medium | large
    neighbours: tuple[Neighbour, ...]
    related: tuple[Related, ...]  # every kind, best first
    related_papers: tuple[Related, ...]
    related_concepts: tuple[Related, ...]
    inquiring_lines: tuple[Citation, ...]
    backlinks: tuple[Citation, ...]


@dataclass(frozen=True)
class Cluster:
    id: int
    label: str
    terms: tuple[str, ...]
    members: tuple[str, ...]
    central: tuple[str, ...]
    size_class: str


@dataclass(frozen=True)
class GraphResult:
    """The graph stage's output: the networkx graph plus everything derived from it for pages and queries.

    ``graph`` is a ``networkx.MultiDiGraph``: nodes are note ids with attributes kind, title, topics, date,
    path, cluster; edges carry ``kind`` = link | similar | source (and ``score`` for similar, ``line`` and
    ``shown`` for link). Backlinks are the reverse view of ``link`` edges, never stored twice.
    """

    graph: Any
    facts: Mapping[str, NoteFacts]
    clusters: tuple[Cluster, ...]
    model_id: str = ""
    ranker: Any = None  # notegraph.graph.rank.Ranker: ranks any note against the collection on demand
    computed: int = 0  # notes whose facts were computed in this build (the others were kept from the last)
    # each note's facts key (graph.memo): equal keys, equal facts; empty when the build keeps no memo
    keys: Mapping[str, bytes] = field(default_factory=dict)
    # graph.edges.Edges of ``graph``, when the graph stage read them (None: read them from ``graph``)
    edges: Any = None

