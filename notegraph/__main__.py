"""`python -m notegraph` runs the CLI."""

from notegraph.cli import entry

entry()
