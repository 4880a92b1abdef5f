"""Penn Treebank bracketed files -> preprocessed gold sentences (docs/spec.md §3).

Reading (:func:`read_trees`, :func:`parse_trees`): any number of trees per file, trees over
several lines or one per line, the ``( (S ...) )`` and ``(TOP ...)`` / ``(ROOT ...)``
wrappers, ``-NONE-`` empty elements, plain or gzip-compressed files (by their magic bytes),
UTF-8 with or without a byte-order mark (else Latin-1), CRLF line ends; inputs may be files,
folders (every ``*.mrg`` / ``*.mrg.gz`` below, sorted) or glob patterns
(:func:`expand_paths`). Malformed or binary input raises :class:`~onlstm.errors.UserError`
naming the file and line, the offending text escaped (:func:`onlstm.fileio.excerpt`).

Preprocessing (:func:`preprocess`), as in the PRPN -> ON-LSTM line of work:

1. keep only leaves whose part-of-speech tag is in :data:`WORD_TAGS` (this drops the
   punctuation tags ``, . : `` '' -LRB- -RRB-``, the currency tags ``# $`` and ``-NONE-``
   empty elements -- every tag of the Penn tag set that is not a word tag);
2. lower-case each word and replace every run of digits by ``N`` (:func:`normalize_word`);
3. drop the constituents left without words and collapse unary chains;
4. the gold spans are the constituents of at least two words, except the whole sentence;
   each carries the labels of its unary chain with function tags and indices stripped
   (``NP-SBJ-1`` -> ``NP``, ``NP=2`` -> ``NP``; :func:`strip_function_tags`).

A tree left with no word at all is skipped (it has nothing to parse); a one-word sentence is
kept (it has no gold span; docs/spec.md §3 scores it 1 for a prediction with no span).

:func:`load_treebank` does all of this for a list of inputs, or for the bundled NLTK 10%
sample of the WSJ treebank (:func:`bundled_sample_path`) when given none.
"""

from __future__ import annotations

import bisect
import glob
import re
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional, Union

from .bundled import resource
from .errors import UserError
from .fileio import decode_utf8, excerpt, read_bytes, refuse_binary, refuse_control_characters
from .text import normalize_digits
from .trees import Span, Tree

__all__ = [
    "WORD_TAGS",
    "Constituent",
    "GoldSentence",
    "LabeledSpan",
    "normalize_word",
    "strip_function_tags",
    "parse_trees",
    "read_trees",
    "expand_paths",
    "preprocess",
    "load_treebank",
    "bundled_sample_path",
]

#: Part-of-speech tags of words (the list of the PRPN / ON-LSTM evaluation code). Leaves with
#: any other tag (punctuation, ``#``, ``$``, ``-NONE-``, ...) are removed before scoring.
WORD_TAGS = frozenset(
    "CC CD DT EX FW IN JJ JJR JJS LS MD NN NNS NNP NNPS PDT POS PRP PRP$ RB RBR RBS RP SYM "
    "TO UH VB VBD VBG VBN VBP VBZ WDT WP WP$ WRB".split()
)

#: Labels of the wrapper around a whole tree, removed when reading.
ROOT_LABELS = frozenset({"", "TOP", "ROOT"})

#: File names a folder given as input is searched for.
TREEBANK_SUFFIXES = (".mrg", ".mrg.gz")

_BUNDLED_SAMPLE = "wsj_sample.mrg.gz"

#: ``(start, end, label)``: a labeled gold constituent (``end`` exclusive).
LabeledSpan = tuple[int, int, str]


@dataclass
class Constituent:
    """A node of a raw bracketed tree, as read from the file.

    A preterminal (a leaf with its tag) has ``label`` = the POS tag and ``children`` = the
    one word; a phrase has child constituents only. ``line`` is where its ``(`` is.
    """

    label: str
    children: list[Union["Constituent", str]]
    line: int

    @property
    def is_preterminal(self) -> bool:
        return len(self.children) == 1 and isinstance(self.children[0], str)

    def pos(self) -> list[tuple[str, str]]:
        """The ``(word, tag)`` pairs of the leaves, left to right."""
        out: list[tuple[str, str]] = []
        stack: list[Constituent] = [self]
        while stack:
            node = stack.pop()
            if node.is_preterminal:
                out.append((node.children[0], node.label))  # type: ignore[arg-type]
            else:
                stack.extend(reversed(node.children))  # type: ignore[arg-type]
        return out


