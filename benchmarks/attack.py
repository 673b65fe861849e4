"""Hostile and broken collections through the real CLI: tracebacks, hangs, writes outside, notes named.

    python benchmarks/attack.py [--limit 60] [--keep DIR]

Each case is a small collection with one hostile part, beside a good note and a published site. For
each, `notegraph check` and `notegraph build` run as child processes (killed after --limit seconds),
and the run counts: outputs holding a traceback; commands that hung; files written or changed outside
the notes folder and the site (a sentinel folder beside them, and the rest of the case folder); cases
whose problem is named with a file and a line; and failed builds after which the site is not byte for
byte the one before. The classes are those of issue 27; the cases are written here, not held out.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

Case = Callable[[Path], str | None]  # writes the hostile part under the notes folder; returns the file to be named


def _w(path: Path, data: str | bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data.encode() if isinstance(data, str) else data)


def _bomb(depth: int) -> str:
    rows = ['a0: &a0 ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]']
    rows += [f"a{i}: &a{i} [{','.join([f'*a{i - 1}'] * 9)}]" for i in range(1, depth)]
    return "---\n" + "\n".join(rows) + "\n---\nbody\n"


CASES: dict[str, Case] = {
    "invalid date": lambda n: (_w(n / "x.md", "---\ndate: 2026-02-30\n---\nx\n"), "x.md")[1],
    "date zero": lambda n: (_w(n / "x.md", "---\ncreated: 0000-01-01\n---\nx\n"), None)[1],  # kept as text
    "date hour 25": lambda n: (_w(n / "x.md", "---\nupdated: 2026-01-01 25:61:61\n---\nx\n"), None)[1],
    "huge integer": lambda n: (_w(n / "x.md", "---\nn: " + "9" * 5000 + "\n---\nx\n"), None)[1],
    "alias bomb": lambda n: (_w(n / "x.md", _bomb(9)), "x.md")[1],
    "recursive alias": lambda n: (_w(n / "x.md", "---\nr: &r [*r]\n---\nx\n"), "x.md")[1],
    "bad yaml": lambda n: (_w(n / "x.md", "---\ntitle: [oops\n---\nx\n"), "x.md")[1],
    "nul in body": lambda n: (_w(n / "x.md", b"y" * 9000 + b"\x00\n"), "x.md")[1],
    "nul in title": lambda n: (_w(n / "x.md", '---\ntitle: "a\\0b"\n---\nx\n'), "x.md")[1],
    "binary file": lambda n: (_w(n / "x.md", b"\x89PNG\x00\x00\x00"), "x.md")[1],
    "newline in name": lambda n: (_w(n / "ok\nok.md:1: error: forged.md", "[[nowhere]]\n"), "ok\\nok.md:1: error: forged.md")[1],
    "20,000 dangling": lambda n: (_w(n / "x.md", " ".join(f"[[m{i}]]" for i in range(20_000))), "x.md")[1],
    "1 MB of [[": lambda n: (_w(n / "x.md", "[[" * 500_000), None)[1],
    "1 MB of [": lambda n: (_w(n / "x.md", "[" * 1_000_000), None)[1],
    "nested brackets 1 MB": lambda n: (_w(n / "x.md", "[" * 500_000 + "]" * 500_000), None)[1],
    "too large": lambda n: (_w(n / "x.md", "x" * (9 * 1024 * 1024)), "x.md")[1],
    "sparse 4 GB": lambda n: (open(n / "x.md", "wb").truncate(4 << 30), "x.md")[1],
    "deep folders": lambda n: (_deep(n, 1000), None)[1],
    "cache outside": lambda n: (_w(n / "notegraph.toml", 'model = "fake/hash-64"\ncache = "../sentinel/cache.sqlite"\n'), "notegraph.toml")[1],
    "cache absolute": lambda n: (_w(n / "notegraph.toml", f'model = "fake/hash-64"\ncache = "{n.parent / "sentinel" / "x.sqlite"}"\n'), "notegraph.toml")[1],
    "link outside": lambda n: (_w(n / "x.md", "[[../../sentinel/keep]] [a](../../sentinel/keep.md)\n"), "x.md")[1],
    "symlink outside": lambda n: (os.symlink(n.parent / "sentinel", n / "out"), None)[1],
    "state: lock is a folder": lambda n: ((n / ".notegraph" / "build.lock").unlink(), (n / ".notegraph" / "build.lock" / "x").mkdir(parents=True), None)[2],
    "state: clusters is a folder": lambda n: ((n / ".notegraph" / "clusters.json").unlink(), (n / ".notegraph" / "clusters.json" / "x").mkdir(parents=True), None)[2],
    "state: query index is a link out": lambda n: ((n / ".notegraph" / "query.sqlite").unlink(), os.symlink(n.parent / "sentinel", n / ".notegraph" / "query.sqlite"), None)[2],
    "state: garbage caches": lambda n: ([(p.write_bytes(os.urandom(2000))) for p in (n / ".notegraph").glob("*.sqlite")], None)[1],
    "script in title": lambda n: (_w(n / "x.md", '---\ntitle: "<script>alert(1)</script>"\n---\n<img src=x onerror=alert(2)> [x](javascript:alert(3))\n'), None)[1],
    "math bomb": lambda n: (_w(n / "x.md", "$" + "{" * 5000 + "x" + "}" * 5000 + "$ and $\\href{javascript:alert(1)}{x}$\n"), None)[1],
    "transclusion cycle": lambda n: (_w(n / "x.md", "![[y]]\n"), _w(n / "y.md", "![[x]]\n"), None)[2],
    "unclosed fence and $$": lambda n: (_w(n / "x.md", "```\ncode\n\n$$\nx\n%% open\n"), None)[1],
}


def _deep(notes: Path, depth: int) -> None:
    path = str(notes)
    for _ in range(depth):
        path = os.path.join(path, "d")
        os.mkdir(path)
    Path(path, "deep.md").write_text("deep\n")


def _rm(path: Path) -> None:
    """Remove a case folder with rm -rf: deep trees included (Python's own walks recurse), and while
    the build's detached deletion of a replaced site may still be removing files in it."""
    time.sleep(0.5)
    subprocess.run(["rm", "-rf", str(path)], check=False)


def _digest(folder: Path) -> dict[str, str]:
    out = {}
    for root, _dirs, files in os.walk(folder):
        for name in files:
            path = Path(root, name)
            out[str(path.relative_to(folder))] = hashlib.sha256(path.read_bytes()).hexdigest()
    return out


def run_case(name: str, case: Case, base: Path, limit: float) -> dict[str, object]:
    notes, site, sentinel = base / "notes", base / "site", base / "sentinel"
    _w(notes / "good.md", "A good note about grounding, linking [[other]].\n")
    _w(notes / "other.md", "Another note.\n")
    _w(notes / "notegraph.toml", 'model = "fake/hash-64"\n')
    _w(sentinel / "keep.md", "precious\n")
    cli = [sys.executable, "-m", "notegraph"]
    subprocess.run([*cli, "build", str(notes), "--out", str(site), "-q"], capture_output=True, timeout=limit, check=True)
    before_site, before_sentinel = _digest(site), _digest(sentinel)
    named_file = case(notes)
    result: dict[str, object] = {"case": name, "traceback": False, "hung": False, "named": named_file is None, "site_ok": True}
    outputs = []
    for command in (["check", str(notes)], ["build", str(notes), "--out", str(site)]):
        started = time.perf_counter()
        try:
            done = subprocess.run([*cli, *command], capture_output=True, text=True, timeout=limit, errors="replace")
        except subprocess.TimeoutExpired:
            result["hung"] = True
            continue
        result[f"{command[0]}_s"] = round(time.perf_counter() - started, 2)
        outputs.append(done.stdout + done.stderr)
        if command[0] == "build" and done.returncode != 0 and _digest(site) != before_site:
            result["site_ok"] = False
    text = "\n".join(outputs)
    result["traceback"] = "Traceback" in text
    if named_file is not None:
        result["named"] = any(line.startswith(f"{named_file}:") or line.startswith(f"Error: {notes / named_file}") for line in text.splitlines())
    # besides the site, a build leaves only its detached deletion of the replaced site (.site.trash-*)
    others = sorted(p.name for p in base.iterdir() if not p.name.startswith(".site."))
    result["outside_writes"] = _digest(sentinel) != before_sentinel or others != ["notes", "sentinel", "site"]
    return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--limit", type=float, default=60.0, help="seconds a command may take before it counts as hung")
    parser.add_argument("--only", default="", help="run the cases whose name holds this text")
    args = parser.parse_args(argv)
    rows = []
    for name, case in CASES.items():
        if args.only and args.only not in name:
            continue
        base = Path(tempfile.mkdtemp(prefix="ng-attack-"))
        try:
            row = run_case(name, case, base, args.limit)
        finally:
            _rm(base)
        rows.append(row)
        flags = [k for k in ("traceback", "hung", "outside_writes") if row[k]] + [k for k in ("named", "site_ok") if not row[k]]
        print(f"{name:34} check {row.get('check_s', '-'):>6}s  build {row.get('build_s', '-'):>6}s  {'PROBLEM: ' + ', '.join(flags) if flags else 'ok'}", flush=True)
    print(
        f"\n{len(rows)} cases: {sum(bool(r['traceback']) for r in rows)} with a traceback, {sum(bool(r['hung']) for r in rows)} hung, "
        f"{sum(bool(r['outside_writes']) for r in rows)} wrote outside, {sum(not r['named'] for r in rows)} not named with file:line, "
        f"{sum(not r['site_ok'] for r in rows)} damaged the site"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
