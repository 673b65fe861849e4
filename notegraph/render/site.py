"""The site writer: gathers every page's context, renders what changed, reuses what did not, writes the manifest."""

from __future__ import annotations

import hashlib
import math
import os
import re
import shutil
import stat as stat_module
import sys
from collections import defaultdict
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field, fields
from functools import cache, cached_property, partial
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlsplit

import orjson
from jinja2 import Environment, FileSystemLoader, StrictUndefined
from markupsafe import Markup

from notegraph.fsutil import stamp
from notegraph.model import KINDS, Cluster, Collection, GraphResult, Note, NoteFacts, Related
from notegraph.parallel import fork_map_meanwhile, shard, workers_for
from notegraph.parse.note import is_attachment
from notegraph.render.body import ATTACHMENTS_DIR, Linker, render_body
from notegraph.render.jsdata import js_call, stable_json
from notegraph.render.maps import (
    KIND_LABELS,
    KIND_SHAPES,
    REL_LABELS,
    HoodEntry,
    choose_neighbours,
    graph_data,
    hood_data,
    pyvis_network,
    shared_options,
)
from notegraph.render.slugs import assign_slugs
from notegraph.resolve import AttachmentIndex, with_titles
from notegraph.version import code_version

HERE = Path(__file__).resolve().parent
TEMPLATES = HERE / "templates"
STATIC = HERE / "static"
MANIFEST = ".notegraph-manifest.json"
FORMAT = 3
PLURALS = {"synthesis": "Syntheses", "concept": "Concepts", "paper": "Papers", "inquiry": "Inquiries"}
STATIC_FILES = ("site.css", "site.js", "graph.js")
MERMAID_FILES = ("vendor/mermaid.min.js", "mermaid-init.js")  # copied when a note draws a diagram
MATH_FONT = "vendor/stix-two-math.woff2"  # site.css's math font: copied when a note may hold math
_MERMAID_FENCE = re.compile(r"^ {0,3}(?:```|~~~)\s*mermaid\b", re.M | re.I)
RECENT = 12
SHAPE_GLYPHS = {"diamond": "◆", "dot": "●", "square": "■", "triangle": "▲"}  # the graph's legend for kinds
PASSAGE_CHARS = 260
_BLOCK_ID_TAIL = re.compile(r"(?:^|\s+)\^[A-Za-z0-9-]+\s*$")
# a sentence whose link was replaced by a title ending in ?, ! or . gets its own full stop as well
_DOUBLED_STOP = re.compile(r"([?!…])\.(?=[\s\"'”’)]|$)")
_COSINE = re.compile(r"^cosine (-?\d+(?:\.\d+)?)$")
_ENTRY_FIELDS = tuple(f.name for f in fields(HoodEntry))  # what a concept map's data is made from


@dataclass(frozen=True)
class RenderReport:
    pages_written: int
    pages_reused: int
    files: int
    paths: tuple[str, ...] = ()  # every file written, relative to the site folder
    stamps: Mapping[str, list[int]] = field(default_factory=dict)  # each file's size and mtime as written


