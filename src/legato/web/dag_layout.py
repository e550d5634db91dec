"""A pipeline's task graph: a layered (Sugiyama-style) layout, drawn as SVG.

Layers run left to right and a node's layer is the longest path to it from a root, so every
edge points rightwards. An edge spanning several layers is split by virtual nodes, one per
layer it crosses; they take a thin slot in those layers, which is what keeps long edges out
of the boxes in between. Weakly connected components are laid out on their own and stacked.
"""

from __future__ import annotations

import bisect
import itertools
import math
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from legato.web.svg import esc as _esc
from legato.web.svg import num as _num
from legato.web.svg import token as _token

NODE_W = 168.0
NODE_H = 40.0
CHECK_H = 24.0  # a check's step: a slimmer box after its task
GROUP_H = 52.0  # a group of look-alike tasks: room for the bar of its states
BAR_H = 6.0
LAYER_GAP = 64.0  # room between columns, where the edges bend
ROW_GAP = 16.0  # between two boxes of one column
DUMMY_GAP = 10.0  # between an edge passing through a column and whatever is next to it
COMPONENT_GAP = 28.0
MARGIN = 12.0
SWEEPS = 4
_CHAR_W = 7.0  # rough width of a label character; the server has no font metrics
_TEXT_PAD = 10.0
_STACK = 4.0  # offset of the card drawn behind a mapped node
Point = tuple[float, float]


@dataclass(frozen=True)
class DagNode:
    """One task as drawn; ``upstream`` holds the ids it depends on."""

    id: str
    label: str
    upstream: tuple[str, ...]
    state: str | None = None
    mapped: bool = False
    detail: str = ""
    # or "check": one of a task's checks, drawn as a small step after it; or "group": ``count``
    # look-alike tasks drawn as one box, ``counts`` of them in each state (dag_groups.py)
    kind: str = "task"
    count: int = 0
    counts: tuple[tuple[str, int], ...] = ()

    @property
    def height(self) -> float:
        return {"check": CHECK_H, "group": GROUP_H}.get(self.kind, NODE_H)


@dataclass(frozen=True)
class Edge:
    """A dependency as drawn: from the source box's right side, through the slots reserved
    for it in the columns it crosses, to the target box's left side."""

    source: str
    target: str
    points: tuple[Point, ...]


@dataclass(frozen=True)
class Layout:
    """Where everything goes: node centres, the drawing's size, nodes per layer (top to
    bottom) and the edges' routes."""

    positions: dict[str, Point]
    width: float
    height: float
    layers: list[list[str]]
    edges: list[Edge]


def layout(nodes: Sequence[DagNode]) -> Layout:
    """Lay ``nodes`` out in layers; unknown upstream ids are ignored and, should the graph
    have a cycle, the edges closing it are left out rather than failing."""
    real: dict[str, int] = {}
    for node in nodes:
        real.setdefault(node.id, len(real))
    ids = list(real)
    first = {node.id: node for node in reversed(nodes)}  # the first of duplicate ids wins
    ups: list[list[int]] = []
    for node_id in ids:
        wanted = (real.get(u) for u in first[node_id].upstream)
        ups.append(list(dict.fromkeys(u for u in wanted if u is not None and u != real[node_id])))
    rank = _ranks(ups)

    # The proper layered graph: real nodes first, then virtual ones, all edges one layer long.
    layer_of = list(rank)
    up_adj: list[list[int]] = [[] for _ in ids]
    down_adj: list[list[int]] = [[] for _ in ids]
    chains: list[tuple[int, int, list[int]]] = []
    for v, us in enumerate(ups):
        for u in us:
            if rank[u] >= rank[v]:
                continue  # closes a cycle
            dummies = list(range(len(layer_of), len(layer_of) + rank[v] - rank[u] - 1))
            layer_of += range(rank[u] + 1, rank[v])
            up_adj += [[] for _ in dummies]
            down_adj += [[] for _ in dummies]
            for a, b in itertools.pairwise([u, *dummies, v]):
                down_adj[a].append(b)
                up_adj[b].append(a)
            chains.append((u, v, dummies))

    n = len(ids)
    height_of = [first[ids[v]].height if v < n else 0.0 for v in range(len(layer_of))]
    y = [0.0] * len(layer_of)
    layers_out: list[list[str]] = [[] for _ in range(max(rank, default=-1) + 1)]
    top = MARGIN
    for comp in _components([u + d for u, d in zip(up_adj, down_adj, strict=True)]):
        layers: list[list[int]] = [[] for _ in range(max(layer_of[v] for v in comp) + 1)]
        for v in comp:
            layers[layer_of[v]].append(v)
        layers = _order(layers, up_adj, down_adj)
        _place(layers, up_adj, down_adj, height_of, y)
        lo = min(y[v] - height_of[v] / 2 for v in comp)
        hi = max(y[v] + height_of[v] / 2 for v in comp)
        for v in comp:
            y[v] += top - lo
        top += hi - lo + COMPONENT_GAP
        for r, layer in enumerate(layers):
            layers_out[r].extend(ids[v] for v in layer if v < n)

    def x(r: int) -> float:
        return MARGIN + r * (NODE_W + LAYER_GAP) + NODE_W / 2

    edges = []
    for u, v, dummies in chains:
        points = [(x(rank[u]) + NODE_W / 2, y[u])]
        for d in dummies:
            points += [(x(layer_of[d]) - NODE_W / 2, y[d]), (x(layer_of[d]) + NODE_W / 2, y[d])]
        points.append((x(rank[v]) - NODE_W / 2, y[v]))
        edges.append(Edge(ids[u], ids[v], tuple(points)))
    width = 2 * MARGIN + len(layers_out) * (NODE_W + LAYER_GAP) - (LAYER_GAP if n else 0)
    return Layout(
        positions={node_id: (x(rank[v]), y[v]) for node_id, v in real.items()},
        width=width,
        height=top - COMPONENT_GAP + MARGIN if n else 2 * MARGIN,
        layers=layers_out,
        edges=edges,
    )


