"""The ranking tables kept between builds, and the rows an edit can change.

Ranking is the one part of a build that grows with the square of the notes: every note is scored
against every other (0.9 s of CPU at 5,000 notes, ~10 s at 20,000). After an edit most rows of the
tables are what they were. A row's scores are a function of its own vector and TF-IDF row, of every
other note's (its columns), of what its nearest notes and first-pass candidates link to, and of
collection-wide figures (the links, the kinds, the lexical split). With those figures unchanged, a row
that is not itself changed can differ from the last build only through a changed note's column, so
only these rows are scored again:

- the changed notes' own rows;
- rows that held a changed note among their candidates, nearest notes or first-pass seeds;
- rows where a changed note's new score, cosine or first-pass score reaches the row's last candidate,
  nearest note or seed (within ``MARGIN``: these are computed column-wise by ``Signals.columns``,
  whose sums are added in another order than ``block``'s).

Every other row's scores are bit for bit those of the last build: the dot products are exact (fixed
point, see graph.similarity.fixed), and the rest of a row's arithmetic reads only that row. The rows
scored again are scored by ``Signals.block`` like any row, so the tables equal a build's from nothing
(tests/test_memo.py checks it over random series of edits). When the collection-wide figures change
(a link added, a note added or deleted, a kind changed), or many notes changed, every row is scored.

Stored with numpy (``allow_pickle=False``), so loading it runs no code; a damaged file is no file.
"""

from __future__ import annotations

import hashlib
import zipfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from notegraph.fsutil import save_npz
from notegraph.graph.similarity import fixed_dot, fixed_rows, fixed_top_k

if TYPE_CHECKING:
    from notegraph.graph.rank import Signals, Weights

FORMAT = 1
MARGIN = 1e-3  # scores within this of a row's threshold count as reaching it (the column sums' rounding is ~1e-6)
MAX_CHANGED_SHARE = 0.05  # above this share of changed notes, every row is scored (checking would cost more)
AUX = ("nbr_idx", "nbr_cos", "seed_idx", "seed_scores")
COLUMNS_AT_ONCE = 32  # changed notes scored together (memory: notes x 10 x this)


@dataclass
class RankState:
    key: bytes  # Signals.collection_key of the build that made it
    row_keys: np.ndarray  # Signals.row_keys: n x 16
    tables: list[tuple[np.ndarray, np.ndarray]]  # per kind: candidates (n x k) and scores
    aux: dict[str, np.ndarray]  # what Signals.block recorded of every row (AUX)


def load(path: Path, key: bytes, n: int, kinds: int) -> RankState | None:
    """The kept state if it was made with ``key`` for ``n`` notes and ``kinds`` tables; None if not,
    or if it is missing or damaged."""
    data = _read_npz(path, FORMAT, key, n)
    if data is None:
        return None
    try:
        tables = [(data[f"idx{i}"].astype(np.int64), data[f"scores{i}"].astype(np.float32)) for i in range(kinds)]
        aux = {name: data[name].astype(aux_dtype(name)) for name in AUX}
    except KeyError:
        return None
    if any(len(idx) != n or idx.shape != scores.shape for idx, scores in tables) or any(len(a) != n for a in aux.values()):
        return None
    if not all(_in_range(idx, n) for idx in [*(idx for idx, _ in tables), aux["nbr_idx"], aux["seed_idx"]]):
        return None
    return RankState(key, data["row_keys"], tables, aux)


def aux_dtype(name: str) -> type[np.generic]:
    """Note indices or scores."""
    return np.int64 if name.endswith("idx") else np.float32


def no_aux(name: str, rows: int) -> np.ndarray:
    """What ``block`` records of rows when it records nothing of that name (no links, one note)."""
    return np.zeros((rows, 0), dtype=aux_dtype(name))


