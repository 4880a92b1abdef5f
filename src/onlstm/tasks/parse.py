"""Parsing sentences with a trained ON-LSTM language model (docs/spec.md §2, §3).

A raw sentence is split into words by the model's tokenizer (``TextOptions.tokenizer``, see
:mod:`onlstm.tokenizers`: PTB English, jieba Chinese, characters, or whitespace), and the
punctuation the evaluation protocol drops (docs/spec.md §3) is dropped here too and reported
as dropped. Pretokenized input (lists of words, or ``pretokenized=True``) is split at
whitespace only and nothing is dropped. Each word is shown as typed and read by the model in
its vocabulary form (:func:`vocabulary_form`: ``"The"`` -> ``"the"``, ``"1990"`` -> ``"N"``).

Each sentence is fed as ``<eos> w_1 .. w_T <eos>`` with a fresh zero state, and the forget
distances ``d_f = 1 - mean(f~)`` and input distances ``d_i = mean(i~)`` of every layer are read
at the words (the two boundary positions dropped). A character-level model reads each word
as its characters, and a word's distance is the one read at its first character. A decoder
of :mod:`onlstm.trees` turns the chosen layer's distances (``d_f`` by default, ``d_i`` on
request; or their average over layers) into a binary tree. Sentences run in padded batches.
"""

from __future__ import annotations

import unicodedata
from dataclasses import dataclass, field
from typing import Iterator, List, Optional, Sequence, Tuple, Union

import torch
from torch import Tensor

from .. import trees as T
from ..errors import UserError
from ..lm import LanguageModel
from ..text import EOS, UNK, tokenize
from ..tokenizers import Token, is_punctuation, split_text
from ..treebank import normalize_word
from .common import require_onlstm, vocabulary_form

DECODERS = {"greedy": T.greedy, "split": T.split}
#: Which distance decodes a tree: ``forget`` (d_f, the paper's) or ``input`` (d_i).
DISTANCES = ("forget", "input")


@dataclass
class ParsedSentence:
    """One parsed sentence.

    ``words``: the words parsed, as typed (punctuation dropped); ``model_tokens``: what the
    model read (vocabulary tokens, ``<unk>`` when unknown; characters for a character-level
    model); ``distances`` / ``input_distances``: (layers, T) d_f and d_i per word;
    ``tree``: over ``words``, decoded from ``distance`` of ``layer``; ``dropped``:
    ``(position among all tokens, token as typed)`` of the punctuation left out."""

    words: List[str]
    model_tokens: List[str]
    distances: Tensor
    tree: T.Tree
    layer: str
    oov: int
    input_distances: Optional[Tensor] = None
    distance: str = "forget"
    dropped: List[Tuple[int, str]] = field(default_factory=list)

    def to_dict(self) -> dict:
        def rows(d):
            return None if d is None else [[round(float(v), 6) for v in row] for row in d]

        return dict(words=self.words, model_tokens=self.model_tokens, dropped=[t for _, t in self.dropped],
                    layer=self.layer, distance=self.distance, oov=self.oov, tree=self.tree,
                    distances=rows(self.distances), input_distances=rows(self.input_distances))


def default_layer(num_layers: int) -> int:
    """The middle layer (0-based): layer 2 of 3, as the paper."""
    return (num_layers - 1) // 2 if num_layers > 2 else num_layers - 1 if num_layers == 2 else 0


def layer_distances(distances: Tensor, layer: Union[int, str, None]) -> Tensor:
    """Pick one layer (0-based int) or ``"mean"`` of a (layers, T) tensor."""
    L = distances.shape[0]
    if layer is None:
        layer = default_layer(L)
    if layer == "mean":
        return distances.mean(0)
    if not isinstance(layer, int) or not 0 <= layer < L:
        raise UserError(f"--layer must be 1..{L} or 'mean', got {layer if not isinstance(layer, int) else layer + 1}")
    return distances[layer]


def layer_name(layer: Union[int, str, None], num_layers: int) -> str:
    if layer == "mean":
        return "mean"
    return f"layer {(default_layer(num_layers) if layer is None else layer) + 1}"


# --------------------------------------------------------------------------------------
# Words: from typed text to what the model reads
# --------------------------------------------------------------------------------------


def split_sentence(model: LanguageModel, sentence: Union[str, Sequence[str]],
                   pretokenized: bool = False) -> Tuple[List[Token], List[Tuple[int, str]]]:
    """The words of a sentence by the model's tokenizer, and the punctuation dropped.

    Returns ``(kept, dropped)``: the kept :class:`~onlstm.tokenizers.Token` s, and
    ``(position, text)`` of each dropped token (position among all tokens). A list of words,
    or ``pretokenized=True``, splits at whitespace and drops nothing (the old behaviour)."""
    if not isinstance(sentence, str):
        return [Token(w, w) for w in " ".join(sentence).split()], []
    if pretokenized:
        return split_text(sentence, "whitespace"), []
    tokens = split_text(sentence, model.text_options.tokenizer)
    kept = [t for t in tokens if not is_punctuation(t.form)]
    dropped = [(i, t.text) for i, t in enumerate(tokens) if is_punctuation(t.form)]
    return kept, dropped


