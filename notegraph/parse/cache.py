"""Per-file parse cache in SQLite, stamped by size+mtime and content hash; corrupt means empty, never failed.

Stored as JSON, not pickle: the cache lives inside a notes folder that may come from someone else, and
loading it must never run code.
"""

from __future__ import annotations

import hashlib
import json
import sqlite3
from dataclasses import asdict, fields
from pathlib import Path
from typing import Any

import orjson

from notegraph.model import Diagnostic, Note, RawLink

PARSER_VERSION = "4"  # the cache's own layout; the parser's code is keyed by parser_code()


def parser_code() -> str:
    """What a Note is made by: the parse package's code, the model it fills and the parsing libraries,
    so that a new notegraph never serves notes its old parser made (a hand-bumped number was forgotten
    once: titles from a heading outlived the change that made them file names)."""
    from notegraph.version import PACKAGE, code_version

    libraries = ("markdown-it-py", "mdit-py-plugins", "pyyaml")
    model = hashlib.sha256((PACKAGE / "model.py").read_bytes()).hexdigest()[:16]
    return f"{code_version(PACKAGE / 'parse', libraries)}.{model}"


Stamp = tuple[int, int, str, str]  # size, mtime_ns, content hash, parse key
Parsed = tuple[Note | None, list[Diagnostic]]


class ParseMemory:
    """Each file's parse result as a long-lived process (``serve``) last read or made it, under the
    stamp, content hash and parse key it was read under: a rebuild takes an unchanged file's result
    from here rather than decode its row again (0.07 s at 5,000 notes). Notes are frozen, so one result
    serves every build. Holds the files of the last build only."""

    def __init__(self) -> None:
        self.results: dict[str, tuple[Stamp, Parsed]] = {}

    def get(self, relpath: str, stamp: Stamp) -> Parsed | None:
        kept = self.results.get(relpath)
        return (kept[1][0], list(kept[1][1])) if kept is not None and kept[0] == stamp else None

    def keep(self, relpath: str, stamp: Stamp, result: Parsed) -> None:
        self.results[relpath] = (stamp, (result[0], list(result[1])))

    def keep_only(self, relpaths: set[str]) -> None:
        for relpath in [r for r in self.results if r not in relpaths]:
            del self.results[relpath]


class ParseCache:
    def __init__(self, path: Path, settings_key: str, memory: ParseMemory | None = None) -> None:
        self.path = path
        self.key = f"{PARSER_VERSION}:{parser_code()}:{settings_key}"
        self.memory = memory
        self.rows: dict[str, tuple[int, int, str, str]] = {}
        self.dirty: dict[str, tuple[int, int, str, str]] = {}
        self.seen: set[str] = set()
        self.warnings: list[str] = []
        self._load()

    def _connect(self) -> sqlite3.Connection:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        conn = sqlite3.connect(self.path)
        conn.execute("CREATE TABLE IF NOT EXISTS parsed (relpath TEXT PRIMARY KEY, size INT, mtime INT, sha TEXT, data TEXT)")
        conn.execute("CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT)")
        return conn

    def _load(self) -> None:
        if not self.path.exists():
            return
        try:
            with sqlite3.connect(self.path) as conn:
                row = conn.execute("SELECT value FROM meta WHERE key = 'version'").fetchone()
                if not row or row[0] != self.key:
                    return
                for relpath, size, mtime, sha, data in conn.execute("SELECT relpath, size, mtime, sha, data FROM parsed"):
                    self.rows[relpath] = (size, mtime, sha, data)
        except sqlite3.Error:
            self.rows = {}  # a damaged parse cache only costs a re-parse
            self._reset()

    def _reset(self) -> None:
        try:
            self.path.unlink(missing_ok=True)
        except OSError:
            pass

    def lookup(self, relpath: str, size: int, mtime_ns: int) -> tuple[Note | None, list[Diagnostic]] | None:
        self.seen.add(relpath)
        row = self.rows.get(relpath)
        if row and row[0] == size and row[1] == mtime_ns:
            stamp = (size, mtime_ns, row[2], self.key)
            decoded = self.memory.get(relpath, stamp) if self.memory is not None else None
            if decoded is None:
                decoded = _safe_decode(row[3])
                if decoded is not None and self.memory is not None:
                    self.memory.keep(relpath, stamp, decoded)
            if decoded is not None:
                # the JSON is not needed again (146 MB at 20,000 notes, held for the whole build otherwise);
                # a second lookup of the same file is then a miss, which only costs a re-parse
                self.rows[relpath] = (size, mtime_ns, row[2], "")
            return decoded
        return None

    def lookup_hash(self, relpath: str, data: bytes, size: int, mtime_ns: int) -> tuple[str, tuple[Note | None, list[Diagnostic]] | None]:
        sha = hashlib.sha256(data).hexdigest()
        row = self.rows.get(relpath)
        if row and row[2] == sha:
            decoded = _safe_decode(row[3])
            if decoded is not None:
                self.dirty[relpath] = (size, mtime_ns, sha, row[3])
                if self.memory is not None:
                    self.memory.keep(relpath, (size, mtime_ns, sha, self.key), decoded)
            return sha, decoded
        return sha, None

    def store(self, relpath: str, size: int, mtime_ns: int, sha: str, result: tuple[Note | None, list[Diagnostic]]) -> None:
        self.dirty[relpath] = (size, mtime_ns, sha, _encode(result))
        if self.memory is not None:
            self.memory.keep(relpath, (size, mtime_ns, sha, self.key), result)

    def digest(self) -> str:
        """One hash of every file read this time (path + content hash): equal digests, equal notes."""
        h = hashlib.sha256(self.key.encode())
        for relpath in sorted(self.seen):
            row = self.dirty.get(relpath) or self.rows.get(relpath)
            h.update(f"\n{relpath}\0{row[2] if row else '-'}".encode())
        return h.hexdigest()

    def stamps(self) -> dict[str, list[int]]:
        """Size and mtime of every file read this time that parsed into a cached row."""
        out = {}
        for relpath in sorted(self.seen):
            row = self.dirty.get(relpath) or self.rows.get(relpath)
            if row:
                out[relpath] = [row[0], row[1]]
        return out

    def save(self) -> None:
        if self.memory is not None:
            self.memory.keep_only(self.seen)
        gone = set(self.rows) - self.seen
        if not any(row[3] for row in self.dirty.values()) and not gone:
            return
        try:
            with self._connect() as conn:
                conn.execute("INSERT OR REPLACE INTO meta VALUES ('version', ?)", (self.key,))
                conn.executemany("DELETE FROM parsed WHERE relpath = ?", [(g,) for g in sorted(gone)])
                conn.executemany(
                    "INSERT OR REPLACE INTO parsed VALUES (?, ?, ?, ?, ?)",
                    [(relpath, *row) for relpath, row in sorted(self.dirty.items()) if row[3]],
                )
        except (sqlite3.Error, OSError) as exc:
            self.warnings.append(f"parse cache {self.path} not saved: {exc}")
        # what digest() and stamps() need stays; the JSON, written now, would be held for the whole build
        self.dirty = {relpath: (*row[:3], "") for relpath, row in self.dirty.items()}


