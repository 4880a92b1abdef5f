"""The run folder: what a training run writes, and the rule that protects it.

Every recipe writes ``checkpoint.safetensors`` (see `onlstm.training.checkpoint`) and
``metrics.jsonl`` (one JSON record per line) into its run folder, next to its own files. A
folder that holds a checkpoint belongs to a run: starting another one there is refused, and
resuming checks that the settings asked for agree with the saved ones
(`resume_settings`).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Dict, Iterable, Mapping, Optional

from ..errors import UserError
from ..fileio import PathLike
from .checkpoint import read_checkpoint_state

__all__ = ["CHECKPOINT_FILE", "METRICS_FILE", "resume_settings", "MetricsLog"]

CHECKPOINT_FILE = "checkpoint.safetensors"
METRICS_FILE = "metrics.jsonl"


def resume_settings(run_dir: PathLike, resume: bool, format: str, requested: Optional[Mapping[str, Any]] = None,
                    fixed: Optional[Iterable[str]] = None, *, legacy_unmarked: bool = False) -> Optional[Dict[str, Any]]:
    """The one check of a run folder before training starts; reads only JSON (the
    checkpoint's header), never a model.

    Not resuming: a folder that already holds a checkpoint is a `UserError`; returns None.
    Resuming: returns the settings saved in the checkpoint (``state["config"]``) updated by
    ``requested``; a requested value that differs from the saved one is a `UserError` when
    its name is in ``fixed`` (every name when ``fixed`` is None).
    """
    run_dir = Path(run_dir)
    path = run_dir / CHECKPOINT_FILE
    if not resume:
        if path.exists():
            raise UserError(f"{run_dir} already holds a run; use --resume to continue it or choose another --out")
        return None
    if not path.is_file():
        raise UserError(f"{path}: no checkpoint to resume from")
    saved = dict(read_checkpoint_state(path, format, legacy_unmarked=legacy_unmarked)["config"])
    requested = dict(requested or {})
    names = set(requested) if fixed is None else set(requested) & set(fixed)
    clash = sorted(k for k in names if requested[k] != saved.get(k))
    if clash:
        raise UserError(f"cannot change {', '.join(clash)} when resuming {run_dir} "
                        "(they differ from its checkpoint's settings; leave them out)")
    saved.update(requested)
    return saved


class MetricsLog:
    """``metrics.jsonl`` of a run: one JSON record per line, appended as training goes.

    ``lines`` counts the records written so far and belongs in the checkpoint: on resume,
    `start` cuts the file back to that many lines (records written after the checkpoint are
    made again). Only the main process writes (``enabled``); every process counts.
    """

    def __init__(self, run_dir: PathLike, enabled: bool = True, lines: int = 0):
        self.path = Path(run_dir) / METRICS_FILE
        self.enabled = enabled
        self.lines = lines

    def start(self, resume: bool) -> None:
        """New run: an empty file. Resumed run: keep the first `lines` records."""
        if not self.enabled:
            return
        if not resume:
            self.path.write_text("")
        elif self.path.exists():
            kept = self.path.read_text().splitlines(keepends=True)
            if len(kept) > self.lines:
                self.path.write_text("".join(kept[: self.lines]))

    def write(self, record: Dict[str, Any]) -> None:
        if self.enabled:
            with open(self.path, "a") as f:
                f.write(json.dumps(record) + "\n")
        self.lines += 1
