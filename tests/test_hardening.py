"""Broken and hostile notes each get one clear line, nothing hangs, nothing escapes the notes folder
(issue 27): one test per class of failure, and a property test over generated front matter."""

from __future__ import annotations

import json
import os
import shutil
import time
from pathlib import Path

import pytest
from click.testing import CliRunner
from conftest import write
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from notegraph.cli import main
from notegraph.config import load_settings
from notegraph.parse.markdown import blank_comments, make_markdown
from notegraph.parse.note import parse_note

FAKE = 'model = "fake/hash-64"\n'


def run(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(main, list(args))
    return result.exit_code, result.output


# -- front matter --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "front",
    [
        "date: 2026-02-30",
        "date: 0000-01-01",
        "date: 2026-01-01 25:61:61",
        "updated: 2026-02-30\ntitle: Still titled",
        "reviewed: [2026-13-01, 2026-01-01]",
        "n: " + "9" * 5000,
    ],
)
def test_values_yaml_cannot_construct_are_named_and_the_build_goes_on(tmp_path: Path, front: str):
    notes = tmp_path / "n"
    write(notes, "bad.md", f"---\n{front}\n---\nBody of the bad note.\n")
    write(notes, "good.md", "A good note.\n")
    write(notes, "notegraph.toml", FAKE)
    for command in (["check", str(notes)], ["build", str(notes), "--out", str(tmp_path / "site")], ["export", str(notes), "--format", "json"]):
        code, output = run(*command)
        assert code == 0, output
        assert "Traceback" not in output
    note, diags = parse_note("bad.md", f"---\n{front}\n---\nBody.\n".encode())
    assert note is not None
    if front.startswith("date: 2026-01-01 25"):  # the day stands; its impossible time is dropped
        assert note.date == "2026-01-01"
    elif front.startswith("date:"):  # the date field's own check names it, with its line
        assert [(d.code, d.line) for d in diags] == [("front-matter-type", 2)]
    if "title" in front:
        assert note.title == "Still titled"


def test_a_yaml_alias_bomb_is_refused_in_milliseconds(tmp_path: Path):
    rows = ['a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]']
    for prev, name in zip("abcdefgh", "bcdefghi", strict=True):
        rows.append(f"{name}: &{name} [{','.join([f'*{prev}'] * 9)}]")
    source = "---\n" + "\n".join(rows) + "\n---\nThe body survives.\n"
    assert len(source) < 1200  # ~1 KB that expands to 387 million strings
    started = time.perf_counter()
    note, diags = parse_note("bomb.md", source.encode())
    assert time.perf_counter() - started < 30  # not a timing (benchmarks/ time things): it never ends otherwise
    assert note is not None and note.meta == {} and "body survives" in note.text
    assert [(d.severity, d.code, d.line) for d in diags] == [("error", "front-matter", 1)]
    assert "aliases" in diags[0].message
    # a value that holds itself is refused the same way
    note, diags = parse_note("self.md", b"---\nr: &r [*r]\n---\nx\n")
    assert note is not None and [d.code for d in diags] == ["front-matter"]


def test_nul_bytes_and_control_characters_are_reported_and_never_reach_a_page(tmp_path: Path):
    notes = tmp_path / "n"
    write(notes, "nul.md", b'---\ntitle: "bad\\0title\\x07"\n---\n' + b"x" * 9000 + b"\x00 after the first 8 KB\n")
    write(notes, "notegraph.toml", FAKE)
    code, output = run("check", str(notes))
    assert "nul.md:4: warning: file holds 1 NUL byte(s)" in output and "nul.md:2: warning: 'title' holds control characters" in output
    run("build", str(notes), "--out", str(tmp_path / "site"))
    pages = [p.read_text(encoding="utf-8") for p in (tmp_path / "site").rglob("*.html")] + [
        p.read_text(encoding="utf-8") for p in (tmp_path / "site").rglob("*.js")
    ]
    assert all("\x00" not in page and "\x07" not in page for page in pages)
    assert any("bad\ufffdtitle\ufffd" in page for page in pages)


def test_a_file_name_cannot_forge_a_diagnostic_line(tmp_path: Path):
    notes = tmp_path / "n"
    write(notes, "ok\nok.md:1: error: forged\x1b[2J.md", "A link to [[nowhere]].\n")
    code, output = run("check", str(notes))
    lines = [line for line in output.splitlines() if line.strip()]
    assert len(lines) == 2, lines  # the diagnostic and the summary
    assert lines[0].startswith("ok\\nok.md:1: error: forged\\x1b[2J.md:1: warning:")
    assert "\x1b" not in output


