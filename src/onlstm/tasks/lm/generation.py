"""Sampling text from a language model."""

from __future__ import annotations

from typing import List, Optional

import torch

from ...errors import UserError
from ...lm import LanguageModel

__all__ = ["generate"]


@torch.no_grad()
def generate(model: LanguageModel, prompt: str, tokens: int = 50, temperature: float = 1.0,
             top_k: Optional[int] = None, seed: int = 0) -> List[str]:
    """Sample ``tokens`` tokens continuing ``prompt`` (tokenized like the training text):
    softmax of logits / ``temperature``, among the ``top_k`` most likely when given."""
    if temperature <= 0:
        raise UserError(f"--temperature must be > 0, got {temperature}")
    if top_k is not None and top_k < 1:
        raise UserError(f"--top-k must be >= 1, got {top_k}")
    model.eval()
    gen = torch.Generator().manual_seed(seed)
    eos = model.vocab.eos_id
    ids = [eos] + model.encode_sentence(prompt)
    device = model.encoder.weight.device
    out = model(torch.tensor(ids, device=device).view(-1, 1))
    hidden, logits = out.hidden, out.logits[-1, 0]
    words: List[str] = []
    for _ in range(tokens):
        scores = logits.float().cpu() / temperature
        if top_k is not None and top_k < scores.numel():
            kth = torch.topk(scores, top_k).values[-1]
            scores = scores.masked_fill(scores < kth, float("-inf"))
        nxt = int(torch.multinomial(torch.softmax(scores, -1), 1, generator=gen))
        words.append(model.vocab.token(nxt))
        out = model(torch.tensor([[nxt]], device=device), hidden)
        hidden, logits = out.hidden, out.logits[-1, 0]
    return words
