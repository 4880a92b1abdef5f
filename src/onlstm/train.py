"""Training a language model with the paper's recipe (SPEC §4), resumable and distributed.

The run folder is itself a model folder: ``model.safetensors`` / ``config.json`` /
``vocab.json`` always hold the best model so far (by validation loss), so ``evaluate``,
``generate`` and ``parse`` accept it. Next to them:

- ``checkpoint.safetensors``: everything needed to continue — current weights, optimizer
  state (SGD or averaged SGD or Adam), RNG states of every process, the hidden state carried
  across batches, and (as JSON in the file's metadata) the epoch, data position, BPTT sampler
  state, validation history and the settings. Written to a temporary file then renamed, so a
  crash mid-write never leaves a broken checkpoint.
- ``metrics.jsonl``: one JSON object per logged batch group and per validation.
- ``train_config.json``: the resolved settings of the run.

Under ``torchrun --nproc_per_node=N`` the same code trains with DistributedDataParallel
(gloo on CPU, NCCL on GPU): every rank takes its own block of the batch's columns, gradients
are averaged, and only rank 0 writes files.
"""

from __future__ import annotations

import json
import math
import os
import random
import signal
import sys
import time
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any, Callable, Dict, List, Optional

import torch
import torch.distributed as dist
import torch.nn.functional as F
from torch import nn

from .batching import BPTTSampler, batchify, get_batch, shard_columns
from .corpus import encode_file, load_corpus
from .text import TextOptions
from .errors import UserError
from .lm import LanguageModel, LMConfig, perplexity

CHECKPOINT_FILE = "checkpoint.safetensors"
METRICS_FILE = "metrics.jsonl"
TRAIN_CONFIG_FILE = "train_config.json"


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


