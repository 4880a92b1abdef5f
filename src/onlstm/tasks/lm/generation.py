"""Sampling text from a language model, one token at a time (so a caller can print as it goes)."""

from __future__ import annotations

import math
from typing import Iterator, List, Optional

import torch

from ...errors import UserError
from ...lm import LanguageModel
from ...text import tokenize_text
from ..common import vocabulary_form

__all__ = ["sample_tokens", "generate"]


def sample_tokens(model: LanguageModel, prompt: str, tokens: int = 50, temperature: float = 1.0,
                  top_k: Optional[int] = None, seed: int = 0) -> Iterator[str]:
    """Yield ``tokens`` sampled tokens continuing ``prompt`` (text as typed, split by the model's
    tokenizer as ``parse`` does: ``didn't`` -> ``did n't``, ``The`` -> ``the``, ``$5`` -> ``$ N``),
    each as soon as it is drawn: softmax of logits / ``temperature``, among the ``top_k`` most
    likely when given. The arguments are checked before the model runs."""
    if isinstance(tokens, bool) or not isinstance(tokens, int) or tokens < 0:
        raise UserError(f"--tokens must be an integer >= 0, got {tokens!r}")
    if not (isinstance(temperature, (int, float)) and math.isfinite(temperature) and temperature > 0):
        raise UserError(f"--temperature must be a finite number > 0, got {temperature!r}")
    if model.config.direction != "forward":
        raise UserError("this model reads right to left (direction 'backward'): it continues text to the left, "
                        "which `generate` does not do; use a forward model")
    if top_k is not None and (isinstance(top_k, bool) or not isinstance(top_k, int) or top_k < 1):
        raise UserError(f"--top-k must be an integer >= 1, got {top_k!r}")
    return _sample(model, prompt, tokens, float(temperature), top_k, seed)


@torch.no_grad()
def _sample(model: LanguageModel, prompt: str, tokens: int, temperature: float, top_k: Optional[int],
            seed: int) -> Iterator[str]:
    model.eval()
    gen = torch.Generator().manual_seed(seed)
    eos = model.vocab.eos_id
    # as typed: split like `parse` splits a sentence, each token in its vocabulary form ("The" -> "the")
    ids = [eos] + model.vocab.encode([vocabulary_form(model, t) for t in tokenize_text(prompt, model.text_options)])
    device = model.encoder.weight.device
    out = model(torch.tensor(ids, device=device).view(-1, 1))
    hidden, logits = out.hidden, out.logits[-1, 0]
    for _ in range(tokens):
        scores = logits.float().cpu() / temperature
        if top_k is not None and top_k < scores.numel():
            kth = torch.topk(scores, top_k).values[-1]
            scores = scores.masked_fill(scores < kth, float("-inf"))
        nxt = int(torch.multinomial(torch.softmax(scores, -1), 1, generator=gen))
        yield model.vocab.token(nxt)
        out = model(torch.tensor([[nxt]], device=device), hidden)
        hidden, logits = out.hidden, out.logits[-1, 0]


def generate(model: LanguageModel, prompt: str, tokens: int = 50, temperature: float = 1.0,
             top_k: Optional[int] = None, seed: int = 0) -> List[str]:
    """The tokens of `sample_tokens` as a list."""
    return list(sample_tokens(model, prompt, tokens, temperature, top_k, seed))
