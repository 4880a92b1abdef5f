"""Batches for truncated BPTT (AWD-LSTM style), shards for data-parallel runs, padding.

`batchify` cuts the token stream into ``batch`` parallel columns, `get_batch` takes a
window of rows, and `BPTTSampler` draws the variable BPTT lengths (docs/spec.md §4)
reproducibly, with a JSON-able state for exact resume.
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass
from typing import Any, Dict, Iterator, Optional, Sequence, Tuple, Union

import torch

from .errors import UserError

__all__ = ["batchify", "get_batch", "Window", "BPTTSampler", "sample_seq_len", "shard_columns", "pad_batch"]


# --------------------------------------------------------------------------------------
# Batching for truncated BPTT (AWD-LSTM style)
# --------------------------------------------------------------------------------------


def batchify(ids: torch.Tensor, batch_size: int) -> torch.Tensor:
    """Cut a 1-D id stream into `batch_size` contiguous columns -> (n_steps, batch_size).

    Column j holds tokens ``[j*n_steps, (j+1)*n_steps)``; the remainder is trimmed. At least
    two steps are needed (one input, one target).
    """
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    ids = torch.as_tensor(ids)
    if ids.dim() != 1:
        raise ValueError(f"batchify expects a 1-D tensor of ids, got shape {tuple(ids.shape)}")
    n_steps = ids.numel() // batch_size
    if n_steps < 2:
        raise UserError(
            f"the text is too short for batch size {batch_size}: {ids.numel()} tokens give "
            f"{n_steps} step(s) per column, at least 2 are needed"
        )
    return ids[: n_steps * batch_size].view(batch_size, n_steps).t().contiguous()


def get_batch(source: torch.Tensor, i: int, seq_len: int) -> Tuple[torch.Tensor, torch.Tensor]:
    """Rows ``[i, i+L)`` as input and ``[i+1, i+1+L)`` as target, L = min(seq_len, n_steps-1-i).

    Both are (L, batch) views of `source`; flatten the target with ``.reshape(-1)`` for a
    cross-entropy over all positions.
    """
    n = source.size(0)
    if not 0 <= i < n - 1:
        raise IndexError(f"batch start {i} out of range for a source of {n} steps (needs i < {n - 1})")
    if seq_len < 1:
        raise ValueError(f"seq_len must be >= 1, got {seq_len}")
    length = min(seq_len, n - 1 - i)
    return source[i : i + length], source[i + 1 : i + 1 + length]


def sample_seq_len(
    rng: random.Random,
    bptt: int,
    *,
    p_full: float = 0.95,
    std: float = 5.0,
    min_len: int = 5,
    max_len: Optional[int] = None,
) -> int:
    """One variable BPTT length (docs/spec.md §4, as in AWD-LSTM).

    With probability `p_full` the mean is `bptt`, otherwise ``bptt / 2``; the length is
    ``int(N(mean, std))`` (truncated toward zero), at least `min_len` and at most `max_len`
    (when given).
    """
    mean = bptt if rng.random() < p_full else bptt / 2.0
    length = max(min_len, int(rng.normalvariate(mean, std)))
    if max_len is not None:
        length = min(length, max_len)
    return max(1, length)


@dataclass(frozen=True)
class Window:
    """One training batch window: rows ``[start, start+seq_len)`` of a batchified source."""

    start: int
    seq_len: int
    lr_scale: float  # seq_len / bptt: multiply the learning rate by this for the batch


class BPTTSampler:
    """Reproducible sequence of BPTT windows over a batchified source of `n_steps` rows.

    Iterating yields the `Window`s from the current position to the end of the epoch; then
    the position returns to 0 and `epoch` increases, so ``for w in sampler`` once per epoch
    walks the data epoch after epoch. Lengths come from `sample_seq_len` with a
    ``random.Random(seed)`` (``variable=False``: always `bptt`); a window is cut at the end of
    the data, and its ``lr_scale`` is the length actually used divided by `bptt`.

    The state (`state_dict`, JSON-able) is taken *after* the last window yielded: save it
    once that window's update is done, and a sampler restored with `load_state_dict`
    continues with exactly the windows the uninterrupted one would have produced. (Saved
    right after the last window of an epoch, the restored sampler's next iteration yields
    nothing and just closes that epoch, as the original's would have.)
    Under DistributedDataParallel give every rank the same seed (all ranks must step
    through the same windows of their own columns).
    """

    def __init__(
        self,
        n_steps: int,
        bptt: int = 70,
        *,
        seed: int = 0,
        variable: bool = True,
        p_full: float = 0.95,
        std: float = 5.0,
        min_len: int = 5,
        max_len: Optional[int] = None,
    ):
        if n_steps < 2:
            raise ValueError(f"n_steps must be >= 2 (one input and one target row), got {n_steps}")
        if bptt < 1:
            raise ValueError(f"bptt must be >= 1, got {bptt}")
        if not 0.0 <= p_full <= 1.0:
            raise ValueError(f"p_full must be in [0, 1], got {p_full}")
        if std < 0 or min_len < 1:
            raise ValueError(f"std must be >= 0 and min_len >= 1, got {std} and {min_len}")
        self.n_steps = int(n_steps)
        self.bptt = int(bptt)
        self.seed = int(seed)
        self.variable = bool(variable)
        self.p_full = float(p_full)
        self.std = float(std)
        self.min_len = int(min_len)
        self.max_len = None if max_len is None else int(max_len)
        self.position = 0
        self.epoch = 0
        self.step = 0  # windows yielded so far, over all epochs
        self._rng = random.Random(self.seed)

    def next_seq_len(self) -> int:
        """Draw the next raw length (before the cut at the end of the data)."""
        if not self.variable:
            return self.bptt
        return sample_seq_len(
            self._rng, self.bptt, p_full=self.p_full, std=self.std, min_len=self.min_len, max_len=self.max_len
        )

    def __iter__(self) -> Iterator[Window]:
        while self.position < self.n_steps - 1:
            start = self.position
            length = min(self.next_seq_len(), self.n_steps - 1 - start)
            self.position = start + length
            self.step += 1
            yield Window(start, length, length / self.bptt)
        self.position = 0
        self.epoch += 1

    def __len__(self) -> int:
        """Approximate number of windows in a whole epoch (exact when not variable)."""
        return math.ceil((self.n_steps - 1) / self.bptt)

    # -- state -------------------------------------------------------------------------

    _CONFIG_KEYS = ("n_steps", "bptt", "seed", "variable", "p_full", "std", "min_len", "max_len")

    def state_dict(self) -> Dict[str, Any]:
        """JSON-able state: the settings, position, epoch, step and the RNG state."""
        version, internal, gauss_next = self._rng.getstate()
        state = {k: getattr(self, k) for k in self._CONFIG_KEYS}
        state.update(
            position=self.position,
            epoch=self.epoch,
            step=self.step,
            rng=[version, list(internal), gauss_next],
        )
        return state

    def load_state_dict(self, state: Dict[str, Any]) -> None:
        """Restore a `state_dict`; the settings must match this sampler's."""
        try:
            diff = [k for k in self._CONFIG_KEYS if state[k] != getattr(self, k)]
            if diff:
                detail = ", ".join(f"{k}: saved {state[k]!r}, now {getattr(self, k)!r}" for k in diff)
                raise UserError(f"cannot resume the BPTT sampler, its settings changed ({detail})")
            version, internal, gauss_next = state["rng"]
            rng = random.Random()
            rng.setstate((int(version), tuple(int(x) for x in internal), gauss_next))
            position, epoch, step = int(state["position"]), int(state["epoch"]), int(state["step"])
        except UserError:
            raise
        except (KeyError, TypeError, ValueError) as e:
            raise UserError(f"broken BPTT sampler state ({type(e).__name__}: {e})") from None
        if not 0 <= position < self.n_steps:
            raise UserError(f"broken BPTT sampler state: position {position} outside 0..{self.n_steps - 1}")
        self._rng = rng
        self.position, self.epoch, self.step = position, epoch, step


def shard_columns(source: torch.Tensor, rank: int, world_size: int) -> torch.Tensor:
    """This rank's block of columns of a batchified (n_steps, batch) source (contiguous copy).

    Rank r gets columns ``[r*b, (r+1)*b)`` with ``b = batch // world_size``; the batch must be
    divisible by the world size.
    """
    if world_size < 1 or not 0 <= rank < world_size:
        raise ValueError(f"rank must be in [0, world_size), got rank={rank}, world_size={world_size}")
    if source.dim() != 2:
        raise ValueError(f"shard_columns expects a (n_steps, batch) tensor, got shape {tuple(source.shape)}")
    batch = source.size(1)
    if batch % world_size:
        raise UserError(
            f"batch size {batch} is not divisible by the number of processes ({world_size}); "
            f"choose a batch size that is a multiple of {world_size}"
        )
    per = batch // world_size
    return source[:, rank * per : (rank + 1) * per].contiguous()


# --------------------------------------------------------------------------------------
# Sentence batches (parsing, scoring)
# --------------------------------------------------------------------------------------


def pad_batch(
    sequences: Sequence[Union[Sequence[int], torch.Tensor]], pad_id: int
) -> Tuple[torch.Tensor, torch.Tensor]:
    """Right-pad id sequences -> (LongTensor (batch, max_len), lengths LongTensor (batch,))."""
    lengths = torch.tensor([len(s) for s in sequences], dtype=torch.long)
    max_len = int(lengths.max()) if len(sequences) else 0
    out = torch.full((len(sequences), max_len), int(pad_id), dtype=torch.long)
    for row, seq in enumerate(sequences):
        if len(seq):
            out[row, : len(seq)] = torch.as_tensor(seq, dtype=torch.long)
    return out, lengths

