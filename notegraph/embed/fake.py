"""FakeEmbedder: a deterministic, torch-free embedder for tests and dry runs."""

from __future__ import annotations

import hashlib
import re
from collections.abc import Sequence

import numpy as np

_WORD = re.compile(r"\w+", re.UNICODE)


class FakeEmbedder:
    """Hashing-trick bag of words: texts sharing words get a positive cosine, identical texts cosine 1.

    Every call's texts are appended to ``calls`` so a test can assert what was (not) embedded.
    blake2b rather than ``hash()`` because ``hash()`` is salted per process and vectors must be stable
    across runs for the cache to make sense.
    """

    def __init__(self, dim: int = 64) -> None:
        if dim < 1:
            raise ValueError(f"dim must be positive, got {dim}")
        self.dim = dim
        self.model_id = f"fake/hash-{dim}"
        self.calls: list[list[str]] = []

    def encode(self, texts: Sequence[str]) -> np.ndarray:
        texts = list(texts)
        self.calls.append(texts)
        out = np.zeros((len(texts), self.dim), dtype=np.float32)
        for row, text in enumerate(texts):
            for word in _WORD.findall(text.lower()):
                digest = hashlib.blake2b(word.encode("utf-8"), digest_size=8).digest()
                value = int.from_bytes(digest, "little")
                # The top bit picks the sign so that unrelated words cancel out rather than pile up.
                sign = 1.0 if value >> 63 else -1.0
                out[row, value % self.dim] += sign
        norms = np.linalg.norm(out, axis=1, keepdims=True)
        np.divide(out, norms, out=out, where=norms > 0)
        return out

    @property
    def embedded_texts(self) -> list[str]:
        """Every text encoded so far, flattened across calls."""
        return [text for call in self.calls for text in call]
