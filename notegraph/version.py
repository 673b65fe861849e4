"""What "the same notegraph" means for caches of outputs: this package's files and the libraries that
shape results. Any change to either invalidates a stored build fingerprint."""

from __future__ import annotations

import hashlib
from functools import cache
from importlib import metadata
from pathlib import Path

PACKAGE = Path(__file__).resolve().parent
SUFFIXES = (".py", ".html", ".js", ".css", ".json")
# vendored browser libraries are named, with their sha256, in this file: hashing it stands for them all
# (mermaid alone is megabytes, read on every build otherwise)
VENDORED = "VENDORED.json"
LIBRARIES = ("markdown-it-py", "mdit-py-plugins", "nh3", "jinja2", "pyvis", "networkx", "numpy", "scipy", "usearch")


@cache
def code_version(root: Path = PACKAGE, libraries: tuple[str, ...] = LIBRARIES) -> str:
    """16 hex digits over every source, template and asset file under ``root`` and the library versions."""
    digest = hashlib.sha256(b"notegraph-code/1")
    for path in sorted(p for p in root.rglob("*") if p.is_file() and p.suffix in SUFFIXES and _own(p)):
        digest.update(path.relative_to(root).as_posix().encode() + b"\0")
        digest.update(path.read_bytes())
    for dist in libraries:
        try:
            digest.update(f"{dist}={metadata.version(dist)}".encode())
        except metadata.PackageNotFoundError:
            digest.update(f"{dist}=?".encode())
    return digest.hexdigest()[:16]


def _own(path: Path) -> bool:
    return "vendor" not in path.parts or path.name == VENDORED
