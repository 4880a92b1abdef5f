"""Text as people type it into words: the tokenizers of raw user text.

A model's config names one of :data:`TOKENIZERS` (``TextOptions.tokenizer``); it applies only
to raw text a user types (``onlstm parse`` sentences, ``generate`` prompts, demo sentences).
Corpus files are always read by :func:`onlstm.text.tokenize` (whitespace or characters).

* ``whitespace``: split at whitespace (the text is already tokenized).
* ``ptb``: English the Penn Treebank way: punctuation split off, double quotes as ``\u0060\u0060``
  / ``''``, brackets as ``-LRB-`` ..., contractions split (``don't`` -> ``do n't``, ``John's``
  -> ``John 's``; ``n't 's 're 'll 'd 've 'm``, ``cannot`` -> ``can not``), ``$ # %`` split
  off (``$5`` -> ``$ 5``), a sentence's final period split off, while abbreviations
  (``U.S.``, ``Mr.``, ``Inc.``), numbers (``3.5``, ``1,000``, ``10:30``) and inner hyphens,
  slashes and ampersands (``New York-based``, ``AT&T``) stay whole.
* ``jieba``: Chinese word segmentation by the ``jieba`` package (its accurate mode).
* ``chars``: every non-whitespace character is a word (unsegmented text, character models),
  a run of Latin letters and digits one word.

Every tokenizer returns :class:`Token` s: ``text`` is the token exactly as typed (so the
tokens' texts, concatenated, give the input without its whitespace), ``form`` the
treebank spelling (the same except quotes, brackets, dashes, ellipses and curly apostrophes:
``“`` -> ``\u0060\u0060``, ``(`` -> ``-LRB-``, ``n’t`` -> ``n't``).

:func:`is_punctuation` tells the tokens that the parsing protocol drops (docs/spec.md §3:
the PTB punctuation tags ``, . : \u0060\u0060 '' -LRB- -RRB-`` and the currency tags ``# $``): a token
made only of Unicode punctuation and currency symbols, except ``%`` and ``&`` (tagged NN and
CC in the PTB, so kept).
"""

from __future__ import annotations

import re
import unicodedata
from typing import Callable, Dict, List, NamedTuple

from .errors import UserError

__all__ = ["TOKENIZERS", "Token", "split_text", "ptb_tokens", "jieba_tokens", "char_tokens",
           "whitespace_tokens", "is_punctuation"]

TOKENIZERS = ("whitespace", "ptb", "jieba", "chars")


class Token(NamedTuple):
    """One token of raw text: ``text`` as typed, ``form`` its treebank spelling."""

    text: str
    form: str


# --------------------------------------------------------------------------------------
# whitespace and characters
# --------------------------------------------------------------------------------------


def whitespace_tokens(text: str) -> List[Token]:
    """Split at whitespace; each token is its own form."""
    return [Token(t, t) for t in text.split()]


_LATIN_RUN = re.compile(r"[0-9A-Za-z\uff10-\uff19\uff21-\uff3a\uff41-\uff5a]+|\S")


def char_tokens(text: str) -> List[Token]:
    """Every non-whitespace character is a token, except that a run of Latin letters and
    digits (ASCII or full-width) stays one token: ``"1998年"`` -> ``1998 年``. (A character
    model still reads such a word character by character.)"""
    return [Token(m.group(), m.group()) for m in _LATIN_RUN.finditer(text)]


# --------------------------------------------------------------------------------------
# Penn Treebank English
# --------------------------------------------------------------------------------------

# Abbreviations that keep their period. Titles only before another word ("Mr. Smith"); the
# others anywhere, also at the end of a sentence ("in the U.S.", "Apple Inc.").
_TITLES = r"(?i:Mr|Mrs|Ms|Messrs|Dr|Prof|Sen|Rep|Gov|Gen|Col|Lt|Sgt|Capt|Rev|Hon|St|Mt|Ft|No)"
_ABBREVIATIONS = (r"(?i:Jr|Sr|Co|Cos|Corp|Inc|Ltd|Bros|vs|etc)"
                  r"|Jan|Feb|Mar|Apr|Jun|Jul|Aug|Sept?|Oct|Nov|Dec"
                  r"|Ala|Ariz|Ark|Calif|Colo|Conn|Del|Fla|Ga|Ill|Ind|Kan|Ky|La|Mass|Md|Mich|Minn|Miss"
                  r"|Mo|Mont|Neb|Nev|Okla|Ore|Pa|Tenn|Tex|Va|Vt|Wash|Wis|Wyo")

_PTB_TOKEN = re.compile(
    r"""
      (?P<initials>(?<!\w)(?:[A-Za-z]\.){2,}(?:[A-Za-z](?!\w))?)   # U.S.  p.m.  U.S.A
    | (?P<abbrev>(?<!\w)(?:(?:%s)\.(?=\s+\S)|(?:%s)\.(?!\w))|(?<!\w)[A-Z]\.(?=\s+\S))  # Mr. Inc. J.
    | (?P<decade>['’]\d0s(?!\w))                               # '80s
    | (?P<clitic>(?<!\w)['’](?i:s|re|ll|d|ve|m)(?!\w))          # 's typed on its own
    | (?P<word>\w+(?:(?:[-'’&/.]|(?<=\d)[,:](?=\d))\w+)*)      # words, numbers, don't
    | (?P<ellipsis>\.\.\.+|…)
    | (?P<dash>--+|[—–])
    | (?P<quotes>``|''|["“”„])
    | (?P<single>[`'‘’])
    | (?P<other>\S)
    """ % (_TITLES, _ABBREVIATIONS),
    re.VERBOSE,
)

