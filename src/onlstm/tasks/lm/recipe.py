"""Training a language model with the paper's recipe (docs/spec.md §4), resumable and distributed.

The run folder is itself a model folder: ``model.safetensors`` / ``config.json`` /
``vocab.json`` always hold the best model so far (by validation loss), so ``evaluate``,
``generate`` and ``parse`` accept it. Next to them:

- ``checkpoint.safetensors`` (`onlstm.training.checkpoint`): everything needed to continue:
  current weights (``model.*``), optimizer state (SGD, averaged SGD or Adam), RNG states of
  every process, the hidden state carried across batches (``hidden.<rank>.<layer>.{h,c}``),
  and in the JSON state the epoch, data position, BPTT sampler state, validation history and
  the settings;
- ``metrics.jsonl``: one JSON object per logged batch group and per validation;
- ``train_config.json``: the resolved settings of the run.

The loop itself is `onlstm.training.run_epochs`; `LMRecipe` plugs in the model, the BPTT
windows and the step (AR/TAR regularised cross-entropy, clipping, NT-ASGD).

Under ``torchrun --nproc_per_node=N`` the same code trains with DistributedDataParallel
(gloo on CPU, NCCL on GPU): every rank takes its own block of the batch's columns, gradients
are averaged, and only rank 0 writes files.
"""

from __future__ import annotations

import json
import math
import random
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Callable, Dict, Optional

import torch
import torch.nn.functional as F
from torch import nn

from ...batching import BPTTSampler, batchify, get_batch, shard_columns
from ...corpus import load_corpus
from ...errors import UserError
from ...fileio import atomic_write_text
from ...lm import CONFIG_FILE, VOCAB_FILE, WEIGHTS_FILE, LanguageModel, perplexity
from ...text import TextOptions, Vocabulary
from ...training import (CHECKPOINT_FILE, METRICS_FILE, DistInfo, Epoch, MetricsLog, OutputKind, StopRules, all_gather,
                         capture_rng, check_finite, json_file_has, open_output, read_checkpoint, read_checkpoint_state,
                         restore_rng, resume_settings, run_epochs, setup_distributed, teardown_distributed,
                         write_checkpoint)
from .config import FIXED_ON_RESUME, SAVED_BEFORE, TrainConfig, check_overrides, saved_settings
from .evaluation import evaluate_ids

__all__ = ["FORMAT", "TRAIN_CONFIG_FILE", "LM_RUN", "TrainResult", "LMRecipe", "train"]

FORMAT = "onlstm-lm-checkpoint"
TRAIN_CONFIG_FILE = "train_config.json"


def _is_lm_run(folder: Path) -> bool:
    """A language-model run folder: its checkpoint is one, or (stopped before the first
    checkpoint) it holds the run's settings."""
    if (folder / CHECKPOINT_FILE).is_file():
        try:
            read_checkpoint_state(folder / CHECKPOINT_FILE, FORMAT, legacy_unmarked=True)
            return True
        except UserError:
            return False
    return json_file_has(folder / TRAIN_CONFIG_FILE, "hidden_sizes", "bptt")


#: What ``onlstm train`` writes into its run folder (see `onlstm.training.prepare_output`).
LM_RUN = OutputKind("language-model training run",
                    frozenset({CHECKPOINT_FILE, METRICS_FILE, TRAIN_CONFIG_FILE, WEIGHTS_FILE, CONFIG_FILE,
                               VOCAB_FILE}),
                    _is_lm_run, format=FORMAT, legacy_unmarked=True, resumable=True)


@dataclass
class TrainResult:
    run_dir: Path
    epochs_done: int
    steps: int
    best_valid_loss: Optional[float]
    stopped_by: str  # "epochs", "max_minutes", "max_steps", "interrupt"
    elapsed_minutes: float


