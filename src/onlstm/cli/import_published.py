"""``onlstm import-published``: a published ON-LSTM checkpoint as a model folder (argument parsing only)."""

from __future__ import annotations

import argparse
import json

from ..tasks import import_published as task
from . import argtypes


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "import-published", help="turn a checkpoint of the published ON-LSTM code into a model folder",
        description=("Read a checkpoint saved by the published main.py (yikangshen/Ordered-Neurons: "
                     "[model, criterion, optimizer]) and its corpus.<md5>.data vocabulary with a restricted "
                     "unpickler that runs nothing from the files, and write a model folder for evaluate, parse, "
                     "generate. The weights are copied unchanged; the model keeps the published DropConnect "
                     "convention (docs/spec.md §4). Untied, split-softmax and non-ON-LSTM checkpoints are refused."))
    p.add_argument("checkpoint", metavar="CHECKPOINT", help="the file main.py wrote with --save")
    p.add_argument("--corpus", required=True, metavar="CORPUS_FILE",
                   help="the corpus.<md5>.data file main.py cached beside it (holds the vocabulary)")
    p.add_argument("--out", required=True, metavar="DIR", help="model folder to write (new or empty)")
    p.add_argument("--parse-layer", type=argtypes.positive_int, default=None, metavar="N",
                   help="layer `parse` uses by default (1-based; default: the middle one)")
    p.add_argument("--overwrite", action="store_true",
                   help="write into --out even if it holds another model or other files (the model's own file "
                        "names are replaced, other files are kept); an earlier import is replaced without it")
    p.add_argument("--force", action="store_true", dest="overwrite", help=argparse.SUPPRESS)  # the old name
    p.add_argument("--json", action="store_true", help="print the summary as JSON")
    p.set_defaults(func=run)


def run(args) -> int:
    summary = task.import_published(args.checkpoint, args.corpus, args.out, args.parse_layer, args.overwrite)
    if args.json:
        print(json.dumps(summary, indent=2))
    else:
        sizes = "-".join(str(n) for n in summary["layer_sizes"])
        print(f"wrote {summary['out']}: ON-LSTM {sizes}, chunk size {summary['chunk_size']}, "
              f"{summary['vocab_size']} words, {summary['parameters']:,} parameters, DropConnect {summary['wdrop']} "
              f"(published convention); try `onlstm evaluate {summary['out']}`")
    return 0
