"""Data-parallel training under ``torchrun``: joining the process group and small collectives.

Under ``torchrun --nproc_per_node=N`` every process runs the same training code; `DistInfo`
says which one this is. Gloo on CPU, NCCL on CUDA. A single process (no ``WORLD_SIZE`` or
``WORLD_SIZE=1``) needs no process group, and the collectives below become no-ops.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import List

import torch
import torch.distributed as dist

from ..errors import UserError

__all__ = ["DistInfo", "parse_device", "setup_distributed", "teardown_distributed", "all_gather", "agree"]


@dataclass
class DistInfo:
    """This process's place in the job: rank, number of processes, its device."""

    rank: int = 0
    world_size: int = 1
    device: torch.device = field(default_factory=lambda: torch.device("cpu"))
    owns_group: bool = False  # we created the process group, so we tear it down

    @property
    def enabled(self) -> bool:
        return self.world_size > 1

    @property
    def is_main(self) -> bool:
        """Rank 0: the process that writes files and prints."""
        return self.rank == 0


def parse_device(text: str) -> torch.device:
    """The torch device ``text`` names (cpu, cuda, cuda:N, mps), if this machine has it;
    otherwise a `UserError` saying what is missing."""
    try:
        dev = torch.device(text)
    except (RuntimeError, TypeError, ValueError):
        raise UserError(f"{text!r} is not a device: use cpu, cuda or cuda:N") from None
    if dev.type == "cpu":
        return dev
    if dev.type == "cuda":
        count = torch.cuda.device_count() if torch.cuda.is_available() else 0
        if count == 0:
            raise UserError(f"{text}: no CUDA GPU is available on this machine (torch {torch.__version__}"
                            f"{'' if torch.version.cuda else ', built without CUDA'}); use --device cpu")
        if dev.index is not None and dev.index >= count:
            raise UserError(f"{text}: this machine has {count} CUDA GPU(s), numbered 0 to {count - 1}")
        return dev
    backend = getattr(torch.backends, dev.type, None)
    if backend is None or not getattr(backend, "is_available", lambda: False)():
        raise UserError(f"{text}: this device is not available here; use cpu or cuda")
    return dev


def setup_distributed(device: str) -> DistInfo:
    """Join the torchrun process group when WORLD_SIZE > 1 (gloo on CPU, NCCL on CUDA)."""
    dev = parse_device(device)
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1:
        return DistInfo(0, 1, dev)
    owns = not dist.is_initialized()
    if owns:
        dist.init_process_group("nccl" if dev.type == "cuda" else "gloo")
    rank = dist.get_rank()
    if dev.type == "cuda":
        dev = torch.device("cuda", int(os.environ.get("LOCAL_RANK", "0")))
        torch.cuda.set_device(dev)
    return DistInfo(rank, dist.get_world_size(), dev, owns)


def teardown_distributed(info: DistInfo, wait: bool = True) -> None:
    """Wait for every rank, then close the process group (exiting with it open can abort).
    ``wait=False`` after an error: the other ranks may never reach the barrier."""
    if info.enabled and info.owns_group and dist.is_initialized():
        if wait:
            dist.barrier()
        dist.destroy_process_group()


def all_gather(t: torch.Tensor, info: DistInfo) -> List[torch.Tensor]:
    """``t`` of every rank, in rank order (``[t]`` in a single process)."""
    if not info.enabled:
        return [t]
    out = [torch.empty_like(t) for _ in range(info.world_size)]
    dist.all_gather(out, t.contiguous())
    return out


def agree(flags: List[bool], info: DistInfo) -> List[bool]:
    """Each flag true when it is true on any rank (one small all-reduce), so that every
    rank takes the same decision (stop, save) at the same step."""
    if not info.enabled:
        return list(flags)
    t = torch.tensor([1.0 if f else 0.0 for f in flags], device=info.device)
    dist.all_reduce(t, op=dist.ReduceOp.MAX)
    return [bool(v > 0) for v in t.tolist()]
