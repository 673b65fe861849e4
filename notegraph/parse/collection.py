"""The notes folder -> parsed notes: walking, exclusions, symlink and size safety, a parse cache hook."""

from __future__ import annotations

import fnmatch
import os
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

from notegraph.model import Diagnostic, Note
from notegraph.parallel import fork_map, shard, workers_for
from notegraph.parse.cache import ParseCache
from notegraph.parse.note import is_attachment, parse_note

SKIP_DIRS = frozenset({".git", ".notegraph", ".obsidian", ".trash", "node_modules", "__pycache__", ".venv"})
NOTE_SUFFIXES = (".md", ".markdown")


@dataclass(frozen=True)
class SourceFile:
    relpath: str  # POSIX, relative to the notes folder
    file: str  # the path as found under the (resolved) notes folder
    size: int
    mtime_ns: int

    @property
    def path(self) -> Path:
        return Path(self.file)  # made when read: a Path for every file cost 8 ms a 1,000 files


def iter_note_files(
    root: Path, exclude: tuple[str, ...] = (), skip: tuple[Path, ...] = (), attachments: list[SourceFile] | None = None
) -> Iterator[SourceFile | Diagnostic]:
    """Every note file under root, sorted; symlinks are followed only while they stay inside root.
    ``attachments``: where the same walk puts the files notes can embed (images, PDFs, media)."""
    root = root.resolve()
    skip_resolved = tuple(p.resolve() for p in skip)
    seen_dirs: set[tuple[int, int]] = set()

    def walk(directory: Path, rel: str) -> Iterator[SourceFile | Diagnostic | tuple[Path, str]]:
        """One folder's notes and problems, and its subfolders as (path, relpath) to walk in turn."""
        try:
            stat = directory.stat()
            if (stat.st_dev, stat.st_ino) in seen_dirs:
                yield Diagnostic(rel or ".", 1, "warning", "symlink-loop", "symlinked folder loops back; not followed")
                return
            seen_dirs.add((stat.st_dev, stat.st_ino))
            entries = sorted(os.scandir(directory), key=lambda e: e.name)
        except OSError as exc:
            yield Diagnostic(rel or ".", 1, "error", "unreadable", f"cannot read folder: {exc.strerror or exc}")
            return
        for entry in entries:
            relpath = f"{rel}/{entry.name}" if rel else entry.name
            if exclude and _excluded(relpath, exclude):
                continue
            try:
                if entry.is_symlink():
                    target = Path(entry.path).resolve(strict=True)
                    if target != root and root not in target.parents:
                        yield Diagnostic(relpath, 1, "warning", "symlink-outside", "symlink points outside the notes folder; not followed")
                        continue
                is_dir = entry.is_dir()
                is_file = entry.is_file()
            except (OSError, RuntimeError):
                yield Diagnostic(relpath, 1, "warning", "symlink-loop", "broken or looping symlink; skipped")
                continue
            if is_dir:
                if entry.name in SKIP_DIRS or entry.name.startswith("."):
                    continue
                path = Path(entry.path)
                if any(path.resolve() == s or s in path.resolve().parents for s in skip_resolved):
                    continue
                yield (path, relpath)
            elif is_file and entry.name.lower().endswith(NOTE_SUFFIXES) and not entry.name.startswith("."):
                try:
                    stat = entry.stat()
                except OSError as exc:
                    yield Diagnostic(relpath, 1, "error", "unreadable", f"cannot read file: {exc.strerror or exc}")
                    continue
                yield SourceFile(relpath, entry.path, stat.st_size, stat.st_mtime_ns)
            elif attachments is not None and is_file and not entry.name.startswith(".") and is_attachment(entry.name):
                try:
                    stat = entry.stat()
                except OSError:
                    continue  # an attachment that cannot be read is reported where a note embeds it
                attachments.append(SourceFile(relpath, entry.path, stat.st_size, stat.st_mtime_ns))

    # an explicit stack, not recursion: a thousand nested folders are a thousand generators, not a
    # RecursionError (the order is the same: depth first, names sorted)
    stack = [walk(root, "")]
    while stack:
        item = next(stack[-1], None)
        if item is None:
            stack.pop()
        elif isinstance(item, tuple):
            stack.append(walk(*item))
        else:
            yield item


