"""Embedding stage: chunking, the SQLite cache (reuse, model keys, damaged files) and the real model."""

from __future__ import annotations

import dataclasses
import shutil
import sqlite3
import subprocess
import sys
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from notegraph.embed import (
    DEFAULT_MODEL_ID,
    DEFAULT_NAME,
    EmbeddingCache,
    Embeddings,
    FakeEmbedder,
    embed_notes,
    model_id_for,
    note_chunks,
    text_hash,
)
from notegraph.embed.cache import SCHEMA_VERSION
from notegraph.errors import ModelError
from notegraph.model import Note

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(autouse=True)
def _private_digest_stamps(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Keep remembered file digests out of the user's cache folder."""
    monkeypatch.setenv("NOTEGRAPH_CACHE_DIR", str(tmp_path / "user-cache"))


def long_text(topic: str, sentences: int = 40) -> str:
    return " ".join(
        f"Sentence {i} about {topic} has exactly ten words in it." for i in range(sentences)
    )


def sample_notes() -> dict[str, Note]:
    notes = [
        Note(id="a", path="a.md", title="Grounding", text="Grounding in dialogue needs repair.", lede="Grounding in dialogue needs repair."),
        Note(id="b", path="b.md", title="Scaling", text="Scaling laws relate compute and tokens.", claim="Compute is not all."),
        Note(id="long", path="long.md", title="Long note", text=long_text("attention")),
        Note(id="title-only", path="title-only.md", title="Only a title"),
    ]
    return {n.id: n for n in notes}


class Factory:
    """Hands out one FakeEmbedder and counts how often the stage asked for a model."""

    def __init__(self, dim: int = 64) -> None:
        self.embedder = FakeEmbedder(dim)
        self.model_id = self.embedder.model_id
        self.loads = 0

    def __call__(self) -> FakeEmbedder:
        self.loads += 1
        return self.embedder


def run(notes: dict[str, Note], cache_path: Path, factory: Factory | None = None) -> tuple[Embeddings, Factory, list[str]]:
    factory = factory or Factory()
    with EmbeddingCache(cache_path) as cache:
        result = embed_notes(notes, cache, factory, factory.model_id, max_words=40)
        return result, factory, list(cache.warnings)


def assert_same(a: Embeddings, b: Embeddings) -> None:
    assert a.ids == b.ids and a.chunks == b.chunks
    np.testing.assert_allclose(a.vectors, b.vectors, atol=1e-6)


# --- chunking -------------------------------------------------------------------------------------


def test_short_note_is_one_chunk_of_title_claim_lede_body() -> None:
    note = Note(id="n", path="n.md", title="Repair", claim="Repair is cheap", lede="A lede that differs.", text="Body text here.")
    assert note_chunks(note) == ["Repair. Repair is cheap. A lede that differs. Body text here."]


def test_duplicate_parts_urls_and_paths_are_dropped() -> None:
    note = Note(
        id="n",
        path="n.md",
        title="Repair",
        lede="First paragraph.",
        text="First paragraph. See https://example.org/x?y=1 and ./images/fig.png or /usr/local/data (https://a.b). Either/or stays.",
    )
    assert note_chunks(note) == ["Repair. First paragraph. See and or. Either/or stays."]


def test_long_note_is_split_into_title_prefixed_chunks() -> None:
    note = Note(id="n", path="n.md", title="Attention heads", text=long_text("heads", 60))
    chunks = note_chunks(note, max_words=50)
    assert len(chunks) > 5
    for chunk in chunks:
        assert len(chunk.split()) <= 50
        assert chunk.startswith("Attention heads. ")
        assert chunk.endswith("in it.")  # cut on a sentence boundary
    body = " ".join(c.removeprefix("Attention heads. ") for c in chunks)
    assert body == long_text("heads", 60)
    # even sizes: no runt chunk at the end
    sizes = [len(c.split()) for c in chunks]
    assert min(sizes) >= max(sizes) - 10


def test_run_on_text_without_sentences_is_still_bounded() -> None:
    note = Note(id="n", path="n.md", title="List", text=" ".join(f"w{i}" for i in range(500)))
    chunks = note_chunks(note, max_words=60)
    assert all(len(c.split()) <= 60 for c in chunks)
    assert sum(len(c.split()) - 1 for c in chunks) == 500


def test_empty_note_has_no_chunks_and_text_hash_is_exact() -> None:
    assert note_chunks(Note(id="e", path="e.md", title="")) == []
    assert text_hash("m1", "x") == text_hash("m2", "x") != text_hash("m1", "x ")


# --- stage + cache ----------------------------------------------------------------------------------


def test_second_run_embeds_nothing(tmp_path: Path) -> None:
    cache_path = tmp_path / "state" / "cache.sqlite"
    first, factory, warnings = run(sample_notes(), cache_path)
    assert warnings == [] and cache_path.exists()
    assert factory.loads == 1 and first.embedded > 0 and first.cached == 0
    assert first.ids == sorted(sample_notes())
    assert first.vectors.shape == (4, 64) and first.vectors.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(first.vectors, axis=1), 1.0, atol=1e-5)
    assert len(first.chunks["long"]) > 1 and first.chunk_vectors["long"].shape == (len(first.chunks["long"]), 64)

    second, factory2, _ = run(sample_notes(), cache_path)
    assert factory2.loads == 0 and factory2.embedder.calls == []
    assert second.embedded == 0 and second.cached == first.embedded
    assert_same(first, second)


