"""Training the logical-inference model (Bowman et al. 2015 data, the ON-LSTM paper's setup).

Protocol: train on k <= 6 operators (a seeded validation slice held out of it), Adam,
cross-entropy, gradient clipping, a checkpoint after every epoch; then test on every
k = 0..12 (`onlstm.tasks.logic.evaluation`). The loop is `onlstm.training.run_epochs`;
`Trainer` plugs in the model, the batches and the step.

Run directory written by `train`:

- ``config.json``: the configuration and symbol table (human-readable, written once);
- ``checkpoint.safetensors``: the latest training state (`onlstm.training.checkpoint`):
  weights ``model.*``, the RNG states, and in the JSON state the config, symbols, Adam's
  state, progress (epoch, batch, step), history and best validation accuracy;
- ``best.safetensors``: the weights with the best validation accuracy (state: config,
  symbols, epoch, validation accuracy), what `load_model` and ``logic eval`` use;
- ``metrics.jsonl``: one record per epoch (as ``history``);
- ``results.json``: test accuracy by number of operators, after a completed training.

No pickle is written or read anywhere.
"""

from __future__ import annotations

import json
import time
from dataclasses import asdict, replace
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from ...errors import UserError
from ...fileio import atomic_write_text
from ...training import (METRICS_FILE, DistInfo, Epoch, MetricsLog, OutputKind, StopRules, capture_rng, check_finite,
                         json_file_has, open_output, parse_device, read_checkpoint, restore_rng, resume_settings,
                         run_epochs, write_checkpoint)
from ...training.settings import POSITIVE_FLOAT, POSITIVE_INT
from .data import RELATIONS, SYMBOLS, Encoded, SymbolTable, read_file, split_train_valid
from .evaluation import accuracy, evaluate_run, format_table
from .model import BEST, CHECKPOINT, CONFIG, FORMAT, RESULTS, LogicClassifier, LogicConfig

# the harness's stop reasons -> what `Trainer.run` returns
_STATUS = {"interrupt": "interrupted", "max_minutes": "time", "max_steps": "steps"}


def _is_logic_run(folder: Path) -> bool:
    """A logic run folder: its config.json is a logic run's (written before anything else)."""
    return json_file_has(folder / CONFIG, "config", "vocab", "relations")


#: What ``logic train`` writes into its run folder (see `onlstm.training.prepare_output`).
LOGIC_RUN = OutputKind("logic training run", frozenset({CONFIG, CHECKPOINT, BEST, METRICS_FILE, RESULTS}),
                       _is_logic_run, format=FORMAT, resumable=True)


def upgrade_legacy_checkpoint(tensors: dict, state: dict) -> tuple[dict, dict]:
    """A checkpoint written before the shared harness, in today's layout. It kept Adam's
    tensors as ``optim.<param>.<name>`` beside ``state["optimizer"] = {"param_groups",
    "scalars"}``, and the RNG as ``rng.torch`` / ``rng.cuda``. Today's pass through as they are."""
    if "scalars" not in state["optimizer"]:
        return tensors, state
    opt_state: dict = {}
    for key, val in tensors.items():
        if key.startswith("optim."):
            _, idx, name = key.split(".", 2)
            opt_state.setdefault(int(idx), {})[name] = val
    for key, val in state["optimizer"]["scalars"].items():
        idx, name = key.split(".", 1)
        opt_state.setdefault(int(idx), {})[name] = val
    groups = [dict(g, betas=tuple(g["betas"])) if "betas" in g else dict(g) for g in state["optimizer"]["param_groups"]]
    renamed = {"rng.torch": "rng.0", "rng.cuda": "cuda_rng.0"}
    tensors = {renamed.get(k, k): v for k, v in tensors.items() if not k.startswith("optim.")}
    return tensors, dict(state, optimizer={"state": opt_state, "param_groups": groups})


