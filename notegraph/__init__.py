"""notegraph: research notes -> knowledge graph -> offline static site."""

__version__ = "0.1.0"
