"""The only module that knows the stage order: parse -> resolve -> embed -> graph -> render."""

from __future__ import annotations

import functools
import gc
import sys
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

from notegraph.config import Settings
from notegraph.errors import BuildError, NotesHaveErrors, NotesHaveProblems
from notegraph.model import Collection, Diagnostic, GraphResult, Note
from notegraph.parse import read_notes
from notegraph.resolve import resolve

F = TypeVar("F", bound=Callable[..., Any])


@contextmanager
def no_gc() -> Iterator[None]:
    """A build makes millions of small objects and almost no reference cycles: the cyclic garbage
    collector's repeated passes over them cost ~30% of parse and resolve at 20,000 notes. It is off
    while a stage runs and back on afterwards (``serve`` builds again and again).

    Turned back on, it would pass over every object the build made and kept, at the first allocation
    (0.06 s after a ``serve`` rebuild at 5,000 notes, 0.12 s after a CLI build): they are frozen first,
    out of its reach. A build leaves almost no cyclic garbage for it to find (measured: 10 objects
    after a first ``serve`` rebuild at 5,000 notes, none after the next ones); the rest is freed by
    reference counting, frozen or not."""
    was = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was:
            gc.freeze()
            gc.enable()


def batch(fn: F) -> F:
    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        with no_gc():
            return fn(*args, **kwargs)

    return wrapper  # type: ignore[return-value]


class Warm:
    """What a process that builds again and again (``serve``) keeps from one build for the next, beside
    the files every build keeps: each note as parsed, its links as resolved and each vector and chunk
    list as read, so that a rebuild decodes and reads only what changed. Each part is keyed as its file
    is (see parse.cache.ParseMemory, resolve.ResolveMemory and embed.cache.EmbedMemory): a build with
    it makes what one without makes."""

    def __init__(self) -> None:
        from notegraph.embed.cache import EmbedMemory
        from notegraph.parse.cache import ParseMemory
        from notegraph.resolve import ResolveMemory

        self.parsed = ParseMemory()
        self.resolved = ResolveMemory()
        self.embedded = EmbedMemory()


def parse(settings: Settings, use_cache: bool = True) -> tuple[list[Note], list[Diagnostic]]:
    """Read every note of the collection (through the parse cache); bad files become diagnostics."""
    notes, diagnostics, _cache, _files = _read(settings, use_cache)
    return notes, diagnostics


Attachments = dict[str, tuple[int, int]]


def _read(settings: Settings, use_cache: bool, warm: Warm | None = None) -> tuple[list[Note], list[Diagnostic], Any, Attachments]:
    """parse(), plus the parse cache (None without it), which knows every file read, and the files notes
    can embed (path -> size, mtime), found by the same walk."""
    from notegraph.parse.cache import ParseCache
    from notegraph.parse.collection import detect_dialect

    dialect = detect_dialect(settings.notes_dir) if settings.dialect == "auto" else settings.dialect
    memory = warm.parsed if warm is not None else None
    parsed_by = f"html={settings.allow_html};dialect={dialect};h1={settings.title_from_heading}"
    cache = ParseCache(settings.state_dir / "parse.sqlite", parsed_by, memory) if use_cache else None
    found: list[Any] = []
    notes, diagnostics = read_notes(
        settings.notes_dir,
        exclude=settings.exclude,
        skip=_skip(settings),
        allow_html=settings.allow_html,
        max_bytes=_max_bytes(settings),
        cache=cache,
        dialect=dialect,
        title_from_heading=settings.title_from_heading,
        attachments=found,
    )
    return notes, diagnostics, cache, {f.relpath: (f.size, f.mtime_ns) for f in found}


def attachment_folder(settings: Settings) -> str:
    """Where new attachments go: the setting, else Obsidian's own (``attachmentFolderPath`` in
    ``.obsidian/app.json``), which decides between files of the same name as it does in Obsidian."""
    if settings.attachment_folder is not None:
        return settings.attachment_folder
    import orjson

    try:
        value = orjson.loads((settings.notes_dir / ".obsidian" / "app.json").read_bytes()).get("attachmentFolderPath", "")
    except (OSError, ValueError, AttributeError):
        return ""
    return value if isinstance(value, str) else ""


def _skip(settings: Settings) -> tuple[Path, ...]:
    return (settings.out,) if settings.out is not None else ()


def _max_bytes(settings: Settings) -> int:
    return int(settings.max_note_mb * 1024 * 1024)


