/* notegraph: the full knowledge graph. Positions come precomputed from the build (physics stays off);
   large collections start with each cluster collapsed into one node that opens on click. */
(function () {
  "use strict";

  var data = null;
  window.NG_GRAPH = function (value) { data = value; };

  function init() {
    var canvas = document.getElementById("ng-graph-canvas");
    if (!canvas || !data || !window.vis || !window.NG || !window.NG.options()) { return; }
    var NG = window.NG;
    var el = NG.el;
    var nodes = data.nodes;        // [slug, title, kind, cluster index, x, y, degree]
    var clusters = data.clusters;  // [id, label, x, y, radius, size, palette index]
    var edges = data.edges;        // [from index, to index, edge kind index]
    var bySlug = Object.create(null);
    var members = clusters.map(function () { return []; });
    nodes.forEach(function (n, i) { bySlug[n[0]] = i; members[n[3]].push(i); });
    var collapsible = nodes.length > data.budget;
    var expanded = clusters.map(function () { return !collapsible; });
    var kindOn = data.kinds.map(function () { return true; });
    var edgeOn = data.edgeKinds.map(function () { return true; });
    var info = document.getElementById("ng-graph-info");
    // each cluster's best-connected note gets a label large enough to show at the first, fitted view
    var hub = Object.create(null);
    members.forEach(function (list) {
      var best = -1;
      list.forEach(function (i) { if (best < 0 || nodes[i][6] > nodes[best][6]) { best = i; } });
      if (best >= 0 && nodes[best][6] > 0) { hub[best] = true; }
    });
    var dark = window.matchMedia && window.matchMedia("(prefers-color-scheme: dark)").matches;
    var collapseButton = document.getElementById("ng-graph-collapse");

    function clusterColour(ci) {
      var p = clusters[ci][6];
      return p >= 0 ? data.palette[p] : "#9aa0a6";
    }

    function noteNode(i) {
      var n = nodes[i];
      var big = hub[i] === true;
      var colour = clusterColour(n[3]);
      return {
        id: n[0],
        label: big && n[1].length > 30 ? n[1].slice(0, 29) + "…" : n[1].length > 48 ? n[1].slice(0, 47) + "…" : n[1],
        title: n[1] + "\n" + data.kindLabels[n[2]] + " · " + clusters[n[3]][1] + " · " + n[6] + (n[6] === 1 ? " connection" : " connections"),
        shape: data.kindShapes[n[2]],
        x: n[4], y: n[5],
        size: 6 + 2.6 * Math.sqrt(n[6]),
        font: { size: big ? 30 : Math.min(24, 11 + 1.6 * Math.sqrt(n[6])) },
        color: { background: colour, border: colour, highlight: { background: colour, border: "#e2a93b" }, hover: { background: colour, border: "#e2a93b" } }
      };
    }

    function clusterNode(ci) {
      var c = clusters[ci];
      var colour = clusterColour(ci);
      return {
        id: "c:" + ci,
        label: c[1] + "\n" + c[5] + " notes",
        title: "Cluster: " + c[1] + "\n" + c[5] + " notes · click to open",
        shape: "dot",
        x: c[2], y: c[3],
        // sized by the space its members take when open, so collapsed and open views share one scale
        size: Math.max(24, 0.5 * c[4]),
        borderWidth: 3,
        font: { size: Math.max(14, 0.12 * c[4]) },
        widthConstraint: { maximum: Math.max(120, 1.2 * c[4]) },
        color: { background: colour, border: "#ffffff", highlight: { background: colour, border: "#e2a93b" } }
      };
    }

    function representative(i) {
      return expanded[nodes[i][3]] ? nodes[i][0] : "c:" + nodes[i][3];
    }

    function labelNode(ci) {
      var c = clusters[ci];
      return {
        id: "l:" + ci,
        label: c[1],
        title: "Cluster: " + c[1] + "\n" + c[5] + " notes",
        shape: "text",
        x: c[2], y: c[3] - c[4] - 30,
        font: { size: 32, color: NG.cssVar("--ink-2", "#41474f") }
      };
    }

    function build() {
      var visNodes = [];
      clusters.forEach(function (c, ci) {
        if (expanded[ci]) {
          var shown = members[ci].filter(function (i) { return kindOn[nodes[i][2]]; });
          shown.forEach(function (i) { visNodes.push(noteNode(i)); });
          if (shown.length && clusters.length > 1) { visNodes.push(labelNode(ci)); }
        } else if (members[ci].some(function (i) { return kindOn[nodes[i][2]]; })) {
          visNodes.push(clusterNode(ci));
        }
      });
      var seen = Object.create(null);
      var visEdges = [];
      edges.forEach(function (e) {
        var k = e[2];
        if (!edgeOn[k] || !kindOn[nodes[e[0]][2]] || !kindOn[nodes[e[1]][2]]) { return; }
        var a = representative(e[0]);
        var b = representative(e[1]);
        if (a === b) { return; }
        var key = a + "|" + b + "|" + k;
        if (seen[key]) { seen[key].count += 1; return; }
        var colour = data.edgeColours[k];
        var edge = {
          id: key, from: a, to: b, dashes: data.edgeDashes[k],
          color: { color: colour, highlight: colour, hover: colour, opacity: (data.edgeKinds[k] === "similar" ? 0.3 : 0.45) + (dark ? 0.25 : 0) },
          arrows: { to: { enabled: data.edgeKinds[k] !== "similar", scaleFactor: 0.35 } },
          count: 1
        };
        seen[key] = edge;
        visEdges.push(edge);
      });
      visEdges.forEach(function (e) {
        if (e.count > 1) { e.width = Math.min(6, 0.6 + Math.log(e.count)); e.title = e.count + " connections"; }
        delete e.count;
      });
      return { nodes: new window.vis.DataSet(visNodes), edges: new window.vis.DataSet(visEdges) };
    }

    var network = new window.vis.Network(canvas, build(), NG.themed(NG.options().graph));
    NG.networks = NG.networks || { map: null, graph: null };
    NG.networks.graph = network;

    function rebuild() {
      var position = network.getViewPosition();
      var scale = network.getScale();
      network.setData(build());
      network.moveTo({ position: position, scale: scale, animation: false });
      collapseButton.textContent = expanded.every(Boolean) ? "Collapse clusters" : "Expand all clusters";
    }

    function showNote(i) {
      var n = nodes[i];
      var c = clusters[n[3]];
      info.textContent = "";
      var h = el("h2");
      var a = el("a", null, n[1]);
      a.href = NG.noteHref(n[0]);
      h.appendChild(a);
      info.appendChild(h);
      info.appendChild(el("p", null, data.kindLabels[n[2]] + " · " + n[6] + (n[6] === 1 ? " connection" : " connections")));
      var p = el("p");
      if (c[0] >= 0) {
        p.appendChild(document.createTextNode("Cluster: "));
        var ca = el("a", null, c[1]);
        ca.href = NG.root + "clusters/" + c[0] + ".html";
        p.appendChild(ca);
      } else {
        p.textContent = "Not in a cluster";
      }
      info.appendChild(p);
      if (collapsible) {
        var b = el("button", null, "Collapse this cluster");
        b.type = "button";
        b.addEventListener("click", function () { expanded[n[3]] = false; rebuild(); info.textContent = ""; });
        info.appendChild(b);
      }
    }

    function showCluster(ci) {
      var c = clusters[ci];
      info.textContent = "";
      info.appendChild(el("h2", null, c[1]));
      info.appendChild(el("p", null, c[5] + " notes"));
      if (c[0] >= 0) {
        var a = el("a", null, "Open the cluster page");
        a.href = NG.root + "clusters/" + c[0] + ".html";
        var p = el("p");
        p.appendChild(a);
        info.appendChild(p);
      }
    }

    function focusNote(slug) {
      var i = bySlug[slug];
      if (i === undefined) { return false; }
      var changed = false;
      if (!expanded[nodes[i][3]]) { expanded[nodes[i][3]] = true; changed = true; }
      if (!kindOn[nodes[i][2]]) {
        kindOn[nodes[i][2]] = true;
        var box = document.querySelector('input[name="kind"][value="' + data.kinds[nodes[i][2]] + '"]');
        if (box) { box.checked = true; }
        changed = true;
      }
      if (changed) { rebuild(); }
      network.selectNodes([slug]);
      network.focus(slug, { scale: 1.3, animation: { duration: 500, easingFunction: "easeInOutQuad" } });
      showNote(i);
      return true;
    }

    function focusCluster(id) {
      for (var ci = 0; ci < clusters.length; ci++) {
        if (String(clusters[ci][0]) === id) {
          if (!expanded[ci]) { expanded[ci] = true; rebuild(); }
          var r = clusters[ci][4];
          var box = canvas.getBoundingClientRect();
          var scale = Math.min(2, Math.max(0.05, Math.min(box.width, box.height) / (2.4 * r)));
          network.moveTo({ position: { x: clusters[ci][2], y: clusters[ci][3] }, scale: scale, animation: { duration: 500 } });
          showCluster(ci);
          return;
        }
      }
    }

    function fromHash() {
      var hash = "";
      try { hash = decodeURIComponent(window.location.hash.slice(1)); } catch (e) { return; }
      if (!hash) { return; }
      if (hash.indexOf("cluster-") === 0) { focusCluster(hash.slice(8)); } else { focusNote(hash); }
    }

    network.on("click", function (params) {
      if (!params.nodes.length) { return; }
      var id = String(params.nodes[0]);
      if (id.indexOf("l:") === 0) {
        showCluster(Number(id.slice(2)));
      } else if (id.indexOf("c:") === 0) {
        var ci = Number(id.slice(2));
        expanded[ci] = true;
        rebuild();
        network.moveTo({ position: { x: clusters[ci][2], y: clusters[ci][3] }, animation: { duration: 400 } });
        showCluster(ci);
      } else if (bySlug[id] !== undefined) {
        showNote(bySlug[id]);
      }
    });
    network.on("doubleClick", function (params) {
      if (params.nodes.length && bySlug[String(params.nodes[0])] !== undefined) {
        window.location.href = NG.noteHref(String(params.nodes[0]));
      }
    });
    network.on("hoverNode", function () { canvas.style.cursor = "pointer"; });
    network.on("blurNode", function () { canvas.style.cursor = ""; });

    // filters
    Array.prototype.forEach.call(document.querySelectorAll('input[name="kind"]'), function (box) {
      box.addEventListener("change", function () {
        kindOn[data.kinds.indexOf(box.value)] = box.checked;
        rebuild();
      });
    });
    Array.prototype.forEach.call(document.querySelectorAll('input[name="edge"]'), function (box) {
      box.addEventListener("change", function () {
        edgeOn[data.edgeKinds.indexOf(box.value)] = box.checked;
        rebuild();
      });
    });
    document.getElementById("ng-graph-fit").addEventListener("click", function () { network.fit({ animation: { duration: 400 } }); });
    collapseButton.addEventListener("click", function () {
      var all = expanded.every(Boolean);
      expanded = clusters.map(function () { return !all; });
      rebuild();
      network.fit({ animation: false });
    });
    collapseButton.textContent = expanded.every(Boolean) ? "Collapse clusters" : "Expand all clusters";

    // find a note: exact title, then a title starting with the query, then one containing it
    var titles = document.getElementById("ng-graph-titles");
    nodes.slice().sort(function (a, b) { return a[1] < b[1] ? -1 : a[1] > b[1] ? 1 : 0; }).forEach(function (n) {
      var option = document.createElement("option");
      option.value = n[1];
      titles.appendChild(option);
    });
    document.getElementById("ng-graph-find").addEventListener("submit", function (event) {
      event.preventDefault();
      var q = document.getElementById("ng-graph-q").value.trim().toLowerCase();
      if (!q) { return; }
      var best = -1;
      var rank = 4;
      nodes.forEach(function (n, i) {
        var t = n[1].toLowerCase();
        var r = t === q ? 0 : t.indexOf(q) === 0 ? 1 : t.indexOf(q) !== -1 ? 2 : n[0] === q ? 3 : 4;
        if (r < rank) { rank = r; best = i; }
      });
      if (best < 0) {
        info.textContent = "";
        info.appendChild(el("p", null, "No note matches “" + q + "”."));
        return;
      }
      if (window.location.hash === "#" + nodes[best][0]) { focusNote(nodes[best][0]); } else { window.location.hash = nodes[best][0]; }
    });

    window.addEventListener("hashchange", fromHash);
    if (window.matchMedia) {
      var scheme = window.matchMedia("(prefers-color-scheme: dark)");
      if (scheme.addEventListener) {
        scheme.addEventListener("change", function () { network.setOptions(NG.themed(NG.options().graph)); });
      }
    }
    network.once("afterDrawing", fromHash);
  }

  if (document.readyState === "complete") { init(); } else { document.addEventListener("DOMContentLoaded", init); }
})();
