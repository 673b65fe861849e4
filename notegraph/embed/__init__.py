"""The embedding stage: Embedder protocol, fake and sentence-transformers backends, SQLite cache.

Importing this package is cheap: torch and sentence-transformers are imported only inside
:func:`load_embedder`, so commands that hit a warm cache never load them.
"""

from notegraph.embed.cache import EmbeddingCache, EmbedMemory
from notegraph.embed.fake import FakeEmbedder
from notegraph.embed.protocol import Embedder
from notegraph.embed.st import (
    BUNDLED_SHA256,
    DEFAULT_MODEL_ID,
    DEFAULT_NAME,
    SentenceTransformerEmbedder,
    load_embedder,
    model_id_for,
    verify_bundled,
)
from notegraph.embed.stage import Embeddings, embed_notes
from notegraph.embed.text import note_chunks, text_hash

__all__ = [
    "BUNDLED_SHA256",
    "DEFAULT_MODEL_ID",
    "DEFAULT_NAME",
    "Embedder",
    "Embeddings",
    "EmbeddingCache",
    "EmbedMemory",
    "FakeEmbedder",
    "SentenceTransformerEmbedder",
    "embed_notes",
    "load_embedder",
    "model_id_for",
    "note_chunks",
    "text_hash",
    "verify_bundled",
]