@dataclass
class GoldSentence:
    """One preprocessed treebank sentence.

    ``tree`` is the gold tree over ``words`` with unary chains collapsed (nested lists, not
    necessarily binary); ``labeled_spans`` its constituents of two words or more except the
    whole sentence, one entry per label of a collapsed unary chain; ``source`` is
    ``"file:line"`` of the tree's first bracket. ``sentence_labels``: the labels of the
    constituents spanning the whole sentence (its top unary chain, e.g. ``["S"]``), empty
    for a one-word sentence; the published evaluation's label recall counts them.
    ``model_words``: the words as a language model reads them when they differ from the
    gold ``words`` (the Sinica reader's Simplified forms), else None.
    """

    words: list[str]
    tree: Tree
    labeled_spans: list[LabeledSpan] = field(default_factory=list)
    source: str = ""
    sentence_labels: list[str] = field(default_factory=list)
    model_words: Optional[list[str]] = None

    @property
    def spans(self) -> set[Span]:
        """The unlabeled gold spans (what the F1 scores compare against)."""
        return {(start, end) for start, end, _ in self.labeled_spans}

    def __len__(self) -> int:
        return len(self.words)


# --------------------------------------------------------------------------------------
# Words and labels
# --------------------------------------------------------------------------------------

def normalize_word(word: str) -> str:
    """Lower-case, then replace every run of digits by ``N``: ``"1,500s"`` -> ``"N,Ns"``."""
    return normalize_digits(word.lower())


def strip_function_tags(label: str) -> str:
    """``NP-SBJ-1`` -> ``NP``, ``PP-LOC=2`` -> ``PP``, ``-NONE-`` and ``-LRB-`` unchanged."""
    if label.startswith("-"):
        return label
    return re.split(r"[-=]", label, maxsplit=1)[0]


# --------------------------------------------------------------------------------------
# Reading bracketed text
# --------------------------------------------------------------------------------------

# U+FEFF (a byte-order mark, left inside by `cat`-ing files that start with one) separates
# tokens like whitespace.
_TOKEN = re.compile("\\(|\\)|[^\\s()\ufeff]+")


class _Open:
    """A constituent being read: its label once seen, its children so far."""

    __slots__ = ("label", "children", "line")

    def __init__(self, line: int) -> None:
        self.label: Optional[str] = None
        self.children: list[Union[Constituent, str]] = []
        self.line = line


def parse_trees(text: str, name: str = "<text>") -> Iterator[Constituent]:
    """Yield the trees of a bracketed text, wrappers removed.

    ``name`` is used in error messages (``name:line: what is wrong``). Raises
    :class:`UserError` on unbalanced brackets, text outside the brackets, empty brackets,
    or a leaf that is not ``(TAG word)``.
    """
    line_starts = [0] + [m.end() for m in re.finditer("\n", text)]

    def where(offset: int) -> str:
        return f"{name}:{bisect.bisect_right(line_starts, offset)}"

    stack: list[_Open] = []
    for match in _TOKEN.finditer(text):
        token = match.group()
        if token == "(":
            stack.append(_Open(bisect.bisect_right(line_starts, match.start())))
        elif token == ")":
            if not stack:
                raise UserError(f"{where(match.start())}: unexpected ')' (no bracket is open)")
            node = _close(stack.pop(), name)
            if stack:
                stack[-1].children.append(node)
            else:
                yield _unwrap(node)
        elif not stack:
            raise UserError(
                f"{where(match.start())}: text outside any bracket: {excerpt(token, 40)} "
                "(expected Penn Treebank trees such as '( (S (NP (DT the) (NN cat)) ...) )')"
            )
        elif stack[-1].label is None and not stack[-1].children:
            stack[-1].label = token
        else:
            stack[-1].children.append(token)
    if stack:
        raise UserError(
            f"{name}:{stack[0].line}: '(' opened here is never closed "
            f"(the file ends inside a tree; {len(stack)} bracket(s) still open)"
        )


def _close(node: _Open, name: str) -> Constituent:
    """Check a constituent whose ``)`` was just read and freeze it."""
    label = node.label or ""
    children = node.children
    # The first word after "(" is always read as the label, so a leaf (TAG word) is a
    # label with exactly one word; anything else must contain constituents only.
    is_leaf = len(children) == 1 and isinstance(children[0], str)
    if not children:
        shown = f"({_shown_label(label)})"
        raise UserError(
            f"{name}:{node.line}: empty constituent {shown} "
            "(expected a leaf '(TAG word)' or a phrase '(LABEL (...) ...)')"
        )
    elif not is_leaf and any(isinstance(child, str) for child in children):
        words = " ".join(child for child in children if isinstance(child, str))
        raise UserError(
            f"{name}:{node.line}: expected a leaf '(TAG word)' or a phrase made of bracketed "
            f"constituents, got ({_shown_label(label)} ...) with the word(s) {excerpt(words, 60)} directly inside"
        )
    return Constituent(label, children, node.line)


