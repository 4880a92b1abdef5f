"""``onlstm evaluate``: perplexity of a language model (argument parsing only)."""

from __future__ import annotations

import json

from ..tasks.lm import evaluate_model
from . import argtypes
from .common import add_model_argument, load_model


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "evaluate", help="perplexity of a language model on a split or a text file",
        description=("Perplexity as the paper measures it: the whole text as one sequence "
                     "(batch 1), state carried across windows; also bits per token."))
    add_model_argument(p, positional=True)
    p.add_argument("--split", default="test", help="test, valid, train, or the path of a text FILE")
    p.add_argument("--data", help="data folder for --split test|valid|train (default: the model's training data, "
                                  "else the bundled PTB)")
    p.add_argument("--batch-size", type=argtypes.positive_int, default=1, help="evaluation batch size (the paper: 1)")
    p.add_argument("--bptt", type=argtypes.positive_int, default=70, help="window length")
    p.add_argument("--json", action="store_true", help="print JSON")
    p.set_defaults(func=run)


def run(args) -> int:
    model, folder = load_model(args.model)
    data = args.data
    if data is None:
        data = (model.training_info or {}).get("data")
    result = evaluate_model(model, args.split, data, args.batch_size, args.bptt)
    result["model"] = str(folder)
    if args.json:
        print(json.dumps(result, indent=2))
    else:
        print(f"{result['source']}: {result['tokens']} tokens ({result['unk_tokens']} <unk>), "
              f"loss {result['loss']:.4f}, perplexity {result['perplexity']:.2f}, "
              f"{result['bits_per_token']:.3f} bits/token")
    return 0
