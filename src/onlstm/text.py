"""Text into tokens and tokens into ids: the tokeniser and the vocabulary.

Text conventions (shared by training, evaluation, parsing and generation prompts, so that a
model always sees tokens prepared the same way; see `TextOptions` and `tokenize`):

* One sentence per line. Words are whitespace-separated by default; with
  ``char_level=True`` every non-whitespace character is a token and whitespace is dropped
  (meant for unsegmented text such as Chinese).
* `tokenize` adds ``<eos>`` only when asked; the corpus reader (`onlstm.corpus`) appends one
  per non-blank line.
* Raw text a user types goes first through the model's tokenizer (``TextOptions.tokenizer``:
  whitespace, PTB English, jieba Chinese or characters; :mod:`onlstm.tokenizers`), see
  `tokenize_text`. Corpus files never do.

Vocabulary ids: ``<eos>`` is 0, ``<unk>`` is 1, then the training tokens by frequency
(descending), ties broken by first occurrence in the training text. A literal ``<unk>`` in
the text (PTB has many) is the ``<unk>`` entry, so PTB gives exactly 10,000 types.
"""

from __future__ import annotations

import json
import re
from collections import Counter
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Any, Dict, Iterable, Iterator, List, Optional, Tuple, Union

import torch

from .errors import UserError
from .fileio import PathLike, atomic_write_text, decode_utf8, excerpt, parse_json, read_bytes
from .tokenizers import TOKENIZERS, split_text

__all__ = ["EOS", "UNK", "SPECIALS", "TextOptions", "tokenize", "tokenize_text", "normalize_digits", "Vocabulary"]

EOS = "<eos>"
UNK = "<unk>"
SPECIALS = (EOS, UNK)

_DIGITS = re.compile(r"[0-9]+")


def normalize_digits(text: str) -> str:
    """Replace every run of ASCII digits by ``N`` (Mikolov's PTB and the parsing protocol)."""
    return _DIGITS.sub("N", text)


# --------------------------------------------------------------------------------------
# Tokenisation
# --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class TextOptions:
    """How a line of text becomes tokens; stored in a model's config.

    char_level:  every non-whitespace character is a token; whitespace is dropped (so
                 segmented and unsegmented versions of a Chinese sentence give the same
                 tokens). Default: whitespace-separated words.
    lower:       lower-case the line first (``str.lower``).
    digits_to_N: replace every run of ASCII digits by ``N``, as in
                 Mikolov's PTB and the parsing protocol; applied after ``lower`` and before
                 splitting, so with ``char_level`` a number becomes the single token ``N``.
    tokenizer:   how raw text a user types (parse sentences, prompts) is split into words,
                 one of ``onlstm.tokenizers.TOKENIZERS`` (``whitespace``, ``ptb``, ``jieba``,
                 ``chars``); corpus files are never read with it. Default (also for configs
                 written before it existed): ``chars`` for a character-level model, else
                 ``whitespace``, which is how such models read raw text before.
    """

    char_level: bool = False
    lower: bool = False
    digits_to_N: bool = False
    tokenizer: Optional[str] = None

    def __post_init__(self) -> None:
        for f in fields(self):
            if f.name != "tokenizer" and not isinstance(getattr(self, f.name), bool):
                raise TypeError(f"TextOptions.{f.name} must be a bool, got {getattr(self, f.name)!r}")
        if self.tokenizer is None:
            object.__setattr__(self, "tokenizer", "chars" if self.char_level else "whitespace")
        elif self.tokenizer not in TOKENIZERS:
            raise UserError(f"unknown tokenizer {self.tokenizer!r}; choose one of {list(TOKENIZERS)}")

    def to_dict(self) -> Dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: Optional[Dict[str, Any]]) -> "TextOptions":
        """Inverse of `to_dict`; None or {} gives the defaults. Unknown keys are a UserError."""
        if d is None:
            return cls()
        if isinstance(d, TextOptions):
            return d
        if not isinstance(d, dict):
            raise UserError(f"text options must be a mapping, got {type(d).__name__}")
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(d) - known)
        if unknown:
            raise UserError(f"unknown text option(s) {unknown}; known: {sorted(known)}")
        bad = [k for k, v in d.items() if k != "tokenizer" and not isinstance(v, bool)]
        if bad:
            raise UserError(f"text option(s) {bad} must be true or false")
        if d.get("tokenizer") is not None and d["tokenizer"] not in TOKENIZERS:
            raise UserError(f"text option tokenizer must be one of {list(TOKENIZERS)}, got {d['tokenizer']!r}")
        return cls(**d)


