"""Browsing a collection: a live preview server (build, serve, rebuild on change, reload) and a note's page."""

from __future__ import annotations

import mimetypes
import os
import socket
import sys
import threading
import time
import traceback
import webbrowser
from collections.abc import Callable
from dataclasses import dataclass, replace
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, cast
from urllib.parse import unquote, urlsplit

from notegraph.config import Settings
from notegraph.errors import NotegraphError, NotesHaveErrors, NotesHaveProblems
from notegraph.model import Diagnostic, summarised

Echo = Callable[[str, bool], None]  # (message, to stderr)
Factory = Callable[[], Any]

RELOAD_PATH = "/__notegraph/reload.js"
VERSION_PATH = "/__notegraph/version"
WATCH_READY_MS = 300  # the watcher reports that it runs after this long without a change
RELOAD_TAG = f'<script src="{RELOAD_PATH}"></script>'
MANIFEST = ".notegraph-manifest.json"

# Pages forbid inline script (CSP script-src 'self'), so live reload is a same-origin file. The version the
# page was served at comes in its Server-Timing header: polling alone would miss a rebuild that finishes
# between the page's response and the first poll.
RELOAD_JS = """\
/* notegraph serve: reload this page when the site has been rebuilt. */
(function () {
  "use strict";
  var seen = null;
  try {
    var nav = performance.getEntriesByType("navigation")[0];
    (nav && nav.serverTiming || []).forEach(function (t) {
      if (t.name === "ngversion") { seen = t.description; }
    });
  } catch (e) { /* no Server-Timing: the first poll sets the baseline */ }
  function poll() {
    fetch("/__notegraph/version", { cache: "no-store" })
      .then(function (r) { return r.ok ? r.text() : null; })
      .then(function (v) {
        if (v === null) { return; }
        v = v.trim();
        if (seen === null) { seen = v; } else if (v !== seen) { window.location.reload(); }
      })
      .catch(function () { /* the server is restarting or gone: keep trying quietly */ })
      .then(function () { window.setTimeout(poll, 1000); });
  }
  window.setTimeout(poll, 1000);
})();
"""

CONTENT_TYPES = {
    ".html": "text/html; charset=utf-8",
    ".js": "text/javascript; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".json": "application/json",
    ".svg": "image/svg+xml",
    ".txt": "text/plain; charset=utf-8",
    ".map": "application/json",
}


def _default_echo(message: str, err: bool) -> None:
    print(message, file=sys.stderr if err else sys.stdout, flush=True)


# -- which file a URL names ------------------------------------------------------------------------------


def site_file(root: Path, url_path: str) -> Path | None:
    """The file inside ``root`` that ``url_path`` names, or None (served as 404).

    Refused: ``..`` and ``.`` segments (also percent-encoded), hidden names, backslashes and NUL, and any
    path whose real location (symlinks followed) is outside the site. A folder serves its index.html."""
    text = unquote(url_path)
    if "\\" in text or "\x00" in text:
        return None
    parts = [p for p in text.split("/") if p]
    if any(p.startswith(".") for p in parts):  # covers "." and "..", and the manifest
        return None
    try:
        real_root = root.resolve(strict=True)
        candidate = real_root.joinpath(*parts)
        if candidate.is_dir():
            candidate = candidate / "index.html"
        real = candidate.resolve(strict=True)
    except (OSError, RuntimeError, ValueError):
        return None
    if not real.is_relative_to(real_root) or not real.is_file():
        return None
    return real


def inject_reload(html: bytes) -> bytes:
    """Add the reload script before the last ``</body>`` (at the end when there is none)."""
    tag = RELOAD_TAG.encode()
    at = html.lower().rfind(b"</body>")
    if at == -1:
        return html + tag + b"\n"
    return html[:at] + tag + b"\n" + html[at:]


def display_url(host: str, port: int) -> str:
    shown = {"0.0.0.0": "127.0.0.1", "::": "::1", "": "127.0.0.1"}.get(host, host)
    if ":" in shown:
        shown = f"[{shown}]"
    return f"http://{shown}:{port}/"


# -- the HTTP side -----------------------------------------------------------------------------------------


