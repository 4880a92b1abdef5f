"""Random number generator states, captured into a checkpoint and restored from it.

Exact resume needs every generator a training step draws from: torch's CPU generator
(dropout masks, shuffles), the CUDA generator on a GPU, and Python's ``random``. Under
torchrun each rank has its own torch generators; all are saved (``rng.<rank>``,
``cuda_rng.<rank>``) and each rank gets its own back.
"""

from __future__ import annotations

import random
from typing import Any, Dict, Mapping, Tuple

import torch

from .distributed import DistInfo, all_gather

__all__ = ["capture_rng", "restore_rng"]


def capture_rng(info: DistInfo) -> Tuple[Dict[str, torch.Tensor], Dict[str, Any]]:
    """``(tensors, state)`` to put into a checkpoint: the torch generators of every rank as
    tensors, Python's ``random`` as JSON under ``state["py_random"]``. Collective: every rank
    must call it."""
    tensors = {f"rng.{r}": t for r, t in enumerate(all_gather(torch.get_rng_state(), info))}
    if info.device.type == "cuda":
        for r, t in enumerate(all_gather(torch.cuda.get_rng_state().to(info.device), info)):
            tensors[f"cuda_rng.{r}"] = t.cpu()
    return tensors, {"py_random": list(random.getstate())}


def restore_rng(tensors: Mapping[str, torch.Tensor], state: Mapping[str, Any], info: DistInfo) -> None:
    """Set this rank's generators from what `capture_rng` saved (a missing Python state, as
    in older checkpoints, leaves ``random`` as it is)."""
    torch.set_rng_state(tensors[f"rng.{info.rank}"])
    if info.device.type == "cuda" and f"cuda_rng.{info.rank}" in tensors:
        torch.cuda.set_rng_state(tensors[f"cuda_rng.{info.rank}"])
    if state.get("py_random") is not None:
        version, internal, gauss = state["py_random"]
        random.setstate((version, tuple(internal), gauss))