def _ranks(ups: list[list[int]]) -> list[int]:
    """Longest path from a root to each node (Kahn's order); cycles are broken by releasing
    the earliest stuck node, whose unfinished upstreams then no longer count."""
    n = len(ups)
    downs: list[list[int]] = [[] for _ in range(n)]
    for v, us in enumerate(ups):
        for u in us:
            downs[u].append(v)
    waiting = [len(us) for us in ups]
    rank, done = [0] * n, [False] * n
    ready = deque(v for v in range(n) if not waiting[v])
    left, stuck = n, 0
    while left:
        if not ready:
            while done[stuck]:
                stuck += 1
            ready.append(stuck)
        v = ready.popleft()
        if done[v]:
            continue
        done[v], left = True, left - 1
        for w in downs[v]:
            if not done[w]:
                rank[w] = max(rank[w], rank[v] + 1)
                waiting[w] -= 1
                if not waiting[w]:
                    ready.append(w)
    return rank


def _components(adj: list[list[int]]) -> list[list[int]]:
    """Connected components of an undirected ``adj``, each sorted, by smallest member."""
    seen = [False] * len(adj)
    comps = []
    for start in range(len(adj)):
        if not seen[start]:
            seen[start], comp = True, [start]
            for v in comp:  # grows while iterated: a breadth-first search
                fresh = [w for w in adj[v] if not seen[w]]
                for w in fresh:
                    seen[w] = True
                comp += fresh
            comps.append(sorted(comp))
    return comps


def _order(
    layers: list[list[int]], up_adj: list[list[int]], down_adj: list[list[int]]
) -> list[list[int]]:
    """Barycenter sweeps, down then up, keeping the ordering with the fewest crossings."""
    pos = {v: i for layer in layers for i, v in enumerate(layer)}
    best, fewest = [list(layer) for layer in layers], _crossings(layers, down_adj, pos)
    for _ in range(SWEEPS):
        for indices, adj in (
            (range(1, len(layers)), up_adj),
            (range(len(layers) - 2, -1, -1), down_adj),
        ):
            if not fewest:
                return best
            for r in indices:
                _by_barycenter(layers[r], adj, pos)
            crossings = _crossings(layers, down_adj, pos)
            if crossings < fewest:
                best, fewest = [list(layer) for layer in layers], crossings
    return best


def _by_barycenter(layer: list[int], adj: list[list[int]], pos: dict[int, int]) -> None:
    def key(v: int) -> tuple[float, int]:
        nb = adj[v]
        # A node with no neighbours on that side stays put; the current position breaks ties,
        # which keeps the result deterministic and the sort stable across sweeps.
        return (sum(pos[u] for u in nb) / len(nb) if nb else pos[v], pos[v])

    layer.sort(key=key)
    for i, v in enumerate(layer):
        pos[v] = i