def train(cfg: Optional[TrainConfig], run_dir, resume: bool = False, log: Callable[[str], None] = print,
          progress: Optional[bool] = None, resume_overrides: Optional[Dict[str, Any]] = None,
          overwrite: bool = False) -> TrainResult:
    """Train (or resume) a language model into ``run_dir``. See the module docstring.

    ``run_dir`` must be new, empty, or this kind of run (`LM_RUN`; ``overwrite``: any folder,
    whose run files are replaced). With ``resume=True`` the run's saved settings are used
    (``cfg`` may be None), updated by ``resume_overrides`` (e.g. a longer ``epochs`` or
    ``max_minutes``, a lower ``lr``); a setting the run did not record yet takes the value it
    was trained with (``dropconnect_convention``: ``"rescaled"``)."""
    run_dir = Path(run_dir)
    changed = check_overrides(resume_overrides or {}, "the settings given with --resume") if resume else {}
    saved = resume_settings(run_dir, resume, LM_RUN, changed, FIXED_ON_RESUME, overwrite=overwrite,
                            recorded_later=SAVED_BEFORE)
    if resume:
        cfg = saved_settings(saved, f"the run in {run_dir}")
    cfg.check_model(f"the run in {run_dir}" if resume else "the settings")
    info = setup_distributed(cfg.device)
    try:
        show = progress if progress is not None else (info.is_main and sys.stderr.isatty())
        recipe = LMRecipe(cfg, run_dir, info, resume=resume, changed=changed, log=log, show=show,
                          overwrite=overwrite)
        stop = StopRules(cfg.max_minutes, cfg.max_steps)
        reason = run_epochs(recipe, stop, info, show_progress=show, checkpoint_minutes=cfg.checkpoint_minutes)
    except BaseException:
        teardown_distributed(info, wait=False)  # other ranks may not reach a barrier
        raise
    teardown_distributed(info)
    minutes, _ = recipe.clock()
    return TrainResult(run_dir, recipe.epoch - 1, recipe.steps, recipe.best_valid, reason or "epochs", minutes)


def _make_optimizer(kind: str, params, cfg: TrainConfig):
    if kind == "sgd":
        return torch.optim.SGD(params, lr=cfg.lr, weight_decay=cfg.wdecay)
    if kind == "asgd":
        return torch.optim.ASGD(params, lr=cfg.lr, t0=0, lambd=0.0, weight_decay=cfg.wdecay)
    if kind == "adam":
        return torch.optim.Adam(params, lr=cfg.lr, weight_decay=cfg.wdecay)
    raise UserError(f"unknown optimizer {kind!r}; choose 'sgd', 'asgd' or 'adam'")


class _Averaged:
    """Temporarily load ASGD's averaged parameters ('ax') into the model."""

    def __init__(self, model: nn.Module, optimizer):
        self.model, self.optimizer, self.saved = model, optimizer, None

    def __enter__(self):
        if isinstance(self.optimizer, torch.optim.ASGD):
            self.saved = {}
            for p in self.model.parameters():
                st = self.optimizer.state.get(p, {})
                if "ax" in st:
                    self.saved[p] = p.detach().clone()
                    p.data.copy_(st["ax"])
        return self

    def __exit__(self, *exc):
        if self.saved:
            for p, v in self.saved.items():
                p.data.copy_(v)