def test_editing_one_note_reembeds_only_its_changed_chunk(tmp_path: Path) -> None:
    cache_path = tmp_path / "cache.sqlite"
    notes = sample_notes()
    first, _, _ = run(notes, cache_path)
    edited = long_text("attention").replace("Sentence 39 about attention", "Sentence 39 about recurrence")
    notes["long"] = Note(id="long", path="long.md", title="Long note", text=edited)
    second, factory, _ = run(notes, cache_path)
    assert factory.embedder.calls == [[second.chunks["long"][-1]]]
    assert second.chunks["long"][:-1] == first.chunks["long"][:-1]
    assert second.embedded == 1
    assert not np.allclose(first.vectors[first.ids.index("long")], second.vectors[second.ids.index("long")])
    for note_id in ("a", "b", "title-only"):
        np.testing.assert_array_equal(first.vectors[first.ids.index(note_id)], second.vectors[second.ids.index(note_id)])


def test_another_model_uses_other_rows(tmp_path: Path) -> None:
    cache_path = tmp_path / "cache.sqlite"
    first, _, _ = run(sample_notes(), cache_path)
    other, factory, _ = run(sample_notes(), cache_path, Factory(dim=32))
    assert factory.loads == 1 and other.embedded == first.embedded
    assert other.vectors.shape == (4, 32)
    with EmbeddingCache(cache_path) as cache:
        assert cache.count("fake/hash-64") == cache.count("fake/hash-32") == first.embedded
        assert cache.dim("fake/hash-32") == 32
        assert cache.prune("fake/hash-32", []) == first.embedded
        assert cache.count("fake/hash-64") == first.embedded


def test_identical_texts_are_encoded_once(tmp_path: Path) -> None:
    notes = {i: Note(id=i, path=f"{i}.md", title="Same", text="Same body.") for i in ("x", "y")}
    result, factory, _ = run(notes, tmp_path / "c.sqlite")
    assert factory.embedder.calls == [["Same. Same body."]]
    assert result.embedded == 1
    np.testing.assert_array_equal(result.vectors[0], result.vectors[1])