def _model_pieces(model: LanguageModel, words: Sequence[str]) -> Tuple[List[str], List[int]]:
    """The tokens the model reads for ``words`` and the index of each word's first one.

    Word-level model: the words themselves. Character-level model: each word's characters
    (prepared by the model's text options, each in its vocabulary form)."""
    options = model.text_options
    if not options.char_level:
        return list(words), list(range(len(words)))
    pieces: List[str] = []
    firsts: List[int] = []
    for w in words:
        chars = tokenize(w, options)
        if not chars:
            raise UserError(f"word {w!r} has no character to read")
        firsts.append(len(pieces))
        pieces.extend(vocabulary_form(model, c) for c in chars)
    return pieces, firsts


# --------------------------------------------------------------------------------------
# Distances
# --------------------------------------------------------------------------------------


@torch.no_grad()
def all_distances(model: LanguageModel, token_lists: Sequence[Sequence[str]], batch_size: int = 64,
                  progress: bool = False) -> List[Tuple[Tensor, Tensor]]:
    """``(d_f, d_i)`` per sentence, each (layers, T) for its T words (docs/spec.md §2).

    ``token_lists``: each sentence's words as the vocabulary knows them (see
    :func:`vocabulary_form`). Each sentence is read as ``<eos> w_1 .. w_T <eos>`` from a zero
    state, in padded batches of ``batch_size`` sorted by length; a character-level model
    reads the words' characters and a word gets the distances read at its first character."""
    require_onlstm(model, "parsing")
    if batch_size < 1:
        raise UserError(f"--batch-size must be >= 1, got {batch_size}")
    pieces = [_model_pieces(model, words) for words in token_lists]
    ids = [model.vocab.encode(p) for p, _ in pieces]
    backward = model.config.direction == "backward"
    if backward:  # read right to left; a word's distance is read at its first piece in that order
        ids = [model.reading_order(i) for i in ids]
        pieces = [(p, [len(p) - 1 - last for last in _last_pieces(firsts, len(p))]) for p, firsts in pieces]
    eos = model.vocab.index(EOS)
    device = model.encoder.weight.device
    out: List[Tuple[Tensor, Tensor]] = [None] * len(ids)  # type: ignore[list-item]
    order = sorted(range(len(ids)), key=lambda i: len(ids[i]))
    starts = range(0, len(order), batch_size)
    if progress and len(order) > batch_size:
        from tqdm.auto import tqdm

        starts = tqdm(starts, desc="parse", unit="batch", leave=False)
    was_training = model.training
    model.eval()
    try:
        for start in starts:
            chunk = order[start:start + batch_size]
            width = max(len(ids[i]) for i in chunk) + 2
            batch = torch.full((width, len(chunk)), eos, dtype=torch.long)
            for b, i in enumerate(chunk):
                batch[1:len(ids[i]) + 1, b] = torch.as_tensor(ids[i], dtype=torch.long)
            result = model(batch.to(device), return_distances=True, decode=False)
            forget = result.distances.float().cpu()  # (L, T, B)
            inputs = result.input_distances.float().cpu()  # (L, T, B)
            for b, i in enumerate(chunk):
                at = torch.as_tensor(pieces[i][1], dtype=torch.long) + 1  # +1: the leading <eos>
                out[i] = (forget[:, at, b], inputs[:, at, b])  # word order
    finally:
        model.train(was_training)
    return out


def _last_pieces(firsts: Sequence[int], count: int) -> List[int]:
    """Index of each word's last piece, from the index of each word's first one."""
    return [nxt - 1 for nxt in list(firsts[1:]) + [count]]


def sentence_distances(model: LanguageModel, token_lists: Sequence[Sequence[str]], batch_size: int = 64,
                       distance: str = "forget", progress: bool = False) -> List[Tensor]:
    """Per-sentence (layers, T) distances of every layer: ``distance="forget"`` gives d_f
    (the paper's), ``"input"`` d_i. ``token_lists`` as for :func:`all_distances` (words in
    vocabulary form; a character-level model reads a word's distance at its first character)."""
    if distance not in DISTANCES:
        raise UserError(f"--distance must be one of {list(DISTANCES)}, got {distance!r}")
    k = DISTANCES.index(distance)
    return [pair[k] for pair in all_distances(model, token_lists, batch_size, progress)]


