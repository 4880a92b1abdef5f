"""Sinica treebank files (ICG notation) -> preprocessed gold sentences (docs/spec.md §3).

The Sinica treebank (Academia Sinica, CKIP) writes one tree per line in the notation of
Information-based Case Grammar::

    #3:3.[39029] S(theme:NP(Head:N(DUMMY1:Nba:嘉珍|Head:Caa:和|DUMMY2:Nhaa:我))|Head:VC1:住在|goal:NP(quantifier:DM:同一條|Head:Nab:巷子))#，(COMMACATEGORY)

that is an optional ``#<n>:<n>.[<id>]`` prefix (seen as ``#9:.[9]``, ``#9:9..[9]``,
``#9:9.9.[9]`` too), then ``CAT(child|child|...)`` where each
child is ``role:CAT(...)`` (a phrase) or ``role:POS:word`` (a word), then the trailing
``#...`` part (the sentence's final punctuation, or nothing), which is dropped.

:func:`parse_icg` reads one line into the same raw :class:`onlstm.treebank.Constituent`
as the Penn Treebank reader (the phrase's label is its category, a leaf's is its POS; the
thematic roles are not kept), and :func:`read_sinica` applies the same preprocessing as for
the PTB (:func:`onlstm.treebank.preprocess`): punctuation leaves (every POS ending in
``CATEGORY``) are removed, constituents left without words are dropped, unary chains
collapse, and the gold spans are the constituents of two words or more except the whole
sentence. The gold words stay as in the file (Traditional characters; there is no case and
no digit rule to apply to them).

A model trained on Simplified Chinese reads the words through :func:`model_form`
(Traditional -> Simplified with OpenCC's ``t2s`` conversion, full-width digits and Latin
letters to ASCII); the words shown stay those of the file.
"""

from __future__ import annotations

import re
from functools import lru_cache
from pathlib import Path
from typing import Union

from .bundled import resource
from .errors import UserError
from .treebank import Constituent, GoldSentence, _read_text, preprocess

__all__ = [
    "SINICA_SUFFIXES",
    "is_punctuation",
    "parse_icg",
    "parse_sinica",
    "read_sinica",
    "bundled_sinica_path",
    "to_simplified",
    "ascii_fullwidth",
    "model_form",
    "looks_like_sinica",
]

#: File names read as Sinica (ICG) by extension.
SINICA_SUFFIXES = (".icg", ".icg.gz")

_BUNDLED = "parsed.icg.gz"
_PREFIX = re.compile(r"#\d+:[\d.]*\[\d*\]\s*")
_FULLWIDTH = {c: c - 0xFEE0 for a, b in ((0xFF10, 0xFF19), (0xFF21, 0xFF3A), (0xFF41, 0xFF5A))
              for c in range(a, b + 1)}
_STOP = frozenset(":()|")


def is_punctuation(pos: str) -> bool:
    """Sinica punctuation tags all end in ``CATEGORY`` (``COMMACATEGORY``, ``PERIODCATEGORY`` ...)."""
    return pos.endswith("CATEGORY")


def is_word_tag(pos: str) -> bool:
    """The leaves kept for scoring: every POS that is not punctuation."""
    return not is_punctuation(pos)


def _keep_word(word: str) -> str:
    return word


class _Open:
    __slots__ = ("label", "children")

    def __init__(self, label: str) -> None:
        self.label = label
        self.children: list[Union[Constituent, str]] = []