_NT = re.compile(r"(?i)^(.+?)(n['’]t)$")
_CLITIC = re.compile(r"(?i)^(.+?)(['’](?:s|re|ll|d|ve|m))$")
# Words the PTB splits in two (case kept from the input).
_SPLIT_WORDS = {"cannot": 3, "gonna": 3, "gotta": 3, "wanna": 3}
_BRACKETS = {"(": "-LRB-", ")": "-RRB-", "[": "-LSB-", "]": "-RSB-", "{": "-LCB-", "}": "-RCB-"}
_OPENERS = set("([{<“‘") | {"``", "`"}


def _split_word(word: str) -> List[Token]:
    """A word token into the word and its clitics: ``don't`` -> ``do n't``."""
    cut = _SPLIT_WORDS.get(word.lower())
    if cut is not None:
        return [Token(word[:cut], word[:cut]), Token(word[cut:], word[cut:])]
    tail: List[Token] = []
    while True:
        m = _NT.match(word) or _CLITIC.match(word)
        if m is None:
            break
        word, clitic = m.group(1), m.group(2)
        tail.insert(0, Token(clitic, clitic.replace("’", "'")))
    return [Token(word, word)] + tail


def _opens(text: str, start: int, end: int, previous: List[Token]) -> bool:
    """Whether the quote at text[start:end] opens a quotation: it starts the text or follows
    whitespace or an opening bracket/quote, and a non-space character follows it."""
    before = start == 0 or text[start - 1].isspace() or (previous and previous[-1].text in _OPENERS)
    after = end < len(text) and not text[end].isspace()
    return bool(before and after)


def ptb_tokens(text: str) -> List[Token]:
    """English text into Penn Treebank tokens (see the module docstring for the conventions)."""
    out: List[Token] = []
    for m in _PTB_TOKEN.finditer(text):
        kind, tok = m.lastgroup, m.group()
        if kind == "word":
            out.extend(_split_word(tok))
        elif kind == "ellipsis":
            out.append(Token(tok, "..."))
        elif kind == "dash":
            out.append(Token(tok, "--"))
        elif kind == "quotes":
            if tok in ("``", "“", "„"):
                form = "``"
            elif tok in ("''", "”"):
                form = "''"
            else:
                form = "``" if _opens(text, m.start(), m.end(), out) else "''"
            out.append(Token(tok, form))
        elif kind == "single":
            if tok in ("`", "‘"):
                form = "`"
            elif tok == "’":
                form = "'"
            else:
                form = "`" if _opens(text, m.start(), m.end(), out) else "'"
            out.append(Token(tok, form))
        elif kind in ("decade", "clitic"):
            out.append(Token(tok, tok.replace("’", "'")))
        else:
            out.append(Token(tok, _BRACKETS.get(tok, tok)))
    return out


# --------------------------------------------------------------------------------------
# Chinese
# --------------------------------------------------------------------------------------

_jieba = None


def _load_jieba():
    global _jieba
    if _jieba is None:
        try:
            import jieba
        except ImportError:
            raise UserError("this model segments Chinese with jieba, which is not installed: "
                            "pip install jieba") from None
        import logging

        jieba.setLogLevel(logging.WARNING)  # no "Building prefix dict..." chatter on stderr
        _jieba = jieba
    return _jieba


def jieba_tokens(text: str) -> List[Token]:
    """Chinese words segmented by jieba (accurate mode, its default dictionary and HMM)."""
    jieba = _load_jieba()
    out: List[Token] = []
    for piece in jieba.lcut(text):
        out.extend(Token(t, t) for t in piece.split())  # jieba returns the spaces as tokens
    return out


# --------------------------------------------------------------------------------------
# one entry point
# --------------------------------------------------------------------------------------

_BY_NAME: Dict[str, Callable[[str], List[Token]]] = {
    "whitespace": whitespace_tokens, "ptb": ptb_tokens, "jieba": jieba_tokens, "chars": char_tokens}


def split_text(text: str, tokenizer: str = "whitespace") -> List[Token]:
    """Tokens of raw ``text`` by the tokenizer named ``tokenizer`` (one of :data:`TOKENIZERS`)."""
    try:
        split = _BY_NAME[tokenizer]
    except KeyError:
        raise UserError(f"unknown tokenizer {tokenizer!r}; choose one of {list(TOKENIZERS)}") from None
    return split(text)


_KEPT_SYMBOLS = {"%", "&"}  # PTB tags NN and CC: words for the protocol
_TREEBANK_PUNCTUATION = {"``", "''", "`", "-LRB-", "-RRB-", "-LSB-", "-RSB-", "-LCB-", "-RCB-"}


def is_punctuation(token: str) -> bool:
    """Whether the protocol drops this token: only punctuation and currency symbols (Unicode
    categories P* and Sc, e.g. ``, . ! ? ; : -- ... " ( $ # ， 。 《``), or a treebank
    bracket/quote spelling; ``%`` and ``&`` are words (PTB tags NN and CC)."""
    if not token or token in _TREEBANK_PUNCTUATION:
        return bool(token)
    if unicodedata.normalize("NFKC", token) in _KEPT_SYMBOLS:
        return False
    return all(unicodedata.category(c).startswith("P") or unicodedata.category(c) == "Sc" or c == "`"
               for c in token)
