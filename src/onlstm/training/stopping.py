"""Why a training run stops before its last epoch: Ctrl-C, a time limit, a step limit, or a
diverged loss.

The first three end the run cleanly (the loop saves a checkpoint and returns the reason; a
resumed run continues exactly there). A non-finite loss is an error, `TrainingDiverged`,
raised *before* the update, so the last checkpoint on disk is still a good one.
"""

from __future__ import annotations

import math
import signal
import threading
from typing import List, Optional, Tuple

from ..errors import UserError
from .distributed import DistInfo, agree

__all__ = ["INTERRUPT", "MAX_MINUTES", "MAX_STEPS", "StopRules", "TrainingDiverged", "check_finite"]

INTERRUPT = "interrupt"
MAX_MINUTES = "max_minutes"
MAX_STEPS = "max_steps"


class TrainingDiverged(UserError):
    """The training loss became NaN or infinite."""


def check_finite(at: str, checkpoint, hint: str = "", **losses: float) -> None:
    """Raise `TrainingDiverged` when any of ``losses`` is NaN or infinite. ``at`` says where
    (e.g. ``"at epoch 3, batch 120"``); the message names the last good ``checkpoint``."""
    if all(math.isfinite(v) for v in losses.values()):
        return
    values = ", ".join(f"{k} {v}" for k, v in losses.items())
    raise TrainingDiverged(f"the training loss became non-finite ({values}) {at}; stopped without updating. "
                           f"The last good checkpoint is {checkpoint}{f' ({hint})' if hint else ''}")


class StopRules:
    """The stop rules of one training invocation, used as a context manager.

    Inside ``with StopRules(...)``, a first Ctrl-C only asks the loop to stop (it saves and
    returns at the next step); a second one raises KeyboardInterrupt at once. Outside the
    main thread signals cannot be caught, and only the limits apply.

    ``max_minutes`` / ``max_steps`` are compared with the numbers the recipe passes to
    `poll`: the language model counts over all resumes, the logic task per invocation.
    """

    def __init__(self, max_minutes: Optional[float] = None, max_steps: Optional[int] = None):
        self.max_minutes = max_minutes
        self.max_steps = max_steps
        self.interrupted = False
        self._previous = None

    def __enter__(self) -> "StopRules":
        if threading.current_thread() is threading.main_thread():
            self._previous = signal.signal(signal.SIGINT, self._on_sigint)
        return self

    def __exit__(self, *exc) -> None:
        if self._previous is not None:
            signal.signal(signal.SIGINT, self._previous)
            self._previous = None

    def _on_sigint(self, signum, frame) -> None:
        if self.interrupted:
            raise KeyboardInterrupt
        self.interrupted = True

    def poll(self, minutes: float, steps: int, info: DistInfo, *flags: bool) -> Tuple[Optional[str], List[bool]]:
        """``(reason, flags)``: the rule that asks to stop now (None: go on), decided alike on
        every rank, and the caller's extra ``flags`` agreed the same way. Collective."""
        rules = [self.interrupted,
                 self.max_steps is not None and steps >= self.max_steps,
                 self.max_minutes is not None and minutes >= self.max_minutes]
        agreed = agree(rules + list(flags), info)
        reason = next((name for name, hit in zip((INTERRUPT, MAX_STEPS, MAX_MINUTES), agreed) if hit), None)
        return reason, agreed[len(rules):]
