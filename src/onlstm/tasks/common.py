"""Checks shared by the tasks."""

from __future__ import annotations

from ..errors import UserError

__all__ = ["require_onlstm"]


def require_onlstm(model, purpose: str = "parsing") -> None:
    """A `UserError` unless ``model`` (a `onlstm.lm.LanguageModel`) has ON-LSTM layers:
    ``purpose`` (e.g. ``"parsing"``, ``"the demo"``) needs the master forget gate."""
    if model.config.cell != "onlstm":
        raise UserError(f"this model is an LSTM baseline (cell={model.config.cell!r}); {purpose} needs an ON-LSTM model")
