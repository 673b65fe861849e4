"""Browser figures for built sites: time until a note's concept map is drawn, and until the full graph
is drawn and answers input, in Debian's Chromium driven by Playwright (never `playwright install`).

    python benchmarks/browser.py [SITE ...] [--pages 8]

SITE defaults to the sites benchmarks/run.py builds (/tmp/notegraph-bench/fake-{1000,5000}/site).
Each page is loaded in a fresh page over a local HTTP server, cache warm after the first load (as a
reader browsing the site has it). Times are milliseconds since navigation start (performance.now()):
  map drawn     first frame of the note page's concept map (vis-network's first afterDrawing)
  graph drawn   first frame of graph.html's full graph
  graph input   from that first frame until a zoom (mouse wheel) has been drawn: interactive
Targets (issue #7): map <= 500 ms; full graph interactive <= 2,000 ms at 5,000 notes.
"""

from __future__ import annotations

import argparse
import functools
import http.server
import statistics
import sys
import threading
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "tests"))
from browser_util import CHROMIUM_ARGS, NETWORK_HOOK, find_chromium  # noqa: E402  (the tests' own hook)

DEFAULT_SITES = [Path(f"/tmp/notegraph-bench/fake-{n}/site") for n in (1000, 5000)]


def serve(root: Path) -> tuple[http.server.ThreadingHTTPServer, str]:
    handler = functools.partial(_Quiet, directory=str(root))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server, f"http://127.0.0.1:{server.server_address[1]}/"


class _Quiet(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: object) -> None:  # noqa: A002
        pass


def measure(site: Path, pages: int, browser: object) -> dict[str, object]:
    server, base = serve(site)
    notes = sorted((site / "notes").glob("*.html"))
    with_map = [p for p in notes if (site / "assets" / "hood" / f"{p.stem}.js").is_file()]
    step = max(1, len(with_map) // pages)
    chosen = with_map[::step][:pages]
    context = browser.new_context(viewport={"width": 1280, "height": 900})  # type: ignore[attr-defined]
    context.add_init_script(NETWORK_HOOK)
    map_ms: list[float] = []
    try:
        for i, path in enumerate([chosen[0], *chosen]):  # the first load warms the cache and is dropped
            page = context.new_page()
            page.goto(base + f"notes/{path.name}")
            page.wait_for_function("() => window.__ngDrawnAt('ng-map-canvas') !== null", timeout=30000)
            if i:
                map_ms.append(page.evaluate("() => window.__ngDrawnAt('ng-map-canvas')"))
            page.close()
        graph_ms: list[float] = []
        input_ms: list[float] = []
        for i in range(3):
            page = context.new_page()
            page.goto(base + "graph.html")
            page.wait_for_function("() => window.__ngDrawnAt('ng-graph-canvas') !== null", timeout=60000)
            drawn = page.evaluate("() => window.__ngDrawnAt('ng-graph-canvas')")
            page.evaluate(
                """() => { const n = window.__ngNetwork('ng-graph-canvas', 'graph');
                           window.__ngRedrawn = null;
                           n.once('afterDrawing', () => { window.__ngRedrawn = performance.now(); }); }"""
            )
            box = page.locator("#ng-graph-canvas").bounding_box()
            page.mouse.move(box["x"] + box["width"] / 2, box["y"] + box["height"] / 2)
            page.mouse.wheel(0, -240)
            page.wait_for_function("() => window.__ngRedrawn !== null", timeout=60000)
            answered = page.evaluate("() => window.__ngRedrawn")
            if i:
                graph_ms.append(drawn)
                input_ms.append(answered)
            page.close()
    finally:
        context.close()
        server.shutdown()
    notes_count = len(notes)
    return {
        "site": str(site),
        "notes": notes_count,
        "map_drawn_ms": statistics.median(map_ms),
        "map_drawn_max_ms": max(map_ms),
        "graph_drawn_ms": statistics.median(graph_ms),
        "graph_interactive_ms": statistics.median(input_ms),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("sites", nargs="*", type=Path, default=DEFAULT_SITES)
    parser.add_argument("--pages", type=int, default=8, help="note pages timed per site")
    args = parser.parse_args(argv)
    chromium = find_chromium()
    if chromium is None:
        print("no Chromium at /usr/bin/chromium (apt-get install -y chromium)")
        return 1
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=chromium, args=CHROMIUM_ARGS)
        try:
            print(f"{'notes':>6} {'map drawn (median / max)':>26} {'graph drawn':>12} {'graph interactive':>18}")
            for site in args.sites:
                if not (site / "graph.html").is_file():
                    print(f"{site}: not a built site (run benchmarks/run.py first)")
                    continue
                r = measure(site, args.pages, browser)
                print(
                    f"{r['notes']:>6} {r['map_drawn_ms']:>15.0f} / {r['map_drawn_max_ms']:>6.0f} ms "
                    f"{r['graph_drawn_ms']:>9.0f} ms {r['graph_interactive_ms']:>15.0f} ms"
                )
        finally:
            browser.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