def _read_npz(path: Path, format_: int, key: bytes, n: int) -> dict[str, np.ndarray] | None:
    """The arrays of a kept file of this format and key, with a row key for each of ``n`` notes; None
    when it is missing, damaged or for other inputs."""
    try:
        with np.load(path, allow_pickle=False) as data:
            if int(data["format"]) != format_ or data["key"].tobytes() != key or data["row_keys"].shape != (n, 16):
                return None
            return {name: data[name] for name in data.files}
    except (OSError, ValueError, KeyError, TypeError, EOFError, zipfile.BadZipFile):
        return None


def _in_range(idx: np.ndarray, n: int) -> bool:
    """Note indices that index ``n`` notes (a file altered by hand is no file, not a crash)."""
    return not idx.size or (int(idx.min()) >= 0 and int(idx.max()) < n)


def _changed(old_keys: np.ndarray, row_keys: np.ndarray) -> np.ndarray | None:
    """The rows whose key changed (sorted), or None when so many did that every row is computed."""
    changed = np.flatnonzero((old_keys != row_keys).any(axis=1))
    return None if len(changed) > max(1, MAX_CHANGED_SHARE * len(row_keys)) else changed


def save(path: Path, state: RankState) -> None:
    arrays: dict[str, np.ndarray] = {
        "format": np.array(FORMAT),
        "key": np.frombuffer(state.key, dtype=np.uint8),
        "row_keys": state.row_keys,
    }
    for i, (idx, scores) in enumerate(state.tables):
        arrays[f"idx{i}"], arrays[f"scores{i}"] = idx.astype(np.int32), scores
    for name in AUX:
        arrays[name] = state.aux[name].astype(np.int32) if name.endswith("idx") else state.aux[name]
    save_npz(path, arrays)


def touched(previous: RankState, row_keys: np.ndarray, kind_columns: Sequence[np.ndarray], signals: Signals, weights: Weights) -> np.ndarray | None:
    """The rows to score again (sorted indices), or None when every row must be. ``kind_columns``:
    each table's columns (note indices)."""
    n = len(row_keys)
    changed = _changed(previous.row_keys, row_keys)
    if changed is None or not len(changed):
        return changed
    if not signals.columns_supported(weights):
        return None
    is_changed = np.zeros(n, dtype=bool)
    is_changed[changed] = True
    rows = is_changed.copy()
    aux = previous.aux
    for name in ("nbr_idx", "seed_idx"):
        if aux[name].shape[1]:
            rows |= is_changed[aux[name]].any(axis=1)
    for idx, _scores in previous.tables:
        if idx.shape[1]:
            rows |= is_changed[idx].any(axis=1)
    for start in range(0, len(changed), COLUMNS_AT_ONCE):
        cols = changed[start : start + COLUMNS_AT_ONCE]
        first, fused = signals.columns(cols, weights, aux)
        if aux["nbr_idx"].shape[1]:
            cos = fixed_dot(signals.fixed_vectors, signals.fixed_vectors[cols], signals.scale)
            rows |= _reaches(cos, aux["nbr_cos"].min(axis=1))
        if aux["seed_idx"].shape[1]:
            rows |= _reaches(first, aux["seed_scores"].min(axis=1))
        for (idx, scores), kind_cols in zip(previous.tables, kind_columns, strict=True):
            mine = np.isin(cols, kind_cols)
            if idx.shape[1] and mine.any():
                rows |= _reaches(fused[:, mine], scores[:, -1])
    return np.flatnonzero(rows)


def _reaches(values: np.ndarray, threshold: np.ndarray) -> np.ndarray:
    """Rows where any of ``values`` (rows x columns) may reach the row's ``threshold``."""
    return (values >= (threshold - MARGIN)[:, None]).any(axis=1) | ~np.isfinite(values).all(axis=1) | ~np.isfinite(threshold)


# -- the "semantically near" edges --------------------------------------------------------------------

NEAR_FORMAT = 2


