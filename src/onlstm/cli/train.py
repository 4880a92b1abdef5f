"""``onlstm train``: train a language model (argument parsing only; see onlstm.tasks.lm)."""

from __future__ import annotations

from dataclasses import fields, replace

from ..errors import UserError
from ..lm import perplexity
from ..tasks import lm as task
from . import argtypes
from .argtypes import from_check
from .common import resolve_model

_HELP = {
    "cell": "recurrent layer: onlstm or lstm (AWD-LSTM baseline through the same pipeline)",
    "emb_size": "embedding size (= size of the last layer, decoder tied)",
    "hidden_sizes": "output size of each recurrent layer, e.g. 1150 1150 400",
    "chunk_size": "ON-LSTM chunk size (units per level)",
    "master_input": "master input gate: paper (1 - cumax) or symmetric",
    "dropout": "locked dropout on the last layer's output",
    "dropouth": "locked dropout between layers",
    "dropouti": "locked dropout on the embedded input",
    "dropoute": "embedding dropout (whole words)",
    "wdrop": "DropConnect on the recurrent weights",
    "dropconnect_convention": ("published: weights unscaled in training, times (1-p) at evaluation (the ON-LSTM "
                               "code's); rescaled: times 1/(1-p) in training (AWD-LSTM's); default: the cell's "
                               "published code's (docs/spec.md §4)"),
    "direction": ("forward (left to right, the paper's) or backward: trained on the reversed text, "
                  "so it reads each sentence right to left (its distances parse too)"),
    "init_from": ("start from this model's weights (a model or run folder, or a bundled model's name such as en): "
                  "fine-tuning; its shape and vocabulary must match the run's settings"),
    "keep_epochs": "also keep the model of every epoch in RUN_DIR/epochs/NNN/ (for curves of F1 against training)",
    "data": "folder with train.txt / valid.txt (/ test.txt); default: the bundled PTB",
    "char_level": "character-level tokens (for unsegmented text such as Chinese)",
    "lower": "lower-case the text",
    "digits_to_N": "replace every run of digits by N",
    "max_vocab": "vocabulary size cap (incl. <eos>, <unk>)",
    "min_count": "minimum count for a word to enter the vocabulary",
    "optimizer": ("sgd (NT-ASGD, the paper's: averaging starts when validation stalls), asgd (averaged from the "
                  "first step: AWD-LSTM's fine-tuning stage, e.g. with --init-from) or adam"),
    "lr": "learning rate", "clip": "gradient norm clipping (0: off)", "wdecay": "weight decay",
    "alpha": "activation regularisation (AR) weight", "beta": "temporal activation regularisation (TAR) weight",
    "batch_size": "training batch size (split across processes under torchrun)",
    "eval_batch_size": "validation batch size", "bptt": "mean BPTT length",
    "variable_bptt": "variable BPTT lengths as AWD-LSTM (true/false)",
    "nonmono": "NT-ASGD non-monotone interval (epochs)", "asgd": "allow the switch to averaged SGD (true/false)",
    "epochs": "stop after this many epochs",
    "max_minutes": "stop (and checkpoint) after this much training time in total, over resumes",
    "max_steps": "stop (and checkpoint) after this many batches in total",
    "seed": "random seed", "log_interval": "batches between metric records",
    "checkpoint_minutes": "minutes between mid-epoch checkpoints", "device": "cpu, cuda or cuda:N",
    "threads": "torch CPU threads",
}


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "train", help="train a language model (ON-LSTM or LSTM) with the paper's recipe",
        description=("Train a word-level language model with the AWD-LSTM recipe of the ON-LSTM paper. "
                     "Settings: --preset, then --config FILE (JSON or TOML), then individual flags. "
                     "The run folder holds the best model (usable by evaluate/generate/parse), a resumable "
                     "checkpoint and metrics.jsonl. Ctrl-C saves and exits; --resume continues. Run under "
                     "torchrun --nproc_per_node=N for data-parallel training."))
    p.add_argument("--out", required=True, metavar="RUN_DIR", help="run folder (created)")
    p.add_argument("--preset", choices=sorted(task.PRESETS), default=None,
                   help="paper (docs/spec.md §4 exactly), cpu (about an hour on 2 cores), tiny (tests)")
    p.add_argument("--config", metavar="FILE", help="JSON or TOML file of settings")
    p.add_argument("--resume", action="store_true", help="continue the run in --out from its checkpoint")
    p.add_argument("--overwrite", action="store_true",
                   help="start a new run in --out even if it holds another run or other files (the run's own "
                        "file names are replaced, other files are kept)")
    group = p.add_argument_group("settings (default: the preset's, else the paper's)")
    for f in fields(task.TrainConfig):
        check = task.TrainConfig.CHECKS[f.name]
        paper = f.default_factory() if callable(f.default_factory) else f.default
        shown = " ".join(map(str, paper)) if isinstance(paper, list) else ("none" if paper is None else paper)
        valid = "" if check.choices or check.kind is str else replace(check, optional=False).describe() + "; "
        kw = dict(dest=f.name, default=None, type=from_check(check),
                  help=f"{_HELP.get(f.name, f.name)} ({valid}paper: {shown})".replace("%", "%%"))
        if f.name == "device":  # this machine must have it
            kw["type"] = argtypes.device
        if check.many:
            kw.update(nargs="+", metavar="N")
        elif check.choices:
            kw["choices"] = list(check.choices)
        elif check.kind is bool:
            kw["metavar"] = "BOOL"
        group.add_argument("--" + f.name.replace("_", "-"), **kw)
    p.set_defaults(func=run)


def run(args) -> int:
    overrides = {f.name: getattr(args, f.name) for f in fields(task.TrainConfig)}
    if overrides.get("init_from") is not None:  # a bundled model's name -> its folder
        overrides["init_from"] = str(resolve_model(overrides["init_from"], "--init-from"))
    if args.resume:
        if args.preset or args.config:
            raise UserError("--resume continues a run with its own settings; --preset/--config cannot be combined "
                            "with it (individual flags such as --epochs or --max-minutes can)")
        result = task.train(None, args.out, resume=True, resume_overrides=overrides, overwrite=args.overwrite)
    else:
        result = task.train(task.resolve_config(args.preset, args.config, overrides), args.out,
                            overwrite=args.overwrite)
    best = f"{perplexity(result.best_valid_loss):.2f}" if result.best_valid_loss is not None else "n/a"
    print(f"stopped ({result.stopped_by}) after {result.epochs_done} epoch(s), {result.steps} batches, "
          f"{result.elapsed_minutes:.1f} min; best valid ppl {best}; run folder {result.run_dir}")
    return 130 if result.stopped_by == "interrupt" else 0
