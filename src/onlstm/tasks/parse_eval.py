"""The ``parse-eval`` task: score trees of any systems on a treebank, as in SPEC §3.

The steps, each usable on its own (the command line just chains them):

1. :func:`load_sentences` -- read and preprocess the treebank (the bundled NLTK WSJ sample
   by default), optionally only the sentences of at most ``max_length`` words;
2. build the systems, a mapping name -> one tree per sentence: :func:`baseline_systems`
   for the baselines; a model adds one system per layer (and one for the layer average)
   by decoding its distances with :func:`onlstm.trees.greedy`;
3. :func:`build_report` -- score every system with the same code
   (:func:`onlstm.metrics.evaluate_systems`);
4. :func:`format_table` / :meth:`ParseEvalReport.to_dict` to show it, :func:`save_trees`
   to write the predictions (bracketed, one per line, in the gold order).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Optional, Union

from .. import trees as T
from ..errors import UserError
from ..metrics import BASELINE_NAMES, MAIN_LABELS, ParseScores, baseline_trees, evaluate_systems
from ..treebank import GoldSentence, load_treebank
from ..trees import Tree

__all__ = [
    "ParseEvalReport",
    "load_sentences",
    "baseline_systems",
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

    def to_dict(self) -> dict:
        """JSON-ready: the setting, then ``systems`` -> :meth:`ParseScores.to_dict`."""
        return {
            "treebank": self.treebank,
            "max_length": self.max_length,
            "sentences": self.sentences,
            "words": self.words,
            "seed": self.seed,
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


def model_systems(
    model,
    sentences: Sequence[GoldSentence],
    decoder: str = "greedy",
    batch_size: int = 64,
    progress: bool = False,
) -> dict[str, list[Tree]]:
    """One system per layer of an ON-LSTM language model (``layer 1`` ...) and one for the
    average of the layers (``mean``): its forget distances over each gold sentence's words
    (fed as ``<eos> w_1 .. w_T <eos>`` with a fresh state, SPEC §2), decoded by ``decoder``."""
    from .parse import DECODERS, sentence_distances

    if decoder not in DECODERS:
        raise UserError(f"unknown decoder {decoder!r}; choose one of {sorted(DECODERS)}")
    if model.config.cell != "onlstm":
        raise UserError("this model is an LSTM baseline (cell='lstm'); parsing needs an ON-LSTM model")
    decode = DECODERS[decoder]
    distances = sentence_distances(model, [s.model_words or s.words for s in sentences], batch_size, progress)
    layers = distances[0].shape[0] if distances else 0
    systems: dict[str, list[Tree]] = {f"layer {k + 1}": [] for k in range(layers)}
    systems["mean"] = []
    for sentence, d in zip(sentences, distances):
        for k in range(layers):
            systems[f"layer {k + 1}"].append(decode(sentence.words, d[k].tolist()))
        systems["mean"].append(decode(sentence.words, d.mean(0).tolist()))
    return systems


def build_report(
    sentences: Sequence[GoldSentence],
    systems: Mapping[str, Sequence[Tree]],
    treebank: str = BUNDLED_DESCRIPTION,
    max_length: Optional[int] = None,
    seed: Optional[int] = None,
) -> ParseEvalReport:
    """Score every system on ``sentences`` (:func:`onlstm.metrics.evaluate_systems`)."""
    return ParseEvalReport(
        treebank=treebank,
        max_length=max_length,
        sentences=len(sentences),
        words=sum(len(s.words) for s in sentences),
        results=evaluate_systems(sentences, systems),
        seed=seed,
    )


def format_table(report: ParseEvalReport, labels: Sequence[str] = MAIN_LABELS) -> str:
    """The results as a text table (percentages), one row per system."""
    scores = list(report.results.values())
    shown = [label for label in labels if any(label in s.label_counts for s in scores)]
    name_width = max([len("system")] + [len(s.system) for s in scores])
    columns = ["sent-F1", "corp-F1", "prec", "recall", "depth"] + shown
    header = "system".ljust(name_width) + "".join(f"{c:>9}" for c in columns)
    limit = f"at most {report.max_length} words" if report.max_length is not None else "all lengths"
    lines = [
        f"Unsupervised parsing, {report.treebank}",
        f"{report.sentences:,} sentences ({limit}), {report.words:,} words"
        + (f", random baseline seed {report.seed}" if report.seed is not None and "random" in report.results else ""),
        "",
        header,
        "-" * len(header),
    ]
    for s in scores:
        cells = [s.sentence_f1, s.corpus_f1, s.corpus_precision, s.corpus_recall]
        row = s.system.ljust(name_width) + "".join(f"{100 * v:9.1f}" for v in cells)
        row += f"{s.average_depth:9.2f}"
        row += "".join(
            f"{100 * s.label_recall[label]:9.1f}" if label in s.label_recall else f"{'-':>9}"
            for label in shown
        )
        lines.append(row)
    lines.append("")
    lines.append(
        "sent-F1: mean of sentence F1 (the papers' number); corp-F1/prec/recall: over all spans; "
        "depth: mean tree depth;"
    )
    if shown and scores:
        counts = ", ".join(f"{label} {scores[0].label_counts[label]:,}" for label in shown)
        lines.append(f"label columns: recall of gold constituents by label ({counts}).")
    return "\n".join(lines)


def tree_file_paths(path: Union[str, Path], names: Sequence[str]) -> dict[str, Path]:
    """Where :func:`save_trees` writes each system: ``path`` itself for a single system,
    else the system name inserted before the suffix (``trees.txt`` -> ``trees.left.txt``)."""
    path = Path(path)
    if len(names) == 1:
        return {names[0]: path}
    out = {}
    for name in names:
        safe = "".join(ch if ch.isalnum() or ch in "-_" else "_" for ch in name)
        out[name] = path.with_name(f"{path.stem}.{safe}{path.suffix}")
    return out


def save_trees(path: Union[str, Path], systems: Mapping[str, Sequence[Tree]]) -> list[Path]:
    """Write each system's trees, bracketed, one per line in the gold order (see
    :func:`tree_file_paths` for the file names). Returns the files written."""
    written = []
    for name, target in tree_file_paths(path, list(systems)).items():
        try:
            target.parent.mkdir(parents=True, exist_ok=True)
            with open(target, "w", encoding="utf-8") as handle:
                for tree in systems[name]:
                    handle.write(T.to_bracketed(tree) + "\n")
        except OSError as err:
            raise UserError(f"{target}: cannot write the trees: {err.strerror or err}") from None
        written.append(target)
    return written

