"""`notegraph build`: incremental, atomic, locked, and safe about where it writes."""

from __future__ import annotations

import errno
import json
import os
import shutil
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest
from click.testing import CliRunner
from conftest import ROOT, FakeFactory, write

from notegraph.cli import main
from notegraph.config import load_settings
from notegraph.errors import BuildError, BusyError, NotesHaveErrors
from notegraph.fsutil import build_lock
from notegraph.pipeline import build
from notegraph.query import restamp

FAKE = "fake/hash-64"


def collection(tmp_path: Path, n: int = 12) -> Path:
    root = tmp_path / "notes"
    for i in range(n):
        kind = ["synthesis", "concept", "paper", "inquiry"][i % 4]
        links = f"[[n{(i + 1) % n}]] and [[n{(i + 3) % n}]]"
        write(root, f"n{i}.md", f"---\ntitle: Note {i}\nkind: {kind}\ntopics: [T{i % 3}]\n---\nLede {i} about topic {i % 3}. Links {links}.\n")
    return root


def site_pages(out: Path) -> set[str]:
    return {str(p.relative_to(out)) for p in out.rglob("*.html")}


def test_incremental_and_deleted_pages(tmp_path: Path):
    root = collection(tmp_path)
    out = tmp_path / "site"
    factory = FakeFactory()
    settings = load_settings(root, out=out)
    settings.state_dir.mkdir(parents=True)
    retired = settings.state_dir / "terms.sqlite"  # what an earlier version kept, read by none now
    retired.write_bytes(b"kept by an earlier version")
    first = build(settings, factory=factory)
    assert first.embedded > 0 and factory.loads == 1 and first.pages_reused == 0
    assert not retired.exists()
    before = {p: (out / p).read_bytes() for p in site_pages(out)}
    second = build(load_settings(root, out=out), factory=factory)
    assert second.embedded == 0 and factory.loads == 1  # the model is not even loaded
    assert second.pages_written == 0 and second.pages_reused == first.pages_written
    assert {p: (out / p).read_bytes() for p in site_pages(out)} == before  # byte-identical
    (root / "n5.md").write_text((root / "n5.md").read_text().replace("Lede 5", "Edited lede 5"))
    third = build(load_settings(root, out=out), factory=factory)
    assert third.embedded >= 1 and third.pages_written < first.pages_written
    (root / "n7.md").unlink()
    build(load_settings(root, out=out), factory=factory)
    assert not any("n7" in p for p in site_pages(out))


def test_the_collector_makes_no_pass_over_a_build(tmp_path: Path):
    """The cyclic collector is off during a build, and what the build made is frozen out of its reach
    before it is back on (pipeline.no_gc): without that, its first pass after a build walked every
    object the build kept."""
    import gc

    settings, factory = load_settings(collection(tmp_path, n=40), out=tmp_path / "site"), FakeFactory()
    passes: list[int] = []

    def seen(phase: str, info: dict) -> None:
        if phase == "start":
            passes.append(info["generation"])

    gc.callbacks.append(seen)
    try:
        build(settings, factory=factory)
    finally:
        gc.callbacks.remove(seen)
    assert passes == [] and gc.isenabled()


