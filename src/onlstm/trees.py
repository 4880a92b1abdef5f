"""Binary trees over a sentence: decoders, baselines, formats and spans.

A tree is a nested structure of Python lists (tuples are accepted on input) whose leaves are
the words, as strings: ``"cat"`` is the one-word tree, ``["the", ["cat", "sat"]]`` is
``(the (cat sat))``. This is the format of the published ON-LSTM code and of its JSON
examples, so trees can be written with :func:`json.dumps` and compared with ``==``.

Decoders (docs/spec.md §2) turn a sentence and one syntactic distance per word into a binary tree:

- :func:`greedy` -- the published decoder: the word with the largest distance opens a
  constituent running to the end of the current span, ``[left, [w_k, right]]``;
- :func:`split` -- the alternative left in the published code: cut the span into
  ``[left, right]`` just before the word of largest distance after the first word.

Baselines (docs/spec.md §3): :func:`left_branching`, :func:`right_branching`, :func:`balanced` and
:func:`random_tree` (uniform over all binary trees of the sentence, seeded).

Structure: :func:`leaves`, :func:`spans` (docs/spec.md §3 spans), :func:`height` (the longest
root-to-word path; :func:`depth` is the same function under its older name),
:func:`word_depths` / :func:`average_word_depth` (the number of constituents above each word,
and its mean: the "depth" of the ON-LSTM paper's Table 2), :func:`is_binary`.

Formats live in :mod:`onlstm.tree_formats` (:func:`to_bracketed` / :func:`from_bracketed`,
:func:`to_json` / :func:`from_json`, :func:`draw`) and are reachable from here as well
(``onlstm.trees.draw``), loaded on first use.

Every function here walks trees with an explicit stack rather than recursion, so trees of
sentences of any length (a right-branching tree of 5,000 words is 5,000 levels deep) work.
"""

from __future__ import annotations

import math
import random
from collections.abc import Callable, Sequence
from typing import NamedTuple, Union

__all__ = [
    "Tree",
    "Span",
    "greedy",
    "split",
    "left_branching",
    "right_branching",
    "balanced",
    "random_tree",
    "BASELINES",
    "leaves",
    "spans",
    "height",
    "depth",
    "word_depths",
    "average_word_depth",
    "is_binary",
    "to_bracketed",
    "from_bracketed",
    "to_json",
    "from_json",
    "draw",
]

#: A word (leaf) or a list of subtrees. Tuples are accepted wherever a tree is read.
Tree = Union[str, list, tuple]
#: A constituent as ``(start, end)``: word indices, 0-based, ``end`` exclusive.
Span = tuple[int, int]


# --------------------------------------------------------------------------------------
# Decoders
# --------------------------------------------------------------------------------------


def _check_sentence(words: Sequence[str], distances: Sequence[float] | None = None) -> list[float]:
    """Validate a sentence (and its distances); return the distances as floats."""
    if len(words) == 0:
        raise ValueError("cannot build a tree for an empty sentence")
    if distances is None:
        return []
    values = [float(d) for d in distances]
    if len(values) != len(words):
        raise ValueError(f"{len(words)} words but {len(values)} distances")
    if any(math.isnan(v) for v in values):
        raise ValueError("distances contain NaN")
    return values


def _first_argmax(values: Sequence[float], lo: int, hi: int) -> int:
    """Index of the first maximum of ``values[lo:hi]`` (``lo < hi``)."""
    best = lo
    for t in range(lo + 1, hi):
        if values[t] > values[best]:
            best = t
    return best


def greedy(words: Sequence[str], distances: Sequence[float]) -> Tree:
    """The published ON-LSTM decoder (docs/spec.md §2), for one sentence.

    ``k`` is the first position of the largest distance in the span; the tree is
    ``[tree(w_<k), [w_k, tree(w_>k)]]``, leaving out whichever side is empty (so the word
    of largest distance opens a constituent that runs to the end of the span)::

        tree(w, d):
          if T == 1: return w_1
          k = argmax_t d_t                        # first maximum on ties
          left  = tree(w_<k, d_<k)  if k > 1
          right = [w_k, tree(w_>k, d_>k)] if k < T else w_k
          return [left, right] if left exists else right

    ``distances`` may be any sequence of numbers (a list, a 1-D array or tensor), one per
    word. Raises ``ValueError`` for an empty sentence, a length mismatch or NaN.
    """
    d = _check_sentence(words, distances)
    # Cutting before the first maximum k, then right after it in the span that k starts,
    # gives exactly the recursion above.
    return _build_by_cuts(words, lambda lo, hi: max(_first_argmax(d, lo, hi), lo + 1))


