"""Logical inference (Bowman et al. 2015) with a siamese ON-LSTM or LSTM encoder.

Task. Each example is a pair of propositional-logic formulas over the variables ``a``..``f``
with ``not``, ``and``, ``or`` and one of seven natural-logic relations between them
(``=`` equivalence, ``<`` / ``>`` forward / reverse entailment, ``^`` negation, ``|``
alternation, ``v`` cover, ``#`` independence). The bundled data
(``onlstm/data/logic/{train,test}{0..12}.gz``, see ``SOURCE.md`` there) groups the pairs by
the number of operators k in the larger formula (file 12: k >= 12). Protocol of the paper:
train on k <= 6 (a seeded validation slice held out of it), test on every k = 0..12; the
question is how accuracy holds up for k = 7..12, never seen in training.

Data format: one example per line, ``RELATION<TAB>PREMISE<TAB>HYPOTHESIS``; formulas are
fully bracketed and space-tokenised: a variable, ``( not X )`` or ``( X ( and Y ) )`` /
``( X ( or Y ) )``. `parse_line` checks that grammar on every line.

Model (the paper's): embedding 128, one recurrent layer of 400 units (`onlstm.layer.ONLSTM`
or ``torch.nn.LSTM``), dropout 0.2; each formula is encoded separately (the same encoder)
into the hidden state after its last token, u and v; an MLP on [u; v; u*v; |u-v|] gives
7 logits. Training: Adam, cross-entropy, gradient clipping, checkpoints every epoch.

Run directory written by `train`:

- ``config.json``: the configuration and vocabulary (human-readable, written once);
- ``checkpoint.safetensors``: the latest training state in ONE file (replaced atomically):
  model weights ``model.*``, Adam state ``optim.<param index>.<name>``, the torch RNG state
  ``rng.torch``, and a JSON string in the safetensors metadata (``state``) with the config,
  vocabulary, optimizer hyper-parameters, progress (epoch, batch, step) and history;
- ``best.safetensors``: weights with the best validation accuracy (metadata: config,
  vocabulary, epoch, validation accuracy) — what `load_model` and ``logic eval`` use;
- ``results.json``: test accuracy by number of operators, after a completed training.

No pickle is written or read anywhere.
"""

from __future__ import annotations

import contextlib
import gzip
import json
import math
import os
import signal
import threading
import time
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Iterable, Iterator, Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ..bundled import resource
from ..errors import UserError

DATA_DIR = resource("logic")
MAX_K = 12
RELATIONS = ("=", "<", ">", "^", "|", "v", "#")
RELATION_NAMES = {
    "=": "equivalence",
    "<": "forward entailment",
    ">": "reverse entailment",
    "^": "negation",
    "|": "alternation",
    "v": "cover",
    "#": "independence",
}
VARIABLES = ("a", "b", "c", "d", "e", "f")
OPERATORS = ("not", "and", "or")
PAD = "<pad>"
SYMBOLS = (PAD, "(", ")") + VARIABLES + OPERATORS  # fixed vocabulary; PAD has id 0
CHECKPOINT = "checkpoint.safetensors"
BEST = "best.safetensors"
CONFIG = "config.json"
RESULTS = "results.json"
FORMAT = "onlstm-logic"


# ---------------------------------------------------------------------------------------
# Data
# ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Example:
    """One pair: ``label`` indexes `RELATIONS`; formulas are token tuples; ``k`` is the
    operator count of the file it came from (12 means >= 12)."""

    label: int
    premise: tuple[str, ...]
    hypothesis: tuple[str, ...]
    k: int


