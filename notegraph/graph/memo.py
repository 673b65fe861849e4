"""Each note's facts, kept between builds under a key of everything they are computed from.

A note's facts (its related lists with their evidence, its citations, neighbours and counts) are a
function of a few inputs: the edges that touch it, its ranking rows, its cluster, the links into it,
and, for itself and for every note those name, its title, kind, lede, vectors, passages and explicit
links (and question, which the pages that list it show). The key hashes exactly those inputs (see
``FactKeys``), so a note whose key is unchanged has the facts it had: one edited note recomputes the
facts of the notes it touches, not of all of them (the other notes' ranking rows stay bit for bit the
same unless they hold the edited note, because TF-IDF counts document frequencies on a grid: see
graph.lexical).
Equal keys, equal facts: a build that uses the memo gives the same site as one without it
(tests/test_memo.py builds both after a series of edits).

Stored as JSON in SQLite, not pickle: the memo lives inside a notes folder that may come from someone
else, and loading it must never run code. A damaged memo is an empty one, never a failed build.
"""

from __future__ import annotations

import hashlib
import math
import sqlite3
import sys
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import orjson

from notegraph.graph.edges import Edges
from notegraph.graph.rank import excerpt
from notegraph.model import Citation, Neighbour, NoteFacts, Related

FORMAT = b"notegraph-facts/5"
ROW_BLOCK = 1024  # ranking rows hashed at once (memory: rows x ~4 KB)
_DIGEST = 16


def _hash(*parts: bytes | memoryview) -> bytes:
    h = hashlib.blake2b(digest_size=_DIGEST)
    for part in parts:
        h.update(len(part).to_bytes(8, "little"))
        h.update(part)
    return h.digest()


def note_digests(
    ids: Sequence[str],
    notes: Mapping[str, Any],
    embeddings: Any,
    explicit_out: Mapping[str, Sequence[str]],
    explicit_in: Mapping[str, Sequence[str]],
    names: Mapping[str, Mapping[str, str]] | None = None,
) -> dict[str, bytes]:
    """Each note's digest: what the facts of any note that names it take from it (its title, kind,
    lede, question, chunks, vectors and explicit links both ways), and what the pages and the query
    index that show them take: ``names``, the titles its links are read by in its passages and lede
    (Collection.display_names), so a renamed note rewrites the pages that quote a note linking to it.

    The vectors are named by the chunk texts they are the vectors of: under one model (named, with
    the vectors' size, in every key's salt: ``salt_of``), the embedding cache holds one vector per text
    and a note's vector is the mean of its chunks'. Hashing the vectors' bytes as well (every chunk's)
    cost 0.07 s a build at 5,000 notes and told nothing more. The chunk texts are named in turn by the
    note's chunking key, where the embedding stage gives it (``chunk_keys``): serialising the texts
    took half of this function's time."""
    chunks = embeddings.chunks
    chunk_keys: Mapping[str, str] = embeddings.chunk_keys
    digest: dict[str, bytes] = {}
    names = names or {}
    for note_id in ids:
        note = notes[note_id]
        chunk_key = chunk_keys.get(note_id)
        digest[note_id] = _hash(
            orjson.dumps(
                [
                    note.title,
                    note.kind,
                    note.lede,
                    note.question,  # not read by the facts, but by the pages that list the note (render.site)
                    list(chunks.get(note_id, ())) if chunk_key is None else chunk_key,
                    sorted(explicit_out.get(note_id, ())),
                    sorted(explicit_in.get(note_id, ())),
                    sorted(names.get(note_id, {}).items()),
                ]
            )
        )
    return digest


def salt_of(code: str, embeddings: Any, chosen: Any, ranking: bytes) -> bytes:
    """What every facts key shares: notegraph's code, the model and its vectors' size (with the chunk
    texts in the digests, they name the vectors: see ``note_digests``), the graph settings and the
    ranking's collection-wide evidence."""
    return f"{code}\n{embeddings.model_id}\n{embeddings.vectors.shape[1:]}\n{chosen}\n".encode() + ranking