MAX_CONNECTIONS = 32  # connections served at once; more wait a moment, then are closed
IDLE_TIMEOUT_S = 30  # a connection that sends nothing for this long is closed
LOCAL_NAMES = frozenset({"localhost", "127.0.0.1", "::1", "[::1]"})


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    block_on_close = False
    live: LiveSite
    max_connections = MAX_CONNECTIONS

    @property
    def _slots(self) -> threading.BoundedSemaphore:
        slots = self.__dict__.get("_slot_semaphore")
        if slots is None:
            slots = self.__dict__["_slot_semaphore"] = threading.BoundedSemaphore(self.max_connections)
        return slots

    def process_request(self, request: Any, client_address: Any) -> None:
        """A thread per connection, at most ``max_connections`` of them: a flood of open sockets cannot
        take every thread the machine has."""
        if not self._slots.acquire(timeout=5):
            self.shutdown_request(request)
            return
        try:
            super().process_request(request, client_address)
        except BaseException:
            self._slots.release()
            raise

    def process_request_thread(self, request: Any, client_address: Any) -> None:
        try:
            super().process_request_thread(request, client_address)
        finally:
            self._slots.release()


class _Server6(_Server):
    address_family = socket.AF_INET6


class _Handler(BaseHTTPRequestHandler):
    timeout = IDLE_TIMEOUT_S

    def version_string(self) -> str:
        return "notegraph"

    def _own_name(self) -> bool:
        """Whether the request names this server: localhost, 127.0.0.1, [::1] or the --host given. Any
        other Host is refused, so that a page on a rebinding domain (evil.example resolving to
        127.0.0.1) cannot read the notes from a visitor's browser."""
        host = (self.headers.get("Host") or "").strip().lower()
        if host.startswith("["):
            name = host[: host.find("]") + 1] if "]" in host else host
        else:
            name = host.rsplit(":", 1)[0] if host.count(":") == 1 else host
        bound = cast(_Server, self.server).live.host.lower()
        return bool(name) and (name in LOCAL_NAMES or name in (bound, f"[{bound}]"))

    def do_GET(self) -> None:
        self._respond(head=False)

    def do_HEAD(self) -> None:
        self._respond(head=True)

    def log_message(self, format: str, *args: Any) -> None:
        pass  # one line per request would drown the build messages

    def _respond(self, head: bool) -> None:
        if not self._own_name():
            self._send(421, CONTENT_TYPES[".txt"], b"421 this server answers only to its own name (localhost)\n", head)
            return
        live = cast(_Server, self.server).live
        path = urlsplit(self.path).path
        version = str(live.version)
        if path == VERSION_PATH:
            self._send(200, "text/plain; charset=utf-8", version.encode(), head, cache="no-store")
            return
        if path == RELOAD_PATH:
            self._send(200, CONTENT_TYPES[".js"], RELOAD_JS.encode(), head)
            return
        found = live.find(path)
        if found is None and path == "/favicon.ico":
            self._send(204, CONTENT_TYPES[".txt"], b"", head)  # browsers ask for it unprompted: no 404 noise
            return
        if found is None:
            self._send(404, CONTENT_TYPES[".txt"], b"404 not found\n", head)
            return
        try:
            data = found.read_bytes()
        except OSError:
            self._send(404, CONTENT_TYPES[".txt"], b"404 not found\n", head)
            return
        suffix = found.suffix.lower()
        content_type = CONTENT_TYPES.get(suffix) or mimetypes.guess_type(found.name)[0] or "application/octet-stream"
        extra = {}
        if suffix == ".html":
            data = inject_reload(data)
            extra["Server-Timing"] = f'ngversion;desc="{version}"'
        self._send(200, content_type, data, head, extra=extra)

    def _send(self, status: int, content_type: str, data: bytes, head: bool, cache: str = "no-cache", extra: dict[str, str] | None = None) -> None:
        try:
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(data)))
            self.send_header("Cache-Control", cache)
            self.send_header("X-Content-Type-Options", "nosniff")
            self.send_header("Referrer-Policy", "no-referrer")
            for name, value in (extra or {}).items():
                self.send_header(name, value)
            self.end_headers()
            if not head:
                self.wfile.write(data)
        except (BrokenPipeError, ConnectionResetError):
            pass  # the browser went away (a reload, a closed tab)


