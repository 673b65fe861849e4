"""Concept maps (pyvis networks, serialised as small data files) and the full graph's precomputed layout."""

from __future__ import annotations

import json
import math
import sys
import types
from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from notegraph.model import KINDS, Cluster, Neighbour, Note, NoteFacts

HOOD_BUDGET = 24  # neighbours drawn around a note; the page states how many there are in all
GRAPH_BUDGET = 1500  # above this many notes the full graph starts with clusters collapsed
REL_ORDER = ("link", "source", "similar", "backlink")
REL_LABELS = {
    "link": "your link",
    "similar": "semantically near",
    "backlink": "linked from elsewhere",
    "source": "inquiry source",
}
KIND_LABELS = {"synthesis": "Synthesis note", "concept": "Concept note", "paper": "Paper note", "inquiry": "Inquiry note"}


@dataclass(frozen=True)
class EdgeStyle:
    colour: str
    dashes: bool | list[int]
    width: float
    arrow: bool


# colour AND line style tell the kinds apart (the legend draws the same dashes in SVG)
EDGE_STYLES: dict[str, EdgeStyle] = {
    "link": EdgeStyle("#3d6fb6", False, 2.2, True),
    "similar": EdgeStyle("#b0802a", [7, 6], 1.8, False),
    "backlink": EdgeStyle("#4c8a5c", [2, 5], 2.2, True),
    "source": EdgeStyle("#b4496f", [12, 5, 2, 5], 2.2, True),
}
KIND_COLOURS = {"synthesis": "#7657b5", "concept": "#2a8189", "paper": "#c47a2b", "inquiry": "#c0466c"}
CENTRE_RING = "#e2a93b"
CLUSTER_PALETTE = (
    "#4e79a7", "#f28e2b", "#59a14f", "#b07aa1", "#e15759", "#76b7b2",
    "#edc948", "#9c755f", "#ff9da7", "#6b8e23", "#8c6bb1", "#d37295",
)  # fmt: skip
KIND_SHAPES = {"synthesis": "diamond", "concept": "dot", "paper": "square", "inquiry": "triangle"}

MAP_OPTIONS: dict[str, Any] = {
    "autoResize": True,
    "physics": {"enabled": False},
    "layout": {"improvedLayout": False, "randomSeed": 1},
    "interaction": {"hover": True, "tooltipDelay": 120, "keyboard": {"enabled": False}, "multiselect": False},
    "nodes": {"shape": "dot", "borderWidth": 2, "font": {"size": 15, "strokeWidth": 4}},
    "edges": {"smooth": False, "selectionWidth": 1.5, "hoverWidth": 0.6},
}
GRAPH_OPTIONS: dict[str, Any] = {
    "autoResize": True,
    "physics": {"enabled": False},
    "layout": {"improvedLayout": False, "randomSeed": 1},
    "interaction": {"hover": True, "tooltipDelay": 150, "hideEdgesOnDrag": True, "keyboard": {"enabled": True, "bindToWindow": False}},
    "nodes": {"borderWidth": 1, "font": {"size": 12, "strokeWidth": 3}, "scaling": {"label": {"drawThreshold": 9}}},
    "edges": {"smooth": False, "width": 0.6, "selectionWidth": 1.2},
}


@dataclass(frozen=True)
class HoodEntry:
    """One neighbour drawn on a concept map and listed beside it."""

    id: str
    slug: str
    title: str
    kind: str
    rel: str  # link | source | similar | backlink
    score: float | None
    incoming: bool = False  # the edge points at the centre (a backlink, or an inquiry citing it)

    def as_json(self) -> dict[str, Any]:
        return {
            "slug": self.slug,
            "title": self.title,
            "kind": self.kind,
            "rel": self.rel,
            "rel_label": REL_LABELS[self.rel],
            "score": None if self.score is None else round(float(self.score), 3),
        }


