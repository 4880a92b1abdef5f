"""``onlstm logic train|eval``: logical inference (Bowman et al. 2015), ON-LSTM vs LSTM.

Argument parsing and printing only; the work is in :mod:`onlstm.tasks.logic`.
"""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import fields

from ..errors import UserError
from ..tasks import logic as task
from . import argtypes

# option -> LogicConfig field, help; type and valid range come from LogicConfig.CHECKS
_MODEL_OPTIONS = [
    ("--cell", "cell", "recurrent layer: onlstm (default) or lstm"),
    ("--embed", "embed_size", "embedding size (default 128)"),
    ("--hidden", "hidden_size", "recurrent hidden units (default 400)"),
    ("--mlp-hidden", "mlp_hidden", "hidden units of the classifier MLP (default 400)"),
    ("--chunk-size", "chunk_size", "ON-LSTM chunk size (default 10: 40 levels of 10 units)"),
    ("--dropout", "dropout", "dropout on embeddings, features and MLP (default 0.2)"),
    ("--dropconnect", "dropconnect", "ON-LSTM DropConnect on recurrent weights (default 0)"),
    ("--dropconnect-convention", "dropconnect_convention",
     "published (the ON-LSTM code's: unscaled in training, times (1-p) at evaluation; default) or rescaled "
     "(times 1/(1-p) in training); docs/spec.md §4"),
    ("--max-ops", "max_ops", "train on pairs with at most this many operators (default 6)"),
    ("--valid-fraction", "valid_fraction", "share of the training pairs held out (default 0.1)"),
    ("--train-limit", "train_limit", "at most N pairs per training file (quick runs)"),
    ("--batch-size", "batch_size", "pairs per batch (default 128)"),
    ("--lr", "lr", "Adam learning rate (default 1e-3)"),
    ("--weight-decay", "weight_decay", "Adam weight decay (default 0)"),
    ("--clip", "clip", "gradient norm clipping, 0 = off (default 1.0)"),
    ("--seed", "seed", "random seed: initialisation, validation split, batches, dropout (default 1111)"),
]


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "logic",
        help="logical inference on propositional-logic pairs (train / eval)",
        description=(
            "Bowman et al. (2015) propositional-logic relation classification as in the ON-LSTM "
            "paper: a siamese ON-LSTM (or LSTM) encoder, features [u; v; u*v; |u-v|], an MLP, "
            "7 relations. Trained on formulas with at most 6 operators, tested on 0 to 12."
        ),
    )
    sub = parser.add_subparsers(dest="logic_command", metavar="{train,eval}")
    parser.set_defaults(func=lambda args: (parser.print_help(), 0)[1])

    tr = sub.add_parser("train", help="train a model (checkpoints every epoch; resumable)")
    tr.add_argument("--out", required=True, metavar="DIR", help="run directory")
    for flag, dest, hlp in _MODEL_OPTIONS:
        check = task.LogicConfig.CHECKS[dest]
        kw = {"choices": list(check.choices)} if check.choices else {}
        tr.add_argument(flag, dest=dest, type=argtypes.from_check(check), default=None, help=hlp, **kw)
    tr.add_argument("--no-parens", action="store_true", default=None,
                    help="drop the brackets from the encoder's input (default: keep them)")
    tr.add_argument("--epochs", type=argtypes.positive_int, default=None, help="total epochs (default 20)")
    tr.add_argument("--max-minutes", type=argtypes.positive_float, default=None,
                    help="stop (and save) after this much wall time in this invocation")
    tr.add_argument("--max-steps", type=argtypes.positive_int, default=None,
                    help="stop (and save) after this many optimizer steps in this invocation")
    tr.add_argument("--resume", action="store_true", help="continue the run in --out")
    tr.add_argument("--overwrite", action="store_true",
                    help="start a new run in --out even if it holds another run or other files (the run's own "
                         "file names are replaced, other files are kept)")
    tr.add_argument("--device", type=argtypes.device, default=None,
                    help="torch device (default: cuda if available, else cpu)")
    tr.add_argument("--quiet", action="store_true", help="no progress bar")
    tr.set_defaults(func=run_train)

    ev = sub.add_parser("eval", help="test accuracy by number of operators for one or more runs")
    ev.add_argument("runs", nargs="+", metavar="RUN_DIR", help="run directories of `logic train`")
    ev.add_argument("--label", action="append", metavar="NAME",
                    help="name of a run in the table and plot (repeat, in the order of RUN_DIR)")
    ev.add_argument("--limit", type=argtypes.positive_int, default=None, metavar="N",
                    help="at most N pairs per test file")
    ev.add_argument("--json", action="store_true", help="print the results as JSON")
    ev.add_argument("--plot", metavar="FILE", help="write accuracy vs operators (png, pdf, svg)")
    ev.add_argument("--device", type=argtypes.device, default="cpu", help="torch device (default cpu)")
    ev.set_defaults(func=run_eval)


def run_train(args: argparse.Namespace) -> int:
    given = {f.name: getattr(args, f.name) for f in fields(task.LogicConfig)
             if getattr(args, f.name, None) is not None and f.name != "epochs"}
    if args.no_parens:
        given["keep_parens"] = False
    # with --resume the options given must agree with the checkpoint's (epochs may grow)
    config = None if args.resume else task.LogicConfig(**given)
    status = task.train(args.out, config, resume=args.resume, resume_overrides=given, epochs=args.epochs,
                        max_minutes=args.max_minutes, max_steps=args.max_steps, device=args.device,
                        progress=not args.quiet and sys.stderr.isatty(), overwrite=args.overwrite)
    return 130 if status == "interrupted" else 0


def run_eval(args: argparse.Namespace) -> int:
    if args.label and len(args.label) != len(args.runs):
        raise UserError(f"{len(args.label)} --label for {len(args.runs)} run directories")
    labels = args.label or [None] * len(args.runs)
    results = [task.evaluate_run(r, limit=args.limit, device=args.device, label=lab)
               for r, lab in zip(args.runs, labels)]
    if args.plot:
        path = task.plot_results(results, args.plot)
        print(f"plot written to {path}", file=sys.stderr)
    if args.json:
        print(json.dumps(results, indent=2))
    else:
        print(task.format_table(results))
    return 0
