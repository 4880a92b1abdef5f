"""Trees and syntactic distances as SVG, in pure Python (docs/spec.md §2, §3).

:func:`tree_svg` draws one sentence: its tree as a dendrogram above the words (every
constituent is a horizontal bar joining its children, at a height set by the constituent's
height, so a word's column runs straight down from the tree to it), and, optionally, the
distances of every layer as one row of bars per layer under the words, each bar centred
under its word. Constituents can be marked (``match`` / ``miss`` / ``extra``: a predicted
tree against a gold one) and labelled (the gold labels).

The drawing is plain SVG text with stable classes for styling and for tests:

- ``svg.ts``: the root; ``text.leaf[data-index=t]``: word ``t`` (one per word);
- ``g.node[data-span="s-e"]``: the constituent over words ``s..e-1``, with its mark as a
  class (``match``, ``miss``, ``extra``; ``whole`` for the whole sentence, ``plain``
  otherwise), holding its path and dot;
- ``rect.bar[data-layer=k][data-index=t]``: the distance of word ``t`` in layer ``k``
  (1-based), class ``chosen`` on the row(s) that decoded the tree.

:data:`SVG_CSS` styles those classes (the web viewer serves it, the demo's report.html
inlines it; ``standalone=True`` puts it inside the SVG). Words are XML-escaped; layout is
iterative, so trees of any depth are drawn. Bar heights are scaled per row from the row's
smallest to its largest value (the decoders only compare distances within a sentence and
layer); the exact values are in each bar's tooltip and the row's range at its right end.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Mapping, Sequence
from typing import Optional, Union
from xml.sax.saxutils import escape, quoteattr

from .trees import Span, Tree

__all__ = ["SVG_CSS", "MARKS", "tree_svg", "span_marks", "labels_by_span", "text_width"]

#: Marks of a constituent: in both trees, only in the gold tree, only in the predicted one.
MARKS = ("match", "miss", "extra")

FONT = 14  # px, the words
LEVEL_MAX, LEVEL_MIN = 24.0, 6.0  # px between tree levels
TREE_MAX_HEIGHT = 420.0  # px the levels are squeezed into when the tree is tall (down to LEVEL_MIN)
ROW_HEIGHT, ROW_GAP = 26.0, 5.0  # px of one layer's bars
MIN_COLUMN, COLUMN_PAD = 34.0, 14.0
LEFT, RIGHT, TOP = 40.0, 78.0, 14.0

SVG_CSS = """\
svg.ts { font-family: system-ui, -apple-system, "Segoe UI", "Noto Sans", "Noto Sans CJK SC", sans-serif; }
svg.ts .leaf { font-size: 14px; fill: #0f172a; }
svg.ts .node path { fill: none; stroke: #94a3b8; stroke-width: 1.5; stroke-linejoin: round; }
svg.ts .node circle { fill: #94a3b8; }
svg.ts .node.whole path { stroke: #64748b; }
svg.ts .node.match path { stroke: #15803d; stroke-width: 2.6; }
svg.ts .node.match circle { fill: #15803d; }
svg.ts .node.miss path { stroke: #dc2626; stroke-width: 2.2; stroke-dasharray: 6 3; }
svg.ts .node.miss circle { fill: #dc2626; }
svg.ts .node.extra path { stroke: #d97706; stroke-width: 2.2; stroke-dasharray: 2 3; }
svg.ts .node.extra circle { fill: #d97706; }
svg.ts .node:hover path { stroke-width: 3.4; }
svg.ts .label { font-size: 10px; fill: #475569; font-weight: 600; paint-order: stroke; stroke: #fff;
  stroke-width: 3px; stroke-linejoin: round; }
svg.ts .node.match .label { fill: #15803d; }
svg.ts .node.miss .label { fill: #dc2626; }
svg.ts .bar { fill: #cbd5e1; }
svg.ts .bar.chosen { fill: #2563eb; }
svg.ts .bar:hover { fill: #f59e0b; }
svg.ts .rowbg { fill: #f8fafc; }
svg.ts .rowlabel, svg.ts .range { font-size: 10px; fill: #64748b; }
svg.ts .rowlabel.chosen { fill: #2563eb; font-weight: 700; }
"""

Number = Union[int, float]


def text_width(text: str, size: float = FONT) -> float:
    """Estimated width in px of ``text`` at font size ``size`` (wide East Asian characters
    take a full em, narrow ones about 0.6 em)."""
    return sum(size if unicodedata.east_asian_width(c) in "WF" else 0.6 * size for c in text)


def span_marks(predicted: set[Span], gold: set[Span]) -> tuple[dict[Span, str], dict[Span, str]]:
    """The marks of the gold tree's and the predicted tree's constituents: ``match`` for a
    span in both, ``miss`` for a gold span not predicted, ``extra`` for a predicted span not
    in the gold tree. Returns ``(gold_marks, predicted_marks)``."""
    gold_marks = {s: ("match" if s in predicted else "miss") for s in gold}
    predicted_marks = {s: ("match" if s in gold else "extra") for s in predicted}
    return gold_marks, predicted_marks


def _layout(tree: Tree) -> tuple[list[str], list[dict]]:
    """The words and the internal nodes of ``tree``, children before parents: each node has
    ``start``, ``end`` (word span), ``height`` (edges to its deepest word) and ``children``
    (a list of ``("word", t)`` or ``("node", index into the list)``)."""
    words: list[str] = []
    nodes: list[dict] = []
    # (subtree, leaving?, slot of the parent's children list to fill)
    stack: list[tuple[Tree, bool, Optional[list]]] = [(tree, False, None)]
    open_nodes: list[dict] = []
    while stack:
        node, leaving, parent_children = stack.pop()
        if isinstance(node, str):
            if parent_children is not None:
                parent_children.append(("word", len(words)))
            words.append(node)
            continue
        if not leaving:
            if not isinstance(node, (list, tuple)) or len(node) == 0:
                raise ValueError(f"a tree is made of words and non-empty lists, got {node!r}")
            record = dict(start=len(words), end=None, height=0, children=[], parent_children=parent_children)
            open_nodes.append(record)
            stack.append((node, True, parent_children))
            for child in reversed(node):
                if not isinstance(child, (str, list, tuple)):
                    raise ValueError(f"a tree is made of words and non-empty lists, got {child!r}")
                stack.append((child, False, record["children"]))
            continue
        record = open_nodes.pop()
        record["end"] = len(words)
        record["height"] = 1 + max((nodes[i]["height"] if kind == "node" else 0) for kind, i in record["children"])
        index = len(nodes)
        nodes.append(record)
        owner = record.pop("parent_children")
        if owner is not None:
            owner.append(("node", index))
    if not words:
        raise ValueError("cannot draw a tree without words")
    return words, nodes


def _num(v: float) -> str:
    return f"{v:.1f}".rstrip("0").rstrip(".")


def tree_svg(
    tree: Tree,
    distances: Optional[Sequence[Sequence[Number]]] = None,
    *,
    chosen: Union[int, str, None] = None,
    marks: Optional[Mapping[Span, str]] = None,
    labels: Optional[Mapping[Span, str]] = None,
    distance_name: str = "d_f",
    title: Optional[str] = None,
    standalone: bool = False,
) -> str:
    """One sentence as an SVG element (a string).

    ``tree``: nested lists over the words (binary or not); ``distances``: (layers, T)
    values, one row per layer, drawn as bars under the words (none when None); ``chosen``:
    the 0-based layer whose row decoded the tree, or ``"mean"`` for all rows; ``marks``:
    span -> one of :data:`MARKS` (other constituents are ``plain``, the whole sentence
    ``whole``); ``labels``: span -> text shown above the constituent; ``distance_name``:
    how the rows are captioned (``d_f`` or ``d_i``); ``title``: the SVG's accessible name
    (default: the words); ``standalone``: include :data:`SVG_CSS` inside the SVG.

    Raises ``ValueError`` for a malformed tree or a distance row whose length is not the
    number of words."""
    words, nodes = _layout(tree)
    n = len(words)
    rows = [] if distances is None else [[float(v) for v in row] for row in distances]
    for k, row in enumerate(rows):
        if len(row) != n:
            raise ValueError(f"layer {k + 1}: {len(row)} distances for {n} words")
    marks = marks or {}
    labels = labels or {}

    widths = [max(MIN_COLUMN, text_width(w) + COLUMN_PAD) for w in words]
    xs, left = [], LEFT
    for w in widths:
        xs.append(left + w / 2)
        left += w
    width = left + RIGHT
    caption = f"{distance_name} per layer (each row scaled from its min to its max)"
    if rows:
        width = max(width, LEFT + text_width(caption, 10) + 8)  # the caption is not cut
    top_height = max((node["height"] for node in nodes), default=0)
    level = max(LEVEL_MIN, min(LEVEL_MAX, TREE_MAX_HEIGHT / max(top_height, 1)))
    label_room = 12.0 if labels else 0.0
    leaf_top = TOP + label_room + top_height * level + 6  # where the words' columns end, above the words
    baseline = leaf_top + FONT + 4
    rows_top = baseline + 10
    height = rows_top + (len(rows) * (ROW_HEIGHT + ROW_GAP) + 14 if rows else 4)

    node_x: list[float] = []
    node_y: list[float] = []
    for node in nodes:
        first, last = node["children"][0], node["children"][-1]
        x_first = xs[first[1]] if first[0] == "word" else node_x[first[1]]
        x_last = xs[last[1]] if last[0] == "word" else node_x[last[1]]
        node_x.append((x_first + x_last) / 2)
        node_y.append(leaf_top - node["height"] * level)

    name = title if title is not None else " ".join(words)
    out = [f'<svg xmlns="http://www.w3.org/2000/svg" class="ts" width="{_num(width)}" height="{_num(height)}" '
           f'viewBox="0 0 {_num(width)} {_num(height)}" role="img" aria-label={quoteattr(name)}>']
    if standalone:
        out.append(f"<style>{SVG_CSS}</style>")
    out.append(f"<title>{escape(name)}</title>")

    # the tree, roots last so that they are drawn on top
    for i, node in enumerate(nodes):
        span = (node["start"], node["end"])
        if span == (0, n):
            kind = "whole"
        else:
            kind = marks.get(span, "plain")
            if kind not in MARKS + ("plain",):
                raise ValueError(f"unknown mark {kind!r} for span {span}; choose one of {MARKS}")
        y = node_y[i]
        parts = []
        child_xs = []
        for child_kind, j in node["children"]:
            cx, cy = (xs[j], leaf_top) if child_kind == "word" else (node_x[j], node_y[j])
            child_xs.append(cx)
            parts.append(f"M{_num(cx)} {_num(cy)}V{_num(y)}")
        parts.append(f"M{_num(min(child_xs))} {_num(y)}H{_num(max(child_xs))}")
        tip = " ".join(words[span[0]:span[1]])
        label = labels.get(span)
        tooltip = (f"{label}: " if label else "") + tip + (f" ({kind})" if kind in MARKS else "")
        out.append(f'<g class="node {kind}" data-span="{span[0]}-{span[1]}"><title>{escape(tooltip)}</title>'
                   f'<path d="{"".join(parts)}"/><circle cx="{_num(node_x[i])}" cy="{_num(y)}" r="2.6"/>')
        if label:
            out.append(f'<text class="label" x="{_num(node_x[i])}" y="{_num(y - 5)}" '
                       f'text-anchor="middle">{escape(label)}</text>')
        out.append("</g>")
    if not nodes:  # a one-word sentence: a short stem above the word
        out.append(f'<g class="node whole" data-span="0-1"><path d="M{_num(xs[0])} {_num(leaf_top)}'
                   f'V{_num(leaf_top - level)}"/></g>')

    for t, (x, word) in enumerate(zip(xs, words)):
        out.append(f'<text class="leaf" data-index="{t}" x="{_num(x)}" y="{_num(baseline)}" '
                   f'text-anchor="middle">{escape(word)}</text>')

    for k, row in enumerate(rows):
        is_chosen = chosen == "mean" or chosen == k
        cls = " chosen" if is_chosen else ""
        y0 = rows_top + k * (ROW_HEIGHT + ROW_GAP)
        bottom = y0 + ROW_HEIGHT
        lo, hi = min(row), max(row)
        out.append(f'<rect class="rowbg" x="{_num(LEFT - 4)}" y="{_num(y0)}" width="{_num(left - LEFT + 8)}" '
                   f'height="{_num(ROW_HEIGHT)}" rx="3"/>')
        out.append(f'<text class="rowlabel{cls}" x="{_num(LEFT - 8)}" y="{_num(bottom - 8)}" '
                   f'text-anchor="end">L{k + 1}</text>')
        for t, (x, v) in enumerate(zip(xs, row)):
            scaled = 0.5 if hi <= lo else (v - lo) / (hi - lo)
            h = 2.0 + scaled * (ROW_HEIGHT - 4.0)
            w = min(widths[t] - 8.0, 24.0)
            out.append(f'<rect class="bar{cls}" data-layer="{k + 1}" data-index="{t}" x="{_num(x - w / 2)}" '
                       f'y="{_num(bottom - h)}" width="{_num(w)}" height="{_num(h)}" rx="1.5">'
                       f"<title>{escape(words[t])} · layer {k + 1}: {distance_name} = {v:.4f}</title></rect>")
        out.append(f'<text class="range" x="{_num(left + 10)}" y="{_num(bottom - 8)}">'
                   f"{lo:.2f}–{hi:.2f}</text>")
    if rows:
        out.append(f'<text class="range" x="{_num(LEFT - 4)}" y="{_num(height - 3)}">{escape(caption)}</text>')
    out.append("</svg>")
    return "".join(out)


def labels_by_span(labeled_spans: Sequence[tuple[int, int, str]]) -> dict[Span, str]:
    """``(start, end, label)`` triples (a gold sentence's, one per label of a collapsed
    unary chain) -> span -> the labels joined by ``/`` (``S/VP``), in their order."""
    out: dict[Span, list[str]] = {}
    for start, end, label in labeled_spans:
        names = out.setdefault((start, end), [])
        if label not in names:
            names.append(label)
    return {span: "/".join(names) for span, names in out.items()}

