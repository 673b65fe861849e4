"""notegraph serve and open: only the site's files are served, edits rebuild, open pages reload, Ctrl-C is clean."""

from __future__ import annotations

import dataclasses
import http.client
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from bs4 import BeautifulSoup
from click.testing import CliRunner
from conftest import ROOT, FakeFactory, write

from notegraph.cli import main
from notegraph.config import Settings, load_settings
from notegraph.errors import NotegraphError
from notegraph.pipeline import build
from notegraph.serve import (
    RELOAD_PATH,
    VERSION_PATH,
    LiveSite,
    inject_reload,
    note_page,
    site_file,
    site_is_stale,
)

ALPHA = "---\ntitle: Alpha\n---\nAlpha is about dialogue and [[Beta]].\n\nFirst version of the alpha body.\n"
BETA = "---\ntitle: Beta\n---\nBeta is about dialogue and repair.\n"
GAMMA = "---\ntitle: Gamma\n---\nGamma links back to [[Alpha]].\n"
BROKEN = "---\ntitle: [broken\n---\nAlpha, saved half-way through an edit.\n"


@pytest.fixture
def notes(tmp_path: Path) -> Path:
    root = tmp_path / "notes"
    write(root, "alpha.md", ALPHA)
    write(root, "beta.md", BETA)
    write(root, "gamma.md", GAMMA)
    (tmp_path / "secret.txt").write_text("outside the site", encoding="utf-8")
    return root


@pytest.fixture
def settings(notes: Path) -> Settings:
    return load_settings(notes, out=notes.parent / "site", quiet=True)


class Messages:
    """What the server printed, collected from its threads."""

    def __init__(self) -> None:
        self.lines: list[tuple[str, bool]] = []
        self._lock = threading.Lock()

    def __call__(self, message: str, err: bool) -> None:
        with self._lock:
            self.lines.append((message, err))

    def text(self) -> str:
        with self._lock:
            return "\n".join(m for m, _ in self.lines)

    def count(self, needle: str) -> int:
        with self._lock:
            return sum(needle in m for m, _ in self.lines)


@pytest.fixture
def messages() -> Messages:
    return Messages()


@pytest.fixture
def live(settings: Settings, messages: Messages) -> Iterator[LiveSite]:
    site = LiveSite(settings, port=0, factory=FakeFactory(), echo=messages, debounce_ms=400, step_ms=50)
    site.start()
    try:
        yield site
    finally:
        site.stop()


def fetch(live: LiveSite, path: str, method: str = "GET") -> tuple[int, dict[str, str], bytes]:
    """The raw path goes on the wire as written: no client-side normalisation of ``..`` or escapes."""
    conn = http.client.HTTPConnection("127.0.0.1", live.port, timeout=10)
    try:
        conn.request(method, path)
        response = conn.getresponse()
        return response.status, {k.lower(): v for k, v in response.getheaders()}, response.read()
    finally:
        conn.close()


def wait_for(condition: Callable[[], Any], what: str, timeout: float = 30.0) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(0.05)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}")


def version(live: LiveSite) -> int:
    status, headers, body = fetch(live, VERSION_PATH)
    assert status == 200 and headers["cache-control"] == "no-store"
    return int(body)


# -- serving ---------------------------------------------------------------------------------------------


def test_serves_the_site_with_the_reload_script_in_every_page(live: LiveSite) -> None:
    assert live.url == f"http://127.0.0.1:{live.port}/"
    status, headers, body = fetch(live, "/")
    assert status == 200 and headers["content-type"] == "text/html; charset=utf-8"
    assert int(headers["content-length"]) == len(body)
    soup = BeautifulSoup(body, "html.parser")
    assert soup.find("body") is not None
    scripts = soup.body.find_all("script") if soup.body else []  # type: ignore[union-attr]
    assert [s.get("src") for s in scripts][-1:] == [RELOAD_PATH]
    assert not scripts[-1].get_text().strip()  # no inline script: the pages' CSP forbids it

    status, headers, body = fetch(live, "/notes/alpha.html")
    assert status == 200 and b"First version of the alpha body." in body
    assert body.count(RELOAD_PATH.encode()) == 1
    assert headers["server-timing"] == f'ngversion;desc="{live.version}"'
    assert fetch(live, "/notes/alpha.html?x=1#top")[0] == 200

    status, headers, body = fetch(live, "/assets/site.css")
    assert status == 200 and headers["content-type"].startswith("text/css") and RELOAD_PATH.encode() not in body
    status, headers, body = fetch(live, "/assets/site.js")
    assert status == 200 and headers["content-type"].startswith("text/javascript") and headers["x-content-type-options"] == "nosniff"

    status, headers, body = fetch(live, RELOAD_PATH)
    assert status == 200 and headers["content-type"].startswith("text/javascript")
    assert VERSION_PATH.encode() in body and b"location.reload" in body
    assert version(live) >= 1

    status, headers, body = fetch(live, "/index.html", method="HEAD")
    assert status == 200 and body == b"" and int(headers["content-length"]) > 0
    assert fetch(live, "/index.html", method="POST")[0] == 501


