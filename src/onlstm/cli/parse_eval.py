"""``onlstm parse-eval``: score unsupervised trees on a Penn-Treebank-style treebank.

Argument parsing and printing only; the work is in :mod:`onlstm.parse_eval`.
"""

from __future__ import annotations

import argparse
import json
import sys

from ..tasks import parse_eval as task
from ..tasks import parse_show
from ..tasks.parse import check_bidirectional
from ..errors import UserError
from ..metrics import BASELINE_NAMES
from . import argtypes
from .common import add_backward_model_argument, add_model_argument, load_model

def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "parse-eval",
        help="score unsupervised constituency trees against a treebank (docs/spec.md §3)",
        description=(
            "Score the trees of a model's layers and of the baselines (left- and "
            "right-branching, balanced, seeded random) against Penn-Treebank-style gold "
            "trees (docs/spec.md §3): sentence-level F1 (the papers' number); corpus F1, "
            "precision and recall with the whole-sentence span left out and counted "
            "(EVALB-style, as the published evaluation); recall per constituent label, "
            "whole-sentence constituents left out and counted; average word depth (the "
            "paper's \"depth\") and tree height. Punctuation is removed, words are "
            "lower-cased with digits replaced by N, unary chains are collapsed."
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
        type=argtypes.positive_int,
        metavar="N",
        help="only sentences of at most N words after preprocessing (10 for WSJ10)",
    )
    parser.add_argument("--json", action="store_true", help="print the results as JSON")
    parser.add_argument(
        "--save-trees",
        metavar="FILE",
        help="after the results are printed, write the predicted trees, bracketed, one per "
        "line in the gold order; with several systems one file each, named FILE with the "
        "system inserted (trees.txt -> trees.right.txt); the gold trees (preprocessed, "
        "unlabeled) go to trees.gold.txt",
    )
    parser.add_argument(
        "--show",
        type=argtypes.positive_int,
        metavar="N",
        help="for every N-th sentence print its words with the d_f and d_i distances of every "
        "layer, the gold and a predicted tree drawn side by side, and each system's "
        "precision / recall / F1 on it (in the JSON as \"shown\" with --json)",
    )
    parser.add_argument(
        "--show-system",
        metavar="NAME",
        help="the system whose tree --show draws beside the gold one (default: the layer the "
        "model's config recommends (parse_layer), else layer 2, else layer 1, else right)",
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
    add_backward_model_argument(parser)
    parser.add_argument("--decoder", choices=["greedy", "split"], default="greedy",
                        help="tree decoder for the model's distances (default: greedy, the published one)")
    parser.add_argument("--distance", choices=list(task.DISTANCES), default="forget",
                        help="which distances decode the model's trees: forget (d_f = 1 - mean of the master "
                        "forget gate, the paper's; default) or input (d_i = mean of the master input gate); "
                        "docs/spec.md §2")
    parser.add_argument("--batch-size", type=argtypes.positive_int, default=64, help="sentences per padded batch")
    parser.add_argument(
        "--seed", type=argtypes.seed, default=0, help="seed of the random baseline (default: 0)"
    )
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    if args.baselines_only and args.model is not None:
        raise UserError("--baselines-only and --model exclude each other")
    if args.show_system is not None and args.show is None:
        raise UserError("--show-system needs --show N")
    if args.baselines_only and args.backward_model is not None:
        raise UserError("--baselines-only and --backward-model exclude each other")
    model = None if args.baselines_only else load_model(args.model)[0]
    backward = None if args.backward_model is None else load_model(args.backward_model, "--backward-model")[0]
    if backward is not None:  # checked before the long part
        check_bidirectional(model, backward)
    names = list(dict.fromkeys(args.baseline)) if args.baseline else list(BASELINE_NAMES)
    if args.show_system is not None:  # checked before the long part
        layers = [f"layer {k + 1}" for k in range(len(model.rnns))] + ["mean"] if model is not None else []
        parse_show.default_shown_system(layers + names, args.show_system)
    sentences = task.load_sentences(
        args.treebank, max_length=args.max_length, progress=sys.stderr.isatty(), format=args.format
    )
    systems = {}
    distances = None
    if model is not None:
        distances = task.model_distances(model, sentences, args.batch_size, progress=sys.stderr.isatty(),
                                         backward_model=backward)
        chosen = [pair[task.DISTANCES.index(args.distance)] for pair in distances]
        systems.update(task.decode_systems(sentences, chosen, args.decoder, model.config.direction))
    systems.update(task.baseline_systems(sentences, names, seed=args.seed))
    shown = []
    if args.show is not None:
        drawn = args.show_system
        if drawn is None and model is not None and model.config.parse_layer is not None:
            drawn = f"layer {model.config.parse_layer}"  # the layer the model's card recommends
        shown = parse_show.collect_shown(sentences, systems, args.show, distances,
                                         args.distance if model is not None else None, drawn)
    report = task.build_report(
        sentences,
        systems,
        treebank=task.describe_treebank(args.treebank, args.format),
        max_length=args.max_length,
        seed=args.seed,
        distance=args.distance if model is not None else None,
        decoder=args.decoder if model is not None else None,
        backward_model=args.backward_model,
    )
    # Print the results first: a failure to write the trees must not lose them.
    if args.json:
        data = report.to_dict()
        if args.show is not None:
            data["shown"] = [item.to_dict() for item in shown]
        print(json.dumps(data, indent=2, ensure_ascii=False))
    else:
        for item in shown:
            print(parse_show.format_shown(item))
            print()
        print(task.format_table(report))
    sys.stdout.flush()
    if args.save_trees:
        written = task.save_trees(args.save_trees, systems, gold=sentences)
        for path in written:
            print(f"trees written to {path}", file=sys.stderr)
    return 0
