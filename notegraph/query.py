"""Read-only questions over a built graph: find a note, related notes (by note or free text), export."""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Callable, Mapping, Sequence
from contextlib import closing
from pathlib import Path
from typing import Any

import networkx as nx
import numpy as np

from notegraph.graph.similarity import top_k_cross
from notegraph.model import Collection, GraphResult, Note
from notegraph.resolve import NameIndex, _key, with_titles

JSON_VERSION = 1


def find_note(collection: Collection, query: str) -> Note | None:
    """A note by id, path, file name, title or alias (case-insensitive); None when nothing or several match."""
    notes = collection.notes
    q = query.strip()
    for candidate in (q, q.removesuffix(".md")):
        if candidate in notes:
            return notes[candidate]
    index = NameIndex.build(notes.values())
    lower = q.removesuffix(".md").lower()
    if lower in index.ids:
        return notes[index.ids[lower]]
    for table in (index.by_stem, index.by_title, index.by_alias, index.by_suffix):
        found = sorted(set(table.get(_key(q) if table is not index.by_suffix else lower, [])))
        if len(found) == 1:
            return notes[found[0]]
    return None


def related_to_note(
    graph: GraphResult, note_id: str, k: int, kind: str | None = None, names: Mapping[str, Mapping[str, str]] | None = None
) -> list[dict[str, Any]]:
    """``names``: each note's links by their titles (Collection.display_names), for the passages."""
    ranker = graph.ranker
    items = ranker.related(note_id, k, kind=kind)
    nodes = graph.graph.nodes
    names = names or {}
    return [
        _item(nodes[item.id], rank, item.id, item.score, list(item.why), with_titles(item.passage, names.get(item.id, {})))
        for rank, item in enumerate(items, start=1)
    ]


def related_to_text(
    graph: GraphResult,
    embeddings: Any,
    text: str,
    k: int,
    kind: str | None,
    encode: Callable[[list[str]], np.ndarray],
    names: Mapping[str, Mapping[str, str]] | None = None,
) -> list[dict[str, Any]]:
    """Free text: embed it with the collection's model and rank notes by cosine."""
    vector = encode([text])
    nodes = graph.graph.nodes
    hits = _text_hits(vector, embeddings.vectors, [nodes[i]["kind"] for i in embeddings.ids], k, kind)
    out = []
    for rank, (row, score) in enumerate(hits, start=1):
        note_id = embeddings.ids[row]
        passage = _best_passage(embeddings.chunk_vectors.get(note_id), embeddings.chunks.get(note_id, []), vector)
        passage = with_titles(passage, (names or {}).get(note_id, {}))
        out.append(_item(nodes[note_id], rank, note_id, score, ["similar text"], passage))
    return out


def _text_hits(vector: np.ndarray, vectors: np.ndarray, kinds: Sequence[str], k: int, kind: str | None) -> list[tuple[int, float]]:
    """(row, cosine) of the k notes nearest to ``vector``, best first, among notes of ``kind``."""
    cols = [i for i, note_kind in enumerate(kinds) if kind is None or note_kind == kind]
    if not cols:
        return []
    idx, scores = top_k_cross(vector, vectors[cols], k)
    return [(cols[int(col)], round(float(score), 4)) for col, score in zip(idx[0], scores[0], strict=True)]


def _best_passage(chunk_vectors: np.ndarray | None, chunks: Sequence[str], vector: np.ndarray) -> str:
    if chunk_vectors is None or not len(chunk_vectors) or len(chunks) != len(chunk_vectors):
        return ""
    best = int(np.argmax(chunk_vectors @ vector[0]))
    return " ".join(chunks[best].split())[:240]


def _item(node: Mapping[str, Any], rank: int, note_id: str, score: float, why: list[str], passage: str) -> dict[str, Any]:
    return {
        "rank": rank,
        "id": note_id,
        "title": node["title"],
        "kind": node["kind"],
        "path": node["path"],
        "score": score,
        "why": why,
        "passage": passage,
    }


# --- the query index -------------------------------------------------------------------------------
# `notegraph related` answered from the last build instead of re-ranking the collection: a build
# stores each note's ranked lists (with their evidence), vectors and chunks in one SQLite file, valid
# while the notes' files (size + mtime) and the settings/code key are those it was built from.

INDEX_VERSION = "4"