def _shown_label(label: str) -> str:
    """A label as a message shows it: as written when short and printable, else escaped."""
    return label if len(label) <= 40 and label.isprintable() else excerpt(label, 40)


def _unwrap(tree: Constituent) -> Constituent:
    """Remove ``( ... )``, ``(TOP ...)`` and ``(ROOT ...)`` wrappers around one constituent."""
    while (
        tree.label in ROOT_LABELS
        and len(tree.children) == 1
        and isinstance(tree.children[0], Constituent)
    ):
        tree = tree.children[0]
    return tree


def _read_text(path: Path, latin1: bool = True) -> str:
    """The text of a treebank file: gzip recognised by its magic bytes, UTF-8 with or without
    a byte-order mark, or else (``latin1``, and not a Sinica file, which is always UTF-8)
    Latin-1 as old treebank files are. A binary file, a control character (an escape
    sequence), a folder, a device or an unreadable file is a UserError naming it (and the line)."""
    raw = refuse_binary(read_bytes(path, what="treebank file"), path)
    try:
        text = decode_utf8(raw, path)
    except UserError:
        from .sinica import looks_like_sinica

        text = raw.decode("latin-1")  # every byte maps to a character
        if not latin1 or looks_like_sinica(text):
            raise
    return refuse_control_characters(text, path)


def read_trees(path: Union[str, Path]) -> list[Constituent]:
    """All trees of one file (``.gz`` is decompressed). ``UserError`` if it has none."""
    path = Path(path)
    trees = list(parse_trees(_read_text(path), str(path)))
    if not trees:
        raise UserError(f"{path}: no tree found (expected Penn Treebank bracketed trees)")
    return trees


def expand_paths(inputs: Iterable[Union[str, Path]]) -> list[Path]:
    """Files named by ``inputs``: files as given, folders searched recursively for
    ``*.mrg`` / ``*.mrg.gz`` (sorted), glob patterns expanded (sorted).

    Raises :class:`UserError` for a missing file, a pattern matching nothing or a folder
    without treebank files.
    """
    files: list[Path] = []
    for item in inputs:
        text = str(item)
        path = Path(text)
        if path.is_dir():
            found = sorted(
                p for p in path.rglob("*") if p.is_file() and p.name.endswith(TREEBANK_SUFFIXES)
            )
            if not found:
                raise UserError(f"{path}: folder has no {' or '.join('*' + s for s in TREEBANK_SUFFIXES)} file")
            files.extend(found)
        elif path.exists():
            files.append(path)
        elif glob.has_magic(text):
            matches = sorted(Path(p) for p in glob.glob(text, recursive=True) if Path(p).is_file())
            if not matches:
                raise UserError(f"{text}: no file matches this pattern")
            files.extend(matches)
        else:
            raise UserError(f"{path}: no such file or folder")
    return files


# --------------------------------------------------------------------------------------
# Preprocessing
# --------------------------------------------------------------------------------------


@dataclass
class _Reduced:
    """A constituent after preprocessing: its tree, word span and unary-chain labels."""

    tree: Tree
    start: int
    end: int
    labels: list[str]


def preprocess(
    tree: Constituent,
    source: str = "",
    *,
    is_word: Optional[Callable[[str], bool]] = None,
    normalize: Optional[Callable[[str], str]] = None,
) -> Optional[GoldSentence]:
    """Apply docs/spec.md §3 to one raw tree; ``None`` when no word is left.

    See the module docstring for the exact steps. ``source`` is copied into the result.
    ``is_word`` (a POS -> keep the leaf?) and ``normalize`` (a word -> its gold form)
    default to the Penn Treebank rules (:data:`WORD_TAGS`, :func:`normalize_word`); the
    Sinica reader (:mod:`onlstm.sinica`) passes its own.
    """
    words: list[str] = []
    labeled: list[LabeledSpan] = []
    rules = (is_word or WORD_TAGS.__contains__, normalize or normalize_word)
    try:
        top = _reduce(tree, words, labeled, rules)
    except RecursionError:
        raise UserError(f"{source or 'tree'}: tree nested too deeply to read") from None
    if top is None:
        return None
    labeled.sort(key=lambda span: (span[0], -span[1]))
    whole = top.labels if len(words) >= 2 else []
    return GoldSentence(words=words, tree=top.tree, labeled_spans=labeled, source=source, sentence_labels=whole)