def render_site(
    collection: Collection,
    graph: GraphResult,
    out: Path,
    *,
    title: str = "notegraph",
    allow_html: bool = False,
    remote_images: bool = False,
    previous: Path | None = None,
    previous_stamps: Mapping[str, list[int]] | None = None,
) -> RenderReport:
    """Write the whole site into ``out`` (an empty folder the caller swaps in).

    Pages whose render context is unchanged since ``previous`` (the published site) are linked or copied
    from it instead of being rendered again; the same input always gives byte-identical files.
    ``previous_stamps``: the size and mtime of the previous site's files as recorded when it was
    built; a file that still has them is not read again to check that it is intact."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    site = _Site(collection, graph, title=title, allow_html=allow_html, remote_images=remote_images)
    writer = _Writer(out, previous, template_version(), previous_stamps)
    site.write(writer)
    return writer.finish()


# -- the writer ---------------------------------------------------------------------------------------


PARALLEL_MIN = 300  # note pages below which forking workers costs more than it saves


_WriterPart = tuple[dict[str, str], dict[str, str], dict[str, str], dict[str, str], dict[str, list[int]], int, int]


class _Writer:
    """Writes each output path once; an unchanged input hash reuses the previous site's file."""

    def __init__(self, out: Path, previous: Path | None, version: str, previous_stamps: Mapping[str, list[int]] | None = None) -> None:
        self.out = out
        self.version = version
        self.previous = previous if previous is not None and previous.is_dir() else None
        self.prev_pages: dict[str, str] = {}
        self.prev_outputs: dict[str, str] = {}
        self.prev_inputs: dict[str, str] = {}
        self.prev_quick: dict[str, str] = {}
        # the size and mtime of each of the previous site's files as the build that wrote it saw them (kept
        # outside the site, whose manifest depends only on its content)
        self.prev_stamps: Mapping[str, list[int]] = previous_stamps or {}
        if self.previous is not None:
            self.prev_pages, self.prev_outputs, self.prev_inputs, self.prev_quick = _load_manifest(self.previous / MANIFEST)
        self.pages: dict[str, str] = {}
        self.outputs: dict[str, str] = {}
        self.inputs: dict[str, str] = {}  # a note's page and map data: the key of everything they are made from
        self.quick: dict[str, str] = {}  # a note page: the quick key of its inputs (see keep_quick)
        self.stamps: dict[str, list[int]] = {}  # each file's size and mtime as written (see _intact)
        self.pages_written = 0
        self.pages_reused = 0
        # paths as strings and the folders made so far: reusing 10,000 files through pathlib joins and a
        # mkdir each cost 0.3 s of CPU at 5,000 notes
        self._out_s = str(out)
        self._previous_s = str(self.previous) if self.previous is not None else ""
        self._made: set[str] = set()

    def fresh(self) -> _Writer:
        """A writer into the same folder with nothing written yet, sharing the previous manifest."""
        other = _Writer.__new__(_Writer)
        other.__dict__.update(self.__dict__)
        other.pages, other.outputs, other.inputs, other.quick, other.stamps = {}, {}, {}, {}, {}
        other.pages_written = other.pages_reused = 0
        return other

    def part(self) -> _WriterPart:
        return self.pages, self.outputs, self.inputs, self.quick, self.stamps, self.pages_written, self.pages_reused

    def merge(self, part: _WriterPart) -> None:
        pages, outputs, inputs, quick, stamps, written, reused = part
        clash = set(outputs) & set(self.outputs)
        if clash:
            raise RuntimeError(f"the site writer was asked to write {sorted(clash)[0]} twice")
        self.pages.update(pages)
        self.outputs.update(outputs)
        self.inputs.update(inputs)
        self.quick.update(quick)
        self.stamps.update(stamps)
        self.pages_written += written
        self.pages_reused += reused

    def keep(self, inputs: str, paths: Sequence[str]) -> bool:
        """Reuse the previous site's files among ``paths`` (a page first, then its companions, or a group
        of pages) that it made from the same ``inputs`` key, without building their contexts: True when
        the first was kept. Equal inputs, equal files: a companion the previous build made from other
        inputs, or did not make, is not made now either. Nothing is kept unless every such file is
        intact."""
        wanted = [path for path in paths if self.prev_inputs.get(path) == inputs and path in self.prev_pages]
        if not wanted or wanted[0] != paths[0]:
            return False
        found = [(path, self._intact(path)) for path in wanted]
        if any(intact is None for _path, intact in found):
            return False
        for path, intact in found:
            assert intact is not None
            self._link(path, *intact)
            self.pages[path] = self.prev_pages[path]
            self.inputs[path] = inputs
        self.pages_reused += sum(path.endswith(".html") for path in wanted)
        return True

    def keep_quick(self, quick: str, paths: Sequence[str]) -> bool:
        """``keep`` with the inputs key the previous build recorded for ``paths[0]``, when it recorded
        this ``quick`` key with it: a key of inputs from which the inputs key follows, cheaper to make
        (see ``_Site.quick_inputs``). True when the page was kept."""
        inputs = self.prev_inputs.get(paths[0])
        if inputs is None or self.prev_quick.get(paths[0]) != quick or not self.keep(inputs, paths):
            return False
        self.quick[paths[0]] = quick
        return True

    def emit(self, path: str, context: Any, render: Callable[[], str | bytes], inputs: str | None = None) -> None:
        """``context`` is everything ``render`` depends on; ``None`` for files that are always written.
        ``inputs``: the key of what the context was built from, when there is one (see ``keep``)."""
        if path in self.outputs or path == MANIFEST:
            raise RuntimeError(f"the site writer was asked to write {path} twice")
        is_page = path.endswith(".html")
        if inputs is not None:
            self.inputs[path] = inputs
        key = None
        if context is not None:
            key = hashlib.sha256(f"{self.version}\n{path}\n".encode() + stable_json(context)).hexdigest()
            self.pages[path] = key
            if self._reuse(path, key):
                self.pages_reused += is_page
                return
        data = render()
        blob = data.encode("utf-8") if isinstance(data, str) else data
        target = self.out / path
        self._folder(str(target.parent))
        target.write_bytes(blob)
        self.outputs[path] = hashlib.sha256(blob).hexdigest()
        self.stamps[path] = stamp(target)
        self.pages_written += is_page

    def copy_file(self, path: str, source: str, inputs: str) -> None:
        """A file copied as it is (an attachment): kept from the previous site when it was copied from
        the same ``inputs`` (the source's path, size and mtime), else copied and hashed as it is read."""
        if path in self.outputs or path == MANIFEST:
            raise RuntimeError(f"the site writer was asked to write {path} twice")
        self.pages[path] = inputs
        if self.keep(inputs, (path,)):
            return
        target = os.path.join(self._out_s, path)
        self._folder(os.path.dirname(target))
        digest = hashlib.sha256()
        with open(source, "rb") as src, open(target, "wb") as dst:
            while chunk := src.read(1 << 20):
                digest.update(chunk)
                dst.write(chunk)
        self.inputs[path] = inputs
        self.outputs[path] = digest.hexdigest()
        self.stamps[path] = stamp(Path(target))

    def _reuse(self, path: str, key: str) -> bool:
        if self.previous is None or self.prev_pages.get(path) != key:
            return False
        intact = self._intact(path)
        if intact is None:
            return False
        self._link(path, *intact)
        return True

    def _intact(self, path: str) -> tuple[str, list[int]] | None:
        """The digest and stamp of the previous site's file, if it is as the previous build wrote it: its
        size and mtime are those recorded then (a file linked from site to site keeps them), or else its
        bytes hash to the recorded digest."""
        digest = self.prev_outputs.get(path)
        if self.previous is None or digest is None:
            return None
        source = os.path.join(self._previous_s, path)
        try:
            st = os.lstat(source)
            if not stat_module.S_ISREG(st.st_mode):
                return None
            found = [st.st_size, st.st_mtime_ns]
            if self.prev_stamps.get(path) == found:
                return digest, found
            with open(source, "rb") as f:
                blob = f.read()
        except OSError:
            return None
        if hashlib.sha256(blob).hexdigest() != digest:
            return None  # edited or damaged since it was written: render it again
        return digest, found

    def _link(self, path: str, digest: str, found: list[int]) -> None:
        """The previous site's file (whose stamp is ``found``) in the new site, as a hard link."""
        source, target = os.path.join(self._previous_s, path), os.path.join(self._out_s, path)
        self._folder(os.path.dirname(target))
        try:
            os.link(source, target)  # the same file: the same size and mtime
        except OSError:
            shutil.copy2(source, target)
            found = stamp(Path(target))
        self.outputs[path] = digest
        self.stamps[path] = found

    def _folder(self, folder: str) -> None:
        if folder not in self._made:
            os.makedirs(folder, exist_ok=True)
            self._made.add(folder)

    def finish(self) -> RenderReport:
        manifest = {"format": FORMAT, "version": self.version, "pages": self.pages, "outputs": self.outputs, "inputs": self.inputs, "quick": self.quick}
        (self.out / MANIFEST).write_bytes(orjson.dumps(manifest, option=orjson.OPT_SORT_KEYS | orjson.OPT_INDENT_2 | orjson.OPT_APPEND_NEWLINE))
        paths = [*self.outputs, MANIFEST]
        stamps = {**self.stamps, MANIFEST: stamp(self.out / MANIFEST)}
        return RenderReport(self.pages_written, self.pages_reused, len(paths), tuple(sorted(paths)), stamps)