_DEFAULT_OPTIONS = TextOptions()


def tokenize(line: str, options: Optional[TextOptions] = None, *, add_eos: bool = False) -> List[str]:
    """Split one line into tokens according to `options` (the one tokeniser used everywhere).

    ``add_eos=True`` appends ``<eos>``; a blank line then gives ``[]`` (blank lines carry no
    sentence), which is what the corpus reader does.
    """
    if options is None:
        options = _DEFAULT_OPTIONS
    if options.lower:
        line = line.lower()
    if options.digits_to_N:
        line = normalize_digits(line)
    if options.char_level:
        tokens = list("".join(line.split()))
    else:
        tokens = line.split()
    if add_eos and tokens:
        tokens.append(EOS)
    return tokens


def tokenize_text(text: str, options: Optional[TextOptions] = None) -> List[str]:
    """Raw text a user typed (a prompt, a sentence) into the tokens a model reads: split by the
    model's tokenizer (``options.tokenizer``, see :mod:`onlstm.tokenizers`), then each word's
    treebank form prepared as corpus text is (`tokenize`: ``lower``, ``digits_to_N``, and
    characters for a character-level model). Nothing is dropped."""
    if options is None:
        options = _DEFAULT_OPTIONS
    out: List[str] = []
    for token in split_text(text, options.tokenizer):
        out.extend(tokenize(token.form, options))
    return out



# --------------------------------------------------------------------------------------
# Vocabulary
# --------------------------------------------------------------------------------------

_VOCAB_FORMAT = "onlstm-vocabulary"
_SURROGATE = re.compile("[\ud800-\udfff]")  # JSON can spell one ("\\udc80"); no UTF-8 text holds one
_VOCAB_VERSION = 1


