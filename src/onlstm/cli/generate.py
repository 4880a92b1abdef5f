"""``onlstm generate``: sample text from a language model (argument parsing only)."""

from __future__ import annotations

from ..tasks.lm import generate
from .common import add_model_argument, load_model


def register(subparsers) -> None:
    p = subparsers.add_parser("generate", help="sample a continuation of a prompt",
                              description="Sample words from a language model after a prompt.")
    add_model_argument(p, positional=True)
    p.add_argument("--prompt", default="", help="text to continue (tokenized like the training data)")
    p.add_argument("--tokens", type=int, default=50, help="number of tokens to sample")
    p.add_argument("--temperature", type=float, default=1.0, help="softmax temperature (> 0)")
    p.add_argument("--top-k", type=int, default=None, help="sample among the K most likely tokens only")
    p.add_argument("--seed", type=int, default=0, help="random seed")
    p.set_defaults(func=run)


def run(args) -> int:
    model, _ = load_model(args.model)
    words = generate(model, args.prompt, args.tokens, args.temperature, args.top_k, args.seed)
    text = " ".join("\n" if w == "<eos>" else w for w in words).replace(" \n ", "\n")
    print((args.prompt + " " if args.prompt else "") + text)
    return 0