def test_a_note_with_20000_dangling_links_prints_a_few_lines_and_json_keeps_them_all(tmp_path: Path):
    notes = tmp_path / "n"
    write(notes, "many.md", " ".join(f"[[missing {i}]]" for i in range(20_000)))
    code, output = run("check", str(notes))
    lines = [line for line in output.splitlines() if line.startswith("many.md")]
    assert len(lines) == 6 and "and 19995 more [dangling-link]" in lines[-1]
    code, output = run("check", str(notes), "--json")
    assert len([d for d in json.loads(output)["diagnostics"] if d["code"] == "dangling-link"]) == 20_000


def test_a_paragraph_of_many_brackets_keeps_every_link_it_holds():
    """The bracket guard takes brackets that open nothing as text, in paragraphs of 64 brackets or more:
    the links, images, wikilinks and footnote references among them still parse."""
    parts = []
    for i in range(30):
        parts += [f"[[Note {i}]]", f"[web {i}](https://example.org/{i})", f"[plain {i}]", f"[^{i % 3 + 1}]", "[ [ nested ] ]", f"![img {i}](pic{i}.png)"]
    source = " ".join(parts) + "\n\n" + "\n".join(f"[^{k}]: Footnote {k}." for k in (1, 2, 3)) + "\n"
    note, diags = parse_note("many.md", source.encode())
    assert note is not None
    wiki = [link.target for link in note.links if link.style == "wiki"]
    assert wiki == [f"Note {i}" for i in range(30)]
    images = [link.target for link in note.links if link.embed and link.style == "markdown"]
    assert images == [f"pic{i}.png" for i in range(30)]
    tokens = make_markdown().parse(blank_comments(source))
    children = tokens[1].children or []
    assert sum(c.type == "link_open" for c in children) == 30
    assert sum(c.type == "footnote_ref" for c in children) == 30
    # and with the guard's work shown: the same paragraph in the plain CommonMark parser agrees
    from markdown_it import MarkdownIt

    plain = MarkdownIt("commonmark").parse(" ".join(f"[web {i}](https://example.org/{i}) [plain {i}]" for i in range(40)))
    assert sum(c.type == "link_open" for c in plain[1].children or []) == 40


# -- the folder ---------------------------------------------------------------------------------------------


def test_a_thousand_nested_folders_are_walked(tmp_path: Path):
    notes = tmp_path / "n"
    notes.mkdir()
    deep = str(notes)
    for _ in range(1000):  # one mkdir at a time: os.makedirs itself recurses too deeply here
        deep = os.path.join(deep, "d")
        os.mkdir(deep)
    Path(deep, "deep.md").write_text("Deep, linking [[top]].\n")
    (notes / "top.md").write_text("Top.\n")
    try:
        code, output = run("check", str(notes))
        assert code == 0 and "2 notes, 1 links: 1 resolved" in output, output[-500:]
    finally:  # bottom up, one folder at a time: shutil.rmtree (and pytest's clean-up) recurse too deeply
        os.remove(os.path.join(deep, "deep.md"))
        while deep != str(notes):
            os.rmdir(deep)
            deep = os.path.dirname(deep)


def test_a_huge_sparse_file_is_never_read(tmp_path: Path):
    notes = tmp_path / "n"
    write(notes, "a.md", "A note.\n")
    with open(notes / "huge.md", "wb") as f:  # 4 GB that take no disk: reading it would take the memory
        f.truncate(4 << 30)
    started = time.perf_counter()
    code, output = run("check", str(notes))
    assert time.perf_counter() - started < 30
    assert "huge.md:1: error: note is 4294.97 MB" in output or "huge.md:1: error: note is 4295.0 MB" in output, output


def test_settings_in_a_notes_folder_never_point_writes_outside_it(tmp_path: Path):
    notes = tmp_path / "n"
    write(notes, "a.md", "A note.\n")
    outside = tmp_path / "outside.sqlite"
    outside.write_text("precious")
    for value in ("../outside.sqlite", str(outside), ".notegraph/../../outside.sqlite"):
        write(notes, "notegraph.toml", f'{FAKE}cache = "{value}"\n')
        code, output = run("build", str(notes), "--out", str(tmp_path / "site"))
        assert code != 0 and "points outside" in output and "Traceback" not in output
        assert len([line for line in output.splitlines() if line.strip()]) == 1
    assert outside.read_text() == "precious"
    # inside its own state folder, or from the command line, it may
    write(notes, "notegraph.toml", f'{FAKE}cache = ".notegraph/other.sqlite"\n')
    assert run("build", str(notes), "--out", str(tmp_path / "site"))[0] == 0
    assert (notes / ".notegraph" / "other.sqlite").is_file()
    write(notes, "notegraph.toml", f'{FAKE}cache = "../outside.sqlite"\n')
    chosen = tmp_path / "chosen.sqlite"
    shutil.rmtree(tmp_path / "site")  # so that this build embeds, into the cache the command line names
    assert run("build", str(notes), "--out", str(tmp_path / "site"), "--cache", str(chosen))[0] == 0
    assert chosen.is_file() and outside.read_text() == "precious"


