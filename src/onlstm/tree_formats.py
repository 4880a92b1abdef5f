"""Text forms of the trees of :mod:`onlstm.trees`: bracketed, JSON and drawn.

- :func:`to_bracketed` / :func:`from_bracketed` -- ``(the (cat sat))``, Penn-Treebank-like
  (brackets inside words written ``-LRB-`` / ``-RRB-``), n-ary nodes allowed;
- :func:`to_json` / :func:`from_json` -- nested JSON lists, ``["the", ["cat", "sat"]]``;
- :func:`draw` -- a tree drawn for the terminal, one word per line.

Like :mod:`onlstm.trees`, everything walks trees with an explicit stack (no recursion
limit). These functions are also reachable as ``onlstm.trees.to_bracketed`` etc.
"""

from __future__ import annotations

import json

from .trees import Tree, _children, height

__all__ = ["to_bracketed", "from_bracketed", "to_json", "from_json", "draw"]

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


def draw(tree: Tree, *, unicode: bool = True, words: bool = True) -> str:
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
    ``words=False`` leaves the words out: every line is then the branches only, ending where
    its word would hang (lines of different lengths, at most ``2 * height(tree)``), so that
    drawings of several trees over the same sentence can be printed side by side, line
    ``t`` belonging to word ``t``; a one-word tree gives ``""``.
    """
    if unicode:
        first, middle, last, bar, dash = "┬", "├", "└", "│", "─"
    else:
        first, middle, last, bar, dash = "+", "+", "`", "|", "-"
    if isinstance(tree, str):
        return tree if words else ""
    width = 2 * height(tree)
    lines: list[str] = []
    # (node, prefix of its first line, prefix of its other lines)
    stack: list[tuple[Tree, str, str]] = [(tree, "", "")]
    while stack:
        node, head, rest = stack.pop()
        if isinstance(node, str):
            lines.append(head + dash * (width - len(head)) + " " + node if words else head)
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