def load(settings: Settings, use_cache: bool = True) -> Collection:
    """Parse and resolve the collection. Problems become diagnostics; only an unusable folder raises."""
    notes, diagnostics, cache, files = _read(settings, use_cache)
    return _resolve(settings, notes, diagnostics, cache, files)


RESOLVED_MEMO = "resolved.json"


def _resolve(
    settings: Settings, notes: list[Note], diagnostics: list[Diagnostic], cache: Any, files: Attachments, warm: Warm | None = None
) -> Collection:
    """resolve(), with the links kept between builds when the parse cache is used (see resolve._Memo)."""
    memo = settings.state_dir / RESOLVED_MEMO if cache is not None else None
    memory = warm.resolved if warm is not None and memo is not None else None
    return resolve(
        str(settings.notes_dir),
        notes,
        diagnostics,
        memo=memo,
        parsed_by=cache.key if cache is not None else "",
        memory=memory,
        attachments=files,
        attachment_folder=attachment_folder(settings),
    )


@dataclass(frozen=True)
class CheckReport:
    collection: Collection

    @property
    def errors(self) -> list[Diagnostic]:
        return [d for d in self.collection.diagnostics if d.severity == "error"]

    @property
    def warnings(self) -> list[Diagnostic]:
        return [d for d in self.collection.diagnostics if d.severity == "warning"]

    def failed(self, strict: bool) -> bool:
        return bool(self.errors or (strict and self.warnings))

    def counts(self) -> dict[str, int]:
        statuses = [link.status for link in self.collection.links]
        return {
            "notes": len(self.collection.notes),
            "links": len(statuses),
            "resolved": statuses.count("ok"),
            "dangling": statuses.count("dangling"),
            "ambiguous": statuses.count("ambiguous"),
            "outside": statuses.count("outside"),
            "errors": len(self.errors),
            "warnings": len(self.warnings),
        }


@batch
def check(settings: Settings) -> CheckReport:
    return CheckReport(load(settings))


def fail_if_strict(report: CheckReport, strict: bool) -> None:
    """A build goes on around bad notes; --strict makes any problem fatal."""
    if strict and report.failed(strict):
        n = len(report.errors) + len(report.warnings)
        raise NotesHaveProblems(f"{n} problem(s) in the notes (--strict)", tuple(report.collection.diagnostics))


# --- import ----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ImportReport:
    written: list[str]
    skipped: list[str]
    diagnostics: list[Diagnostic]


def import_files(paths: list[Path], into: Path, *, force: bool = False, settings: Settings | None = None) -> ImportReport:
    """Import pages (.txt), BibTeX (.bib) and CSL-JSON (.json) into markdown notes under ``into``."""
    from notegraph.fsutil import atomic_write_text
    from notegraph.parse.importers import ImportedNote, import_bibtex, import_csl_json, import_page

    into.mkdir(parents=True, exist_ok=True)
    settings = settings or Settings(notes_dir=into)
    collection = load(settings) if settings.notes_dir.exists() else None
    vocabulary = list(settings.topics)
    titles: dict[str, str] = {}
    if collection is not None:
        for note in collection.notes.values():
            vocabulary.extend(note.topics)
            titles[note.title] = note.id
    written: list[str] = []
    skipped: list[str] = []
    diagnostics: list[Diagnostic] = []
    for path in paths:
        try:
            text = path.read_text(encoding="utf-8-sig")
        except (OSError, UnicodeDecodeError) as exc:
            diagnostics.append(Diagnostic(str(path), 1, "error", "unreadable", f"cannot read: {exc}"))
            continue
        suffix = path.suffix.lower()
        imported: list[ImportedNote]
        try:
            if suffix == ".bib":
                imported = import_bibtex(str(path), text)
            elif suffix == ".json":
                imported = import_csl_json(str(path), text)
            else:
                imported = [import_page(str(path), text, vocabulary, titles)]
        except ValueError as exc:
            diagnostics.append(Diagnostic(str(path), 1, "error", "import", str(exc).split(": ", 1)[-1]))
            continue
        for item in imported:
            diagnostics.extend(item.diagnostics)
            if not item.filename:
                continue
            target = into / item.filename
            if target.exists() and not force:
                skipped.append(str(target))
                diagnostics.append(Diagnostic(str(target), 1, "warning", "exists", "note exists; not overwritten (use --force)"))
                continue
            atomic_write_text(target, item.text)
            written.append(str(target))
            titles.setdefault(item.title, target.stem)
    return ImportReport(written, skipped, diagnostics)


