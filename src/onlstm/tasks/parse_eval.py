"""The ``parse-eval`` task: score trees of any systems on a treebank, as in docs/spec.md §3.

The steps, each usable on its own (the command line just chains them):

1. :func:`load_sentences` -- read and preprocess the treebank (the bundled NLTK WSJ sample
   by default), optionally only the sentences of at most ``max_length`` words;
2. build the systems, a mapping name -> one tree per sentence: :func:`baseline_systems`
   for the baselines; a model adds one system per layer (and one for the layer average)
   by decoding its forget distances d_f (or, with ``distance="input"``, its input
   distances d_i) with :func:`onlstm.trees.greedy` (:func:`model_distances`,
   :func:`decode_systems`; :func:`model_systems` does both);
3. :func:`build_report` -- score every system with the same code
   (:func:`onlstm.metrics.evaluate_systems`), in both conventions of docs/spec.md §3;
4. :func:`format_table` / :meth:`ParseEvalReport.to_dict` to show it, :func:`save_trees`
   to write the predictions and the gold trees (bracketed, one per line, in the gold
   order). Per-sentence diagnostics (``--show``) are in :mod:`onlstm.tasks.parse_show`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Optional, Union

from .. import trees as T
from ..errors import UserError
from ..fileio import atomic_write_text
from ..metrics import BASELINE_NAMES, MAIN_LABELS, ParseScores, baseline_trees, evaluate_systems
from ..treebank import GoldSentence, load_treebank
from ..trees import Tree

if TYPE_CHECKING:
    from torch import Tensor

#: Which distances decode the model's trees (docs/spec.md §2): d_f (the paper's) or d_i.
DISTANCES = ("forget", "input")

__all__ = [
    "ParseEvalReport",
    "load_sentences",
    "baseline_systems",
    "model_distances",
    "decode_systems",
    "model_systems",
    "build_report",
    "format_table",
    "save_trees",
    "tree_file_paths",
    "describe_treebank",
    "BUNDLED_DESCRIPTION",
]

BUNDLED_DESCRIPTION = "bundled NLTK 10% sample of the WSJ treebank (wsj_0001-0199)"
SINICA_DESCRIPTION = "bundled NLTK sample of the Sinica treebank (10,000 trees)"


@dataclass
class ParseEvalReport:
    """Scores of every system on one set of sentences."""

    treebank: str
    max_length: Optional[int]
    sentences: int
    words: int
    results: dict[str, ParseScores]
    seed: Optional[int] = None
    distance: Optional[str] = None  # what decoded the model's trees: "forget" or "input"
    decoder: Optional[str] = None
    backward_model: Optional[str] = None  # the right-to-left model combined with the model, if any

    def to_dict(self) -> dict:
        """JSON-ready: the setting, then ``systems`` -> :meth:`ParseScores.to_dict`."""
        return {
            "treebank": self.treebank,
            "max_length": self.max_length,
            "sentences": self.sentences,
            "words": self.words,
            "seed": self.seed,
            "distance": self.distance,
            "decoder": self.decoder,
            "backward_model": self.backward_model,
            "systems": {name: scores.to_dict() for name, scores in self.results.items()},
        }


def describe_treebank(inputs: Optional[Sequence[Union[str, Path]]], format: Optional[str] = None) -> str:
    """A short human description of the evaluation set."""
    if not inputs:
        return SINICA_DESCRIPTION if format == "sinica" else BUNDLED_DESCRIPTION
    names = [str(item) for item in inputs]
    return ", ".join(names) if len(names) <= 3 else f"{', '.join(names[:3])} and {len(names) - 3} more"


def load_sentences(
    inputs: Optional[Sequence[Union[str, Path]]] = None,
    max_length: Optional[int] = None,
    progress: bool = False,
    format: Optional[str] = None,
) -> list[GoldSentence]:
    """Gold sentences to evaluate on; :class:`UserError` if none is left. ``format``:
    ``"ptb"``, ``"sinica"`` or None (by extension / content, see
    :func:`onlstm.treebank.load_treebank`)."""
    sentences = load_treebank(inputs or None, max_length=max_length, progress=progress, format=format)
    if not sentences:
        limit = f" of at most {max_length} words" if max_length is not None else ""
        raise UserError(f"no sentence{limit} to evaluate in {describe_treebank(inputs)}")
    return sentences


def baseline_systems(
    sentences: Sequence[GoldSentence], names: Sequence[str] = BASELINE_NAMES, seed: int = 0
) -> dict[str, list[Tree]]:
    """The baseline trees by name (``random`` seeded with ``seed``)."""
    return baseline_trees(sentences, names, seed)


def model_distances(model, sentences: Sequence[GoldSentence], batch_size: int = 64,
                    progress: bool = False, backward_model=None) -> list[tuple[Tensor, Tensor]]:
    """``(d_f, d_i)`` of an ON-LSTM language model over each gold sentence's words, each
    (layers, T): fed as ``<eos> w_1 .. w_T <eos>`` with a fresh state (docs/spec.md §2).
    With a right-to-left ``backward_model``, both models' distances combined
    (:func:`onlstm.tasks.parse.combined_distances`, layer by layer)."""
    from .common import require_onlstm
    from .parse import all_distances, check_bidirectional, combined_pairs

    require_onlstm(model, "parsing")
    if backward_model is not None:
        check_bidirectional(model, backward_model)
    if batch_size < 1:
        raise UserError(f"--batch-size must be >= 1, got {batch_size}")
    words = [s.model_words or s.words for s in sentences]
    pairs = all_distances(model, words, batch_size, progress)
    if backward_model is not None:
        pairs = combined_pairs(pairs, all_distances(backward_model, words, batch_size, progress))
    return pairs


def decode_systems(
    sentences: Sequence[GoldSentence], distances: Sequence[Tensor], decoder: str = "greedy",
    direction: str = "forward",
) -> dict[str, list[Tree]]:
    """One system per layer (``layer 1`` ...) and one for the layer average (``mean``):
    each sentence's (layers, T) ``distances`` decoded by ``decoder`` over its words
    (``direction``: the model's, see :func:`onlstm.tasks.parse.decode`)."""
    from .parse import DECODERS, decode as decode_tree

    if decoder not in DECODERS:
        raise UserError(f"unknown decoder {decoder!r}; choose one of {sorted(DECODERS)}")

    def decode(words, d):
        return decode_tree(decoder, words, d, direction)
    layers = distances[0].shape[0] if len(distances) else 0
    systems: dict[str, list[Tree]] = {f"layer {k + 1}": [] for k in range(layers)}
    systems["mean"] = []
    for sentence, d in zip(sentences, distances):
        for k in range(layers):
            systems[f"layer {k + 1}"].append(decode(sentence.words, d[k].tolist()))
        systems["mean"].append(decode(sentence.words, d.mean(0).tolist()))
    return systems


def model_systems(
    model,
    sentences: Sequence[GoldSentence],
    decoder: str = "greedy",
    batch_size: int = 64,
    progress: bool = False,
    distance: str = "forget",
    backward_model=None,
) -> dict[str, list[Tree]]:
    """:func:`model_distances` then :func:`decode_systems` of the ``distance`` chosen:
    ``"forget"`` (d_f, the paper's) or ``"input"`` (d_i); with ``backward_model``, of both
    models' distances combined."""
    if distance not in DISTANCES:
        raise UserError(f"--distance must be one of {list(DISTANCES)}, got {distance!r}")
    pairs = model_distances(model, sentences, batch_size, progress, backward_model)
    return decode_systems(sentences, [pair[DISTANCES.index(distance)] for pair in pairs], decoder,
                          model.config.direction)


def build_report(
    sentences: Sequence[GoldSentence],
    systems: Mapping[str, Sequence[Tree]],
    treebank: str = BUNDLED_DESCRIPTION,
    max_length: Optional[int] = None,
    seed: Optional[int] = None,
    distance: Optional[str] = None,
    decoder: Optional[str] = None,
    backward_model: Optional[str] = None,
) -> ParseEvalReport:
    """Score every system on ``sentences`` (:func:`onlstm.metrics.evaluate_systems`).

    ``distance`` / ``decoder``: how the model's systems were decoded (None without a model),
    ``backward_model``: the right-to-left model combined with it (None: none); recorded in
    the report and its table."""
    return ParseEvalReport(
        treebank=treebank,
        max_length=max_length,
        sentences=len(sentences),
        words=sum(len(s.words) for s in sentences),
        results=evaluate_systems(sentences, systems),
        seed=seed,
        distance=distance,
        decoder=decoder,
        backward_model=backward_model,
    )


DISTANCE_NAMES = {"forget": "forget distances d_f", "input": "input distances d_i"}


def _label_rows(scores: Sequence[ParseScores], labels: Sequence[str], with_sentence: bool,
                name_width: int) -> list[str]:
    recall = (lambda s: s.label_recall_with_sentence) if with_sentence else (lambda s: s.label_recall)
    counts = (lambda s: s.label_counts_with_sentence) if with_sentence else (lambda s: s.label_counts)
    shown = [label for label in labels if any(label in counts(s) for s in scores)]
    if not shown:
        return []
    header = "system".ljust(name_width) + "".join(f"{label:>8}" for label in shown)
    lines = [header, "-" * len(header)]
    for s in scores:
        lines.append(s.system.ljust(name_width) + "".join(
            f"{100 * recall(s)[label]:8.1f}" if label in recall(s) else f"{'-':>8}" for label in shown))
    lines.append("gold constituents: " + ", ".join(f"{label} {counts(scores[0]).get(label, 0):,}" for label in shown))
    return lines


def format_table(report: ParseEvalReport, labels: Sequence[str] = MAIN_LABELS) -> str:
    """The results as text tables (percentages), one row per system: the span scores and
    tree statistics in both conventions of docs/spec.md §3, then the recall of the gold
    constituents by label, whole-sentence constituents left out and counted."""
    scores = list(report.results.values())
    name_width = max([len("system")] + [len(s.system) for s in scores]) + 1
    limit = f"at most {report.max_length} words" if report.max_length is not None else "all lengths"
    lines = [
        f"Unsupervised parsing, {report.treebank}",
        f"{report.sentences:,} sentences ({limit}), {report.words:,} words"
        + (f", random baseline seed {report.seed}" if report.seed is not None and "random" in report.results else ""),
    ]
    if report.distance is not None:
        lines.append(f"model trees: {report.decoder or 'greedy'} decoder over the "
                     f"{DISTANCE_NAMES.get(report.distance, report.distance)} (--distance {report.distance})"
                     + (f", forward and backward models combined (--backward-model {report.backward_model})"
                        if report.backward_model else ""))
    groups = (("", 9), ("whole sentence left out", 27), ("whole sentence counted", 27), ("depth", 16))
    top = " " * name_width + "".join(f"{g:^{w}}" for g, w in groups)
    header = "system".ljust(name_width) + "".join(
        f"{c:>9}" for c in ("sent-F1", "corp-F1", "prec", "recall", "EVALB-F1", "prec", "recall")
    ) + f"{'word':>8}{'height':>8}"
    lines += ["", top.rstrip(), header, "-" * len(header)]
    for s in scores:
        cells = [s.sentence_f1, s.corpus_f1, s.corpus_precision, s.corpus_recall, s.corpus_f1_with_sentence,
                 s.corpus_precision_with_sentence, s.corpus_recall_with_sentence]
        row = s.system.ljust(name_width) + "".join(f"{100 * v:9.1f}" for v in cells)
        lines.append(row + f"{s.word_depth:8.2f}{s.tree_height:8.2f}")
    lines += [
        "",
        "sent-F1: mean of the sentence F1s (the papers' number). corp-F1/prec/recall: over the spans of all",
        "sentences, the whole-sentence span left out; EVALB-F1/prec/recall: the same with it counted, as",
        "EVALB and the published evaluation do.",
        "depth: word = constituents above a word, averaged over words then sentences (the paper's \"depth\");",
        "height = longest root-to-word path, averaged over sentences. docs/metrics.md explains each.",
    ]
    for with_sentence, title in ((False, "whole-sentence constituents left out"),
                                 (True, "whole-sentence constituents counted (the published evaluation)")):
        rows = _label_rows(scores, labels, with_sentence, name_width)
        if rows:
            lines += ["", f"Recall of gold constituents by label (%), {title}", *rows]
    return "\n".join(lines)


GOLD = "gold"


def tree_file_paths(path: Union[str, Path], names: Sequence[str], gold: bool = False) -> dict[str, Path]:
    """Where :func:`save_trees` writes each system: ``path`` itself for a single system,
    else the system name inserted before the suffix (``trees.txt`` -> ``trees.left.txt``).
    With ``gold``, the gold trees go to ``trees.gold.txt`` (key :data:`GOLD`)."""
    path = Path(path)

    def named(name: str) -> Path:
        safe = "".join(ch if ch.isalnum() or ch in "-_" else "_" for ch in name)
        return path.with_name(f"{path.stem}.{safe}{path.suffix}")

    out = {names[0]: path} if len(names) == 1 else {name: named(name) for name in names}
    if gold:
        out[GOLD] = named(GOLD)
    return out


def save_trees(
    path: Union[str, Path],
    systems: Mapping[str, Sequence[Tree]],
    gold: Optional[Sequence[GoldSentence]] = None,
) -> list[Path]:
    """Write each system's trees, bracketed, one per line in the gold order, and with
    ``gold`` the gold trees (after preprocessing, unlabeled) beside them (see
    :func:`tree_file_paths` for the file names). Each file is written atomically. Returns the
    files written; an unwritable place raises :class:`UserError` naming the file."""
    trees: dict[str, Sequence[Tree]] = dict(systems)
    if gold is not None:
        trees[GOLD] = [sentence.tree for sentence in gold]
    written = []
    for name, target in tree_file_paths(path, list(systems), gold=gold is not None).items():
        text = "".join(T.to_bracketed(tree) + "\n" for tree in trees[name])
        try:
            target.parent.mkdir(parents=True, exist_ok=True)
            atomic_write_text(target, text)
        except OSError as err:
            raise UserError(f"{target}: cannot write the trees: {err.strerror or err}") from None
        written.append(target)
    return written