_NOTE_FIELDS = tuple(f.name for f in fields(Note))
_LINK_FIELDS = tuple(f.name for f in fields(RawLink))


def _encode(result: tuple[Note | None, list[Diagnostic]]) -> str:
    """The same JSON as ``asdict``, field by field: asdict deep-copies every value on the way, and cost
    2 s of the parent's time when 20,000 notes were parsed (the workers were idle by then)."""
    note, diags = result
    data = None
    if note is not None:
        data = {name: getattr(note, name) for name in _NOTE_FIELDS}
        data["meta"] = dict(note.meta)
        data["links"] = [{name: getattr(link, name) for name in _LINK_FIELDS} for link in note.links]
    text = json.dumps({"note": data, "diags": [asdict(d) for d in diags]}, ensure_ascii=False)
    # orjson (which reads the rows back) turns an integer beyond 64 bits into a float: such rows are
    # marked, and read by the standard library
    return _WIDE + text if note is not None and _wide(note.meta) else text


_WIDE = "J"  # before the JSON of a row that holds an integer orjson cannot read exactly


def _wide(value: Any) -> bool:
    if isinstance(value, int):
        return not -(2**63) <= value < 2**63
    if isinstance(value, dict):
        return any(_wide(v) for v in value.values())
    if isinstance(value, (list, tuple)):
        return any(_wide(v) for v in value)
    return False


def _safe_decode(text: str) -> tuple[Note | None, list[Diagnostic]] | None:
    try:
        return _decode(text)
    except (ValueError, TypeError, KeyError, AttributeError):
        return None  # a damaged row is a cache miss


def _decode(text: str) -> tuple[Note | None, list[Diagnostic]]:
    data: dict[str, Any]
    if text.startswith(_WIDE):
        data = json.loads(text[len(_WIDE) :])
    else:
        try:
            data = orjson.loads(text)  # twice the standard library's speed, for every note of every build
        except orjson.JSONDecodeError:
            data = json.loads(text)  # NaN and Infinity (YAML's .nan and .inf), which orjson refuses
    diags = [Diagnostic(**d) for d in data["diags"]]
    raw = data["note"]
    if raw is None:
        return None, diags
    tuple_fields = ("topics", "aliases", "tags", "headings", "blocks")
    for name in tuple_fields:
        raw[name] = tuple(raw[name])
    raw["links"] = tuple(RawLink(**link) for link in raw["links"])
    return Note(**raw), diags
