"""Corpora for language modelling: reading token files, building the vocabulary, encoding.

Reading a corpus file appends one ``<eos>`` token per non-blank line; blank
(whitespace-only) lines are skipped. Files are UTF-8 (an optional byte-order mark is
ignored) and may be gzip-compressed (recognised by their magic bytes, whatever their name).
Every problem with the user's files is raised as `onlstm.errors.UserError` naming the file
(and line, where one applies).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence

import torch

from .bundled import resource
from .errors import UserError
from .fileio import PathLike, decode_utf8, read_bytes
from .text import EOS, TextOptions, Vocabulary, tokenize

__all__ = ["SPLITS", "Corpus", "bundled_ptb", "read_tokens", "encode_file", "load_corpus"]

SPLITS = ("train", "valid", "test")
_DEFAULT_OPTIONS = TextOptions()



def read_tokens(path: PathLike, options: Optional[TextOptions] = None) -> List[str]:
    """All tokens of a corpus file, ``<eos>`` after each non-blank line, blank lines skipped.

    UserError (naming the file) when it is missing, a directory, empty, has no tokens,
    or is not UTF-8 (with line number and byte offset).
    """
    path = path if hasattr(path, "read_bytes") else Path(path)
    raw = read_bytes(path)
    if not raw:
        raise UserError(f"{path}: file is empty")
    text = decode_utf8(raw, path)
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
    return resource("ptb")


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