def write_index(
    path: Path,
    key: str,
    stamps: Mapping[str, Sequence[int]],
    notes: Mapping[str, Note],
    graph: GraphResult,
    embeddings: Any,
    related_k: int,
    fingerprint: str,
    names: Mapping[str, Mapping[str, str]] | None = None,
) -> None:
    """Write the query index. It holds what the build ranked anyway: each note's related list
    (``related_k`` items) and related papers, its chunks and vectors. ``fingerprint``: the build's
    (the settings and the notes' contents, see pipeline.build_fingerprint), for ``restamp``.

    Each row records what it was made from (the note's facts key, see graph.memo, and its title, kind,
    path and aliases). When the last build's index holds the same notes in the same order, only the
    rows made from something else are written again, in one transaction: after one edit in 5,000 notes
    that is a few hundred rows, not 5,000 (0.2 s). Otherwise it is written whole, into a new file
    renamed over the old one. ``names``: each note's links by the titles they stand for
    (Collection.display_names), so that chunks and passages read as the pages do."""
    import sqlite3

    from notegraph.graph.build import RELATED_PAPERS

    lists = {"": related_k, "paper": RELATED_PAPERS}
    vectors = np.ascontiguousarray(embeddings.vectors, dtype="<f4")
    meta = {"version": INDEX_VERSION, "key": key, "stamps": json.dumps(stamps, sort_keys=True), "lists": json.dumps(lists), "fingerprint": fingerprint}
    meta["dim"] = str(vectors.shape[1] if vectors.ndim == 2 else 0)
    meta["vectors"] = hashlib.blake2b(vectors.tobytes(), digest_size=16).hexdigest()
    names = names or {}
    made = {note_id: _made_from(notes[note_id], graph.keys.get(note_id)) for note_id in embeddings.ids}
    rows = _IndexRows(notes, graph, embeddings, names)
    if path.is_file() and _update_index(path, meta, made, rows, vectors):
        return
    tmp = path.with_name(path.name + ".tmp")
    tmp.unlink(missing_ok=True)
    path.parent.mkdir(parents=True, exist_ok=True)
    conn = sqlite3.connect(tmp)
    try:
        with conn:
            conn.execute("CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT)")
            conn.execute("CREATE TABLE matrix (name TEXT PRIMARY KEY, data BLOB)")
            conn.execute(
                "CREATE TABLE notes (row INTEGER PRIMARY KEY, id TEXT UNIQUE, title TEXT, kind TEXT, path TEXT,"
                " aliases TEXT, related TEXT, chunks TEXT, vectors BLOB, made BLOB)"
            )
            # a passage is stored once however many lists show it
            conn.execute("CREATE TABLE passages (id INTEGER PRIMARY KEY, text TEXT UNIQUE)")
            passages: dict[str, int] = {}
            conn.executemany("INSERT INTO meta VALUES (?, ?)", sorted(meta.items()))
            conn.execute("INSERT INTO matrix VALUES ('vectors', ?)", (vectors.tobytes(),))
            # one row at a time into SQLite: held together, they were 60 MB at 20,000 notes
            conn.executemany(
                "INSERT INTO notes VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                ((row, *rows.row(note_id, lambda text: passages.setdefault(text, len(passages))), made[note_id]) for row, note_id in enumerate(embeddings.ids)),
            )
            conn.executemany("INSERT INTO passages VALUES (?, ?)", [(i, text) for text, i in passages.items()])
    finally:
        conn.close()
    os.replace(tmp, path)


def _made_from(note: Note, facts_key: bytes | None) -> bytes | None:
    """What a note's index row is made from: its facts key (which covers its chunks, vectors and ranked
    lists with their evidence and passages, and the titles their links are read by: graph.memo) and the
    note's fields the row holds; None without a key."""
    if facts_key is None:
        return None
    import orjson

    own = orjson.dumps([note.title, note.kind, note.path, list(note.aliases)])
    return hashlib.blake2b(facts_key + own, digest_size=16).digest()


class _IndexRows:
    """A note's row of the query index, its passages numbered by ``passage_id``."""

    def __init__(self, notes: Mapping[str, Note], graph: GraphResult, embeddings: Any, names: Mapping[str, Mapping[str, str]]) -> None:
        self.notes, self.graph, self.embeddings, self.names = notes, graph, embeddings, names

    def row(self, note_id: str, passage_id: Callable[[str], int]) -> tuple[Any, ...]:
        import orjson  # the rows are the collection's text again: ~5x faster than json.dumps

        note = self.notes[note_id]
        facts = self.graph.facts.get(note_id)
        ranked = {"": facts.related, "paper": facts.related_papers} if facts else {}
        names = self.names
        related = {
            kind: [[r.id, r.score, list(r.why), passage_id(with_titles(r.passage, names.get(r.id, {})))] for r in items]
            for kind, items in ranked.items()
        }
        own = names.get(note_id, {})
        # half precision is plenty for picking a note's best passage for a text query
        chunk_vectors = np.ascontiguousarray(self.embeddings.chunk_vectors.get(note_id, np.zeros((0, 0))), dtype="<f2")
        return (
            note_id,
            note.title,
            note.kind,
            note.path,
            orjson.dumps(list(note.aliases)).decode(),
            orjson.dumps(related).decode(),
            orjson.dumps([with_titles(chunk, own) for chunk in self.embeddings.chunks.get(note_id, [])]).decode(),
            chunk_vectors.tobytes(),
        )