def test_only_files_inside_the_site_are_served(live: LiveSite, tmp_path: Path) -> None:
    site = live.out
    (site / "outside.txt").symlink_to(tmp_path / "secret.txt")
    (site / "outside-dir").symlink_to(tmp_path)
    (site / "assets" / "inside.css").symlink_to(site / "assets" / "site.css")  # stays inside: allowed
    refused = [
        "/../secret.txt",
        "/notes/../../secret.txt",
        "/%2e%2e/secret.txt",
        "/%2E%2E/secret.txt",
        "/notes/%2e%2e/%2e%2e/secret.txt",
        "/..%2fsecret.txt",
        "/%2e%2e%2fsecret.txt",
        "/notes/..%5c..%5csecret.txt",
        "/%252e%252e/secret.txt",
        "//etc/passwd",
        "/%2fetc%2fpasswd",
        "/notes/alpha.html%00.txt",
        "/outside.txt",
        "/outside-dir/secret.txt",
        "/.notegraph-manifest.json",
        "/notes/",
        "/nothing.html",
    ]
    for path in refused:
        status, _, body = fetch(live, path)
        assert status == 404, path
        assert b"outside the site" not in body, path
    assert fetch(live, "/assets/inside.css")[0] == 200


def test_site_file_resolves_only_inside_the_root(tmp_path: Path) -> None:
    root = tmp_path / "site"
    write(root, "index.html", "<html></html>")
    write(root, "notes/a.html", "a")
    write(tmp_path, "secret.txt", "s")
    assert site_file(root, "/") == (root / "index.html").resolve()
    assert site_file(root, "/notes/a.html") == (root / "notes" / "a.html").resolve()
    assert site_file(root, "/notes/%61.html") == (root / "notes" / "a.html").resolve()
    for bad in ("/../secret.txt", "/%2e%2e/secret.txt", "/notes/./a.html", "/notes", "/x\\..\\secret.txt"):
        assert site_file(root, bad) is None, bad
    assert site_file(tmp_path / "missing", "/") is None


def test_reload_script_goes_before_the_last_body_end() -> None:
    tag = f'<script src="{RELOAD_PATH}"></script>'.encode()
    page = b"<html><body><p>&lt;/body&gt;</p></BODY></html>"
    assert inject_reload(page) == b"<html><body><p>&lt;/body&gt;</p>" + tag + b"\n</BODY></html>"
    assert inject_reload(b"<p>fragment") == b"<p>fragment" + tag + b"\n"


# -- rebuilding ------------------------------------------------------------------------------------------


def test_editing_a_note_rebuilds_and_open_pages_learn_of_it(live: LiveSite, notes: Path, messages: Messages) -> None:
    before = version(live)
    (notes / "alpha.md").write_text(ALPHA.replace("First version", "Second version"), encoding="utf-8")
    wait_for(lambda: version(live) > before, "the version to change after an edit")
    status, _, body = fetch(live, "/notes/alpha.html")
    assert status == 200 and b"Second version of the alpha body." in body and b"First version" not in body
    assert "changed: alpha.md; rebuilding" in messages.text()

    # a new note gets a page, a deleted one loses it
    before = version(live)
    write(notes, "delta.md", "---\ntitle: Delta\n---\nDelta is new.\n")
    wait_for(lambda: version(live) > before, "the version to change after a new note")
    assert fetch(live, "/notes/delta.html")[0] == 200
    before = version(live)
    (notes / "delta.md").unlink()
    wait_for(lambda: version(live) > before, "the version to change after a deletion")
    assert fetch(live, "/notes/delta.html")[0] == 404


