"""Parsing sentences with a trained ON-LSTM language model (SPEC §2).

Each sentence is fed as ``<eos> w_1 .. w_T <eos>`` with a fresh zero state, the forget
distances ``d_f = 1 - mean(f~)`` of every layer are read at the words (the two boundary
positions dropped), and a decoder of :mod:`onlstm.trees` turns the chosen layer's distances
(or their average over layers) into a binary tree. Sentences are run in padded batches.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import List, Optional, Sequence, Union

import torch

from .. import trees as T
from ..text import tokenize
from ..errors import UserError
from ..lm import LanguageModel
from ..treebank import normalize_word

DECODERS = {"greedy": T.greedy, "split": T.split}


@dataclass
class ParsedSentence:
    """``words``: the tokens as given; ``model_tokens``: as the vocabulary saw them (see
    :func:`vocabulary_form`; unknown -> <unk>);
    ``distances``: (layers, T) forget distances; ``tree``: over ``words``."""

    words: List[str]
    model_tokens: List[str]
    distances: torch.Tensor
    tree: T.Tree
    layer: str
    oov: int

    def to_dict(self) -> dict:
        return dict(words=self.words, model_tokens=self.model_tokens, layer=self.layer, oov=self.oov,
                    tree=self.tree, distances=[[round(float(v), 6) for v in row] for row in self.distances])


def default_layer(num_layers: int) -> int:
    """The middle layer (0-based): layer 2 of 3, as the paper."""
    return (num_layers - 1) // 2 if num_layers > 2 else num_layers - 1 if num_layers == 2 else 0


def layer_distances(distances: torch.Tensor, layer: Union[int, str, None]) -> torch.Tensor:
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


def prepare(model: LanguageModel, sentence: Union[str, Sequence[str]]) -> List[str]:
    """Tokens of a sentence prepared as the model's vocabulary expects (its text options)."""
    if isinstance(sentence, str):
        return tokenize(sentence, model.text_options)
    return tokenize(" ".join(sentence), model.text_options)


def vocabulary_form(model: LanguageModel, word: str) -> str:
    """The word as the vocabulary knows it: itself, else lower-cased with digit runs as ``N``
    (the PTB convention, e.g. "The" -> "the", "1990" -> "N"), else itself (read as <unk>)."""
    if word in model.vocab:
        return word
    alt = normalize_word(word)
    return alt if alt in model.vocab else word


def sentence_distances(model: LanguageModel, token_lists: Sequence[Sequence[str]], batch_size: int = 64,
                       progress: bool = False) -> List[torch.Tensor]:
    """Per-sentence (layers, T) forget distances, batched (see :meth:`LanguageModel.sentence_distances`)."""
    if batch_size < 1:
        raise UserError(f"--batch-size must be >= 1, got {batch_size}")
    if not progress or len(token_lists) <= batch_size:
        return model.sentence_distances(token_lists, batch_size=batch_size)
    from tqdm.auto import tqdm

    out: List[torch.Tensor] = []
    step = batch_size * 8
    for start in tqdm(range(0, len(token_lists), step), desc="parse", unit="chunk", leave=False):
        out.extend(model.sentence_distances(token_lists[start:start + step], batch_size=batch_size))
    return out


def parse(model: LanguageModel, sentences: Sequence[Union[str, Sequence[str]]], layer: Union[int, str, None] = None,
          decoder: str = "greedy", batch_size: int = 64, progress: bool = False) -> List[ParsedSentence]:
    """Parse sentences (strings, or lists of words) into binary trees.

    ``layer``: 0-based layer index or ``"mean"``; None: the model's ``config.parse_layer``
    when it sets one (the shipped model does), else the middle layer."""
    if decoder not in DECODERS:
        raise UserError(f"unknown decoder {decoder!r}; choose one of {sorted(DECODERS)}")
    words = [prepare(model, s) for s in sentences]
    empty = [i for i, w in enumerate(words) if not w]
    if empty:
        raise UserError(f"sentence {empty[0] + 1} is empty")
    forms = [[vocabulary_form(model, w) for w in ws] for ws in words]
    dists = sentence_distances(model, forms, batch_size, progress)
    num_layers = len(model.rnns)
    if layer is None and model.config.parse_layer is not None:
        layer = model.config.parse_layer - 1  # the layer the model's card recommends
    out = []
    for w, f, d in zip(words, forms, dists):
        ids = model.vocab.encode(f)
        toks = [model.vocab.token(i) for i in ids]
        oov = sum(1 for i, tok in zip(ids, f) if i == model.vocab.unk_id and tok != "<unk>")
        chosen = layer_distances(d, layer)
        tree = DECODERS[decoder](w, chosen.tolist())
        out.append(ParsedSentence(w, toks, d, tree, layer_name(layer, num_layers), oov))
    return out


def distance_table(parsed: ParsedSentence) -> str:
    """A per-word table of the forget distances of every layer."""
    L = parsed.distances.shape[0]
    width = max(4, max(len(w) for w in parsed.words))
    head = f"{'word':<{width}}  " + "  ".join(f"layer {k + 1:>2}" for k in range(L))
    rows = [head, "-" * len(head)]
    for t, w in enumerate(parsed.words):
        rows.append(f"{w:<{width}}  " + "  ".join(f"{float(parsed.distances[k, t]):8.4f}" for k in range(L)))
    return "\n".join(rows)
