"""Vocabulary, corpora and batching for language modelling.

Text conventions (shared by training, evaluation, parsing and generation prompts, so that a
model always sees tokens prepared the same way; see `TextOptions` and `tokenize`):

* One sentence per line. Words are whitespace-separated by default; with
  ``char_level=True`` every non-whitespace character is a token and whitespace is dropped
  (meant for unsegmented text such as Chinese).
* Reading a corpus file appends one ``<eos>`` token per non-blank line; blank
  (whitespace-only) lines are skipped. `tokenize` itself adds ``<eos>`` only when asked.
* Files are UTF-8 (an optional byte-order mark is ignored); a file may be gzip-compressed
  (recognised by its magic bytes, whatever its name).

Vocabulary ids: ``<eos>`` is 0, ``<unk>`` is 1, then the training tokens by frequency
(descending), ties broken by first occurrence in the training text. A literal ``<unk>`` in
the text (PTB has many) is the ``<unk>`` entry, so PTB gives exactly 10,000 types.

Batching follows AWD-LSTM: `batchify` cuts the token stream into ``batch`` parallel columns,
`get_batch` takes a window of rows, and `BPTTSampler` draws the variable BPTT lengths
(SPEC §4) reproducibly, with a JSON-able state for exact resume.

Every problem with the user's files is raised as `onlstm.errors.UserError` naming the file
(and line, where one applies).
"""

from __future__ import annotations

import gzip
import json
import math
import os
import random
import re
import zlib
from collections import Counter
from dataclasses import asdict, dataclass, field, fields
from importlib import resources
from pathlib import Path
from typing import Any, Dict, Iterable, Iterator, List, Optional, Sequence, Tuple, Union

import torch

from onlstm.errors import UserError

__all__ = [
    "EOS",
    "UNK",
    "SPLITS",
    "TextOptions",
    "tokenize",
    "Vocabulary",
    "Corpus",
    "bundled_ptb",
    "read_text",
    "read_tokens",
    "encode_file",
    "load_corpus",
    "batchify",
    "get_batch",
    "Window",
    "BPTTSampler",
    "sample_seq_len",
    "shard_columns",
    "pad_batch",
]

EOS = "<eos>"
UNK = "<unk>"
SPECIALS = (EOS, UNK)
SPLITS = ("train", "valid", "test")

PathLike = Union[str, "os.PathLike[str]"]