def test_broken_front_matter_keeps_the_last_good_site(live: LiveSite, notes: Path, messages: Messages) -> None:
    before = version(live)
    good = fetch(live, "/notes/alpha.html")[2]
    (notes / "alpha.md").write_text(BROKEN, encoding="utf-8")
    wait_for(lambda: messages.count("still serving the last good site"), "the refused rebuild to be reported")
    text = messages.text()
    assert "alpha.md:2: error: invalid YAML front matter" in text, text  # the diagnostic itself
    assert all(err for m, err in messages.lines if "last good site" in m or "front matter" in m)
    assert version(live) == before
    assert fetch(live, "/notes/alpha.html")[2] == good
    assert "Traceback" not in text

    (notes / "alpha.md").write_text(ALPHA.replace("First version", "Fixed version"), encoding="utf-8")
    wait_for(lambda: version(live) > before, "the version to change once the note is fixed")
    assert b"Fixed version" in fetch(live, "/notes/alpha.html")[2]


def test_a_strict_rebuild_names_each_problem_and_keeps_the_last_good_site(
    settings: Settings, notes: Path, messages: Messages, monkeypatch: pytest.MonkeyPatch
) -> None:
    """With --strict a warning fails the rebuild: the error only counts the problems, so each is
    listed (carried by the error, not found again by parsing the notes a second time)."""
    import notegraph.pipeline as pipeline_module

    strict = dataclasses.replace(settings, strict=True)
    site = LiveSite(strict, port=0, factory=FakeFactory(), echo=messages)
    assert site.rebuild()
    good = (strict.out / "index.html").read_bytes()
    write(notes, "gamma.md", "---\ntitle: Gamma\n---\nSee [[nowhere at all]].\n")
    calls: list[int] = []
    real_check = pipeline_module.check
    monkeypatch.setattr(pipeline_module, "check", lambda s: calls.append(1) or real_check(s))
    assert not site.rebuild()
    text = messages.text()
    assert "gamma.md:4: warning: link [[nowhere at all]] points to no note" in text, text
    assert "build failed: 1 problem(s) in the notes (--strict); still serving the last good site" in text
    assert calls == [] and (strict.out / "index.html").read_bytes() == good
    site.stop()


def test_saves_that_change_nothing_do_not_reload_and_state_files_are_ignored(live: LiveSite, notes: Path, messages: Messages) -> None:
    before = version(live)
    (notes / "beta.md").write_text(BETA, encoding="utf-8")  # saved again, same text
    wait_for(lambda: messages.count("nothing changed"), "the no-op rebuild")
    assert version(live) == before
    rebuilds = messages.count("rebuilding")
    write(notes, ".notegraph/scratch.txt", "the build's own state")
    write(notes, ".hidden/note.md", "hidden folders are not notes")
    write(notes, "beta.md.swp", "an editor's swap file")
    time.sleep(1.5)
    assert messages.count("rebuilding") == rebuilds, messages.text()


# -- starting and stopping ---------------------------------------------------------------------------------


def test_a_taken_port_is_a_clean_error(settings: Settings, messages: Messages) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        site = LiveSite(settings, port=port, factory=FakeFactory(), echo=messages)
        with pytest.raises(NotegraphError, match=f"cannot listen on 127.0.0.1:{port}"):
            site.start()
    assert not settings.out.exists()  # refused before building anything


def test_a_first_build_goes_on_around_a_bad_note_but_not_over_an_earlier_site(
    settings: Settings, notes: Path, messages: Messages
) -> None:
    write(notes, "alpha.md", BROKEN)
    with LiveSite(settings, port=0, factory=FakeFactory(), echo=messages) as site:  # no site yet: build as `build` does
        assert b"saved half-way" in fetch(site, "/notes/alpha.html")[2]
    assert "front matter" in messages.text()

    write(notes, "alpha.md", ALPHA)
    build(settings, FakeFactory())
    write(notes, "alpha.md", BROKEN)
    with LiveSite(settings, port=0, factory=FakeFactory(), echo=messages) as site:  # the earlier site stays
        assert b"First version" in fetch(site, "/notes/alpha.html")[2]
        assert site.version == 0