class Vocabulary:
    """Token <-> id mapping with ``<eos>`` and ``<unk>``; out-of-vocabulary tokens map to ``<unk>``.

    ``Vocabulary(tokens)`` takes the complete id -> token list. Missing specials are put in
    front (``<eos>`` then ``<unk>``). Tokens must be unique non-empty strings without
    whitespace (the tokeniser never produces whitespace). Build one from text with `build`.
    """

    __slots__ = ("_itos", "_stoi", "eos_id", "unk_id")

    def __init__(self, tokens: Iterable[str] = ()):
        tokens = list(tokens)
        missing = [s for s in SPECIALS if s not in tokens]
        itos = missing + tokens
        stoi: Dict[str, int] = {}
        for i, tok in enumerate(itos):
            if not isinstance(tok, str) or not tok:
                raise ValueError(f"vocabulary entry {i} must be a non-empty string, got {excerpt(tok, 40)}")
            if tok in stoi:
                raise ValueError(f"vocabulary entry {excerpt(tok, 40)} appears twice (ids {stoi[tok]} and {i})")
            if tok.split() != [tok]:
                raise ValueError(f"vocabulary entry {i} ({excerpt(tok, 40)}) contains whitespace")
            stoi[tok] = i
        self._itos = itos
        self._stoi = stoi
        self.eos_id = stoi[EOS]
        self.unk_id = stoi[UNK]

    # -- building ----------------------------------------------------------------------

    @classmethod
    def build(
        cls,
        tokens: Union[Iterable[str], Counter],
        max_size: Optional[int] = None,
        min_count: int = 1,
    ) -> "Vocabulary":
        """Vocabulary of `tokens` (a token stream, or a Counter in first-occurrence order).

        Order: ``<eos>``, ``<unk>``, then tokens by count (descending), ties by first
        occurrence. ``min_count`` drops tokens seen fewer times; ``max_size`` caps the total
        size *including* the two specials (so ``max_size=10000`` keeps all of PTB).
        """
        if min_count < 1:
            raise ValueError(f"min_count must be >= 1, got {min_count}")
        if max_size is not None and max_size < len(SPECIALS):
            raise ValueError(f"max_size must be >= {len(SPECIALS)} (room for <eos> and <unk>), got {max_size}")
        counts = tokens if isinstance(tokens, Counter) else Counter(tokens)
        ranked = [t for t, c in counts.items() if c >= min_count and t not in SPECIALS]
        ranked.sort(key=counts.__getitem__, reverse=True)  # stable: ties keep first occurrence
        if max_size is not None:
            ranked = ranked[: max_size - len(SPECIALS)]
        return cls(list(SPECIALS) + ranked)

    # -- mapping -----------------------------------------------------------------------

    def __len__(self) -> int:
        return len(self._itos)

    def __contains__(self, token: object) -> bool:
        return token in self._stoi

    def __iter__(self) -> Iterator[str]:
        return iter(self._itos)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Vocabulary) and self._itos == other._itos

    def __hash__(self) -> int:
        return hash(tuple(self._itos))

    def __repr__(self) -> str:
        return f"Vocabulary({len(self)} tokens)"

    @property
    def itos(self) -> Tuple[str, ...]:
        """All tokens, in id order."""
        return tuple(self._itos)

    def index(self, token: str) -> int:
        """Id of `token` (``<unk>``'s id when unknown)."""
        return self._stoi.get(token, self.unk_id)

    def token(self, idx: int) -> str:
        """Token of id `idx`."""
        if not 0 <= idx < len(self._itos):
            raise IndexError(f"id {idx} out of range for a vocabulary of {len(self)}")
        return self._itos[idx]

    def encode(self, tokens: Iterable[str]) -> List[int]:
        """Ids of `tokens`; unknown tokens get ``<unk>``'s id."""
        get = self._stoi.get
        unk = self.unk_id
        return [get(t, unk) for t in tokens]

    def decode(self, ids: Union[Iterable[int], torch.Tensor]) -> List[str]:
        """Tokens of `ids` (a list or a tensor of any shape, flattened)."""
        if isinstance(ids, torch.Tensor):
            ids = ids.reshape(-1).tolist()
        itos = self._itos
        n = len(itos)
        out = []
        for i in ids:
            i = int(i)
            if not 0 <= i < n:
                raise IndexError(f"id {i} out of range for a vocabulary of {n}")
            out.append(itos[i])
        return out

    # -- files -------------------------------------------------------------------------

    def to_dict(self) -> Dict[str, Any]:
        return {"format": _VOCAB_FORMAT, "version": _VOCAB_VERSION, "tokens": list(self._itos)}

    def save(self, path: PathLike) -> None:
        """Write the vocabulary: JSON, or one token per line when `path` ends in ``.txt``.

        The file is written atomically (temporary file + rename).
        """
        path = Path(path)
        if path.suffix == ".txt":
            text = "".join(t + "\n" for t in self._itos)
        else:
            text = json.dumps(self.to_dict(), ensure_ascii=False, indent=0) + "\n"
        atomic_write_text(path, text)

    @classmethod
    def load(cls, path: PathLike) -> "Vocabulary":
        """Read a vocabulary written by `save` (JSON), or a plain list of one token per line.

        A JSON file must hold ``<eos>`` and ``<unk>``; in a plain list missing specials are
        put in front. Any problem is a UserError naming the file.
        """
        path = Path(path)
        raw = read_bytes(path, what="vocabulary file")
        text = decode_utf8(raw, path)
        if not text.strip():
            raise UserError(f"{path}: vocabulary file is empty")
        if path.suffix == ".json" or text.lstrip().startswith("{"):
            obj = parse_json(text, path, "broken vocabulary file, ")
            if not isinstance(obj, dict) or obj.get("format") != _VOCAB_FORMAT:
                raise UserError(f"{path}: not an onlstm vocabulary file (expected \"format\": \"{_VOCAB_FORMAT}\")")
            if type(obj.get("version")) is not int or obj["version"] != _VOCAB_VERSION:
                raise UserError(
                    f"{path}: vocabulary file version {excerpt(obj.get('version'))} is not supported "
                    f"(this onlstm reads version {_VOCAB_VERSION})"
                )
            tokens = obj.get("tokens")
            if not isinstance(tokens, list) or not all(isinstance(t, str) for t in tokens):
                raise UserError(f"{path}: broken vocabulary file, \"tokens\" must be a list of strings")
            surrogate = next((i for i, t in enumerate(tokens) if _SURROGATE.search(t)), None)
            if surrogate is not None:
                raise UserError(f"{path}: broken vocabulary file, token {surrogate} ({excerpt(tokens[surrogate], 40)}) "
                                "is not Unicode text (a lone surrogate)")
            missing = [s for s in SPECIALS if s not in tokens]
            if missing:
                raise UserError(f"{path}: broken vocabulary file, missing special token(s) {missing}")
        else:
            lines = text.split("\n")
            if lines and lines[-1] == "":
                lines.pop()
            tokens = [ln.rstrip("\r") for ln in lines]
            for lineno, tok in enumerate(tokens, 1):
                if not tok or tok.split() != [tok]:
                    raise UserError(
                        f"{path}: line {lineno}: broken vocabulary file, each line must hold exactly one "
                        f"token without spaces, got {excerpt(tok, 40)}"
                    )
        try:
            return cls(tokens)
        except ValueError as e:
            raise UserError(f"{path}: broken vocabulary file: {e}") from None


