"""The one exception tree; the CLI turns these into clean messages and exit codes."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from notegraph.model import Diagnostic


class NotegraphError(Exception):
    """A problem the user can fix (bad input, bad settings, missing model); never shown as a traceback."""


class ConfigError(NotegraphError):
    """notegraph.toml or a command-line setting is invalid."""


class ModelError(NotegraphError):
    """The embedding model cannot be loaded."""


class BuildError(NotegraphError):
    """The build cannot go on (or --strict turned diagnostics fatal)."""


class BusyError(NotegraphError):
    """Another build holds the lock on this collection."""


class NotesHaveProblems(BuildError):
    """Problems in the notes stop the build: any error or warning under --strict. ``diagnostics`` are
    the notes' diagnostics, for the caller to show: the message only counts them."""

    def __init__(self, message: str, diagnostics: tuple[Diagnostic, ...]) -> None:
        super().__init__(message)
        self.diagnostics = diagnostics


class NotesHaveErrors(NotesHaveProblems):
    """A build asked to keep the published site when a note has errors found some (``serve``: a note
    saved mid-edit never replaces its good page). ``diagnostics`` are the errors."""

    def __init__(self, diagnostics: tuple[Diagnostic, ...]) -> None:
        super().__init__(f"{len(diagnostics)} error(s) in the notes", diagnostics)