def test_a_first_build_that_cannot_run_is_an_error(settings: Settings, messages: Messages) -> None:
    write(settings.out, "mine.txt", "not written by notegraph")
    with pytest.raises(NotegraphError, match="holds no site to serve"):
        LiveSite(settings, port=0, factory=FakeFactory(), echo=messages).start()
    assert "refusing to replace them" in messages.text()


def test_stop_closes_the_socket(live: LiveSite) -> None:
    port = live.port
    assert fetch(live, "/")[0] == 200
    live.stop()
    live.stop()  # twice is fine
    with pytest.raises(OSError):
        socket.create_connection(("127.0.0.1", port), timeout=2).close()


SERVE_SCRIPT = """
import sys
from pathlib import Path
from notegraph.config import load_settings
from notegraph.embed import FakeEmbedder
from notegraph.serve import serve

class FakeFactory:
    model_id = FakeEmbedder().model_id

    def __call__(self):
        return FakeEmbedder()

serve(load_settings(Path(sys.argv[1]), out=Path(sys.argv[2])), port=0, factory=FakeFactory())
"""


def test_ctrl_c_stops_cleanly(notes: Path, tmp_path: Path) -> None:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")])}
    proc = subprocess.Popen(
        [sys.executable, "-c", SERVE_SCRIPT, str(notes), str(tmp_path / "site")],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
        cwd=ROOT,
        # Ctrl-C as in a terminal: a test run started in the background (`cmd &` in a script, nohup)
        # ignores SIGINT, and the child would inherit that and rightly keep serving
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )
    try:
        assert proc.stdout is not None
        line = ""
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and not line.startswith("Serving"):
            line = proc.stdout.readline()
            if not line and proc.poll() is not None:
                break
        assert line.startswith("Serving http://127.0.0.1:") and line.rstrip().endswith("(Ctrl-C to stop)"), line
        port = int(line.split(":")[2].split("/")[0])
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
        conn.request("GET", "/")
        assert conn.getresponse().status == 200
        conn.close()
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=20)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    assert proc.returncode == 0, err
    assert "Traceback" not in err and "KeyboardInterrupt" not in err, err
    assert err.rstrip().endswith("stopped")
    with pytest.raises(OSError):
        socket.create_connection(("127.0.0.1", port), timeout=2).close()


# -- the command line ------------------------------------------------------------------------------------