# --------------------------------------------------------------------------------------
# Parsing
# --------------------------------------------------------------------------------------


def decode(decoder: str, words: Sequence[str], distances: Sequence[float], direction: str = "forward") -> T.Tree:
    """The tree of ``words`` from one distance per word (in word order) by ``decoder``.

    A backward model (``LMConfig.direction == "backward"``) read the sentence right to left,
    so its distances are decoded in its reading order and the tree mirrored back: the decoder
    sees exactly what it would see from a forward model of the reversed language."""
    if decoder not in DECODERS:
        raise UserError(f"unknown decoder {decoder!r}; choose one of {sorted(DECODERS)}")
    if direction == "forward":
        return DECODERS[decoder](words, distances)
    return T.mirror(DECODERS[decoder](list(words)[::-1], list(distances)[::-1]))


def combined_distances(forward: Tensor, backward: Tensor) -> Tensor:
    """One boundary score per word from a forward and a backward model's distances of the
    same sentence, both (..., T) in word order: the score before word ``t`` is the mean of
    the forward model's distance at ``t`` (read on entering ``w_t`` from the left) and the
    backward model's at ``t - 1`` (read on entering ``w_{t-1}`` from the right); the first
    word keeps the forward distance. Decode it as a forward model's distances; the ``split``
    decoder reads exactly these boundaries (it ignores the first word's score)."""
    if forward.shape != backward.shape:
        raise ValueError(f"forward distances {tuple(forward.shape)} and backward {tuple(backward.shape)} differ")
    out = forward.clone()
    out[..., 1:] = (forward[..., 1:] + backward[..., :-1]) / 2
    return out


def check_bidirectional(model: LanguageModel, backward_model: LanguageModel) -> None:
    """A :class:`UserError` unless ``model`` reads left to right and ``backward_model`` right to
    left (trained with ``--direction backward``), both ON-LSTMs with as many layers."""
    require_onlstm(backward_model, "parsing")
    if model.config.direction != "forward":
        raise UserError("--model reads right to left: with --backward-model, --model must be a left-to-right model")
    if backward_model.config.direction != "backward":
        raise UserError("--backward-model reads left to right: it must be a model trained with --direction backward")
    if len(model.rnns) != len(backward_model.rnns):
        raise UserError(f"--model has {len(model.rnns)} layers and --backward-model {len(backward_model.rnns)}: "
                        "their distances are combined layer by layer, so they need as many")


def combined_pairs(forward: Sequence[Tuple[Tensor, Tensor]],
                   backward: Sequence[Tuple[Tensor, Tensor]]) -> List[Tuple[Tensor, Tensor]]:
    """Per sentence ``(d_f, d_i)`` of a forward and a backward model (as :func:`all_distances`
    gives them) combined by :func:`combined_distances`, each distance with its own kind."""
    return [(combined_distances(f_f, b_f), combined_distances(f_i, b_i))
            for (f_f, f_i), (b_f, b_i) in zip(forward, backward)]


def parse_batches(model: LanguageModel, sentences: Sequence[Union[str, Sequence[str]]],
                  layer: Union[int, str, None] = None, decoder: str = "greedy", batch_size: int = 64,
                  progress: bool = False, *, distance: str = "forget", pretokenized: bool = False,
                  backward_model: Optional[LanguageModel] = None) -> Iterator[List[ParsedSentence]]:
    """`parse`, one batch at a time: yields the parsed sentences of each run of ``batch_size``
    consecutive sentences, in input order, as soon as they are parsed (a caller prints them as
    they come). Every sentence and argument is checked before the first batch runs."""
    if decoder not in DECODERS:
        raise UserError(f"unknown decoder {decoder!r}; choose one of {sorted(DECODERS)}")
    if distance not in DISTANCES:
        raise UserError(f"--distance must be one of {list(DISTANCES)}, got {distance!r}")
    require_onlstm(model, "parsing")
    if backward_model is not None:
        check_bidirectional(model, backward_model)
    if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
        raise UserError(f"--batch-size must be >= 1, got {batch_size!r}")
    num_layers = len(model.rnns)
    if layer is None and model.config.parse_layer is not None:
        layer = model.config.parse_layer - 1  # the layer the model's card recommends
    layer_distances(torch.zeros(num_layers, 1), layer)  # a layer the model has (UserError otherwise)
    split = [split_sentence(model, s, pretokenized) for s in sentences]
    for i, (kept, dropped) in enumerate(split):
        if not kept:
            raise UserError(f"sentence {i + 1} is empty" if not dropped else
                            f"sentence {i + 1} has no word left once punctuation is dropped")
    forms = [[vocabulary_form(model, t.form) for t in kept] for kept, _ in split]
    if backward_model is not None:  # each model reads the words in its own vocabulary's form
        back_forms = [[vocabulary_form(backward_model, t.form) for t in kept] for kept, _ in split]
    starts = range(0, len(split), batch_size)
    if progress and len(split) > batch_size:
        from tqdm.auto import tqdm

        starts = tqdm(starts, desc="parse", unit="batch", leave=False)
    for start in starts:
        stop = start + batch_size
        pairs = all_distances(model, forms[start:stop], batch_size)
        if backward_model is not None:
            pairs = combined_pairs(pairs, all_distances(backward_model, back_forms[start:stop], batch_size))
        yield [_parsed(model, kept, dropped, f, d_f, d_i, layer, decoder, distance, backward_model is not None)
               for (kept, dropped), f, (d_f, d_i) in zip(split[start:stop], forms[start:stop], pairs)]


