"""Shared fixtures: the sample collection, fixture vaults, and the fake embedder for fast tests."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
FIXTURES = Path(__file__).resolve().parent / "fixtures"


@pytest.fixture
def vault(tmp_path: Path) -> Path:
    """A private copy of the hand-written vault (duplicate names, missing links, isolated notes)."""
    target = tmp_path / "vault"
    shutil.copytree(FIXTURES / "vault", target)
    return target


def write(root: Path, name: str, text: str | bytes) -> Path:
    path = root / name
    path.parent.mkdir(parents=True, exist_ok=True)
    if isinstance(text, bytes):
        path.write_bytes(text)
    else:
        path.write_text(text, encoding="utf-8")
    return path


class FakeFactory:
    """A model factory for fast tests: deterministic vectors, and it records whether it was used."""

    def __init__(self, dim: int = 64) -> None:
        from notegraph.embed import FakeEmbedder

        self.embedder = FakeEmbedder(dim)
        self.model_id = self.embedder.model_id
        self.loads = 0

    def __call__(self):  # noqa: ANN204
        self.loads += 1
        return self.embedder