# -- the live site ---------------------------------------------------------------------------------------


class LiveSite:
    """Serves ``settings.out``, rebuilds it when something under ``settings.notes_dir`` changes, and counts
    the rebuilds that changed the site (open pages poll that count and reload).

    ``settings`` may be a function returning fresh settings: it is called before every build, so an edited
    notegraph.toml takes effect (the output folder stays the one being served). A failed rebuild is
    reported and the last good site stays in place and served."""

    def __init__(
        self,
        settings: Settings | Callable[[], Settings],
        *,
        host: str = "127.0.0.1",
        port: int = 8000,
        factory: Factory | None = None,
        echo: Echo = _default_echo,
        debounce_ms: int = 1600,
        step_ms: int = 100,
    ) -> None:
        self._load: Callable[[], Settings] = settings if callable(settings) else (lambda: settings)
        first = self._load()
        self.notes_dir = first.notes_dir
        self.out = first.out
        self.host = host
        self.port = port
        from notegraph.pipeline import KeptEmbedder, Warm

        self.factory = factory
        self._kept = KeptEmbedder()  # without a factory, the model is loaded once and kept between builds
        self._warm = Warm()  # the notes as parsed and the vectors as read, for the next build
        self.echo = echo
        self.debounce_ms = debounce_ms
        self.step_ms = step_ms
        self._version = 0
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._watching = threading.Event()  # set once the watcher has been running for a moment
        self._baseline: dict[str, list[int]] = {}
        self._server: _Server | None = None
        self._threads: list[threading.Thread] = []
        self._shown: set[Diagnostic] = set()
        # never a reason to rebuild: what the build itself writes
        self._ignored = [first.out, first.state_dir, first.cache_path]

    # state -----------------------------------------------------------------------------------------

    @property
    def version(self) -> int:
        with self._lock:
            return self._version

    @property
    def url(self) -> str:
        return display_url(self.host, self.port)

    def find(self, url_path: str) -> Path | None:
        found = site_file(self.out, url_path)
        if found is None and not self.out.exists():
            # the build swaps the new site in with two renames: wait out that instant rather than 404
            for _ in range(50):
                time.sleep(0.02)
                if self.out.exists():
                    return site_file(self.out, url_path)
        return found

    # building --------------------------------------------------------------------------------------

    def _settings(self) -> Settings:
        return replace(self._load(), out=self.out)

    def rebuild(self) -> bool:
        """One build; True when it published a site. Pages reload only when the site's content changed."""
        from notegraph.pipeline import build

        started = time.monotonic()
        before = _manifest_bytes(self.out)
        try:
            settings = self._settings()
            # a note with errors (front matter half typed) never replaces its good page: the last good
            # site stays until the notes are fixed
            report = build(settings, self.factory or self._kept.factory_for(settings), keep_on_errors=before is not None, warm=self._warm)
        except NotesHaveErrors as exc:
            self._keep_last_good(exc.diagnostics)
            return False
        except NotegraphError as exc:
            self._report_failure(exc)
            return False
        for line in summarised(d for d in report.diagnostics if d not in self._shown):
            self.echo(line, True)
        self._shown = set(report.diagnostics)
        for warning in report.warnings:
            self.echo(f"warning: {warning}", True)
        changed = _manifest_bytes(self.out) != before
        if changed:
            with self._lock:
                self._version += 1
        took = time.monotonic() - started
        what = f"{report.pages_written} pages written, {report.pages_reused} unchanged" if changed else "nothing changed"
        self.echo(f"built {report.notes} notes in {took:.1f}s: {what}", False)
        return True

    def _keep_last_good(self, errors: tuple[Diagnostic, ...]) -> None:
        """Say why the site was not rebuilt. `notegraph build` goes on around a bad note; a live site
        keeps its last good version instead, so a note saved mid-edit never replaces its good page."""
        for line in summarised(errors):
            self.echo(line, True)
        self._shown = set()  # show every diagnostic again after the next good build
        self.echo(f"not rebuilt: {len(errors)} error(s) in the notes; still serving the last good site", True)

    def _report_failure(self, exc: NotegraphError) -> None:
        """Show why: with --strict the error says only how many problems there are, so list them."""
        for line in summarised(exc.diagnostics if isinstance(exc, NotesHaveProblems) else ()):
            self.echo(line, True)
        self._shown = set()
        kept = "; still serving the last good site" if (self.out / "index.html").exists() else ""
        self.echo(f"build failed: {exc}{kept}", True)

    # running ---------------------------------------------------------------------------------------

    def start(self) -> None:
        """Listen, build, then serve and watch in background threads. Raises NotegraphError when the port
        is taken, or when the first build fails and there is no earlier site to serve."""
        self._server = self._bind()
        self._baseline = self._stamps()  # before the first build: a change during it is caught up below
        try:
            if not self.rebuild() and not (self.out / "index.html").is_file():
                raise NotegraphError(f"the first build failed and {self.out} holds no site to serve")
        except BaseException:
            self._server.server_close()
            self._server = None
            raise
        server = self._server
        self._threads = [
            threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.2}, name="notegraph-http", daemon=True),
            threading.Thread(target=self._watch, name="notegraph-watch", daemon=True),
        ]
        for thread in self._threads:
            thread.start()
        # an edit saved before the watcher runs would go unseen: start returns once it runs, and the
        # watcher then compares the notes with how they were before the first build
        self._watching.wait(timeout=10)

    def _stamps(self) -> dict[str, list[int]]:
        """Size and mtime of every note file and of the settings file. Read without the settings (their
        exclude patterns only narrow this), so a settings file saved broken cannot stop the watcher."""
        from notegraph.config import CONFIG_NAME
        from notegraph.fsutil import stamp
        from notegraph.parse.collection import file_stamps

        stamps = file_stamps(self.notes_dir, (), (self.out,))
        try:  # not tested first: it may be deleted in between
            stamps[CONFIG_NAME] = stamp(self.notes_dir / CONFIG_NAME)
        except OSError:
            pass
        return stamps

    def _bind(self) -> _Server:
        cls = _Server6 if ":" in self.host else _Server
        try:
            server = cls((self.host, self.port), _Handler)
        except OSError as exc:
            hint = " (try another --port)" if exc.errno in (98, 48, 10048) else ""
            raise NotegraphError(f"cannot listen on {self.host}:{self.port}: {exc.strerror or exc}{hint}") from None
        server.live = self
        self.port = int(server.server_address[1])
        return server

    def _watch(self) -> None:
        from watchfiles import watch

        try:
            for changes in watch(
                self.notes_dir,
                watch_filter=_NotesFilter(self.notes_dir, self._ignored),
                debounce=self.debounce_ms,
                step=self.step_ms,
                stop_event=self._stop,
                raise_interrupt=False,
                rust_timeout=WATCH_READY_MS,
                yield_on_timeout=True,  # an empty set after WATCH_READY_MS: the watcher is running
            ):
                if self._stop.is_set():
                    break
                if not self._watching.is_set():
                    # compared before start() returns: an edit saved after that is an event of the watcher's,
                    # and would otherwise be seen twice (here and as an event)
                    missed = not changes and self._stamps() != self._baseline
                    self._watching.set()
                    if missed:
                        self._rebuild_watched("changed while starting; rebuilding")
                        continue
                if not changes:
                    continue
                names = sorted({_relative(self.notes_dir, path) for _, path in changes})
                shown = ", ".join(names[:3]) + (f" and {len(names) - 3} more" if len(names) > 3 else "")
                self._rebuild_watched(f"changed: {shown}; rebuilding")
        except Exception:
            if not self._stop.is_set():
                self.echo(traceback.format_exc().rstrip(), True)
                self.echo("watching for changes stopped; the site is still served (restart to rebuild)", True)

    def _rebuild_watched(self, why: str) -> None:
        """A rebuild from the watcher, which must outlive it: a bug (not the user's notes) is shown and
        the last good site stays served."""
        self.echo(why, False)
        try:
            self.rebuild()
        except Exception:
            self.echo(traceback.format_exc().rstrip(), True)
            self.echo("rebuild failed (above); still serving the last good site", True)

    def wait(self) -> None:
        """Block until :meth:`stop` (Ctrl-C interrupts the wait in the main thread)."""
        while not self._stop.wait(0.5):
            pass

    def stop(self) -> None:
        """Stop watching and serving and close the socket; safe to call more than once."""
        self._stop.set()
        server, self._server = self._server, None
        if server is not None:
            if self._threads:
                server.shutdown()
            server.server_close()
        for thread in self._threads:
            thread.join(timeout=10)
        self._threads = []
        self._kept.close()

    def __enter__(self) -> LiveSite:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