def _load_manifest(path: Path) -> tuple[dict[str, str], dict[str, str], dict[str, str], dict[str, str]]:
    """A missing or damaged manifest means nothing is reused, never a failed build."""
    try:
        data = orjson.loads(path.read_bytes())
        if data.get("format") != FORMAT:
            return {}, {}, {}, {}
        pages = {str(k): str(v) for k, v in data["pages"].items()}
        outputs = {str(k): str(v) for k, v in data["outputs"].items()}
        inputs = {str(k): str(v) for k, v in data["inputs"].items()}
        quick = {str(k): str(v) for k, v in data["quick"].items()}
        return pages, outputs, inputs, quick
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        return {}, {}, {}, {}


@cache
def template_version() -> str:
    """Changes whenever anything that shapes a page changes: templates, this package's code, the libraries."""
    return code_version(HERE, ("markdown-it-py", "mdit-py-plugins", "nh3", "jinja2", "pyvis", "pygments", "latex2mathml"))


@cache
def _environment() -> Environment:
    env = Environment(
        loader=FileSystemLoader(str(TEMPLATES)),
        autoescape=True,
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
    )
    return env


def vis_dir() -> Path:
    pyvis_network()  # the package, imported without IPython (see there)
    return Path(sys.modules["pyvis"].__file__ or "").resolve().parent / "lib" / "vis-9.1.2"


# -- gathering ----------------------------------------------------------------------------------------


def _empty_facts(note_id: str) -> NoteFacts:
    return NoteFacts(note_id, 0, 0, -1, "small", (), (), (), (), (), ())


def _shorten(text: str, limit: int = PASSAGE_CHARS) -> str:
    """The text with its whitespace collapsed, cut at a word before ``limit`` characters (then "…").
    Its start collapses to a start of the whole collapsed text, so when that is longer than ``limit``
    it decides alone (listings shorten every note's lede: 0.04 s at 5,000 notes, whole)."""
    head = " ".join(text[: 4 * limit].split())
    text = head if len(head) > limit else " ".join(text.split())
    if len(text) <= limit:
        return text
    return text[:limit].rsplit(" ", 1)[0].rstrip(",;:") + "…"


def _safe_url(value: Any) -> str | None:
    if not isinstance(value, str):
        return None
    value = value.strip()
    try:
        parts = urlsplit(value)
    except ValueError:
        return None
    if parts.scheme.lower() in ("http", "https") and parts.netloc and not re.search(r"[\s<>\"']", value):
        return value
    return None


def _tidy(sentence: str) -> str:
    return _DOUBLED_STOP.sub(r"\1", sentence)


def _text(value: Any) -> str:
    if isinstance(value, list | tuple):
        return ", ".join(str(v) for v in value if isinstance(v, str | int | float))
    if isinstance(value, str | int | float) and not isinstance(value, bool):
        return str(value)
    return ""