def parse_formula(tokens: Sequence[str]) -> object:
    """Check a tokenised formula against the grammar and return its tree.

    Grammar: ``F := var | ( not F ) | ( F ( and F ) ) | ( F ( or F ) )``. Returns a
    variable name, ``("not", F)`` or ``(op, F, F)``. Raises ``ValueError`` when the tokens
    are not exactly one formula.
    """
    pos = 0

    def expect(tok: str) -> None:
        nonlocal pos
        if pos >= len(tokens) or tokens[pos] != tok:
            got = tokens[pos] if pos < len(tokens) else "end of formula"
            raise ValueError(f"expected {tok!r} at token {pos}, got {got!r}")
        pos += 1

    def formula() -> object:
        nonlocal pos
        if pos >= len(tokens):
            raise ValueError("formula ends too early")
        tok = tokens[pos]
        if tok in VARIABLES:
            pos += 1
            return tok
        expect("(")
        if pos < len(tokens) and tokens[pos] == "not":
            pos += 1
            node = ("not", formula())
            expect(")")
            return node
        left = formula()
        expect("(")
        if pos >= len(tokens) or tokens[pos] not in ("and", "or"):
            raise ValueError(f"expected 'and' or 'or' at token {pos}")
        op = tokens[pos]
        pos += 1
        right = formula()
        expect(")")
        expect(")")
        return (op, left, right)

    tree = formula()
    if pos != len(tokens):
        raise ValueError(f"unexpected {tokens[pos]!r} after a complete formula")
    return tree


def count_operators(tokens: Sequence[str]) -> int:
    """Number of ``not`` / ``and`` / ``or`` tokens."""
    return sum(t in OPERATORS for t in tokens)


def parse_line(line: str, k: int = -1, where: str = "") -> Example:
    """Parse ``RELATION<TAB>PREMISE<TAB>HYPOTHESIS`` (both formulas checked by
    `parse_formula`); errors are `UserError` naming ``where``."""
    parts = line.rstrip("\r\n").split("\t")
    try:
        if len(parts) != 3:
            raise ValueError(f"expected 3 tab-separated fields, got {len(parts)}")
        rel, prem, hyp = parts
        if rel not in RELATIONS:
            raise ValueError(f"unknown relation {rel!r}")
        premise, hypothesis = tuple(prem.split()), tuple(hyp.split())
        parse_formula(premise)
        parse_formula(hypothesis)
    except ValueError as err:
        raise UserError(f"{where}: {err}: {line.strip()!r}") from None
    return Example(RELATIONS.index(rel), premise, hypothesis, k)


def read_file(name: str, data_dir: Path | None = None, limit: int | None = None) -> list[Example]:
    """Examples of one bundled file (``train3``, ``test12``, ...), at most ``limit``."""
    if not (name.startswith(("train", "test")) and name.lstrip("traines").isdigit()):
        raise UserError(f"bad logic data file name {name!r}")
    k = int(name.lstrip("traines"))
    path = Path(data_dir or DATA_DIR) / f"{name}.gz"
    if not path.exists():
        raise UserError(f"missing logic data file {path}")
    out = []
    with gzip.open(path, "rt", encoding="ascii") as fh:
        for lineno, line in enumerate(fh, 1):
            if limit is not None and len(out) >= limit:
                break
            if line.strip():
                out.append(parse_line(line, k, f"{path.name}:{lineno}"))
    return out


def load_split(split: str, ks: Iterable[int], data_dir: Path | None = None,
               limit: int | None = None) -> dict[int, list[Example]]:
    """``{k: examples}`` of ``split`` ("train" / "test") for the operator counts ``ks``."""
    return {k: read_file(f"{split}{k}", data_dir, limit) for k in ks}


def split_train_valid(examples: Sequence[Example], valid_fraction: float, seed: int):
    """Seeded random split of the training examples into (train, valid)."""
    g = torch.Generator().manual_seed(seed)
    perm = torch.randperm(len(examples), generator=g).tolist()
    n_valid = int(round(len(examples) * valid_fraction))
    valid = sorted(perm[:n_valid])
    valid_set = set(valid)
    return ([examples[i] for i in range(len(examples)) if i not in valid_set],
            [examples[i] for i in valid])


