"""Scoring predicted trees against gold trees (docs/spec.md §3).

- :func:`score_spans` -- precision, recall and F1 of one sentence's span sets, with the docs/spec.md §3
  edge conventions: no gold span -> recall 1, and precision 1 if the prediction has no span
  either (so a one-word sentence, or a two-word one, scores 1 for any binary tree).
- :func:`evaluate_trees` -- a whole set of sentences, in both conventions in use:

  * sentence-level F1: the mean of the sentence F1s, whole-sentence span left out (the
    number of the papers' tables, PRPN and ON-LSTM);
  * corpus-level (micro) precision / recall / F1 over all spans, the whole-sentence span
    left out (``corpus_*``), and counted once per sentence of two words or more
    (``corpus_*_with_sentence``: what EVALB reports on these trees, the published ON-LSTM
    evaluation's "Evalb F1");
  * recall of the gold constituents per label, whole-sentence constituents left out
    (``label_recall``) and counted (``label_recall_with_sentence``: the published code's
    per-label accuracy);
  * two tree statistics of the predicted trees: the average word depth (the number of
    constituents above a word, averaged over the words of a sentence, then over sentences:
    the "depth" of the ON-LSTM paper's Table 2) and the tree height (the longest
    root-to-word path, averaged over sentences).

  docs/metrics.md explains each and which one the paper's tables use.
- :func:`evaluate_systems` -- several systems (name -> one tree per sentence) scored by the
  same code; :func:`baseline_trees` / :func:`evaluate_baselines` for the four baselines
  (left- and right-branching, balanced, seeded uniform random).
- :func:`filter_by_length` -- the WSJ10 setting (``max_length=10``, words after
  preprocessing).

All scores are fractions in [0, 1]; multiply by 100 for the usual percentages.
"""

from __future__ import annotations

import random
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Optional

from . import trees as T
from .treebank import GoldSentence
from .trees import Span, Tree

__all__ = [
    "BASELINE_NAMES",
    "MAIN_LABELS",
    "SpanScore",
    "ParseScores",
    "score_spans",
    "evaluate_trees",
    "evaluate_systems",
    "baseline_trees",
    "evaluate_baselines",
    "filter_by_length",
]

#: The baselines of docs/spec.md §3, in the order they are reported.
BASELINE_NAMES = ("left", "right", "balanced", "random")

#: The constituent labels a results table shows (every label is in the JSON).
MAIN_LABELS = ("NP", "VP", "PP", "S", "SBAR", "ADJP", "ADVP")


@dataclass(frozen=True)
class SpanScore:
    """Precision, recall and F1 of predicted vs gold spans, with the counts behind them."""

    precision: float
    recall: float
    f1: float
    matched: int
    predicted: int
    gold: int


def _prf(matched: int, predicted: int, gold: int) -> SpanScore:
    """Precision / recall / F1 from counts, with the docs/spec.md §3 conventions for empty sets."""
    precision = matched / predicted if predicted else 0.0
    recall = matched / gold if gold else 0.0
    if gold == 0:
        recall = 1.0
        if predicted == 0:
            precision = 1.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall > 0 else 0.0
    return SpanScore(precision, recall, f1, matched, predicted, gold)


def score_spans(predicted: set[Span], gold: set[Span]) -> SpanScore:
    """Score one sentence: its predicted spans against its gold spans.

    Both sets are expected to follow docs/spec.md §3 (spans of two words or more, the whole
    sentence left out), as :func:`onlstm.trees.spans` and
    :attr:`onlstm.treebank.GoldSentence.spans` give them. When ``gold`` is empty the recall
    is 1, and the precision is 1 if ``predicted`` is empty too (else 0).
    """
    return _prf(len(predicted & gold), len(predicted), len(gold))


@dataclass
class ParseScores:
    """The scores of one system on one set of sentences (fractions in [0, 1]).

    - ``sentence_f1``: mean over sentences of the sentence F1 (:func:`score_spans`; the
      whole-sentence span is not counted): the papers' number.
    - ``corpus_precision`` / ``corpus_recall`` / ``corpus_f1``: from the span counts summed
      over all sentences, the whole-sentence span not counted (docs/spec.md §3).
    - ``corpus_*_with_sentence``: the same, with the whole-sentence span counted once in
      the predicted, the gold and the matched counts of every sentence of two words or
      more (EVALB on these unlabeled trees gives exactly this).
    - ``label_recall[label]``: the fraction of the gold constituents with that label
      (function tags stripped) whose span the system predicted, whole-sentence
      constituents left out; ``label_counts[label]`` how many there are.
      ``label_recall_with_sentence`` / ``label_counts_with_sentence``: the same with the
      whole-sentence constituents (:attr:`GoldSentence.sentence_labels`) counted, which
      every tree predicts (as in the published evaluation).
    - ``word_depth``: mean over sentences of :func:`onlstm.trees.average_word_depth` (the
      paper's "depth"); ``tree_height``: mean over sentences of
      :func:`onlstm.trees.height`.
    """

    system: str
    sentences: int
    sentence_f1: float
    corpus_f1: float
    corpus_precision: float
    corpus_recall: float
    corpus_f1_with_sentence: float
    corpus_precision_with_sentence: float
    corpus_recall_with_sentence: float
    word_depth: float
    tree_height: float
    label_recall: dict[str, float] = field(default_factory=dict)
    label_counts: dict[str, int] = field(default_factory=dict)
    label_recall_with_sentence: dict[str, float] = field(default_factory=dict)
    label_counts_with_sentence: dict[str, int] = field(default_factory=dict)

    def to_dict(self) -> dict:
        """Plain JSON-ready dictionary (labels ordered by decreasing count)."""
        return asdict(self)


