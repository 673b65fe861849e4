"""Vendor the site's browser libraries from the npm registry into notegraph/render/static/vendor/.

    python scripts/vendor.py

For each pinned entry in PACKAGES it runs the ordinary npm client (`npm pack NAME@VERSION`, which checks
the tarball against the registry's integrity hash) into a temporary folder, reads the chosen built files
and the licence straight out of the tarball (nothing is unpacked to disk, so no path in the tarball can
escape), writes them into vendor/, and records what it wrote in vendor/VENDORED.json: npm name, version,
the tarball's integrity, every written file with its sha256, and the licence file. The site loads these
copies from its own assets, never from a CDN. Standard library only; the only host contacted is whatever
registry npm is configured for.

To upgrade: change a version below, run the script, look at the diff of VENDORED.json, run
`python -m pytest -q tests/test_vendor.py` (its browser test draws a diagram from file:// under the
site's CSP), and commit vendor/ together with the new VENDORED.json.
"""

from __future__ import annotations

import hashlib
import json
import re
import shutil
import subprocess
import sys
import tarfile
import tempfile
import xml.etree.ElementTree as ET
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
VENDOR = ROOT / "notegraph" / "render" / "static" / "vendor"
MANIFEST = VENDOR / "VENDORED.json"

# -- the pinned table --------------------------------------------------------------------------------------

# mermaid 12.4.0 is the newest release (checked against `npm view mermaid versions`) and it still ships
# dist/mermaid.min.js as a single self-contained esbuild IIFE: it ends with
# `globalThis["mermaid"] = ...default`, has no dynamic `import(`, no chunk URLs and no CDN addresses (the
# separate dist/chunks/ folder belongs to the ESM build, mermaid.esm.min.mjs, which lazy-loads its diagram
# types and so cannot work from a plain <script src> on a file:// page). check_mermaid_bundle() below
# refuses a future version whose min.js stops being self-contained; if that happens, pin the newest
# version that passes it and say why here. The bundle is ~5.5 MiB; the site loads it only on pages that
# have a diagram. THIRD_PARTY_NOTICES ships with the package and, by its own text, covers the bundled
# builds, so it is vendored beside the licence.
MERMAID = ("mermaid", "12.4.0")

# Obsidian's callout icons are Lucide icons. lucide-static renames icons now and then and keeps the old
# name as an alias file (help-circle -> circle-help -> circle-question-mark, alert-triangle ->
# triangle-alert): each key lists the names to try, the first one present wins. Careful with "todo":
# Obsidian's icon is the old `check-circle-2` (a circle with a small tick), which Lucide renamed to
# `circle-check`; the alias `check-circle` is a different icon (circle-check-big), so it is not listed.
LUCIDE = ("lucide-static", "1.87.0")

# One OpenType math font for the MathML the build writes (docs/math.md): Chromium's MathML Core needs a
# font with a MATH table to stretch brackets and place limits, and few systems have one. OFL-1.1.
STIX_MATH = ("@fontsource/stix-two-math", "5.3.0")
CALLOUT_ICONS: dict[str, tuple[str, ...]] = {
    "note": ("pencil",),
    "abstract": ("clipboard-list",),
    "info": ("info",),
    "todo": ("circle-check", "check-circle-2"),
    "tip": ("flame",),
    "success": ("check",),
    "question": ("circle-help", "circle-question-mark", "help-circle"),
    "warning": ("triangle-alert", "alert-triangle"),
    "failure": ("x",),
    "danger": ("zap",),
    "bug": ("bug",),
    "example": ("list",),
    "quote": ("quote",),
}


# -- checks and transforms ---------------------------------------------------------------------------------


def check_mermaid_bundle(data: bytes) -> None:
    """Refuse a mermaid.min.js that would not work from a plain <script src> on a file:// page."""
    text = data.decode("utf-8")
    problems = []
    if not re.search(r"""globalThis\[["']mermaid["']\]\s*=|window\.mermaid\s*=""", text[-2000:]):
        problems.append("it does not end by defining the global `mermaid`")
    if re.search(r"\bimport\s*\(", text):
        problems.append("it contains a dynamic import( (it lazy-loads chunks)")
    if re.search(r"""["'][^"'\s]*chunks/[^"'\s]*\.m?js["']""", text):
        problems.append("it names chunk files")
    for host in ("cdn.jsdelivr.net", "unpkg.com", "cdnjs.cloudflare.com", "fonts.googleapis.com"):
        if host in text:
            problems.append(f"it names {host}")
    if problems:
        raise SystemExit("mermaid.min.js is not a self-contained browser bundle: " + "; ".join(problems))


