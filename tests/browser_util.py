"""Real-browser test helpers: find Debian's Chromium (never `playwright install`), watch a page for
requests that leave the site, console errors and dialogs, reach the pages' vis networks, run axe-core."""

from __future__ import annotations

import json
import os
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parent.parent
ARTIFACTS = ROOT / "artifacts"
AXE_JS = ROOT / ".cache" / "axe" / "node_modules" / "axe-core" / "axe.min.js"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-quic",
]


def unavailable(reason: str) -> None:
    """Skip with a one-line reason; in CI (CI=true) a missing browser or tool fails instead."""
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(f"{reason} (CI=true: browser tests must run)", pytrace=False)
    pytest.skip(reason)


def find_chromium() -> str | None:
    for candidate in ("/usr/bin/chromium", shutil.which("chromium"), shutil.which("chromium-browser")):
        if candidate and Path(candidate).is_file() and os.access(candidate, os.X_OK):
            return candidate
    return None


def chromium_or_skip() -> str:
    path = find_chromium()
    if path is None:
        unavailable("no Chromium at /usr/bin/chromium (apt-get install -y chromium)")
    assert path is not None
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        unavailable("the playwright package is not installed (pip install -e '.[test]')")
    return path


def axe_or_skip() -> Path:
    if not AXE_JS.is_file():
        unavailable(f"axe-core is not installed at {AXE_JS} (npm install --prefix .cache/axe axe-core@4)")
    return AXE_JS


# Every vis.Network the page creates, whichever script creates it: the renderer keeps its networks in
# closures, so the test wraps the constructor before vis-network.min.js runs (its UMD wrapper does
# `window.vis = window.vis || {}` and then `vis.Network = ...`, both of which land in these setters).
# A network the page exposes itself (window.NG.networks.map / .graph) is preferred when there is one.
NETWORK_HOOK = """
(function () {
  var found = [];
  var store;
  Object.defineProperty(window, "vis", {
    configurable: true,
    get: function () { return store; },
    set: function (value) {
      store = value;
      if (!value || typeof value !== "object") { return; }
      var Real;
      var Network = function (container, data, options) {
        var network = new Real(container, data, options);
        var entry = { container: container, network: network, drawn: null };
        found.push(entry);
        // when it was first drawn (ms since navigation start): the browser benchmark reads it
        network.once("afterDrawing", function () { entry.drawn = performance.now(); });
        return network;
      };
      Object.defineProperty(value, "Network", {
        configurable: true,
        enumerable: true,
        get: function () { return Real && Network; },
        set: function (v) { Real = v; }
      });
    }
  });
  window.__ngDrawnAt = function (containerId) {
    for (var i = found.length - 1; i >= 0; i--) {
      if (found[i].container && found[i].container.id === containerId) { return found[i].drawn; }
    }
    return null;
  };
  window.__ngNetwork = function (containerId, name) {
    var own = window.NG && window.NG.networks && window.NG.networks[name];
    if (own) { return own; }
    for (var i = found.length - 1; i >= 0; i--) {
      if (found[i].container && found[i].container.id === containerId) { return found[i].network; }
    }
    return null;
  };
})();
"""

MAP = "window.__ngNetwork('ng-map-canvas', 'map')"
GRAPH = "window.__ngNetwork('ng-graph-canvas', 'graph')"


@dataclass
class Watch:
    """Everything a page did that it should not: requests outside ``allowed``, console errors, uncaught
    exceptions, dialogs (a dialog means some payload ran: it is dismissed and recorded)."""

    allowed: tuple[str, ...]
    requests: list[str] = field(default_factory=list)
    outside: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    dialogs: list[str] = field(default_factory=list)

    def attach(self, page: Any) -> None:
        page.on("request", self._request)
        page.on("console", lambda m: self.errors.append(f"console: {m.text} ({m.location})") if m.type == "error" else None)
        page.on("pageerror", lambda e: self.errors.append(f"pageerror: {e}"))
        page.on("dialog", self._dialog)

    def _request(self, request: Any) -> None:
        url = request.url
        self.requests.append(url)
        if not url.startswith(self.allowed):
            self.outside.append(url)

    def _dialog(self, dialog: Any) -> None:
        self.dialogs.append(f"{dialog.type}: {dialog.message}")
        dialog.dismiss()

    def problems(self) -> list[str]:
        return [f"request outside the site: {u}" for u in self.outside] + self.errors + [f"dialog: {d}" for d in self.dialogs]

    def assert_clean(self) -> None:
        problems = self.problems()
        assert not problems, "\n".join(problems)


def js_payload(path: Path) -> list[Any]:
    """The arguments of a ``window.NG_X(...);`` data file."""
    text = path.read_text(encoding="utf-8").strip()
    start = text.index("(")
    end = text.rindex(")")
    return list(json.loads(f"[{text[start + 1 : end]}]"))


def run_axe(page: Any, axe: Path) -> list[dict[str, Any]]:
    """axe-core's violations of impact serious or critical. The page's CSP forbids the inline script
    that add_script_tag writes, so the page must be open in a context made with bypass_csp=True."""
    page.add_script_tag(path=str(axe))
    # preload fetches the stylesheets again with XHR, which file:// refuses (and logs as errors)
    result = page.evaluate("() => axe.run(document, { resultTypes: ['violations'], preload: false })")
    return [v for v in result["violations"] if v.get("impact") in ("serious", "critical")]


def describe_violations(where: str, violations: list[dict[str, Any]]) -> str:
    lines = []
    for v in violations:
        lines.append(f"{where}: [{v['impact']}] {v['id']}: {v['help']} ({v['helpUrl']})")
        for node in v["nodes"][:8]:
            summary = " ".join(str(node.get("failureSummary", "")).split())
            lines.append(f"    {', '.join(map(str, node['target']))}: {summary[:300]}")
        if len(v["nodes"]) > 8:
            lines.append(f"    ... and {len(v['nodes']) - 8} more")
    return "\n".join(lines)


def wait_for_network(page: Any, which: str, timeout: float = 15_000) -> None:
    page.wait_for_function(f"() => {{ var n = {which}; return n && n.body.data.nodes.length > 0; }}", timeout=timeout)


def click_node(page: Any, which: str, node_id: str, container: str, double: bool = False) -> None:
    """A real mouse click at the node's place on the canvas (canvasToDOM gives container coordinates)."""
    page.locator(container).scroll_into_view_if_needed()
    point = page.evaluate(
        f"""([id, sel]) => {{
            var n = {which};
            var p = n.canvasToDOM(n.getPositions([id])[id]);
            var box = document.querySelector(sel).getBoundingClientRect();
            return {{ x: box.left + p.x, y: box.top + p.y, w: box.width, h: box.height, px: p.x, py: p.y }};
        }}""",
        [node_id, container],
    )
    assert 0 <= point["px"] <= point["w"] and 0 <= point["py"] <= point["h"], f"node {node_id} is off the canvas: {point}"
    (page.mouse.dblclick if double else page.mouse.click)(point["x"], point["y"])