def _crossings(layers: list[list[int]], down_adj: list[list[int]], pos: dict[int, int]) -> int:
    """Edge crossings between adjacent layers: with edges sorted by their upper ends, each
    lower end already seen further right is one crossing."""
    total = 0
    for upper in layers[:-1]:
        seen: list[int] = []
        for _, p in sorted((pos[u], pos[w]) for u in upper for w in down_adj[u]):
            total += len(seen) - bisect.bisect_right(seen, p)
            bisect.insort(seen, p)
    return total


def _place(
    layers: list[list[int]],
    up_adj: list[list[int]],
    down_adj: list[list[int]],
    height_of: list[float],
    y: list[float],
) -> None:
    """Vertical positions: stack each layer, then repeatedly pull every node towards its
    neighbours' mean, solved exactly per layer under the ordering and spacing constraints."""
    for layer in layers:
        offsets = _offsets(layer, height_of)
        for v, c in zip(layer, offsets, strict=True):
            y[v] = c - offsets[-1] / 2
    for _ in range(SWEEPS):
        for r in range(1, len(layers)):
            _pull(layers[r], up_adj, height_of, y)
        for r in range(len(layers) - 2, -1, -1):
            _pull(layers[r], down_adj, height_of, y)
    both = [u + d for u, d in zip(up_adj, down_adj, strict=True)]
    for layer in layers:
        _pull(layer, both, height_of, y)


def _offsets(layer: list[int], height_of: list[float]) -> list[float]:
    """How far below the first node of its layer each node must be, at least."""
    h = height_of
    seps = (
        (h[a] + h[b]) / 2 + (ROW_GAP if h[a] and h[b] else DUMMY_GAP)
        for a, b in itertools.pairwise(layer)
    )
    return list(itertools.accumulate(seps, initial=0.0))


def _pull(layer: list[int], adj: list[list[int]], height_of: list[float], y: list[float]) -> None:
    # With c the least offsets, z = y - c must be non-decreasing: a weighted isotonic
    # regression, which pool-adjacent-violators solves exactly. Virtual nodes weigh more so
    # long edges come out straight.
    offsets = _offsets(layer, height_of)
    blocks: list[tuple[float, float, int]] = []  # (z, weight, how many nodes)
    for v, c in zip(layer, offsets, strict=True):
        nb = adj[v]
        z = (sum(y[u] for u in nb) / len(nb) if nb else y[v]) - c
        w, k = (1.0 if height_of[v] else 4.0) * (1 if nb else 0.5), 1
        while blocks and blocks[-1][0] > z:
            pz, pw, pk = blocks.pop()
            z, w, k = (pz * pw + z * w) / (pw + w), pw + w, pk + k
        blocks.append((z, w, k))
    zs = [z for z, _, k in blocks for _ in range(k)]
    for v, c, z in zip(layer, offsets, zs, strict=True):
        y[v] = z + c


_DEFS = (
    '<defs><marker id="dag-arrow" viewBox="0 0 10 10" refX="10" refY="5" markerWidth="8"'
    ' markerHeight="8" orient="auto-start-reverse"><path d="M0,0 L10,5 L0,10 z"'
    ' fill="#888"/></marker></defs>'
)


def render_svg(nodes: Sequence[DagNode], *, link: Callable[[str], str | None] | None = None) -> str:
    """The task graph as an inline ``<svg>``; ``link(id)`` may give a URL for each node.
    Colours belong to the page's CSS (classes ``state-*``); the fills here are fallbacks."""
    lay = layout(nodes)
    w, h = _num(lay.width), _num(lay.height)
    head = (
        f'<svg xmlns="http://www.w3.org/2000/svg" class="dag" viewBox="0 0 {w} {h}"'
        f' width="{w}" height="{h}" role="img" aria-label="pipeline graph">'
    )
    if not lay.positions:
        return head + f'<text x="{_num(MARGIN)}" y="{_num(MARGIN + 4)}">no tasks</text></svg>'
    parts = [head, _DEFS, '<g class="edges">']
    for edge in lay.edges:
        parts.append(
            f'<path class="edge" d="{_path(edge.points)}" data-source="{_esc(edge.source)}"'
            f' data-target="{_esc(edge.target)}" fill="none" stroke="#888"'
            ' marker-end="url(#dag-arrow)"/>'
        )
    parts.append('</g><g class="nodes">')
    first = {node.id: node for node in reversed(nodes)}
    for layer in lay.layers:
        for node_id in layer:
            node = first[node_id]
            group = _node(node, lay.positions[node_id])
            url = link(node_id) if link is not None else None
            parts.append(f'<a href="{_esc(url)}">{group}</a>' if url else group)
    parts.append("</g></svg>")
    return "".join(parts)