SVG_NS = "http://www.w3.org/2000/svg"
SVG_SHAPES = {"path", "circle", "rect", "line", "polyline", "polygon", "ellipse", "g"}
SHAPE_ATTRIBUTES = {
    "d", "cx", "cy", "r", "rx", "ry", "x", "y", "x1", "y1", "x2", "y2", "width", "height", "points",
    "transform", "fill", "stroke", "stroke-width", "stroke-linecap", "stroke-linejoin", "opacity",
}  # fmt: skip
ROOT_ATTRIBUTES = ("viewBox", "fill", "stroke", "stroke-width", "stroke-linecap", "stroke-linejoin")


def _local(name: str) -> str:
    if name.startswith("{"):
        namespace, _, local = name[1:].partition("}")
        if namespace != SVG_NS:
            raise ValueError(f"unexpected namespace {namespace!r}")
        return local
    return name


def _attrs(pairs: list[tuple[str, str]]) -> str:
    return "".join(f' {k}="{_escape(v)}"' for k, v in pairs)


def _escape(value: str) -> str:
    return value.replace("&", "&amp;").replace('"', "&quot;").replace("<", "&lt;").replace(">", "&gt;")


def _shape(element: ET.Element) -> str:
    tag = _local(element.tag)
    if tag not in SVG_SHAPES:
        raise ValueError(f"unexpected element <{tag}>")
    if (element.text or "").strip() or (element.tail or "").strip():
        raise ValueError(f"unexpected text in <{tag}>")
    pairs = []
    for name, value in element.attrib.items():
        name = _local(name)
        if name not in SHAPE_ATTRIBUTES:
            raise ValueError(f"unexpected attribute {name!r} on <{tag}>")
        pairs.append((name, value))
    children = "".join(_shape(child) for child in element)
    return f"<{tag}{_attrs(pairs)}>{children}</{tag}>" if children else f"<{tag}{_attrs(pairs)}/>"


def minify_icon(svg: bytes) -> str:
    """One line of inline SVG: no comments, no XML declaration, no class; viewBox and the stroke attributes
    kept; 16x16, hidden from assistive technology and out of the tab order. Only plain shapes with
    geometry and paint attributes pass: anything else (script, foreignObject, on* handlers, href) fails the
    run instead of reaching the site."""
    root = ET.fromstring(svg)  # drops comments and the XML declaration
    if _local(root.tag) != "svg":
        raise ValueError("not an <svg>")
    for name in root.attrib:
        if _local(name) not in (*ROOT_ATTRIBUTES, "class", "width", "height"):
            raise ValueError(f"unexpected attribute {name!r} on <svg>")
    pairs = [("xmlns", SVG_NS), ("width", "16"), ("height", "16")]
    pairs += [(name, root.attrib[name]) for name in ROOT_ATTRIBUTES if name in root.attrib]
    if "viewBox" not in root.attrib:
        raise ValueError("no viewBox")
    pairs += [("aria-hidden", "true"), ("focusable", "false")]
    children = "".join(_shape(child) for child in root)
    if not children:
        raise ValueError("no shapes")
    return f"<svg{_attrs(pairs)}>{children}</svg>"


# -- the entries -------------------------------------------------------------------------------------------


@dataclass
class Package:
    """One npm tarball being read: what the entry writes goes through write()."""

    name: str
    version: str
    tar: tarfile.TarFile
    files: list[dict[str, object]] = field(default_factory=list)
    extra: dict[str, object] = field(default_factory=dict)

    def member(self, path: str) -> bytes:
        try:
            info = self.tar.getmember(f"package/{path}")
        except KeyError:
            raise FileNotFoundError(f"{self.name}@{self.version} has no {path}") from None
        handle = self.tar.extractfile(info) if info.isfile() else None
        if handle is None:
            raise FileNotFoundError(f"{self.name}@{self.version}: {path} is not a regular file")
        return handle.read()

    def has(self, path: str) -> bool:
        try:
            return self.tar.getmember(f"package/{path}").isfile()
        except KeyError:
            return False

    def write(self, name: str, data: bytes, source: str | list[str]) -> None:
        (VENDOR / name).write_bytes(data)
        self.files.append(
            {"file": name, "from": source, "bytes": len(data), "sha256": hashlib.sha256(data).hexdigest()}
        )


def vendor_mermaid(pkg: Package) -> str:
    bundle = pkg.member("dist/mermaid.min.js")
    check_mermaid_bundle(bundle)
    pkg.write("mermaid.min.js", bundle, "dist/mermaid.min.js")
    pkg.write("mermaid.LICENSE", pkg.member("LICENSE"), "LICENSE")
    if pkg.has("THIRD_PARTY_NOTICES"):
        pkg.write("mermaid.THIRD_PARTY_NOTICES", pkg.member("THIRD_PARTY_NOTICES"), "THIRD_PARTY_NOTICES")
    return "mermaid.LICENSE"


