"""Ranking tables kept between builds: an edit scores only the rows it can change, and the tables are
bit for bit those a build from nothing makes."""

from __future__ import annotations

import random
from pathlib import Path

import numpy as np
import pytest
from conftest import write
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from test_graph import vecs_for

from notegraph.config import load_settings
from notegraph.graph import rankstate
from notegraph.graph.rank import Ranker
from notegraph.graph.similarity import select_top
from notegraph.pipeline import load

WORDS = [f"{w}{i}" for w in "grounding repair dialogue scaling compute memory attention evidence".split() for i in range(25)]
KINDS = ("synthesis", "concept", "paper", "inquiry")


def make(root: Path, n: int, rng: random.Random, duplicates: int = 0, kinds: tuple[str, ...] = KINDS) -> None:
    for i in range(n):
        words = " ".join(rng.choice(WORDS) for _ in range(40))
        links = " ".join(f"[[n{rng.randrange(n)}]]" for _ in range(rng.randrange(3)))
        write(root, f"n{i}.md", f"---\ntitle: Note {i}\nkind: {kinds[i % len(kinds)]}\n---\n{words}. {links}\n")
    for i in range(duplicates):  # notes with the same text and no links: ties everywhere
        write(root, f"same{i}.md", "---\ntitle: Same\nkind: paper\n---\nrepair0 repair1 dialogue2\n")


def tables(root: Path, state: Path | None) -> tuple[Ranker, list[tuple[np.ndarray, np.ndarray]]]:
    import networkx as nx

    c = load(load_settings(root))
    graph = nx.MultiDiGraph()
    graph.add_nodes_from(sorted(c.notes))
    for link in c.resolved():
        graph.add_edge(link.source, link.target, key="link", kind="link")
    ranker = Ranker(c, vecs_for(c), graph, state=state)
    ranker.prepare()
    return ranker, [ranker._table(kind)[:2] for kind in Ranker.SITE_KINDS]


def same(a: list[tuple[np.ndarray, np.ndarray]], b: list[tuple[np.ndarray, np.ndarray]]) -> bool:
    return all(np.array_equal(x[0], y[0]) and np.array_equal(x[1], y[1]) for x, y in zip(a, b, strict=True))


def append(path: Path, rng: random.Random, own: bool = False) -> None:
    """Eight more words: any (document frequencies move, and with them the weights of those words in
    other notes), or words the note has (only its own row changes)."""
    text = path.read_text()
    pool = [w for w in WORDS if w in text.split("---")[2].split()] if own else WORDS
    path.write_text(text + " " + " ".join(rng.choice(pool) for _ in range(8)) + "\n")


def collection(tmp_path: Path, n: int, seed: int) -> tuple[Path, Path, random.Random]:
    """A collection of ``n`` notes, where its ranking state would be kept, and the random source."""
    rng = random.Random(seed)
    make(tmp_path / "notes", n, rng)
    return tmp_path / "notes", tmp_path / "rank.npz", rng


def test_one_edit_scores_few_rows_and_the_tables_equal_a_build_from_nothing(tmp_path: Path):
    root, state, rng = collection(tmp_path, 400, 1)
    first, _ = tables(root, state)
    assert first.rows_scored == 400 and state.is_file()
    unchanged, kept = tables(root, state)
    assert unchanged.rows_scored == 0 and same(kept, tables(root, None)[1])
    append(root / "n17.md", rng)
    edited, after = tables(root, state)
    assert 1 <= edited.rows_scored < 300  # the note is among half the rows' 50 best of its kind (100 notes)
    assert same(after, tables(root, None)[1])
    # a link added changes collection-wide figures: every row is scored
    (root / "n3.md").write_text((root / "n3.md").read_text() + "\n[[n5]]\n")
    linked, after = tables(root, state)
    assert linked.rows_scored == 400 and same(after, tables(root, None)[1])