def _relation(graph: Any, centre: str, neighbour: Neighbour) -> str:
    """An explicit link that is an inquiry's `sources` entry is drawn as a source edge."""
    if neighbour.kind not in ("link", "backlink") or graph is None:
        return neighbour.kind
    for a, b in ((centre, neighbour.id), (neighbour.id, centre)):
        data = graph.get_edge_data(a, b) if graph.has_node(a) and graph.has_node(b) else None
        if data and any(attrs.get("kind") == "source" for attrs in data.values()):
            return "source"
    return neighbour.kind


# places reserved for each kind before the rest of the budget is filled in REL_ORDER: links may take
# up to 40% on their own, and a note with similar notes or backlinks always shows some of each
HOOD_QUOTAS = {"link": 9, "source": 4, "similar": 5, "backlink": 5}


def choose_neighbours(facts: NoteFacts, notes: Mapping[str, Note], slugs: Mapping[str, str], graph: Any) -> list[HoodEntry]:
    """The drawn neighbourhood: each kind first gets up to its HOOD_QUOTAS places, then the places left go
    to links, inquiry sources, the best-scored similar and backlinks, in that order. Within a kind the
    order is always the same (similar by score, the others by title), so a kind keeps its best."""
    entries = []
    seen: set[str] = set()
    for neighbour in facts.neighbours:
        if neighbour.id not in notes or neighbour.id in seen or neighbour.id == facts.id:
            continue
        seen.add(neighbour.id)
        note = notes[neighbour.id]
        score = neighbour.score if neighbour.score is not None and math.isfinite(neighbour.score) else None
        rel = _relation(graph, facts.id, neighbour)
        entries.append(HoodEntry(note.id, slugs[note.id], note.title, note.kind, rel, score, neighbour.kind == "backlink"))

    def order(e: HoodEntry) -> tuple[int, float, str, str]:
        score = -(e.score or 0.0) if e.rel == "similar" else 0.0
        return (REL_ORDER.index(e.rel), score, e.title.lower(), e.id)

    by_rel: dict[str, list[HoodEntry]] = {rel: [] for rel in REL_ORDER}
    for entry in sorted(entries, key=order):
        by_rel[entry.rel].append(entry)
    taken = {rel: min(HOOD_QUOTAS[rel], len(group)) for rel, group in by_rel.items()}
    for rel in REL_ORDER:
        room = HOOD_BUDGET - sum(taken.values())
        taken[rel] += max(0, min(room, len(by_rel[rel]) - taken[rel]))
    return [entry for rel in REL_ORDER for entry in by_rel[rel][: taken[rel]]]


def ring_positions(n: int) -> list[tuple[float, float]]:
    """A deterministic radial layout: rings of 10, 14, 18... around the centre, half a step staggered."""
    out: list[tuple[float, float]] = []
    ring = 0
    while len(out) < n:
        capacity = 10 + 4 * ring
        count = min(capacity, n - len(out))
        radius = 175.0 + 140.0 * ring
        step = 2 * math.pi / count
        offset = -math.pi / 2 + (step / 2 if ring % 2 else 0.0)
        out.extend((round(radius * math.cos(offset + k * step), 1), round(radius * math.sin(offset + k * step), 1)) for k in range(count))
        ring += 1
    return out


INNER_RELS = ("link", "source")  # the note's own links sit close; similar notes and backlinks further out


def hood_positions(entries: Sequence[HoodEntry]) -> list[tuple[float, float]]:
    """Two rings: the note's links and sources inside, everything else outside, half a step staggered.

    Each ring's radius grows with its number of nodes so neighbouring labels (about 150px wide) keep apart."""
    inner = [i for i, e in enumerate(entries) if e.rel in INNER_RELS]
    outer = [i for i, e in enumerate(entries) if e.rel not in INNER_RELS]
    if not inner or not outer:  # one kind only: a single ring
        inner, outer = list(range(len(entries))), []
    out: list[tuple[float, float]] = [(0.0, 0.0)] * len(entries)
    r_inner = max(190.0, len(inner) * 120.0 / (2 * math.pi))
    r_outer = max(r_inner + 170.0, len(outer) * 130.0 / (2 * math.pi))
    for members, radius, stagger in ((inner, r_inner, False), (outer, r_outer, True)):
        if not members:
            continue
        step = 2 * math.pi / len(members)
        offset = -math.pi / 2 + (step / 2 if stagger else 0.0)
        for k, i in enumerate(members):
            angle = offset + k * step
            out[i] = (round(radius * math.cos(angle), 1), round(radius * math.sin(angle), 1))
    return out