def vendor_lucide(pkg: Package) -> str:
    icons: dict[str, str] = {}
    sources: dict[str, str] = {}
    for key, names in CALLOUT_ICONS.items():
        found = next((f"icons/{n}.svg" for n in names if pkg.has(f"icons/{n}.svg")), None)
        if found is None:
            raise SystemExit(f"{pkg.name}@{pkg.version} has none of {', '.join(names)} (callout {key!r})")
        try:
            icons[key] = minify_icon(pkg.member(found))
        except (ValueError, ET.ParseError) as exc:
            raise SystemExit(f"{pkg.name}@{pkg.version} {found}: {exc}") from None
        sources[key] = found
    data = (json.dumps(icons, indent=2) + "\n").encode("utf-8")
    pkg.write("callout-icons.json", data, sorted(set(sources.values())))
    pkg.extra["icons"] = sources
    pkg.write("lucide.LICENSE", pkg.member("LICENSE"), "LICENSE")
    return "lucide.LICENSE"


def vendor_stix_math(pkg: Package) -> str:
    source = "files/stix-two-math-latin-400-normal.woff2"
    pkg.write("stix-two-math.woff2", pkg.member(source), source)
    pkg.write("stix-two-math.LICENSE", pkg.member("LICENSE"), "LICENSE")
    return "stix-two-math.LICENSE"


PACKAGES: list[tuple[tuple[str, str], Callable[[Package], str]]] = [
    (MERMAID, vendor_mermaid),
    (LUCIDE, vendor_lucide),
    (STIX_MATH, vendor_stix_math),
]


# -- npm ---------------------------------------------------------------------------------------------------


def npm_pack(name: str, version: str, into: Path) -> tuple[Path, str]:
    """The tarball of NAME@VERSION (npm verifies it against the registry's integrity) and its integrity."""
    npm = shutil.which("npm")
    if npm is None:
        raise SystemExit("npm is not on PATH (install Node.js 18 or later)")
    command = [
        npm,
        "pack",
        f"{name}@{version}",
        "--json",
        "--ignore-scripts",
        "--pack-destination",
        str(into),
    ]
    done = subprocess.run(command, cwd=into, capture_output=True, text=True)
    if done.returncode != 0:
        raise SystemExit(f"{' '.join(command[1:])} failed:\n{done.stderr.strip()}")
    (info,) = json.loads(done.stdout)
    if (info["name"], info["version"]) != (name, version):
        raise SystemExit(f"npm pack gave {info['name']}@{info['version']}, not {name}@{version}")
    return into / info["filename"], str(info["integrity"])


def main() -> int:
    VENDOR.mkdir(parents=True, exist_ok=True)
    previous: set[str] = set()
    if MANIFEST.is_file():
        old = json.loads(MANIFEST.read_text(encoding="utf-8"))
        previous = {f["file"] for p in old.get("packages", []) for f in p.get("files", [])}
    entries = []
    written: set[str] = set()
    with tempfile.TemporaryDirectory(prefix="notegraph-vendor-") as tmp:
        for (name, version), vendor in PACKAGES:
            tarball, integrity = npm_pack(name, version, Path(tmp))
            with tarfile.open(tarball, "r:gz") as tar:
                pkg = Package(name, version, tar)
                meta = json.loads(pkg.member("package.json"))
                if (meta.get("name"), meta.get("version")) != (name, version):
                    raise SystemExit(f"{tarball.name} holds {meta.get('name')}@{meta.get('version')}")
                licence = vendor(pkg)
            entries.append(
                {
                    "name": name,
                    "version": version,
                    "license": meta.get("license"),
                    "integrity": integrity,
                    "licence_file": licence,
                    "files": pkg.files,
                    **pkg.extra,
                }
            )
            for f in pkg.files:
                written.add(str(f["file"]))
                print(f"{name}@{version}: vendor/{f['file']} ({f['bytes']:,} bytes)")
    for stale in sorted(previous - written):
        (VENDOR / stale).unlink(missing_ok=True)
        print(f"removed vendor/{stale} (no longer vendored)")
    manifest = {
        "comment": "Written by scripts/vendor.py from the npm registry; do not edit by hand.",
        "packages": entries,
    }
    MANIFEST.write_text(json.dumps(manifest, indent=2) + "\n", encoding="utf-8")
    print(f"wrote {MANIFEST.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