@settings(max_examples=8, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(seed=st.integers(0, 2**32 - 1))
def test_kept_tables_equal_tables_from_nothing_after_text_edits(tmp_path_factory: pytest.TempPathFactory, seed: int):
    rng = random.Random(seed)
    base = tmp_path_factory.mktemp("rank")
    root = base / "notes"
    # few papers and concepts: each is among every row's 50 best of its kind, so an edit of one scores
    # every row again; the first edit is of a synthesis note, which only some rows hold
    make(root, 160, rng, duplicates=rng.randrange(4), kinds=("paper", "concept", "inquiry", *["synthesis"] * 5))
    state = base / "rank.npz"
    scored = []
    for step in range(4):
        ranker, kept = tables(root, state)
        scored.append(ranker.rows_scored)
        assert same(kept, tables(root, None)[1])
        for _ in range(rng.choice([1, 2, 9]) if step else 1):  # nine edits in 160 notes: more than the share checked row by row
            note = rng.choice([i for i in range(160) if i % 8 > 2]) if not step else rng.randrange(160)
            append(root / f"n{note}.md", rng, own=not step or rng.random() < 0.5)
    assert scored[0] == len(ranker.ids) and 0 < scored[1] < len(ranker.ids)


def test_columns_give_the_scores_of_whole_rows(tmp_path: Path):
    root, _state, _rng = collection(tmp_path, 150, 5)
    ranker, _ = tables(root, None)
    signals, weights = ranker.signals, ranker.weights
    signals.lexical.prepare()
    record: dict[str, np.ndarray] = {}
    whole = signals.block(slice(0, 150), weights, record=record)
    cols = np.array([3, 40, 41, 149])
    _first, fused = signals.columns(cols, weights, record)
    assert np.allclose(fused, whole[:, cols], atol=1e-5, rtol=0)


def test_rows_score_the_same_in_any_company(tmp_path: Path):
    """Fixed-point dot products: a row's scores do not depend on the other rows scored with it."""
    root, _state, rng = collection(tmp_path, 300, 6)
    ranker, _ = tables(root, None)
    signals = ranker.signals
    signals.lexical.prepare()
    whole = np.vstack([signals.block(slice(start, min(start + 128, 300)), ranker.weights) for start in range(0, 300, 128)])
    for size in (1, 2, 7, 77):
        rows = np.sort(np.array(rng.sample(range(300), size)))
        assert np.array_equal(signals.block(rows, ranker.weights), whole[rows])


def test_ties_at_the_cut_keep_the_lowest_columns_whatever_the_rest_of_the_row():
    scores = np.array([[5.0, 1.0, 3.0, 3.0, 3.0, 0.5, 3.0, 9.0]], dtype=np.float32)
    idx, top = select_top(scores, 3)
    assert idx.tolist() == [[7, 0, 2]] and top.tolist() == [[9.0, 5.0, 3.0]]
    shuffled = scores.copy()
    shuffled[0, 5] = 2.0  # another column outside the top moves
    assert select_top(shuffled, 3)[0].tolist() == [[7, 0, 2]]


def test_a_damaged_or_foreign_state_is_no_state(tmp_path: Path):
    root, state, _rng = collection(tmp_path, 60, 8)
    _, fresh = tables(root, state)
    state.write_bytes(b"not a zip file" * 50)
    ranker, again = tables(root, state)
    assert ranker.rows_scored == 60 and same(again, fresh)
    assert rankstate.load(state, b"another key", 60, 3) is None
    # a file of the right key whose note indices were altered by hand
    with np.load(state, allow_pickle=False) as data:
        arrays = {name: data[name] for name in data.files}
    arrays["idx0"] = arrays["idx0"] + 1000
    np.savez(state, **arrays)
    ranker, again = tables(root, state)
    assert ranker.rows_scored == 60 and same(again, fresh)


@settings(max_examples=25, deadline=None)
@given(seed=st.integers(0, 2**32 - 1), n=st.integers(2, 120), k=st.integers(1, 6))
def test_kept_near_notes_equal_near_notes_from_nothing(seed: int, n: int, k: int):
    """The "semantically near" edges: kept rows and rows computed again equal a computation from
    nothing bit for bit, whatever vectors change (duplicates make ties)."""
    import tempfile

    rng = np.random.default_rng(seed)
    vectors = rng.standard_normal((n, 8)).astype(np.float32)
    vectors[rng.integers(0, n, n // 4)] = vectors[0]  # notes with the same vector
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    ids = [f"n{i}" for i in range(n)]
    with tempfile.TemporaryDirectory() as tmp:
        state = Path(tmp) / "near.npz"
        for _step in range(4):
            kept = rankstate.similar_notes(ids, vectors, k, state)
            fresh = rankstate.similar_notes(ids, vectors, k, None)
            assert np.array_equal(kept[0], fresh[0]) and np.array_equal(kept[1].view(np.uint32), fresh[1].view(np.uint32))
            for row in rng.integers(0, n, rng.integers(1, 3)):
                if rng.random() < 0.2:  # a change below the fixed point's step: the same neighbours, other cosines
                    vectors[row] = np.nextafter(vectors[row], np.float32(2))
                    continue
                vectors[row] = vectors[rng.integers(0, n)] if rng.random() < 0.3 else rng.standard_normal(8)
                vectors[row] /= np.linalg.norm(vectors[row])


def test_one_edit_computes_few_near_rows(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    rng = np.random.default_rng(3)
    vectors = rng.standard_normal((500, 16)).astype(np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    ids = [f"n{i}" for i in range(500)]
    state = tmp_path / "near.npz"
    rankstate.similar_notes(ids, vectors, 5, state)
    computed: list[int] = []
    real = rankstate.fixed_top_k
    monkeypatch.setattr(rankstate, "fixed_top_k", lambda fv, scale, k, rows=None: computed.append(len(fv) if rows is None else len(rows)) or real(fv, scale, k, rows))
    vectors[7] = rng.standard_normal(16)
    vectors[7] /= np.linalg.norm(vectors[7])
    kept = rankstate.similar_notes(ids, vectors, 5, state)
    assert computed and computed[0] < 50
    fresh = rankstate.similar_notes(ids, vectors, 5, None)
    assert np.array_equal(kept[0], fresh[0]) and np.array_equal(kept[1], fresh[1])