class _Site:
    def __init__(self, collection: Collection, graph: GraphResult, *, title: str, allow_html: bool, remote_images: bool = False) -> None:
        self.collection = collection
        self.notes: Mapping[str, Note] = collection.notes
        self.graph = graph
        self.nx = graph.graph
        self.allow_html = allow_html
        self.ids = sorted(self.notes)
        self.slugs = assign_slugs(self.ids)
        topics = sorted({t for n in self.notes.values() for t in n.topics})
        self.topic_slugs = assign_slugs(topics, fallback="topic")
        files = AttachmentIndex(collection.attachments, collection.attachment_folder)
        self.linker = Linker(self.notes, self.slugs, files, remote_images=remote_images, dialect=_dialect(collection.parsed_by))
        self.clusters: tuple[Cluster, ...] = tuple(sorted(graph.clusters, key=lambda c: c.id))
        self.kinds_present = [k for k in KINDS if any(n.kind == k for n in self.notes.values())]
        self.site = {
            "title": title,
            "kinds": [{"kind": k, "plural": PLURALS[k], "shape": SHAPE_GLYPHS[KIND_SHAPES[k]]} for k in self.kinds_present],
            "csp": Markup(_csp(remote_images)),  # our own text: its quotes stay quotes
        }
        self.cluster_label = {c.id: c.label for c in self.clusters}
        self._listed: dict[str, dict[str, Any]] = {}

    # small pieces ------------------------------------------------------------------------------------

    def facts(self, note_id: str) -> NoteFacts:
        return self.graph.facts.get(note_id) or _empty_facts(note_id)

    def ref(self, note_id: str) -> dict[str, Any]:
        note = self.notes[note_id]
        return {"slug": self.slugs[note_id], "title": note.title, "kind": note.kind, "kind_label": KIND_LABELS.get(note.kind, note.kind)}

    def listed(self, note_id: str) -> dict[str, Any]:
        """A note as the listings show it; made once a note (a note is in ~5 listings), never changed."""
        item = self._listed.get(note_id)
        if item is None:
            note = self.notes[note_id]
            item = self._listed[note_id] = {**self.ref(note_id), "date": note.date or "", "lede": _shorten(self.shown(note_id, note.lede), 220)}
        return item

    @cached_property
    def names(self) -> dict[str, dict[str, str]]:
        """Each note's links written without shown text, with the titles they stand for (resolve)."""
        return self.collection.display_names

    def shown(self, note_id: str, text: str) -> str:
        """A note's text as it reads off its page: links by their titles, never by file names."""
        return with_titles(text, self.names.get(note_id, {}))

    def related(self, items: Iterable[Related]) -> list[dict[str, Any]]:
        """Related notes in their ranking order; ``cosine`` is the embedding similarity read from the
        evidence ("cosine 0.734"), shown beside each so the figure means what the heading says."""
        out = []
        for item in items:
            if item.id not in self.notes or not math.isfinite(item.score):
                continue
            why = [REL_LABELS.get(w, w) for w in item.why]
            cosine = next((float(m.group(1)) for w in item.why if (m := _COSINE.match(w))), None)
            out.append(
                {
                    **self.ref(item.id),
                    "score": round(float(item.score), 3),
                    "cosine": None if cosine is None else round(cosine, 3),
                    "why": why,
                    "passage": _shorten(self.shown(item.id, item.passage)),
                }
            )
        return out

    def base(self, root: str, page_kind: str, scripts: list[str] | None = None, uses_vis: bool = False) -> dict[str, Any]:
        return {"root": root, "site": self.site, "page_kind": page_kind, "scripts": scripts or [], "styles": [], "uses_vis": uses_vis, "current_kind": None}

    def _edges_out(self, note_id: str) -> list[tuple[str, str]]:
        if self.nx is None or not self.nx.has_node(note_id):
            return []
        return sorted((v, data.get("kind", "link")) for _, v, data in self.nx.out_edges(note_id, data=True))

    # pages -------------------------------------------------------------------------------------------

    def write(self, w: _Writer) -> None:
        vis = vis_dir()
        copies = [(STATIC / name, name) for name in STATIC_FILES]
        copies += [(vis / name, name) for name in ("vis-network.min.js", "vis-network.css")]
        if any("mermaid" in note.body and _MERMAID_FENCE.search(note.body) for note in self.notes.values()):
            copies += [(STATIC / name, name) for name in MERMAID_FILES]
        if any("$" in note.body for note in self.notes.values()):
            copies.append((STATIC / MATH_FONT, MATH_FONT))
        for source, name in copies:
            w.emit(f"assets/{name}", None, partial(source.read_bytes))
        from notegraph.render.code import code_css

        w.emit("assets/code.css", None, code_css)
        self.write_attachments(w)
        options = shared_options()
        w.emit("assets/map-options.js", options, lambda: js_call("NG_OPTIONS", options))

        # the other pages are written here while forked workers write the note pages. They list every
        # note, so each group is kept whole, without building its contexts, when the key of what it is
        # made from is the one the previous site recorded (0.5 s at 5,000 notes when they are built)
        with self.notes_meanwhile(w) as finish_notes:
            listing = self._listing_key()
            paths = ["search.html", "assets/search-index.js"]
            paths += [f"topics/{slug}.html" for slug in self.topic_slugs.values()]
            paths += [f"kinds/{kind}.html" for kind in self.kinds_present]
            if not w.keep(listing, paths):
                self.write_search(w, listing)
                self.write_topics(w, listing)
                self.write_kinds(w, listing)
            shape = self._shape_key(listing)
            paths = ["index.html", "graph.html", "assets/graph-data.js", *(f"clusters/{c.id}.html" for c in self.clusters)]
            if not w.keep(shape, paths):
                self.write_index(w, shape)
                self.write_graph(w, shape)
                self.write_clusters(w, shape)
            finish_notes()

    def write_attachments(self, w: _Writer) -> None:
        """Every file a note embeds or links to, copied once under its own path (kept from the previous
        site while its size and mtime are unchanged)."""
        used: set[str] = set()
        for note_id in self.ids:
            note = self.notes[note_id]
            for raw in note.links:
                if raw.style != "frontmatter" and is_attachment(raw.target):
                    found = self.linker.attachment(note, raw.target)
                    if found is not None:
                        used.add(found)
        root = self.collection.root
        for path in sorted(used):
            size, mtime = self.collection.attachments[path]
            w.copy_file(f"{ATTACHMENTS_DIR}/{path}", os.path.join(root, path), f"file {size} {mtime} {path}")

    def _listing_key(self) -> str:
        """The key of what the search, topic and kind pages are made from: the site's shape and every
        note's listed fields."""
        rows = []
        for note_id in self.ids:
            note = self.notes[note_id]
            names = sorted(self.names.get(note_id, {}).items())
            rows.append([note_id, note.title, note.kind, note.date, note.lede, note.claim, list(note.aliases), list(note.topics), names])
        digest = hashlib.sha256(self._site_key)
        digest.update(stable_json(rows))
        return digest.hexdigest()

    def _shape_key(self, listing: str) -> str:
        """The key of what the home, graph and cluster pages are made from besides the listed fields:
        the clusters and the graph's edges (which notes they join and their kind, not their scores)."""
        clusters = [[c.id, c.label, list(c.terms), list(c.members), list(c.central), c.size_class] for c in self.clusters]
        digest = hashlib.sha256(listing.encode())
        digest.update(stable_json(clusters))
        digest.update(self._edges.joins() if self._edges is not None else b"-")
        return digest.hexdigest()

    @cached_property
    def _edges(self) -> Any:
        """The graph's edges between notes, as the graph stage read them (graph.edges)."""
        if self.nx is None:
            return None
        from notegraph.graph.edges import Edges  # lazy: the graph package imports networkx and scipy

        edges = self.graph.edges
        return edges if edges is not None and edges.ids == self.ids else Edges.of(self.nx, self.ids)

    def note_context(self, note: Note, links: list[list[Any]]) -> tuple[dict[str, Any], list[HoodEntry]]:
        """The page's context, and the entries of its concept map (none when it has no map). ``links``:
        ``self.linker.table(note)``, which the page's inputs key has already made."""
        facts = self.facts(note.id)
        slug = self.slugs[note.id]
        meta = note.meta
        paper = None
        if note.kind == "paper":
            doi = _text(meta.get("doi")).strip()
            url = _safe_url(meta.get("url"))
            paper = {
                "authors": _text(meta.get("authors")),
                "year": _text(meta.get("year")),
                "venue": _text(meta.get("venue")),
                "doi": doi,
                "doi_url": f"https://doi.org/{quote(doi, safe='/:;()._-')}" if doi else "",
                "url": url or "",
                "url_label": urlsplit(url).netloc if url else "",
            }
            if not any(paper.values()):
                paper = None
        entries = choose_neighbours(facts, self.notes, self.slugs, self.nx)
        sources = []
        if note.kind == "inquiry":
            seen = set()
            for target, kind in self._edges_out(note.id):
                if kind == "source" and target in self.notes and target not in seen and target != note.id:
                    seen.add(target)
                    sources.append(self.ref(target))
            sources.sort(key=lambda s: (s["title"].lower(), s["slug"]))
        inquiring = [
            {**self.ref(c.id), "context": _tidy(c.context), "question": self.notes[c.id].question or ""}
            for c in facts.inquiring_lines
            if c.id in self.notes
        ]
        inquiring_ids = {c.id for c in facts.inquiring_lines if c.id in self.notes}
        ctx = {
            **self.base("../", "note", [], uses_vis=bool(entries)),
            "note": {
                "slug": slug,
                "title": note.title,
                "kind": note.kind,
                "kind_label": KIND_LABELS.get(note.kind, note.kind),
                "kind_page": note.kind in self.kinds_present,
                "date": note.date or "",
                "topics": [{"name": t, "slug": self.topic_slugs[t]} for t in note.topics],
                "lede": self.shown(note.id, _BLOCK_ID_TAIL.sub("", note.lede)),
                "question": note.question or "",
                "claim": note.claim or "",
                "aliases": list(note.aliases),
                "tags": list(note.tags),
                "paper": paper,
            },
            "sources": sources,
            "inquiring": inquiring,
            "concepts": sorted(self.related(facts.related_concepts), key=lambda c: (-c["score"], c["title"].lower(), c["slug"])),
            "papers": self.related(facts.related_papers),
            # the inquiries citing this note are listed once, under "Inquiring lines"
            "backlinks": [
                {**self.ref(c.id), "context": _tidy(c.context)}
                for c in facts.backlinks
                if c.id in self.notes and c.id not in inquiring_ids
            ],
            "backlinks_total": len({c.id for c in facts.backlinks if c.id in self.notes}),
            "map": None,
            # what the body's HTML depends on (rendered only when this page has to be written)
            "body_inputs": {
                "source": note.body,
                "title": note.title,
                "lede": note.lede,
                "headings": list(note.headings),
                "blocks": list(note.blocks),
                "links": links,
                "allow_html": self.allow_html,
            },
        }
        if entries:
            ctx["scripts"] = ["assets/map-options.js", f"assets/hood/{slug}.js"]
            ctx["map"] = {
                "slug": slug,
                "direct": facts.direct,
                "two_hop": facts.two_hop,
                "cluster_size": facts.cluster_size,
                "entries": [entry.as_json() for entry in entries],
            }
        return ctx, entries

    @contextmanager
    def notes_meanwhile(self, w: _Writer) -> Iterator[Callable[[], None]]:
        """Note pages, in forked worker processes when there are many, while the caller writes the other
        pages; the function the context gives waits for them. Each page depends only on the site's data,
        so they are independent and the output is the same however they are shared out."""
        workers = workers_for(len(self.ids), PARALLEL_MIN)
        _ = self._site_key, self._names_key  # made once, before the workers fork
        if workers < 2:

            def write_all() -> None:
                for note_id in self.ids:
                    self.write_note(w, note_id)

            yield write_all
            return

        def write_shard(ids: list[str]) -> _WriterPart:
            writer = w.fresh()
            for note_id in ids:
                self.write_note(writer, note_id)
            return writer.part()

        with fork_map_meanwhile(write_shard, shard(self.ids, workers)) as parts:

            def finish() -> None:
                for part in parts():
                    w.merge(part)

            yield finish

    def own_fields(self, note: Note) -> bytes:
        """The note's own fields as its page shows them, and the links its body asks to resolve."""
        own = [
            note.id,
            note.path,
            note.title,
            note.kind,
            note.date,
            list(note.topics),
            note.claim,
            note.question,
            list(note.aliases),
            list(note.tags),
            note.lede,
            note.body,
            note.meta,
            list(note.headings),
            list(note.blocks),
            [[raw.style, raw.target, raw.heading, raw.block] for raw in note.links if raw.style != "frontmatter"],
        ]
        return stable_json(own)

    def page_inputs(self, note: Note, own: bytes, links: list[list[Any]]) -> str | None:
        """The key of everything a note's page and map data are made from, without building them: the
        site's shape, the note's own fields, how its links resolve, and its facts key (graph.memo),
        which covers its facts and the title, kind, lede and question of every note they name.
        None when the graph kept no facts keys."""
        facts_key = self.graph.keys.get(note.id)
        if facts_key is None:
            return None
        digest = hashlib.sha256(self._site_key)  # a digest: the shape itself is ~40 bytes a note
        digest.update(facts_key)
        digest.update(own)
        digest.update(stable_json(links))
        return digest.hexdigest()

    def quick_inputs(self, note: Note) -> str | None:
        """A key of inputs from which ``page_inputs`` follows, made without resolving the note's links
        (0.2 s of CPU at 5,000 notes): the site's shape, every note's names (``_names_key``), the
        note's facts key and its file (``_file_key``). A page whose quick key is the one the previous
        build recorded has the inputs key recorded with it (``_Writer.keep_quick``). An edit to any note's
        title, aliases, headings or block ids changes every quick key, and pages are then kept by
        their inputs key. None when the graph kept no facts keys."""
        facts_key = self.graph.keys.get(note.id)
        if facts_key is None or _embeds_notes(note):
            return None  # a page that shows other notes' text is keyed by their files too (page_inputs)
        digest = hashlib.sha256(self._names_key)
        digest.update(facts_key)
        digest.update(self._file_key(note))
        return digest.hexdigest()

    def _file_key(self, note: Note) -> bytes:
        """What the note's own fields (``own_fields``) are made from: its path and content hash under the
        settings it was parsed with, when the collection names them (the parser's code is in
        ``_names_key``); else the fields themselves. Hashing 40 bytes rather than serialising the whole
        note saves 0.04 s of each worker's time at 5,000 notes."""
        parsed_by = self.collection.parsed_by
        if parsed_by and note.content_hash:
            return stable_json(["file", parsed_by, note.id, note.path, note.content_hash])
        return self.own_fields(note)

    @cached_property
    def _names_key(self) -> bytes:
        """Everything a link's resolution reads besides the link: the site's shape (the slugs), and
        every note's id, title, aliases, headings and block ids, with notegraph's code (the resolver's)."""
        names = [[note.id, note.title, list(note.aliases), list(note.headings), list(note.blocks)] for note in map(self.notes.__getitem__, self.ids)]
        files = [self.collection.attachment_folder, sorted(self.collection.attachments)]  # what attachments resolve to
        return hashlib.sha256(self._site_key + code_version().encode() + stable_json(names) + stable_json(files)).digest()

    @cached_property
    def _site_key(self) -> bytes:
        """What every note page shares: the site's title and kinds, the slugs of notes and topics, HTML."""
        shape = [template_version(), self.site, self.allow_html, sorted(self.slugs.items()), sorted(self.topic_slugs.items()), self.kinds_present]
        return hashlib.sha256(stable_json(shape)).digest()

    def write_note(self, w: _Writer, note_id: str) -> None:
        note = self.notes[note_id]
        slug = self.slugs[note_id]
        quick = self.quick_inputs(note)
        page, hood = f"notes/{slug}.html", f"assets/hood/{slug}.js"
        if quick is not None and w.keep_quick(quick, (page, hood)):
            return
        own = self.own_fields(note)
        links = self.linker.table(note)
        inputs = self.page_inputs(note, own, links)
        if quick is not None:
            w.quick[page] = quick  # recorded with the inputs key, kept or written below
        if inputs is not None and w.keep(inputs, (page, hood)):
            return
        ctx, entries = self.note_context(note, links)

        def render() -> str:
            body = render_body(note, self.linker, allow_html=self.allow_html, has_question=bool(note.question))
            scripts, styles = list(ctx["scripts"]), []
            if "mermaid" in body.features:
                scripts = [f"assets/{name}" for name in MERMAID_FILES] + scripts
            if "code" in body.features:
                styles.append("assets/code.css")
            return _render(
                "note.html",
                ctx,
                page_title=note.title,
                body_html=Markup(body.html) if body.html.strip() else "",
                lede_html=Markup(body.lede_html) if body.lede_html else "",
                lede_id=body.lede_id or "",
                scripts=scripts,
                styles=styles,
            )

        w.emit(page, ctx, render, inputs)
        if entries:
            # the map's data is a function of these: they are hashed, and it is built only to be written
            facts = self.facts(note_id)
            made_from = [note.title, note.kind, slug, facts.direct, facts.two_hop, facts.cluster_size, [[getattr(e, f) for f in _ENTRY_FIELDS] for e in entries]]
            w.emit(hood, made_from, lambda: js_call("NG_HOOD", slug, hood_data(note, facts, entries, slug)), inputs)

    def write_index(self, w: _Writer, inputs: str | None = None) -> None:
        counts = {k: sum(1 for n in self.notes.values() if n.kind == k) for k in KINDS}
        dated = sorted((n for n in self.notes.values() if n.date), key=lambda n: (n.date or "", n.title.lower(), n.id), reverse=True)
        topic_counts: defaultdict[str, int] = defaultdict(int)
        for note in self.notes.values():
            for topic in set(note.topics):
                topic_counts[topic] += 1
        ctx = {
            **self.base("", "index"),
            "total": len(self.notes),
            "edges": self._edge_count(),
            "kinds": [{"kind": k, "plural": PLURALS[k], "count": counts[k]} for k in self.kinds_present],
            "recent": [self.listed(n.id) for n in dated[:RECENT]],
            "clusters": [
                {"id": c.id, "label": c.label, "size": len(c.members), "size_class": c.size_class, "terms": list(c.terms[:6]), "colour": i % 12}
                for i, c in enumerate(self.clusters)
            ],
            "topics": [{"name": t, "slug": self.topic_slugs[t], "count": topic_counts[t]} for t in sorted(topic_counts, key=str.lower)],
        }
        w.emit("index.html", ctx, lambda: _render("index.html", ctx, page_title="Home"), inputs)

    def _edge_count(self) -> int:
        edges = self._edges
        return edges.count() if edges is not None else 0

    def write_graph(self, w: _Writer, inputs: str | None = None) -> None:
        data = graph_data(self.notes, self._edges, self.clusters, self.slugs)
        w.emit("assets/graph-data.js", data, lambda: js_call("NG_GRAPH", data), inputs)
        ctx = {
            **self.base("", "graph", ["assets/map-options.js", "assets/graph.js", "assets/graph-data.js"], uses_vis=True),
            "total": len(self.notes),
            "edges": len(data["edges"]),
            "clusters": len(self.clusters),
            "collapsed": len(self.notes) > data["budget"],
            "kinds": [{"kind": k, "plural": PLURALS[k], "shape": SHAPE_GLYPHS[KIND_SHAPES[k]]} for k in self.kinds_present],
        }
        w.emit("graph.html", ctx, lambda: _render("graph.html", ctx, page_title="Knowledge graph"), inputs)

    def write_search(self, w: _Writer, inputs: str | None = None) -> None:
        rows = []
        for note_id in self.ids:
            note = self.notes[note_id]
            lede = self.shown(note_id, note.lede)
            rows.append([self.slugs[note_id], note.title, note.kind, list(note.aliases), _shorten(note.claim or "", 300), _shorten(lede, 300)])
        w.emit("assets/search-index.js", rows, lambda: js_call("NG_SEARCH", rows), inputs)
        ctx = {**self.base("", "search", ["assets/search-index.js"]), "total": len(self.notes)}
        w.emit("search.html", ctx, lambda: _render("search.html", ctx, page_title="Search"), inputs)

    def write_topics(self, w: _Writer, inputs: str | None = None) -> None:
        members: defaultdict[str, list[str]] = defaultdict(list)
        for note_id in self.ids:
            for topic in dict.fromkeys(self.notes[note_id].topics):
                members[topic].append(note_id)
        for topic in sorted(members):
            notes = sorted(members[topic], key=lambda i: (self.notes[i].title.lower(), i))
            groups = []
            for kind in KINDS:
                of_kind = [self.listed(i) for i in notes if self.notes[i].kind == kind]
                if of_kind:
                    groups.append({"kind": kind, "plural": PLURALS[kind], "notes": of_kind})
            ctx = {
                **self.base("../", "topic"),
                "eyebrow": "Topic",
                "heading": topic,
                "notes": [self.listed(i) for i in notes],
                "groups": groups,
                "show_kind": True,
            }
            w.emit(f"topics/{self.topic_slugs[topic]}.html", ctx, partial(_render, "listing.html", ctx, page_title=topic), inputs)

    def write_kinds(self, w: _Writer, inputs: str | None = None) -> None:
        for kind in self.kinds_present:
            notes = sorted((i for i in self.ids if self.notes[i].kind == kind), key=lambda i: (self.notes[i].title.lower(), i))
            ctx = {
                **self.base("../", "kind"),
                "current_kind": kind,
                "eyebrow": "Kind",
                "heading": PLURALS[kind],
                "notes": [self.listed(i) for i in notes],
                "groups": [],
                "show_kind": False,
            }
            w.emit(f"kinds/{kind}.html", ctx, partial(_render, "listing.html", ctx, page_title=PLURALS[kind]), inputs)

    def write_clusters(self, w: _Writer, inputs: str | None = None) -> None:
        cluster_of = {m: c.id for c in self.clusters for m in c.members}
        ids, index = self.ids, {note_id: i for i, note_id in enumerate(self.ids)}
        edges = self._edges
        # each note's papers it links to or cites, and its neighbours (read once from the graph's edges)
        if edges is not None:
            papers_of = edges.targets_of(("link", "source"), [self.notes[i].kind == "paper" for i in ids])
            neighbours_of = edges.neighbours()
        else:
            papers_of = neighbours_of = [[] for _ in ids]
        for cluster in self.clusters:
            members = [m for m in cluster.members if m in self.notes]
            central = [m for m in cluster.central if m in self.notes]
            ordered = central + sorted((m for m in members if m not in central), key=lambda m: (self.notes[m].title.lower(), m))
            cited: defaultdict[str, set[str]] = defaultdict(set)
            bridges: defaultdict[str, set[str]] = defaultdict(set)
            bridge_clusters: defaultdict[str, set[int]] = defaultdict(set)
            for member in members:
                row = index[member]
                for target in papers_of[row]:
                    cited[ids[target]].add(member)
                for other in neighbours_of[row]:
                    other_cluster = cluster_of.get(ids[other])
                    if other_cluster is not None and other_cluster != cluster.id:
                        bridges[member].add(ids[other])
                        bridge_clusters[member].add(other_cluster)
            papers = sorted(cited, key=lambda p: (-len(cited[p]), self.notes[p].title.lower(), p))[:10]
            bridge_ids = sorted(bridges, key=lambda b: (-len(bridges[b]), self.notes[b].title.lower(), b))[:15]
            ctx = {
                **self.base("../", "cluster"),
                "cluster": {"id": cluster.id, "label": cluster.label, "terms": list(cluster.terms[:8]), "size_class": cluster.size_class},
                "members": [self.listed(m) for m in ordered],
                "papers": [{**self.ref(p), "count": len(cited[p])} for p in papers],
                "bridges": [
                    {
                        **self.ref(b),
                        "count": len(bridges[b]),
                        "clusters": [{"id": c, "label": self.cluster_label.get(c, f"Cluster {c}")} for c in sorted(bridge_clusters[b])],
                    }
                    for b in bridge_ids
                ],
            }
            w.emit(f"clusters/{cluster.id}.html", ctx, partial(_render, "cluster.html", ctx, page_title=cluster.label), inputs)


def _csp(remote_images: bool) -> str:
    """The pages' Content-Security-Policy: nothing from elsewhere, unless images from elsewhere are allowed."""
    images = "'self' data: https:" if remote_images else "'self' data:"
    return f"default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src {images}; object-src 'none'; base-uri 'none'"


def _dialect(parsed_by: str) -> str:
    """The link dialect the notes were parsed with, from the parse settings' key (``…;dialect=X;…``)."""
    match = re.search(r"(?:^|;)dialect=([a-z]+)", parsed_by)
    return match.group(1) if match else "obsidian"


def _embeds_notes(note: Note) -> bool:
    return any(raw.embed and raw.style == "wiki" and not is_attachment(raw.target) for raw in note.links)


def _render(template: str, ctx: Mapping[str, Any], **extra: Any) -> str:
    return _environment().get_template(template).render({**ctx, **extra})
