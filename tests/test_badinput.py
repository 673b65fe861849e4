"""Bad input: every case gets a diagnostic with file:line, the rest still loads, nothing escapes the folder."""

from __future__ import annotations

from pathlib import Path

from badinput import make_bad_collection
from click.testing import CliRunner

from notegraph.cli import main
from notegraph.config import Settings, load_settings
from notegraph.pipeline import load


def test_bad_collection_diagnostics(tmp_path: Path):
    root = tmp_path / "notes"
    expected = make_bad_collection(root)
    c = load(load_settings(root))
    got = {(d.path, d.code, d.line) for d in c.diagnostics}
    for name, want in expected.items():
        if want is not None:
            assert (name, *want) in got, (name, want, sorted(x for x in got if x[0] == name))
    # the good notes and the odd names are still there; nothing from outside was read
    for note_id in ("good", "Other good", "self", "name with spaces #1 %20 ?", "ünïcødé 🎉", "Case", "sub/case", "bom", "utf16", "latin1"):
        assert note_id in c.notes, note_id
    assert not any("outside-secret" in n.path or "SECRET" in n.text for n in c.notes.values())
    assert any(d.code == "symlink-outside" and d.path == "link-out" for d in c.diagnostics)
    assert any(d.code == "symlink-loop" for d in c.diagnostics)
    assert "huge" not in c.notes and "binary" not in c.notes
    assert c.notes["crlf"].title == "Windows"
    unicode_links = [l for l in c.links if l.source == "ünïcødé 🎉"]
    assert unicode_links[0].target == "name with spaces #1 %20 ?"
    self_links = {l.target for l in c.links if l.source == "self"}
    assert self_links == {"self"}
    many = [l for l in c.links if l.source == "many-links"]
    assert len(many) == 100_000 and all(l.raw.line == 1 for l in many[:10])


def test_check_strict_on_bad_collection(tmp_path: Path):
    root = tmp_path / "notes"
    make_bad_collection(root)
    result = CliRunner().invoke(main, ["check", str(root)])
    assert result.exit_code == 1
    assert "Traceback" not in result.output
    assert "malformed.md:2: error: invalid YAML front matter" in result.output


def test_bad_collection_still_builds_a_site(tmp_path: Path):
    from bs4 import BeautifulSoup

    root = tmp_path / "notes"
    make_bad_collection(root)
    (root / "notegraph.toml").write_text('model = "fake/hash-64"\n')
    out = tmp_path / "site"
    runner = CliRunner()
    strict = runner.invoke(main, ["build", str(root), "--out", str(out), "--strict"])
    assert strict.exit_code == 1 and not out.exists() and "Traceback" not in strict.output
    result = runner.invoke(main, ["build", str(root), "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert "malformed.md:2: error" in result.output and "huge.md:1: error" in result.output
    assert (out / "index.html").exists()
    pages = {p.name: p for p in (out / "notes").glob("*.html")}
    assert len(pages) >= 20
    assert not any("SECRET" in p.read_text(encoding="utf-8") for p in out.rglob("*.html"))
    xss = next(p for name, p in pages.items() if name.startswith("xss"))
    soup = BeautifulSoup(xss.read_text(encoding="utf-8"), "lxml")
    assert all(s.get("src") for s in soup.find_all("script"))  # only our own script files
    assert not [a for tag in soup.find_all(True) for a in tag.attrs if a.lower().startswith("on")]
    assert not [a for a in soup.find_all("a") if str(a.get("href", "")).lower().startswith(("javascript:", "data:"))]
    assert '<script>alert("t")</script>' in soup.h1.get_text()


def test_settings_file_that_cannot_be_read_is_named_without_a_traceback(tmp_path: Path):
    root = tmp_path / "notes"
    (root / "notegraph.toml").mkdir(parents=True)
    result = CliRunner().invoke(main, ["check", str(root)])
    assert result.exit_code == 1 and "Traceback" not in result.output
    assert "notegraph.toml: cannot read" in result.output


def test_settings_file_deleted_after_it_was_seen_is_no_settings_file(tmp_path: Path, monkeypatch):
    """`serve` reads the settings on every save, so the file can go between being seen and being read."""
    root = tmp_path / "notes"
    root.mkdir()
    seen_then_gone = root / "notegraph.toml"
    for name in ("exists", "is_file"):
        real = getattr(Path, name)
        monkeypatch.setattr(Path, name, lambda self, real=real: self == seen_then_gone or real(self))
    assert load_settings(root) == Settings(notes_dir=root)