# --- embed + graph ---------------------------------------------------------------------------------


@dataclass
class Analysis:
    collection: Collection
    embeddings: Any
    graph: GraphResult
    warnings: list[str]


FAKE_PREFIX = "fake/hash-"  # `model = "fake/hash-64"`: deterministic hashing vectors for tests and benchmarks


def model_id(settings: Settings) -> str:
    from notegraph.embed import model_id_for

    return settings.model if settings.model.startswith(FAKE_PREFIX) else model_id_for(settings.model, settings.backend)


def embedder_factory_for(settings: Settings) -> Callable[[], Any]:
    """The model the settings name, loaded in a child process (see notegraph.embed.isolated): the
    build's own process never imports torch."""

    def factory() -> Any:
        from notegraph.embed import FakeEmbedder
        from notegraph.embed.isolated import IsolatedEmbedder

        if settings.model.startswith(FAKE_PREFIX):
            return FakeEmbedder(int(settings.model.removeprefix(FAKE_PREFIX) or 64))
        show = not settings.quiet and sys.stderr.isatty()
        return IsolatedEmbedder(settings.model, device=settings.device, show_progress=show, backend=settings.backend)

    return factory


class KeptEmbedder:
    """Factories that load the model once and keep it for later builds (``serve`` rebuilds on every
    save); a different model, device or backend in the settings replaces it. ``close()`` ends it."""

    def __init__(self) -> None:
        self._key: tuple[str, str | None, str] | None = None
        self._embedder: Any = None

    def factory_for(self, settings: Settings) -> Callable[[], Any]:
        key = (settings.model, settings.device, settings.backend)

        def factory() -> Any:
            if self._key != key or self._embedder is None:
                self.close()
                self._embedder = embedder_factory_for(settings)()
                self._key = key
            return self._embedder

        return factory

    def close(self) -> None:
        embedder, self._embedder, self._key = self._embedder, None, None
        close = getattr(embedder, "close", None)
        if close is not None:
            close()


def embed(collection: Collection, settings: Settings, factory: Callable[[], Any] | None = None, warm: Warm | None = None) -> tuple[Any, list[str]]:
    """Embed every note through the SQLite cache; the model is loaded only if something is missing."""
    from notegraph.embed import EmbeddingCache, embed_notes

    key = getattr(factory, "model_id", None) or model_id(settings)
    factory = factory or embedder_factory_for(settings)
    with EmbeddingCache(settings.cache_path) as cache:
        embeddings = embed_notes(collection.notes, cache, factory, key, memory=warm.embedded if warm is not None else None)
        return embeddings, list(cache.warnings)


FACTS_MEMO = "facts.sqlite"
LABEL_COUNTS = "label-terms.npz"
TERM_COUNTS = "terms.npz"
RANK_STATE = "rank.npz"
SIMILAR_STATE = "near.npz"
RETIRED_STATE = ("terms.sqlite",)  # kept by earlier versions, read by none now: removed by a build


def graph_settings(settings: Settings, full: bool = True) -> Any:
    """The graph stage's settings; a one-off query (full=False) keeps no cluster state."""
    from notegraph.graph import GraphSettings

    return GraphSettings(
        similar_k=settings.similar_k,
        similar_threshold=settings.similar_threshold,
        related_k=settings.related_k,
        ann_threshold=settings.ann_threshold,
        cluster_state=settings.state_dir / "clusters.json" if full else None,
        facts_memo=settings.state_dir / FACTS_MEMO if full else None,
        label_counts=settings.state_dir / LABEL_COUNTS if full else None,
        term_counts=settings.state_dir / TERM_COUNTS if full else None,
        rank_state=settings.state_dir / RANK_STATE if full else None,
        similar_state=settings.state_dir / SIMILAR_STATE if full else None,
        full=full,
    )


def analyse(
    settings: Settings, collection: Collection | None = None, factory: Callable[[], Any] | None = None, *, full: bool = True
) -> Analysis:
    from notegraph.graph import build_graph
    from notegraph.parallel import one_blas_thread

    collection = collection if collection is not None else load(settings)
    embeddings, warnings = embed(collection, settings, factory)
    with one_blas_thread():  # as in build()
        graph = build_graph(collection, embeddings, graph_settings(settings, full))
    return Analysis(collection, embeddings, graph, warnings)


