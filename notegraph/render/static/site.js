/* notegraph: search (header suggestions and the search page) and the walkable concept map.
   Data arrives as small script files that call window.NG_* (fetch() of JSON fails from file://).
   Everything taken from notes reaches the page through textContent, never through innerHTML. */
(function () {
  "use strict";

  var body = document.body;
  var root = (body && body.getAttribute("data-root")) || "";
  var SLUG = /^[a-z0-9-]+$/;

  // -- data registration ---------------------------------------------------------------------------

  var hoods = Object.create(null);
  var hoodWaiters = Object.create(null);
  var options = null;
  var searchRows = null;
  var searchWaiters = [];
  var searchLoading = false;

  window.NG_HOOD = function (slug, data) {
    hoods[slug] = data;
    var waiting = hoodWaiters[slug];
    delete hoodWaiters[slug];
    (waiting || []).forEach(function (fn) { fn(data); });
  };
  window.NG_OPTIONS = function (value) { options = value; };
  window.NG_SEARCH = function (rows) {
    searchRows = rows.map(prepareRow);
    var waiting = searchWaiters;
    searchWaiters = [];
    waiting.forEach(function (fn) { fn(); });
  };

  function loadScript(src, onError) {
    var script = document.createElement("script");
    script.src = src;
    script.async = true;
    if (onError) { script.addEventListener("error", onError); }
    document.head.appendChild(script);
  }

  function el(tag, className, text) {
    var node = document.createElement(tag);
    if (className) { node.className = className; }
    if (text !== undefined && text !== null) { node.textContent = String(text); }
    return node;
  }

  function noteHref(slug) { return root + "notes/" + slug + ".html"; }

  function cssVar(name, fallback) {
    var value = getComputedStyle(document.documentElement).getPropertyValue(name);
    return (value && value.trim()) || fallback;
  }

  // vis-network draws on a canvas: give it the page's fonts and colours (and again when the scheme flips)
  function themed(base) {
    var opts = JSON.parse(JSON.stringify(base || {}));
    opts.nodes = opts.nodes || {};
    opts.nodes.font = opts.nodes.font || {};
    opts.nodes.font.color = cssVar("--ink", "#1e2227");
    opts.nodes.font.strokeColor = cssVar("--bg", "#ffffff");
    opts.nodes.font.face = getComputedStyle(document.body).fontFamily;
    return opts;
  }

  var KIND_LABELS = { synthesis: "Synthesis", concept: "Concept", paper: "Paper", inquiry: "Inquiry" };

  // graph.js adds the full graph's network to NG.networks; tests and the console find both there
  var NG = window.NG = window.NG || {};
  NG.root = root;
  NG.options = function () { return options; };
  NG.themed = themed;
  NG.el = el;
  NG.noteHref = noteHref;
  NG.cssVar = cssVar;
  NG.kindLabels = KIND_LABELS;
  NG.networks = NG.networks || { map: null, graph: null };

  // -- search ----------------------------------------------------------------------------------------

  function fold(text) {
    return String(text || "").normalize("NFD").replace(/[\u0300-\u036f]/g, "").toLowerCase();
  }

  function prepareRow(row) {
    return {
      slug: row[0], title: row[1], kind: row[2], aliases: row[3] || [], claim: row[4] || "", lede: row[5] || "",
      fTitle: fold(row[1]), fAliases: fold((row[3] || []).join(" \u2022 ")), fClaim: fold(row[4]), fLede: fold(row[5])
    };
  }

  function wordStart(haystack, term) {
    var at = haystack.indexOf(term);
    while (at !== -1) {
      if (at === 0 || /[^a-z0-9]/.test(haystack.charAt(at - 1))) { return true; }
      at = haystack.indexOf(term, at + 1);
    }
    return false;
  }

  function search(query, limit) {
    var q = fold(query).trim();
    if (!q || !searchRows) { return []; }
    var terms = q.split(/\s+/);
    var hits = [];
    searchRows.forEach(function (row) {
      var score = 0;
      for (var i = 0; i < terms.length; i++) {
        var t = terms[i];
        var s = 0;
        if (wordStart(row.fTitle, t)) { s = 10; } else if (row.fTitle.indexOf(t) !== -1) { s = 6; }
        else if (row.fAliases.indexOf(t) !== -1) { s = 5; }
        else if (row.fClaim.indexOf(t) !== -1) { s = 2; }
        else if (row.fLede.indexOf(t) !== -1) { s = 1; }
        if (!s) { return; }
        score += s;
      }
      if (row.fTitle === q) { score += 50; } else if (row.fTitle.indexOf(q) === 0) { score += 20; }
      hits.push({ row: row, score: score });
    });
    hits.sort(function (a, b) {
      return b.score - a.score || (a.row.title < b.row.title ? -1 : a.row.title > b.row.title ? 1 : 0);
    });
    return hits.slice(0, limit).map(function (h) { return h.row; });
  }

  function whenSearchReady(fn) {
    if (searchRows) { fn(); return; }
    searchWaiters.push(fn);
    if (!searchLoading && !document.querySelector('script[src$="assets/search-index.js"]')) {
      searchLoading = true;
      loadScript(root + "assets/search-index.js");
    }
  }

  // text with the query's terms marked, built from text nodes
  function highlighted(text, query) {
    var frag = document.createDocumentFragment();
    var terms = fold(query).trim().split(/\s+/).filter(Boolean);
    var lower = String(text).toLowerCase();
    var ranges = [];
    terms.forEach(function (t) {
      var at = lower.indexOf(t);
      if (at !== -1) { ranges.push([at, at + t.length]); }
    });
    ranges.sort(function (a, b) { return a[0] - b[0]; });
    var pos = 0;
    ranges.forEach(function (r) {
      if (r[0] < pos) { return; }
      frag.appendChild(document.createTextNode(text.slice(pos, r[0])));
      frag.appendChild(el("mark", null, text.slice(r[0], r[1])));
      pos = r[1];
    });
    frag.appendChild(document.createTextNode(text.slice(pos)));
    return frag;
  }

  function initHeaderSearch() {
    var input = document.getElementById("ng-site-q");
    var list = document.getElementById("ng-suggest");
    if (!input || !list) { return; }

    function close() { list.hidden = true; list.textContent = ""; }

    function update() {
      var q = input.value.trim();
      if (!q) { close(); return; }
      whenSearchReady(function () {
        if (input.value.trim() !== q) { return; }
        var hits = search(q, 8);
        list.textContent = "";
        hits.forEach(function (row) {
          var li = el("li");
          var a = el("a");
          a.href = noteHref(row.slug);
          a.appendChild(el("span", "kind kind--" + row.kind, KIND_LABELS[row.kind] || row.kind));
          a.appendChild(highlighted(row.title, q));
          li.appendChild(a);
          list.appendChild(li);
        });
        list.hidden = hits.length === 0;
      });
    }

    input.addEventListener("focus", function () { whenSearchReady(function () {}); });
    input.addEventListener("input", update);
    input.addEventListener("keydown", function (event) {
      if (event.key === "ArrowDown" && !list.hidden) {
        var first = list.querySelector("a");
        if (first) { event.preventDefault(); first.focus(); }
      } else if (event.key === "Escape") {
        close();
      }
    });
    list.addEventListener("keydown", function (event) {
      var links = Array.prototype.slice.call(list.querySelectorAll("a"));
      var at = links.indexOf(document.activeElement);
      if (event.key === "ArrowDown" && at < links.length - 1) { event.preventDefault(); links[at + 1].focus(); }
      else if (event.key === "ArrowUp") { event.preventDefault(); (at > 0 ? links[at - 1] : input).focus(); }
      else if (event.key === "Escape") { close(); input.focus(); }
    });
    document.addEventListener("click", function (event) {
      if (!list.contains(event.target) && event.target !== input) { close(); }
    });
  }

  function initSearchPage() {
    var input = document.getElementById("ng-q");
    var results = document.getElementById("ng-search-results");
    var status = document.getElementById("ng-search-status");
    if (!input || !results) { return; }
    var params = new URLSearchParams(window.location.search);
    input.value = params.get("q") || "";

    function run() {
      var q = input.value.trim();
      results.textContent = "";
      if (!q) { status.textContent = "Type a word or two."; return; }
      whenSearchReady(function () {
        var hits = search(q, 60);
        results.textContent = "";
        status.textContent = hits.length ? hits.length + (hits.length === 1 ? " note matches" : " notes match") + " “" + q + "”." : "No note matches “" + q + "”.";
        hits.forEach(function (row) {
          var li = el("li");
          li.appendChild(el("span", "kind kind--" + row.kind, KIND_LABELS[row.kind] || row.kind));
          li.appendChild(document.createTextNode(" "));
          var a = el("a");
          a.href = noteHref(row.slug);
          a.appendChild(highlighted(row.title, q));
          li.appendChild(a);
          var text = row.claim || row.lede;
          if (text) {
            var p = el("p");
            p.appendChild(highlighted(text, q));
            li.appendChild(p);
          }
          results.appendChild(li);
        });
      });
    }

    input.addEventListener("input", function () {
      var url = new URL(window.location.href);
      if (input.value.trim()) { url.searchParams.set("q", input.value.trim()); } else { url.searchParams.delete("q"); }
      try { window.history.replaceState(null, "", url.toString()); } catch (e) { /* file:// in some browsers */ }
      run();
    });
    run();
    if (!input.value) { input.focus(); }
  }

  // -- the concept map ----------------------------------------------------------------------------

  function initConceptMap() {
    var box = document.getElementById("ng-map");
    var canvas = document.getElementById("ng-map-canvas");
    if (!box || !canvas || !window.vis || !options) { return; }
    var home = box.getAttribute("data-home");
    var status = document.getElementById("ng-map-status");
    var list = box.querySelector(".hood-list");
    var listNote = box.querySelector(".map-list__note");
    var centreLink = box.querySelector(".map-list__centre");
    var graphLink = box.querySelector(".open-graph");
    var network = null;
    var current = null;
    var homeButton = null;

    function stat(name, value) {
      var node = box.querySelector('[data-stat="' + name + '"]');
      if (node) { node.textContent = String(value); node.setAttribute("data-count", String(value)); }
    }

    function renderList(data) {
      list.textContent = "";
      data.list.forEach(function (entry) {
        var li = el("li", "hood-list__item rel--" + entry.rel);
        var a = el("a", null, entry.title);
        a.href = noteHref(entry.slug);
        li.appendChild(a);
        li.appendChild(el("span", "rel", entry.rel_label));
        if (entry.score !== null && entry.score !== undefined) {
          var s = el("span", "score", Number(entry.score).toFixed(3));
          s.setAttribute("data-score", Number(entry.score).toFixed(3));
          li.appendChild(s);
        }
        // the accessible name starts with the visible "Walk" (WCAG 2.5.3 label in name)
        var walk = el("button", null, "Walk");
        walk.type = "button";
        walk.appendChild(el("span", "visually-hidden", " to " + entry.title));
        walk.addEventListener("click", function () { go(entry.slug); });
        li.appendChild(walk);
        list.appendChild(li);
      });
      list.setAttribute("data-count", String(data.list.length));
      listNote.textContent = data.list.length < data.direct
        ? "Showing " + data.list.length + " of " + data.direct + " direct connections."
        : "All " + data.list.length + " direct connections.";
      centreLink.textContent = data.title;
      centreLink.href = noteHref(data.slug);
    }

    function show(data) {
      current = data.slug;
      // the centre's label sits on a patch of page colour, so edges arriving from below pass behind it
      var nodes = new window.vis.DataSet(data.nodes.map(function (n) {
        if (n.rel !== "centre") { return n; }
        var copy = Object.assign({}, n);
        copy.font = Object.assign({}, n.font || {}, { background: cssVar("--bg", "#ffffff") });
        return copy;
      }));
      // an edge's colour, dashes, width and arrow come with its kind (map-options.js), unless it says otherwise
      var edgeStyles = options.hoodEdges || {};
      var edges = new window.vis.DataSet(data.edges.map(function (e, i) {
        var copy = Object.assign({}, edgeStyles[e.kind] || {}, e);
        copy.id = "e" + i;
        return copy;
      }));
      if (!network) {
        network = new window.vis.Network(canvas, { nodes: nodes, edges: edges }, themed(options.hood));
        NG.networks.map = network;
        network.on("click", onClick);
        network.on("hoverNode", function () { canvas.style.cursor = "pointer"; });
        network.on("blurNode", function () { canvas.style.cursor = ""; });
      } else {
        network.setData({ nodes: nodes, edges: edges });
      }
      network.fit({ animation: false });
      stat("direct", data.direct);
      stat("two-hop", data.two_hop);
      stat("cluster-size", data.cluster_size);
      graphLink.href = root + "graph.html#" + data.slug;
      renderList(data);
      canvas.setAttribute("aria-label", "Concept map of " + data.title + " and " + data.list.length + " neighbours; the same neighbourhood is listed beside it");
      if (current !== home) {
        if (!homeButton) {
          homeButton = el("button", "map-home", "Back to this note’s neighbourhood");
          homeButton.type = "button";
          homeButton.addEventListener("click", function () { go(home); });
          box.querySelector(".map-list").appendChild(homeButton);
        }
        homeButton.hidden = false;
      } else if (homeButton) {
        homeButton.hidden = true;
      }
    }

    function go(slug) {
      if (!SLUG.test(slug)) { return; }
      if (hoods[slug]) {
        show(hoods[slug]);
        status.textContent = "Map centred on " + hoods[slug].title + ".";
        return;
      }
      (hoodWaiters[slug] = hoodWaiters[slug] || []).push(function (data) {
        show(data);
        status.textContent = "Map centred on " + data.title + ".";
      });
      loadScript(root + "assets/hood/" + slug + ".js", function () {
        delete hoodWaiters[slug];
        status.textContent = "That note has no map; opening it instead.";
        window.location.href = noteHref(slug);
      });
    }

    function onClick(params) {
      if (!params.nodes || !params.nodes.length) { return; }
      var slug = String(params.nodes[0]);
      if (!SLUG.test(slug)) { return; }
      if (slug === current) { window.location.href = noteHref(slug); } else { go(slug); }
    }

    if (hoods[home]) { show(hoods[home]); } else { go(home); }

    if (window.matchMedia) {
      var scheme = window.matchMedia("(prefers-color-scheme: dark)");
      var retheme = function () { if (network) { network.setOptions(themed(options.hood)); } };
      if (scheme.addEventListener) { scheme.addEventListener("change", retheme); }
    }
  }

  function init() {
    initHeaderSearch();
    initSearchPage();
    initConceptMap();
  }

  // deferred data files (map options, this note's neighbourhood) run after this one: wait for them
  if (document.readyState === "complete") {
    init();
  } else {
    document.addEventListener("DOMContentLoaded", init);
  }
})();