def test_title_only_and_empty_notes(tmp_path: Path) -> None:
    notes = sample_notes()
    notes["empty"] = Note(id="empty", path="empty.md", title="")
    result, factory, _ = run(notes, tmp_path / "c.sqlite")
    title_vec = factory.embedder.encode(["Only a title"])[0]
    np.testing.assert_allclose(result.vectors[result.ids.index("title-only")], title_vec, atol=1e-6)
    assert not np.isnan(result.vectors).any()
    assert not result.vectors[result.ids.index("empty")].any()
    assert result.chunks["empty"] == [] and result.chunk_vectors["empty"].shape == (0, 64)


def test_empty_collection(tmp_path: Path) -> None:
    result, factory, _ = run({}, tmp_path / "c.sqlite")
    assert factory.loads == 0 and result.vectors.shape == (0, 0) and result.ids == []
    run(sample_notes(), tmp_path / "c.sqlite")
    result, factory, _ = run({}, tmp_path / "c.sqlite")
    assert factory.loads == 0 and result.vectors.shape == (0, 64)  # dim known from the cache


def test_embedder_for_another_model_is_refused(tmp_path: Path) -> None:
    fake = FakeEmbedder(16)
    with EmbeddingCache(tmp_path / "c.sqlite") as cache, pytest.raises(ValueError, match="fake/hash-16"):
        embed_notes(sample_notes(), cache, lambda: fake, DEFAULT_MODEL_ID)


# --- damaged cache files --------------------------------------------------------------------------


def _garbage(path: Path) -> None:
    path.write_bytes(bytes(range(256)) * 40)


def _truncated(path: Path) -> None:
    _fill(path)
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])


def _torn_header(path: Path) -> None:
    _fill(path)
    path.write_bytes(path.read_bytes()[:60])


def _damaged_page(path: Path) -> None:
    _fill(path)
    data = bytearray(path.read_bytes())
    data[4096 : 4096 + 16] = b"\xff" * 16  # page 2's b-tree header: only noticed when the table is read
    path.write_bytes(bytes(data))


def _foreign(path: Path) -> None:
    with sqlite3.connect(path) as conn:
        conn.execute("CREATE TABLE users (id INTEGER PRIMARY KEY, name TEXT)")
        conn.execute("INSERT INTO users (name) VALUES ('ada')")
    conn.close()


def _foreign_same_table_name(path: Path) -> None:
    with sqlite3.connect(path) as conn:
        conn.execute("CREATE TABLE embeddings (id INTEGER PRIMARY KEY, data BLOB)")
        conn.execute("PRAGMA user_version = 1")
    conn.close()


def _newer(path: Path) -> None:
    _fill(path)
    conn = sqlite3.connect(path)
    conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 1}")
    conn.close()


def _fill(path: Path) -> None:
    """A real cache with enough rows to span many pages."""
    with EmbeddingCache(path) as cache:
        cache.put_many("fake/hash-64", {str(i): np.ones(64, np.float32) for i in range(300)})


@pytest.mark.parametrize(
    "damage", [_garbage, _truncated, _torn_header, _damaged_page, _foreign, _foreign_same_table_name, _newer]
)
def test_unusable_cache_is_moved_aside(tmp_path: Path, damage: Callable[[Path], None]) -> None:
    expected, _, _ = run(sample_notes(), tmp_path / "clean.sqlite")
    cache_path = tmp_path / "cache.sqlite"
    damage(cache_path)
    original = cache_path.read_bytes()

    result, factory, warnings = run(sample_notes(), cache_path)
    assert_same(expected, result)
    assert factory.loads == 1
    moved = tmp_path / "cache.sqlite.corrupt-1"
    assert moved.read_bytes() == original
    assert len(warnings) == 1 and str(cache_path) in warnings[0] and str(moved) in warnings[0]

    again, factory, warnings = run(sample_notes(), cache_path)  # the fresh cache works
    assert warnings == [] and factory.loads == 0
    assert_same(expected, again)


def test_second_corrupt_file_gets_the_next_number(tmp_path: Path) -> None:
    cache_path = tmp_path / "cache.sqlite"
    for n in (1, 2):
        _garbage(cache_path)
        _, _, warnings = run(sample_notes(), cache_path)
        assert (tmp_path / f"cache.sqlite.corrupt-{n}").exists() and len(warnings) == 1