@lru_cache(maxsize=65536)  # a note's label is drawn on every map it appears on
def wrap_label(title: str, width: int = 20, lines: int = 2) -> str:
    words = title.split()
    out: list[str] = []
    current = ""
    for word in words:
        if current and len(current) + 1 + len(word) > width:
            out.append(current)
            current = word
        else:
            current = f"{current} {word}".strip()
    if current:
        out.append(current)
    if len(out) > lines:
        out = out[:lines]
        out[-1] = out[-1][: width - 1].rstrip() + "…"
    return "\n".join(line if len(line) <= width + 6 else line[: width + 5] + "…" for line in out)


def pyvis_network() -> Any:
    """pyvis's ``Network`` class. pyvis.network imports ``IPython.display`` for ``IFrame``, which only
    its notebook ``show()`` uses (never called here), and IPython costs 0.17 s of every build that
    renders a page. Outside a notebook (IPython not yet imported) pyvis is imported against a stand-in
    for that one module, which is then taken out of ``sys.modules`` again: a later ``import IPython``
    gets the real one. In a notebook, IPython is already there and pyvis imports it as usual."""
    if "pyvis.network" not in sys.modules and "IPython" not in sys.modules:
        stand_in = types.ModuleType("IPython.display", "stand-in while pyvis is imported (notegraph)")
        stand_in.IFrame = None  # type: ignore[attr-defined]
        package = types.ModuleType("IPython")
        package.display = stand_in  # type: ignore[attr-defined]
        sys.modules["IPython"], sys.modules["IPython.display"] = package, stand_in
        try:
            import pyvis.network  # noqa: F401  (imported here, against the stand-in)
        finally:
            for name, module in (("IPython", package), ("IPython.display", stand_in)):
                if sys.modules.get(name) is module:
                    del sys.modules[name]
    from pyvis.network import Network

    return Network


def _new_network(options: Mapping[str, Any] | None = None) -> Any:
    Network = pyvis_network()
    # undirected for pyvis, which otherwise gives every edge its own `arrows: "to"`: a map's arrows
    # come with its edge kind's style (shared_options)
    net = Network(directed=False, cdn_resources="local")
    if options is not None:
        net.set_options(json.dumps(options))  # pyvis strips spaces from this string: no value may contain one
    return net


def shared_options() -> dict[str, Any]:
    """The vis-network options every map and the full graph use, as pyvis holds them, and the concept
    maps' looks by kind: node colours as vis-network groups, edge styles for site.js to apply by edge
    kind (vis-network has no edge groups). Shared once in map-options.js, they are not repeated in
    every note's map data (about 30% of its bytes when they were: 14.3 KB against 10.2 for the
    sample's largest map)."""
    groups = {kind: {"color": _node_colour(colour)} for kind, colour in KIND_COLOURS.items()}
    hood = dict(_new_network({**MAP_OPTIONS, "groups": groups}).options)
    edges = {
        rel: {
            "color": {"color": style.colour, "highlight": style.colour, "hover": style.colour},
            "dashes": style.dashes,
            "width": style.width,
            "arrows": {"to": {"enabled": style.arrow, "scaleFactor": 0.55}},
        }
        for rel, style in EDGE_STYLES.items()
    }
    return {"hood": hood, "hoodEdges": edges, "graph": dict(_new_network(GRAPH_OPTIONS).options)}


def _node_colour(colour: str, border: str | None = None) -> dict[str, Any]:
    edge = border or colour
    return {
        "background": colour,
        "border": edge,
        "highlight": {"background": colour, "border": CENTRE_RING},
        "hover": {"background": colour, "border": CENTRE_RING},
    }