PRESETS: Dict[str, Dict[str, Any]] = {
    # SPEC §4 exactly: 400-1150-1150-400, chunk 10, the paper's dropouts, SGD lr 30, 1000 epochs.
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


def resolve_config(preset: Optional[str] = None, config_file: Optional[str] = None,
                   overrides: Optional[Dict[str, Any]] = None) -> TrainConfig:
    """Preset, then config file (JSON or TOML), then explicit overrides."""
    values: Dict[str, Any] = {}
    if preset is not None:
        if preset not in PRESETS:
            raise UserError(f"unknown preset {preset!r}; choose one of {sorted(PRESETS)}")
        values.update(PRESETS[preset])
    if config_file is not None:
        values.update(read_config_file(config_file))
    values.update({k: v for k, v in (overrides or {}).items() if v is not None})
    unknown = set(values) - set(TrainConfig.field_names())
    if unknown:
        raise UserError(f"unknown training settings: {sorted(unknown)}")
    return TrainConfig(**values)


def read_config_file(path: str) -> Dict[str, Any]:
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


# --------------------------------------------------------------------------------------
# Checkpoints: tensors in safetensors, everything else as JSON in its metadata
# --------------------------------------------------------------------------------------


def _flatten_state(obj: Any, prefix: str, tensors: Dict[str, torch.Tensor]) -> Any:
    """Replace tensors in a nested structure by ``{"__tensor__": key}`` and collect them."""
    if isinstance(obj, torch.Tensor):
        key = f"{prefix}"
        tensors[key] = obj.detach().cpu().contiguous()
        return {"__tensor__": key}
    if isinstance(obj, dict):
        return {"__dict__": [[_flatten_state(k, f"{prefix}.k{i}", tensors), _flatten_state(v, f"{prefix}.{i}", tensors)]
                             for i, (k, v) in enumerate(obj.items())]}
    if isinstance(obj, (list, tuple)):
        return {"__list__": [_flatten_state(v, f"{prefix}.{i}", tensors) for i, v in enumerate(obj)],
                "tuple": isinstance(obj, tuple)}
    if isinstance(obj, float) and not math.isfinite(obj):
        return {"__float__": repr(obj)}
    return obj


def _unflatten_state(obj: Any, tensors: Dict[str, torch.Tensor]) -> Any:
    if isinstance(obj, dict):
        if "__tensor__" in obj:
            return tensors[obj["__tensor__"]]
        if "__dict__" in obj:
            return {_unflatten_state(k, tensors): _unflatten_state(v, tensors) for k, v in obj["__dict__"]}
        if "__list__" in obj:
            items = [_unflatten_state(v, tensors) for v in obj["__list__"]]
            return tuple(items) if obj.get("tuple") else items
        if "__float__" in obj:
            return float(obj["__float__"])
    return obj


def save_checkpoint(path: Path, tensors: Dict[str, torch.Tensor], state: Dict[str, Any]) -> None:
    """Atomically write tensors + JSON state into one safetensors file."""
    from safetensors.torch import save_file

    flat: Dict[str, torch.Tensor] = {}
    meta = _flatten_state(state, "state", flat)
    for k, v in tensors.items():
        flat[k] = v.detach().cpu().contiguous()
    tmp = path.with_name(path.name + ".tmp")
    save_file(flat, str(tmp), metadata={"state": json.dumps(meta)})
    os.replace(tmp, path)


def load_checkpoint(path: Path):
    from safetensors import safe_open

    if not path.is_file():
        raise UserError(f"{path}: no checkpoint to resume from")
    try:
        with safe_open(str(path), framework="pt") as f:
            meta = json.loads(f.metadata()["state"])
            flat = {k: f.get_tensor(k) for k in f.keys()}
    except Exception as err:
        raise UserError(f"{path}: unreadable checkpoint ({err})") from None
    state = _unflatten_state(meta, flat)
    tensors = {k: v for k, v in flat.items() if not k.startswith("state.")}
    return tensors, state


# --------------------------------------------------------------------------------------
# Distributed helpers
# --------------------------------------------------------------------------------------


@dataclass
class DistInfo:
    rank: int = 0
    world_size: int = 1
    device: torch.device = torch.device("cpu")
    owns_group: bool = False  # we created the process group, so we tear it down

    @property
    def enabled(self) -> bool:
        return self.world_size > 1

    @property
    def is_main(self) -> bool:
        return self.rank == 0


def setup_distributed(device: str) -> DistInfo:
    """Join the torchrun process group when WORLD_SIZE > 1 (gloo on CPU, NCCL on CUDA)."""
    dev = torch.device(device)
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise UserError("--device cuda was asked for but no CUDA GPU is available")
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1:
        return DistInfo(0, 1, dev)
    owns = not dist.is_initialized()
    if owns:
        dist.init_process_group("nccl" if dev.type == "cuda" else "gloo")
    rank = dist.get_rank()
    if dev.type == "cuda":
        dev = torch.device("cuda", int(os.environ.get("LOCAL_RANK", "0")))
        torch.cuda.set_device(dev)
    return DistInfo(rank, dist.get_world_size(), dev, owns)


def teardown_distributed(info: DistInfo, wait: bool = True) -> None:
    """Wait for every rank, then close the process group (exiting with it open can abort)."""
    if info.enabled and info.owns_group and dist.is_initialized():
        if wait:
            dist.barrier()
        dist.destroy_process_group()


def _all_gather(t: torch.Tensor, info: DistInfo) -> List[torch.Tensor]:
    if not info.enabled:
        return [t]
    out = [torch.empty_like(t) for _ in range(info.world_size)]
    dist.all_gather(out, t.contiguous())
    return out


def _agree(flags: List[bool], info: DistInfo) -> List[bool]:
    """Each flag true when it is true on any rank (one small all-reduce)."""
    if not info.enabled:
        return list(flags)
    t = torch.tensor([1.0 if f else 0.0 for f in flags], device=info.device)
    dist.all_reduce(t, op=dist.ReduceOp.MAX)
    return [bool(v > 0) for v in t.tolist()]


# --------------------------------------------------------------------------------------
# Evaluation
# --------------------------------------------------------------------------------------


def _detach(hidden):
    return [tuple(t.detach() for t in h) for h in hidden]


@torch.no_grad()
def evaluate_ids(model: LanguageModel, ids: torch.Tensor, batch_size: int = 1, bptt: int = 70,
                 progress: bool = False) -> float:
    """Mean cross-entropy (nats/token) of a token stream, AWD-LSTM style: batchified,
    consecutive windows of ``bptt`` with the state carried. ``batch_size=1`` is the paper's
    test setting (the whole text as one sequence)."""
    was_training = model.training
    model.eval()
    device = model.encoder.weight.device
    source = batchify(ids, batch_size).to(device)
    hidden = model.init_hidden(batch_size)
    total, count = 0.0, 0
    starts = range(0, source.size(0) - 1, bptt)
    bar = _progress(len(starts), "evaluate", "batch", disable=not progress)
    for i in starts:
        x, y = get_batch(source, i, bptt)
        out = model(x, hidden)
        hidden = out.hidden
        total += F.cross_entropy(out.logits.view(-1, out.logits.size(-1)).float(), y.reshape(-1), reduction="sum").item()
        count += y.numel()
        bar.update(1)
    bar.close()
    model.train(was_training)
    return total / count


def _progress(total, desc, unit, disable=False):
    from tqdm.auto import tqdm

    return tqdm(total=total, desc=desc, unit=unit, disable=disable or None, dynamic_ncols=True, leave=False)


# --------------------------------------------------------------------------------------
# Training
# --------------------------------------------------------------------------------------


class TrainingDiverged(UserError):
    """Loss became NaN or infinite."""


class _Interrupt:
    """First Ctrl-C asks the loop to save and stop; a second one aborts at once."""

    def __init__(self):
        self.requested = False
        self._old = None

    def __enter__(self):
        try:
            self._old = signal.signal(signal.SIGINT, self._handler)
        except ValueError:  # not in the main thread
            self._old = None
        return self

    def _handler(self, signum, frame):
        if self.requested:
            raise KeyboardInterrupt
        self.requested = True

    def __exit__(self, *exc):
        if self._old is not None:
            signal.signal(signal.SIGINT, self._old)


@dataclass
class TrainResult:
    run_dir: Path
    epochs_done: int
    steps: int
    best_valid_loss: Optional[float]
    stopped_by: str  # "epochs", "max_minutes", "max_steps", "interrupt"
    elapsed_minutes: float


def _make_optimizer(kind: str, params, cfg: TrainConfig):
    if kind == "sgd":
        return torch.optim.SGD(params, lr=cfg.lr, weight_decay=cfg.wdecay)
    if kind == "asgd":
        return torch.optim.ASGD(params, lr=cfg.lr, t0=0, lambd=0.0, weight_decay=cfg.wdecay)
    if kind == "adam":
        return torch.optim.Adam(params, lr=cfg.lr, weight_decay=cfg.wdecay)
    raise UserError(f"unknown optimizer {kind!r}; choose 'sgd' or 'adam'")


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


def train(cfg: Optional[TrainConfig], run_dir, resume: bool = False, log: Callable[[str], None] = print,
          progress: Optional[bool] = None, resume_overrides: Optional[Dict[str, Any]] = None) -> TrainResult:
    """Train (or resume) a language model into ``run_dir``. See the module docstring.

    With ``resume=True`` the run's saved settings are used (``cfg`` may be None), updated by
    ``resume_overrides`` (e.g. a longer ``epochs`` or ``max_minutes``, a lower ``lr``)."""
    run_dir = Path(run_dir)
    ckpt_path = run_dir / CHECKPOINT_FILE
    ckpt_tensors, ckpt_state = (None, None)
    changed: Dict[str, Any] = {}
    if resume:
        ckpt_tensors, ckpt_state = load_checkpoint(ckpt_path)
        values = dict(ckpt_state["config"])
        changed = {k: v for k, v in (resume_overrides or {}).items() if v is not None}
        unknown = set(changed) - set(TrainConfig.field_names())
        if unknown:
            raise UserError(f"unknown training settings: {sorted(unknown)}")
        fixed = {"cell", "emb_size", "hidden_sizes", "chunk_size", "master_input", "data", "char_level", "lower",
                 "digits_to_N", "max_vocab", "min_count", "batch_size", "bptt", "variable_bptt", "seed"}
        clash = sorted(k for k in set(changed) & fixed if changed[k] != values.get(k))
        if clash:
            raise UserError(f"cannot change {', '.join(clash)} when resuming {run_dir}")
        values.update(changed)
        cfg = TrainConfig(**values)
    elif ckpt_path.exists():
        raise UserError(f"{run_dir} already holds a training run; use --resume to continue it or choose another --out")
    info = setup_distributed(cfg.device)
    try:
        result = _train(cfg, run_dir, resume, log, progress, info, ckpt_path, ckpt_tensors, ckpt_state, changed)
    except BaseException:
        teardown_distributed(info, wait=False)  # other ranks may not reach a barrier
        raise
    teardown_distributed(info)
    return result


def _train(cfg, run_dir, resume, log, progress, info, ckpt_path, ckpt_tensors, ckpt_state, changed) -> TrainResult:
    if cfg.threads:
        torch.set_num_threads(cfg.threads)

    random.seed(cfg.seed)
    torch.manual_seed(cfg.seed)
    corpus = load_corpus(cfg.data, options=TextOptions(cfg.char_level, cfg.lower, cfg.digits_to_N),
                         max_vocab=cfg.max_vocab, min_count=cfg.min_count, required=("train", "valid"))
    if resume:
        from .text import Vocabulary

        vocab = Vocabulary.load(run_dir / "vocab.json") if (run_dir / "vocab.json").exists() else corpus.vocab
        if vocab != corpus.vocab:
            raise UserError(f"{run_dir}: the data's vocabulary differs from the run's; resume with the same --data")
    vocab = corpus.vocab
    model = LanguageModel(cfg.model_config(len(vocab)), vocab).to(info.device)
    torch.manual_seed(cfg.seed + info.rank)  # per-rank dropout masks

    train_data = batchify(corpus.train, cfg.batch_size)
    train_data = shard_columns(train_data, info.rank, info.world_size).to(info.device)
    local_batch = train_data.size(1)
    sampler = BPTTSampler(train_data.size(0), cfg.bptt, seed=cfg.seed, variable=cfg.variable_bptt)
    params = list(model.parameters())
    opt_kind = cfg.optimizer if cfg.optimizer in ("sgd", "adam") else None
    if opt_kind is None:
        raise UserError(f"unknown optimizer {cfg.optimizer!r}; choose 'sgd' or 'adam'")
    if cfg.device.startswith("cuda") and info.enabled:
        ddp = nn.parallel.DistributedDataParallel(model, device_ids=[info.device.index])
    elif info.enabled:
        ddp = nn.parallel.DistributedDataParallel(model)
    else:
        ddp = model

    # -------- state --------
    epoch, steps, elapsed, metric_lines = 1, 0, 0.0, 0
    valid_history: List[float] = []
    best_valid: Optional[float] = None
    hidden = model.init_hidden(local_batch)
    optimizer = _make_optimizer(opt_kind, params, cfg)
    if resume:
        st = ckpt_state
        model.load_state_dict({k[len("model."):]: v for k, v in ckpt_tensors.items() if k.startswith("model.")},
                              strict=False)
        opt_kind = st["optimizer_kind"]
        optimizer = _make_optimizer(opt_kind, params, cfg)
        optimizer.load_state_dict(st["optimizer"])
        for group in optimizer.param_groups:  # settings changed on resume take effect
            if "lr" in changed:
                group["lr"] = cfg.lr
            if "wdecay" in changed:
                group["weight_decay"] = cfg.wdecay
        epoch, steps, elapsed = st["epoch"], st["steps"], st["elapsed_seconds"]
        valid_history, best_valid = st["valid_history"], st["best_valid"]
        metric_lines = st["metric_lines"]
        sampler.load_state_dict(st["sampler"])
        hidden = [(ckpt_tensors[f"hidden.{info.rank}.{k}.h"].to(info.device),
                   ckpt_tensors[f"hidden.{info.rank}.{k}.c"].to(info.device)) for k in range(len(model.rnns))]
        torch.set_rng_state(ckpt_tensors[f"rng.{info.rank}"])
        if info.device.type == "cuda" and f"cuda_rng.{info.rank}" in ckpt_tensors:
            torch.cuda.set_rng_state(ckpt_tensors[f"cuda_rng.{info.rank}"])
        random.setstate(_unflatten_py_random(st["py_random"]))
        if info.is_main:
            _truncate_lines(run_dir / METRICS_FILE, metric_lines)
    if info.is_main:
        run_dir.mkdir(parents=True, exist_ok=True)
        (run_dir / TRAIN_CONFIG_FILE).write_text(json.dumps(asdict(cfg), indent=2) + "\n")
        if not resume:
            (run_dir / METRICS_FILE).write_text("")
        log(f"{'resuming' if resume else 'training'} {cfg.cell} LM: {model.num_parameters() / 1e6:.2f}M parameters, "
            f"vocab {len(vocab)}, {corpus.train.numel()} training tokens, batch {cfg.batch_size}"
            f"{f' over {info.world_size} processes' if info.enabled else ''}, device {info.device}")

    def write_metric(record: Dict[str, Any]) -> None:
        nonlocal metric_lines
        if info.is_main:
            with open(run_dir / METRICS_FILE, "a") as f:
                f.write(json.dumps(record) + "\n")
        metric_lines += 1

    def checkpoint() -> None:
        tensors: Dict[str, torch.Tensor] = {}
        for k, v in model.state_dict().items():
            if k != "decoder.weight":
                tensors[f"model.{k}"] = v
        rng = _all_gather(torch.get_rng_state(), info)
        for r, t in enumerate(rng):
            tensors[f"rng.{r}"] = t
        if info.device.type == "cuda":
            for r, t in enumerate(_all_gather(torch.cuda.get_rng_state().to(info.device), info)):
                tensors[f"cuda_rng.{r}"] = t.cpu()
        for k, (h, c) in enumerate(hidden):
            for r, t in enumerate(_all_gather(h, info)):
                tensors[f"hidden.{r}.{k}.h"] = t
            for r, t in enumerate(_all_gather(c, info)):
                tensors[f"hidden.{r}.{k}.c"] = t
        state = dict(config=asdict(cfg), optimizer_kind=opt_kind, optimizer=optimizer.state_dict(), epoch=epoch,
                     steps=steps, elapsed_seconds=elapsed + (time.time() - t_start), valid_history=valid_history,
                     best_valid=best_valid, metric_lines=metric_lines, sampler=sampler.state_dict(),
                     py_random=list(random.getstate()))
        if info.is_main:
            save_checkpoint(ckpt_path, tensors, state)
        last_checkpoint[0] = time.time()

    def validate() -> float:
        with _Averaged(model, optimizer):
            loss = evaluate_ids(model, corpus.valid, cfg.eval_batch_size, cfg.bptt)
            improved = best_valid is None or loss < best_valid
            if improved and info.is_main:
                model.save_pretrained(run_dir, extra_config={"training": {"data": cfg.data, "epoch": epoch}})
        return loss

    t_start = time.time()
    last_checkpoint = [t_start]
    stopped_by = "epochs"
    show = progress if progress is not None else (info.is_main and sys.stderr.isatty())
    V = len(vocab)
    with _Interrupt() as interrupt:
        while epoch <= cfg.epochs:
            bar = _progress(len(sampler), f"epoch {epoch}", "batch", disable=not show)
            bar.update(min(sampler.position // max(cfg.bptt, 1), len(sampler)))
            total_loss, total_tokens, group_start, group_batches = 0.0, 0, time.time(), 0
            stop = None
            for window in sampler:
                lr = optimizer.param_groups[0]["lr"]
                optimizer.param_groups[0]["lr"] = lr * window.lr_scale if opt_kind != "adam" else lr
                ddp.train()
                x, y = get_batch(train_data, window.start, window.seq_len)
                hidden = _detach(hidden)
                out = ddp(x, hidden)
                hidden = out.hidden
                raw_loss = F.cross_entropy(out.logits.view(-1, V), y.reshape(-1))
                loss = raw_loss
                if cfg.alpha:
                    loss = loss + cfg.alpha * out.last_dropped.pow(2).mean()
                if cfg.beta and out.last_raw.shape[0] > 1:  # TAR needs two steps (the last window may have one)
                    loss = loss + cfg.beta * (out.last_raw[1:] - out.last_raw[:-1]).pow(2).mean()
                optimizer.zero_grad(set_to_none=True)
                loss.backward()
                if cfg.clip:
                    nn.utils.clip_grad_norm_(params, cfg.clip)
                value, total = raw_loss.item(), loss.item()
                if not math.isfinite(value) or not math.isfinite(total):
                    raise TrainingDiverged(
                        f"the training loss became {total} (cross-entropy {value}) at epoch {epoch}, batch "
                        f"{steps + 1}; stopped without "
                        f"updating. The last good checkpoint is {ckpt_path} (try a lower --lr or --clip)")
                optimizer.step()
                optimizer.param_groups[0]["lr"] = lr
                steps += 1
                total_loss += value * y.numel()
                total_tokens += y.numel()
                group_batches += 1
                bar.update(1)
                if steps % cfg.log_interval == 0 or show:
                    tok_s = total_tokens * info.world_size / max(time.time() - group_start, 1e-9)
                    cur = total_loss / max(total_tokens, 1)
                    bar.set_postfix(loss=f"{cur:.3f}", ppl=f"{perplexity(cur):.1f}", tok_s=f"{tok_s:.0f}", lr=f"{lr:g}")
                if steps % cfg.log_interval == 0:
                    cur = total_loss / max(total_tokens, 1)
                    tok_s = total_tokens * info.world_size / max(time.time() - group_start, 1e-9)
                    write_metric(dict(kind="train", epoch=epoch, step=steps, loss=cur, ppl=perplexity(cur), lr=lr,
                                      tokens_per_s=tok_s, minutes=(elapsed + time.time() - t_start) / 60))
                    if not show and info.is_main:
                        log(f"epoch {epoch} step {steps}: loss {cur:.3f} ppl {perplexity(cur):.1f} {tok_s:.0f} tok/s")
                    total_loss, total_tokens, group_start = 0.0, 0, time.time()
                minutes = (elapsed + time.time() - t_start) / 60
                want_stop = interrupt.requested or (cfg.max_minutes is not None and minutes >= cfg.max_minutes) \
                    or (cfg.max_steps is not None and steps >= cfg.max_steps)
                due = bool(cfg.checkpoint_minutes) and time.time() - last_checkpoint[0] > 60 * cfg.checkpoint_minutes
                want_stop, due = _agree([want_stop, due], info)  # every rank decides alike
                if want_stop:
                    stop = ("interrupt" if interrupt.requested else
                            "max_steps" if cfg.max_steps is not None and steps >= cfg.max_steps else "max_minutes")
                    break
                if due:
                    checkpoint()
            bar.close()
            if stop is not None and sampler.position != 0:
                checkpoint()  # mid-epoch: resume continues from this batch
                stopped_by = stop
                break
            # ---- end of epoch: validate, keep the best, maybe switch to averaged SGD ----
            valid_loss = validate()
            if best_valid is None or valid_loss < best_valid:
                best_valid = valid_loss
            write_metric(dict(kind="valid", epoch=epoch, step=steps, loss=valid_loss, ppl=perplexity(valid_loss),
                              bits_per_token=valid_loss / math.log(2), optimizer=opt_kind,
                              minutes=(elapsed + time.time() - t_start) / 60))
            if info.is_main:
                log(f"epoch {epoch} done: valid loss {valid_loss:.4f}, ppl {perplexity(valid_loss):.2f}"
                    f" (best {perplexity(best_valid):.2f}), {opt_kind}, {(elapsed + time.time() - t_start) / 60:.1f} min")
            if (opt_kind == "sgd" and cfg.asgd and len(valid_history) > cfg.nonmono
                    and valid_loss > min(valid_history[:-cfg.nonmono])):
                if info.is_main:
                    log("switching to averaged SGD (NT-ASGD)")
                opt_kind = "asgd"
                optimizer = _make_optimizer("asgd", params, cfg)
            valid_history.append(valid_loss)
            epoch += 1
            checkpoint()
            if stop is not None:
                stopped_by = stop
                break
    return TrainResult(run_dir, epoch - 1, steps, best_valid, stopped_by, (elapsed + time.time() - t_start) / 60)


def _unflatten_py_random(state):
    version, internal, gauss = state
    return (version, tuple(internal), gauss)


def _truncate_lines(path: Path, n: int) -> None:
    """Keep the first n lines (records written after the checkpoint are re-made on resume)."""
    if not path.exists():
        return
    lines = path.read_text().splitlines(keepends=True)
    if len(lines) > n:
        path.write_text("".join(lines[:n]))


def evaluate_model(model: LanguageModel, split: str = "test", data: Optional[str] = None, batch_size: int = 1,
                   bptt: int = 70, progress: bool = True) -> Dict[str, Any]:
    """Perplexity of ``model`` on a split of ``data`` (default: the model's training data, else
    the bundled PTB) or on a text FILE, as the paper measures it (batch 1, whole text)."""
    if split in ("train", "valid", "test"):
        corpus = load_corpus(data, vocab=model.vocab, options=model.text_options, required=(split,))
        ids = corpus.split(split)
        source = f"{data or 'bundled PTB'}:{split}"
    else:
        ids = encode_file(split, model.vocab, model.text_options)
        source = split
    unk = int((ids == model.vocab.unk_id).sum())
    loss = evaluate_ids(model, ids, batch_size, bptt, progress=progress)
    return dict(source=source, tokens=int(ids.numel()), unk_tokens=unk, loss=loss, perplexity=perplexity(loss),
                bits_per_token=loss / math.log(2), batch_size=batch_size)


@torch.no_grad()
def generate(model: LanguageModel, prompt: str, tokens: int = 50, temperature: float = 1.0,
             top_k: Optional[int] = None, seed: int = 0) -> List[str]:
    """Sample a continuation of ``prompt`` (tokenized like the training text)."""
    if temperature <= 0:
        raise UserError(f"--temperature must be > 0, got {temperature}")
    if top_k is not None and top_k < 1:
        raise UserError(f"--top-k must be >= 1, got {top_k}")
    model.eval()
    gen = torch.Generator().manual_seed(seed)
    eos = model.vocab.eos_id
    ids = [eos] + model.encode_sentence(prompt)
    device = model.encoder.weight.device
    out = model(torch.tensor(ids, device=device).view(-1, 1))
    hidden, logits = out.hidden, out.logits[-1, 0]
    words: List[str] = []
    for _ in range(tokens):
        scores = logits.float().cpu() / temperature
        if top_k is not None and top_k < scores.numel():
            kth = torch.topk(scores, top_k).values[-1]
            scores = scores.masked_fill(scores < kth, float("-inf"))
        nxt = int(torch.multinomial(torch.softmax(scores, -1), 1, generator=gen))
        words.append(model.vocab.token(nxt))
        out = model(torch.tensor([[nxt]], device=device), hidden)
        hidden, logits = out.hidden, out.logits[-1, 0]
    return words