# -- generated front matter --------------------------------------------------------------------------------

scalars = st.one_of(
    st.dates().map(str),
    st.from_regex(r"\d{4}-\d{2}-\d{2}( \d{2}:\d{2}:\d{2})?", fullmatch=True),
    st.integers().map(str),
    st.from_regex(r"[0-9]{4000,4400}", fullmatch=True),
    st.sampled_from(["~", "null", "yes", "no", "on", ".inf", "-.nan", "0x1F", "0o17", "1_000", "!!binary aGk=", "!!str x", "'\\0'", '"\\0"', "[]", "{}"]),
    st.text(alphabet="abc :-#&*!|>'\"[]{},%@`\\", max_size=12),
)


@st.composite
def front_matter(draw: st.DrawFn) -> str:
    lines = []
    anchors: list[str] = []
    for i in range(draw(st.integers(1, 6))):
        key = draw(st.sampled_from(["title", "date", "kind", "aliases", "tags", "topics", "sources", f"k{i}"]))
        if anchors and draw(st.booleans()):
            value = f"[{', '.join('*' + a for a in draw(st.lists(st.sampled_from(anchors), min_size=1, max_size=9)))}]"
        else:
            value = draw(scalars)
        if draw(st.booleans()):
            anchors.append(f"a{i}")
            value = f"&a{i} {value}"
        lines.append(f"{key}: {value}")
    return "---\n" + "\n".join(lines) + "\n---\nBody.\n"


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(front_matter())
def test_any_front_matter_parses_to_a_note_or_a_diagnostic_never_an_exception(text: str):
    started = time.perf_counter()
    note, diags = parse_note("fm.md", text.encode("utf-8"))
    assert time.perf_counter() - started < 5
    assert note is not None
    assert all(d.path == "fm.md" and 1 <= d.line <= text.count("\n") + 1 for d in diags)
    json.dumps(dict(note.meta))  # what export writes
    assert "\x00" not in note.title and all("\x00" not in a for a in note.aliases)


# -- serve ---------------------------------------------------------------------------------------------------


@pytest.fixture
def served(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    from conftest import FakeFactory

    from notegraph.serve import LiveSite, _Handler, _Server

    monkeypatch.setattr(_Handler, "timeout", 1)
    monkeypatch.setattr(_Server, "max_connections", 4)
    notes = tmp_path / "n"
    write(notes, "a.md", "A note about grounding.\n")
    settings = load_settings(notes, out=tmp_path / "site", quiet=True)
    site = LiveSite(settings, port=0, factory=FakeFactory(), echo=lambda message, err: None)
    site.start()
    try:
        yield site
    finally:
        site.stop()


def _get(port: int, host: str | None) -> int:
    import http.client

    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        conn.putrequest("GET", "/index.html", skip_host=True)
        if host is not None:
            conn.putheader("Host", host)
        conn.endheaders()
        return conn.getresponse().status
    finally:
        conn.close()


def test_serve_answers_only_its_own_names(served):
    port = served.port
    for host in (f"localhost:{port}", f"127.0.0.1:{port}", f"[::1]:{port}", "localhost"):
        assert _get(port, host) == 200, host
    for host in (f"evil.example:{port}", "evil.example", f"127.0.0.1.evil.example:{port}", "", None):
        assert _get(port, host) == 421, host


def test_serve_closes_idle_connections_and_bounds_its_threads(served):
    import socket
    import threading

    port = served.port
    before = threading.active_count()
    idle = [socket.create_connection(("127.0.0.1", port)) for _ in range(10)]  # more than the 4 allowed
    try:
        time.sleep(0.5)
        assert threading.active_count() - before <= 4 + 1  # the accept loop may hold one waiting
        # the idle ones are closed after the timeout (1 s here), and the server answers again
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline and _get(port, f"localhost:{port}") != 200:
            time.sleep(0.2)
        assert _get(port, f"localhost:{port}") == 200
        for sock in idle[:4]:
            sock.settimeout(5)
            assert sock.recv(1) == b""  # closed by the server
    finally:
        for sock in idle:
            sock.close()


# -- damaged state and failed writes ------------------------------------------------------------------------


def _small_vault(tmp_path: Path) -> Path:
    notes = tmp_path / "n"
    write(notes, "a.md", "A note about [[b]].\n")
    write(notes, "b.md", "B note.\n")
    write(notes, "notegraph.toml", FAKE)
    return notes


@pytest.mark.parametrize("name", ["build.lock", "clusters.json", "last-build.json", "query.sqlite", "parse.sqlite", "facts.sqlite", "cache.sqlite"])
@pytest.mark.parametrize("damage", ["folder", "link outside"])
def test_whatever_stands_in_the_state_folder_the_build_repairs_it_with_one_warning(tmp_path: Path, name: str, damage: str):
    notes = _small_vault(tmp_path)
    site = tmp_path / "site"
    assert run("build", str(notes), "--out", str(site))[0] == 0
    path = notes / ".notegraph" / name
    path.unlink()
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "keep.txt").write_text("precious")
    if damage == "folder":
        (path / "inner").mkdir(parents=True)
    else:
        path.symlink_to(outside)
    (notes / "a.md").write_text("A note about [[b]], edited.\n")
    for attempt in range(2):  # and the build after it is an ordinary one
        code, output = run("build", str(notes), "--out", str(site))
        assert code == 0 and "Traceback" not in output, output
        warned = [line for line in output.splitlines() if "was not a file notegraph writes" in line]
        assert len(warned) == (1 if attempt == 0 else 0), output
    assert (outside / "keep.txt").read_text() == "precious" and sorted(p.name for p in outside.iterdir()) == ["keep.txt"]
    assert "edited" in (site / "notes" / "a.html").read_text()