# --- build -----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class BuildReport:
    out: Path
    notes: int
    pages_written: int
    pages_reused: int
    embedded: int
    diagnostics: tuple[Diagnostic, ...]
    warnings: tuple[str, ...]
    texts: int = 0  # chunk texts of this build's notes (0 when nothing was rebuilt)
    links: int = 0
    facts_computed: int = 0  # notes whose facts were computed (the others were kept: graph.memo)


# what builds in a process that ends right after them made (see ``build``'s ``process_ends``)
_LEFT_FOR_EXIT: list[Any] = []


@contextmanager
def _untimed(stage: str) -> Iterator[None]:
    yield


@batch
def build(
    settings: Settings,
    factory: Callable[[], Any] | None = None,
    *,
    timer: Callable[[str], AbstractContextManager[Any]] = _untimed,
    keep_on_errors: bool = False,
    warm: Warm | None = None,
    process_ends: bool = False,
) -> BuildReport:
    """Parse, resolve, embed, graph and render into a staging folder, then swap it in whole.
    ``keep_on_errors``: when a note has errors and a site is published, raise NotesHaveErrors before
    anything is written, rather than build around the bad notes (``serve`` keeps its last good site).
    ``warm``: what this process kept from its last build (``serve``; see ``Warm``).
    ``process_ends``: the process ends right after (the CLI's ``build``), so what the build made is
    left for the exit to drop at once rather than freed object by object (0.06 s at 5,000 notes).

    When nothing the site depends on has changed since the last build (the notes, the settings, the
    model, notegraph's code) and the published site is untouched, nothing is embedded, ranked or
    written: that is checked from the build fingerprint and file stamps in .notegraph/last-build.json.
    ``timer(stage)`` wraps each stage (the benchmark measures the real build through it)."""
    from notegraph.fsutil import (
        build_lock,
        check_out_dir,
        clean_stale,
        discard,
        repair_state,
        staging_dir,
        swap_in,
    )
    from notegraph.graph import build_graph
    from notegraph.parallel import one_blas_thread
    from notegraph.render import render_site

    out = settings.out
    check_out_dir(out, settings.notes_dir)
    repaired = repair_state(settings.state_dir)
    with build_lock(settings.state_dir):
        clean_stale(out)
        for name in RETIRED_STATE:
            (settings.state_dir / name).unlink(missing_ok=True)
        with timer("parse"):
            notes, diagnostics, parse_cache, files = _read(settings, use_cache=True, warm=warm)
        with timer("resolve"):
            collection = _resolve(settings, notes, diagnostics, parse_cache, files, warm)
            checked = CheckReport(collection)
            if keep_on_errors and checked.errors and out.is_dir():
                raise NotesHaveErrors(tuple(checked.errors))
            fail_if_strict(checked, settings.strict)
            key = settings_key(settings, getattr(factory, "model_id", None))
            # the attachment folder may come from .obsidian/app.json, which the settings key does not see
            fingerprint = build_fingerprint(key, f"{parse_cache.digest()}\0{collection.attachment_folder}", files)
            note_stamps = parse_cache.stamps()
            last = _last_build(settings)
            pages = _unchanged_site(settings, last, fingerprint, key, note_stamps)
        if pages is not None:
            if process_ends:
                _LEFT_FOR_EXIT.append((notes, collection, parse_cache))
            return BuildReport(out, len(collection.notes), 0, pages, 0, collection.diagnostics, tuple(repaired))
        # the graph and render stages fork workers that take every core: BLAS then stays on one thread
        # (see parallel.one_blas_thread), from before the first fork to the end of the build
        with one_blas_thread():
            with timer("embed"):
                embeddings, warnings = embed(collection, settings, factory, warm)
            with timer("graph"):
                graph = build_graph(collection, embeddings, graph_settings(settings))
            staged = staging_dir(out)
            try:
                with timer("render"):
                    report = render_site(
                        collection,
                        graph,
                        staged,
                        title=settings.title,
                        allow_html=settings.allow_html,
                        remote_images=settings.remote_images,
                        previous=out if out.is_dir() else None,
                        previous_stamps=_site_stamps(last),
                    )
                with timer("write"):
                    _forget_site(settings)
                    swap_in(staged, out)
                    _write_query_index(settings, key, fingerprint, note_stamps, collection, graph, embeddings)
                    _remember_site(settings, fingerprint, report)
            except OSError as exc:
                discard(staged)
                from notegraph.fsutil import os_error_message

                raise BuildError(os_error_message(exc, out)) from None
            except BaseException:
                discard(staged)
                raise
    if process_ends:
        _LEFT_FOR_EXIT.append((notes, collection, parse_cache, embeddings, graph, report))
    return BuildReport(
        out=out,
        notes=len(collection.notes),
        pages_written=report.pages_written,
        pages_reused=report.pages_reused,
        embedded=embeddings.embedded,
        diagnostics=collection.diagnostics,
        warnings=(*repaired, *warnings),
        texts=embeddings.embedded + embeddings.cached,
        links=len(collection.links),
        facts_computed=graph.computed,
    )


