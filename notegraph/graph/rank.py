"""The related-notes ranking shared by the site, `related`, `export`, `suggest` and `eval`, with its evidence.

Default ranking (one default for every collection, chosen with `notegraph eval` on the development
collections; see README "Related-note quality"): a weighted sum of
  - cosine of the note embeddings (mean of chunk vectors),
  - TF-IDF cosine of title + text (lexical evidence the small embedding model misses: names, jargon),
  - graph evidence when the collection has links: the candidate links to this note (weighted by how
    often links are returned in this collection), notes that link to both (co-cited), targets both
    link to (co-citing), what the most similar notes link to,
  - the hierarchy: a folder note ("a/b/b.md", "a/index.md") and the notes of its folder, Dendron's
    "a.b" and "a.b.c" (parent and child), each direction weighted by how often it is linked in this
    collection (folder notes that list their notes, notes that never link back up),
  - what the note's best first-pass candidates link to (a second pass over the fused score),
  - minus a penalty when the two notes' groups (first folder or Dendron name part) rarely link to each
    other in this collection (papers that never link to essays, say).
Scores are computed for a block of rows at a time (dense block x n), so memory stays bounded. The
dot products are taken in fixed point (graph.similarity.fixed) and ties at a cut go to the lower
column, so a row's scores and candidates do not depend on the rows computed with it: graph.rankstate,
which scores again only the rows an edit can change, relies on that.
"""

from __future__ import annotations

import hashlib
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import networkx as nx
import numpy as np
import scipy.sparse as sp

from notegraph.graph import rankstate
from notegraph.graph.edges import Edges
from notegraph.graph.lexical import Lexical, top_terms
from notegraph.graph.similarity import fixed, fixed_dot, fixed_rows, select_top
from notegraph.model import Collection, Related
from notegraph.parallel import fork_map, one_blas_thread, shard, workers_for

POOL = 50  # candidates kept per note and kind
GROUP_PRIOR_LINKS = 10.0  # pseudo-links that pull a group pair's measured lift towards 1
HIERARCHY_PRIOR_PAIRS = 10.0  # pseudo-pairs that pull a hierarchy direction's link rate towards both directions'
SEEDS = 5  # first-pass candidates whose links are second-order evidence
NEIGHBOURS = 10  # nearest notes (by cosine) whose links are evidence
RARE_LIFT = 0.25  # group pairs linked at under a quarter of the expected rate are penalised
BLOCK = 512
PARALLEL_MIN = 2000  # notes below which scoring row blocks in forked workers costs more than it saves
_LINKED, _SOURCE, _SIMILAR = 1, 2, 4  # how two notes are joined in the graph (see Ranker._relations)


@dataclass(frozen=True)
class Weights:
    cosine: float = 1.0
    lexical: float = 2.0
    reciprocal: float = 0.8  # times the collection's reciprocity: P(a links to b | b links to a)
    cocited: float = 0.25
    cociting: float = 0.15
    cap: float = 3.0  # graph counts saturate here
    path: float = 0.0  # shared folders / dotted hierarchy (Dendron) ancestors
    neighbour_links: float = 0.75  # what the most similar notes link to
    popularity: float = 0.15  # prior: notes that many notes link to
    hierarchy: float = 0.6  # parent or child (a folder note and its folder's notes, Dendron's a.b and a.b.c),
    # times how often that direction is linked over how often either is: 2 if only parents link children
    rare_groups: float = 0.6  # penalty (x log of the shortfall) when the two notes' groups rarely link
    bm25: float = 0.0  # BM25 of the note's 40 most distinctive terms, row-max scaled (a baseline in eval)
    # what the note's SEEDS best candidates by the score above link to, weighted by that score (a second
    # pass over the others; a Weights of one signal, like eval's baselines, zeroes it with the rest)
    second_order: float = 0.5


DEFAULT_WEIGHTS = Weights()