def test_unchanged_build_does_no_work_and_any_change_rebuilds(tmp_path: Path, monkeypatch):
    import notegraph.pipeline as pipeline

    root = collection(tmp_path)
    out = tmp_path / "site"
    factory = FakeFactory()
    first = build(load_settings(root, out=out), factory=factory)
    real_embed, real_analyse = pipeline.embed, pipeline.analyse

    def no_analysis(*args, **kwargs):
        raise AssertionError("nothing changed: the build must not embed, rank or render")

    monkeypatch.setattr(pipeline, "embed", no_analysis)
    again = build(load_settings(root, out=out), factory=factory)
    assert (again.pages_written, again.pages_reused, again.embedded) == (0, first.pages_written, 0)

    # a note saved again unchanged (a new mtime): the same contents, nothing to do; the query index
    # takes the new stamps, so `related` still answers from it
    note = root / "n2.md"
    os.utime(note, ns=(note.stat().st_atime_ns, note.stat().st_mtime_ns + 5_000_000_000))
    touched = build(load_settings(root, out=out), factory=factory)
    assert (touched.pages_written, touched.embedded) == (0, 0)
    monkeypatch.setattr(pipeline, "analyse", no_analysis)
    took, items = pipeline.related(load_settings(root, out=out), "n2", 2, None, factory=factory)
    assert took == "note:n2" and items
    index = load_settings(root, out=out).state_dir / pipeline.QUERY_INDEX
    with sqlite3.connect(index) as conn:
        key = conn.execute("SELECT value FROM meta WHERE key = 'key'").fetchone()[0]
    assert not restamp(index, key, "another build's fingerprint", {})  # only the build that wrote it
    monkeypatch.setattr(pipeline, "analyse", real_analyse)

    # a damaged page, an edited note, a changed setting: each one is noticed
    page = out / sorted(site_pages(out))[0]
    original = page.read_bytes()
    page.write_bytes(b"vandalised")
    with pytest.raises(AssertionError, match="nothing changed"):
        build(load_settings(root, out=out), factory=factory)
    monkeypatch.setattr(pipeline, "embed", real_embed)
    repaired = build(load_settings(root, out=out), factory=factory)
    assert page.read_bytes() == original and repaired.pages_written == 1
    monkeypatch.setattr(pipeline, "embed", no_analysis)
    for change in (
        lambda: (root / "n3.md").write_text((root / "n3.md").read_text() + "\nMore.\n"),
        lambda: (root / "notegraph.toml").write_text("related_k = 3\n"),
    ):
        change()
        with pytest.raises(AssertionError, match="nothing changed"):
            build(load_settings(root, out=out), factory=factory)


def test_replaced_site_is_removed_in_the_background_and_leftovers_next_time(tmp_path: Path):
    from notegraph.fsutil import clean_stale

    root = collection(tmp_path)
    out = tmp_path / "site"
    factory = FakeFactory()
    build(load_settings(root, out=out), factory=factory)
    (root / "n1.md").write_text((root / "n1.md").read_text() + "\nEdited.\n")
    build(load_settings(root, out=out), factory=factory)
    deadline = time.monotonic() + 10
    while [p for p in tmp_path.iterdir() if ".trash-" in p.name] and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".site.")]
    left = tmp_path / ".site.trash-1-2"  # left behind long ago
    (left / "notes").mkdir(parents=True)
    # a site replaced a moment ago is left to the process removing it
    fresh = tmp_path / f".site.trash-1-{time.time_ns()}"
    (fresh / "notes").mkdir(parents=True)
    ahead = tmp_path / f".site.trash-1-{time.time_ns() + 10**18}"  # stamped before the clock was set back
    ahead.mkdir()
    clean_stale(out)
    assert not left.exists() and not ahead.exists() and fresh.exists() and site_pages(out)


def test_strict_failure_keeps_previous_site(tmp_path: Path):
    root = collection(tmp_path)
    out = tmp_path / "site"
    build(load_settings(root, out=out), factory=FakeFactory())
    before = {p: (out / p).read_bytes() for p in site_pages(out)}
    write(root, "bad.md", "---\ntitle: [broken\n---\nlinks [[nowhere]]\n")
    with pytest.raises(BuildError) as failed:
        build(load_settings(root, out=out, strict=True), factory=FakeFactory())
    assert [d.path for d in failed.value.diagnostics] == ["bad.md", "bad.md"]  # type: ignore[attr-defined]
    assert {p: (out / p).read_bytes() for p in site_pages(out)} == before
    # the command names each problem; its error only counts them
    write(root, "notegraph.toml", f'model = "{FAKE}"\n')
    result = CliRunner().invoke(main, ["build", str(root), "--out", str(out), "--strict"])
    assert result.exit_code == 1 and "Traceback" not in result.output
    assert "bad.md:2: error: invalid YAML front matter" in result.output and "bad.md:4: warning: link [[nowhere]]" in result.output, result.output
    assert "2 problem(s) in the notes (--strict)" in result.output
    assert {p: (out / p).read_bytes() for p in site_pages(out)} == before
    (root / "notegraph.toml").unlink()
    report = build(load_settings(root, out=out), factory=FakeFactory())  # without --strict it goes on
    assert any(d.code == "front-matter" for d in report.diagnostics)


