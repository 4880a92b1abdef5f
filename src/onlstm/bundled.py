"""The files shipped inside the package: data sets and trained models.

Everything bundled lives under ``src/onlstm/resources/`` (a plain folder, not a module),
each data set with its ``SOURCE.md`` and each model with its model card. Code reaches
those files only through :func:`resource` so that a rename happens in one place.
"""

from __future__ import annotations

from pathlib import Path
from typing import Optional

ROOT = Path(__file__).resolve().with_name("resources")
MODELS = ROOT / "models"
DEFAULT_MODEL = "ptb-onlstm"


def resource(*parts: str) -> Path:
    """Path of a bundled file or folder, e.g. ``resource("ptb", "train.txt.gz")``."""
    return ROOT.joinpath(*parts)


def model_names() -> list[str]:
    """Names of the bundled models (folders of ``resources/models`` holding weights)."""
    if not MODELS.is_dir():
        return []
    return sorted(p.name for p in MODELS.iterdir() if (p / "model.safetensors").is_file())


def model_path(name: str) -> Optional[Path]:
    """Folder of the bundled model ``name``, or None if no such model is bundled."""
    path = MODELS / name
    return path if (path / "model.safetensors").is_file() else None


def default_model_path() -> Optional[Path]:
    """Folder of the bundled default model, or None if this version ships none."""
    return model_path(DEFAULT_MODEL)
