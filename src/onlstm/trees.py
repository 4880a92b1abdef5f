"""Binary trees over a sentence: decoders, baselines, formats and spans.

A tree is a nested structure of Python lists (tuples are accepted on input) whose leaves are
the words, as strings: ``"cat"`` is the one-word tree, ``["the", ["cat", "sat"]]`` is
``(the (cat sat))``. This is the format of the published ON-LSTM code and of its JSON
examples, so trees can be written with :func:`json.dumps` and compared with ``==``.

Decoders (SPEC §2) turn a sentence and one syntactic distance per word into a binary tree:

- :func:`greedy` -- the published decoder: the word with the largest distance opens a
  constituent running to the end of the current span, ``[left, [w_k, right]]``;
- :func:`split` -- the alternative left in the published code: cut the span into
  ``[left, right]`` just before the word of largest distance after the first word.

Baselines (SPEC §3): :func:`left_branching`, :func:`right_branching`, :func:`balanced` and
:func:`random_tree` (uniform over all binary trees of the sentence, seeded).

Formats: :func:`to_bracketed` / :func:`from_bracketed` (``(w (w w))``), :func:`to_json` /
:func:`from_json`, :func:`draw` (a tree drawn for the terminal). Structure: :func:`leaves`,
:func:`spans` (SPEC §3 spans), :func:`depth`, :func:`is_binary`.

Every function here walks trees with an explicit stack rather than recursion, so trees of
sentences of any length (a right-branching tree of 5,000 words is 5,000 levels deep) work.
"""

from __future__ import annotations

import json
import math
import random
from collections.abc import Callable, Sequence
from typing import Union

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
    "depth",
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
    """The published ON-LSTM decoder (SPEC §2), for one sentence.

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
    # Work items: (lo, hi, holder, slot): build the tree of words[lo:hi] into holder[slot].
    root: list = [None]
    stack: list[tuple[int, int, list, int]] = [(0, len(words), root, 0)]
    while stack:
        lo, hi, holder, slot = stack.pop()
        if hi - lo == 1:
            holder[slot] = words[lo]
            continue
        k = _first_argmax(d, lo, hi)
        if k < hi - 1:
            right: Tree = [words[k], None]
            stack.append((k + 1, hi, right, 1))
        else:
            right = words[k]
        if k > lo:
            node = [None, right]
            stack.append((lo, k, node, 0))
            holder[slot] = node
        else:
            holder[slot] = right
    return root[0]


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


#: The baseline trees of SPEC §3 by name. ``random`` takes the rng/seed as second argument.
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
    """The constituents of ``tree`` as ``(start, end)`` word spans (SPEC §3).

    Only spans of at least two words are returned, and the span of the whole sentence is
    left out unless ``include_whole``. Works for n-ary trees too (a node with one child
    adds nothing beyond its child).
    """
    found: set[Span] = set()
    position = 0  # words seen so far
    open_starts: list[int] = []  # start of every node entered and not yet left
    stack: list[tuple[Tree, bool]] = [(tree, False)]  # (node, leaving?)
    while stack:
        node, leaving = stack.pop()
        if isinstance(node, str):
            position += 1
        elif leaving:
            start = open_starts.pop()
            if position - start >= 2:
                found.add((start, position))
        else:
            open_starts.append(position)
            stack.append((node, True))
            stack.extend((child, False) for child in reversed(_children(node)))
    if not include_whole:
        found.discard((0, position))
    return found


def depth(tree: Tree) -> int:
    """Length (in edges) of the longest path from the root to a word; a word has depth 0."""
    deepest = 0
    stack: list[tuple[Tree, int]] = [(tree, 0)]
    while stack:
        node, level = stack.pop()
        if isinstance(node, str):
            deepest = max(deepest, level)
        else:
            stack.extend((child, level + 1) for child in _children(node))
    return deepest


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


# --------------------------------------------------------------------------------------
# Formats
# --------------------------------------------------------------------------------------

_ESCAPES = {"(": "-LRB-", ")": "-RRB-"}


def _escape(word: str) -> str:
    if not word or any(ch.isspace() for ch in word):
        raise ValueError(f"word {word!r} cannot be written in bracketed form (empty or has spaces)")
    for raw, escaped in _ESCAPES.items():
        word = word.replace(raw, escaped)
    return word


class _Token:
    """Literal text scheduled on the writer's stack (distinct from a word)."""

    __slots__ = ("text",)

    def __init__(self, text: str) -> None:
        self.text = text


_CLOSE = _Token(")")
_SPACE = _Token(" ")


