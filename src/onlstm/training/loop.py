"""The training loop shared by every recipe: epochs of batches, stop rules, checkpoints.

A recipe (the language model's, the logic task's) owns its model, data, optimizer and
counters, and plugs into `run_epochs` through the small `Recipe` interface. The loop
decides *when* things happen, the same way for every recipe:

* after every batch the stop rules are polled (alike on every rank). A stop in the middle of
  an epoch saves a checkpoint there and returns; a stop at an epoch's last batch first
  finishes the epoch (``end_epoch`` and a checkpoint), then returns;
* with ``checkpoint_minutes``, a checkpoint is also saved every so many minutes;
* after every epoch a checkpoint is saved, and the stop rules are polled again (a Ctrl-C or
  a time limit hit during validation stops before the next epoch starts).

Resuming from any of these checkpoints continues the run exactly as if it had not stopped,
provided the recipe saves and restores all of its state (see `onlstm.training.rng`).
"""

from __future__ import annotations

import time
from typing import Any, Dict, Iterable, NamedTuple, Optional, Protocol, Tuple

from .distributed import DistInfo
from .progress import progress_bar
from .stopping import StopRules

__all__ = ["Epoch", "Recipe", "run_epochs"]


class Epoch(NamedTuple):
    """What is left of the current epoch: the batches, and the progress bar's numbers."""

    name: str  # e.g. "epoch 3/20"
    total: int  # batches in the whole epoch (may be approximate)
    done: int  # batches already done (a resumed epoch)
    batches: Iterable[Any]


class Recipe(Protocol):
    """What `run_epochs` needs from a recipe."""

    def finished(self) -> bool:
        """All epochs done?"""

    def start_epoch(self) -> Epoch:
        """Start (or continue) the current epoch: its remaining batches."""

    def train_step(self, batch: Any) -> Optional[Dict[str, str]]:
        """One optimizer update; returns values for the progress bar, or None."""

    def mid_epoch(self) -> bool:
        """True when batches of the current epoch are left."""

    def end_epoch(self) -> None:
        """Validate, keep the best model, log; advance to the next epoch."""

    def save(self) -> None:
        """Write the checkpoint (collective under torchrun: every rank calls it)."""

    def clock(self) -> Tuple[float, int]:
        """``(minutes, steps)`` as the stop rules count them."""


def run_epochs(recipe: Recipe, stop: StopRules, info: DistInfo, *, show_progress: bool = True,
               checkpoint_minutes: Optional[float] = None) -> Optional[str]:
    """Train ``recipe`` until its epochs are finished (returns None) or a stop rule fires
    (returns its name, after saving a checkpoint). See the module doc for the order."""
    last_save = time.time()
    with stop:
        while not recipe.finished():
            epoch = recipe.start_epoch()
            bar = progress_bar(epoch.total, epoch.name, initial=min(epoch.done, epoch.total), enabled=show_progress)
            reason = None
            for batch in epoch.batches:
                postfix = recipe.train_step(batch)
                bar.update(1)
                if postfix:
                    bar.set_postfix(postfix)
                due = bool(checkpoint_minutes) and time.time() - last_save > 60 * checkpoint_minutes
                reason, (due,) = stop.poll(*recipe.clock(), info, due)
                if reason is not None and recipe.mid_epoch():
                    break
                if due:
                    recipe.save()
                    last_save = time.time()
            bar.close()
            if reason is not None and recipe.mid_epoch():
                recipe.save()
                return reason
            recipe.end_epoch()
            recipe.save()
            last_save = time.time()
            if reason is None:
                reason, _ = stop.poll(*recipe.clock(), info)
            if reason is not None and not recipe.finished():
                return reason
    return None
