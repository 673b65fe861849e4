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