def _node(node: DagNode, centre: Point) -> str:
    cx, cy = centre
    h = node.height
    left, top = cx - NODE_W / 2, cy - h / 2
    rounded = h / 2 if node.kind == "check" else 6
    box = (
        f'width="{_num(NODE_W)}" height="{_num(h)}" rx="{_num(rounded)}" fill="#fff"'
        ' stroke="#888"'
    )
    classes = f"node state-{_token(node.state or 'none')}" + (" mapped" if node.mapped else "")
    if node.kind == "group":
        return _group(node, classes, left, top, box, cx, cy)
    if node.kind == "check":
        classes += " check"
        data = f'data-check="{_esc(node.id)}"'
        tip = " · ".join(part for part in ("check " + node.label, node.state, node.detail) if part)
    else:
        data = f'data-task="{_esc(node.id)}"'
        tip = " · ".join(part for part in (node.id, node.state, node.detail) if part)
    out = f'<g class="{classes}" {data}><title>{_esc(tip)}</title>'
    if node.mapped:
        out += f'<rect class="stack" x="{_num(left + _STACK)}" y="{_num(top - _STACK)}" {box}/>'
    out += f'<rect x="{_num(left)}" y="{_num(top)}" {box}/>'
    if node.kind == "check":  # its name only: the rest is in its title and the table
        out += _text("label", cx, cy, node.label)
    elif node.detail:
        out += _text("label", cx, cy - 7, node.label) + _text("detail", cx, cy + 9, node.detail)
    else:
        out += _text("label", cx, cy, node.label)
    return out + "</g>"


def _group(
    node: DagNode, classes: str, left: float, top: float, box: str, cx: float, cy: float
) -> str:
    # A stack like a mapped node's, and a bar of its tasks' states in proportion.
    tip = " · ".join(part for part in (node.label, node.detail) if part)
    out = (
        f'<g class="{classes} group" data-group="{_esc(node.id)}" data-count="{node.count}">'
        f"<title>{_esc(tip)}</title>"
        f'<rect class="stack" x="{_num(left + _STACK)}" y="{_num(top - _STACK)}" {box}/>'
        f'<rect x="{_num(left)}" y="{_num(top)}" {box}/>'
        + _text("label", cx, cy - 14, node.label)
        + _text("detail", cx, cy + 2, node.detail)
    )
    total = sum(n for _, n in node.counts)
    x, width = left + _TEXT_PAD, NODE_W - 2 * _TEXT_PAD
    for state, n in node.counts:
        # A single failure among 10,000 must still be seen: at least two pixels each.
        w = max(width * n / total, 2.0)
        out += (
            f'<rect class="seg state-{_token(state)}" x="{_num(x)}" y="{_num(cy + 13)}"'
            f' width="{_num(w)}" height="{_num(BAR_H)}" fill="#888"/>'
        )
        x += w
    return out + "</g>"


def _text(cls: str, x: float, y: float, text: str) -> str:
    room = math.floor((NODE_W - 2 * _TEXT_PAD) / _CHAR_W)
    fitted = text if len(text) <= room else text[: room - 1] + "…"
    return (
        f'<text class="{cls}" x="{_num(x)}" y="{_num(y)}" text-anchor="middle"'
        f' dominant-baseline="central">{_esc(fitted)}</text>'
    )


def _path(points: Sequence[Point]) -> str:
    # Cubic pieces with horizontal tangents at both ends: straight through the columns, an
    # S-bend in each gap, and the arrow arrives level with the box.
    (x0, y0), *rest = points
    d = [f"M{_num(x0)},{_num(y0)}"]
    for (px, py), (qx, qy) in zip(points, rest, strict=False):
        mid = (qx - px) / 2
        d.append(f"C{_num(px + mid)},{_num(py)} {_num(qx - mid)},{_num(qy)} {_num(qx)},{_num(qy)}")
    return " ".join(d)