class Vocab:
    """Token <-> id for the formula symbols; id 0 is padding."""

    def __init__(self, symbols: Sequence[str] = SYMBOLS):
        if symbols[0] != PAD:
            raise ValueError("the first symbol must be the padding symbol")
        self.itos = list(symbols)
        self.stoi = {s: i for i, s in enumerate(self.itos)}

    def __len__(self) -> int:
        return len(self.itos)

    def encode(self, tokens: Sequence[str], keep_parens: bool = True) -> list[int]:
        try:
            return [self.stoi[t] for t in tokens if keep_parens or t not in ("(", ")")]
        except KeyError as err:
            raise UserError(f"unknown formula symbol {err.args[0]!r}") from None


def pad_batch(seqs: Sequence[Sequence[int]]) -> tuple[Tensor, Tensor]:
    """Right-pad id lists with 0: ids (B, T) long and lengths (B,) long (each >= 1)."""
    lengths = torch.tensor([max(len(s), 1) for s in seqs], dtype=torch.long)
    ids = torch.zeros(len(seqs), int(lengths.max()), dtype=torch.long)
    for i, s in enumerate(seqs):
        ids[i, : len(s)] = torch.tensor(s, dtype=torch.long)
    return ids, lengths


class Encoded:
    """A list of examples as id lists, ready for batching."""

    def __init__(self, examples: Sequence[Example], vocab: Vocab, keep_parens: bool):
        self.prem = [vocab.encode(e.premise, keep_parens) for e in examples]
        self.hyp = [vocab.encode(e.hypothesis, keep_parens) for e in examples]
        self.labels = [e.label for e in examples]
        self.size = [max(len(p), len(h)) for p, h in zip(self.prem, self.hyp)]

    def __len__(self) -> int:
        return len(self.labels)

    def batch(self, idx: Sequence[int]) -> tuple[Tensor, Tensor, Tensor, Tensor, Tensor]:
        """(prem ids (B, Tp), prem lengths (B,), hyp ids (B, Th), hyp lengths (B,), labels (B,))."""
        p, pl = pad_batch([self.prem[i] for i in idx])
        h, hl = pad_batch([self.hyp[i] for i in idx])
        return p, pl, h, hl, torch.tensor([self.labels[i] for i in idx], dtype=torch.long)

    def epoch_batches(self, batch_size: int, generator: torch.Generator | None) -> list[list[int]]:
        """Batches of indices. With a generator: shuffled, then sorted by length inside
        windows of 50 batches (little padding), then the batch order shuffled. Without:
        in order of length (evaluation)."""
        n = len(self)
        if generator is None:
            order = sorted(range(n), key=lambda i: self.size[i])
            return [order[i : i + batch_size] for i in range(0, n, batch_size)]
        perm = torch.randperm(n, generator=generator).tolist()
        window = batch_size * 50
        batches = []
        for w in range(0, n, window):
            chunk = sorted(perm[w : w + window], key=lambda i: self.size[i])
            batches += [chunk[i : i + batch_size] for i in range(0, len(chunk), batch_size)]
        order = torch.randperm(len(batches), generator=generator).tolist()
        return [batches[i] for i in order]


# ---------------------------------------------------------------------------------------
# Model
# ---------------------------------------------------------------------------------------


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
    from ..layer import ONLSTM  # imported here: the logic task does not need it for --cell lstm

    return ONLSTM(config.embed_size, config.hidden_size, num_layers=1, chunk_size=config.chunk_size,
                  batch_first=True, dropout=0.0, dropconnect=config.dropconnect)


# ---------------------------------------------------------------------------------------
# Checkpoints (safetensors + JSON, atomic)
# ---------------------------------------------------------------------------------------


def _atomic_save_safetensors(tensors: dict[str, Tensor], path: Path, metadata: dict[str, str]) -> None:
    from safetensors.torch import save_file

    tmp = path.with_name(path.name + ".tmp")
    save_file({k: v.detach().cpu().contiguous() for k, v in tensors.items()}, str(tmp), metadata=metadata)
    os.chmod(tmp, 0o644)
    os.replace(tmp, path)


def _atomic_write_text(path: Path, text: str) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(text)
    os.replace(tmp, path)


