"""Found in the sources against rendered on the pages, for a vault and the site built from it.

    python benchmarks/fidelity.py NOTES_DIR SITE_DIR

The sources are counted with plain regular expressions, outside code fences (not with notegraph's own
parser, so a parser bug cannot hide itself); the pages are parsed as HTML. Counted per note and summed:
image embeds (``![[x.png]]`` and ``![alt](x.png)``, local and remote), callouts, display math blocks,
inline math, mermaid blocks, note embeds on a line of their own, and headings. A note whose page is
missing counts as nothing rendered.
"""

from __future__ import annotations

import argparse
import re
import sys
from pathlib import Path

from bs4 import BeautifulSoup

IMAGE_EXT = r"(?:png|jpe?g|gif|svg|webp|bmp|avif)"
WIKI_IMAGE = re.compile(rf"!\[\[[^\]|#]+\.{IMAGE_EXT}(?:\|[^\]]*)?\]\]", re.I)
MD_IMAGE = re.compile(r"!\[[^\]]*\]\(([^)\s]+)(?:\s+\"[^\"]*\")?\)")
CALLOUT = re.compile(r"^\s*(?:>\s*)+\[![^\]\s]+\]", re.M)
DISPLAY_MATH = re.compile(r"^\s*\$\$", re.M)
INLINE_MATH = re.compile(r"(?<![\\$\d])\$(?=[^\s$])([^$\n]*?[^\s\\$])\$(?!\d)")
NOTE_EMBED = re.compile(r"^\s*!\[\[([^\]]+)\]\]\s*$", re.M)
HEADING = re.compile(r"^#{1,6}\s+\S", re.M)
FENCE = re.compile(r"^( {0,3})(`{3,}|~{3,})(.*)$")
FRONT = re.compile(r"\A---\n.*?\n(?:---|\.\.\.)\n", re.S)
INLINE_CODE = re.compile(r"`+[^`\n]*`+")


def _prose_and_fences(text: str) -> tuple[str, list[str]]:
    """The text outside fenced code, and each fence's info string."""
    prose, infos = [], []
    fence: str | None = None
    for line in text.splitlines():
        match = FENCE.match(line)
        if fence is None and match:
            fence = match.group(2)
            infos.append(match.group(3).strip().lower())
        elif fence is not None and match and match.group(2)[0] == fence[0] and len(match.group(2)) >= len(fence) and not match.group(3).strip():
            fence = None
        elif fence is None:
            prose.append(line)
    return "\n".join(prose), infos


def count_source(text: str) -> dict[str, int]:
    text = FRONT.sub("", text.replace("\r\n", "\n"))
    prose, infos = _prose_and_fences(text)
    plain = INLINE_CODE.sub("", prose)
    embeds = [m.group(1) for m in NOTE_EMBED.finditer(plain)]
    md_images = [m.group(1) for m in MD_IMAGE.finditer(plain) if re.search(rf"\.{IMAGE_EXT}(?:[?#].*)?$", m.group(1), re.I)]
    display = len(DISPLAY_MATH.findall(plain))
    return {
        "image embeds": len(WIKI_IMAGE.findall(plain)) + len(md_images),
        "callouts": len(CALLOUT.findall(plain)),
        "display math": display // 2,
        "inline math": len(INLINE_MATH.findall(DISPLAY_MATH.sub("", plain))),
        "mermaid": sum(1 for info in infos if info.split(maxsplit=1)[:1] == ["mermaid"]),
        "transclusions": sum(1 for e in embeds if not re.search(rf"\.{IMAGE_EXT}(?:\|.*)?$|\.pdf$", e, re.I)),
        "headings": len(HEADING.findall(plain)),
    }


def count_page(html: str) -> dict[str, int]:
    soup = BeautifulSoup(html, "lxml")
    body = soup.select_one(".note-body")
    header = soup.select_one(".note-head")
    parts = [p for p in (header, body) if p is not None]
    own = [el for part in parts for el in part.find_all(True) if not el.find_parent(class_="transclusion")]

    def having(pred) -> int:  # type: ignore[no-untyped-def]
        return sum(1 for el in own if pred(el))

    classes = lambda el: el.get("class") or []  # noqa: E731
    return {
        "image embeds": having(lambda el: el.name == "img" or "image-link" in classes(el) or "attachment-missing" in classes(el)),
        "callouts": having(lambda el: "callout" in classes(el)),
        "display math": having(lambda el: el.name == "math" and el.get("display") == "block"),
        "inline math": having(lambda el: el.name == "math" and el.get("display") != "block"),
        "mermaid": having(lambda el: "mermaid-diagram" in classes(el)),
        "transclusions": having(lambda el: "transclusion" in classes(el)),
        # the page's own h1 stands for a heading the note opened with when it repeats the title
        "headings": having(lambda el: el.name in ("h2", "h3", "h4", "h5", "h6") and el.find_parent(class_="note-body") is not None),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("notes", type=Path)
    parser.add_argument("site", type=Path)
    args = parser.parse_args(argv)
    from notegraph.config import load_settings
    from notegraph.pipeline import load
    from notegraph.render.slugs import assign_slugs

    collection = load(load_settings(args.notes), use_cache=False)
    slugs = assign_slugs(collection.notes)
    found: dict[str, int] = {}
    shown: dict[str, int] = {}
    short: list[str] = []
    for note_id, note in sorted(collection.notes.items()):
        source = count_source((args.notes / note.path).read_text(encoding="utf-8", errors="replace"))
        page = args.site / "notes" / f"{slugs[note_id]}.html"
        rendered = count_page(page.read_text(encoding="utf-8")) if page.is_file() else dict.fromkeys(source, 0)
        if note.title.strip().lower() == (note.headings[0].strip().lower() if note.headings else None):
            rendered["headings"] += 1  # shown as the page's h1
        for key, value in source.items():
            found[key] = found.get(key, 0) + value
            shown[key] = shown.get(key, 0) + min(value, rendered[key])
            if rendered[key] < value:
                short.append(f"{note.path}: {key} {rendered[key]} of {value}")
    print(f"{'':16} {'found':>7} {'rendered':>9}")
    for key in found:
        print(f"{key:16} {found[key]:>7} {shown[key]:>9}")
    for line in short[:40]:
        print("  short:", line)
    return 0


if __name__ == "__main__":
    sys.exit(main())
