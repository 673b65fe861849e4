"""The only module that knows the stage order: parse -> resolve -> embed -> graph -> render."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from notegraph.config import Settings
from notegraph.errors import BuildError
from notegraph.model import Collection, Diagnostic
from notegraph.parse import read_notes
from notegraph.resolve import resolve


def load(settings: Settings) -> Collection:
    """Parse and resolve the collection. Problems become diagnostics; only an unusable folder raises."""
    skip = (settings.out,) if settings.out is not None else ()
    notes, diagnostics = read_notes(
        settings.notes_dir,
        exclude=settings.exclude,
        skip=skip,
        allow_html=settings.allow_html,
        max_bytes=int(settings.max_note_mb * 1024 * 1024),
    )
    return resolve(str(settings.notes_dir), notes, diagnostics)


@dataclass(frozen=True)
class CheckReport:
    collection: Collection

    @property
    def errors(self) -> list[Diagnostic]:
        return [d for d in self.collection.diagnostics if d.severity == "error"]

    @property
    def warnings(self) -> list[Diagnostic]:
        return [d for d in self.collection.diagnostics if d.severity == "warning"]

    def failed(self, strict: bool) -> bool:
        return bool(self.errors or (strict and self.warnings))

    def counts(self) -> dict[str, int]:
        statuses = [link.status for link in self.collection.links]
        return {
            "notes": len(self.collection.notes),
            "links": len(statuses),
            "resolved": statuses.count("ok"),
            "dangling": statuses.count("dangling"),
            "ambiguous": statuses.count("ambiguous"),
            "outside": statuses.count("outside"),
            "errors": len(self.errors),
            "warnings": len(self.warnings),
        }


def check(settings: Settings) -> CheckReport:
    return CheckReport(load(settings))


def fail_if_strict(report: CheckReport, strict: bool) -> None:
    if report.failed(strict):
        n = len(report.errors) + (len(report.warnings) if strict else 0)
        raise BuildError(f"{n} problem(s) in the notes" + (" (--strict)" if strict else ""))


# --- import ----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ImportReport:
    written: list[str]
    skipped: list[str]
    diagnostics: list[Diagnostic]


def import_files(paths: list[Path], into: Path, *, force: bool = False, settings: Settings | None = None) -> ImportReport:
    """Import pages (.txt), BibTeX (.bib) and CSL-JSON (.json) into markdown notes under ``into``."""
    from notegraph.fsutil import atomic_write_text
    from notegraph.parse.importers import ImportedNote, import_bibtex, import_csl_json, import_page

    into.mkdir(parents=True, exist_ok=True)
    settings = settings or Settings(notes_dir=into)
    collection = load(settings) if settings.notes_dir.exists() else None
    vocabulary = list(settings.topics)
    titles: dict[str, str] = {}
    if collection is not None:
        for note in collection.notes.values():
            vocabulary.extend(note.topics)
            titles[note.title] = note.id
    written: list[str] = []
    skipped: list[str] = []
    diagnostics: list[Diagnostic] = []
    for path in paths:
        try:
            text = path.read_text(encoding="utf-8-sig")
        except (OSError, UnicodeDecodeError) as exc:
            diagnostics.append(Diagnostic(str(path), 1, "error", "unreadable", f"cannot read: {exc}"))
            continue
        suffix = path.suffix.lower()
        try:
            if suffix == ".bib":
                imported = import_bibtex(str(path), text)
            elif suffix == ".json":
                imported = import_csl_json(str(path), text)
            else:
                imported = [import_page(str(path), text, vocabulary, titles)]
        except ValueError as exc:
            diagnostics.append(Diagnostic(str(path), 1, "error", "import", str(exc).split(": ", 1)[-1]))
            continue
        for note in imported:
            diagnostics.extend(note.diagnostics)
            if not note.filename:
                continue
            target = into / note.filename
            if target.exists() and not force:
                skipped.append(str(target))
                diagnostics.append(Diagnostic(str(target), 1, "warning", "exists", "note exists; not overwritten (use --force)"))
                continue
            atomic_write_text(target, note.text)
            written.append(str(target))
            titles.setdefault(note.title, str(target.relative_to(settings.notes_dir).with_suffix("")) if target.is_relative_to(settings.notes_dir) else note.title)
    return ImportReport(written, skipped, diagnostics)
