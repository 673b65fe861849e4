"""The one exception tree; the CLI turns these into clean messages and exit codes."""


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


class NotesHaveErrors(BuildError):
    """A build asked to keep the published site when a note has errors found some (``serve``: a note
    saved mid-edit never replaces its good page). ``diagnostics`` are the errors."""

    def __init__(self, diagnostics: tuple[object, ...]) -> None:
        super().__init__(f"{len(diagnostics)} error(s) in the notes")
        self.diagnostics = diagnostics
