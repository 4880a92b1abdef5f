"""The logical-inference data: formula grammar, the bundled files, symbols and batches.

Each example is a pair of propositional-logic formulas over the variables ``a``..``f`` with
``not``, ``and``, ``or`` and one of seven natural-logic relations between them (``=``
equivalence, ``<`` / ``>`` forward / reverse entailment, ``^`` negation, ``|``
alternation, ``v`` cover, ``#`` independence). The bundled files
(``onlstm/resources/logic/{train,test}{0..12}.gz``, see ``SOURCE.md`` there) group the pairs
by the number of operators k in the larger formula (file 12: k >= 12).

File format: one example per line, ``RELATION<TAB>PREMISE<TAB>HYPOTHESIS``; formulas are
fully bracketed and space-tokenised: a variable, ``( not X )`` or ``( X ( and Y ) )`` /
``( X ( or Y ) )``. `parse_line` checks that grammar on every line.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Sequence

import torch
from torch import Tensor

from ...batching import pad_batch
from ...bundled import resource
from ...errors import UserError
from ...fileio import read_text

DATA_DIR = resource("logic")
MAX_K = 12
RELATIONS = ("=", "<", ">", "^", "|", "v", "#")
RELATION_NAMES = {
    "=": "equivalence",
    "<": "forward entailment",
    ">": "reverse entailment",
    "^": "negation",
    "|": "alternation",
    "v": "cover",
    "#": "independence",
}
VARIABLES = ("a", "b", "c", "d", "e", "f")
OPERATORS = ("not", "and", "or")
PAD = "<pad>"
SYMBOLS = (PAD, "(", ")") + VARIABLES + OPERATORS  # the fixed symbol table; PAD has id 0


@dataclass(frozen=True)
class Example:
    """One pair: ``label`` indexes `RELATIONS`; formulas are token tuples; ``k`` is the
    operator count of the file it came from (12 means >= 12)."""

    label: int
    premise: tuple[str, ...]
    hypothesis: tuple[str, ...]
    k: int


def parse_formula(tokens: Sequence[str]) -> object:
    """Check a tokenised formula against the grammar and return its tree.

    Grammar: ``F := var | ( not F ) | ( F ( and F ) ) | ( F ( or F ) )``. Returns a
    variable name, ``("not", F)`` or ``(op, F, F)``. Raises ``ValueError`` when the tokens
    are not exactly one formula.
    """
    pos = 0

    def expect(tok: str) -> None:
        nonlocal pos
        if pos >= len(tokens) or tokens[pos] != tok:
            got = tokens[pos] if pos < len(tokens) else "end of formula"
            raise ValueError(f"expected {tok!r} at token {pos}, got {got!r}")
        pos += 1

    def formula() -> object:
        nonlocal pos
        if pos >= len(tokens):
            raise ValueError("formula ends too early")
        tok = tokens[pos]
        if tok in VARIABLES:
            pos += 1
            return tok
        expect("(")
        if pos < len(tokens) and tokens[pos] == "not":
            pos += 1
            node = ("not", formula())
            expect(")")
            return node
        left = formula()
        expect("(")
        if pos >= len(tokens) or tokens[pos] not in ("and", "or"):
            raise ValueError(f"expected 'and' or 'or' at token {pos}")
        op = tokens[pos]
        pos += 1
        right = formula()
        expect(")")
        expect(")")
        return (op, left, right)

    tree = formula()
    if pos != len(tokens):
        raise ValueError(f"unexpected {tokens[pos]!r} after a complete formula")
    return tree


def count_operators(tokens: Sequence[str]) -> int:
    """Number of ``not`` / ``and`` / ``or`` tokens."""
    return sum(t in OPERATORS for t in tokens)


def parse_line(line: str, k: int = -1, where: str = "") -> Example:
    """Parse ``RELATION<TAB>PREMISE<TAB>HYPOTHESIS`` (both formulas checked by
    `parse_formula`); errors are `UserError` naming ``where``."""
    parts = line.rstrip("\r\n").split("\t")
    try:
        if len(parts) != 3:
            raise ValueError(f"expected 3 tab-separated fields, got {len(parts)}")
        rel, prem, hyp = parts
        if rel not in RELATIONS:
            raise ValueError(f"unknown relation {rel!r}")
        premise, hypothesis = tuple(prem.split()), tuple(hyp.split())
        parse_formula(premise)
        parse_formula(hypothesis)
    except ValueError as err:
        raise UserError(f"{where}: {err}: {line.strip()!r}") from None
    return Example(RELATIONS.index(rel), premise, hypothesis, k)


def read_file(name: str, data_dir: Path | None = None, limit: int | None = None) -> list[Example]:
    """Examples of one bundled file (``train3``, ``test12``, ...), at most ``limit``."""
    if not (name.startswith(("train", "test")) and name.lstrip("traines").isdigit()):
        raise UserError(f"bad logic data file name {name!r}")
    k = int(name.lstrip("traines"))
    path = Path(data_dir or DATA_DIR) / f"{name}.gz"
    out = []
    for lineno, line in enumerate(read_text(path).splitlines(), 1):
        if limit is not None and len(out) >= limit:
            break
        if line.strip():
            out.append(parse_line(line, k, f"{path.name}:{lineno}"))
    return out


def load_split(split: str, ks: Iterable[int], data_dir: Path | None = None,
               limit: int | None = None) -> dict[int, list[Example]]:
    """``{k: examples}`` of ``split`` ("train" / "test") for the operator counts ``ks``."""
    return {k: read_file(f"{split}{k}", data_dir, limit) for k in ks}


def split_train_valid(examples: Sequence[Example], valid_fraction: float, seed: int):
    """Seeded random split of the training examples into (train, valid)."""
    g = torch.Generator().manual_seed(seed)
    perm = torch.randperm(len(examples), generator=g).tolist()
    n_valid = int(round(len(examples) * valid_fraction))
    valid = sorted(perm[:n_valid])
    valid_set = set(valid)
    return ([examples[i] for i in range(len(examples)) if i not in valid_set],
            [examples[i] for i in valid])


class SymbolTable:
    """Formula symbol <-> id; id 0 is the padding symbol `PAD`.

    Not an `onlstm.text.Vocabulary`: that one always holds ``<eos>`` and ``<unk>`` (two
    more embedding rows than the 12 symbols, which would change the shape of every saved
    logic model) and maps an unknown token to ``<unk>``, where a formula symbol outside the
    grammar must be an error.
    """

    def __init__(self, symbols: Sequence[str] = SYMBOLS):
        if symbols[0] != PAD:
            raise ValueError("the first symbol must be the padding symbol")
        self.itos = list(symbols)
        self.stoi = {s: i for i, s in enumerate(self.itos)}

    def __len__(self) -> int:
        return len(self.itos)

    def encode(self, tokens: Sequence[str], keep_parens: bool = True) -> list[int]:
        """Ids of ``tokens`` (brackets dropped unless ``keep_parens``)."""
        try:
            return [self.stoi[t] for t in tokens if keep_parens or t not in ("(", ")")]
        except KeyError as err:
            raise UserError(f"unknown formula symbol {err.args[0]!r}") from None


class Encoded:
    """A list of examples as id lists, ready for batching."""

    def __init__(self, examples: Sequence[Example], symbols: SymbolTable, keep_parens: bool):
        self.prem = [symbols.encode(e.premise, keep_parens) for e in examples]
        self.hyp = [symbols.encode(e.hypothesis, keep_parens) for e in examples]
        self.labels = [e.label for e in examples]
        self.size = [max(len(p), len(h)) for p, h in zip(self.prem, self.hyp)]

    def __len__(self) -> int:
        return len(self.labels)

    def batch(self, idx: Sequence[int]) -> tuple[Tensor, Tensor, Tensor, Tensor, Tensor]:
        """(prem ids (B, Tp), prem lengths (B,), hyp ids (B, Th), hyp lengths (B,), labels (B,)),
        padded with id 0."""
        p, pl = pad_batch([self.prem[i] for i in idx], pad_id=0)
        h, hl = pad_batch([self.hyp[i] for i in idx], pad_id=0)
        return p, pl, h, hl, torch.tensor([self.labels[i] for i in idx], dtype=torch.long)

    def epoch_batches(self, batch_size: int, generator: torch.Generator | None) -> list[list[int]]:
        """Batches of indices. With a generator: shuffled, then sorted by length inside
        windows of 50 batches (little padding), then the batch order shuffled. Without:
        in order of length (evaluation)."""
        n = len(self)
        if generator is None:
            order = sorted(range(n), key=lambda i: self.size[i])
            return [order[i : i + batch_size] for i in range(0, n, batch_size)]
        perm = torch.randperm(n, generator=generator).tolist()
        window = batch_size * 50
        batches = []
        for w in range(0, n, window):
            chunk = sorted(perm[w : w + window], key=lambda i: self.size[i])
            batches += [chunk[i : i + batch_size] for i in range(0, len(chunk), batch_size)]
        order = torch.randperm(len(batches), generator=generator).tolist()
        return [batches[i] for i in order]
