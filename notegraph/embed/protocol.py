"""The Embedder protocol: what the embedding stage needs from a model, and nothing more."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol, runtime_checkable

import numpy as np


@runtime_checkable
class Embedder(Protocol):
    """Turns texts into vectors.

    ``model_id`` is the cache key: two embedders with the same id must produce the same vectors, so it
    names the exact weights (not a friendly alias). ``encode`` returns L2-normalised float32 of shape
    ``(len(texts), dim)``, rows in the order of ``texts``; an empty input gives shape ``(0, dim)``.
    """

    model_id: str
    dim: int

    def encode(self, texts: Sequence[str]) -> np.ndarray: ...