def detect_dialect(root: Path, sample: int = 40) -> str:
    """`dendron` when the folder looks like a Dendron vault (dendron.yml, or notes with numeric
    `created:`/`updated:` front matter), else `obsidian` (which also reads plain markdown links)."""
    for folder in (root, root.parent):
        if (folder / "dendron.yml").exists():
            return "dendron"
    hits = total = 0
    for item in iter_note_files(root):
        if isinstance(item, Diagnostic):
            continue
        try:
            with open(item.file, "rb") as f:  # 600 bytes, whatever the file's size (it may be gigabytes)
                head = f.read(600).decode("utf-8", "replace")
        except OSError:
            continue
        total += 1
        if head.startswith("---") and re.search(r"^created: \d{10,}", head, re.M) and re.search(r"^updated: \d{10,}", head, re.M):
            hits += 1
        if total >= sample:
            break
    return "dendron" if total and hits / total >= 0.5 else "obsidian"


def _excluded(relpath: str, patterns: tuple[str, ...]) -> bool:
    for pattern in patterns:
        pattern = pattern.strip("/")
        if fnmatch.fnmatch(relpath, pattern) or relpath == pattern or relpath.startswith(pattern + "/"):
            return True
    return False


def file_stamps(root: Path, exclude: tuple[str, ...] = (), skip: tuple[Path, ...] = (), max_bytes: int = 8 * 1024 * 1024) -> dict[str, list[int]]:
    """Size and mtime of every note file read_notes would read: what ParseCache.stamps() recorded, now."""
    return {
        item.relpath: [item.size, item.mtime_ns]
        for item in iter_note_files(root, exclude, skip)
        if isinstance(item, SourceFile) and item.size <= max_bytes
    }


PARALLEL_MIN = 400  # files to parse below which forking workers costs more than it saves
ParseFn = Callable[[SourceFile, bytes], tuple[Note | None, list[Diagnostic]]]


def read_notes(
    root: Path,
    *,
    exclude: tuple[str, ...] = (),
    skip: tuple[Path, ...] = (),
    allow_html: bool = False,
    max_bytes: int = 8 * 1024 * 1024,
    parse: ParseFn | None = None,
    cache: ParseCache | None = None,
    dialect: str = "obsidian",
    title_from_heading: bool = False,
    attachments: list[SourceFile] | None = None,
) -> tuple[list[Note], list[Diagnostic]]:
    """Parse every note under root. A bad file becomes a diagnostic; the rest still loads.
    ``attachments``: filled with the files notes can embed, found by the same walk."""
    notes: list[Note] = []
    diagnostics: list[Diagnostic] = []

    def default_parse(source: SourceFile, data: bytes) -> tuple[Note | None, list[Diagnostic]]:
        return parse_note(source.relpath, data, allow_html=allow_html, dialect=dialect, title_from_heading=title_from_heading)

    parse_fn = parse or default_parse
    results: list[tuple[Note | None, list[Diagnostic]] | Diagnostic | None] = []
    todo: list[tuple[int, SourceFile, bytes, str | None]] = []  # files to parse: (slot, file, bytes, sha)
    for item in iter_note_files(root, exclude, skip, attachments):
        if isinstance(item, Diagnostic):
            results.append(item)
            continue
        if item.size > max_bytes:
            results.append(
                Diagnostic(item.relpath, 1, "error", "too-large", f"note is {item.size / 1e6:.1f} MB, over the {max_bytes / 1e6:.0f} MB limit; skipped")
            )
            continue
        hit = cache.lookup(item.relpath, item.size, item.mtime_ns) if cache else None
        if hit is None:
            try:
                data = item.path.read_bytes()
            except OSError as exc:
                results.append(Diagnostic(item.relpath, 1, "error", "unreadable", f"cannot read file: {exc.strerror or exc}"))
                continue
            sha = None
            if cache is not None:
                sha, hit = cache.lookup_hash(item.relpath, data, item.size, item.mtime_ns)
            if hit is None:
                todo.append((len(results), item, data, sha))
        results.append(hit)

    def parse_all(pieces: list[tuple[int, SourceFile, bytes, str | None]]) -> list[tuple[Note | None, list[Diagnostic]]]:
        return [parse_fn(item, data) for _slot, item, data, _sha in pieces]

    workers = workers_for(len(todo), PARALLEL_MIN)
    shards = shard(todo, workers)
    for pieces, parsed in zip(shards, fork_map(parse_all, shards), strict=True):
        for (slot, item, _data, sha), hit in zip(pieces, parsed, strict=True):
            results[slot] = hit
            if cache is not None and sha is not None:
                cache.store(item.relpath, item.size, item.mtime_ns, sha, hit)
    for result in results:
        if isinstance(result, Diagnostic):
            diagnostics.append(result)
        elif result is not None:
            note, diags = result
            diagnostics.extend(diags)
            if note is not None:
                notes.append(note)
    if cache is not None:
        cache.save()
    return notes, diagnostics
