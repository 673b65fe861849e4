"""EmbeddingCache: vectors keyed by (model id, hash of the exact text) in one SQLite file.

Vectors are little-endian float32 blobs. The schema is versioned with ``PRAGMA user_version`` and
evolves through the numbered functions in ``MIGRATIONS``. The cache never fails a build: a corrupt,
truncated, foreign or too-new file is renamed to ``<name>.corrupt-<n>`` and a fresh cache started; a
file that cannot be opened or written at all (permissions, full disk, lock held) degrades to an
in-memory cache. Either way a message lands in ``warnings`` for the caller to show.
"""

from __future__ import annotations

import json
import os
import sqlite3
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from types import TracebackType
from typing import TypeVar

import numpy as np

T = TypeVar("T")

# SQLite's default limit on host parameters is 999 in old builds; 500 leaves room for the model id.
IN_CHUNK = 500
_BUSY_TIMEOUT_MS = 5000
_REQUIRED_COLUMNS = {"model", "hash", "dim", "vector"}
# SQLITE_CORRUPT and SQLITE_NOTADB: the file itself is bad, as opposed to locked, read-only or full.
_CORRUPTION_CODES = {11, 26}
_SQLITE_MAGIC = b"SQLite format 3\x00"


def _m001_embeddings(conn: sqlite3.Connection) -> None:
    conn.execute(
        """
        CREATE TABLE embeddings (
            model TEXT NOT NULL,
            hash TEXT NOT NULL,
            dim INTEGER NOT NULL,
            vector BLOB NOT NULL,
            PRIMARY KEY (model, hash)
        )
        """
    )


def _m002_chunkings(conn: sqlite3.Connection) -> None:
    # a note's chunk texts by a hash of what they are cut from (its text and the chunker's code):
    # cutting text into chunks costs more than reading vectors, so a warm build skips it
    conn.execute("CREATE TABLE chunkings (key TEXT PRIMARY KEY, chunks TEXT NOT NULL)")


# Append only: migration i (1-based) takes a database from user_version i-1 to i.
MIGRATIONS: tuple[Callable[[sqlite3.Connection], None], ...] = (_m001_embeddings, _m002_chunkings)
SCHEMA_VERSION = len(MIGRATIONS)


class EmbedMemory:
    """The vectors and chunk lists a long-lived process (``serve``) read or made in its last build, for
    the next one: a rebuild reads from SQLite only what this lacks (0.08 s at 5,000 notes). Both are
    what their key names for good (a text's vector under a model, a note's chunks under the chunker),
    so an entry never goes stale; it holds the last build's entries only."""

    def __init__(self) -> None:
        self.model_id = ""
        self.vectors: dict[str, np.ndarray] = {}
        self.chunkings: dict[str, tuple[str, ...]] = {}

    def get_vectors(self, model_id: str, hashes: Iterable[str]) -> dict[str, np.ndarray]:
        if model_id != self.model_id:
            return {}
        return {h: self.vectors[h] for h in hashes if h in self.vectors}

    def get_chunkings(self, keys: Iterable[str]) -> dict[str, list[str]]:
        return {key: list(self.chunkings[key]) for key in keys if key in self.chunkings}

    def keep(self, model_id: str, vectors: Mapping[str, np.ndarray], chunkings: Mapping[str, list[str]]) -> None:
        self.model_id = model_id
        self.vectors = {h: _read_only(v) for h, v in vectors.items()}
        self.chunkings = {key: tuple(chunks) for key, chunks in chunkings.items()}


def _read_only(vector: np.ndarray) -> np.ndarray:
    if vector.flags.writeable:
        vector = vector.copy()
        vector.flags.writeable = False
    return vector


class _Unusable(Exception):
    """The file is not a cache this version can use; the message says why."""


