"""The logical-inference model (the paper's) and its files.

Embedding 128, one recurrent layer of 400 units (`onlstm.layer.ONLSTM` or
``torch.nn.LSTM``), dropout 0.2; each formula is encoded separately (the same encoder) into
the hidden state after its last token, u and v; an MLP on [u; v; u*v; |u-v|] gives 7 logits.

A run folder of ``onlstm logic train`` holds ``best.safetensors`` (weights with the best
validation accuracy) and ``checkpoint.safetensors`` (the latest training state), both in
the harness's checkpoint format (`onlstm.training.checkpoint`, format ``onlstm-logic``)
with the configuration and symbol table in their JSON state; `load_model` reads either.
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from pathlib import Path
from typing import ClassVar

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ...errors import UserError
from ...layer import DROPCONNECT_CONVENTIONS
from ...lm_config import MAX_SIZE
from ...training import CHECKPOINT_FILE, read_checkpoint
from ...training.settings import NONNEGATIVE_FLOAT, POSITIVE_FLOAT, POSITIVE_INT, PROBABILITY, SEED, Check, \
    validate_settings
from .data import MAX_K, RELATIONS, SymbolTable

FORMAT = "onlstm-logic"
CHECKPOINT = CHECKPOINT_FILE
BEST = "best.safetensors"
CONFIG = "config.json"
RESULTS = "results.json"


@dataclass
class LogicConfig:
    """Everything that defines a run (saved in the checkpoint and ``config.json``); every
    field is checked when a config is made (`CHECKS`; a `UserError` naming the field)."""

    cell: str = "onlstm"  # "onlstm" | "lstm"
    embed_size: int = 128
    hidden_size: int = 400
    mlp_hidden: int = 400
    chunk_size: int = 10  # ON-LSTM only: hidden_size / chunk_size levels
    dropout: float = 0.2  # on embeddings, on the features, inside the MLP
    dropconnect: float = 0.0  # ON-LSTM only: on the hidden-to-hidden weights
    # ON-LSTM's DropConnect (onlstm.layer): "published" (the ON-LSTM code's) or "rescaled";
    # a config saved before it was recorded was trained "rescaled" (from_dict)
    dropconnect_convention: str = "published"
    keep_parens: bool = True  # feed the brackets to the encoder
    max_ops: int = 6  # train on train0..train{max_ops}
    valid_fraction: float = 0.1
    train_limit: int | None = None  # at most this many pairs per training file (smoke runs)
    batch_size: int = 128
    lr: float = 1e-3
    weight_decay: float = 0.0
    clip: float = 1.0
    epochs: int = 20
    seed: int = 1111

    CHECKS: ClassVar[dict] = {}  # filled below the class: one Check per field
    #: The value of a setting in configs saved before it was recorded.
    SAVED_BEFORE: ClassVar[dict] = {"dropconnect_convention": "rescaled"}

    def __post_init__(self):
        self.validate()

    def validate(self, where: str = "logic settings") -> "LogicConfig":
        """Check every field (types and ranges) and how they fit together; returns self."""
        for name, value in validate_settings(type(self), self.__dict__, where).items():
            setattr(self, name, value)
        if self.cell == "onlstm" and self.hidden_size % self.chunk_size:
            raise UserError(f"{where}: chunk_size (--chunk-size) {self.chunk_size} must divide hidden_size "
                            f"(--hidden) {self.hidden_size}")
        if self.cell == "lstm" and self.dropconnect:
            raise UserError(f"{where}: dropconnect (--dropconnect) applies to cell onlstm only")
        return self

    @classmethod
    def from_dict(cls, d: dict, where: str = "logic settings") -> "LogicConfig":
        """A saved config (unknown names, e.g. of later versions, are left out; a setting it
        lacks that was recorded later takes `SAVED_BEFORE`'s value), checked naming ``where``."""
        if not isinstance(d, dict):
            raise UserError(f"{where}: the config must be an object of settings, got {type(d).__name__}")
        names = {f.name for f in fields(cls)}
        values = {**cls.SAVED_BEFORE, **{k: v for k, v in d.items() if k in names}}
        try:
            return cls(**values)
        except UserError as err:
            raise UserError(str(err).replace("logic settings", where, 1)) from None


_SIZE = Check(int, low=1, high=MAX_SIZE)
LogicConfig.CHECKS = {
    "cell": Check(str, choices=("onlstm", "lstm")), "embed_size": _SIZE, "hidden_size": _SIZE, "mlp_hidden": _SIZE,
    "chunk_size": _SIZE, "dropout": PROBABILITY, "dropconnect": PROBABILITY,
    "dropconnect_convention": Check(str, choices=DROPCONNECT_CONVENTIONS), "keep_parens": Check(bool),
    "max_ops": Check(int, low=0, high=MAX_K), "valid_fraction": Check(float, low=0, high=1, low_open=True, high_open=True),
    "train_limit": Check(int, low=1, optional=True), "batch_size": POSITIVE_INT, "lr": POSITIVE_FLOAT,
    "weight_decay": NONNEGATIVE_FLOAT, "clip": NONNEGATIVE_FLOAT, "epochs": POSITIVE_INT, "seed": SEED,
}


class LogicClassifier(nn.Module):
    """Siamese encoder + MLP relation classifier.

    ``forward(prem (B, Tp), prem_len (B,), hyp (B, Th), hyp_len (B,)) -> logits (B, 7)``.
    Padding (id 0, after the last token) never changes the encoding: the encoder is
    unidirectional and the state is read at each sequence's own last step.
    """

    def __init__(self, config: LogicConfig, vocab_size: int, n_classes: int = len(RELATIONS)):
        super().__init__()
        self.config = config
        self.embedding = nn.Embedding(vocab_size, config.embed_size, padding_idx=0)
        self.encoder = build_encoder(config)
        self.drop = nn.Dropout(config.dropout)
        self.mlp = nn.Sequential(
            nn.Linear(4 * config.hidden_size, config.mlp_hidden),
            nn.ReLU(),
            nn.Dropout(config.dropout),
            nn.Linear(config.mlp_hidden, n_classes),
        )

    def encode(self, ids: Tensor, lengths: Tensor) -> Tensor:
        """ids (B, T), lengths (B,) -> final hidden states (B, H)."""
        x = self.drop(self.embedding(ids))  # (B, T, E)
        out, _ = self.encoder(x)  # (B, T, H)
        last = (lengths.to(out.device) - 1).clamp(min=0)
        return out[torch.arange(out.shape[0], device=out.device), last]  # (B, H)

    def forward(self, prem: Tensor, prem_len: Tensor, hyp: Tensor, hyp_len: Tensor) -> Tensor:
        B = prem.shape[0]
        T = max(prem.shape[1], hyp.shape[1])
        both = torch.cat([F.pad(prem, (0, T - prem.shape[1])), F.pad(hyp, (0, T - hyp.shape[1]))])
        enc = self.encode(both, torch.cat([prem_len, hyp_len]))  # (2B, H): one encoder call
        u, v = enc[:B], enc[B:]
        feats = self.drop(torch.cat([u, v, u * v, (u - v).abs()], dim=1))  # (B, 4H)
        return self.mlp(feats)  # (B, 7)


def build_encoder(config: LogicConfig) -> nn.Module:
    """One recurrent layer, batch first: `onlstm.layer.ONLSTM` or `torch.nn.LSTM`."""
    if config.cell == "lstm":
        return nn.LSTM(config.embed_size, config.hidden_size, num_layers=1, batch_first=True)
    from ...layer import ONLSTM  # imported here: the logic task does not need it for --cell lstm

    return ONLSTM(config.embed_size, config.hidden_size, num_layers=1, chunk_size=config.chunk_size,
                  batch_first=True, dropout=0.0, dropconnect=config.dropconnect,
                  dropconnect_convention=config.dropconnect_convention)


def load_model(run_dir: str | Path, which: str = "best", device: str = "cpu") -> tuple[LogicClassifier, dict]:
    """Model of a run directory (``best``: best validation weights when present, else the
    latest checkpoint; ``last``: the latest). Returns (model in eval mode, info dict with
    config, vocab, epoch, valid_acc, and ``file``: the file read)."""
    run_dir = Path(run_dir)
    if not run_dir.is_dir():
        raise UserError(f"{run_dir} is not a directory")
    path = run_dir / (BEST if which == "best" and (run_dir / BEST).exists() else CHECKPOINT)
    tensors, info = read_checkpoint(path, FORMAT)
    if not isinstance(info, dict) or not isinstance(info.get("config"), dict) or "vocab" not in info:
        raise UserError(f"{path}: the checkpoint's state has no 'config' and 'vocab' of a logic run")
    model = LogicClassifier(LogicConfig.from_dict(info["config"], str(path)), len(SymbolTable(info["vocab"])))
    model.load_state_dict({k[len("model."):]: v for k, v in tensors.items() if k.startswith("model.")})
    model.to(device).eval()
    info["file"] = path.name
    return model, info