def test_unwritable_cache_falls_back_to_memory(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    result, factory, warnings = run(sample_notes(), blocker / "cache.sqlite")
    assert factory.loads == 1 and result.vectors.shape == (4, 64)
    assert len(warnings) == 1 and "will not be kept" in warnings[0]


def test_schema_is_versioned(tmp_path: Path) -> None:
    path = tmp_path / "c.sqlite"
    EmbeddingCache(path).close()
    conn = sqlite3.connect(path)
    assert conn.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
    assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    columns = [row[1] for row in conn.execute("PRAGMA table_info(embeddings)")]
    conn.close()
    assert columns == ["model", "hash", "dim", "vector"]


def test_get_many_chunks_large_queries(tmp_path: Path) -> None:
    vectors = {f"h{i}": np.full(4, i, np.float32) for i in range(1234)}
    with EmbeddingCache(tmp_path / "c.sqlite") as cache:
        cache.put_many("m", vectors)
        found = cache.get_many("m", [*vectors, "missing"])
    assert len(found) == 1234 and float(found["h1233"][0]) == 1233.0


# --- model identity and imports ---------------------------------------------------------------------


def test_model_ids(tmp_path: Path) -> None:
    assert model_id_for(None) == model_id_for("all-MiniLM-L6-v2") == DEFAULT_MODEL_ID
    assert model_id_for("sentence-transformers/all-mpnet-base-v2") == "sentence-transformers/all-mpnet-base-v2"
    folder = tmp_path / "my-model"
    folder.mkdir()
    (folder / "config.json").write_text('{"hidden_size": 8}')
    (folder / "model.safetensors").write_bytes(b"weights")
    first = model_id_for(str(folder))
    assert first.startswith("path:my-model:") and model_id_for(str(folder)) == first
    (folder / "model.safetensors").write_bytes(b"retrained")
    assert model_id_for(str(folder)) != first
    with pytest.raises(ModelError, match="does not exist"):
        model_id_for(str(tmp_path / "nope"))


def test_a_backend_other_than_torch_is_cached_apart(tmp_path: Path) -> None:
    from notegraph.config import BACKEND_NAMES, load_settings
    from notegraph.embed.st import BACKENDS
    from notegraph.errors import ConfigError
    from notegraph.pipeline import model_id, settings_key

    assert tuple(BACKENDS) == BACKEND_NAMES  # the settings name the backends the loader knows
    assert model_id_for(None, "torch") == DEFAULT_MODEL_ID
    assert model_id_for(None, "openvino") == f"{DEFAULT_MODEL_ID}@openvino"
    with pytest.raises(ModelError, match="unknown embedding backend 'tensorrt'"):
        model_id_for(None, "tensorrt")
    notes = tmp_path / "notes"
    notes.mkdir()
    torch_settings = load_settings(notes)
    ov_settings = load_settings(notes, backend="openvino")
    assert model_id(ov_settings) == f"{DEFAULT_MODEL_ID}@openvino" != model_id(torch_settings)
    assert settings_key(ov_settings) != settings_key(torch_settings)
    (notes / "notegraph.toml").write_text('backend = "tensorrt"\n')
    with pytest.raises(ConfigError, match="unknown embedding backend 'tensorrt'"):
        load_settings(notes)


def _openvino_usable() -> bool:
    try:
        import optimum.intel.openvino  # noqa: F401
    except Exception:  # noqa: BLE001 - a broken install (torchvision without its operators) raises anything
        return False
    return True


@pytest.mark.slow
@pytest.mark.skipif(_openvino_usable(), reason="optimum-intel is installed here: the missing-backend error cannot be shown")
def test_a_missing_backend_names_its_install_step() -> None:
    from notegraph.embed import load_embedder

    with pytest.raises(ModelError, match=r"openvino backend is not usable here .*scripts/install.sh --openvino") as caught:
        load_embedder(DEFAULT_NAME, device="cpu", backend="openvino")
    assert "Traceback" not in str(caught.value)


@pytest.mark.slow
@pytest.mark.skipif(not _openvino_usable(), reason="the OpenVINO backend is not installed (bash scripts/install.sh --openvino)")
def test_openvino_backend_agrees_with_torch(monkeypatch: pytest.MonkeyPatch) -> None:
    import sentence_transformers

    from notegraph.embed import load_embedder
    from notegraph.embed.st import _exported_dir

    texts = ["The cat sat on the mat.", "Quarterly tax filings are due in April.", "grounding in dialogue " * 60]
    exported = _exported_dir(f"{DEFAULT_MODEL_ID}@openvino")
    assert not exported.exists()
    ov = load_embedder(DEFAULT_NAME, device="cpu", backend="openvino")
    assert ov.model_id == f"{DEFAULT_MODEL_ID}@openvino"
    vectors = ov.encode(texts)
    cosines = (vectors * load_embedder(DEFAULT_NAME, device="cpu").encode(texts)).sum(axis=1)
    assert float(cosines.min()) >= 0.999  # the bar for offering a backend
    # the export is kept, and the next load reads it instead of exporting again
    assert (exported / "openvino" / "openvino_model.xml").is_file()
    sources: list[str] = []
    real = sentence_transformers.SentenceTransformer
    monkeypatch.setattr(sentence_transformers, "SentenceTransformer", lambda source, **kw: sources.append(source) or real(source, **kw))
    again = load_embedder(DEFAULT_NAME, device="cpu", backend="openvino")
    assert sources == [str(exported)]
    np.testing.assert_allclose(again.encode(texts), vectors, atol=1e-5)


def test_importing_embed_does_not_import_torch() -> None:
    code = "import sys, notegraph.embed; print(sorted(m for m in ('torch', 'sentence_transformers', 'transformers') if m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=ROOT)
    assert out.stdout.strip() == "[]"


# --- the real bundled model -------------------------------------------------------------------------


@pytest.mark.slow
def test_real_model_offline(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("TRANSFORMERS_OFFLINE", "1")
    from notegraph.embed import load_embedder

    embedder = load_embedder(device="cpu")
    assert embedder.model_id == DEFAULT_MODEL_ID and embedder.dim == 384
    assert embedder.model.max_seq_length == 256
    assert embedder.batch_size == 16  # on CPU: as fast as 32 and lighter (see embed/st.py)
    texts = [
        "The cat sat on the mat.",
        "A kitten was sitting on the rug.",
        "Quarterly tax filings are due in April.",
    ]
    vectors = embedder.encode(texts)
    assert vectors.shape == (3, 384) and vectors.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-4)
    assert float(vectors[0] @ vectors[1]) > float(vectors[0] @ vectors[2]) + 0.2
    # length sorting inside encode must not reorder the output
    np.testing.assert_allclose(embedder.encode(texts[::-1])[::-1], vectors, atol=1e-5)
    assert embedder.encode([]).shape == (0, 384)

    # the whole stage with the real model, then a warm run that never loads it
    cache_path = tmp_path / "cache.sqlite"
    with EmbeddingCache(cache_path) as cache:
        result = embed_notes(sample_notes(), cache, lambda: embedder, DEFAULT_MODEL_ID)
    assert result.vectors.shape == (4, 384) and result.embedded > 0

    def no_model() -> FakeEmbedder:
        raise AssertionError("the model was loaded on a warm cache")

    with EmbeddingCache(cache_path) as cache:
        warm = embed_notes(sample_notes(), cache, no_model, DEFAULT_MODEL_ID)
    assert warm.embedded == 0
    np.testing.assert_allclose(warm.vectors, result.vectors, atol=1e-6)


@pytest.mark.slow
def test_tampered_bundled_model_is_refused(tmp_path: Path) -> None:
    from notegraph.embed import verify_bundled

    bundled = verify_bundled()
    copy = tmp_path / "model"
    shutil.copytree(bundled, copy)
    assert verify_bundled(copy) == copy
    weights = copy / "model.safetensors"
    with weights.open("r+b") as handle:
        handle.seek(weights.stat().st_size // 2)
        byte = handle.read(1)
        handle.seek(-1, 1)
        handle.write(bytes([byte[0] ^ 0xFF]))
    with pytest.raises(ModelError, match="integrity check"):
        verify_bundled(copy)


@pytest.mark.slow
def test_missing_hub_model_is_a_model_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    from notegraph.embed import load_embedder

    with pytest.raises(ModelError, match="no-such-org/no-such-model.*--model PATH"):
        load_embedder("no-such-org/no-such-model", device="cpu")


def test_warm_run_reads_chunks_instead_of_cutting_them(tmp_path: Path, monkeypatch) -> None:
    import notegraph.embed.stage as stage

    path = tmp_path / "cache.sqlite"
    first, _, _ = run(sample_notes(), path)
    cut: list[str] = []
    real = stage.note_chunks
    monkeypatch.setattr(stage, "note_chunks", lambda note, max_words: cut.append(note.id) or real(note, max_words))
    again, factory, _ = run(sample_notes(), path)
    assert cut == [] and factory.loads == 0
    assert_same(first, again)
    notes = sample_notes()
    notes["b"] = dataclasses.replace(notes["b"], text="Scaling laws relate compute, data and tokens.")
    edited, _, _ = run(notes, path)
    assert cut == ["b"] and edited.embedded == 1
    assert edited.chunks["b"] == real(notes["b"], 40)


# --- the model in a child process --------------------------------------------------------------------


@pytest.mark.slow
def test_isolated_embedder_gives_the_in_process_vectors() -> None:
    from notegraph.embed import load_embedder
    from notegraph.embed.isolated import IsolatedEmbedder

    texts = ["The cat sat on the mat.", "Quarterly tax filings are due in April.", "x " * 400]
    with IsolatedEmbedder(DEFAULT_NAME, device="cpu") as isolated:
        assert isolated.model_id == DEFAULT_MODEL_ID and isolated.dim == 384
        remote = isolated.encode(texts)
        assert isolated.encode([]).shape == (0, 384)
        child = isolated._child
        assert child is not None and child.poll() is None
    assert child.wait(timeout=10) == 0  # closing ends the child
    local = load_embedder(DEFAULT_NAME, device="cpu").encode(texts)
    np.testing.assert_allclose(remote, local, atol=1e-6)


@pytest.mark.slow
def test_isolated_embedder_reports_a_model_that_cannot_load(tmp_path: Path) -> None:
    from notegraph.embed.isolated import IsolatedEmbedder

    empty = tmp_path / "not-a-model"
    empty.mkdir()
    with pytest.raises(ModelError, match="sentence-transformers model") as caught:
        IsolatedEmbedder(str(empty), device="cpu")
    assert "Traceback" not in str(caught.value)


@pytest.mark.slow
def test_a_build_that_embeds_never_imports_torch(tmp_path: Path) -> None:
    notes = tmp_path / "notes"
    notes.mkdir()
    (notes / "a.md").write_text("---\ntitle: Cats\n---\nThe cat sat on the mat.\n")
    (notes / "b.md").write_text("---\ntitle: Taxes\n---\nQuarterly tax filings are due in April.\n")
    code = (
        "import sys\nfrom pathlib import Path\nfrom notegraph.config import load_settings\nfrom notegraph import pipeline\n"
        f"s = load_settings(Path({str(notes)!r}), out=Path({str(tmp_path / 'site')!r}), quiet=True)\n"
        "r = pipeline.build(s)\n"
        "print(r.embedded, sorted(m for m in ('torch', 'sentence_transformers', 'transformers') if m in sys.modules))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=ROOT, timeout=300)
    assert out.stdout.strip() == "2 []"


@pytest.mark.slow
def test_kept_embedder_loads_once_until_the_model_changes(tmp_path: Path) -> None:
    from notegraph.config import load_settings
    from notegraph.pipeline import KeptEmbedder

    kept = KeptEmbedder()
    settings = load_settings(tmp_path)
    first = kept.factory_for(settings)()
    assert kept.factory_for(settings)() is first
    fake = kept.factory_for(dataclasses.replace(settings, model="fake/hash-16"))()
    assert fake.dim == 16 and first._child is None  # the old model was closed
    kept.close()


def test_a_stopped_embedding_keeps_the_slices_it_finished(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Texts go to the model in slices, longest first, each stored as it comes back: a build stopped in
    a long cold embedding (Ctrl-C, a crash, a full disk) keeps what it encoded, and the next one
    embeds only the rest, to the same vectors."""
    import notegraph.embed.stage as stage

    monkeypatch.setattr(stage, "ENCODE_SLICE", 3)
    notes = sample_notes()
    calls: list[list[str]] = []

    class StopsOnSecondSlice(FakeEmbedder):
        def encode(self, texts: Sequence[str]) -> np.ndarray:
            calls.append(list(texts))
            if len(calls) == 2:
                raise KeyboardInterrupt
            return super().encode(texts)

    with EmbeddingCache(tmp_path / "c.sqlite") as cache, pytest.raises(KeyboardInterrupt):
        embed_notes(notes, cache, lambda: StopsOnSecondSlice(64), FakeEmbedder(64).model_id, max_words=40)
    first = calls[0]
    assert len(first) == 3 and [len(t) for t in first] == sorted((len(t) for t in first), reverse=True)
    assert all(len(t) >= len(u) for t in first for u in calls[1])  # longest first across the slices
    result, _, _ = run(notes, tmp_path / "c.sqlite")
    fresh, _, _ = run(notes, tmp_path / "fresh.sqlite")
    assert fresh.embedded > 6 and (result.cached, result.embedded) == (3, fresh.embedded - 3)  # only the rest
    assert_same(result, fresh)


@settings(max_examples=200, deadline=None)
@given(
    counts=st.lists(st.integers(0, 12), max_size=30),
    dim=st.sampled_from([3, 64, 384]),
    seed=st.integers(0, 2**32 - 1),
    zeros=st.booleans(),
)
def test_note_vectors_made_at_once_are_those_made_note_by_note(counts: list[int], dim: int, seed: int, zeros: bool):
    """Every note's vector (the normalised mean of its chunks') and chunk vectors, made for all notes
    at once, are bit for bit what each note's own mean and norm give: notes without chunks, with one,
    with many, with zero vectors and negative zeros among them."""
    from notegraph.embed.stage import _note_vectors

    rng = np.random.default_rng(seed)
    own = [rng.standard_normal(dim).astype(np.float32) for _ in range(sum(counts))]
    if zeros and own:
        own[0] = -0.0 * own[0]
        own[-1] = np.zeros(dim, dtype=np.float32)
    ids = [f"n{i:02d}" for i in range(len(counts))]
    vectors, chunk_vectors = _note_vectors(ids, counts, own, dim)
    start = 0
    for row, (note_id, count) in enumerate(zip(ids, counts, strict=True)):
        stacked = np.stack(own[start : start + count]).astype(np.float32) if count else np.zeros((0, dim), dtype=np.float32)
        start += count
        expected = np.zeros(dim, dtype=np.float32)
        if count:
            mean = stacked.mean(axis=0)
            norm = float(np.linalg.norm(mean))
            if norm > 0:
                expected = mean / norm
        assert vectors[row].tobytes() == expected.tobytes()
        assert chunk_vectors[note_id].shape == stacked.shape and chunk_vectors[note_id].tobytes() == stacked.tobytes()