def parse_icg(line: str, where: str = "<text>", lineno: int = 1) -> Constituent:
    """One ICG tree line -> a raw :class:`Constituent` (the ``#n:n.[id]`` prefix and the
    trailing ``#...`` part are removed). ``where`` (``file:line``) names errors, which are
    :class:`UserError`."""
    text = line.replace("\ufeff", "").strip()  # a byte-order mark left inside by `cat`-ing files
    prefix = _PREFIX.match(text)
    if prefix:
        text = text[prefix.end():]
    n = len(text)

    def fail(i: int, what: str) -> UserError:
        shown = text[max(0, i - 15):i + 15]
        return UserError(f"{where}: {what} at character {i + (prefix.end() if prefix else 0) + 1} "
                         f"(near {shown!r}; expected ICG such as 'S(agent:NP(Head:Nab:我)|Head:VC1:住在)')")

    def name_at(i: int) -> tuple[str, int]:
        j = i
        while j < n and text[j] not in _STOP and text[j] != "#":
            j += 1
        return text[i:j], j

    if not text:
        raise UserError(f"{where}: empty line where a tree was expected")
    label, i = name_at(0)
    if not label or i >= n or text[i] != "(":
        raise fail(i, "a tree must start with its category and '('")
    stack = [_Open(label)]
    i += 1
    while True:
        # a child: role ':' then CAT '(' or POS ':' word
        role, i = name_at(i)
        if not role or i >= n or text[i] != ":":
            raise fail(i, "expected 'role:' at the start of a constituent")
        name, i = name_at(i + 1)
        if not name:
            raise fail(i, "missing category or part of speech")
        if i < n and text[i] == "(":
            stack.append(_Open(name))
            i += 1
            continue
        if i >= n or text[i] != ":":
            raise fail(i, "expected '(' after a category or ':' after a part of speech")
        j = i + 1
        while j < n and text[j] not in "|()":
            j += 1
        # ``role:POS:word``; two leaves of the NLTK sample carry a doubled role
        # (``head:Head:Nac:鵝掌形``): the POS is then the last field before the word.
        fields = [name] + text[i + 1:j].split(":")
        pos, word = fields[-2], fields[-1]
        if not pos or not word or word.isspace() or "#" in word:
            raise fail(i + 1, "expected a word after the part of speech")
        stack[-1].children.append(Constituent(pos, [word], lineno))
        i = j
        # close as many phrases as there are ')'
        while i < n and text[i] == ")":
            done = stack.pop()
            node = Constituent(done.label, done.children, lineno)
            if not stack:
                rest = text[i + 1:].strip()
                if rest and not rest.startswith("#"):
                    raise fail(i + 1, "text after the tree (only a trailing '#...' part may follow)")
                return node
            stack[-1].children.append(node)
            i += 1
        if i < n and text[i] == "|":
            i += 1
            continue
        if i >= n:
            raise UserError(f"{where}: the line ends inside the tree ({len(stack)} bracket(s) still open)")
        raise fail(i, "expected '|' or ')' after a word")


def parse_sinica(text: str, name: str = "<text>", simplified: bool = True) -> list[GoldSentence]:
    """Every tree line of an ICG text, preprocessed; trees without any word are skipped.

    ``simplified``: fill each sentence's ``model_words`` with :func:`model_form` of its
    words (what a model trained on Simplified Chinese reads); the gold ``words`` stay as in
    the file. False leaves ``model_words`` None (and needs no converter)."""
    out: list[GoldSentence] = []
    for lineno, line in enumerate(text.split("\n"), 1):  # "\n" only: the line numbers editors show
        if not line.strip():
            continue
        where = f"{name}:{lineno}"
        tree = parse_icg(line, where, lineno)
        sentence = preprocess(tree, source=where, is_word=is_word_tag, normalize=_keep_word)
        if sentence is not None:
            if simplified:
                sentence.model_words = [model_form(w) for w in sentence.words]
            out.append(sentence)
    return out


def read_sinica(path: Union[str, Path], simplified: bool = True) -> list[GoldSentence]:
    """All trees of one ICG file (``.gz`` is decompressed; see :func:`parse_sinica`);
    :class:`UserError` if it has none."""
    path = Path(path)
    sentences = parse_sinica(_read_text(path, latin1=False), str(path), simplified)
    if not sentences:
        raise UserError(f"{path}: no Sinica tree with a word found")
    return sentences


def looks_like_sinica(text: str) -> bool:
    """Whether a text starts like an ICG file (a ``#n:n.[id]`` line prefix)."""
    return _PREFIX.match(text.lstrip("\ufeff \t\r\n")) is not None


def bundled_sinica_path() -> Path:
    """Path of the bundled Sinica treebank sample (NLTK, 10,000 trees, CC BY-NC-SA 2.5)."""
    path = resource("sinica", _BUNDLED)
    if not path.is_file():  # pragma: no cover - a broken installation
        raise UserError(f"the bundled Sinica treebank is missing ({path}); reinstall onlstm")
    return path


# --------------------------------------------------------------------------------------
# Words as a Simplified-Chinese model reads them
# --------------------------------------------------------------------------------------


@lru_cache(maxsize=None)
def _t2s():
    try:
        import opencc
    except ImportError:
        raise UserError("Traditional -> Simplified conversion needs the package 'opencc' "
                        "(pip install opencc)") from None
    return opencc.OpenCC("t2s")


def to_simplified(text: str) -> str:
    """Traditional -> Simplified Chinese with OpenCC's ``t2s`` conversion (phrase-aware)."""
    return _t2s().convert(text)


def ascii_fullwidth(text: str) -> str:
    """Full-width digits and Latin letters -> ASCII (what the PKU corpus bundling does)."""
    return text.translate(_FULLWIDTH)


@lru_cache(maxsize=200_000)
def model_form(word: str) -> str:
    """A Sinica word as a Simplified-trained model reads it: ``t2s``, then full-width
    digits/letters as ASCII (``"顏色"`` -> ``"颜色"``, ``"１９９８年"`` -> ``"1998年"``)."""
    return ascii_fullwidth(to_simplified(word))
