"""``onlstm syneval``: targeted syntactic evaluation of language models (parsing/printing only)."""

from __future__ import annotations

import json

from ..errors import UserError
from ..tasks import syneval as task
from . import argtypes
from .common import load_model


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "syneval", help="targeted syntactic evaluation (Marvin & Linzen 2018 minimal pairs)",
        description=("Score every minimal pair of the bundled Marvin & Linzen (2018) test set: an item is right "
                     "when the language model gives the grammatical sentence the higher total log-probability "
                     "(<eos> included, fresh state per sentence). Accuracy per construction and per group "
                     "(short-/long-term dependency, as in the ON-LSTM paper's Table 3). Several models are "
                     "reported side by side."))
    p.add_argument("models", nargs="*", metavar="MODEL", help="model folders (default: the bundled model)")
    p.add_argument("--label", action="append", default=None, help="display name of each MODEL, in order")
    p.add_argument("--constructions", nargs="+", metavar="NAME", help=f"subset of: {', '.join(task.construction_names())}")
    p.add_argument("--limit", type=argtypes.positive_int, default=None,
                   help="at most N items per construction (seeded subsample)")
    p.add_argument("--skip-unk", action="store_true",
                   help="drop items with a word outside the model's vocabulary (a PTB vocabulary lacks some test words)")
    p.add_argument("--batch-size", type=argtypes.positive_int, default=128, help="sentences per padded batch")
    p.add_argument("--per-construction", action="store_true", help="also print one row per construction file")
    p.add_argument("--json", action="store_true", help="print JSON")
    p.set_defaults(func=run)


def run(args) -> int:
    paths = args.models or [None]
    labels = args.label or []
    if labels and len(labels) != len(paths):
        raise UserError(f"{len(labels)} --label for {len(paths)} model(s): give one per model or none")
    results = {}
    for i, path in enumerate(paths):
        model, folder = load_model(path)
        name = labels[i] if labels else f"{folder.name} ({model.config.cell})"
        results[name] = task.evaluate(
            lambda sents: model.sentence_logprobs(sents, batch_size=args.batch_size),
            constructions=args.constructions, vocab=set(model.vocab.itos), skip_unk=args.skip_unk,
            batch_size=args.batch_size, limit=args.limit, progress=True)
    if args.json:
        print(json.dumps(results, indent=2))
    else:
        print(task.format_table(results, per_construction=args.per_construction))
    return 0