class EmbeddingCache:
    """One SQLite file of embeddings. Use as a context manager or call :meth:`close`."""

    def __init__(self, path: Path | str) -> None:
        self.path = Path(path)
        self.warnings: list[str] = []
        self.in_memory = False
        self._conn = self._open()

    # --- public API -----------------------------------------------------------------------------

    def get_many(self, model_id: str, hashes: Iterable[str]) -> dict[str, np.ndarray]:
        """The cached vectors among ``hashes`` for ``model_id``; missing ones are simply absent."""
        wanted = list(dict.fromkeys(hashes))

        def read() -> dict[str, np.ndarray]:
            found: dict[str, np.ndarray] = {}
            for start in range(0, len(wanted), IN_CHUNK):
                chunk = wanted[start : start + IN_CHUNK]
                marks = ",".join("?" * len(chunk))
                rows = self._conn.execute(
                    f"SELECT hash, dim, vector FROM embeddings WHERE model = ? AND hash IN ({marks})",
                    [model_id, *chunk],
                )
                for text_hash, dim, blob in rows:
                    vector = np.frombuffer(blob, dtype="<f4")
                    if vector.shape[0] == dim:  # a short blob is damage: treat as missing, re-embed
                        found[text_hash] = vector
            return found

        return self._guard("read", read, retry=False, default={})

    def put_many(self, model_id: str, items: Mapping[str, np.ndarray]) -> None:
        """Store (or replace) vectors for ``model_id`` in one transaction."""
        rows: list[tuple[str, str, int, bytes]] = []
        for text_hash, vector in items.items():
            array = np.asarray(vector, dtype="<f4")
            if array.ndim != 1:
                raise ValueError(f"vector for {text_hash} must be 1-D, got shape {array.shape}")
            rows.append((model_id, text_hash, int(array.shape[0]), array.tobytes()))
        if not rows:
            return

        def write() -> None:
            with self._transaction():
                self._conn.executemany(
                    "INSERT OR REPLACE INTO embeddings (model, hash, dim, vector) VALUES (?, ?, ?, ?)", rows
                )

        self._guard("write", write, retry=True, default=None)

    def get_chunkings(self, keys: Iterable[str]) -> dict[str, list[str]]:
        """Stored chunk lists among ``keys`` (see :func:`notegraph.embed.stage.embed_notes`)."""
        wanted = list(dict.fromkeys(keys))

        def read() -> dict[str, list[str]]:
            found: dict[str, list[str]] = {}
            for start in range(0, len(wanted), IN_CHUNK):
                chunk = wanted[start : start + IN_CHUNK]
                marks = ",".join("?" * len(chunk))
                for key, text in self._conn.execute(f"SELECT key, chunks FROM chunkings WHERE key IN ({marks})", chunk):
                    try:
                        value = json.loads(text)
                    except ValueError:
                        continue  # a damaged row is a miss
                    if isinstance(value, list) and all(isinstance(v, str) for v in value):
                        found[key] = value
            return found

        return self._guard("read", read, retry=False, default={})

    def put_chunkings(self, items: Mapping[str, list[str]]) -> None:
        rows = [(key, json.dumps(chunks, ensure_ascii=False)) for key, chunks in items.items()]
        if not rows:
            return

        def write() -> None:
            with self._transaction():
                self._conn.executemany("INSERT OR REPLACE INTO chunkings (key, chunks) VALUES (?, ?)", rows)

        self._guard("write", write, retry=True, default=None)

    def dim(self, model_id: str) -> int | None:
        """The dimension of ``model_id``'s cached vectors, if any are cached."""

        def read() -> int | None:
            row = self._conn.execute("SELECT dim FROM embeddings WHERE model = ? LIMIT 1", (model_id,)).fetchone()
            return int(row[0]) if row else None

        return self._guard("read", read, retry=False, default=None)

    def count(self, model_id: str | None = None) -> int:
        """How many vectors are cached, for one model or all."""

        def read() -> int:
            if model_id is None:
                row = self._conn.execute("SELECT COUNT(*) FROM embeddings").fetchone()
            else:
                row = self._conn.execute("SELECT COUNT(*) FROM embeddings WHERE model = ?", (model_id,)).fetchone()
            return int(row[0])

        return self._guard("read", read, retry=False, default=0)

    def prune(self, model_id: str, keep_hashes: Iterable[str]) -> int:
        """Delete ``model_id``'s vectors whose hash is not in ``keep_hashes``; returns how many went."""
        keep = [(h,) for h in dict.fromkeys(keep_hashes)]

        def write() -> int:
            with self._transaction():
                self._conn.execute("CREATE TEMP TABLE IF NOT EXISTS keep_hashes (hash TEXT PRIMARY KEY)")
                self._conn.execute("DELETE FROM temp.keep_hashes")
                self._conn.executemany("INSERT OR IGNORE INTO temp.keep_hashes (hash) VALUES (?)", keep)
                cursor = self._conn.execute(
                    "DELETE FROM embeddings WHERE model = ? AND hash NOT IN (SELECT hash FROM temp.keep_hashes)",
                    (model_id,),
                )
                self._conn.execute("DELETE FROM temp.keep_hashes")
                return cursor.rowcount

        return self._guard("write", write, retry=False, default=0)

    def close(self) -> None:
        try:
            self._conn.close()
        except sqlite3.Error:
            pass

    def __enter__(self) -> EmbeddingCache:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    def __repr__(self) -> str:
        where = ":memory:" if self.in_memory else str(self.path)
        return f"EmbeddingCache({where!r})"

    # --- opening, checking, recovering ----------------------------------------------------------

    def _open(self) -> sqlite3.Connection:
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            return self._memory(f"cannot create its folder: {exc.strerror or exc}")
        for _attempt in range(3):
            conn: sqlite3.Connection | None = None
            try:
                _check_header(self.path)
                conn = sqlite3.connect(self.path, isolation_level=None, timeout=_BUSY_TIMEOUT_MS / 1000)
                _prepare(conn)
                return conn
            except _Unusable as exc:
                reason = str(exc)
            except sqlite3.DatabaseError as exc:
                if not _is_corruption(exc):
                    if conn is not None:
                        conn.close()
                    return self._memory(str(exc))
                reason = f"damaged: {exc}"
            if conn is not None:
                conn.close()
            if not self._move_aside(reason):
                return self._memory(reason)
        return self._memory("it could not be recreated")

    def _move_aside(self, reason: str) -> bool:
        """Rename the bad file (and its WAL files) out of the way; False if that is impossible."""
        n = 1
        while self.path.with_name(f"{self.path.name}.corrupt-{n}").exists():
            n += 1
        target = self.path.with_name(f"{self.path.name}.corrupt-{n}")
        try:
            os.replace(self.path, target)
        except FileNotFoundError:
            pass
        except OSError as exc:
            self.warnings.append(f"embedding cache {self.path} is unusable ({reason}) and could not be moved: {exc}")
            return False
        # A stale WAL next to a fresh database would be replayed into it, so it must go with the file.
        for suffix in ("-wal", "-shm"):
            side = self.path.with_name(self.path.name + suffix)
            try:
                os.replace(side, target.with_name(target.name + suffix))
            except FileNotFoundError:
                pass
            except OSError:
                try:
                    side.unlink()
                except OSError:
                    pass
        self.warnings.append(
            f"embedding cache {self.path} was unusable ({reason}); moved it to {target} and started a fresh one"
        )
        return True

    def _memory(self, reason: str) -> sqlite3.Connection:
        self.warnings.append(
            f"embedding cache {self.path} cannot be used ({reason}); embeddings will not be kept after this run"
        )
        self.in_memory = True
        conn = sqlite3.connect(":memory:", isolation_level=None)
        _prepare(conn)
        return conn

    def _guard(self, action: str, op: Callable[[], T], retry: bool, default: T) -> T:
        """Run ``op``; damage found mid-run swaps in a fresh cache instead of failing the build."""
        try:
            return op()
        except sqlite3.DatabaseError as exc:
            if _is_corruption(exc) and not self.in_memory:
                self.close()
                if self._move_aside(f"damaged: {exc}"):
                    self._conn = self._open()
                else:
                    self._conn = self._memory(f"damaged: {exc}")
            else:
                self.warnings.append(f"embedding cache {self.path}: could not {action} ({exc})")
                if not self.in_memory and action == "write":
                    # Keep the run's vectors somewhere, so the rest of the build still sees them.
                    self.close()
                    self._conn = self._memory(str(exc))
            if retry:
                try:
                    return op()
                except sqlite3.DatabaseError as again:
                    self.warnings.append(f"embedding cache {self.path}: could not {action} ({again})")
            return default

    @contextmanager
    def _transaction(self) -> Iterator[None]:
        # IMMEDIATE takes the write lock up front, so two builds queue instead of deadlocking.
        self._conn.execute("BEGIN IMMEDIATE")
        try:
            yield
        except BaseException:
            self._conn.execute("ROLLBACK")
            raise
        self._conn.execute("COMMIT")