def _optimizer_to_flat(opt: torch.optim.Optimizer) -> tuple[dict[str, Tensor], dict]:
    """Optimizer state dict -> (tensors ``optim.<i>.<name>``, JSON-able rest)."""
    sd = opt.state_dict()
    tensors, scalars = {}, {}
    for idx, st in sd["state"].items():
        for name, val in st.items():
            if isinstance(val, Tensor):
                tensors[f"optim.{idx}.{name}"] = val
            else:
                scalars[f"{idx}.{name}"] = val
    return tensors, {"param_groups": sd["param_groups"], "scalars": scalars}


def _optimizer_from_flat(opt: torch.optim.Optimizer, tensors: dict[str, Tensor], meta: dict) -> None:
    state: dict[int, dict] = {}
    for key, val in tensors.items():
        if key.startswith("optim."):
            _, idx, name = key.split(".", 2)
            state.setdefault(int(idx), {})[name] = val
    for key, val in meta["scalars"].items():
        idx, name = key.split(".", 1)
        state.setdefault(int(idx), {})[name] = val
    groups = []
    for g in meta["param_groups"]:
        g = dict(g)
        if isinstance(g.get("betas"), list):
            g["betas"] = tuple(g["betas"])
        groups.append(g)
    opt.load_state_dict({"state": state, "param_groups": groups})


def _read_safetensors(path: Path) -> tuple[dict[str, Tensor], dict[str, str]]:
    from safetensors import safe_open

    if not path.exists():
        raise UserError(f"no {path.name} in {path.parent}")
    try:
        with safe_open(str(path), framework="pt") as fh:
            meta = fh.metadata() or {}
            tensors = {k: fh.get_tensor(k) for k in fh.keys()}
    except Exception as err:  # a truncated or foreign file
        raise UserError(f"cannot read {path}: {err}") from None
    if meta.get("format") != FORMAT:
        raise UserError(f"{path} is not an onlstm logic checkpoint")
    return tensors, meta


def load_model(run_dir: str | Path, which: str = "best", device: str = "cpu") -> tuple[LogicClassifier, dict]:
    """Model of a run directory (``best``: best validation weights when present, else the
    latest checkpoint; ``last``: the latest). Returns (model in eval mode, info dict with
    config, vocab, epoch, valid_acc)."""
    run_dir = Path(run_dir)
    if not run_dir.is_dir():
        raise UserError(f"{run_dir} is not a directory")
    path = run_dir / (BEST if which == "best" and (run_dir / BEST).exists() else CHECKPOINT)
    tensors, meta = _read_safetensors(path)
    info = json.loads(meta["state"])
    config = LogicConfig.from_dict(info["config"])
    vocab = Vocab(info["vocab"])
    model = LogicClassifier(config, len(vocab))
    weights = {k[len("model."):]: v for k, v in tensors.items() if k.startswith("model.")}
    model.load_state_dict(weights)
    model.to(device).eval()
    info["file"] = path.name
    return model, info


# ---------------------------------------------------------------------------------------
# Training
# ---------------------------------------------------------------------------------------


@contextlib.contextmanager
def _interrupt_flag() -> Iterator[dict]:
    """While active, a first Ctrl-C sets ``flag["stop"]`` (the loop saves and exits after
    the current batch); a second one raises KeyboardInterrupt as usual."""
    flag = {"stop": False}
    if threading.current_thread() is not threading.main_thread():
        yield flag
        return

    def handler(signum, frame):
        if flag["stop"]:
            raise KeyboardInterrupt
        flag["stop"] = True

    previous = signal.signal(signal.SIGINT, handler)
    try:
        yield flag
    finally:
        signal.signal(signal.SIGINT, previous)


@torch.no_grad()
def accuracy(model: LogicClassifier, data: Encoded, batch_size: int = 512, device: str = "cpu") -> tuple[int, int]:
    """(correct, total) of the model on ``data`` (eval mode, restored afterwards)."""
    was_training = model.training
    model.eval()
    correct = 0
    for idx in data.epoch_batches(batch_size, None):
        p, pl, h, hl, y = data.batch(idx)
        logits = model(p.to(device), pl, h.to(device), hl)
        correct += int((logits.argmax(1).cpu() == y).sum())
    model.train(was_training)
    return correct, len(data)


