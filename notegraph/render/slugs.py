"""Stable, URL-safe file names for notes, topics and heading anchors."""

from __future__ import annotations

import hashlib
import re
import unicodedata
from collections import defaultdict
from collections.abc import Iterable, Sequence

from notegraph.resolve import anchor_key  # how links match headings: one rule, in one place

__all__ = ["anchor_key", "assign_slugs", "heading_ids", "slugify"]

_NON_SLUG = re.compile(r"[^a-z0-9]+")
# names Windows refuses as files, whatever the extension
_RESERVED = frozenset(["con", "prn", "aux", "nul", *(f"com{i}" for i in range(10)), *(f"lpt{i}" for i in range(10))])
MAX_LEN = 80


def slugify(text: str, max_len: int = MAX_LEN) -> str:
    """ASCII letters, digits and single dashes; empty when nothing of the text survives."""
    folded = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode("ascii").lower()
    slug = _NON_SLUG.sub("-", folded).strip("-")
    if len(slug) > max_len:
        slug = slug[:max_len].rsplit("-", 1)[0] or slug[:max_len]
    return slug


def _short_hash(key: str) -> str:
    return hashlib.sha256(key.encode("utf-8")).hexdigest()[:8]


def assign_slugs(keys: Iterable[str], fallback: str = "note") -> dict[str, str]:
    """One slug per key, derived from the key alone unless two keys fold to the same slug.

    Colliding keys (``A b`` and ``a-b``, ``Café`` and ``cafe``) all get a hash of their exact key, so which
    one came first never decides who keeps the short name. Keys that fold to nothing get a hash too."""
    groups: defaultdict[str, list[str]] = defaultdict(list)
    for key in sorted(set(keys)):
        groups[slugify(key.replace("/", " "))].append(key)
    out: dict[str, str] = {}
    taken: set[str] = set()
    for base, members in sorted(groups.items()):
        if len(members) == 1 and base and base not in _RESERVED:
            out[members[0]] = base
            taken.add(base)
    for base, members in sorted(groups.items()):
        if len(members) == 1 and base and base not in _RESERVED:
            continue
        for key in members:
            slug = f"{base or fallback}-{_short_hash(key)}"
            n = 2
            while slug in taken:  # a hash collision among a handful of keys: vanishingly rare, still handled
                slug = f"{base or fallback}-{_short_hash(f'{key}#{n}')}"
                n += 1
            out[key] = slug
            taken.add(slug)
    return out


def heading_ids(headings: Sequence[str]) -> list[str]:
    """Anchor ids for a note's headings in order: ``Some Heading`` -> ``some-heading``, repeats get ``-2``.

    Ids never start with ``ng-`` (the page's own ids) and never look like footnote ids."""
    seen: dict[str, int] = {}
    ids: list[str] = []
    for text in headings:
        base = slugify(text, 60) or "section"
        if base.startswith("ng-") or re.fullmatch(r"fn(ref)?\d+(-\d+)?|main", base):
            base = f"h-{base}"
        count = seen.get(base, 0) + 1
        seen[base] = count
        ids.append(base if count == 1 else f"{base}-{count}")
    return ids