# The last build's fingerprint and the size and mtime of every file it wrote, so that an unchanged
# build can be recognised without ranking or rendering anything (and a touched site is not trusted).
LAST_BUILD = "last-build.json"


def _last_build(settings: Settings) -> dict[str, Any] | None:
    """What the last build of this site folder recorded in last-build.json (None if it was for another
    folder, or is missing or unreadable)."""
    import orjson

    try:
        data = orjson.loads((settings.state_dir / LAST_BUILD).read_bytes())
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) and data.get("out") == str(settings.out.resolve()) else None


def _unchanged_site(settings: Settings, last: dict[str, Any] | None, fingerprint: str, key: str, stamps: dict[str, list[int]]) -> int | None:
    """The page count of the published site if it was built from this fingerprint and is untouched."""
    from notegraph.fsutil import stamp
    from notegraph.query import QueryIndex, restamp

    if last is None or last.get("fingerprint") != fingerprint:
        return None
    try:
        if any(stamp(settings.out / path) != recorded for path, recorded in last["stamps"].items()):
            return None
        pages = int(last["pages"])
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        return None
    # the last build's query index is part of its output; a note saved again unchanged has a new mtime
    # but the same contents (the fingerprint), so the index stands and takes the new stamps
    index = QueryIndex.open(settings.state_dir / QUERY_INDEX, key, stamps)
    if index is not None:
        index.close()
        return pages
    return pages if restamp(settings.state_dir / QUERY_INDEX, key, fingerprint, stamps) else None


def _site_stamps(last: dict[str, Any] | None) -> dict[str, list[int]]:
    """The size and mtime of every file of the published site when it was built (none if unknown)."""
    if last is None:
        return {}
    try:
        return {str(path): [int(x) for x in recorded] for path, recorded in last["stamps"].items()}
    except (KeyError, TypeError, ValueError, AttributeError):
        return {}


def _forget_site(settings: Settings) -> None:
    (settings.state_dir / LAST_BUILD).unlink(missing_ok=True)


def _remember_site(settings: Settings, fingerprint: str, report: Any) -> None:
    import orjson

    from notegraph.fsutil import atomic_write_bytes, stamp

    try:
        # the staging folder was renamed into place: its files kept the size and mtime they were written with
        stamps = {path: report.stamps.get(path) or stamp(settings.out / path) for path in report.paths}
        pages = report.pages_written + report.pages_reused
        data = {"fingerprint": fingerprint, "out": str(settings.out.resolve()), "pages": pages, "stamps": stamps}
        atomic_write_bytes(settings.state_dir / LAST_BUILD, orjson.dumps(data, option=orjson.OPT_SORT_KEYS))
    except OSError:
        pass  # only costs the next build its shortcut


def settings_key(settings: Settings, factory_model: str | None = None) -> str:
    """A hash of everything besides the notes that a build's output depends on: notegraph's code and
    libraries, the model and the settings."""
    import hashlib
    from dataclasses import asdict

    from notegraph.version import code_version

    # where things are written, where the cache lives and which device computes change no output
    ignored = ("notes_dir", "out", "cache", "device", "strict", "quiet")
    chosen = {k: str(v) for k, v in sorted(asdict(settings).items()) if k not in ignored}
    model = factory_model or model_id(settings)
    return hashlib.sha256(f"{code_version()}\n{model}\n{chosen}".encode()).hexdigest()


def build_fingerprint(key: str, notes_digest: str, files: Attachments | None = None) -> str:
    """The settings key, the notes and the attachments (their paths, sizes and mtimes): equal
    fingerprints, equal sites."""
    import hashlib

    import orjson

    digest = hashlib.sha256(f"{key}\n{notes_digest}\n".encode())
    digest.update(orjson.dumps(sorted((files or {}).items())))
    return digest.hexdigest()


QUERY_INDEX = "query.sqlite"