class LMRecipe:
    """The language model's plug-in for `onlstm.training.run_epochs` (see `Recipe`).

    Counters: ``epoch`` is the epoch in progress (1-based), ``steps`` the batches trained in
    total, ``elapsed`` the seconds of training before this invocation.
    """

    def __init__(self, cfg: TrainConfig, run_dir: Path, info: DistInfo, *, resume: bool, changed: Dict[str, Any],
                 log: Callable[[str], None], show: bool, overwrite: bool = False):
        self.cfg, self.run_dir, self.info, self.log, self.show = cfg, run_dir, info, log, show
        self.ckpt_path = run_dir / CHECKPOINT_FILE
        if cfg.threads:
            torch.set_num_threads(cfg.threads)
        random.seed(cfg.seed)
        torch.manual_seed(cfg.seed)
        self.corpus = load_corpus(cfg.data, options=TextOptions(cfg.char_level, cfg.lower, cfg.digits_to_N),
                                  max_vocab=cfg.max_vocab, min_count=cfg.min_count, required=("train", "valid"))
        vocab = self.corpus.vocab
        if resume and (run_dir / "vocab.json").exists() and Vocabulary.load(run_dir / "vocab.json") != vocab:
            raise UserError(f"{run_dir}: the data's vocabulary differs from the run's; resume with the same --data")
        self.model = LanguageModel(cfg.model_config(len(vocab)), vocab).to(info.device)
        if cfg.init_from is not None and not resume:
            self._init_weights(Path(cfg.init_from))
        for split in ("train", "valid", "test"):  # a backward model learns the reversed text
            if getattr(self.corpus, split) is not None:
                setattr(self.corpus, split, self.model.reading_order(getattr(self.corpus, split)))
        torch.manual_seed(cfg.seed + info.rank)  # per-rank dropout masks

        train_data = batchify(self.corpus.train, cfg.batch_size)
        self.train_data = shard_columns(train_data, info.rank, info.world_size).to(info.device)
        self.sampler = BPTTSampler(self.train_data.size(0), cfg.bptt, seed=cfg.seed, variable=cfg.variable_bptt)
        self.params = list(self.model.parameters())
        if not info.enabled:
            self.ddp = self.model
        elif cfg.device.startswith("cuda"):
            self.ddp = nn.parallel.DistributedDataParallel(self.model, device_ids=[info.device.index])
        else:
            self.ddp = nn.parallel.DistributedDataParallel(self.model)

        self.epoch, self.steps, self.elapsed = 1, 0, 0.0
        self.valid_history: list = []
        self.best_valid: Optional[float] = None
        self.hidden = self.model.init_hidden(self.train_data.size(1))
        self.opt_kind = cfg.optimizer
        self.optimizer = _make_optimizer(self.opt_kind, self.params, cfg)
        self.metrics = MetricsLog(run_dir, enabled=info.is_main)
        if resume:
            self._load(changed)
        if info.is_main:
            open_output(run_dir, LM_RUN, overwrite=overwrite)
            atomic_write_text(run_dir / TRAIN_CONFIG_FILE, json.dumps(asdict(cfg), indent=2) + "\n")
            self.metrics.start(resume)
            log(f"{'resuming' if resume else 'training'} {cfg.cell} LM: {self.model.num_parameters() / 1e6:.2f}M "
                f"parameters, vocab {len(vocab)}, {self.corpus.train.numel()} training tokens, batch "
                f"{cfg.batch_size}{f' over {info.world_size} processes' if info.enabled else ''}, device {info.device}")
        self.t_start = time.time()

    def _init_weights(self, folder: Path) -> None:
        """Start from a saved model's weights (fine-tuning): its shape, reading direction and
        vocabulary must be the run's; a `UserError` says what differs."""
        source = LanguageModel.from_pretrained(folder)
        ours, theirs = self.model.config, source.config
        differ = [f"{k} {getattr(theirs, k)!r} (the run: {getattr(ours, k)!r})"
                  for k in ("cell", "vocab_size", "emb_size", "hidden_sizes", "chunk_size", "master_input", "direction")
                  if getattr(ours, k) != getattr(theirs, k)]
        if differ:
            raise UserError(f"--init-from {folder}: the model differs from the run's settings: {'; '.join(differ)}")
        if source.vocab != self.model.vocab:
            raise UserError(f"--init-from {folder}: its vocabulary differs from the data's")
        self.model.load_state_dict(source.state_dict())
        self.log(f"weights initialised from {folder}")

    # -- checkpoint --------------------------------------------------------------------

    def save(self) -> None:
        info = self.info
        tensors = {f"model.{k}": v for k, v in self.model.state_dict().items() if k != "decoder.weight"}  # tied
        rng_tensors, rng_state = capture_rng(info)
        tensors.update(rng_tensors)
        for k, (h, c) in enumerate(self.hidden):
            for name, t in (("h", h), ("c", c)):
                for r, g in enumerate(all_gather(t, info)):
                    tensors[f"hidden.{r}.{k}.{name}"] = g
        state = dict(config=asdict(self.cfg), optimizer_kind=self.opt_kind, optimizer=self.optimizer.state_dict(),
                     epoch=self.epoch, steps=self.steps, elapsed_seconds=self.seconds(),
                     valid_history=self.valid_history, best_valid=self.best_valid, metric_lines=self.metrics.lines,
                     sampler=self.sampler.state_dict(), **rng_state)
        if info.is_main:
            write_checkpoint(self.ckpt_path, tensors, state, FORMAT)

    def _load(self, changed: Dict[str, Any]) -> None:
        tensors, st = read_checkpoint(self.ckpt_path, FORMAT, legacy_unmarked=True)
        rank, device = self.info.rank, self.info.device
        self.model.load_state_dict({k[len("model."):]: v for k, v in tensors.items() if k.startswith("model.")},
                                   strict=False)
        self.opt_kind = st["optimizer_kind"]
        self.optimizer = _make_optimizer(self.opt_kind, self.params, self.cfg)
        self.optimizer.load_state_dict(st["optimizer"])
        for group in self.optimizer.param_groups:  # settings changed on resume take effect
            if "lr" in changed:
                group["lr"] = self.cfg.lr
            if "wdecay" in changed:
                group["weight_decay"] = self.cfg.wdecay
        self.epoch, self.steps, self.elapsed = st["epoch"], st["steps"], st["elapsed_seconds"]
        self.valid_history, self.best_valid = st["valid_history"], st["best_valid"]
        self.metrics.lines = st["metric_lines"]
        self.sampler.load_state_dict(st["sampler"])
        self.hidden = [(tensors[f"hidden.{rank}.{k}.h"].to(device), tensors[f"hidden.{rank}.{k}.c"].to(device))
                       for k in range(len(self.model.rnns))]
        restore_rng(tensors, st, self.info)

    # -- the Recipe interface ----------------------------------------------------------

    def seconds(self) -> float:
        """Training time over all invocations."""
        return self.elapsed + (time.time() - self.t_start)

    def clock(self):
        return self.seconds() / 60, self.steps

    def finished(self) -> bool:
        return self.epoch > self.cfg.epochs

    def mid_epoch(self) -> bool:
        return 0 < self.sampler.position < self.sampler.n_steps - 1

    def start_epoch(self) -> Epoch:
        self.group = [0.0, 0, time.time()]  # loss sum, tokens, start time of the current log group
        done = min(self.sampler.position // max(self.cfg.bptt, 1), len(self.sampler))
        return Epoch(f"epoch {self.epoch}", len(self.sampler), done, self.sampler)

    def train_step(self, window) -> Optional[Dict[str, str]]:
        """One BPTT window: cross-entropy + AR + TAR, clipped update (lr scaled by the
        window's length for SGD), hidden state carried to the next window."""
        cfg, optimizer = self.cfg, self.optimizer
        lr = optimizer.param_groups[0]["lr"]
        optimizer.param_groups[0]["lr"] = lr * window.lr_scale if self.opt_kind != "adam" else lr
        self.ddp.train()
        x, y = get_batch(self.train_data, window.start, window.seq_len)
        out = self.ddp(x, [tuple(t.detach() for t in h) for h in self.hidden])
        self.hidden = out.hidden
        raw_loss = F.cross_entropy(out.logits.view(-1, out.logits.size(-1)), y.reshape(-1))
        loss = raw_loss
        if cfg.alpha:
            loss = loss + cfg.alpha * out.last_dropped.pow(2).mean()
        if cfg.beta and out.last_raw.shape[0] > 1:  # TAR needs two steps (the last window may have one)
            loss = loss + cfg.beta * (out.last_raw[1:] - out.last_raw[:-1]).pow(2).mean()
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        if cfg.clip:
            nn.utils.clip_grad_norm_(self.params, cfg.clip)
        value = raw_loss.item()
        check_finite(f"at epoch {self.epoch}, batch {self.steps + 1}", self.ckpt_path, "try a lower --lr or --clip",
                     loss=loss.item(), cross_entropy=value)
        optimizer.step()
        optimizer.param_groups[0]["lr"] = lr
        self.steps += 1
        self.group[0] += value * y.numel()
        self.group[1] += y.numel()
        return self._log_group(lr)

    def _log_group(self, lr: float) -> Optional[Dict[str, str]]:
        """Every ``log_interval`` steps a metrics record; the bar's values at every step."""
        total_loss, tokens, start = self.group
        if self.steps % self.cfg.log_interval and not self.show:
            return None
        cur = total_loss / max(tokens, 1)
        tok_s = tokens * self.info.world_size / max(time.time() - start, 1e-9)
        if self.steps % self.cfg.log_interval == 0:
            self.metrics.write(dict(kind="train", epoch=self.epoch, step=self.steps, loss=cur, ppl=perplexity(cur),
                                    lr=lr, tokens_per_s=tok_s, minutes=self.clock()[0]))
            if not self.show and self.info.is_main:
                self.log(f"epoch {self.epoch} step {self.steps}: loss {cur:.3f} ppl {perplexity(cur):.1f} "
                         f"{tok_s:.0f} tok/s")
            self.group = [0.0, 0, time.time()]
        return dict(loss=f"{cur:.3f}", ppl=f"{perplexity(cur):.1f}", tok_s=f"{tok_s:.0f}", lr=f"{lr:g}")

    def end_epoch(self) -> None:
        """Validate (with ASGD's averaged weights), keep the best model in the run folder,
        maybe switch to averaged SGD (NT-ASGD: no improvement over ``nonmono`` epochs)."""
        cfg = self.cfg
        with _Averaged(self.model, self.optimizer):
            valid_loss = evaluate_ids(self.model, self.corpus.valid, cfg.eval_batch_size, cfg.bptt)
            if (self.best_valid is None or valid_loss < self.best_valid) and self.info.is_main:
                self.model.save_pretrained(self.run_dir, extra_config={"training": {"data": cfg.data,
                                                                                    "epoch": self.epoch}})
            if cfg.keep_epochs and self.info.is_main:
                self.model.save_pretrained(self.run_dir / "epochs" / f"{self.epoch:03d}",
                                           extra_config={"training": {"data": cfg.data, "epoch": self.epoch}})
        if self.best_valid is None or valid_loss < self.best_valid:
            self.best_valid = valid_loss
        minutes = self.clock()[0]
        self.metrics.write(dict(kind="valid", epoch=self.epoch, step=self.steps, loss=valid_loss,
                                ppl=perplexity(valid_loss), bits_per_token=valid_loss / math.log(2),
                                optimizer=self.opt_kind, minutes=minutes))
        if self.info.is_main:
            self.log(f"epoch {self.epoch} done: valid loss {valid_loss:.4f}, ppl {perplexity(valid_loss):.2f}"
                     f" (best {perplexity(self.best_valid):.2f}), {self.opt_kind}, {minutes:.1f} min")
        if (self.opt_kind == "sgd" and cfg.asgd and len(self.valid_history) > cfg.nonmono
                and valid_loss > min(self.valid_history[:-cfg.nonmono])):
            if self.info.is_main:
                self.log("switching to averaged SGD (NT-ASGD)")
            self.opt_kind = "asgd"
            self.optimizer = _make_optimizer("asgd", self.params, cfg)
        self.valid_history.append(valid_loss)
        self.epoch += 1