def to_bracketed(tree: Tree) -> str:
    """``["the", ["cat", "sat"]]`` -> ``"(the (cat sat))"``; a one-word tree is the word.

    Brackets inside words are written ``-LRB-`` / ``-RRB-`` as in the Penn Treebank (and
    stay so when read back); words must be non-empty and without whitespace.
    """
    parts: list[str] = []
    # Items are subtrees to write, or literal tokens (")" or " ") to emit.
    stack: list[object] = [tree]
    while stack:
        item = stack.pop()
        if isinstance(item, _Token):
            parts.append(item.text)
        elif isinstance(item, str):
            parts.append(_escape(item))
        else:
            children = _children(item)  # type: ignore[arg-type]
            parts.append("(")
            stack.append(_CLOSE)
            for i, child in enumerate(reversed(children)):
                stack.append(child)
                if i < len(children) - 1:
                    stack.append(_SPACE)
    return "".join(parts)


def from_bracketed(text: str) -> Tree:
    """Parse ``"(the (cat sat))"`` back into ``["the", ["cat", "sat"]]``.

    Nodes may have any number of children (a node ``(a)`` gives ``["a"]``); a text without
    brackets is a one-word tree. Raises ``ValueError`` on unbalanced brackets, empty
    nodes, several trees or an empty text.
    """
    tokens = text.replace("(", " ( ").replace(")", " ) ").split()
    if not tokens:
        raise ValueError("empty tree")
    if tokens[0] != "(":
        if len(tokens) != 1 or tokens[0] == ")":
            raise ValueError(f"expected one word or one bracketed tree, got {text!r}")
        return tokens[0]
    stack: list[list] = []
    result: Tree | None = None
    for position, token in enumerate(tokens):
        if result is not None:
            raise ValueError(f"text after the end of the tree at token {position}: {token!r}")
        if token == "(":
            stack.append([])
        elif token == ")":
            if not stack:
                raise ValueError(f"unbalanced ')' at token {position}")
            node = stack.pop()
            if not node:
                raise ValueError(f"empty brackets '()' at token {position}")
            if stack:
                stack[-1].append(node)
            else:
                result = node
        else:
            if not stack:  # pragma: no cover - a word at top level can only follow the root
                raise ValueError(f"word {token!r} outside the tree")
            stack[-1].append(token)
    if stack:
        raise ValueError(f"{len(stack)} unclosed '(' in {text!r}")
    return result  # type: ignore[return-value]


def to_json(tree: Tree) -> str:
    """The tree as JSON nested lists, e.g. ``["the", ["cat", "sat"]]`` (UTF-8 kept)."""
    _validate(tree)
    return json.dumps(tree, ensure_ascii=False)


def from_json(text: str) -> Tree:
    """Read a tree written by :func:`to_json`; ``ValueError`` if it is not one."""
    try:
        tree = json.loads(text)
    except json.JSONDecodeError as err:
        raise ValueError(f"not JSON: {err}") from None
    _validate(tree)
    return tree


def _validate(tree: object) -> None:
    """Raise ``ValueError`` unless ``tree`` is str leaves in non-empty lists/tuples."""
    stack = [tree]
    while stack:
        node = stack.pop()
        if isinstance(node, str):
            continue
        if not isinstance(node, (list, tuple)) or len(node) == 0:
            raise ValueError(f"not a tree node: {node!r}")
        stack.extend(node)


def draw(tree: Tree, *, unicode: bool = True) -> str:
    """Draw ``tree`` for the terminal: one word per line, read top to bottom.

    Each bracket is a vertical bar joining its children; the words are aligned in one
    column so the sentence reads downwards::

        ┬─┬───── the
        │ └───── cat
        └─┬───── sat
          └─┬─── on
            ├─── the
            └─── mat

    ``unicode=False`` uses ASCII (``+ | ` -``) instead of box-drawing characters.
    """
    if unicode:
        first, middle, last, bar, dash = "┬", "├", "└", "│", "─"
    else:
        first, middle, last, bar, dash = "+", "+", "`", "|", "-"
    if isinstance(tree, str):
        return tree
    width = 2 * depth(tree)
    lines: list[str] = []
    # (node, prefix of its first line, prefix of its other lines)
    stack: list[tuple[Tree, str, str]] = [(tree, "", "")]
    while stack:
        node, head, rest = stack.pop()
        if isinstance(node, str):
            lines.append(head + dash * (width - len(head)) + " " + node)
            continue
        children = _children(node)
        items = []
        for i, child in enumerate(children):
            if i == 0:
                child_head = head + first + dash
            elif i < len(children) - 1:
                child_head = rest + middle + dash
            else:
                child_head = rest + last + dash
            child_rest = rest + ("  " if i == len(children) - 1 else bar + " ")
            items.append((child, child_head, child_rest))
        stack.extend(reversed(items))
    return "\n".join(lines)