class _NotesFilter:
    """watchfiles filter: the folder's notes and settings, not the build's own state, output or hidden files."""

    def __init__(self, notes_dir: Path, ignored: list[Path]) -> None:
        from watchfiles import DefaultFilter

        self.root = notes_dir.resolve()
        self.ignored = [p.resolve() for p in ignored]
        self.default = DefaultFilter()

    def __call__(self, change: Any, path: str) -> bool:
        if not self.default(change, path):
            return False
        p = Path(path).resolve()
        for ignored in self.ignored:
            if p == ignored or ignored in p.parents:
                return False
            if p.parent == ignored.parent and p.name.startswith(ignored.name + "-"):  # the cache's -wal, -journal
                return False
        try:
            rel = p.relative_to(self.root)
        except ValueError:
            return True
        return not any(part.startswith(".") for part in rel.parts)


def _relative(root: Path, path: str) -> str:
    try:
        return Path(path).resolve().relative_to(root.resolve()).as_posix()
    except ValueError:
        return path


def _manifest_bytes(out: Path) -> bytes | None:
    try:
        return (out / MANIFEST).read_bytes()
    except OSError:
        return None


def serve(
    settings: Settings | Callable[[], Settings],
    *,
    host: str = "127.0.0.1",
    port: int = 8000,
    open_browser: bool = False,
    factory: Factory | None = None,
    echo: Echo = _default_echo,
) -> None:
    """Build and serve until Ctrl-C, rebuilding on change; returns normally on Ctrl-C."""
    live = LiveSite(settings, host=host, port=port, factory=factory, echo=echo)
    try:
        live.start()
        echo(f"Serving {live.url} (Ctrl-C to stop)", False)
        if open_browser:
            webbrowser.open(live.url)
        live.wait()
    except KeyboardInterrupt:
        pass
    finally:
        live.stop()
    echo("stopped", True)