def test_keep_on_errors_refuses_before_writing_and_names_the_errors(tmp_path: Path):
    """What serve asks for: a note with errors leaves the published site and the build's state as they
    were, and the errors come with the refusal; a first build (nothing published) goes on around them."""
    root = collection(tmp_path)
    out = tmp_path / "site"
    write(root, "bad.md", "---\ntitle: [broken\n---\nBad.\n")
    first = build(load_settings(root, out=out), factory=FakeFactory(), keep_on_errors=True)
    assert any(d.code == "front-matter" for d in first.diagnostics)
    (root / "bad.md").unlink()
    build(load_settings(root, out=out), factory=FakeFactory())
    before = {p: (out / p).read_bytes() for p in site_pages(out)}
    # what the stages after resolve keep (resolve's own cache may learn the broken note)
    state = {p: p.stat().st_mtime_ns for p in (root / ".notegraph").iterdir() if p.suffix in (".json", ".npz") and p.name != "resolved.json"}
    (root / "n3.md").write_text("---\ntitle: [broken\n---\nNow broken.\n")
    with pytest.raises(NotesHaveErrors) as refused:
        build(load_settings(root, out=out), factory=FakeFactory(), keep_on_errors=True)
    assert [d.path for d in refused.value.diagnostics] == ["n3.md"]  # type: ignore[attr-defined]
    assert {p: (out / p).read_bytes() for p in site_pages(out)} == before
    assert {p: p.stat().st_mtime_ns for p in state} == state
    report = build(load_settings(root, out=out), factory=FakeFactory())  # without it the build goes on
    assert any(d.code == "front-matter" for d in report.diagnostics) and report.pages_written


def test_out_folder_refused_where_it_would_destroy(tmp_path: Path):
    root = collection(tmp_path)
    for bad in (root, tmp_path, root / "sub"):
        with pytest.raises(BuildError):
            build(load_settings(root, out=bad), factory=FakeFactory())
    foreign = tmp_path / "mine"
    write(foreign, "important.txt", "do not delete")
    with pytest.raises(BuildError, match="did not write"):
        build(load_settings(root, out=foreign), factory=FakeFactory())
    assert (foreign / "important.txt").exists()
    result = CliRunner().invoke(main, ["build", str(root), "--out", str(root)])
    assert result.exit_code == 1 and "Traceback" not in result.output and "notes folder" in result.output


def test_second_build_at_once_is_refused(tmp_path: Path):
    root = collection(tmp_path)
    settings = load_settings(root, out=tmp_path / "site")
    with build_lock(settings.state_dir):
        with pytest.raises(BusyError, match="another notegraph build"):
            build(settings, factory=FakeFactory())
    build(settings, factory=FakeFactory())  # free again afterwards


def test_disk_full_during_render_keeps_previous_site(tmp_path: Path, monkeypatch):
    root = collection(tmp_path)
    out = tmp_path / "site"
    build(load_settings(root, out=out), factory=FakeFactory())
    before = {p: (out / p).read_bytes() for p in site_pages(out)}
    (root / "n1.md").write_text((root / "n1.md").read_text() + "\nMore text.\n")
    import notegraph.fsutil as fsutil

    real_replace = os.replace

    def full(src, dst, *a, **k):  # noqa: ANN001, ANN002, ANN003
        if ".building-" in str(src):
            raise OSError(errno.ENOSPC, "No space left on device")
        return real_replace(src, dst, *a, **k)

    monkeypatch.setattr(fsutil.os, "replace", full)
    monkeypatch.setattr(fsutil, "_exchange", lambda a, b: False)  # take the two-rename path
    with pytest.raises(BuildError, match="disk full"):
        build(load_settings(root, out=out), factory=FakeFactory())
    monkeypatch.setattr(fsutil.os, "replace", real_replace)
    assert {p: (out / p).read_bytes() for p in site_pages(out)} == before
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".site.")]