def test_cli_serve_is_a_thin_adapter(notes: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[dict[str, Any]] = []

    def fake_serve(settings: Any, **kwargs: Any) -> None:
        calls.append({"settings": settings() if callable(settings) else settings, **kwargs})

    monkeypatch.setattr("notegraph.serve.serve", fake_serve)
    result = CliRunner().invoke(main, ["serve", str(notes), "--out", str(tmp_path / "out"), "--port", "0", "--open"])
    assert result.exit_code == 0, result.output
    (call,) = calls
    assert call["settings"].notes_dir == notes and call["settings"].out == tmp_path / "out"
    assert call["host"] == "127.0.0.1" and call["port"] == 0 and call["open_browser"] is True

    result = CliRunner().invoke(main, ["serve", str(tmp_path / "missing")])
    assert result.exit_code == 1 and "does not exist" in result.output and "Traceback" not in result.output
    result = CliRunner().invoke(main, ["serve", str(notes), "--port", "70000"])
    assert result.exit_code == 2


def test_open_opens_the_note_page(settings: Settings, notes: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    build(settings, FakeFactory())
    opened: list[str] = []
    monkeypatch.setattr("webbrowser.open", lambda url, *a, **k: opened.append(url) or True)
    result = CliRunner().invoke(main, ["open", "Gamma", "--notes", str(notes), "--out", str(settings.out)])
    assert result.exit_code == 0, result.output
    page = (settings.out / "notes" / "gamma.html").resolve()
    assert opened == [page.as_uri()] and page.as_uri() in result.output

    result = CliRunner().invoke(main, ["open", "no such note", "--notes", str(notes), "--out", str(settings.out)])
    assert result.exit_code == 1 and "no single note matches 'no such note'" in result.output
    assert len(opened) == 1


def test_note_page_builds_a_missing_or_stale_site(settings: Settings, notes: Path) -> None:
    assert site_is_stale(settings)
    page = note_page(settings, "alpha.md", FakeFactory())
    assert page.built is not None and page.path == (settings.out / "notes" / "alpha.html").resolve()
    assert not site_is_stale(settings)
    assert note_page(settings, "Alpha", FakeFactory()).built is None  # fresh: no build

    time.sleep(0.01)
    write(notes, "alpha.md", ALPHA.replace("First version", "Newer version"))
    os.utime(notes / "alpha.md", ns=(time.time_ns() + 10**9, time.time_ns() + 10**9))
    assert site_is_stale(settings)
    page = note_page(settings, "alpha", FakeFactory())
    assert page.built is not None and "Newer version" in page.path.read_text(encoding="utf-8")


def saving_after_first_build(save: Callable[[], Any]) -> type[LiveSite]:
    """A LiveSite that saves a file right after its first build, before its watcher runs."""

    class SavesDuringStart(LiveSite):
        first = True

        def rebuild(self) -> bool:
            built = super().rebuild()
            if self.first:
                self.first = False
                save()
            return built

    return SavesDuringStart


def test_an_edit_saved_while_serve_starts_is_not_lost(settings: Settings, notes: Path, messages: Messages) -> None:
    """The watcher starts after the first build; a save in between is found by comparing the notes with
    how they were before that build, and start() returns only once the watcher runs."""

    def save() -> None:
        (notes / "alpha.md").write_text(ALPHA.replace("First version", "Saved while starting"), encoding="utf-8")

    site = saving_after_first_build(save)(settings, port=0, factory=FakeFactory(), echo=messages, debounce_ms=400, step_ms=50)
    site.start()
    try:
        wait_for(lambda: b"Saved while starting" in fetch(site, "/notes/alpha.html")[2], "the page to show the saved text")
        assert "changed while starting; rebuilding" in messages.text()
        before = version(site)
        (notes / "beta.md").write_text(BETA.replace("repair", "mending"), encoding="utf-8")  # right after start()
        wait_for(lambda: version(site) > before, "the version to change after an edit")
    finally:
        site.stop()


def assert_still_watching(site: LiveSite, messages: Messages, note: Path, text: str) -> None:
    """An edit saved now is built: the watcher outlived whatever happened before."""
    before = version(site)
    note.write_text(text, encoding="utf-8")
    wait_for(lambda: version(site) > before, "the version to change after an edit")
    assert "watching for changes stopped" not in messages.text()


def test_a_bug_in_the_catch_up_rebuild_does_not_stop_the_watcher(settings: Settings, notes: Path, messages: Messages) -> None:
    """The rebuild for a save made while serve starts is guarded like every other watched rebuild."""
    loads = 0

    def reload() -> Settings:
        nonlocal loads
        loads += 1
        if loads == 3:  # 1: LiveSite(), 2: the first build, 3: the catch-up rebuild
            raise RuntimeError("a bug while catching up")
        return settings

    def save() -> None:
        (notes / "alpha.md").write_text(ALPHA.replace("First version", "Saved while starting"), encoding="utf-8")

    site = saving_after_first_build(save)(reload, port=0, factory=FakeFactory(), echo=messages, debounce_ms=400, step_ms=50)
    site.start()
    try:
        wait_for(lambda: "rebuild failed (above); still serving the last good site" in messages.text(), "the failure to be shown")
        assert "RuntimeError: a bug while catching up" in messages.text()
        assert_still_watching(site, messages, notes / "beta.md", BETA.replace("repair", "mending"))
    finally:
        site.stop()


def test_settings_saved_broken_while_serve_starts_do_not_stop_the_watcher(settings: Settings, notes: Path, messages: Messages) -> None:
    def reload() -> Settings:  # as `notegraph serve` does: the settings file is read for every build
        return load_settings(notes, out=settings.out, quiet=True)

    def break_settings() -> None:
        (notes / "notegraph.toml").write_text("title = [unclosed\n", encoding="utf-8")

    site = saving_after_first_build(break_settings)(reload, port=0, factory=FakeFactory(), echo=messages, debounce_ms=400, step_ms=50)
    site.start()
    try:
        wait_for(lambda: "changed while starting; rebuilding" in messages.text(), "the catch-up rebuild")
        (notes / "notegraph.toml").unlink()
        assert_still_watching(site, messages, notes / "alpha.md", ALPHA.replace("First version", "Still watched"))
    finally:
        site.stop()
