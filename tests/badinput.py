"""A hostile, messy collection written on demand (some cases are too big to keep in git)."""

from __future__ import annotations

import os
from pathlib import Path

XSS_TITLE = '<script>alert("t")</script><img src=x onerror=alert(1)>'


def make_bad_collection(root: Path) -> dict[str, tuple[str, int] | None]:
    """Write every bad-input case under root; returns {file: (expected diagnostic code, line) or None}."""
    root.mkdir(parents=True, exist_ok=True)
    expected: dict[str, tuple[str, int] | None] = {}

    def put(name: str, data: str | bytes, code: tuple[str, int] | None = None) -> None:
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data.encode("utf-8") if isinstance(data, str) else data)
        expected[name] = code

    put("good.md", "---\ntitle: Good note\n---\nA fine note linking [[Other good]] and [[good]] itself.\n")
    put("Other good.md", "Links back to [[Good note]] (a cycle).\n")
    put("malformed.md", "---\ntitle: [oops\n---\nbody\n", ("front-matter", 2))
    put("fm-list.md", "---\n- a\n- b\n---\nbody\n", ("front-matter", 2))
    put("fm-scalar.md", "---\njust a string\n---\nbody\n", ("front-matter", 2))
    put("wrong-types.md", "---\ndate: banana\n---\nbody\n", ("front-matter-type", 2))
    put("wrong-topics.md", "---\ntopics: 5\n---\nbody\n", ("front-matter-type", 2))
    put("binary.md", b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR", ("binary-file", 1))
    put("image.md", bytes(range(256)) * 4, ("binary-file", 1))
    put("latin1.md", "caf\xe9 au lait\n".encode("latin-1"), ("encoding", 1))
    put("utf16.md", "---\ntitle: Sixteen\n---\nwide\n".encode("utf-16"), ("encoding", 1))
    put("bom.md", "\ufeff---\ntitle: With BOM\n---\nfine\n")
    put("empty.md", "", ("empty-file", 1))
    put("crlf.md", "---\r\ntitle: Windows\r\n---\r\nline one\r\nline two [[nowhere]]\r\n", ("dangling-link", 5))
    put("huge.md", "x" * (9 * 1024 * 1024), ("too-large", 1))
    put("many-links.md", " ".join(f"[[target {i % 50}]]" for i in range(100_000)) + "\n", ("dangling-link", 1))
    put("long-line.md", ("word " * 200_000) + "\n")
    put("nested.md", "".join("  " * i + "- item\n" for i in range(200)) + ">" * 500 + " deep quote\n")
    put("dup-a/Same.md", "---\ntitle: Duplicate\naliases: [Twin]\n---\na\n", ("duplicate-title", 1))
    put("dup-b/Same.md", "---\ntitle: Duplicate\naliases: [Twin]\n---\nb\n", ("duplicate-title", 1))
    put("self.md", "I link to [[self]] and [[#Top]].\n\n# Top\n")
    put("name with spaces #1 %20 ?.md", "odd name\n")
    put("ünïcødé 🎉.md", "unicode name linking [odd](name%20with%20spaces%20%231%20%2520%20%3F.md)\n")
    put("Case.md", "upper\n")
    put("sub/case.md", "lower\n")
    put("escape.md", "[[../../etc/passwd]] and [x](../../../secret.md)\n", ("outside-link", 1))
    put(
        "xss.md",
        f"---\ntitle: '{XSS_TITLE}'\ntags: ['<b>bold</b>', 'x\" onmouseover=\"alert(1)']\naliases: ['</script><script>alert(2)</script>']\n---\n"
        "Body <script>alert(3)</script> and <img src=x onerror=alert(4)>.\n\n"
        "[click](javascript:alert(5)) [data](data:text/html,<script>alert(6)</script>) [[good|<i>shown</i>]]\n",
    )
    # symlinks: a loop, and one pointing outside the notes folder
    outside = root.parent / "outside-secret"
    outside.mkdir(exist_ok=True)
    (outside / "secret.md").write_text("SECRET CONTENT must never be published\n")
    os.symlink(outside, root / "link-out")
    (root / "loop").mkdir()
    os.symlink(root / "loop", root / "loop" / "again")
    return expected