# -- one note's page --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class NotePage:
    note_id: str
    path: Path  # the page in the built site (absolute)
    built: Any = None  # the BuildReport when the site had to be built first

    @property
    def url(self) -> str:
        return self.path.as_uri()


def note_page(settings: Settings, query: str, factory: Factory | None = None) -> NotePage:
    """The built page of the note ``query`` names (id, path, file name, title or alias), building the site
    first when it is missing or older than the notes."""
    from notegraph.pipeline import build, load
    from notegraph.query import find_note
    from notegraph.render.slugs import assign_slugs

    collection = load(settings)
    note = find_note(collection, query)
    if note is None:
        raise NotegraphError(f"no single note matches '{query}'; give its path (e.g. folder/name) or exact title")
    # the renderer's naming: one slug per note id over the whole collection, pages under notes/
    slug = assign_slugs(collection.notes)[note.id]
    page = settings.out / "notes" / f"{slug}.html"
    built = None
    if not page.is_file() or site_is_stale(settings):
        built = build(settings, factory)
    if not page.is_file():
        raise NotegraphError(f"the site in {settings.out} has no page for '{note.id}'")
    return NotePage(note.id, page.resolve(), built)


def site_is_stale(settings: Settings) -> bool:
    """True when the site is missing or anything in the notes folder (a note, a folder, the settings)
    changed after it was built. Folder times catch deleted and renamed notes."""
    try:
        built_at = (settings.out / MANIFEST).stat().st_mtime_ns
    except OSError:
        return True
    out = settings.out.resolve()
    for folder, dirs, files in os.walk(settings.notes_dir):
        here = Path(folder)
        dirs[:] = [d for d in dirs if not d.startswith(".") and (here / d).resolve() != out]
        for name in [".", *(f for f in files if not f.startswith("."))]:
            try:
                if (here / name).stat().st_mtime_ns > built_at:
                    return True
            except OSError:
                continue
    return False