def test_a_write_that_fails_mid_build_is_one_line_and_the_previous_site_stays(tmp_path: Path):
    """Files may not grow past 64 KB in the child (RLIMIT_FSIZE, as a full disk refuses them): the build
    fails with one line, no traceback, and the published site is the one before."""
    import subprocess
    import sys

    notes = _small_vault(tmp_path)
    site = tmp_path / "site"
    assert run("build", str(notes), "--out", str(site))[0] == 0
    before = {p.relative_to(site): p.read_bytes() for p in site.rglob("*") if p.is_file()}
    (notes / "a.md").write_text("A note about [[b]], edited. " + "words " * 30_000 + "\n")
    child = (
        "import resource, signal, sys\n"
        "signal.signal(signal.SIGXFSZ, signal.SIG_IGN)\n"
        "resource.setrlimit(resource.RLIMIT_FSIZE, (64 * 1024, 64 * 1024))\n"
        "from notegraph.cli import main\n"
        f"sys.argv = ['notegraph', 'build', {str(notes)!r}, '--out', {str(site)!r}]\n"
        "main()\n"
    )
    done = subprocess.run([sys.executable, "-c", child], capture_output=True, text=True, timeout=300)
    assert done.returncode == 1, done.stdout + done.stderr
    lines = [line for line in (done.stdout + done.stderr).splitlines() if line.strip()]
    assert "Traceback" not in done.stderr and len(lines) == 1 and lines[0].startswith("Error:"), lines
    after = {p.relative_to(site): p.read_bytes() for p in site.rglob("*") if p.is_file()}
    assert after == before


def test_an_export_that_cannot_be_written_names_its_file(tmp_path: Path):
    import subprocess
    import sys

    notes = _small_vault(tmp_path)
    for i in range(300):  # an export of some 100 KB
        write(notes, f"n{i}.md", f"Note {i} about [[n{(i + 1) % 300}]].\n")
    target = tmp_path / "graph.json"
    child = (
        "import resource, signal, sys\n"
        "signal.signal(signal.SIGXFSZ, signal.SIG_IGN)\n"
        "resource.setrlimit(resource.RLIMIT_FSIZE, (16 * 1024, 16 * 1024))\n"
        "from notegraph.cli import main\n"
        f"sys.argv = ['notegraph', 'export', {str(notes)!r}, '--format', 'json', '-o', {str(target)!r}]\n"
        "main()\n"
    )
    done = subprocess.run([sys.executable, "-c", child], capture_output=True, text=True, timeout=300)
    lines = [line for line in (done.stdout + done.stderr).splitlines() if line.strip()]
    assert done.returncode == 1 and lines == [f"Error: {target}: File too large"], lines
    assert not target.exists()