class Trainer:
    """Trains one run directory; the logic task's plug-in for `onlstm.training.run_epochs`.

    ``resume``: continue the checkpoint in ``out`` (its config is used; options given in
    ``config`` or ``resume_overrides`` must agree with it; ``epochs`` may raise the total).
    ``max_minutes`` / ``max_steps`` bound this invocation: when reached, the state is saved
    and `run` returns ``"time"`` / ``"steps"``; a first Ctrl-C does the same and returns
    ``"interrupted"``; otherwise ``"done"``. Resuming continues exactly where it stopped
    (same batches, same dropout masks on CPU).

    Counters: ``epoch`` (completed epochs), ``batch`` (next batch of the current epoch),
    ``step`` (optimizer steps in total), ``elapsed`` (seconds in training steps, all sessions).
    """

    def __init__(self, out: str | Path, config: LogicConfig | None = None, *, resume: bool = False,
                 resume_overrides: dict | None = None, epochs: int | None = None, max_minutes: float | None = None,
                 max_steps: int | None = None, device: str | None = None, progress: bool = True,
                 data_dir: Path | None = None, log=print, overwrite: bool = False):
        self.out = Path(out)
        for name, value, check in (("max_minutes", max_minutes, POSITIVE_FLOAT), ("max_steps", max_steps, POSITIVE_INT)):
            problem = None if value is None else check.problem(value)
            if problem:
                raise UserError(f"{name} {problem}")
        self.max_minutes, self.max_steps = max_minutes, max_steps
        self.progress, self.data_dir, self.log = progress, data_dir, log
        self.device = str(parse_device(device or ("cuda" if torch.cuda.is_available() else "cpu")))
        self.info = DistInfo(device=torch.device(self.device))
        requested = asdict(config) if config is not None else resume_overrides
        saved = resume_settings(self.out, resume, LOGIC_RUN, requested, overwrite=overwrite,
                                recorded_later=LogicConfig.SAVED_BEFORE)
        self.config = LogicConfig.from_dict(saved, f"the run in {self.out}") if resume else (config or LogicConfig())
        if epochs is not None:
            self.config = replace(self.config, epochs=epochs)
        cfg = self.config
        tensors, state = upgrade_legacy_checkpoint(*read_checkpoint(self.out / CHECKPOINT, FORMAT)) if resume \
            else (None, None)

        torch.manual_seed(cfg.seed)
        self.vocab = SymbolTable(state["vocab"] if state else SYMBOLS)
        train_all = [e for k in range(cfg.max_ops + 1) for e in read_file(f"train{k}", data_dir, cfg.train_limit)]
        train, valid = split_train_valid(train_all, cfg.valid_fraction, cfg.seed)
        self.train_data = Encoded(train, self.vocab, cfg.keep_parens)
        self.valid_data = Encoded(valid, self.vocab, cfg.keep_parens)
        self.model = LogicClassifier(cfg, len(self.vocab)).to(self.device)
        self.opt = torch.optim.Adam(self.model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
        self.epoch, self.batch, self.step, self.elapsed = 0, 0, 0, 0.0
        self.history: list[dict] = []
        self.best = {"valid_acc": -1.0, "epoch": None}
        self.partial = {"loss": 0.0, "correct": 0, "seen": 0}  # running sums of the current epoch
        self.metrics = MetricsLog(self.out)
        if state:
            self.model.load_state_dict({k[6:]: v for k, v in tensors.items() if k.startswith("model.")})
            # Adam.load_state_dict moves the moments to the parameters' device ("step" stays on CPU)
            self.opt.load_state_dict(state["optimizer"])
            p = state["progress"]
            self.epoch, self.batch, self.step, self.elapsed = p["epoch"], p["batch"], p["step"], p["elapsed"]
            self.history, self.best, self.partial = state["history"], state["best"], p["partial"]
            self.metrics.lines = state.get("metric_lines", len(self.history))
            restore_rng(tensors, state, self.info)
        else:
            open_output(self.out, LOGIC_RUN, overwrite=overwrite)
            atomic_write_text(self.out / CONFIG, json.dumps(
                {"config": asdict(cfg), "vocab": self.vocab.itos, "relations": list(RELATIONS),
                 "train_pairs": len(self.train_data), "valid_pairs": len(self.valid_data)}, indent=2) + "\n")
        self.metrics.start(resume)

    # -- persistence --
    def _state(self) -> dict:
        return {"config": asdict(self.config), "vocab": self.vocab.itos, "relations": list(RELATIONS)}

    def save(self) -> None:
        tensors = {f"model.{k}": v for k, v in self.model.state_dict().items()}
        rng_tensors, rng_state = capture_rng(self.info)
        tensors.update(rng_tensors)
        state = self._state()
        state.update(optimizer=self.opt.state_dict(), history=self.history, best=self.best,
                     progress={"epoch": self.epoch, "batch": self.batch, "step": self.step,
                               "elapsed": self.elapsed, "partial": self.partial},
                     metric_lines=self.metrics.lines, **rng_state)
        write_checkpoint(self.out / CHECKPOINT, tensors, state, FORMAT)

    def save_best(self, valid_acc: float) -> None:
        state = self._state()
        state.update(epoch=self.epoch, valid_acc=valid_acc, step=self.step)
        tensors = {f"model.{k}": v for k, v in self.model.state_dict().items()}
        write_checkpoint(self.out / BEST, tensors, state, FORMAT)

    # -- the Recipe interface --
    def finished(self) -> bool:
        return self.epoch >= self.config.epochs

    def clock(self) -> tuple[float, int]:
        """This invocation's minutes and steps (the limits of `run` are per invocation)."""
        return (time.monotonic() - self._session_start) / 60, self.step - self._session_step

    def start_epoch(self) -> Epoch:
        cfg = self.config
        g = torch.Generator().manual_seed(cfg.seed * 1000 + self.epoch)
        self._batches = self.train_data.epoch_batches(cfg.batch_size, g)
        self.model.train()
        self._tick = time.monotonic()
        return Epoch(f"epoch {self.epoch + 1}/{cfg.epochs}", len(self._batches), self.batch,
                     self._batches[self.batch:])

    def train_step(self, idx: list[int]) -> dict | None:
        p, pl, h, hl, y = self.train_data.batch(idx)
        logits = self.model(p.to(self.device), pl, h.to(self.device), hl)
        y = y.to(self.device)
        loss = F.cross_entropy(logits, y)
        self.opt.zero_grad(set_to_none=True)
        loss.backward()
        if self.config.clip:
            nn.utils.clip_grad_norm_(self.model.parameters(), self.config.clip)
        value = loss.item()
        check_finite(f"at epoch {self.epoch + 1}, step {self.step + 1}", self.out / CHECKPOINT, loss=value)
        self.opt.step()
        self.step += 1
        self.batch += 1
        n = len(y)
        self.partial["loss"] += value * n
        self.partial["correct"] += int((logits.argmax(1) == y).sum())
        self.partial["seen"] += n
        now = time.monotonic()
        self.elapsed, self._tick = self.elapsed + (now - self._tick), now
        if self.batch % 10 and self.batch != len(self._batches):
            return None
        return dict(loss=f"{self.partial['loss'] / self.partial['seen']:.3f}",
                    acc=f"{self.partial['correct'] / self.partial['seen']:.3f}")

    def mid_epoch(self) -> bool:
        return 0 < self.batch < len(self._batches)

    def end_epoch(self) -> None:
        c, n = accuracy(self.model, self.valid_data, device=self.device)
        valid_acc = c / n if n else 0.0
        seen = max(self.partial["seen"], 1)
        record = {"epoch": self.epoch + 1, "step": self.step, "train_loss": self.partial["loss"] / seen,
                  "train_acc": self.partial["correct"] / seen, "valid_acc": valid_acc,
                  "elapsed_s": round(self.elapsed, 1)}
        self.history.append(record)
        self.metrics.write(record)
        self.epoch += 1
        self.batch = 0
        self.partial = {"loss": 0.0, "correct": 0, "seen": 0}
        improved = valid_acc > self.best["valid_acc"]
        if improved:
            self.best = {"valid_acc": valid_acc, "epoch": self.epoch}
            self.save_best(valid_acc)
        self.log(f"epoch {self.epoch}/{self.config.epochs}: train loss {record['train_loss']:.4f} "
                 f"acc {record['train_acc']:.4f} | valid acc {valid_acc:.4f}{' *' if improved else ''} "
                 f"| {record['elapsed_s']:.0f}s")

    # -- loop --
    def run(self) -> str:
        """Train until done or stopped; returns ``"done"``, ``"time"``, ``"steps"`` or ``"interrupted"``."""
        cfg = self.config
        self.log(f"logic: {cfg.cell}, {sum(p.numel() for p in self.model.parameters()):,} parameters, "
                 f"{len(self.train_data):,} train / {len(self.valid_data):,} valid pairs (k <= {cfg.max_ops}), "
                 f"device {self.device}")
        self._session_start, self._session_step = time.monotonic(), self.step
        reason = run_epochs(self, StopRules(self.max_minutes, self.max_steps), self.info, show_progress=self.progress)
        if reason is None:
            return "done"
        status = _STATUS[reason]
        if self.batch:
            why = {"interrupted": "interrupted", "time": f"time budget of {self.max_minutes} min reached",
                   "steps": f"{self.max_steps} steps done"}[status]
            self.log(f"{why}: saved epoch {self.epoch + 1} batch {self.batch}/{len(self._batches)} "
                     f"(step {self.step}) to {self.out / CHECKPOINT}; continue with --resume")
        else:
            self.log(f"stopped after epoch {self.epoch} ({status}); continue with --resume")
        return status


def train(out: str | Path, config: LogicConfig | None = None, *, eval_limit: int | None = None, **kwargs) -> str:
    """Train (or resume, ``resume=True``) a run in ``out``; keyword arguments as `Trainer`.
    After a completed training the best model is evaluated on test0..test12 (at most
    ``eval_limit`` pairs per file) and ``results.json`` is written. Returns the status."""
    trainer = Trainer(out, config, **kwargs)
    status = trainer.run()
    if status == "done":
        res = evaluate_run(trainer.out, device=trainer.device, limit=eval_limit)
        atomic_write_text(trainer.out / RESULTS, json.dumps(res, indent=2) + "\n")
        trainer.log(format_table([res]))
    return status
