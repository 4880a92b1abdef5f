"""``onlstm generate``: sample text from a language model (argument parsing and printing only).

Tokens are printed as they are sampled, so ``timeout``, Ctrl-C or ``| head`` keep what was
printed; ``<eos>`` starts a new line.
"""

from __future__ import annotations

import sys

from ..tasks.lm import sample_tokens
from ..training import StopRules
from . import argtypes
from .common import add_model_argument, load_model


def register(subparsers) -> None:
    p = subparsers.add_parser("generate", help="sample a continuation of a prompt",
                              description="Sample words from a language model after a prompt; each word is "
                                          "printed as soon as it is sampled.")
    add_model_argument(p, positional=True)
    p.add_argument("--prompt", default="",
                   help="text to continue, as typed (split and mapped to the vocabulary as parse does: "
                        "\"Didn't\" -> did n't)")
    p.add_argument("--tokens", type=argtypes.positive_int, default=50, help="number of tokens to sample")
    p.add_argument("--temperature", type=argtypes.positive_float, default=1.0, help="softmax temperature (> 0)")
    p.add_argument("--top-k", type=argtypes.positive_int, default=None,
                   help="sample among the K most likely tokens only")
    p.add_argument("--seed", type=argtypes.seed, default=0, help="random seed")
    p.set_defaults(func=run)


def run(args) -> int:
    model, _ = load_model(args.model)
    out = sys.stdout
    tokens = sample_tokens(model, args.prompt, args.tokens, args.temperature, args.top_k, args.seed)
    out.write(args.prompt)
    line_start = not args.prompt
    # a first Ctrl-C stops after the word being written (never half a word); a second one at once
    with StopRules() as stop:
        try:
            for word in tokens:
                if word == "<eos>":
                    out.write("\n")
                    line_start = True
                else:
                    out.write(("" if line_start else " ") + word)
                    line_start = False
                out.flush()
                if stop.interrupted:
                    raise KeyboardInterrupt
        finally:  # also on Ctrl-C: end the last line so the shell prompt starts on its own
            if not line_start:
                out.write("\n")
                out.flush()
    return 0