class FactKeys:
    """The memo keys of one build's notes.

    ``salt`` names everything global: notegraph's code, the model, the graph settings, the ranking's
    collection-wide evidence, and the set of note ids (which decides the hierarchy and the slugs)."""

    def __init__(
        self,
        salt: bytes,
        ids: Sequence[str],
        digests: Mapping[str, bytes],
        rank_ids: Sequence[str],
        tables: Sequence[tuple[np.ndarray, np.ndarray]],
    ) -> None:
        """``digests``: ``note_digests`` of the notes of ``ids``; ``tables``: the ranking tables the facts
        cut their lists from, one row per note of ``rank_ids`` (candidates as indices into it, and their
        scores)."""
        self.salt = _hash(FORMAT, salt, "\0".join(ids).encode())
        self.ids = list(ids)
        self._index = {note_id: i for i, note_id in enumerate(self.ids)}
        self.digest = digests
        # each ranking row's hash: its candidates, their scores and their digests in every table, made in
        # blocks of rows as one byte matrix each (0.15 s of CPU at 5,000 notes, note by note)
        ranked = np.frombuffer(b"".join(self.digest[note_id] for note_id in rank_ids), dtype=np.uint8).reshape(len(rank_ids), _DIGEST)
        self.rows: list[bytes] = []
        for start in range(0, len(rank_ids), ROW_BLOCK):
            block = slice(start, start + ROW_BLOCK)
            parts = []
            for idx, scores in tables:
                idx, scores = idx[block].astype("<i8"), scores[block].astype("<f4")
                rows, k = idx.shape
                parts += [idx.view(np.uint8).reshape(rows, k * 8), scores.view(np.uint8).reshape(rows, k * 4), ranked[idx].reshape(rows, k * _DIGEST)]
            matrix = np.ascontiguousarray(np.concatenate(parts, axis=1))
            self.rows.extend(hashlib.blake2b(row, digest_size=_DIGEST).digest() for row in matrix)
        self._row_of = {note_id: i for i, note_id in enumerate(rank_ids)}
        self._shape = repr([(idx.dtype.str, idx.shape[1:], scores.dtype.str) for idx, scores in tables]).encode()

    def keys(self, edges: Edges, two_hop: Sequence[int], clusters: Sequence[tuple[int, str]], incoming: Mapping[str, Sequence[tuple[str, str]]]) -> dict[str, bytes]:
        """Every note's memo key, for all notes at once (one note at a time, through networkx's views
        and JSON, they took 0.25 s at 5,000 notes).

        ``edges``: every edge of the graph (see ``Edges``); ``two_hop`` and ``clusters`` ((id, size
        class)): one per note of ``ids``; ``incoming``: each note's links into it as (source,
        context), in the collection's order. A note's key hashes its digest; its edges, sorted, as
        fixed-width records (direction, other note, kind, score); the digests of the notes those and
        its links name, in note order; its links in; its 2-hop count and cluster; its ranking rows."""
        n = len(self.ids)
        index = self._index
        m = len(edges.sources)
        note = np.concatenate([edges.sources, edges.targets])
        record = np.zeros(2 * m, dtype=_EDGE_RECORD)
        if m:
            other = np.concatenate([edges.targets, edges.sources])
            direction = np.repeat(np.array([0, 1], dtype=np.uint8), m)
            kind = np.concatenate([edges.kinds, edges.kinds])
            order = np.lexsort((kind, other, direction, note))  # note first: (note, direction, other, kind) is unique
            note = note[order]
            record["direction"], record["other"], record["kind"] = direction[order], other[order], kind[order]
            record["score"], record["scored"] = np.concatenate([edges.scores, edges.scores])[order], np.concatenate([edges.scored, edges.scored])[order]
        edge_bytes = memoryview(record.tobytes())
        edge_bounds = _bounds(note, n, record.itemsize)
        # the notes each note names: the other ends of its edges and the sources of its links in
        sources = [index[source] for target in self.ids for source, _context in incoming.get(target, ())]
        targets = [i for i, target in enumerate(self.ids) for _ in incoming.get(target, ())]
        named = np.unique(np.concatenate([note * n + record["other"], np.array(targets, dtype=np.int64) * n + np.array(sources, dtype=np.int64)]))
        digests = np.frombuffer(b"".join(map(self.digest.__getitem__, self.ids)), dtype=np.uint8).reshape(n, _DIGEST)
        named_bytes = memoryview(digests[named % n].tobytes())
        named_bounds = _bounds(named // n, n, _DIGEST)
        common = _hash(self.salt, self._shape, "\0".join(edges.kind_names).encode())
        out: dict[str, bytes] = {}
        for i, note_id in enumerate(self.ids):
            row = self._row_of.get(note_id)
            cluster, size = clusters[i]
            out[note_id] = _hash(
                common,
                self.digest[note_id],
                edge_bytes[edge_bounds[i] : edge_bounds[i + 1]],
                named_bytes[named_bounds[i] : named_bounds[i + 1]],
                orjson.dumps(incoming.get(note_id, ())),
                f"{two_hop[i]}\0{cluster}\0{size}".encode(),
                self.rows[row] if row is not None else b"-",
            )
        return out


_EDGE_RECORD = np.dtype([("direction", "u1"), ("other", "<i8"), ("kind", "u1"), ("score", "<f8"), ("scored", "u1")])  # packed


def _bounds(owners: np.ndarray, n: int, width: int) -> list[int]:
    """Where each of ``n`` notes' records start and end in bytes, for records sorted by owner."""
    return (np.concatenate([[0], np.cumsum(np.bincount(owners, minlength=n))]) * width).tolist()


class Passages:
    """Related items' passages as references to the chunks they are cut from, and back.

    A passage is the excerpt of one of its note's chunks (``rank.excerpt``); kept as (note, chunk
    number), the memo is less than half the size: 41 against 99 MB at 5,000 notes (reading it back
    takes as long either way: building the objects is the cost).
    A passage that is no chunk's excerpt (none: ``""``) is kept as its text. Decoded passages share
    one string per chunk, as computed facts do."""

    def __init__(self, chunks: Mapping[str, Sequence[str]]) -> None:
        self.chunks = chunks
        self._numbers: dict[str, dict[str, int]] = {}
        self._texts: dict[tuple[str, int], str] = {}

    def ref(self, note_id: str, text: str) -> int | str:
        numbers = self._numbers.get(note_id)
        if numbers is None:
            numbers = self._numbers[note_id] = {}
            for i, chunk in enumerate(self.chunks.get(note_id, ())):
                numbers.setdefault(excerpt(chunk), i)
        return numbers.get(text, text)

    def text(self, note_id: str, ref: int | str) -> str:
        if isinstance(ref, str):
            return ref
        found = self._texts.get((note_id, ref))
        if found is None:
            found = self._texts[(note_id, ref)] = excerpt(self.chunks[note_id][ref])
        return found


def encode(facts: NoteFacts, passages: Passages) -> bytes | None:
    """The facts as JSON, or None when a score is not finite (JSON has no NaN: such facts are not kept)."""
    lists = (facts.related, facts.related_papers, facts.related_concepts)
    if not all(math.isfinite(item.score) for items in lists for item in items):
        return None
    if not all(n.score is None or math.isfinite(n.score) for n in facts.neighbours):
        return None
    return orjson.dumps(
        [
            facts.id,
            facts.direct,
            facts.two_hop,
            facts.cluster,
            facts.cluster_size,
            [[n.id, n.kind, n.score] for n in facts.neighbours],
            *([[r.id, r.score, r.why, passages.ref(r.id, r.passage), passages.ref(facts.id, r.own_passage)] for r in items] for items in lists),
            [[c.id, c.context] for c in facts.inquiring_lines],
            [[c.id, c.context] for c in facts.backlinks],
        ]
    )


def decode(data: bytes, passages: Passages) -> NoteFacts:
    note_id, direct, two_hop, cluster, size, neighbours, related, papers, concepts, inquiring, backlinks = orjson.loads(data)
    text = passages.text

    def ranked(items: list[list[Any]]) -> tuple[Related, ...]:
        return tuple(
            Related(other, float(score), tuple(map(sys.intern, why)), text(other, passage), text(note_id, own))
            for other, score, why, passage, own in items
        )

    return NoteFacts(
        id=note_id,
        direct=direct,
        two_hop=two_hop,
        cluster=cluster,
        cluster_size=size,
        neighbours=tuple(Neighbour(other, kind, None if score is None else float(score)) for other, kind, score in neighbours),
        related=ranked(related),
        related_papers=ranked(papers),
        related_concepts=ranked(concepts),
        inquiring_lines=tuple(Citation(other, context) for other, context in inquiring),
        backlinks=tuple(Citation(other, context) for other, context in backlinks),
    )


class FactsMemo:
    """The memo's SQLite file: one row per note id with the key its facts were computed under."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.stale: list[str] = []  # ids the last ``load`` found kept that are not in this build

    def _connect(self) -> sqlite3.Connection:
        conn = sqlite3.connect(self.path, timeout=30)
        # a rollback journal, not WAL: a build writes all its rows at once, and WAL writes them twice
        # (0.41 against 0.17 s for the 97 MB of 5,000 notes' facts)
        conn.execute("PRAGMA journal_mode=DELETE")
        conn.execute("PRAGMA synchronous=NORMAL")
        conn.execute("CREATE TABLE IF NOT EXISTS facts (id TEXT PRIMARY KEY, key BLOB NOT NULL, data BLOB NOT NULL)")
        return conn

    def exists(self) -> bool:
        return self.path.is_file()

    def load(self, keys: Mapping[str, bytes]) -> dict[str, bytes]:
        """The kept facts, still encoded, of every note whose key is unchanged; rows of other keys are
        left out (see ``KeptFacts``, which decodes them when a page or query asks for them)."""
        if not self.exists():
            return {}
        found: dict[str, bytes] = {}
        try:
            conn = sqlite3.connect(self.path, timeout=30)
            try:
                for note_id, key, data in conn.execute("SELECT id, key, data FROM facts"):
                    wanted = keys.get(note_id)
                    if wanted is None:
                        self.stale.append(note_id)
                    elif wanted == key and isinstance(data, bytes):
                        found[note_id] = data
            finally:
                conn.close()
        except (sqlite3.Error, ValueError, TypeError):
            self.stale = []
            self.reset()  # damaged: the facts are computed again, and the next build keeps them anew
            return {}
        return found

    def store(self, rows: Iterable[tuple[str, bytes, bytes]]) -> None:
        """Keep (id, key, encoded facts) rows; a note's earlier row is replaced."""
        self._write("INSERT OR REPLACE INTO facts (id, key, data) VALUES (?, ?, ?)", rows)

    def forget(self, ids: Iterable[str]) -> None:
        """Drop the rows of notes that are gone (renamed, deleted), so that the memo does not grow."""
        gone = [(note_id,) for note_id in ids]
        if gone:
            self._write("DELETE FROM facts WHERE id = ?", gone)

    def _write(self, sql: str, rows: Iterable[tuple[Any, ...]]) -> None:
        """One statement over ``rows`` in one transaction. A failed write only costs a later build
        the facts it would have kept."""
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            conn = self._connect()
            try:
                with conn:
                    conn.executemany(sql, rows)
            finally:
                conn.close()
        except (OSError, sqlite3.Error):
            pass

    def reset(self) -> None:
        for suffix in ("", "-journal", "-wal", "-shm"):
            try:
                Path(f"{self.path}{suffix}").unlink(missing_ok=True)
            except OSError:
                pass


class KeptFacts(Mapping[str, NoteFacts]):
    """Every note's facts, in note order: those computed in this build, and those kept in the memo,
    decoded only when something asks for them. After one edit the pages that are written and the
    queries that are answered read a few hundred notes' facts; decoding all of them cost 0.4 s at
    5,000 notes (JSON and objects). Kept facts that do not decode (a memo damaged inside its rows)
    are computed with ``compute``, so a bad row costs time, never a wrong page."""

    def __init__(
        self,
        ids: Sequence[str],
        computed: Mapping[str, NoteFacts],
        kept: Mapping[str, bytes],
        passages: Passages,
        compute: Callable[[str], NoteFacts],
    ) -> None:
        self._ids = [note_id for note_id in ids if note_id in computed or note_id in kept]
        self._facts = dict(computed)
        self._kept = dict(kept)
        self._passages = passages
        self._compute = compute

    def __getitem__(self, note_id: str) -> NoteFacts:
        found = self._facts.get(note_id)
        if found is None:
            data = self._kept.pop(note_id)  # KeyError: not a note of this build
            try:
                found = decode(data, self._passages)
            except (ValueError, TypeError, KeyError, IndexError):
                found = self._compute(note_id)
            self._facts[note_id] = found
        return found

    def __contains__(self, note_id: object) -> bool:
        return note_id in self._facts or note_id in self._kept

    def __iter__(self) -> Iterator[str]:
        return iter(self._ids)

    def __len__(self) -> int:
        return len(self._ids)
