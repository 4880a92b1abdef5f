"""The settings of a language-model training run: `TrainConfig`, presets, config files.

Settings are resolved in order: a preset (`PRESETS`), then a config file (JSON or TOML),
then individual overrides (the command line's flags).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any, Dict, List, Optional

from ...errors import UserError
from ...lm import LMConfig
from ...text import TextOptions

__all__ = ["TrainConfig", "PRESETS", "FIXED_ON_RESUME", "resolve_config", "read_config_file"]


@dataclass
class TrainConfig:
    """Every setting of a training run. Presets fill it; a config file and flags override."""

    # model (see LMConfig)
    cell: str = "onlstm"
    emb_size: int = 400
    hidden_sizes: List[int] = field(default_factory=lambda: [1150, 1150, 400])
    chunk_size: int = 10
    master_input: str = "paper"
    dropout: float = 0.45
    dropouth: float = 0.3
    dropouti: float = 0.5
    dropoute: float = 0.1
    wdrop: float = 0.45
    # data
    data: Optional[str] = None  # folder with train/valid/test.txt; None: the bundled PTB
    char_level: bool = False
    lower: bool = False
    digits_to_N: bool = False
    max_vocab: Optional[int] = None
    min_count: int = 1
    # optimisation
    optimizer: str = "sgd"  # "sgd" (NT-ASGD as the paper) or "adam"
    lr: float = 30.0
    clip: float = 0.25
    wdecay: float = 1.2e-6
    alpha: float = 2.0  # activation regularisation
    beta: float = 1.0  # temporal activation regularisation
    batch_size: int = 20
    eval_batch_size: int = 10
    bptt: int = 70
    variable_bptt: bool = True
    nonmono: int = 5
    asgd: bool = True
    epochs: int = 1000
    max_minutes: Optional[float] = None
    max_steps: Optional[int] = None  # stop (and checkpoint) after this many batches in total
    seed: int = 141
    log_interval: int = 200
    checkpoint_minutes: float = 10.0
    device: str = "cpu"
    threads: Optional[int] = None

    @classmethod
    def field_names(cls) -> List[str]:
        return [f.name for f in fields(cls)]

    def model_config(self, vocab_size: int) -> LMConfig:
        text = TextOptions(char_level=self.char_level, lower=self.lower, digits_to_N=self.digits_to_N)
        return LMConfig(vocab_size=vocab_size, emb_size=self.emb_size, hidden_sizes=list(self.hidden_sizes),
                        cell=self.cell, chunk_size=self.chunk_size, master_input=self.master_input,
                        dropout=self.dropout, dropouth=self.dropouth, dropouti=self.dropouti,
                        dropoute=self.dropoute, wdrop=self.wdrop, text=text.to_dict())


# Settings a resumed run cannot change: the model, the data and the batches.
FIXED_ON_RESUME = ("cell", "emb_size", "hidden_sizes", "chunk_size", "master_input", "data", "char_level", "lower",
                   "digits_to_N", "max_vocab", "min_count", "batch_size", "bptt", "variable_bptt", "seed")

PRESETS: Dict[str, Dict[str, Any]] = {
    # docs/spec.md §4 exactly: 400-1150-1150-400, chunk 10, the paper's dropouts, SGD lr 30, 1000 epochs.
    "paper": {},
    # The best found for about an hour on 2 CPU cores (see docs/results.md for the experiments).
    "cpu": dict(emb_size=256, hidden_sizes=[640, 640, 256], chunk_size=8, dropout=0.3, dropouth=0.2,
                dropouti=0.3, dropoute=0.05, wdrop=0.2, batch_size=32, bptt=50, epochs=1000, max_minutes=60,
                optimizer="adam", lr=0.002, wdecay=0.0, log_interval=100),
    # For tests: seconds on a laptop.
    "tiny": dict(emb_size=16, hidden_sizes=[24, 16], chunk_size=4, dropout=0.1, dropouth=0.1, dropouti=0.1,
                 dropoute=0.0, wdrop=0.1, batch_size=4, eval_batch_size=4, bptt=10, epochs=2, lr=10.0,
                 log_interval=10, checkpoint_minutes=1.0),
}


def check_names(values: Dict[str, Any]) -> None:
    """A `UserError` listing the keys of ``values`` that are not settings."""
    unknown = set(values) - set(TrainConfig.field_names())
    if unknown:
        raise UserError(f"unknown training settings: {sorted(unknown)}")


def resolve_config(preset: Optional[str] = None, config_file: Optional[str] = None,
                   overrides: Optional[Dict[str, Any]] = None) -> TrainConfig:
    """Preset, then config file (JSON or TOML), then explicit overrides (None: not given)."""
    values: Dict[str, Any] = {}
    if preset is not None:
        if preset not in PRESETS:
            raise UserError(f"unknown preset {preset!r}; choose one of {sorted(PRESETS)}")
        values.update(PRESETS[preset])
    if config_file is not None:
        values.update(read_config_file(config_file))
    values.update({k: v for k, v in (overrides or {}).items() if v is not None})
    check_names(values)
    return TrainConfig(**values)


def read_config_file(path: str) -> Dict[str, Any]:
    """The settings in a JSON or TOML (``.toml``) file; errors name the file."""
    p = Path(path)
    if not p.is_file():
        raise UserError(f"{path}: config file not found")
    text = p.read_text(encoding="utf-8")
    try:
        if p.suffix == ".toml":
            try:
                import tomllib
            except ModuleNotFoundError:  # Python < 3.11
                import tomli as tomllib  # type: ignore[no-redef]
            data = tomllib.loads(text)
        else:
            data = json.loads(text)
    except Exception as err:  # both parsers' errors name line and column
        raise UserError(f"{path}: cannot parse config ({err})") from None
    if not isinstance(data, dict):
        raise UserError(f"{path}: the config must be a table/object of settings")
    return data