def test_killed_build_leaves_previous_site_and_usable_cache(tmp_path: Path):
    """Kill real `notegraph build` processes at several moments; the published site is always whole."""
    root = collection(tmp_path, n=400)
    write(root, "notegraph.toml", f'model = "{FAKE}"\n')
    out = tmp_path / "site"
    cmd = [sys.executable, "-m", "notegraph", "build", str(root), "--out", str(out), "-q"]
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    subprocess.run(cmd, check=True, env=env, capture_output=True)

    def assert_whole_site() -> None:
        manifest = json.loads((out / ".notegraph-manifest.json").read_text())["outputs"]
        assert manifest and all((out / page).is_file() for page in manifest)
        assert len(list((out / "notes").glob("*.html"))) == 400

    assert_whole_site()

    def edit_every_note(mark: str) -> None:
        for path in root.glob("n*.md"):
            path.write_text(path.read_text() + f"\nedit {mark}\n")

    # the moments are fractions of how long such a build takes here (fixed delays stopped landing
    # inside the build once builds got faster)
    edit_every_note("timed")
    start = time.perf_counter()
    subprocess.run(cmd, check=True, env=env, capture_output=True)
    whole = time.perf_counter() - start
    killed = 0
    for fraction in (0.15, 0.35, 0.6, 0.85):
        edit_every_note(str(fraction))
        proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        time.sleep(whole * fraction)
        if proc.poll() is None:
            proc.send_signal(signal.SIGKILL)
            killed += 1
        proc.wait()
        assert_whole_site()
    assert killed >= 2
    done = subprocess.run(cmd, env=env, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert site_pages(out) and not [p for p in tmp_path.iterdir() if ".building-" in p.name]
    shutil.rmtree(out)


def test_the_command_leaves_with_its_status_and_everything_written(tmp_path: Path):
    """`notegraph` ends its process without tearing its objects down (cli.entry): its output, exit
    status and files are those of an ordinary exit."""
    import sqlite3

    root = collection(tmp_path, n=30)
    write(root, "notegraph.toml", f'model = "{FAKE}"\n')
    write(root, "dangling.md", "---\ntitle: Dangling\n---\nSee [[nowhere]].\n")
    out = tmp_path / "site"
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    built = subprocess.run([sys.executable, "-m", "notegraph", "build", str(root), "--out", str(out)], env=env, capture_output=True, text=True)
    assert built.returncode == 0, built.stderr
    assert "31 notes" in built.stdout + built.stderr
    assert (out / "index.html").is_file() and json.loads((out / ".notegraph-manifest.json").read_text())["inputs"]
    with sqlite3.connect(root / ".notegraph" / "facts.sqlite") as conn:
        assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        assert conn.execute("SELECT COUNT(*) FROM facts").fetchone()[0] == 31
    strict = subprocess.run([sys.executable, "-m", "notegraph", "check", str(root), "--strict"], env=env, capture_output=True, text=True)
    assert strict.returncode == 1 and "dangling.md:4" in strict.stdout + strict.stderr and "Traceback" not in strict.stderr


@pytest.mark.parametrize(
    "files",
    [
        {},  # an empty collection
        {"only.md": "---\ntitle: Only\n---\nThe one note.\n"},  # one note
        {"a.md": "---\ntitle: Blank\n---\n", "b.md": "", "c.md": "text [[a]]\n"},  # notes with no text
    ],
)
def test_degenerate_collections_build(tmp_path: Path, files: dict[str, str]):
    root = tmp_path / "notes"
    root.mkdir()
    for name, text in files.items():
        write(root, name, text)
    out = tmp_path / "site"
    report = build(load_settings(root, out=out), factory=FakeFactory())
    assert (out / "index.html").exists() and report.notes == len(files)
    result = CliRunner().invoke(main, ["related", "anything at all", "--notes", str(root), "--model", FAKE])
    assert result.exit_code == 0, result.output


def test_missing_model_is_one_clear_line(tmp_path: Path):
    root = collection(tmp_path, n=3)
    result = CliRunner().invoke(main, ["build", str(root), "--out", str(tmp_path / "site"), "--model", str(tmp_path / "no-such-model")])
    assert result.exit_code == 1
    assert "Traceback" not in result.output and "no-such-model" in result.output


def test_no_forking_outside_the_main_thread():
    import threading

    from notegraph.parallel import cpus, workers_for

    if cpus() < 2:
        pytest.skip("one core: never forks")
    assert workers_for(10_000, 10) >= 2
    seen: list[int] = []
    other = threading.Thread(target=lambda: seen.append(workers_for(10_000, 10)))  # as serve's rebuilds run
    other.start()
    other.join()
    assert seen == [1]


def test_a_forked_call_returns_its_result_raises_its_error_and_ends_with_its_context(tmp_path: Path):
    import os

    from notegraph.parallel import cpus, fork_call

    if cpus() < 2:
        pytest.skip("one core: runs in the caller")
    with fork_call(lambda: (os.getpid(), [1, 2, 3])) as result:
        pid, value = result()
    assert pid != os.getpid() and value == [1, 2, 3]

    def fail() -> None:
        raise ValueError("bad input in the child")

    with fork_call(fail) as result, pytest.raises(ValueError, match="bad input in the child"):
        result()

    def linger() -> None:
        (tmp_path / "pid").write_text(str(os.getpid()))
        time.sleep(60)

    with fork_call(linger):  # never asked for its result
        deadline = time.monotonic() + 10
        while not (tmp_path / "pid").exists() or not (tmp_path / "pid").read_text():
            assert time.monotonic() < deadline
            time.sleep(0.01)
        child = int((tmp_path / "pid").read_text())
        assert Path(f"/proc/{child}").exists()
    assert not Path(f"/proc/{child}").exists()  # ended and reaped, not left behind
    with fork_call(lambda: os.getpid(), fork=False) as result:
        assert result() == os.getpid()


def test_blas_keeps_one_thread_beside_forked_workers_and_gets_its_threads_back():
    import threading

    import numpy  # noqa: F401 - loads BLAS
    from threadpoolctl import threadpool_info

    from notegraph.parallel import cpus, fork_call, one_blas_thread

    def blas_threads() -> list[int]:
        return [lib["num_threads"] for lib in threadpool_info() if lib["user_api"] == "blas"]

    before = blas_threads()
    if cpus() < 2 or not before or max(before) < 2:
        pytest.skip("one core, or BLAS on one thread already")
    with one_blas_thread():
        assert set(blas_threads()) == {1}
        with fork_call(blas_threads) as child:
            assert set(child()) == {1}  # a forked worker inherits the setting
    assert blas_threads() == before
    with one_blas_thread(False):
        assert blas_threads() == before
    seen: list[list[int]] = []

    def in_a_thread() -> None:  # as serve's rebuilds run: nothing is forked there
        with one_blas_thread():
            seen.append(blas_threads())

    other = threading.Thread(target=in_a_thread)
    other.start()
    other.join()
    assert seen == [before]


def test_forked_workers_return_in_shard_order_and_raise_a_failed_shard():
    import os

    from notegraph.parallel import cpus, fork_map

    if cpus() < 2:
        pytest.skip("one core: runs in the caller")
    found = fork_map(lambda piece: (os.getpid(), [x * 2 for x in piece]), [[1, 2], [3], [4, 5, 6]])
    assert [values for _pid, values in found] == [[2, 4], [6], [8, 10, 12]]
    assert len({pid for pid, _values in found} | {os.getpid()}) == 4  # a process of its own each

    def half(piece: list[int]) -> list[float]:
        if 0 in piece:
            raise ZeroDivisionError(f"shard {piece}")
        return [1 / x for x in piece]

    with pytest.raises(ZeroDivisionError, match=r"shard \[0\]"):
        fork_map(half, [[1], [0], [2]])
