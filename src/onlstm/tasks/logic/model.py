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

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ...errors import UserError
from ...training import CHECKPOINT_FILE, read_checkpoint
from .data import MAX_K, RELATIONS, SymbolTable

FORMAT = "onlstm-logic"
CHECKPOINT = CHECKPOINT_FILE
BEST = "best.safetensors"
CONFIG = "config.json"
RESULTS = "results.json"


@dataclass
class LogicConfig:
    """Everything that defines a run (saved in the checkpoint and ``config.json``)."""

    cell: str = "onlstm"  # "onlstm" | "lstm"
    embed_size: int = 128
    hidden_size: int = 400
    mlp_hidden: int = 400
    chunk_size: int = 10  # ON-LSTM only: hidden_size / chunk_size levels
    dropout: float = 0.2  # on embeddings, on the features, inside the MLP
    dropconnect: float = 0.0  # ON-LSTM only: on the hidden-to-hidden weights
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

    def validate(self) -> "LogicConfig":
        if self.cell not in ("onlstm", "lstm"):
            raise UserError(f"--cell must be onlstm or lstm, got {self.cell!r}")
        if self.cell == "onlstm" and self.hidden_size % self.chunk_size:
            raise UserError(f"--chunk-size {self.chunk_size} must divide --hidden {self.hidden_size}")
        if self.cell == "lstm" and self.dropconnect:
            raise UserError("--dropconnect applies to --cell onlstm only")
        if not 0 <= self.max_ops <= MAX_K:
            raise UserError(f"--max-ops must be in 0..{MAX_K}")
        if not 0 < self.valid_fraction < 1:
            raise UserError("--valid-fraction must be in (0, 1)")
        for name in ("embed_size", "hidden_size", "mlp_hidden", "batch_size", "epochs"):
            if getattr(self, name) <= 0:
                raise UserError(f"{name} must be positive")
        if not (0 <= self.dropout < 1 and 0 <= self.dropconnect < 1):
            raise UserError("dropout rates must be in [0, 1)")
        return self

    @classmethod
    def from_dict(cls, d: dict) -> "LogicConfig":
        names = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in d.items() if k in names})


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
                  batch_first=True, dropout=0.0, dropconnect=config.dropconnect)


def load_model(run_dir: str | Path, which: str = "best", device: str = "cpu") -> tuple[LogicClassifier, dict]:
    """Model of a run directory (``best``: best validation weights when present, else the
    latest checkpoint; ``last``: the latest). Returns (model in eval mode, info dict with
    config, vocab, epoch, valid_acc, and ``file``: the file read)."""
    run_dir = Path(run_dir)
    if not run_dir.is_dir():
        raise UserError(f"{run_dir} is not a directory")
    path = run_dir / (BEST if which == "best" and (run_dir / BEST).exists() else CHECKPOINT)
    tensors, info = read_checkpoint(path, FORMAT)
    model = LogicClassifier(LogicConfig.from_dict(info["config"]), len(SymbolTable(info["vocab"])))
    model.load_state_dict({k[len("model."):]: v for k, v in tensors.items() if k.startswith("model.")})
    model.to(device).eval()
    info["file"] = path.name
    return model, info