def hood_data(note: Note, facts: NoteFacts, entries: Sequence[HoodEntry], slug: str) -> dict[str, Any]:
    """One note's neighbourhood as pyvis builds it: nodes with fixed positions, styled edges, tooltips as text.

    Tooltips (``title``) are plain strings on purpose: vis-network 9.1.2's Popup.setText puts a string in
    with ``innerText`` and only inserts an Element as markup, so a note title can never become HTML there."""
    net = _new_network()
    kind_label = KIND_LABELS.get(note.kind, note.kind)
    net.add_node(
        slug,
        label=wrap_label(note.title, 26),
        shape="dot",
        color=_node_colour(KIND_COLOURS.get(note.kind, "#777"), CENTRE_RING),
        title=f"{note.title}\n{kind_label} · this note (click to open)",
        x=0.0,
        y=0.0,
        size=28,
        borderWidth=6,
        font={"size": 17, "strokeWidth": 0, "vadjust": 6},  # site.js gives it the page's background
        kind=note.kind,
        rel="centre",
    )
    for entry, (x, y) in zip(entries, hood_positions(entries), strict=True):
        score = f" · {entry.score:.3f}" if entry.score is not None else ""
        label = wrap_label(entry.title)
        inner = entry.rel in INNER_RELS
        size = 15 if inner else 11
        font_size = 14 if inner else 12
        # labels point away from the centre: above the nodes in the upper half, below in the lower
        vadjust = -(2 * size + (font_size + 3) * (label.count("\n") + 1) + 6) if y < -1 else 0
        # a known kind's colour is its group's (shared_options)
        looks = {"group": entry.kind} if entry.kind in KIND_COLOURS else {"color": _node_colour("#777")}
        net.add_node(
            entry.slug,
            label=label,
            shape="dot",
            **looks,
            title=f"{entry.title}\n{KIND_LABELS.get(entry.kind, entry.kind)} · {REL_LABELS[entry.rel]}{score}",
            x=x,
            y=y,
            size=size,
            font={"vadjust": vadjust, "size": font_size},
            kind=entry.kind,
            rel=entry.rel,
        )
        source, target = (entry.slug, slug) if entry.incoming else (slug, entry.slug)
        edge: dict[str, Any] = {"title": f"{REL_LABELS[entry.rel]}{score}", "kind": entry.rel}  # the rest of its style by kind
        if entry.rel == "similar" and entry.score is not None:
            edge["width"] = round(1.0 + 2.0 * max(entry.score, 0.0), 2)  # nearer, thicker
        net.add_edge(source, target, **edge)
    # pyvis's model as it holds it (get_network_data would also serialise its options, unused here)
    nodes, edges = net.nodes, net.edges
    return {
        "slug": slug,
        "title": note.title,
        "kind": note.kind,
        "direct": facts.direct,
        "two_hop": facts.two_hop,
        "cluster_size": facts.cluster_size,
        "nodes": nodes,
        "edges": edges,
        "list": [entry.as_json() for entry in entries],
    }


# -- the full graph ------------------------------------------------------------------------------------

GOLDEN_ANGLE = math.pi * (3 - math.sqrt(5))
SPACING = 58.0