def evaluate_by_ops(model: LogicClassifier, vocab: Vocab, keep_parens: bool, *, limit: int | None = None,
                    batch_size: int = 512, device: str = "cpu", data_dir: Path | None = None,
                    max_ops: int = 6) -> dict:
    """Test accuracy for every operator count k = 0..12 (at most ``limit`` pairs per file).

    Returns ``{"by_ops": {k: {"correct", "total", "accuracy"}}, "seen": ..., "unseen": ...}``
    where seen / unseen pool k <= max_ops and k > max_ops.
    """
    by_ops = {}
    for k in range(MAX_K + 1):
        data = Encoded(read_file(f"test{k}", data_dir, limit), vocab, keep_parens)
        c, n = accuracy(model, data, batch_size, device)
        by_ops[k] = {"correct": c, "total": n, "accuracy": c / n if n else None}

    def pool(ks):
        c = sum(by_ops[k]["correct"] for k in ks)
        n = sum(by_ops[k]["total"] for k in ks)
        return {"correct": c, "total": n, "accuracy": c / n if n else None}

    return {"by_ops": by_ops, "seen": pool(range(0, max_ops + 1)), "unseen": pool(range(max_ops + 1, MAX_K + 1))}


class Trainer:
    """Trains one run directory.

    ``resume``: continue the checkpoint in ``out`` (its config is used; ``epochs`` may
    raise the total). ``max_minutes`` / ``max_steps`` bound this invocation: when reached,
    the state is saved mid-epoch and `run` returns ``"time"`` / ``"steps"``; a first
    Ctrl-C does the same and returns ``"interrupted"``; otherwise ``"done"``. Resuming
    continues exactly where it stopped (same batches, same dropout masks on CPU).
    """

    def __init__(self, out: str | Path, config: LogicConfig | None = None, *, resume: bool = False,
                 epochs: int | None = None, max_minutes: float | None = None, max_steps: int | None = None,
                 device: str | None = None, progress: bool = True, data_dir: Path | None = None, log=print):
        self.out = Path(out)
        self.max_minutes = max_minutes
        self.max_steps = max_steps
        self.progress = progress
        self.data_dir = data_dir
        self.log = log
        self.device = device or ("cuda" if torch.cuda.is_available() else "cpu")
        ckpt = self.out / CHECKPOINT
        if resume:
            tensors, meta = _read_safetensors(ckpt)
            state = json.loads(meta["state"])
            saved = LogicConfig.from_dict(state["config"])
            if config is not None and asdict(config) != asdict(saved):
                diff = [k for k, v in asdict(config).items() if asdict(saved)[k] != v]
                raise UserError(f"--resume: options differ from the checkpoint's: {', '.join(diff)}")
            self.config = saved
        else:
            if ckpt.exists():
                raise UserError(f"{self.out} already holds a run; use --resume or another --out")
            self.config = config or LogicConfig()
            tensors, state = None, None
        if epochs is not None:
            self.config.epochs = epochs
        self.config.validate()
        cfg = self.config

        torch.manual_seed(cfg.seed)
        self.vocab = Vocab(state["vocab"] if state else SYMBOLS)
        train_all = [e for k in range(cfg.max_ops + 1) for e in read_file(f"train{k}", data_dir, cfg.train_limit)]
        train, valid = split_train_valid(train_all, cfg.valid_fraction, cfg.seed)
        self.train_data = Encoded(train, self.vocab, cfg.keep_parens)
        self.valid_data = Encoded(valid, self.vocab, cfg.keep_parens)
        self.model = LogicClassifier(cfg, len(self.vocab)).to(self.device)
        self.opt = torch.optim.Adam(self.model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
        self.epoch = 0  # completed epochs
        self.batch = 0  # next batch index within the current epoch
        self.step = 0
        self.elapsed = 0.0  # seconds of training over all sessions
        self.history: list[dict] = []
        self.best = {"valid_acc": -1.0, "epoch": None}
        self.partial = {"loss": 0.0, "correct": 0, "seen": 0}  # running sums of the current epoch
        if state:
            self.model.load_state_dict({k[6:]: v for k, v in tensors.items() if k.startswith("model.")})
            # Adam.load_state_dict moves the moments to the parameters' device ("step" stays on CPU)
            _optimizer_from_flat(self.opt, tensors, state["optimizer"])
            p = state["progress"]
            self.epoch, self.batch, self.step, self.elapsed = p["epoch"], p["batch"], p["step"], p["elapsed"]
            self.history, self.best, self.partial = state["history"], state["best"], p["partial"]
            torch.set_rng_state(tensors["rng.torch"])
            if "rng.cuda" in tensors and self.device.startswith("cuda"):
                torch.cuda.set_rng_state(tensors["rng.cuda"])
        else:
            self.out.mkdir(parents=True, exist_ok=True)
            _atomic_write_text(self.out / CONFIG, json.dumps(
                {"config": asdict(cfg), "vocab": self.vocab.itos, "relations": list(RELATIONS),
                 "train_pairs": len(self.train_data), "valid_pairs": len(self.valid_data)}, indent=2) + "\n")

    # -- persistence --
    def _state(self) -> dict:
        return {"config": asdict(self.config), "vocab": self.vocab.itos, "relations": list(RELATIONS)}

    def save(self) -> None:
        tensors = {f"model.{k}": v for k, v in self.model.state_dict().items()}
        opt_tensors, opt_meta = _optimizer_to_flat(self.opt)
        tensors.update(opt_tensors)
        tensors["rng.torch"] = torch.get_rng_state()
        if self.device.startswith("cuda"):
            tensors["rng.cuda"] = torch.cuda.get_rng_state()
        state = self._state()
        state.update(optimizer=opt_meta, history=self.history, best=self.best,
                     progress={"epoch": self.epoch, "batch": self.batch, "step": self.step,
                               "elapsed": self.elapsed, "partial": self.partial})
        _atomic_save_safetensors(tensors, self.out / CHECKPOINT, {"format": FORMAT, "state": json.dumps(state)})

    def save_best(self, valid_acc: float) -> None:
        state = self._state()
        state.update(epoch=self.epoch, valid_acc=valid_acc, step=self.step)
        tensors = {f"model.{k}": v for k, v in self.model.state_dict().items()}
        _atomic_save_safetensors(tensors, self.out / BEST, {"format": FORMAT, "state": json.dumps(state)})

    # -- loop --
    def _epoch_batches(self) -> list[list[int]]:
        g = torch.Generator().manual_seed(self.config.seed * 1000 + self.epoch)
        return self.train_data.epoch_batches(self.config.batch_size, g)

    def run(self) -> str:
        cfg = self.config
        start = time.monotonic()
        deadline = None if self.max_minutes is None else start + 60.0 * self.max_minutes
        stop_step = None if self.max_steps is None else self.step + self.max_steps

        def should_stop() -> str | None:
            if flag["stop"]:
                return "interrupted"
            if deadline is not None and time.monotonic() > deadline:
                return "time"
            if stop_step is not None and self.step >= stop_step:
                return "steps"
            return None

        self.log(f"logic: {cfg.cell}, {sum(p.numel() for p in self.model.parameters()):,} parameters, "
                 f"{len(self.train_data):,} train / {len(self.valid_data):,} valid pairs (k <= {cfg.max_ops}), "
                 f"device {self.device}")
        status = "done"
        with _interrupt_flag() as flag:
            while self.epoch < cfg.epochs:
                batches = self._epoch_batches()
                bar = None
                if self.progress:
                    from tqdm import tqdm

                    bar = tqdm(total=len(batches), initial=self.batch, desc=f"epoch {self.epoch + 1}/{cfg.epochs}",
                               unit="batch", leave=False)
                self.model.train()
                t0 = time.monotonic()
                while self.batch < len(batches):
                    p, pl, h, hl, y = self.train_data.batch(batches[self.batch])
                    logits = self.model(p.to(self.device), pl, h.to(self.device), hl)
                    y = y.to(self.device)
                    loss = F.cross_entropy(logits, y)
                    self.opt.zero_grad(set_to_none=True)
                    loss.backward()
                    if cfg.clip:
                        nn.utils.clip_grad_norm_(self.model.parameters(), cfg.clip)
                    self.opt.step()
                    self.step += 1
                    self.batch += 1
                    n = len(y)
                    self.partial["loss"] += loss.item() * n
                    self.partial["correct"] += int((logits.argmax(1) == y).sum())
                    self.partial["seen"] += n
                    if bar is not None:
                        bar.update(1)
                        if self.batch % 10 == 0 or self.batch == len(batches):
                            bar.set_postfix(loss=f"{self.partial['loss'] / self.partial['seen']:.3f}",
                                            acc=f"{self.partial['correct'] / self.partial['seen']:.3f}")
                    if not math.isfinite(self.partial["loss"]):
                        raise RuntimeError(f"non-finite loss at step {self.step}")
                    status = should_stop() or "done"
                    if status != "done" and self.batch < len(batches):
                        break
                    status = "done"
                self.elapsed += time.monotonic() - t0
                if bar is not None:
                    bar.close()
                if status != "done":
                    self.save()
                    why = {"interrupted": "interrupted", "time": f"time budget of {self.max_minutes} min reached",
                           "steps": f"{self.max_steps} steps done"}[status]
                    self.log(f"{why}: saved epoch {self.epoch + 1} batch {self.batch}/{len(batches)} "
                             f"(step {self.step}) to {self.out / CHECKPOINT}; continue with --resume")
                    return status
                # end of epoch
                c, n = accuracy(self.model, self.valid_data, device=self.device)
                valid_acc = c / n if n else 0.0
                seen = max(self.partial["seen"], 1)
                record = {"epoch": self.epoch + 1, "step": self.step, "train_loss": self.partial["loss"] / seen,
                          "train_acc": self.partial["correct"] / seen, "valid_acc": valid_acc,
                          "elapsed_s": round(self.elapsed, 1)}
                self.history.append(record)
                self.epoch += 1
                self.batch = 0
                self.partial = {"loss": 0.0, "correct": 0, "seen": 0}
                improved = valid_acc > self.best["valid_acc"]
                if improved:
                    self.best = {"valid_acc": valid_acc, "epoch": self.epoch}
                    self.save_best(valid_acc)
                self.save()
                self.log(f"epoch {self.epoch}/{cfg.epochs}: train loss {record['train_loss']:.4f} "
                         f"acc {record['train_acc']:.4f} | valid acc {valid_acc:.4f}{' *' if improved else ''} "
                         f"| {record['elapsed_s']:.0f}s")
                status = should_stop() or "done"
                if status != "done" and self.epoch < cfg.epochs:
                    self.log(f"stopped after epoch {self.epoch} ({status}); continue with --resume")
                    return status
                status = "done"
        return status


def train(out: str | Path, config: LogicConfig | None = None, *, eval_limit: int | None = None, **kwargs) -> str:
    """Train (or resume, ``resume=True``) a run in ``out``; keyword arguments as `Trainer`.
    After a completed training the best model is evaluated on test0..test12 (at most
    ``eval_limit`` pairs per file) and ``results.json`` is written. Returns the status."""
    trainer = Trainer(out, config, **kwargs)
    status = trainer.run()
    if status == "done":
        res = evaluate_run(trainer.out, device=trainer.device, limit=eval_limit)
        _atomic_write_text(trainer.out / RESULTS, json.dumps(res, indent=2) + "\n")
        trainer.log(format_table([res]))
    return status


# ---------------------------------------------------------------------------------------
# Evaluation and reporting
# ---------------------------------------------------------------------------------------


def evaluate_run(run_dir: str | Path, *, limit: int | None = None, device: str = "cpu",
                 label: str | None = None, batch_size: int = 512, data_dir: Path | None = None) -> dict:
    """Load a run's best model and compute its test accuracy by number of operators.

    Returns a JSON-able dict: label, run, cell, file used, epoch, valid_acc, config,
    ``by_ops`` (keys are operator counts as strings, for JSON), ``seen``, ``unseen``.
    """
    model, info = load_model(run_dir, device=device)
    cfg = model.config
    res = evaluate_by_ops(model, Vocab(info["vocab"]), cfg.keep_parens, limit=limit, batch_size=batch_size,
                          device=device, data_dir=data_dir, max_ops=cfg.max_ops)
    return {
        "label": label or Path(run_dir).resolve().name,
        "run": str(run_dir),
        "cell": cfg.cell,
        "weights": info["file"],
        "epoch": info.get("epoch", info.get("progress", {}).get("epoch")),
        "valid_acc": info.get("valid_acc"),
        "limit": limit,
        "config": asdict(cfg),
        "by_ops": {str(k): v for k, v in res["by_ops"].items()},
        "seen": res["seen"],
        "unseen": res["unseen"],
    }


def format_table(results: Sequence[dict]) -> str:
    """Accuracy by number of operators, one column per run (results of `evaluate_run`)."""
    if not results:
        return ""
    labels = [f"{r['label']} ({r['cell']})" if r["cell"] not in r["label"] else r["label"] for r in results]
    w = max(10, *(len(s) for s in labels)) + 2
    max_ops = results[0]["config"]["max_ops"]
    head = f"{'operators':>10s}{'pairs':>8s}" + "".join(f"{s:>{w}s}" for s in labels)
    lines = [head, "-" * len(head)]

    def acc(rec):
        return "-" if rec["accuracy"] is None else f"{100 * rec['accuracy']:.1f}"

    for k in range(MAX_K + 1):
        first = results[0]["by_ops"][str(k)]
        name = f"{k}" + ("+" if k == MAX_K else "") + ("" if k <= max_ops else " *")
        lines.append(f"{name:>10s}{first['total']:>8d}" + "".join(f"{acc(r['by_ops'][str(k)]):>{w}s}" for r in results))
    lines.append("-" * len(head))
    lines.append(f"{f'0-{max_ops}':>10s}{results[0]['seen']['total']:>8d}"
                 + "".join(f"{acc(r['seen']):>{w}s}" for r in results))
    lines.append(f"{f'{max_ops + 1}-{MAX_K}+':>10s}{results[0]['unseen']['total']:>8d}"
                 + "".join(f"{acc(r['unseen']):>{w}s}" for r in results))
    lines.append(f"accuracy in %; * = more operators than in training (k > {max_ops}); "
                 f"12+ = file test12 (12 or more operators)")
    return "\n".join(lines)


def plot_results(results: Sequence[dict], path: str | Path) -> Path:
    """Accuracy vs number of operators, one line per run (as the paper's figure)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 4))
    for r in results:
        ks = [k for k in range(1, MAX_K + 1) if r["by_ops"][str(k)]["accuracy"] is not None]
        ax.plot(ks, [100 * r["by_ops"][str(k)]["accuracy"] for k in ks], marker="o", label=r["label"])
    max_ops = results[0]["config"]["max_ops"] if results else 6
    ax.axvspan(0.5, max_ops + 0.5, color="0.9", zorder=0, label=f"trained on ≤ {max_ops}")
    ax.set_xlabel("number of operators")
    ax.set_ylabel("test accuracy (%)")
    ax.set_xticks(range(1, MAX_K + 1))
    ax.set_xlim(0.5, MAX_K + 0.5)
    ax.grid(True, alpha=0.3)
    ax.legend()
    fig.tight_layout()
    path = Path(path)
    fig.savefig(path, dpi=150)
    plt.close(fig)
    return path
