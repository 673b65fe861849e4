"""Files -> Note: front matter, markdown-it tokens, wikilinks, importers."""

from notegraph.parse.collection import iter_note_files, read_notes
from notegraph.parse.note import parse_note

__all__ = ["iter_note_files", "parse_note", "read_notes"]
