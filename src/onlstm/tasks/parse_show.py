"""Per-sentence diagnostics of ``parse-eval --show N`` (docs/spec.md §2, §3).

For every N-th sentence (the N-th, the 2N-th, ..., counted from 1 as the published evaluation
does with N = 100): its words with the forget distances d_f and the input distances d_i of
every layer, the gold tree and one predicted tree drawn side by side (one line per word,
:func:`onlstm.trees.draw`), and the precision / recall / F1 of every system on that sentence
(:func:`onlstm.metrics.score_spans`, the sentence-F1 convention).

:func:`collect_shown` gathers them, :func:`format_shown` writes one for the terminal and
:meth:`ShownSentence.to_dict` for JSON.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Optional

from .. import trees as T
from ..errors import UserError
from ..metrics import SpanScore, score_spans
from ..treebank import GoldSentence
from ..trees import Tree

if TYPE_CHECKING:
    from torch import Tensor

__all__ = ["ShownSentence", "shown_indices", "default_shown_system", "collect_shown", "format_shown"]


@dataclass
class ShownSentence:
    """One sentence shown by ``--show``.

    ``number``: 1-based position in the evaluated set; ``forget`` / ``input``: (layers, T)
    d_f and d_i (None without a model); ``trees`` / ``scores``: every system's tree and its
    score on this sentence; ``drawn``: the system whose tree is drawn beside the gold one;
    ``distance``: the distances that decoded the model's trees."""

    number: int
    total: int
    sentence: GoldSentence
    trees: dict[str, Tree]
    scores: dict[str, SpanScore]
    drawn: str
    forget: Optional[Tensor] = None
    input: Optional[Tensor] = None
    distance: Optional[str] = None

    def to_dict(self) -> dict:
        def rows(d):
            return None if d is None else [[round(float(v), 6) for v in row] for row in d]

        return {
            "number": self.number,
            "source": self.sentence.source,
            "words": list(self.sentence.words),
            "gold": self.sentence.tree,
            "forget_distances": rows(self.forget),
            "input_distances": rows(self.input),
            "distance": self.distance,
            "trees": self.trees,
            "scores": {
                name: {"precision": s.precision, "recall": s.recall, "f1": s.f1}
                for name, s in self.scores.items()
            },
        }


def shown_indices(count: int, every: int) -> list[int]:
    """0-based indices of the sentences ``--show every`` shows: the every-th, 2·every-th, ..."""
    if every < 1:
        raise UserError(f"--show must be >= 1, got {every}")
    return list(range(every - 1, count, every))


def default_shown_system(systems: Sequence[str], preferred: Optional[str] = None) -> str:
    """The system drawn beside the gold tree: ``preferred`` when given (it must be one of
    ``systems``), else ``layer 2`` if there is one (the paper's best layer), else ``layer 1``,
    else ``right``, else the first."""
    if preferred is not None:
        if preferred not in systems:
            raise UserError(f"--show-system {preferred!r} is not among the systems: {', '.join(systems)}")
        return preferred
    for name in ("layer 2", "layer 1", "right"):
        if name in systems:
            return name
    return systems[0]


def collect_shown(
    sentences: Sequence[GoldSentence],
    systems: Mapping[str, Sequence[Tree]],
    every: int,
    distances: Optional[Sequence[tuple[Tensor, Tensor]]] = None,
    distance: Optional[str] = None,
    drawn: Optional[str] = None,
) -> list[ShownSentence]:
    """The sentences ``--show every`` shows. ``distances``: ``(d_f, d_i)`` per sentence (from
    :func:`onlstm.tasks.parse_eval.model_distances`) or None without a model; ``drawn``: see
    :func:`default_shown_system`."""
    names = list(systems)
    if not names:
        raise UserError("no system to show")
    chosen = default_shown_system(names, drawn)
    out = []
    for i in shown_indices(len(sentences), every):
        sentence = sentences[i]
        trees = {name: systems[name][i] for name in names}
        scores = {name: score_spans(T.spans(tree), sentence.spans) for name, tree in trees.items()}
        forget, input_ = distances[i] if distances is not None else (None, None)
        out.append(ShownSentence(i + 1, len(sentences), sentence, trees, scores, chosen, forget, input_, distance))
    return out


def _width(text: str) -> int:
    """Terminal columns of ``text`` (wide East Asian characters take two)."""
    return sum(2 if unicodedata.east_asian_width(c) in "WF" else 1 for c in text)


def _pad(text: str, width: int) -> str:
    return text + " " * max(0, width - _width(text))


def format_shown(shown: ShownSentence) -> str:
    """One shown sentence for the terminal: a per-word table of the distances beside the
    gold and the predicted tree (drawn without words, line ``t`` is word ``t``), then
    precision / recall / F1 (%) of every system on this sentence."""
    sentence = shown.sentence
    words = sentence.words
    where = f" ({sentence.source})" if sentence.source else ""
    lines = [f"sentence {shown.number:,} of {shown.total:,}{where}, {len(words)} word{'s' * (len(words) != 1)}"]
    word_width = max([4] + [_width(w) for w in words])
    gold_art = T.draw(sentence.tree, words=False).split("\n")
    pred_art = T.draw(shown.trees[shown.drawn], words=False).split("\n")
    gold_width = max(4, max(len(a) for a in gold_art))
    cells: list[list[str]] = [[] for _ in words]
    heads: list[str] = []
    for kind, values in (("d_f", shown.forget), ("d_i", shown.input)):
        if values is None:
            continue
        for k in range(values.shape[0]):
            heads.append(f"{kind} L{k + 1}")
            for t in range(len(words)):
                cells[t].append(f"{float(values[k, t]):.3f}")
    head = _pad("word", word_width) + "".join(f"{h:>8}" for h in heads)
    head += "   " + _pad("gold", gold_width) + "   " + shown.drawn
    lines.append(head)
    for t, word in enumerate(words):
        row = _pad(word, word_width) + "".join(f"{c:>8}" for c in cells[t])
        lines.append((row + "   " + _pad(gold_art[t], gold_width) + "   " + pred_art[t]).rstrip())
    if shown.distance is not None:
        lines.append(f"(model trees decoded from {'d_f' if shown.distance == 'forget' else 'd_i'})")
    name_width = max(len(n) for n in shown.scores) + 2
    lines.append(" " * name_width + f"{'prec':>7}{'recall':>7}{'F1':>7}")
    for name, s in shown.scores.items():
        lines.append(name.ljust(name_width) + "".join(f"{100 * v:7.1f}" for v in (s.precision, s.recall, s.f1)))
    return "\n".join(lines)
