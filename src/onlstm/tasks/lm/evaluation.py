"""Perplexity of a language model, as the paper measures it (docs/spec.md §4)."""

from __future__ import annotations

import math
from typing import Any, Dict, Optional

import torch
import torch.nn.functional as F

from ...batching import batchify, get_batch
from ...corpus import encode_file, load_corpus
from ...errors import UserError
from ...lm import LanguageModel, perplexity
from ...training import progress_bar

__all__ = ["evaluate_ids", "evaluate_model"]


@torch.no_grad()
def evaluate_ids(model: LanguageModel, ids: torch.Tensor, batch_size: int = 1, bptt: int = 70,
                 progress: bool = False, source: str = "the text") -> float:
    """Mean cross-entropy (nats/token) of a token stream ``ids`` (N,), AWD-LSTM style:
    batchified, consecutive windows of ``bptt`` with the state carried. ``batch_size=1`` is
    the paper's test setting (the whole text as one sequence). Errors name ``source``."""
    for name, value in (("batch_size", batch_size), ("bptt", bptt)):
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise UserError(f"{name} must be an integer >= 1, got {value!r}")
    if ids.numel() // batch_size < 2:
        raise UserError(f"{source} has {ids.numel()} token(s), too few for batch size {batch_size} "
                        f"(each of the {batch_size} column(s) needs at least 2)")
    was_training = model.training
    model.eval()
    device = model.encoder.weight.device
    source = batchify(ids, batch_size).to(device)
    hidden = model.init_hidden(batch_size)
    total, count = 0.0, 0
    starts = range(0, source.size(0) - 1, bptt)
    bar = progress_bar(len(starts), "evaluate", enabled=progress)
    for i in starts:
        x, y = get_batch(source, i, bptt)
        out = model(x, hidden)
        hidden = out.hidden
        total += F.cross_entropy(out.logits.view(-1, out.logits.size(-1)).float(), y.reshape(-1), reduction="sum").item()
        count += y.numel()
        bar.update(1)
    bar.close()
    model.train(was_training)
    return total / count


def evaluate_model(model: LanguageModel, split: str = "test", data: Optional[str] = None, batch_size: int = 1,
                   bptt: int = 70, progress: bool = True) -> Dict[str, Any]:
    """Perplexity of ``model`` on a split of ``data`` (default: the bundled PTB) or on a text
    FILE (``split`` is then its path), as the paper measures it (batch 1, whole text)."""
    if split in ("train", "valid", "test"):
        corpus = load_corpus(data, vocab=model.vocab, options=model.text_options, required=(split,))
        ids = corpus.split(split)
        source = f"{data or 'bundled PTB'}:{split}"
    else:
        ids = encode_file(split, model.vocab, model.text_options)
        source = split
    ids = model.reading_order(ids)  # reversed for a backward model
    unk = int((ids == model.vocab.unk_id).sum())
    loss = evaluate_ids(model, ids, batch_size, bptt, progress=progress, source=source)
    return dict(source=source, tokens=int(ids.numel()), unk_tokens=unk, loss=loss, perplexity=perplexity(loss),
                bits_per_token=loss / math.log(2), batch_size=batch_size)