def _build_by_cuts(words: Sequence[str], cut: Callable[[int, int], int]) -> Tree:
    """Top-down binary tree: ``words[lo:hi]`` becomes ``[tree(lo:k), tree(k:hi)]``.

    ``cut(lo, hi)`` returns the cut point ``k`` with ``lo < k < hi`` (called only when the
    span has at least two words).
    """
    root: list = [None]
    stack: list[tuple[int, int, list, int]] = [(0, len(words), root, 0)]
    while stack:
        lo, hi, holder, slot = stack.pop()
        if hi - lo == 1:
            holder[slot] = words[lo]
            continue
        k = cut(lo, hi)
        if not lo < k < hi:  # pragma: no cover - guards the callers below
            raise AssertionError(f"bad cut {k} for span ({lo}, {hi})")
        node: list = [None, None]
        holder[slot] = node
        # Push the right part first so that the left part is built first (order is
        # irrelevant for the result, but it keeps random_tree's draws left to right).
        stack.append((k, hi, node, 1))
        stack.append((lo, k, node, 0))
    return root[0]


def split(words: Sequence[str], distances: Sequence[float]) -> Tree:
    """The alternative decoder of the published code: split at the largest distance.

    The span is cut into ``[tree(w_<k), tree(w_>=k)]`` where ``k`` is the first position of
    the largest distance *after the first word of the span* (the first word's distance is
    ignored, so both parts are non-empty). Same inputs and errors as :func:`greedy`.
    """
    d = _check_sentence(words, distances)
    return _build_by_cuts(words, lambda lo, hi: _first_argmax(d, lo + 1, hi))


# --------------------------------------------------------------------------------------
# Baselines
# --------------------------------------------------------------------------------------


def left_branching(words: Sequence[str]) -> Tree:
    """``(((w1 w2) w3) w4)``."""
    _check_sentence(words)
    tree: Tree = words[0]
    for word in words[1:]:
        tree = [tree, word]
    return tree


def right_branching(words: Sequence[str]) -> Tree:
    """``(w1 (w2 (w3 w4)))``."""
    _check_sentence(words)
    tree: Tree = words[-1]
    for word in reversed(words[:-1]):
        tree = [word, tree]
    return tree