def _write_query_index(
    settings: Settings, key: str, fingerprint: str, stamps: dict[str, list[int]], collection: Collection, graph: GraphResult, embeddings: Any
) -> None:
    import sqlite3

    from notegraph.query import write_index

    try:
        names = collection.display_names
        write_index(settings.state_dir / QUERY_INDEX, key, stamps, collection.notes, graph, embeddings, settings.related_k, fingerprint, names)
    except (OSError, sqlite3.Error):
        (settings.state_dir / QUERY_INDEX).unlink(missing_ok=True)  # queries then rank from scratch


# --- queries ---------------------------------------------------------------------------------------


@batch
def related(settings: Settings, query: str, k: int, kind: str | None, factory: Callable[[], Any] | None = None) -> tuple[str, list[dict[str, Any]]]:
    """Related notes for a note (title, alias, path) or, if no note matches, for free text.

    Answered from the last build's query index while the notes and settings are those it was built
    from; otherwise the collection is loaded and ranked. Returns (what the query was taken as, items)."""
    from notegraph import query as q
    from notegraph.parse.collection import file_stamps

    key = settings_key(settings, getattr(factory, "model_id", None))
    stamps = file_stamps(settings.notes_dir, settings.exclude, _skip(settings), _max_bytes(settings))
    index = q.QueryIndex.open(settings.state_dir / QUERY_INDEX, key, stamps)
    if index is not None:
        try:
            notes = index.notes()
            note = q.find_note(Collection(str(settings.notes_dir), notes, (), ()), query)
            if note is None:
                embedder = (factory or embedder_factory_for(settings))()
                return "text", index.related_to_text(embedder.encode([query]), k, kind)
            items = index.related(note.id, k, kind)
            if items is not None:
                return f"note:{note.id}", items
        finally:
            index.close()
    analysis = analyse(settings, factory=factory, full=False)
    names = analysis.collection.display_names
    note = q.find_note(analysis.collection, query)
    if note is not None:
        return f"note:{note.id}", q.related_to_note(analysis.graph, note.id, k, kind, names)
    embedder = (factory or embedder_factory_for(settings))()
    return "text", q.related_to_text(analysis.graph, analysis.embeddings, query, k, kind, embedder.encode, names)


@batch
def export(settings: Settings, fmt: str, related_k: int, factory: Callable[[], Any] | None = None) -> str:
    from notegraph import query as q

    analysis = analyse(settings, factory=factory)
    return q.export(analysis.graph, fmt, related_k)


@batch
def evaluate(settings: Settings, factory: Callable[[], Any] | None = None) -> Any:
    """Link prediction on the collection's own links (see notegraph.evaluate)."""
    from notegraph.embed import EmbeddingCache, embed_notes
    from notegraph.evaluate import evaluate as run_eval

    collection = load(settings)
    key = getattr(factory, "model_id", None) or model_id(settings)
    factory = factory or embedder_factory_for(settings)
    with EmbeddingCache(settings.cache_path) as cache:
        return run_eval(collection, lambda notes: embed_notes(notes, cache, factory, key))


@batch
def suggest(settings: Settings, k: int, min_score: float | None, factory: Callable[[], Any] | None = None) -> list[dict[str, Any]]:
    """Pairs of notes that are highly related but not linked, best first, with the evidence."""
    analysis = analyse(settings, factory=factory)
    graph = analysis.graph
    g = graph.graph
    pairs: dict[tuple[str, str], Any] = {}
    for note_id in sorted(analysis.collection.notes):
        for item in graph.ranker.related(note_id, 10):
            a, b = sorted((note_id, item.id))
            linked = any(g.has_edge(x, y, key=kind) for x, y in ((a, b), (b, a)) for kind in ("link", "source"))
            if linked or (min_score is not None and item.score < min_score):
                continue
            if (a, b) not in pairs or pairs[(a, b)].score < item.score:
                pairs[(a, b)] = item if note_id == a else graph.ranker.explain(a, b, score=item.score)
    ranked = sorted(pairs.items(), key=lambda kv: (-kv[1].score, kv[0]))[:k]
    notes = analysis.collection.notes
    return [
        {
            "rank": rank,
            "a": {"id": a, "title": notes[a].title, "kind": notes[a].kind},
            "b": {"id": b, "title": notes[b].title, "kind": notes[b].kind},
            "score": item.score,
            "why": list(item.why),
            "passage_a": item.own_passage,
            "passage_b": item.passage,
        }
        for rank, ((a, b), item) in enumerate(ranked, start=1)
    ]