def evaluate_trees(
    sentences: Sequence[GoldSentence], predicted: Sequence[Tree], system: str = ""
) -> ParseScores:
    """Score one tree per sentence against the gold sentences, in the same order.

    Each tree must have as many words as its sentence (only the count is checked, so trees
    may be built over vocabulary tokens such as ``<unk>``). Raises ``ValueError`` on a count
    mismatch or an empty set of sentences.
    """
    if len(sentences) != len(predicted):
        raise ValueError(f"{len(sentences)} sentences but {len(predicted)} trees for {system!r}")
    if not sentences:
        raise ValueError("no sentences to score")
    f1_sum = 0.0
    height_sum = 0
    word_depth_sum = 0.0
    matched = n_predicted = n_gold = 0
    whole = 0  # sentences of two words or more: each has one whole-sentence span
    label_total: Counter[str] = Counter()
    label_found: Counter[str] = Counter()
    label_whole: Counter[str] = Counter()
    for index, (sentence, tree) in enumerate(zip(sentences, predicted)):
        measured = T.measures(tree)
        n_words = measured.words
        if n_words != len(sentence.words):
            where = sentence.source or f"sentence {index}"
            raise ValueError(
                f"{system or 'prediction'}: tree of {n_words} words for a sentence of "
                f"{len(sentence.words)} words ({where})"
            )
        pred = measured.spans
        score = score_spans(pred, sentence.spans)
        f1_sum += score.f1
        matched += score.matched
        n_predicted += score.predicted
        n_gold += score.gold
        if n_words >= 2:
            whole += 1
            label_whole.update(set(sentence.sentence_labels))
        height_sum += measured.height
        word_depth_sum += measured.depth_sum / n_words
        for start, end, label in sentence.labeled_spans:
            label_total[label] += 1
            if (start, end) in pred:
                label_found[label] += 1
    corpus = _prf(matched, n_predicted, n_gold)
    with_sentence = _prf(matched + whole, n_predicted + whole, n_gold + whole)
    ordered = sorted(label_total, key=lambda label: (-label_total[label], label))
    total_whole = label_total + label_whole
    ordered_whole = sorted(total_whole, key=lambda label: (-total_whole[label], label))
    return ParseScores(
        system=system,
        sentences=len(sentences),
        sentence_f1=f1_sum / len(sentences),
        corpus_f1=corpus.f1,
        corpus_precision=corpus.precision,
        corpus_recall=corpus.recall,
        corpus_f1_with_sentence=with_sentence.f1,
        corpus_precision_with_sentence=with_sentence.precision,
        corpus_recall_with_sentence=with_sentence.recall,
        word_depth=word_depth_sum / len(sentences),
        tree_height=height_sum / len(sentences),
        label_recall={label: label_found[label] / label_total[label] for label in ordered},
        label_counts={label: label_total[label] for label in ordered},
        label_recall_with_sentence={
            label: (label_found[label] + label_whole[label]) / total_whole[label] for label in ordered_whole
        },
        label_counts_with_sentence={label: total_whole[label] for label in ordered_whole},
    )


def evaluate_systems(
    sentences: Sequence[GoldSentence], systems: Mapping[str, Sequence[Tree]]
) -> dict[str, ParseScores]:
    """Score several systems (name -> one tree per sentence) with the same code.

    The result keeps the order of ``systems``. Model layers, a layer average and the
    baselines are all just systems here.
    """
    return {name: evaluate_trees(sentences, trees, name) for name, trees in systems.items()}


def baseline_trees(
    sentences: Sequence[GoldSentence],
    names: Sequence[str] = BASELINE_NAMES,
    seed: int = 0,
) -> dict[str, list[Tree]]:
    """The baseline trees of every sentence, by baseline name (see :data:`BASELINE_NAMES`).

    The random trees come from one generator seeded with ``seed`` and drawn in sentence
    order, so the same sentences and seed always give the same trees.
    """
    unknown = [name for name in names if name not in T.BASELINES]
    if unknown:
        raise ValueError(f"unknown baseline(s) {unknown}; choose from {list(T.BASELINES)}")
    out: dict[str, list[Tree]] = {}
    for name in names:
        if name == "random":
            rng = random.Random(seed)
            out[name] = [T.random_tree(s.words, rng) for s in sentences]
        else:
            build = T.BASELINES[name]
            out[name] = [build(s.words) for s in sentences]
    return out


def evaluate_baselines(
    sentences: Sequence[GoldSentence],
    names: Sequence[str] = BASELINE_NAMES,
    seed: int = 0,
) -> dict[str, ParseScores]:
    """Score the baselines side by side (:func:`baseline_trees` + :func:`evaluate_systems`)."""
    return evaluate_systems(sentences, baseline_trees(sentences, names, seed))


def filter_by_length(
    sentences: Sequence[GoldSentence], max_length: Optional[int]
) -> list[GoldSentence]:
    """The sentences of at most ``max_length`` words (after preprocessing); all if ``None``.

    ``max_length=10`` gives the WSJ10 setting.
    """
    if max_length is None:
        return list(sentences)
    return [s for s in sentences if len(s.words) <= max_length]
