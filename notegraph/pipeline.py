"""The only module that knows the stage order: parse -> resolve -> embed -> graph -> render."""

from __future__ import annotations

from dataclasses import dataclass

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