def balanced(words: Sequence[str]) -> Tree:
    """Split every span in the middle; with an odd length the right part is the longer.

    ``balanced("a b c".split()) == ["a", ["b", "c"]]``.
    """
    _check_sentence(words)
    return _build_by_cuts(words, lambda lo, hi: lo + (hi - lo) // 2)


def _catalan(n: int) -> list[int]:
    """``[C_0, ..., C_n]``: ``C_m`` is the number of binary trees with ``m + 1`` leaves."""
    numbers = [1]
    for m in range(1, n + 1):
        numbers.append(numbers[-1] * 2 * (2 * m - 1) // (m + 1))
    return numbers


def random_tree(words: Sequence[str], rng: random.Random | int | None = 0) -> Tree:
    """A binary tree drawn uniformly among all binary trees over ``words``.

    Every one of the Catalan(T-1) bracketings is equally likely: the top cut ``k`` is drawn
    with probability proportional to the number of trees on each side, then each side is
    drawn the same way (exact big-integer arithmetic, no bias for long sentences).

    ``rng`` is a :class:`random.Random` (used and advanced, so a corpus can be drawn from
    one generator) or an int seed (a fresh generator); ``None`` draws from an unseeded one.
    """
    _check_sentence(words)
    if not isinstance(rng, random.Random):
        rng = random.Random(rng)
    catalan = _catalan(len(words))

    def cut(lo: int, hi: int) -> int:
        n = hi - lo  # leaves; a left part of j leaves has C_{j-1} * C_{n-j-1} trees
        r = rng.randrange(catalan[n - 1])
        for j in range(1, n):
            r -= catalan[j - 1] * catalan[n - j - 1]
            if r < 0:
                return lo + j
        raise AssertionError("unreachable: the counts sum to C_{n-1}")  # pragma: no cover

    return _build_by_cuts(words, cut)


#: The baseline trees of docs/spec.md §3 by name. ``random`` takes the rng/seed as second argument.
BASELINES: dict[str, Callable[..., Tree]] = {
    "left": left_branching,
    "right": right_branching,
    "balanced": balanced,
    "random": random_tree,
}


# --------------------------------------------------------------------------------------
# Structure
# --------------------------------------------------------------------------------------


def _children(node: Tree) -> Sequence[Tree]:
    if isinstance(node, (list, tuple)):
        if len(node) == 0:
            raise ValueError("a tree node has no children")
        return node
    raise TypeError(f"a tree is made of str leaves and lists/tuples, not {type(node).__name__}")


def leaves(tree: Tree) -> list[str]:
    """The words of ``tree``, left to right."""
    out: list[str] = []
    stack: list[Tree] = [tree]
    while stack:
        node = stack.pop()
        if isinstance(node, str):
            out.append(node)
        else:
            stack.extend(reversed(_children(node)))
    return out


def spans(tree: Tree, *, include_whole: bool = False) -> set[Span]:
    """The constituents of ``tree`` as ``(start, end)`` word spans (docs/spec.md §3).

    Only spans of at least two words are returned, and the span of the whole sentence is
    left out unless ``include_whole``. Works for n-ary trees too (a node with one child
    adds nothing beyond its child).
    """
    measured = measures(tree)
    if include_whole and measured.words >= 2:
        return measured.spans | {(0, measured.words)}
    return measured.spans


def height(tree: Tree) -> int:
    """Length (in edges) of the longest path from the root to a word; a word has height 0.

    This is what ``parse-eval`` printed as "depth" before it also reported
    :func:`average_word_depth`; ``height(right_branching(w)) == len(w) - 1``.
    """
    return measures(tree).height


#: The older name of :func:`height` (the tree's height, not the paper's word depth).
depth = height


def word_depths(tree: Tree) -> list[int]:
    """For each word, left to right, the number of constituents (internal nodes) above it.

    The root counts, so every word of a tree of two words or more has depth >= 1, and a
    one-word tree gives ``[0]``; every node counts, unary ones included. For a binary tree
    the sum of the word depths is the sum of the lengths of its spans, the whole sentence
    included (each constituent is counted once per word it covers).
    """
    out: list[int] = []
    stack: list[tuple[Tree, int]] = [(tree, 0)]
    while stack:
        node, level = stack.pop()
        if isinstance(node, str):
            out.append(level)
        else:
            stack.extend((child, level + 1) for child in reversed(_children(node)))
    return out


def average_word_depth(tree: Tree) -> float:
    """The mean of :func:`word_depths`: the per-sentence "depth" of the ON-LSTM paper.

    The paper's Table 2 reports the mean of this over the sentences of the test set (the
    published evaluation writes each tree in brackets and averages, over the words, the
    number of brackets open at each word). Right-branching over ``n >= 2`` words gives
    ``(n (n - 1) / 2 + n - 1) / n``.
    """
    depths = word_depths(tree)
    return sum(depths) / len(depths)


class Measures(NamedTuple):
    """What scoring reads from one tree, found in one walk (:func:`measures`)."""

    words: int  #: number of leaves
    spans: set  #: :func:`spans` (whole sentence left out)
    height: int  #: :func:`height`
    depth_sum: int  #: sum of :func:`word_depths`


def measures(tree: Tree) -> Measures:
    """The leaf count, :func:`spans`, :func:`height` and the sum of :func:`word_depths` of
    ``tree`` in one walk (scoring a treebank needs all four for every tree)."""
    found: set[Span] = set()
    position = deepest = depth_sum = 0
    open_starts: list[int] = []
    stack: list[tuple[Tree, int, bool]] = [(tree, 0, False)]  # (node, level, leaving?)
    while stack:
        node, level, leaving = stack.pop()
        if isinstance(node, str):
            position += 1
            depth_sum += level
            if level > deepest:
                deepest = level
        elif leaving:
            start = open_starts.pop()
            if position - start >= 2:
                found.add((start, position))
        else:
            open_starts.append(position)
            stack.append((node, level, True))
            stack.extend((child, level + 1, False) for child in reversed(_children(node)))
    found.discard((0, position))
    return Measures(position, found, deepest, depth_sum)


def mirror(tree: Tree) -> Tree:
    """The tree read right to left: every node's children reversed (leaves unchanged), so
    ``leaves(mirror(t)) == leaves(t)[::-1]`` and a span ``(i, j)`` of ``t`` over ``n`` words
    becomes ``(n - j, n - i)``."""
    if isinstance(tree, str):
        return tree
    return [mirror(child) for child in reversed(_children(tree))]


def is_binary(tree: Tree) -> bool:
    """True when every internal node has exactly two children."""
    stack: list[Tree] = [tree]
    while stack:
        node = stack.pop()
        if isinstance(node, str):
            continue
        children = _children(node)
        if len(children) != 2:
            return False
        stack.extend(children)
    return True


_FORMATS = frozenset({"to_bracketed", "from_bracketed", "to_json", "from_json", "draw"})


def __getattr__(name: str):
    """``onlstm.trees.draw`` etc.: the text forms, which live in :mod:`onlstm.tree_formats`."""
    if name in _FORMATS:
        from . import tree_formats

        return getattr(tree_formats, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