def _parsed(model: LanguageModel, kept, dropped, forms, d_f: Tensor, d_i: Tensor, layer, decoder: str,
            distance: str, bidirectional: bool = False) -> ParsedSentence:
    """One sentence's `ParsedSentence` from its words and distances (layers, T); the tokens
    are those the (forward) ``model`` read."""
    words = [t.text for t in kept]
    pieces = _model_pieces(model, forms)[0]
    ids = model.vocab.encode(pieces)
    toks = [model.vocab.token(i) for i in ids]
    oov = sum(1 for i, tok in zip(ids, pieces) if i == model.vocab.unk_id and tok != UNK)
    chosen = layer_distances(d_f if distance == "forget" else d_i, layer)
    tree = decode(decoder, words, chosen.tolist(), model.config.direction)
    name = layer_name(layer, len(model.rnns)) + (", forward+backward" if bidirectional else "")
    return ParsedSentence(words, toks, d_f, tree, name, oov, d_i, distance, dropped)


def parse(model: LanguageModel, sentences: Sequence[Union[str, Sequence[str]]], layer: Union[int, str, None] = None,
          decoder: str = "greedy", batch_size: int = 64, progress: bool = False, *, distance: str = "forget",
          pretokenized: bool = False, backward_model: Optional[LanguageModel] = None) -> List[ParsedSentence]:
    """Parse sentences (strings, or lists of words) into binary trees.

    ``layer``: 0-based layer index or ``"mean"``; None: the model's ``config.parse_layer``
    when it sets one (the shipped model does), else the middle layer. ``distance``: decode
    from ``"forget"`` (d_f) or ``"input"`` (d_i) distances. ``pretokenized``: split strings
    at whitespace and drop nothing, instead of the model's tokenizer. ``backward_model``: a
    right-to-left model (``--direction backward``) whose distances are combined with the
    left-to-right ``model``'s, layer by layer (:func:`combined_distances`; the returned
    distances are the combined ones). (`parse_batches` gives the same sentences batch by
    batch.)"""
    return [p for batch in parse_batches(model, sentences, layer, decoder, batch_size, progress, distance=distance,
                                         pretokenized=pretokenized, backward_model=backward_model) for p in batch]


# --------------------------------------------------------------------------------------
# Showing distances
# --------------------------------------------------------------------------------------


def _display_width(text: str) -> int:
    """Terminal columns of ``text`` (wide East Asian characters take two)."""
    return sum(2 if unicodedata.east_asian_width(c) in "WF" else 1 for c in text)


def _pad(text: str, width: int) -> str:
    return text + " " * max(0, width - _display_width(text))


def distance_table(parsed: ParsedSentence) -> str:
    """A per-word table of the forget (d_f) and input (d_i) distances of every layer; dropped
    punctuation is listed in place."""
    L = parsed.distances.shape[0]
    both = parsed.input_distances is not None
    dropped = dict(parsed.dropped)
    width = max([4] + [_display_width(w) for w in parsed.words] + [_display_width(w) for w in dropped.values()])
    block = 18 if both else 8
    head = _pad("word", width) + "  " + "  ".join(f"{f'layer {k + 1:>2}':^{block}}" for k in range(L))
    rows = [head.rstrip()]
    if both:
        rows.append(" " * width + "  " + "  ".join(f"{'d_f':>8}  {'d_i':>8}" for _ in range(L)))
    rows.append("-" * max(len(r) for r in rows))
    t = 0
    for position in range(len(parsed.words) + len(dropped)):
        if position in dropped:
            rows.append(_pad(dropped[position], width) + "  (punctuation, dropped)")
            continue
        cells = []
        for k in range(L):
            cell = f"{float(parsed.distances[k, t]):8.4f}"
            if both:
                cell += f"  {float(parsed.input_distances[k, t]):8.4f}"
            cells.append(cell)
        rows.append(_pad(parsed.words[t], width) + "  " + "  ".join(cells))
        t += 1
    return "\n".join(rows)
