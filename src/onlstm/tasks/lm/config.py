"""The settings of a language-model training run: `TrainConfig`, presets, config files.

Settings are resolved in order: a preset (`PRESETS`), then a config file (JSON or TOML),
then individual overrides (the command line's flags). Every value is checked against
`TrainConfig.CHECKS` where it is read (`onlstm.training.validate_settings`): an unknown name,
a wrong type or a value out of range is a `UserError` naming the file (or the run) and the
setting; the model's shape is checked (as `onlstm.lm.LMConfig` will) before any data is read.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any, ClassVar, Dict, List, Optional

from ...cell import MASTER_INPUT_VARIANTS
from ...errors import UserError
from ...fileio import read_text
from ...layer import DROPCONNECT_CONVENTIONS
from ...lm_config import DIRECTIONS
from ...lm import LMConfig
from ...text import TextOptions
from ...training.distributed import parse_device
from ...training.settings import (NONNEGATIVE_FLOAT, POSITIVE_FLOAT, POSITIVE_INT, PROBABILITY, SEED, Check,
                                  validate_settings)

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
    # "published" (the ON-LSTM code's LinearDropConnect) or "rescaled" (AWD-LSTM's); None: the
    # cell's published code's. A run saved before this setting existed resumes as "rescaled".
    dropconnect_convention: Optional[str] = None
    direction: str = "forward"  # "backward": trained on the reversed token stream (reads right to left)
    # a saved model folder whose weights start the run (same shape and vocabulary); None: random
    init_from: Optional[str] = None
    keep_epochs: bool = False  # also save the model after every epoch, in epochs/NNN/ of the run folder
    # data
    data: Optional[str] = None  # folder with train/valid/test.txt; None: the bundled PTB
    char_level: bool = False
    lower: bool = False
    digits_to_N: bool = False
    max_vocab: Optional[int] = None
    min_count: int = 1
    # optimisation
    optimizer: str = "sgd"  # "sgd" (NT-ASGD as the paper), "asgd" (averaged from the start) or "adam"
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

    CHECKS: ClassVar[Dict[str, Check]] = {}  # filled below the class: one Check per field

    def __post_init__(self):
        """Every field checked (a library caller's ``TrainConfig(lr="fast")`` fails too)."""
        for name, value in validate_settings(type(self), self.__dict__, "training settings").items():
            setattr(self, name, value)

    @classmethod
    def field_names(cls) -> List[str]:
        return [f.name for f in fields(cls)]

    def check_model(self, where: str) -> None:
        """The model these settings build is a valid `LMConfig` (layer sizes, chunk size, tied
        embedding): checked before the data is read; a `UserError` naming ``where``."""
        try:
            self.model_config(vocab_size=max(self.max_vocab or 2, 2))
        except UserError as err:
            raise UserError(f"{where}: {err}") from None

    def model_config(self, vocab_size: int) -> LMConfig:
        text = TextOptions(char_level=self.char_level, lower=self.lower, digits_to_N=self.digits_to_N)
        return LMConfig(vocab_size=vocab_size, emb_size=self.emb_size, hidden_sizes=list(self.hidden_sizes),
                        cell=self.cell, chunk_size=self.chunk_size, master_input=self.master_input,
                        dropout=self.dropout, dropouth=self.dropouth, dropouti=self.dropouti,
                        dropoute=self.dropoute, wdrop=self.wdrop, dropconnect_convention=self.dropconnect_convention,
                        text=text.to_dict(), direction=self.direction)


def _device_problem(text: str) -> Optional[str]:
    try:
        parse_device(text)
    except UserError as err:
        if "is not a device" in str(err):
            return f"must be cpu, cuda or cuda:N, got {text!r}"
    return None  # a device missing here may exist where the run resumes: checked when training starts


TrainConfig.CHECKS = {
    "cell": Check(str, choices=("onlstm", "lstm")), "emb_size": POSITIVE_INT, "hidden_sizes": Check(int, low=1, many=True),
    "chunk_size": POSITIVE_INT, "master_input": Check(str, choices=MASTER_INPUT_VARIANTS),
    "dropout": PROBABILITY, "dropouth": PROBABILITY, "dropouti": PROBABILITY, "dropoute": PROBABILITY,
    "wdrop": PROBABILITY, "dropconnect_convention": Check(str, choices=DROPCONNECT_CONVENTIONS, optional=True),
    "direction": Check(str, choices=DIRECTIONS), "init_from": Check(str, optional=True), "keep_epochs": Check(bool),
    "data": Check(str, optional=True), "char_level": Check(bool), "lower": Check(bool), "digits_to_N": Check(bool),
    "max_vocab": Check(int, low=2, optional=True), "min_count": POSITIVE_INT,
    "optimizer": Check(str, choices=("sgd", "asgd", "adam")), "lr": POSITIVE_FLOAT, "clip": NONNEGATIVE_FLOAT,
    "wdecay": NONNEGATIVE_FLOAT, "alpha": NONNEGATIVE_FLOAT, "beta": NONNEGATIVE_FLOAT,
    "batch_size": POSITIVE_INT, "eval_batch_size": POSITIVE_INT, "bptt": POSITIVE_INT,
    "variable_bptt": Check(bool), "nonmono": POSITIVE_INT, "asgd": Check(bool), "epochs": POSITIVE_INT,
    "max_minutes": Check(float, low=0, low_open=True, optional=True), "max_steps": Check(int, low=1, optional=True),
    "seed": SEED, "log_interval": POSITIVE_INT, "checkpoint_minutes": NONNEGATIVE_FLOAT,
    "device": Check(str, test=_device_problem), "threads": Check(int, low=1, optional=True),
}


# Settings a resumed run cannot change: the model, the data and the batches.
FIXED_ON_RESUME = ("cell", "emb_size", "hidden_sizes", "chunk_size", "master_input", "dropconnect_convention",
                   "direction", "init_from", "data",
                   "char_level", "lower", "digits_to_N", "max_vocab", "min_count", "batch_size", "bptt",
                   "variable_bptt", "seed")

#: The value a setting had before it was recorded: a run saved without it resumes with this.
SAVED_BEFORE = {"dropconnect_convention": "rescaled"}

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


def check_overrides(values: Dict[str, Any], where: str = "training settings") -> Dict[str, Any]:
    """``values`` (a subset of the settings; None: not given) checked, the None ones left out."""
    return validate_settings(TrainConfig, {k: v for k, v in values.items() if v is not None}, where)


def saved_settings(values: Dict[str, Any], where: str) -> TrainConfig:
    """The settings a run saved (with `SAVED_BEFORE` for those it did not record), checked;
    errors name ``where``."""
    return TrainConfig(**validate_settings(TrainConfig, values, where))


def resolve_config(preset: Optional[str] = None, config_file: Optional[str] = None,
                   overrides: Optional[Dict[str, Any]] = None) -> TrainConfig:
    """Preset, then config file (JSON or TOML), then explicit overrides (None: not given);
    each checked where it comes from, then the model's shape."""
    values: Dict[str, Any] = {}
    if preset is not None:
        if preset not in PRESETS:
            raise UserError(f"unknown preset {preset!r}; choose one of {sorted(PRESETS)}")
        values.update(PRESETS[preset])
    where = "the settings"
    if config_file is not None:
        values.update(read_config_file(config_file))
        where = f"{config_file} (with the preset and flags)"
    values.update(check_overrides(overrides or {}))
    cfg = TrainConfig(**values)
    cfg.check_model(where)
    return cfg


def read_config_file(path: str) -> Dict[str, Any]:
    """The settings in a JSON or TOML (``.toml``) file, checked; errors name the file."""
    p = Path(path)
    text = read_text(p)  # a missing file, a folder, bad UTF-8: UserErrors naming it
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
    return validate_settings(TrainConfig, data, str(path))