def _connect(path: Path, mode: str) -> Any:
    """The index at ``path``, opened read-only (``ro``) or for update (``rw``), never created: a file
    deleted since it was seen raises sqlite3.Error rather than becoming an empty database. By URI, with
    the path percent-encoded (``file:`` + the raw path reads a folder named ``a%20b`` or ``a?b`` as
    another path)."""
    import sqlite3

    return sqlite3.connect(f"{path.absolute().as_uri()}?mode={mode}", uri=True, timeout=30)


def _update_index(path: Path, meta: Mapping[str, str], made: Mapping[str, bytes | None], rows: _IndexRows, vectors: np.ndarray) -> bool:
    """Bring the last build's index up to date in place, if it holds the same notes in the same order
    and lists; False when it must be written whole. One transaction: if it fails, the index keeps the
    last build's key and stamps, which no longer match, and is not used."""
    import sqlite3

    try:
        conn = _connect(path, "rw")
    except sqlite3.Error:
        return False
    try:
        old = dict(conn.execute("SELECT key, value FROM meta"))
        if any(old.get(name) != meta[name] for name in ("version", "lists", "dim")):
            return False
        stored = conn.execute("SELECT id, made FROM notes ORDER BY row").fetchall()
        if [note_id for note_id, _ in stored] != list(made):
            return False
        with conn:
            passages: dict[str, int] = {}

            def passage_id(text: str) -> int:
                found = passages.get(text)
                if found is None:
                    conn.execute("INSERT OR IGNORE INTO passages (text) VALUES (?)", (text,))
                    found = passages[text] = conn.execute("SELECT id FROM passages WHERE text = ?", (text,)).fetchone()[0]
                return found

            for row, (note_id, was) in enumerate(stored):
                if was is None or was != made[note_id]:
                    values = rows.row(note_id, passage_id)[1:]
                    conn.execute(
                        "UPDATE notes SET title = ?, kind = ?, path = ?, aliases = ?, related = ?, chunks = ?, vectors = ?, made = ? WHERE row = ?",
                        (*values, made[note_id], row),
                    )
            if old.get("vectors") != meta["vectors"]:
                conn.execute("UPDATE matrix SET data = ? WHERE name = 'vectors'", (vectors.tobytes(),))
            conn.executemany("INSERT OR REPLACE INTO meta VALUES (?, ?)", sorted(meta.items()))
        return True
    except (sqlite3.Error, ValueError, TypeError):
        return False
    finally:
        conn.close()


def restamp(path: Path, key: str, fingerprint: str, stamps: Mapping[str, Sequence[int]]) -> bool:
    """Record ``stamps`` as the notes' in the index at ``path`` if it was written with ``key`` by the
    build with ``fingerprint``: the notes' files were saved again (a new mtime) with the contents it
    was made from, so its answers stand. False when it is not that build's."""
    import sqlite3

    if not fingerprint:
        return False
    try:
        with closing(_connect(path, "rw")) as conn, conn:
            meta = dict(conn.execute("SELECT key, value FROM meta"))
            if meta.get("version") != INDEX_VERSION or meta.get("key") != key or meta.get("fingerprint") != fingerprint:
                return False
            conn.execute("UPDATE meta SET value = ? WHERE key = 'stamps'", (json.dumps(stamps, sort_keys=True),))
        return True
    except sqlite3.Error:
        return False