class Signals:
    """Per-collection matrices from which any block of fused scores is computed."""

    def __init__(
        self,
        ids: Sequence[str],
        vectors: np.ndarray,
        texts: Sequence[str],
        edges: Sequence[tuple[str, str]],
        *,
        counts: Callable[[Sequence[str]], tuple[list[str], sp.csr_matrix]] | None = None,
    ) -> None:
        """``counts``: the texts' ``lexical.term_counts`` (made from ``lexical.tokens`` of each, unless
        given: a ``TermCounts`` keeps them between builds)."""
        self.ids = list(ids)
        self.index = {note_id: i for i, note_id in enumerate(self.ids)}
        self.vectors = np.ascontiguousarray(vectors, dtype=np.float32)
        # the cosines of the ranking are taken in fixed point, exact whatever rows a block holds (see
        # graph.similarity.fixed): a row's scores are the same when an edit scores it alone
        self.fixed_vectors, self.scale = fixed_rows(self.vectors)
        self.lexical = Lexical(texts, counts=counts)
        n = len(self.ids)
        pairs = sorted({(self.index[a], self.index[b]) for a, b in edges if a in self.index and b in self.index and a != b})
        rows = [p[0] for p in pairs]
        cols = [p[1] for p in pairs]
        self.links = sp.csr_matrix((np.ones(len(pairs), dtype=np.float32), (rows, cols)), shape=(n, n))
        self.links_t = self.links.T.tocsr()
        self.paths, self.path_sizes = _path_matrix(self.ids)
        self.hierarchy = _hierarchy_matrix(self.ids)
        # the hierarchy by direction (row parent -> column child, and back) and its pairs that are linked
        depth = np.array([len(hierarchy_key(note_id)) for note_id in self.ids], dtype=np.int64)
        pairs_h = self.hierarchy.tocoo()
        down = depth[pairs_h.col] > depth[pairs_h.row]
        self.hierarchy_dirs = tuple(
            sp.csr_matrix((pairs_h.data[keep], (pairs_h.row[keep], pairs_h.col[keep])), shape=(n, n)) for keep in (down, ~down)
        )
        self.group, self.groups = _groups(self.ids)
        # links between groups, and each group's share of the notes
        self.group_links = sp.csr_matrix(self.groups.T @ self.links @ self.groups)
        self.group_share = np.bincount(self.group, minlength=self.groups.shape[1]).astype(np.float32) / max(n, 1)
        self.indegree = np.asarray(self.links.sum(axis=0)).ravel().astype(np.float32)
        self.outdegree = np.asarray(self.links.sum(axis=1)).ravel().astype(np.float32)
        # out-links of each note that the target returns
        self.returned = np.asarray(self.links.multiply(self.links_t).sum(axis=1)).ravel().astype(np.float32)

    def block(
        self,
        rows: slice | np.ndarray,
        weights: Weights,
        *,
        hide_out_links: bool = False,
        query_vectors: np.ndarray | None = None,
        query_lexical: sp.csr_matrix | None = None,
        record: dict[str, np.ndarray] | None = None,
    ) -> np.ndarray:
        """Fused scores of rows x all notes.

        For `eval`, ``hide_out_links`` drops the rows' own outgoing links and ``query_*`` replace the
        rows' vectors and TF-IDF rows by those of their text with the link text removed. ``record``
        receives each row's nearest notes and first-pass candidates, with their cosines and scores
        (what ``columns`` needs to score other columns of the row without the whole row)."""
        q = fixed(query_vectors, self.scale) if query_vectors is not None else self.fixed_vectors[rows]
        cos = fixed_dot(q, self.fixed_vectors, self.scale)
        # One dense accumulator; sparse evidence is added where it is non-zero, never densified, so a
        # block costs one or two (block x n) arrays however many signals there are.
        scores = cos * np.float32(weights.cosine)
        lex = query_lexical if query_lexical is not None else self.lexical.tfidf[rows]
        if weights.lexical:
            dense, rare = self.lexical.cosine(lex)
            dense *= np.float32(weights.lexical)
            scores += dense
            del dense
            _add(scores, rare, weights.lexical)
        if weights.bm25:
            bm = np.asarray((top_terms(lex, 40) @ self.lexical.bm25_docs.T).todense(), dtype=np.float32)
            scores += weights.bm25 * bm / np.maximum(bm.max(axis=1, keepdims=True), 1e-6)
        cap = weights.cap
        if weights.reciprocal:
            # the candidate links to the note: worth as much as links are returned in this collection
            back = sp.csr_matrix(self.links_t[rows].multiply(self.reciprocity(rows, hide_out_links)))
            _add(scores, back, weights.reciprocal)
        if weights.cocited:
            # notes that link to both the row note and the candidate
            _add(scores, self.links_t[rows] @ self.links, weights.cocited / cap, cap=cap)
        if weights.cociting and not hide_out_links:
            _add(scores, self.links[rows] @ self.links_t, weights.cociting / cap, cap=cap)
        if weights.neighbour_links:
            _add(scores, self._neighbour_links(cos, rows, hide_out_links, record=record), weights.neighbour_links)
        del cos
        if weights.popularity:
            # a prior over candidates: one row vector, corrected where the rows' own hidden links count
            norm = max(float(np.log1p(self.indegree.max(initial=0.0))), 1.0)
            scores += (weights.popularity / norm) * np.log1p(self.indegree)
            if hide_out_links:
                own = sp.csr_matrix(self.links[rows]).tocoo()
                drop = np.log1p(self.indegree[own.col] - own.data) - np.log1p(self.indegree[own.col])
                scores[own.row, own.col] += (weights.popularity / norm) * drop
        if weights.path:
            scores += weights.path * self.path_block(rows)
        if weights.hierarchy:
            for pairs, factor in zip(self.hierarchy_dirs, self.hierarchy_factors(rows, hide_out_links), strict=True):
                _add(scores, sp.csr_matrix(pairs[rows].multiply(factor)), weights.hierarchy)
        if weights.rare_groups:
            scores -= weights.rare_groups * self.rare_groups(rows, hide_out_links)
        if weights.second_order:
            _add(scores, self._second_order(scores, rows, record=record), weights.second_order)
        return scores

    def hierarchy_factors(self, rows: slice | np.ndarray, hide_out_links: bool) -> tuple[np.ndarray, np.ndarray]:
        """How often a parent links to its child, and a child to its parent, over how often either does
        (columns, one value per row; 1 and 1 when the hierarchy has no links). Each direction's rate is
        pulled towards the pooled rate by ``HIERARCHY_PRIOR_PAIRS`` pairs; with ``hide_out_links`` the
        rows' own links and pairs are left out, so a hidden link never vouches for its direction."""
        n_rows = len(self.outdegree[rows])
        counts = []
        for pairs in self.hierarchy_dirs:
            linked = pairs.multiply(self.links)
            total_linked, total_pairs = np.full(n_rows, float(linked.sum())), np.full(n_rows, float(pairs.sum()))
            if hide_out_links:
                total_linked -= np.asarray(linked[rows].sum(axis=1)).ravel()
                total_pairs -= np.asarray(pairs[rows].sum(axis=1)).ravel()
            counts.append((total_linked, total_pairs))
        pooled_linked = counts[0][0] + counts[1][0]
        pooled = pooled_linked / np.maximum(counts[0][1] + counts[1][1], 1.0)
        factors = []
        for linked_n, pairs_n in counts:
            rate = (linked_n + HIERARCHY_PRIOR_PAIRS * pooled) / (pairs_n + HIERARCHY_PRIOR_PAIRS)
            factor = np.where(pooled_linked > 0, rate / np.maximum(pooled, 1e-9), 1.0)
            factors.append(factor[:, None].astype(np.float32))
        return factors[0], factors[1]

    def _second_order(self, scores: np.ndarray, rows: slice | np.ndarray, record: dict[str, np.ndarray] | None = None) -> sp.csr_matrix:
        """What the rows' ``SEEDS`` best candidates so far link to, weighted by their (positive) scores.
        The candidates are other notes, so a row's own links (hidden in eval) never enter."""
        n = scores.shape[1]
        own = np.arange(n)[rows] if isinstance(rows, slice) else np.asarray(rows)
        kk = min(SEEDS, n - 1)
        if kk <= 0 or self.links.nnz == 0:
            return sp.csr_matrix((len(own), n), dtype=np.float32)
        here = np.arange(len(own))
        kept = scores[here, own].copy()
        scores[here, own] = -np.inf  # a note is not its own candidate (restored below)
        top, top_scores = select_top(scores, kk)
        scores[here, own] = kept
        if record is not None:
            record["seed_idx"], record["seed_scores"] = top, top_scores
        weights = _shares(top_scores)
        mix = sp.csr_matrix((weights.ravel(), (np.repeat(here, kk), top.ravel())), shape=(len(own), n))
        return sp.csr_matrix(mix @ self.links)

    def rare_groups(self, rows: slice | np.ndarray, hide_out_links: bool) -> np.ndarray:
        """How far below expectation the row note's group links to each note's group (0 when not far).

        The lift of a pair of groups is the share of the row group's links that go to the other group
        over that group's share of the notes, smoothed towards 1 by ``GROUP_PRIOR_LINKS`` links. Only a
        lift under ``RARE_LIFT`` counts, as log(lift / RARE_LIFT): a collection whose papers never link
        to its essays says so, while ordinary variation between folders is left to the other evidence.
        With ``hide_out_links`` the rows' own links are not counted."""
        counts = self.group_links[self.group[rows]].toarray()
        if hide_out_links:
            counts -= (self.links[rows] @ self.groups).toarray()
        share = np.maximum(self.group_share, 1e-6)
        lift = (counts + GROUP_PRIOR_LINKS * share) / ((counts.sum(axis=1, keepdims=True) + GROUP_PRIOR_LINKS) * share)
        shortfall = np.maximum(np.log(RARE_LIFT) - np.log(lift), 0.0).astype(np.float32)
        return shortfall[:, self.group]

    def reciprocity(self, rows: slice | np.ndarray, hide_out_links: bool) -> np.ndarray:
        """How often a link is returned in this collection, P(a links to b | b links to a), one value per
        row (a column). Estimated on the visible links: with ``hide_out_links`` the rows' own links and
        the returns they make are left out, so a hidden link never vouches for itself."""
        links, returned = float(self.outdegree.sum()), float(self.returned.sum())
        n_rows = len(self.outdegree[rows])
        if hide_out_links:
            own_links = self.outdegree[rows]
            own_returned = self.returned[rows]
            rate = (returned - 2 * own_returned) / np.maximum(links - own_links, 1.0)
        else:
            rate = np.full(n_rows, returned / max(links, 1.0))
        return np.clip(rate, 0.0, 1.0)[:, None].astype(np.float32)

    def _neighbour_links(
        self, cos: np.ndarray, rows: slice | np.ndarray, hide_out_links: bool, k: int = NEIGHBOURS, record: dict[str, np.ndarray] | None = None
    ) -> sp.csr_matrix:
        """Collaborative evidence: what the row note's nearest notes link to, weighted by their cosine."""
        n = cos.shape[1]
        kk = min(k, n - 1)
        own = np.arange(n)[rows] if isinstance(rows, slice) else np.asarray(rows)
        if kk <= 0 or self.links.nnz == 0:
            return sp.csr_matrix((len(own), n), dtype=np.float32)
        here = np.arange(len(own))
        kept = cos[here, own].copy()
        cos[here, own] = -np.inf  # a note is not its own neighbour (restored below: cos is the caller's)
        top, top_cos = select_top(cos, kk)  # in a fixed order: the sums below add them in it
        cos[here, own] = kept
        if record is not None:
            record["nbr_idx"], record["nbr_cos"] = top, top_cos
        mix = sp.csr_matrix((_shares(top_cos).ravel(), (np.repeat(here, kk), top.ravel())), shape=(len(own), n))
        return sp.csr_matrix(mix @ self.links)

    def path_block(self, rows: slice | np.ndarray) -> np.ndarray:
        shared = (self.paths[rows] @ self.paths.T).toarray()
        sizes = self.path_sizes
        return shared / np.maximum(np.maximum.outer(sizes[rows], sizes), 1.0)

    # -- scoring only the columns an edit changed (see graph.rankstate) ---------------------------------

    def columns(self, cols: np.ndarray, weights: Weights, record: dict[str, np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
        """The first-pass and fused scores of every row for the notes ``cols`` (all notes x cols), as
        ``block`` computes them (up to float rounding: the terms are added in another order), given
        each row's nearest notes and first-pass candidates as ``block`` recorded them. Only for weights
        ``columns_supported`` allows, and without eval's hidden links."""
        cols = np.asarray(cols, dtype=np.int64)
        scores = fixed_dot(self.fixed_vectors, self.fixed_vectors[cols], self.scale) * np.float32(weights.cosine)
        if weights.lexical:
            scores += np.float32(weights.lexical) * self.lexical.columns(cols)
        every = np.zeros(1, dtype=np.int64)  # collection-wide factors: the same for every row
        if weights.reciprocal:
            scores += np.float32(weights.reciprocal) * self.reciprocity(every, False)[0, 0] * self.links_t[:, cols].toarray()
        cap = weights.cap
        if weights.cocited:
            scores += np.float32(weights.cocited / cap) * np.minimum((self.links_t @ self.links[:, cols]).toarray(), cap)
        if weights.cociting:
            scores += np.float32(weights.cociting / cap) * np.minimum((self.links @ self.links_t[:, cols]).toarray(), cap)
        linked = self.links[:, cols].toarray()  # linked[j, c]: note j links to column c
        if weights.neighbour_links and record["nbr_idx"].shape[1]:
            scores += np.float32(weights.neighbour_links) * _mixed(record["nbr_idx"], record["nbr_cos"], linked)
        if weights.popularity:
            norm = max(float(np.log1p(self.indegree.max(initial=0.0))), 1.0)
            scores += (weights.popularity / norm) * np.log1p(self.indegree[cols])
        if weights.hierarchy:
            for pairs, factor in zip(self.hierarchy_dirs, self.hierarchy_factors(every, False), strict=True):
                scores += np.float32(weights.hierarchy) * factor[0, 0] * pairs[:, cols].toarray()
        if weights.rare_groups:
            scores -= np.float32(weights.rare_groups) * self._group_shortfall()[np.ix_(self.group, self.group[cols])]
        first = scores.copy()
        if weights.second_order and record["seed_idx"].shape[1]:
            scores += np.float32(weights.second_order) * _mixed(record["seed_idx"], record["seed_scores"], linked)
        return first, scores

    def _group_shortfall(self) -> np.ndarray:
        """``rare_groups`` for every pair of groups (row group x column group), no links hidden."""
        counts = self.group_links.toarray()
        share = np.maximum(self.group_share, 1e-6)
        lift = (counts + GROUP_PRIOR_LINKS * share) / ((counts.sum(axis=1, keepdims=True) + GROUP_PRIOR_LINKS) * share)
        return np.maximum(np.log(RARE_LIFT) - np.log(lift), 0.0).astype(np.float32)

    @staticmethod
    def columns_supported(weights: Weights) -> bool:
        return not weights.bm25 and not weights.path

    def collection_key(self, weights: Weights, kinds: Sequence[str]) -> bytes:
        """What every row's scores are computed from besides the row itself: the notes and their kinds,
        the weights, the links and the lexical split (any change of these and every row is scored)."""
        from notegraph.version import code_version

        h = hashlib.blake2b(digest_size=16)
        for part in (code_version(), repr(weights), repr((self.scale, self.lexical.split_scale())), "\0".join(self.ids), "\0".join(kinds)):
            h.update(part.encode() + b"\1")
        h.update("\0".join(self.lexical.common_terms()).encode() + b"\1")
        for array in (self.links.indptr, self.links.indices):
            h.update(np.ascontiguousarray(array, dtype=np.int64).tobytes() + b"\1")
        return h.digest()

    def row_keys(self) -> np.ndarray:
        """One digest per row of what is its own: its vector and its TF-IDF row (terms and weights).
        A row whose digest is unchanged scores every unchanged column as before."""
        terms = self.lexical.terms
        tfidf = self.lexical.tfidf
        out = np.zeros((len(self.ids), 16), dtype=np.uint8)
        for row in range(len(self.ids)):
            start, stop = tfidf.indptr[row], tfidf.indptr[row + 1]
            h = hashlib.blake2b(self.fixed_vectors[row].tobytes(), digest_size=16)
            h.update("\0".join([terms[i] for i in tfidf.indices[start:stop]]).encode())
            h.update(tfidf.data[start:stop].tobytes())
            out[row] = np.frombuffer(h.digest(), dtype=np.uint8)
        return out


def _shares(values: np.ndarray) -> np.ndarray:
    """Each row's values, negatives as 0, as shares of the row's total: how much each of a row's nearest
    notes or seeds weighs in what they link to."""
    weights = np.clip(values, 0.0, None)
    weights /= np.maximum(weights.sum(axis=1, keepdims=True), 1e-6)
    return weights


def _mixed(idx: np.ndarray, values: np.ndarray, linked: np.ndarray) -> np.ndarray:
    """For each row: its notes ``idx`` weighted by their ``_shares`` of ``values``, times what those
    notes link to among the columns of ``linked`` (notes x columns)."""
    return np.einsum("rk,rkc->rc", _shares(values), linked[idx])


class Ranker:
    """Ranks notes for a note with the default fused score; tables are computed once per kind."""

    def __init__(
        self,
        collection: Collection,
        embeddings: Any,
        graph: nx.MultiDiGraph,
        weights: Weights = DEFAULT_WEIGHTS,
        *,
        precompute: bool = True,
        counts: Callable[[Sequence[str]], tuple[list[str], sp.csr_matrix]] | None = None,
        state: Path | None = None,
        edges: Edges | None = None,
    ) -> None:
        """``counts``: the ranking texts' term counts (see ``Signals``); ``state``: where the ranking
        tables are kept between builds (graph.rankstate); ``edges``: the graph's, when they have been
        read (see graph.edges; else they are read here)."""
        self.state = state
        self.rows_scored = 0  # rows of the tables scored in this build (the others were kept)
        self.precompute = precompute
        self.collection = collection
        self.embeddings = embeddings
        self.graph = graph
        self.weights = weights
        notes = collection.notes
        self.ids: list[str] = list(embeddings.ids)
        self.index = {note_id: i for i, note_id in enumerate(self.ids)}
        self._edges = edges if edges is not None else Edges.of(graph, self.ids)
        links = self._edges.pairs(("link", "source"))
        texts = [ranking_text(notes[i]) for i in self.ids]
        # notes with nothing but a title (an empty file): listed, but never offered on their title alone
        self._empty = frozenset(i for i in self.ids if not (notes[i].text.strip() or notes[i].lede or notes[i].claim))
        self.signals = Signals(self.ids, embeddings.vectors, texts, links, counts=counts)
        self._tables: dict[str | None, tuple[np.ndarray, np.ndarray, list[str]]] = {}
        pairs = self.signals.hierarchy.tocoo()
        self._hierarchy_pairs = set(zip(pairs.row.tolist(), pairs.col.tolist(), strict=True))
        down, up = self.signals.hierarchy_factors(np.zeros(1, dtype=np.int64), False) if self.ids else (np.ones((1, 1)),) * 2
        self._hierarchy_linked = (float(down[0, 0]) > 0, float(up[0, 0]) > 0)  # (parent -> child, child -> parent)
        self._seeds: dict[str, list[str]] = {}
        self._seed_counts: tuple[str | None, dict[str, int]] = (None, {})
        self._excerpts: dict[tuple[str, int], str] = {}
        self._out: dict[str, frozenset[str]] = {}
        self._in: dict[str, frozenset[str]] = {}
        self._pairs: dict[tuple[str, str], int] | None = None
        # a note's related, paper and concept lists share many items: each is explained once
        self._explained: dict[tuple[str, str, float | None, tuple[str, ...]], Related] = {}

    def prepare(self) -> None:
        """Compute the ranking tables the site uses now, rather than on the first question."""
        if self.precompute:
            self._table(None)

    def prepare_explanations(self) -> None:
        """Compute what every explanation looks up now, rather than in each forked worker that explains
        (an edit explains a few notes' items, in this process: then it is made when first asked for)."""
        self._relations()

    SITE_KINDS: tuple[str | None, ...] = (None, "paper", "concept")  # the lists the site's related sections cut

    def site_tables(self) -> list[tuple[np.ndarray, np.ndarray]]:
        """Each of ``SITE_KINDS``'s tables: every note's candidates (note indices in ``ids``, one row per
        note of ``ids``) and scores. All the related lists of the site are cut from these."""
        return [(table[0], table[1]) for table in map(self._table, self.SITE_KINDS)]

    def global_key(self) -> bytes:
        """What the explanations take from the whole collection besides the two notes (the weights, and
        which hierarchy directions this collection links), for keys of kept results."""
        return repr((self.weights, self._hierarchy_linked)).encode()

    def _table(self, kind: str | None) -> tuple[np.ndarray, np.ndarray, list[str]]:
        if kind not in self._tables:
            # one pass over the row blocks serves every kind the pages ask for (all, papers, concepts)
            kinds = [k for k in dict.fromkeys([kind, *self.SITE_KINDS]) if k not in self._tables]
            lexical = self.signals.lexical
            lexical.prepare()  # its split is made here, once, not in every forked worker
            self._tables.update(self._compute_tables(kinds))
            lexical.release()  # the tables are all the pages need
        return self._tables[kind]

    def _compute_tables(self, kinds: list[str | None]) -> dict[str | None, tuple[np.ndarray, np.ndarray, list[str]]]:
        notes = self.collection.notes
        n = len(self.ids)
        plans = []
        for kind in kinds:
            cols = np.array([i for i, note_id in enumerate(self.ids) if kind is None or notes[note_id].kind == kind], dtype=np.int64)
            col_of = np.full(n, -1, dtype=np.int64)
            col_of[cols] = np.arange(len(cols))
            plans.append((cols, min(POOL, len(cols)), col_of))

        # the last build's tables, when it kept them: only the rows an edit can change are scored again
        # (graph.rankstate); the others are bit for bit what scoring them would give
        kept_path = self.state if self.state is not None and kinds == list(self.SITE_KINDS) else None
        key, row_keys, previous = b"", np.zeros((n, 16), dtype=np.uint8), None
        if kept_path is not None:
            key = self.signals.collection_key(self.weights, [notes[note_id].kind for note_id in self.ids])
            row_keys = self.signals.row_keys()
            previous = rankstate.load(kept_path, key, n, len(kinds))
        todo = None
        if previous is not None:
            todo = rankstate.touched(previous, row_keys, [cols for cols, _kk, _col_of in plans], self.signals, self.weights)
        if previous is not None and todo is not None:
            tables = [(idx.copy(), scores.copy()) for idx, scores in previous.tables]
            aux = {name: a.copy() for name, a in previous.aux.items()}
            groups: list[slice | np.ndarray] = [todo[start : start + BLOCK] for start in range(0, len(todo), BLOCK)]
        else:
            tables = [(np.zeros((n, kk), dtype=np.int64), np.zeros((n, kk), dtype=np.float32)) for _cols, kk, _col_of in plans]
            aux = {}
            groups = [slice(start, min(start + BLOCK, n)) for start in range(0, n, BLOCK)]
        self.rows_scored = sum(len(np.arange(n)[group]) for group in groups)

        # row groups are independent: on several cores they are scored in forked workers, and each
        # row's candidates are the same however the rows are grouped
        shards = shard(list(range(len(groups))), workers_for(self.rows_scored, PARALLEL_MIN))

        def score_groups(which: list[int]) -> list[tuple[int, list[tuple[np.ndarray, np.ndarray]], dict[str, np.ndarray]]]:
            with one_blas_thread(len(shards) > 1):  # the workers take every core
                return [(i, *self._group_tops(groups[i], plans)) for i in which]

        for part in fork_map(score_groups, shards):
            for i, tops, record in part:
                rows = groups[i]
                for (idx, scores), (group_idx, group_scores) in zip(tables, tops, strict=True):
                    idx[rows], scores[rows] = group_idx, group_scores
                count = len(np.arange(n)[rows])
                for name in rankstate.AUX:
                    found = record.get(name, rankstate.no_aux(name, count))
                    if name not in aux:
                        aux[name] = np.zeros((n, found.shape[1]), dtype=found.dtype)
                    aux[name][rows] = found
        if kept_path is not None and self.rows_scored:  # else the kept file holds these tables (or no notes)
            rankstate.save(kept_path, rankstate.RankState(key, row_keys, tables, aux))
        return {kind: (idx, scores, self.ids) for kind, (idx, scores) in zip(kinds, tables, strict=True)}

    def _group_tops(
        self, rows: slice | np.ndarray, plans: list[tuple[np.ndarray, int, np.ndarray]]
    ) -> tuple[list[tuple[np.ndarray, np.ndarray]], dict[str, np.ndarray]]:
        """Each row's best ``POOL`` candidates of each kind (as note indices), and what ``block``
        recorded of the rows, for ``rows``."""
        n = len(self.ids)
        record: dict[str, np.ndarray] = {}
        full = self.signals.block(rows, self.weights, record=record)
        own_rows = np.arange(n)[rows]
        tops = []
        for cols, kk, col_of in plans:
            if not kk:
                tops.append((np.zeros((len(own_rows), 0), dtype=np.int64), np.zeros((len(own_rows), 0), dtype=np.float32)))
                continue
            block = full if len(cols) == n else full[:, cols]
            own = col_of[own_rows]  # a note is never related to itself
            block[np.flatnonzero(own >= 0), own[own >= 0]] = -np.inf
            local, top_scores = select_top(block, kk)
            tops.append((cols[local], top_scores))
        return tops, record

    def _row(self, row: int, kind: str | None) -> tuple[np.ndarray, np.ndarray]:
        """One note's candidates, scored on demand (a query, not a build)."""
        notes = self.collection.notes
        scores = self.signals.block(np.array([row]), self.weights)[0]
        scores[row] = -np.inf
        if kind is not None:
            mask = np.array([notes[note_id].kind != kind for note_id in self.ids])
            scores[mask] = -np.inf
        order = np.lexsort((np.arange(len(scores)), -scores))[:POOL]
        return order, scores[order]

    def related(self, note_id: str, k: int, *, kind: str | None = None, min_score: float | None = None) -> tuple[Related, ...]:
        row = self.index.get(note_id)
        if row is None:
            return ()
        if self.precompute:
            idx, scores, ids = self._table(kind)
            candidates, candidate_scores = idx[row], scores[row]
        else:
            candidates, candidate_scores = self._row(row, kind)
            ids = self.ids
        out: list[Related] = []
        for col, score in zip(candidates, candidate_scores, strict=True):
            if not np.isfinite(score) or score <= 0.0:
                continue
            if ids[int(col)] in self._empty and not self._linked(note_id, ids[int(col)]):
                continue
            if min_score is not None and self.cosine(note_id, ids[int(col)]) < min_score:
                continue
            out.append(self.explain(note_id, ids[int(col)], score=float(score)))
            if len(out) >= k:
                break
        return tuple(out)

    def cosine(self, a: str, b: str) -> float:
        ia, ib = self.index.get(a), self.index.get(b)
        if ia is None or ib is None:
            return 0.0
        return float(self.signals.vectors[ia] @ self.signals.vectors[ib])

    def explain(self, note_id: str, other: str, *, score: float | None = None, why: tuple[str, ...] = ()) -> Related:
        """Evidence a reader can check: graph relations, shared sources, cosine, best-matching passages."""
        key = (note_id, other, score, why)
        found = self._explained.get(key)
        if found is None:
            found = self._explained[key] = self._explain(note_id, other, score, why)
        return found

    def _explain(self, note_id: str, other: str, score: float | None, why: tuple[str, ...]) -> Related:
        reasons = list(why)
        relation = self._relations().get((note_id, other) if note_id <= other else (other, note_id), 0)
        for bit, label in ((_LINKED, "link"), (_SOURCE, "cited source"), (_SIMILAR, "similar")):
            if relation & bit and label not in reasons:
                reasons.append(label)
        shared = self._shared(note_id, other, out=True)
        if shared:
            reasons.append(f"both cite {shared} note{'s' if shared > 1 else ''}")
        cociting = self._shared(note_id, other, out=False)
        if cociting:
            reasons.append(f"cited together by {cociting} note{'s' if cociting > 1 else ''}")
        ia, ib = self.index.get(note_id), self.index.get(other)
        if ia is not None and ib is not None and (ia, ib) in self._hierarchy_pairs:
            parent = len(hierarchy_key(other)) < len(hierarchy_key(note_id))
            if self._hierarchy_linked[1 if parent else 0]:  # a direction this collection never links is no evidence
                reasons.append("parent in the hierarchy" if parent else "child in the hierarchy")
        if self.weights.second_order:
            citing = self._seed_links(note_id).get(other, 0)
            if citing:
                reasons.append(f"linked from {citing} of its top related notes")
        cos = self.cosine(note_id, other)
        reasons.append(f"cosine {cos:.3f}")
        own, theirs = self.passages(note_id, other)
        # evidence strings ("cosine 0.734", "both cite 2 notes") repeat across hundreds of thousands of
        # items: interned, they are one copy each
        why_ = tuple(sys.intern(reason) for reason in reasons)
        return Related(id=other, score=round(cos if score is None else score, 4), why=why_, passage=theirs, own_passage=own)

    def _linked(self, a: str, b: str) -> bool:
        """Whether a link or a cited source joins the two notes, in either direction."""
        return bool(self._relations().get((a, b) if a <= b else (b, a), 0) & (_LINKED | _SOURCE))

    def _relations(self) -> dict[tuple[str, str], int]:
        """Which explicit and similar edges join each pair of notes (in either direction), as bits keyed
        by the pair in sorted order: every explanation looks its pair up, so it is built once."""
        if self._pairs is None:
            pairs: dict[tuple[str, str], int] = {}
            bits = {"link": _LINKED, "source": _SOURCE, "similar": _SIMILAR}
            for u, v, kind in self._edges.triples():
                bit = bits.get(kind, 0)
                if bit:
                    pair = (u, v) if u <= v else (v, u)
                    pairs[pair] = pairs.get(pair, 0) | bit
            self._pairs = pairs
        return self._pairs

    def _top(self, note_id: str) -> list[str]:
        """The note's ``SEEDS`` best related notes, computed once per note (second-order evidence)."""
        found = self._seeds.get(note_id)
        if found is None:
            row = self.index[note_id]
            candidates = self._table(None)[0][row] if self.precompute else self._row(row, None)[0]
            found = self._seeds[note_id] = [self.ids[int(col)] for col in candidates[:SEEDS]]
        return found

    def _seed_links(self, note_id: str) -> dict[str, int]:
        """How many of the note's ``SEEDS`` best related notes link to each note (a seed's link to
        itself aside). A note's items are explained together, so only the last note's counts are kept."""
        if self._seed_counts[0] != note_id:
            found: dict[str, int] = {}
            for seed in self._top(note_id):
                for target in self._neighbours(seed, out=True):
                    if target != seed:
                        found[target] = found.get(target, 0) + 1
            self._seed_counts = (note_id, found)
        return self._seed_counts[1]

    def _neighbours(self, note_id: str, out: bool) -> frozenset[str]:
        """A note's cited (out) or citing (in) notes over explicit edges, computed once per note."""
        cache = self._out if out else self._in
        found = cache.get(note_id)
        if found is None:
            g = self.graph
            if note_id not in g:
                found = frozenset()
            elif out:
                found = frozenset(t for _, t, d in g.out_edges(note_id, data=True) if d["kind"] != "similar")
            else:
                found = frozenset(s for s, _, d in g.in_edges(note_id, data=True) if d["kind"] != "similar")
            cache[note_id] = found
        return found

    def _shared(self, a: str, b: str, *, out: bool) -> int:
        """How many notes both cite (out) or both are cited by (in), the two themselves aside."""
        common = self._neighbours(a, out) & self._neighbours(b, out)
        return len(common) - (a in common) - (b in common) if common else 0

    def passages(self, a: str, b: str) -> tuple[str, str]:
        chunks = self.embeddings.chunks
        vecs = self.embeddings.chunk_vectors
        if a not in vecs or b not in vecs or len(vecs[a]) == 0 or len(vecs[b]) == 0:
            return "", ""
        sims = vecs[a] @ vecs[b].T
        i, j = divmod(int(np.argmax(sims)), sims.shape[1])
        return self._excerpt(chunks, a, i), self._excerpt(chunks, b, j)

    def _excerpt(self, chunks: Any, note_id: str, i: int) -> str:
        """A chunk's excerpt, cut once however many pairs it is the best passage of."""
        found = self._excerpts.get((note_id, i))
        if found is None:
            found = self._excerpts[(note_id, i)] = excerpt(chunks[note_id][i])
        return found


def _add(scores: np.ndarray, evidence: Any, weight: float, *, cap: float | None = None) -> None:
    """scores += weight * evidence (capped at ``cap`` first). Sparse evidence is added where it is
    non-zero; evidence that is mostly non-zero (a sparse product over many shared terms or links) is
    densified, which is then faster than scattering."""
    if evidence.nnz > scores.size // 8:
        dense = evidence.toarray()
        if cap is not None:
            np.minimum(dense, cap, out=dense)
        scores += np.float32(weight) * dense
        return
    coo = sp.coo_matrix(evidence)
    coo.sum_duplicates()
    data = coo.data.astype(np.float32, copy=False)
    if cap is not None:
        data = np.minimum(data, cap)
    scores[coo.row, coo.col] += np.float32(weight) * data


def _path_matrix(ids: Sequence[str]) -> tuple[sp.csr_matrix, np.ndarray]:
    """Each note as the set of its hierarchy ancestors plus itself: folders and Dendron's dotted names."""
    vocab: dict[str, int] = {}
    rows: list[int] = []
    cols: list[int] = []
    for row, note_id in enumerate(ids):
        parts = [p for p in note_id.replace(".", "/").split("/") if p]
        for depth in range(1, len(parts) + 1):
            rows.append(row)
            cols.append(vocab.setdefault("/".join(parts[:depth]).lower(), len(vocab)))
    matrix = sp.csr_matrix((np.ones(len(rows), dtype=np.float32), (rows, cols)), shape=(len(ids), max(len(vocab), 1)))
    matrix.sum_duplicates()
    matrix.data[:] = 1.0
    return matrix, np.asarray(matrix.sum(axis=1)).ravel().astype(np.float32)


_INDEX_NAMES = frozenset({"index", "readme", "_index", "home"})


def hierarchy_key(note_id: str) -> tuple[str, ...]:
    """Where a note sits in its hierarchy: folders and Dendron's dotted names, a folder note ("a/b/b",
    "a/b/index", "a/readme") standing for its folder."""
    parts = [p.lower() for p in note_id.replace(".", "/").split("/") if p]
    if parts and parts[-1] in _INDEX_NAMES:
        return tuple(parts[:-1])
    if len(parts) >= 2 and parts[-1] == parts[-2]:
        return tuple(parts[:-1])
    return tuple(parts)


def _groups(ids: Sequence[str]) -> tuple[np.ndarray, sp.csr_matrix]:
    """Each note's group, its first folder or Dendron name part ("" at the top), as indices and one-hot."""
    tops = [note_id.replace(".", "/").split("/")[0].lower() if ("/" in note_id or "." in note_id) else "" for note_id in ids]
    names = {name: i for i, name in enumerate(sorted(set(tops)))}
    group = np.array([names[top] for top in tops], dtype=np.int64)
    onehot = sp.csr_matrix((np.ones(len(ids), dtype=np.float32), (np.arange(len(ids)), group)), shape=(len(ids), max(len(names), 1)))
    return group, onehot


def _hierarchy_matrix(ids: Sequence[str]) -> sp.csr_matrix:
    """Symmetric parent-child pairs: each note and the note(s) of its nearest ancestor that is a note."""
    keys = [hierarchy_key(note_id) for note_id in ids]
    by_key: dict[tuple[str, ...], list[int]] = {}
    for row, key in enumerate(keys):
        by_key.setdefault(key, []).append(row)
    rows: list[int] = []
    cols: list[int] = []
    for row, key in enumerate(keys):
        for depth in range(len(key) - 1, -1, -1):
            parents = by_key.get(key[:depth])
            if parents:
                for parent in parents:
                    rows += [row, parent]
                    cols += [parent, row]
                break
    matrix = sp.csr_matrix((np.ones(len(rows), dtype=np.float32), (rows, cols)), shape=(len(ids), len(ids)))
    matrix.sum_duplicates()
    matrix.data[:] = 1.0
    return matrix


def ranking_text(note: Any) -> str:
    """The text lexical evidence is computed on: title (twice: it is the note's name), claim, text."""
    return " ".join([note.title, note.title, note.claim or "", note.text])


def excerpt(text: str, limit: int = 240) -> str:
    """A passage as related items show it: a chunk's text, whitespace folded, cut at a word."""
    text = " ".join(text.split())
    return text if len(text) <= limit else text[:limit].rsplit(" ", 1)[0] + "…"