_DIGITS = re.compile(r"\d+")
_GZIP_MAGIC = b"\x1f\x8b"


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
    digits_to_N: replace every run of decimal digits (Unicode ``\\d``) by ``N``, as in
                 Mikolov's PTB and the parsing protocol; applied after ``lower`` and before
                 splitting, so with ``char_level`` a number becomes the single token ``N``.
    """

    char_level: bool = False
    lower: bool = False
    digits_to_N: bool = False

    def __post_init__(self) -> None:
        for f in fields(self):
            if not isinstance(getattr(self, f.name), bool):
                raise TypeError(f"TextOptions.{f.name} must be a bool, got {getattr(self, f.name)!r}")

    def to_dict(self) -> Dict[str, bool]:
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
        bad = [k for k, v in d.items() if not isinstance(v, bool)]
        if bad:
            raise UserError(f"text option(s) {bad} must be true or false")
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
        line = _DIGITS.sub("N", line)
    if options.char_level:
        tokens = list("".join(line.split()))
    else:
        tokens = line.split()
    if add_eos and tokens:
        tokens.append(EOS)
    return tokens


# --------------------------------------------------------------------------------------
# Vocabulary
# --------------------------------------------------------------------------------------

_VOCAB_FORMAT = "onlstm-vocabulary"
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
                raise ValueError(f"vocabulary entry {i} must be a non-empty string, got {tok!r}")
            if tok in stoi:
                raise ValueError(f"vocabulary entry {tok!r} appears twice (ids {stoi[tok]} and {i})")
            if tok.split() != [tok]:
                raise ValueError(f"vocabulary entry {i} ({tok!r}) contains whitespace")
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
        _atomic_write_text(path, text)

    @classmethod
    def load(cls, path: PathLike) -> "Vocabulary":
        """Read a vocabulary written by `save` (JSON), or a plain list of one token per line.

        A JSON file must hold ``<eos>`` and ``<unk>``; in a plain list missing specials are
        put in front. Any problem is a UserError naming the file.
        """
        path = Path(path)
        raw = _read_bytes(path, what="vocabulary file")
        text = _decode_utf8(raw, path)
        if not text.strip():
            raise UserError(f"{path}: vocabulary file is empty")
        if path.suffix == ".json" or text.lstrip().startswith("{"):
            try:
                obj = json.loads(text)
            except json.JSONDecodeError as e:
                raise UserError(f"{path}: broken vocabulary file, not valid JSON (line {e.lineno}: {e.msg})") from None
            if not isinstance(obj, dict) or obj.get("format") != _VOCAB_FORMAT:
                raise UserError(f"{path}: not an onlstm vocabulary file (expected \"format\": \"{_VOCAB_FORMAT}\")")
            if obj.get("version") != _VOCAB_VERSION:
                raise UserError(
                    f"{path}: vocabulary file version {obj.get('version')!r} is not supported "
                    f"(this onlstm reads version {_VOCAB_VERSION})"
                )
            tokens = obj.get("tokens")
            if not isinstance(tokens, list) or not all(isinstance(t, str) for t in tokens):
                raise UserError(f"{path}: broken vocabulary file, \"tokens\" must be a list of strings")
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
                        f"token without spaces, got {tok!r}"
                    )
        try:
            return cls(tokens)
        except ValueError as e:
            raise UserError(f"{path}: broken vocabulary file: {e}") from None


def _atomic_write_text(path: Path, text: str) -> None:
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        with open(tmp, "w", encoding="utf-8", newline="\n") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()


# --------------------------------------------------------------------------------------
# Reading files
# --------------------------------------------------------------------------------------


def _read_bytes(path: Any, what: str = "file") -> bytes:
    """Raw bytes of `path` (a Path or an importlib.resources Traversable), gunzipped if needed."""
    try:
        if path.is_dir():
            raise UserError(f"{path}: is a directory, expected a {what}")
        raw = path.read_bytes()
    except UserError:
        raise
    except FileNotFoundError:
        raise UserError(f"{path}: no such {what}") from None
    except IsADirectoryError:
        raise UserError(f"{path}: is a directory, expected a {what}") from None
    except PermissionError:
        raise UserError(f"{path}: permission denied") from None
    except OSError as e:
        raise UserError(f"{path}: cannot read {what}: {e.strerror or e}") from None
    if raw[:2] == _GZIP_MAGIC:
        try:
            raw = gzip.decompress(raw)
        except (OSError, EOFError, zlib.error) as e:
            raise UserError(f"{path}: broken gzip file: {e}") from None
    return raw


def _decode_utf8(raw: bytes, path: Any) -> str:
    """Decode UTF-8 (a leading byte-order mark is dropped); bad bytes -> UserError with line/offset."""
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as e:
        start = e.start
        line = raw.count(b"\n", 0, start) + 1
        col = start - (raw.rfind(b"\n", 0, start) + 1)
        raise UserError(
            f"{path}: line {line}: not valid UTF-8 (byte 0x{raw[start]:02x} at byte offset {col} of the line, "
            f"offset {start} of the file); convert the file to UTF-8, e.g. with "
            f"`iconv -f latin1 -t utf-8`"
        ) from None
    if text.startswith("\ufeff"):
        text = text[1:]
    return text


def read_text(path: PathLike) -> str:
    """The whole text of a UTF-8 (optionally gzipped) file; errors are UserErrors naming it."""
    path = path if hasattr(path, "read_bytes") else Path(path)
    return _decode_utf8(_read_bytes(path), path)


def read_tokens(path: PathLike, options: Optional[TextOptions] = None) -> List[str]:
    """All tokens of a corpus file, ``<eos>`` after each non-blank line, blank lines skipped.

    UserError (naming the file) when it is missing, a directory, empty, has no tokens,
    or is not UTF-8 (with line number and byte offset).
    """
    path = path if hasattr(path, "read_bytes") else Path(path)
    raw = _read_bytes(path)
    if not raw:
        raise UserError(f"{path}: file is empty")
    text = _decode_utf8(raw, path)
    options = options or _DEFAULT_OPTIONS
    out: List[str] = []
    if options == _DEFAULT_OPTIONS:
        # Fast path of `tokenize(line, add_eos=True)` for the common case.
        extend = out.extend
        for line in text.split("\n"):
            words = line.split()
            if words:
                words.append(EOS)
                extend(words)
    else:
        for line in text.split("\n"):
            out.extend(tokenize(line, options, add_eos=True))
    if not out:
        raise UserError(f"{path}: file has no tokens (only blank lines)")
    return out


def _to_tensor(ids: List[int]) -> torch.Tensor:
    return torch.tensor(ids, dtype=torch.long)


def encode_file(path: PathLike, vocab: Vocabulary, options: Optional[TextOptions] = None) -> torch.Tensor:
    """Read a corpus file and encode it with an existing vocabulary -> 1-D LongTensor."""
    return _to_tensor(vocab.encode(read_tokens(path, options)))


# --------------------------------------------------------------------------------------
# Corpora
# --------------------------------------------------------------------------------------


@dataclass
class Corpus:
    """Encoded splits (1-D LongTensors, None for a split not loaded) and their vocabulary."""

    train: Optional[torch.Tensor]
    valid: Optional[torch.Tensor]
    test: Optional[torch.Tensor]
    vocab: Vocabulary
    options: TextOptions = field(default_factory=TextOptions)
    sources: Dict[str, str] = field(default_factory=dict)

    def split(self, name: str) -> torch.Tensor:
        """The split `name`; UserError when it was not loaded."""
        if name not in SPLITS:
            raise ValueError(f"unknown split {name!r}; expected one of {SPLITS}")
        ids = getattr(self, name)
        if ids is None:
            raise UserError(f"the corpus has no {name} split")
        return ids

    def summary(self) -> str:
        """One line per split: tokens and the share of ``<unk>``."""
        lines = [f"vocabulary: {len(self.vocab):,} types"]
        for name in SPLITS:
            ids = getattr(self, name)
            if ids is None:
                continue
            n = ids.numel()
            unk = int((ids == self.vocab.unk_id).sum())
            src = self.sources.get(name, "")
            lines.append(f"{name}: {n:,} tokens, {100.0 * unk / max(n, 1):.2f}% <unk>  {src}".rstrip())
        return "\n".join(lines)


def bundled_ptb() -> Any:
    """The folder (a Traversable) holding the bundled Penn Treebank train/valid/test.txt.gz."""
    return resources.files("onlstm").joinpath("data").joinpath("ptb")


def _find_split(folder: Any, name: str) -> Optional[Any]:
    for fname in (f"{name}.txt", f"{name}.txt.gz"):
        p = folder.joinpath(fname)
        if p.is_file() or p.is_dir():
            return p
    return None


def load_corpus(
    data: Optional[PathLike] = None,
    train: Optional[PathLike] = None,
    valid: Optional[PathLike] = None,
    test: Optional[PathLike] = None,
    options: Optional[TextOptions] = None,
    vocab: Optional[Vocabulary] = None,
    max_vocab: Optional[int] = None,
    min_count: int = 1,
    required: Sequence[str] = SPLITS,
) -> Corpus:
    """Load and encode a corpus.

    data:  a folder with ``train.txt``, ``valid.txt``, ``test.txt`` (or ``.txt.gz``);
           None (and no file below) -> the bundled word-level PTB.
    train/valid/test:  individual files; they override the folder's. Without a folder, a
           split not given is None.
    required:  which splits a folder must have (others are loaded when present).
    vocab: encode with this vocabulary instead of building one from train (then train is
           optional); otherwise it is built from train with `max_vocab` (total size, incl.
           ``<eos>``/``<unk>``) and `min_count`.
    """
    options = TextOptions.from_dict(options)
    if vocab is not None and (max_vocab is not None or min_count != 1):
        raise ValueError("max_vocab/min_count apply only when the vocabulary is built; a vocab was given")
    unknown = [s for s in required if s not in SPLITS]
    if unknown:
        raise ValueError(f"unknown split(s) {unknown} in required; expected a subset of {SPLITS}")

    given = {"train": train, "valid": valid, "test": test}
    files: Dict[str, Any] = {}
    if data is None and all(v is None for v in given.values()):
        folder = bundled_ptb()
        for name in SPLITS:
            files[name] = folder.joinpath(f"{name}.txt.gz")
    else:
        if data is not None:
            folder = Path(data)
            if not folder.exists():
                raise UserError(f"{folder}: data folder not found")
            if not folder.is_dir():
                raise UserError(
                    f"{folder}: is a file, expected a folder with train.txt, valid.txt and test.txt "
                    f"(give single files as train=/valid=/test=)"
                )
            for name in SPLITS:
                if given[name] is not None:
                    continue
                p = _find_split(folder, name)
                if p is None:
                    if name in required:
                        present = sorted(q.name for q in folder.iterdir() if not q.name.startswith("."))
                        raise UserError(
                            f"{folder}: missing the {name} split: no {name}.txt or {name}.txt.gz "
                            f"(the folder holds: {', '.join(present[:10]) or 'nothing'}"
                            f"{', ...' if len(present) > 10 else ''})"
                        )
                    continue
                files[name] = p
        for name, p in given.items():
            if p is not None:
                files[name] = Path(p)

    if vocab is None and "train" not in files:
        raise UserError("no training file: the vocabulary is built from the train split (give train= or a vocabulary)")

    tokens: Dict[str, List[str]] = {name: read_tokens(p, options) for name, p in files.items()}
    if vocab is None:
        vocab = Vocabulary.build(tokens["train"], max_size=max_vocab, min_count=min_count)
    encoded = {name: _to_tensor(vocab.encode(toks)) for name, toks in tokens.items()}
    return Corpus(
        train=encoded.get("train"),
        valid=encoded.get("valid"),
        test=encoded.get("test"),
        vocab=vocab,
        options=options,
        sources={name: str(p) for name, p in files.items()},
    )


# --------------------------------------------------------------------------------------
# Batching for truncated BPTT (AWD-LSTM style)
# --------------------------------------------------------------------------------------


def batchify(ids: torch.Tensor, batch_size: int) -> torch.Tensor:
    """Cut a 1-D id stream into `batch_size` contiguous columns -> (n_steps, batch_size).

    Column j holds tokens ``[j*n_steps, (j+1)*n_steps)``; the remainder is trimmed. At least
    two steps are needed (one input, one target).
    """
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    ids = torch.as_tensor(ids)
    if ids.dim() != 1:
        raise ValueError(f"batchify expects a 1-D tensor of ids, got shape {tuple(ids.shape)}")
    n_steps = ids.numel() // batch_size
    if n_steps < 2:
        raise UserError(
            f"the text is too short for batch size {batch_size}: {ids.numel()} tokens give "
            f"{n_steps} step(s) per column, at least 2 are needed"
        )
    return ids[: n_steps * batch_size].view(batch_size, n_steps).t().contiguous()


def get_batch(source: torch.Tensor, i: int, seq_len: int) -> Tuple[torch.Tensor, torch.Tensor]:
    """Rows ``[i, i+L)`` as input and ``[i+1, i+1+L)`` as target, L = min(seq_len, n_steps-1-i).

    Both are (L, batch) views of `source`; flatten the target with ``.reshape(-1)`` for a
    cross-entropy over all positions.
    """
    n = source.size(0)
    if not 0 <= i < n - 1:
        raise IndexError(f"batch start {i} out of range for a source of {n} steps (needs i < {n - 1})")
    if seq_len < 1:
        raise ValueError(f"seq_len must be >= 1, got {seq_len}")
    length = min(seq_len, n - 1 - i)
    return source[i : i + length], source[i + 1 : i + 1 + length]


def sample_seq_len(
    rng: random.Random,
    bptt: int,
    *,
    p_full: float = 0.95,
    std: float = 5.0,
    min_len: int = 5,
    max_len: Optional[int] = None,
) -> int:
    """One variable BPTT length (SPEC §4, as in AWD-LSTM).

    With probability `p_full` the mean is `bptt`, otherwise ``bptt / 2``; the length is
    ``int(N(mean, std))`` (truncated toward zero), at least `min_len` and at most `max_len`
    (when given).
    """
    mean = bptt if rng.random() < p_full else bptt / 2.0
    length = max(min_len, int(rng.normalvariate(mean, std)))
    if max_len is not None:
        length = min(length, max_len)
    return max(1, length)


@dataclass(frozen=True)
class Window:
    """One training batch window: rows ``[start, start+seq_len)`` of a batchified source."""

    start: int
    seq_len: int
    lr_scale: float  # seq_len / bptt: multiply the learning rate by this for the batch


class BPTTSampler:
    """Reproducible sequence of BPTT windows over a batchified source of `n_steps` rows.

    Iterating yields the `Window`s from the current position to the end of the epoch; then
    the position returns to 0 and `epoch` increases, so ``for w in sampler`` once per epoch
    walks the data epoch after epoch. Lengths come from `sample_seq_len` with a
    ``random.Random(seed)`` (``variable=False``: always `bptt`); a window is cut at the end of
    the data, and its ``lr_scale`` is the length actually used divided by `bptt`.

    The state (`state_dict`, JSON-able) is taken *after* the last window yielded: save it
    once that window's update is done, and a sampler restored with `load_state_dict`
    continues with exactly the windows the uninterrupted one would have produced. (Saved
    right after the last window of an epoch, the restored sampler's next iteration yields
    nothing and just closes that epoch, as the original's would have.)
    Under DistributedDataParallel give every rank the same seed (all ranks must step
    through the same windows of their own columns).
    """

    def __init__(
        self,
        n_steps: int,
        bptt: int = 70,
        *,
        seed: int = 0,
        variable: bool = True,
        p_full: float = 0.95,
        std: float = 5.0,
        min_len: int = 5,
        max_len: Optional[int] = None,
    ):
        if n_steps < 2:
            raise ValueError(f"n_steps must be >= 2 (one input and one target row), got {n_steps}")
        if bptt < 1:
            raise ValueError(f"bptt must be >= 1, got {bptt}")
        if not 0.0 <= p_full <= 1.0:
            raise ValueError(f"p_full must be in [0, 1], got {p_full}")
        if std < 0 or min_len < 1:
            raise ValueError(f"std must be >= 0 and min_len >= 1, got {std} and {min_len}")
        self.n_steps = int(n_steps)
        self.bptt = int(bptt)
        self.seed = int(seed)
        self.variable = bool(variable)
        self.p_full = float(p_full)
        self.std = float(std)
        self.min_len = int(min_len)
        self.max_len = None if max_len is None else int(max_len)
        self.position = 0
        self.epoch = 0
        self.step = 0  # windows yielded so far, over all epochs
        self._rng = random.Random(self.seed)

    def next_seq_len(self) -> int:
        """Draw the next raw length (before the cut at the end of the data)."""
        if not self.variable:
            return self.bptt
        return sample_seq_len(
            self._rng, self.bptt, p_full=self.p_full, std=self.std, min_len=self.min_len, max_len=self.max_len
        )

    def __iter__(self) -> Iterator[Window]:
        while self.position < self.n_steps - 1:
            start = self.position
            length = min(self.next_seq_len(), self.n_steps - 1 - start)
            self.position = start + length
            self.step += 1
            yield Window(start, length, length / self.bptt)
        self.position = 0
        self.epoch += 1

    def __len__(self) -> int:
        """Approximate number of windows in a whole epoch (exact when not variable)."""
        return math.ceil((self.n_steps - 1) / self.bptt)

    # -- state -------------------------------------------------------------------------

    _CONFIG_KEYS = ("n_steps", "bptt", "seed", "variable", "p_full", "std", "min_len", "max_len")

    def state_dict(self) -> Dict[str, Any]:
        """JSON-able state: the settings, position, epoch, step and the RNG state."""
        version, internal, gauss_next = self._rng.getstate()
        state = {k: getattr(self, k) for k in self._CONFIG_KEYS}
        state.update(
            position=self.position,
            epoch=self.epoch,
            step=self.step,
            rng=[version, list(internal), gauss_next],
        )
        return state

    def load_state_dict(self, state: Dict[str, Any]) -> None:
        """Restore a `state_dict`; the settings must match this sampler's."""
        try:
            diff = [k for k in self._CONFIG_KEYS if state[k] != getattr(self, k)]
            if diff:
                detail = ", ".join(f"{k}: saved {state[k]!r}, now {getattr(self, k)!r}" for k in diff)
                raise UserError(f"cannot resume the BPTT sampler, its settings changed ({detail})")
            version, internal, gauss_next = state["rng"]
            rng = random.Random()
            rng.setstate((int(version), tuple(int(x) for x in internal), gauss_next))
            position, epoch, step = int(state["position"]), int(state["epoch"]), int(state["step"])
        except UserError:
            raise
        except (KeyError, TypeError, ValueError) as e:
            raise UserError(f"broken BPTT sampler state ({type(e).__name__}: {e})") from None
        if not 0 <= position < self.n_steps:
            raise UserError(f"broken BPTT sampler state: position {position} outside 0..{self.n_steps - 1}")
        self._rng = rng
        self.position, self.epoch, self.step = position, epoch, step


def shard_columns(source: torch.Tensor, rank: int, world_size: int) -> torch.Tensor:
    """This rank's block of columns of a batchified (n_steps, batch) source (contiguous copy).

    Rank r gets columns ``[r*b, (r+1)*b)`` with ``b = batch // world_size``; the batch must be
    divisible by the world size.
    """
    if world_size < 1 or not 0 <= rank < world_size:
        raise ValueError(f"rank must be in [0, world_size), got rank={rank}, world_size={world_size}")
    if source.dim() != 2:
        raise ValueError(f"shard_columns expects a (n_steps, batch) tensor, got shape {tuple(source.shape)}")
    batch = source.size(1)
    if batch % world_size:
        raise UserError(
            f"batch size {batch} is not divisible by the number of processes ({world_size}); "
            f"choose a batch size that is a multiple of {world_size}"
        )
    per = batch // world_size
    return source[:, rank * per : (rank + 1) * per].contiguous()


# --------------------------------------------------------------------------------------
# Sentence batches (parsing, scoring)
# --------------------------------------------------------------------------------------


def pad_batch(
    sequences: Sequence[Union[Sequence[int], torch.Tensor]], pad_id: int
) -> Tuple[torch.Tensor, torch.Tensor]:
    """Right-pad id sequences -> (LongTensor (batch, max_len), lengths LongTensor (batch,))."""
    lengths = torch.tensor([len(s) for s in sequences], dtype=torch.long)
    max_len = int(lengths.max()) if len(sequences) else 0
    out = torch.full((len(sequences), max_len), int(pad_id), dtype=torch.long)
    for row, seq in enumerate(sequences):
        if len(seq):
            out[row, : len(seq)] = torch.as_tensor(seq, dtype=torch.long)
    return out, lengths