def _reduce(node: Constituent, words: list[str], labeled: list[LabeledSpan],
            rules: tuple[Callable[[str], bool], Callable[[str], str]]) -> Optional[_Reduced]:
    """Preprocess ``node``: append its kept words to ``words``, and to ``labeled`` the
    spans of its descendants that are complete (children of a node of 2+ children)."""
    if node.is_preterminal:
        if not rules[0](node.label):
            return None
        words.append(rules[1](node.children[0]))  # type: ignore[arg-type]
        return _Reduced(words[-1], len(words) - 1, len(words), [])
    kept = [
        reduced
        for reduced in (_reduce(child, words, labeled, rules) for child in node.children)  # type: ignore[arg-type]
        if reduced is not None
    ]
    label = strip_function_tags(node.label)
    if not kept:
        return None  # every leaf below was dropped: the constituent disappears
    if len(kept) == 1:  # unary chain: the child stands for this node too
        child = kept[0]
        if label and label not in child.labels:
            child.labels.append(label)
        return child
    for child in kept:  # the children's unary chains are complete now
        if child.end - child.start >= 2:
            labeled.extend((child.start, child.end, name) for name in child.labels)
    return _Reduced([c.tree for c in kept], kept[0].start, kept[-1].end, [label] if label else [])


# --------------------------------------------------------------------------------------
# Whole treebanks
# --------------------------------------------------------------------------------------


def bundled_sample_path() -> Path:
    """Path of the bundled NLTK 10% WSJ sample (3,914 trees, WSJ files 0001-0199)."""
    path = resource("treebank", _BUNDLED_SAMPLE)
    if not path.is_file():  # pragma: no cover - a broken installation
        raise UserError(f"the bundled treebank sample is missing ({path}); reinstall onlstm")
    return path


def load_treebank(
    inputs: Optional[Sequence[Union[str, Path]]] = None,
    *,
    max_length: Optional[int] = None,
    progress: bool = False,
    format: Optional[str] = None,
) -> list[GoldSentence]:
    """Read and preprocess treebank files, in order.

    ``inputs``: files, folders or glob patterns (see :func:`expand_paths`); ``None`` or
    empty reads the bundled sample (the bundled Sinica sample with ``format="sinica"``).
    ``max_length`` keeps the sentences of at most that many words after preprocessing (10
    for WSJ10). Trees without any word are skipped. ``progress`` shows a progress bar over
    the files. ``format``: ``"ptb"`` (bracketed), ``"sinica"`` (ICG notation, read by
    :mod:`onlstm.sinica`), or None to choose per file: ``.icg``/``.icg.gz`` or a text
    starting with a ``#n:n.[id]`` prefix is Sinica, anything else bracketed.
    """
    from . import sinica

    if format not in (None, "ptb", "sinica"):
        raise UserError(f"unknown treebank format {format!r}; choose ptb or sinica")
    if max_length is not None and max_length < 1:
        raise UserError(f"--max-length must be at least 1, got {max_length}")
    if inputs:
        files = expand_paths(inputs)
    else:
        files = [sinica.bundled_sinica_path() if format == "sinica" else bundled_sample_path()]
    if progress and len(files) > 1:
        from tqdm import tqdm

        files_iter: Iterable[Path] = tqdm(files, desc="reading treebank", unit="file")
    else:
        files_iter = files
    sentences: list[GoldSentence] = []
    for path in files_iter:
        fmt = format or ("sinica" if path.name.endswith(sinica.SINICA_SUFFIXES) else None)
        text = _read_text(path, latin1=fmt != "sinica")
        if fmt is None:
            fmt = "sinica" if sinica.looks_like_sinica(text) else "ptb"
        if fmt == "sinica":
            found = sinica.parse_sinica(text, str(path))
        else:
            found = [s for s in (preprocess(t, source=f"{path}:{t.line}") for t in parse_trees(text, str(path)))
                     if s is not None]
        if not found:
            raise UserError(f"{path}: no tree with a word found (expected {fmt} trees)")
        sentences.extend(s for s in found if max_length is None or len(s.words) <= max_length)
    return sentences
