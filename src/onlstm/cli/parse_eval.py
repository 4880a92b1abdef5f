"""``onlstm parse-eval``: score unsupervised trees on a Penn-Treebank-style treebank.

Argument parsing and printing only; the work is in :mod:`onlstm.parse_eval`.
"""

from __future__ import annotations

import argparse
import json
import sys

from ..tasks import parse_eval as task
from ..errors import UserError
from ..metrics import BASELINE_NAMES
from .common import add_model_argument, load_model

def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "parse-eval",
        help="score unsupervised constituency trees against a treebank (SPEC §3)",
        description=(
            "Score the trees of a model's layers and of the baselines (left- and "
            "right-branching, balanced, seeded random) against Penn-Treebank-style gold "
            "trees: sentence-level F1 (the papers' number), corpus F1, precision, recall, "
            "recall per constituent label and mean tree depth. Punctuation is removed, "
            "words are lower-cased with digits replaced by N, unary chains are collapsed."
        ),
    )
    parser.add_argument(
        "treebank",
        nargs="*",
        metavar="TREEBANK",
        help="bracketed .mrg files, folders or glob patterns, or Sinica ICG files (default: the "
        "bundled NLTK 10%% WSJ sample, 3,914 sentences; with --format sinica the bundled Sinica "
        "sample, 10,000 trees)",
    )
    parser.add_argument(
        "--format",
        choices=["ptb", "sinica"],
        default=None,
        help="treebank notation: ptb (bracketed) or sinica (ICG; Traditional words read by the "
        "model in Simplified form via OpenCC t2s, punctuation = POS ending in CATEGORY); "
        "default: sinica for .icg/.icg.gz files or text starting '#n:n.[id]', else ptb",
    )
    parser.add_argument(
        "--max-length",
        type=int,
        metavar="N",
        help="only sentences of at most N words after preprocessing (10 for WSJ10)",
    )
    parser.add_argument("--json", action="store_true", help="print the results as JSON")
    parser.add_argument(
        "--save-trees",
        metavar="FILE",
        help="write the predicted trees, bracketed, one per line in the gold order; with "
        "several systems one file each, named FILE with the system inserted "
        "(trees.txt -> trees.right.txt)",
    )
    parser.add_argument(
        "--baselines-only", action="store_true", help="score the baselines only (no model)"
    )
    parser.add_argument(
        "--baseline",
        action="append",
        choices=BASELINE_NAMES,
        metavar="NAME",
        help=f"score only this baseline (repeatable; one of {', '.join(BASELINE_NAMES)}; "
        "default: all four)",
    )
    add_model_argument(parser)
    parser.add_argument("--decoder", choices=["greedy", "split"], default="greedy",
                        help="tree decoder for the model's distances (default: greedy, the published one)")
    parser.add_argument("--batch-size", type=int, default=64, help="sentences per padded batch")
    parser.add_argument(
        "--seed", type=int, default=0, help="seed of the random baseline (default: 0)"
    )
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    if args.baselines_only and args.model is not None:
        raise UserError("--baselines-only and --model exclude each other")
    model = None if args.baselines_only else load_model(args.model)[0]
    names = list(dict.fromkeys(args.baseline)) if args.baseline else list(BASELINE_NAMES)
    sentences = task.load_sentences(
        args.treebank, max_length=args.max_length, progress=sys.stderr.isatty(), format=args.format
    )
    systems = {}
    if model is not None:
        systems.update(task.model_systems(model, sentences, args.decoder, args.batch_size,
                                          progress=sys.stderr.isatty()))
    systems.update(task.baseline_systems(sentences, names, seed=args.seed))
    report = task.build_report(
        sentences,
        systems,
        treebank=task.describe_treebank(args.treebank, args.format),
        max_length=args.max_length,
        seed=args.seed,
    )
    if args.save_trees:
        written = task.save_trees(args.save_trees, systems)
        for path in written:
            print(f"trees written to {path}", file=sys.stderr)
    if args.json:
        print(json.dumps(report.to_dict(), indent=2))
    else:
        print(task.format_table(report))
    return 0
