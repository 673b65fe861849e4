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