def graph_data(notes: Mapping[str, Note], edges: Any, clusters: Sequence[Cluster], slugs: Mapping[str, str]) -> dict[str, Any]:
    """Every note with a precomputed position: clusters packed in rows, members on a sunflower around each.
    ``edges``: the graph's edges between the notes (``graph.edges.Edges`` over their sorted ids), or None.

    O(n log n); no force simulation, so 5,000 notes lay out in milliseconds and the same notes always land
    in the same places."""
    ids = sorted(notes)
    edge_kinds = ["link", "similar", "source"]
    drawn: list[list[int]] = []
    joined = [0] * len(ids)  # how many other notes each is joined with, either way
    if edges is not None:
        assert edges.ids == ids and list(edges.KINDS) == edge_kinds, "edges over the sorted notes, in the page's kinds"
        drawn = edges.drawn().tolist()
        joined = edges.joined().tolist()
    neighbours = dict(zip(ids, joined, strict=True))
    cluster_of: dict[str, int] = {}
    for cluster in clusters:
        for member in cluster.members:
            cluster_of.setdefault(member, cluster.id)
    labels = {c.id: c.label for c in clusters}
    groups: defaultdict[int, list[str]] = defaultdict(list)
    for note_id in ids:
        groups[cluster_of.get(note_id, -1)].append(note_id)

    # each group: a sunflower, best-connected members in the middle
    local: dict[str, tuple[float, float]] = {}
    radius: dict[int, float] = {}
    for cid, members in groups.items():
        members.sort(key=lambda m: (-neighbours[m], notes[m].title.lower(), m))
        for i, member in enumerate(members):
            r = SPACING * math.sqrt(i)
            local[member] = (r * math.cos(i * GOLDEN_ANGLE), r * math.sin(i * GOLDEN_ANGLE))
        radius[cid] = SPACING * math.sqrt(len(members)) + SPACING

    # groups packed in shelves, largest first
    order = sorted(groups, key=lambda c: (-len(groups[c]), c))
    total = sum((2 * radius[c]) ** 2 for c in order)
    width = max(max((2 * radius[c] for c in order), default=0.0), math.sqrt(total * 2.2))  # wider than tall, like a screen
    centres: dict[int, tuple[float, float]] = {}
    x = y = row_height = 0.0
    gap = SPACING * 1.5
    for cid in order:
        d = 2 * radius[cid]
        if x > 0 and x + d > width:
            x = 0.0
            y += row_height + gap
            row_height = 0.0
        centres[cid] = (x + d / 2, y + d / 2)
        x += d + gap
        row_height = max(row_height, d)
    if centres:
        mid_x = (min(cx - radius[c] for c, (cx, _) in centres.items()) + max(cx + radius[c] for c, (cx, _) in centres.items())) / 2
        mid_y = (min(cy - radius[c] for c, (_, cy) in centres.items()) + max(cy + radius[c] for c, (_, cy) in centres.items())) / 2
        centres = {c: (cx - mid_x, cy - mid_y) for c, (cx, cy) in centres.items()}

    # the same colour as the cluster's swatch on the home page: position among the clusters by id
    colour_of = {c.id: i % len(CLUSTER_PALETTE) for i, c in enumerate(sorted(clusters, key=lambda c: c.id))}
    cluster_rows = []
    cluster_index: dict[int, int] = {}
    for i, cid in enumerate(sorted(groups)):
        cluster_index[cid] = i
        cx, cy = centres[cid]
        cluster_rows.append(
            [cid, labels.get(cid, "Unclustered"), round(cx, 1), round(cy, 1), round(radius[cid], 1), len(groups[cid]), colour_of.get(cid, -1)]
        )
    node_rows = []
    for note_id in ids:
        note = notes[note_id]
        cid = cluster_of.get(note_id, -1)
        lx, ly = local[note_id]
        cx, cy = centres[cid]
        kind = KINDS.index(note.kind) if note.kind in KINDS else 0
        node_rows.append([slugs[note_id], note.title, kind, cluster_index[cid], round(cx + lx, 1), round(cy + ly, 1), neighbours[note_id]])
    return {
        "budget": GRAPH_BUDGET,
        "kinds": list(KINDS),
        "kindLabels": [KIND_LABELS[k] for k in KINDS],
        "kindShapes": [KIND_SHAPES[k] for k in KINDS],
        "edgeKinds": edge_kinds,
        "edgeColours": [EDGE_STYLES[k].colour for k in edge_kinds],
        "edgeDashes": [EDGE_STYLES[k].dashes for k in edge_kinds],
        "palette": list(CLUSTER_PALETTE),
        "clusters": cluster_rows,
        "nodes": node_rows,
        "edges": drawn,
    }
