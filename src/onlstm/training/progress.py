"""The progress bar of training and evaluation loops (tqdm, on standard error)."""

from __future__ import annotations

__all__ = ["progress_bar"]


def progress_bar(total: int, desc: str, unit: str = "batch", initial: int = 0, enabled: bool = True):
    """A tqdm bar that clears itself when closed. ``enabled=True`` still hides it when
    standard error is not a terminal; ``enabled=False`` always hides it."""
    from tqdm.auto import tqdm

    return tqdm(total=total, initial=initial, desc=desc, unit=unit, disable=None if enabled else True,
                dynamic_ncols=True, leave=False)
