/* Draws the page's ```mermaid blocks with the vendored mermaid.min.js (loaded with `defer` before this).
   Page contract, one per block:
     <figure class="mermaid-diagram"><pre class="mermaid-source"><code>ESCAPED SOURCE</code></pre></figure>
   Each figure ends with data-state="drawn" (the SVG in a div.mermaid-svg, the source hidden) or
   data-state="error" (the source left visible, a p.mermaid-error saying why). Never a blank figure.
   Plain ES5 apart from the Promise that mermaid.render returns; no modules, no inline code (CSP). */
(function () {
  "use strict";

  var PREFIX = "Diagram could not be drawn: ";
  var counter = 0;

  function figures() {
    return Array.prototype.slice.call(document.querySelectorAll("figure.mermaid-diagram"));
  }

  function sourceOf(figure) {
    var code = figure.querySelector("pre.mermaid-source code") || figure.querySelector("pre.mermaid-source");
    return code ? code.textContent : "";
  }

  function isDark() {
    var theme = document.documentElement.getAttribute("data-theme");
    if (theme) {
      return theme === "dark";
    }
    return !!(window.matchMedia && window.matchMedia("(prefers-color-scheme: dark)").matches);
  }

  function messageOf(error) {
    var text = error && typeof error === "object" && error.message ? error.message : String(error);
    return text.replace(/^\s+|\s+$/g, "") || "unknown error";
  }

  function nextId() {
    var id;
    do {
      counter += 1;
      id = "ng-mermaid-" + counter;
    } while (document.getElementById(id) || document.getElementById("d" + id));
    return id;
  }

  // mermaid renders into temporary elements at the end of <body> (#d<id> wrapping an svg#<id>, or
  // iframe#i<id> in sandbox mode) and, on a syntax error, may leave them there with its "bomb" error
  // SVG inside. Remove whatever is left, except an svg#<id> that has already been moved into a figure.
  function removeLeftovers(id) {
    var ids = ["d" + id, "i" + id, id];
    for (var i = 0; i < ids.length; i++) {
      var node = document.getElementById(ids[i]);
      if (node && node.parentNode && !(node.closest && node.closest("figure.mermaid-diagram"))) {
        node.parentNode.removeChild(node);
      }
    }
  }

  function clearOld(figure) {
    var old = figure.querySelectorAll(".mermaid-svg, .mermaid-error");
    for (var i = 0; i < old.length; i++) {
      old[i].parentNode.removeChild(old[i]);
    }
  }

  function showError(figure, error) {
    clearOld(figure);
    var pre = figure.querySelector("pre.mermaid-source");
    if (pre) {
      pre.hidden = false;
    }
    var p = document.createElement("p");
    p.className = "mermaid-error";
    p.setAttribute("role", "note");
    p.textContent = PREFIX + messageOf(error);
    figure.appendChild(p);
    figure.setAttribute("data-state", "error");
  }

  function showSvg(figure, svg) {
    clearOld(figure);
    var holder = document.createElement("div");
    holder.className = "mermaid-svg";
    // mermaid's own output with securityLevel "strict": labels are sanitised by its DOMPurify, and
    // click bindings are not run (bindFunctions is deliberately not called)
    holder.innerHTML = svg;
    var pre = figure.querySelector("pre.mermaid-source");
    figure.insertBefore(holder, pre || figure.firstChild);
    if (pre) {
      pre.hidden = true;
    }
    // the drawing's natural width, for the stylesheet: it may shrink a wide diagram only down to a
    // readable size and scroll beyond that (mermaid itself gives the svg width=100% and max-width)
    var drawn = holder.querySelector("svg");
    var box = drawn && drawn.viewBox && drawn.viewBox.baseVal;
    if (box && box.width > 0) {
      holder.style.setProperty("--mermaid-width", Math.ceil(box.width) + "px");
    }
    figure.setAttribute("data-state", "drawn");
  }

  function drawOne(figure) {
    var id = nextId();
    var text = sourceOf(figure);
    var done = function (result) {
      removeLeftovers(id);
      var svg = result && typeof result.svg === "string" ? result.svg : "";
      if (svg.indexOf("<svg") === -1) {
        showError(figure, new Error("the diagram library returned no drawing"));
      } else {
        showSvg(figure, svg);
      }
    };
    var failed = function (error) {
      removeLeftovers(id);
      showError(figure, error);
    };
    if (!/\S/.test(text)) {
      failed(new Error("the diagram is empty"));
      return Promise.resolve();
    }
    try {
      return Promise.resolve(window.mermaid.render(id, text)).then(done, failed).then(null, failed);
    } catch (error) {
      failed(error);
      return Promise.resolve();
    }
  }

  function run() {
    var list = figures();
    if (!list.length) {
      return;
    }
    var mermaid = window.mermaid;
    if (!mermaid || typeof mermaid.render !== "function" || typeof mermaid.initialize !== "function") {
      for (var i = 0; i < list.length; i++) {
        showError(list[i], new Error("the diagram library (mermaid.min.js) did not load."));
      }
      return;
    }
    for (var j = 0; j < list.length; j++) {
      list[j].setAttribute("data-state", "drawing");
    }
    try {
      mermaid.initialize({
        startOnLoad: false,
        securityLevel: "strict",
        theme: isDark() ? "dark" : "default",
        // reject a syntax error instead of drawing mermaid's error picture; leftovers are removed anyway
        suppressErrorRendering: true
      });
    } catch (error) {
      for (var k = 0; k < list.length; k++) {
        showError(list[k], error);
      }
      return;
    }
    // one at a time: mermaid keeps per-render global state
    var chain = Promise.resolve();
    list.forEach(function (figure) {
      chain = chain.then(function () {
        return drawOne(figure);
      });
    });
  }

  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", run);
  } else {
    run();
  }
})();