class QueryIndex:
    """The last build's answers, for `notegraph related`; see write_index."""

    def __init__(self, conn: Any, lists: dict[str, int], dim: int) -> None:
        self.conn = conn
        self.lists = lists
        self.dim = dim
        self._meta: dict[str, dict[str, Any]] = {}

    @classmethod
    def open(cls, path: Path, key: str, stamps: Mapping[str, Sequence[int]]) -> QueryIndex | None:
        """The index at ``path`` if it was built with ``key`` from files with exactly these stamps;
        None when it is missing, damaged, from another version or stale."""
        import sqlite3

        try:
            conn = _connect(path, "ro")
            meta = dict(conn.execute("SELECT key, value FROM meta"))
            if meta.get("version") != INDEX_VERSION or meta.get("key") != key or json.loads(meta["stamps"]) != {k: list(v) for k, v in stamps.items()}:
                conn.close()
                return None
            return cls(conn, json.loads(meta["lists"]), int(meta["dim"]))
        except (sqlite3.Error, ValueError, KeyError, TypeError):
            return None

    def close(self) -> None:
        self.conn.close()

    def notes(self) -> dict[str, Note]:
        """Every note, with only what finding one by name needs (id, path, title, kind, aliases)."""
        out = {}
        for note_id, title, kind, path, aliases in self.conn.execute("SELECT id, title, kind, path, aliases FROM notes ORDER BY row"):
            self._meta[note_id] = {"title": title, "kind": kind, "path": path}
            out[note_id] = Note(id=note_id, path=path, title=title, kind=kind, aliases=tuple(json.loads(aliases)))
        return out

    def related(self, note_id: str, k: int, kind: str | None) -> list[dict[str, Any]] | None:
        """The stored list, or None when it cannot answer (a kind or a k it does not hold)."""
        key = kind or ""
        if key not in self.lists or k > self.lists[key]:
            return None
        found = self.conn.execute("SELECT related FROM notes WHERE id = ?", (note_id,)).fetchone()
        items = json.loads(found[0]).get(key, [])[:k] if found else []
        wanted = sorted({item[3] for item in items})
        marks = ",".join("?" * len(wanted))
        texts = dict(self.conn.execute(f"SELECT id, text FROM passages WHERE id IN ({marks})", wanted)) if wanted else {}
        return [
            _item(self._info(other), rank, other, score, why, texts.get(passage, ""))
            for rank, (other, score, why, passage) in enumerate(items, start=1)
        ]

    def related_to_text(self, vector: np.ndarray, k: int, kind: str | None) -> list[dict[str, Any]]:
        ids, kinds = [], []
        for note_id, note_kind in self.conn.execute("SELECT id, kind FROM notes ORDER BY row"):
            ids.append(note_id)
            kinds.append(note_kind)
        (blob,) = self.conn.execute("SELECT data FROM matrix WHERE name = 'vectors'").fetchone()
        vectors = np.frombuffer(blob, dtype="<f4").reshape(len(ids), self.dim)
        out = []
        for rank, (row, score) in enumerate(_text_hits(vector, vectors, kinds, k, kind), start=1):
            chunks, blob = self.conn.execute("SELECT chunks, vectors FROM notes WHERE row = ?", (row,)).fetchone()
            chunk_vectors = np.frombuffer(blob, dtype="<f2").astype(np.float32).reshape(-1, self.dim) if blob else None
            passage = _best_passage(chunk_vectors, json.loads(chunks), vector)
            out.append(_item(self._info(ids[row]), rank, ids[row], score, ["similar text"], passage))
        return out

    def _info(self, note_id: str) -> dict[str, Any]:
        info = self._meta.get(note_id)
        if info is None:
            title, kind, path = self.conn.execute("SELECT title, kind, path FROM notes WHERE id = ?", (note_id,)).fetchone()
            info = self._meta[note_id] = {"title": title, "kind": kind, "path": path}
        return info


def export(graph: GraphResult, fmt: str, related_k: int = 10) -> str:
    """GraphML / GEXF (for Gephi, Cytoscape) or JSON node-link data with each note's ranked related list."""
    g: nx.MultiDiGraph = graph.graph
    if fmt in ("graphml", "gexf"):
        flat = nx.MultiDiGraph()
        for node, data in sorted(g.nodes(data=True)):
            flat.add_node(node, **{k: ("; ".join(v) if isinstance(v, list) else v) for k, v in data.items()})
        for u, v, key, data in sorted(g.edges(keys=True, data=True), key=lambda e: (e[0], e[1], e[2])):
            flat.add_edge(u, v, key=key, **{k: val for k, val in data.items() if val is not None})
        lines = nx.generate_graphml(flat) if fmt == "graphml" else nx.generate_gexf(flat)
        return "\n".join(lines) + "\n"
    if fmt != "json":
        raise ValueError(f"unknown format {fmt}")
    data = nx.node_link_data(g, edges="links")
    facts = graph.facts
    for node in data["nodes"]:
        note_id = node["id"]
        items = graph.ranker.related(note_id, related_k) if graph.ranker else ()
        node["related"] = [{"id": r.id, "score": r.score, "why": list(r.why)} for r in items]
        node["cluster"] = facts[note_id].cluster if note_id in facts else -1
    data["clusters"] = [
        {"id": c.id, "label": c.label, "terms": list(c.terms), "members": list(c.members), "size_class": c.size_class}
        for c in graph.clusters
    ]
    data["model"] = graph.model_id
    data["version"] = JSON_VERSION
    return json.dumps(data, indent=1, ensure_ascii=False, sort_keys=True) + "\n"


def write_export(text: str, out: Path | None) -> None:
    from notegraph.fsutil import atomic_write_text

    if out is not None:
        atomic_write_text(out, text)