def _is_corruption(exc: sqlite3.DatabaseError) -> bool:
    code = getattr(exc, "sqlite_errorcode", None)
    if code is not None:
        return (code & 0xFF) in _CORRUPTION_CODES
    message = str(exc).lower()
    return "malformed" in message or "not a database" in message


def _check_header(path: Path) -> None:
    """Catch a truncated file up front: SQLite itself notices only when it reads a missing page."""
    try:
        size = path.stat().st_size
        if size == 0:
            return  # SQLite treats an empty file as an empty database
        with path.open("rb") as handle:
            header = handle.read(100)
    except FileNotFoundError:
        return
    except OSError:
        return  # unreadable: sqlite3.connect reports it properly
    if len(header) < 100 or not header.startswith(_SQLITE_MAGIC):
        raise _Unusable("not an SQLite database")
    page_size = int.from_bytes(header[16:18], "big")
    page_size = 65536 if page_size == 1 else page_size
    pages = int.from_bytes(header[28:32], "big")
    # The in-header page count is trustworthy only when the change counter matches "version valid for".
    if pages and header[24:28] == header[92:96] and size < pages * page_size:
        raise _Unusable(f"truncated: {size} bytes of {pages * page_size}")


def _prepare(conn: sqlite3.Connection) -> None:
    """Check the file is ours and current, switch to WAL, run pending migrations."""
    conn.execute(f"PRAGMA busy_timeout = {_BUSY_TIMEOUT_MS}")
    version = conn.execute("PRAGMA user_version").fetchone()[0]
    if version > SCHEMA_VERSION:
        raise _Unusable(f"written by a newer notegraph: schema {version}, this one knows {SCHEMA_VERSION}")
    tables = _tables(conn)
    if version == 0 and tables:
        raise _Unusable(f"not a notegraph cache: it holds tables {', '.join(sorted(tables))}")
    if version:
        _check_columns(conn)  # before anything below writes to a file that may not be ours
    # WAL lets a query command read while a build writes; on file systems without shared memory
    # SQLite silently stays in rollback mode, which is fine.
    conn.execute("PRAGMA journal_mode = WAL")
    conn.execute("PRAGMA synchronous = NORMAL")
    _migrate(conn)
    _check_columns(conn)


def _check_columns(conn: sqlite3.Connection) -> None:
    columns = {row[1] for row in conn.execute("PRAGMA table_info(embeddings)")}
    if not _REQUIRED_COLUMNS <= columns:
        raise _Unusable("not a notegraph cache: its embeddings table has other columns")


def _migrate(conn: sqlite3.Connection) -> None:
    if conn.execute("PRAGMA user_version").fetchone()[0] >= SCHEMA_VERSION:
        return
    conn.execute("BEGIN IMMEDIATE")
    try:
        # Read again under the lock: another process may have migrated in the meantime.
        version = conn.execute("PRAGMA user_version").fetchone()[0]
        for number in range(version + 1, SCHEMA_VERSION + 1):
            MIGRATIONS[number - 1](conn)
            conn.execute(f"PRAGMA user_version = {number}")
    except BaseException:
        conn.execute("ROLLBACK")
        raise
    conn.execute("COMMIT")


def _tables(conn: sqlite3.Connection) -> set[str]:
    rows = conn.execute("SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'")
    return {name for (name,) in rows}