def similar_notes(ids: Sequence[str], vectors: np.ndarray, k: int, path: Path | None) -> tuple[np.ndarray, np.ndarray]:
    """Each note's ``k`` nearest other notes, chosen by cosine in fixed point (exact: see
    graph.similarity.fixed), with their cosines in float32 (those the pages show everywhere). With
    ``path``, the last build's are kept there and only the rows an edit can change are computed again:
    the edited notes' rows, rows that held an edited note, and rows whose k-th cosine an edited note's
    new cosine reaches (computed exactly, so no margin is needed)."""
    from notegraph.version import code_version

    n = len(ids)
    x = np.ascontiguousarray(vectors, dtype=np.float32)
    fixed_vectors, scale = fixed_rows(x)
    if path is None:
        idx = fixed_top_k(fixed_vectors, scale, k)[0]
        return idx, _cosines(x, idx)
    h = hashlib.blake2b(digest_size=16)
    h.update(f"{code_version()}\0{k}\0{scale}\0{x.shape}\0".encode() + "\0".join(ids).encode())
    key = h.digest()
    # a row's key is its float32 vector (its fixed-point one is made from it and the scale, in ``key``),
    # so an unchanged row keeps its cosines too
    row_keys = np.frombuffer(b"".join(hashlib.blake2b(row.tobytes(), digest_size=16).digest() for row in x), dtype=np.uint8)
    row_keys = row_keys.reshape(n, 16)
    previous = _load_near(path, key, n)
    changed = _changed(previous[0], row_keys) if previous is not None else None
    if previous is None or changed is None:
        idx, scores = fixed_top_k(fixed_vectors, scale, k)
        cosines = _cosines(x, idx)
    else:
        _old_keys, idx, scores, cosines = previous
        if len(changed):
            is_changed = np.zeros(n, dtype=bool)
            is_changed[changed] = True
            rows = is_changed | is_changed[idx].any(axis=1)
            if idx.shape[1]:
                cos = fixed_dot(fixed_vectors, fixed_vectors[changed], scale)
                cos[changed, np.arange(len(changed))] = -np.inf  # a note is not its own neighbour
                rows |= (cos >= scores[:, -1][:, None]).any(axis=1)
            todo = np.flatnonzero(rows)
            idx, scores, cosines = idx.copy(), scores.copy(), cosines.copy()
            idx[todo], scores[todo] = fixed_top_k(fixed_vectors, scale, k, todo)
            # the other rows: neither their vectors nor their neighbours' changed
            cosines[todo] = _cosines(x, idx[todo], todo)
    if changed is None or len(changed):  # else the kept file holds exactly this
        _save_near(path, key, row_keys, idx, scores, cosines)
    return idx, cosines


def _cosines(x: np.ndarray, idx: np.ndarray, rows: np.ndarray | None = None) -> np.ndarray:
    """The float32 cosines of the rows ``rows`` of ``x`` (all, by default) with their chosen rows
    ``idx``, each a sum of its own row's products (no BLAS blocking): a row's figures do not depend on
    the rows computed with it, so the kept rows' are those computing them again would give."""
    return np.einsum("rd,rkd->rk", x if rows is None else x[rows], x[idx]).astype(np.float32)


def _load_near(path: Path, key: bytes, n: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray] | None:
    data = _read_npz(path, NEAR_FORMAT, key, n)
    if data is None or any(name not in data for name in ("idx", "scores", "cosines")):
        return None
    idx, scores, cosines = data["idx"].astype(np.int64), data["scores"].astype(np.float32), data["cosines"].astype(np.float32)
    if len(idx) != n or idx.shape != scores.shape or idx.shape != cosines.shape or not _in_range(idx, n):
        return None
    return data["row_keys"], idx, scores, cosines


def _save_near(path: Path, key: bytes, row_keys: np.ndarray, idx: np.ndarray, scores: np.ndarray, cosines: np.ndarray) -> None:
    arrays = {
        "format": np.array(NEAR_FORMAT),
        "key": np.frombuffer(key, dtype=np.uint8),
        "row_keys": row_keys,
        "idx": idx.astype(np.int32),
        "scores": scores,
        "cosines": cosines,
    }
    save_npz(path, arrays)
