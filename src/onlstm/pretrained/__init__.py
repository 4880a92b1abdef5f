"""The model shipped with the package (when there is one)."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

DEFAULT_NAME = "ptb-onlstm"


def default_model_path() -> Optional[Path]:
    """Folder of the bundled default model, or None if this version ships none."""
    path = Path(__file__).with_name(DEFAULT_NAME)
    return path if (path / "model.safetensors").is_file() else None
