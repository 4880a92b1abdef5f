"""onlstm.tree_svg: one leaf per word, one bar per word and layer, marks and labels where
asked, well-formed escaped SVG for any tree and any words."""

import random
import xml.etree.ElementTree as ET

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from onlstm import trees as T
from onlstm.tree_svg import FONT, SVG_CSS, labels_by_span, span_marks, text_width, tree_svg

NS = "{http://www.w3.org/2000/svg}"


def _by_class(svg, cls):
    return [e for e in ET.fromstring(svg).iter() if cls in (e.get("class") or "").split()]


def _xs(svg):
    return [float(e.get("x")) for e in _by_class(svg, "leaf")]


words_strategy = st.lists(st.text(st.characters(blacklist_categories=("Cs", "Cc", "Zs", "Zl", "Zp")),
                                  min_size=1, max_size=6), min_size=1, max_size=30)


@settings(max_examples=60, deadline=None)
@given(words=words_strategy, seed=st.integers(0, 10**6), layers=st.integers(0, 3))
def test_any_tree_one_leaf_per_word_and_one_bar_per_word_and_layer(words, seed, layers):
    rng = random.Random(seed)
    tree = T.random_tree(words, rng)
    rows = [[rng.random() for _ in words] for _ in range(layers)]
    svg = tree_svg(tree, rows or None, chosen=0 if layers else None)
    leaves = _by_class(svg, "leaf")
    assert [e.text for e in leaves] == words  # escaped and read back as typed
    assert [int(e.get("data-index")) for e in leaves] == list(range(len(words)))
    xs = _xs(svg)
    assert xs == sorted(xs) and len(set(xs)) == len(xs)  # words left to right, no two in one column
    bars = _by_class(svg, "bar")
    assert len(bars) == layers * len(words)
    assert sorted((int(b.get("data-layer")), int(b.get("data-index"))) for b in bars) == \
        [(k + 1, t) for k in range(layers) for t in range(len(words))]
    # one drawn constituent per internal node of the tree
    assert {tuple(map(int, g.get("data-span").split("-"))) for g in _by_class(svg, "node")} == \
        (T.spans(tree, include_whole=True) if len(words) > 1 else {(0, 1)})


def test_bars_sit_under_their_words_and_scale_per_row():
    words = ["the", "cat", "sat"]
    svg = tree_svg([["the", "cat"], "sat"], [[0.1, 0.5, 0.3], [0.2, 0.2, 0.2]], chosen=1)
    xs = _xs(svg)
    for bar in _by_class(svg, "bar"):
        t = int(bar.get("data-index"))
        assert abs(float(bar.get("x")) + float(bar.get("width")) / 2 - xs[t]) < 0.11
        assert words[t] in bar.find(NS + "title").text
    first = sorted((b for b in _by_class(svg, "bar") if b.get("data-layer") == "1"), key=lambda b: int(b.get("data-index")))
    heights = [float(b.get("height")) for b in first]
    assert heights[1] == max(heights) and heights[0] == min(heights)  # smallest and largest of the row
    chosen = [b for b in _by_class(svg, "bar") if "chosen" in b.get("class")]
    assert {b.get("data-layer") for b in chosen} == {"2"} and len(chosen) == 3
    assert len([b for b in _by_class(tree_svg("a", [[1.0]], chosen="mean"), "bar") if "chosen" in b.get("class")]) == 1


def test_marks_labels_and_escaping():
    gold = [["the", "cat"], ["sat", ["on", ["the", "mat"]]]]
    predicted = [["the", ["cat", "sat"]], ["on", ["the", "mat"]]]
    gold_marks, predicted_marks = span_marks(T.spans(predicted), T.spans(gold))
    assert gold_marks == {(0, 2): "miss", (2, 6): "miss", (3, 6): "match", (4, 6): "match"}
    assert predicted_marks == {(0, 3): "extra", (1, 3): "extra", (3, 6): "match", (4, 6): "match"}
    svg = tree_svg(gold, marks=gold_marks, labels={(0, 2): "NP", (0, 6): "S"})
    spans = {g.get("data-span"): g.get("class") for g in _by_class(svg, "node")}
    assert spans == {"0-2": "node miss", "2-6": "node miss", "3-6": "node match", "4-6": "node match",
                     "0-6": "node whole"}
    assert sorted(e.text for e in _by_class(svg, "label")) == ["NP", "S"]
    odd = tree_svg(["<b>", ['"&"', "x]]>"]], title="<script>")
    assert [e.text for e in _by_class(odd, "leaf")] == ["<b>", '"&"', "x]]>"] and "<script>" not in odd
    with pytest.raises(ValueError, match="unknown mark"):
        tree_svg([["a", "b"], "c"], marks={(0, 2): "maybe"})
    with pytest.raises(ValueError, match="2 distances for 3 words"):
        tree_svg(["a", ["b", "c"]], [[0.1, 0.2]])
    with pytest.raises(ValueError):
        tree_svg([])


def test_standalone_deep_wide_and_labels_by_span():
    words = [f"w{i}" for i in range(3000)]
    svg = tree_svg(T.right_branching(words), standalone=True)  # 3,000 levels: no recursion limit
    root = ET.fromstring(svg)
    assert root.find(NS + "style").text == SVG_CSS and len(_by_class(svg, "leaf")) == 3000
    tall = ET.fromstring(tree_svg(T.right_branching(words[:60])))
    assert float(tall.get("height")) < 520  # 59 levels squeezed, not 59 levels of 24 px
    assert text_width("北京") == 2 * FONT and text_width("ab") < text_width("北京")
    assert labels_by_span([(0, 2, "NP"), (2, 5, "S"), (2, 5, "VP"), (2, 5, "S")]) == {(0, 2): "NP", (2, 5): "S/VP"}
