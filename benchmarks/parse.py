"""Batched parsing vs one sentence at a time, in one run.

Parses the same sentences (from the bundled treebank sample, or random words) with
``--batch-size`` sentences per padded batch and with a loop over single sentences, and
prints sentences per second and the ratio.

    python benchmarks/parse.py --model runs/cpu-onlstm          # a trained model
    python benchmarks/parse.py                                  # the bundled model, else a random paper-size one
    python benchmarks/parse.py --random-model --sizes 400 1150 1150 400
"""

from __future__ import annotations

import argparse
import time

import torch

from onlstm.tasks import parse as P
from onlstm.text import Vocabulary
from onlstm.lm import LanguageModel, LMConfig
from onlstm.bundled import default_model_path
from onlstm.treebank import load_treebank


def random_model(sizes, chunk):
    torch.manual_seed(0)
    vocab = Vocabulary([f"w{i}" for i in range(9998)])
    cfg = LMConfig(vocab_size=len(vocab), emb_size=sizes[0], hidden_sizes=list(sizes[1:]), chunk_size=chunk)
    return LanguageModel(cfg, vocab).eval()


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", help="model folder (default: the bundled model)")
    ap.add_argument("--random-model", action="store_true", help="a randomly initialised model of --sizes")
    ap.add_argument("--sizes", type=int, nargs="+", default=[400, 1150, 1150, 400])
    ap.add_argument("--chunk", type=int, default=10)
    ap.add_argument("--sentences", type=int, default=256, help="how many sentences")
    ap.add_argument("--batch-size", type=int, default=64)
    ap.add_argument("--threads", type=int, default=None)
    args = ap.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    if args.random_model or (args.model is None and default_model_path() is None):
        model, name = random_model(args.sizes, args.chunk), f"random {'-'.join(map(str, args.sizes))}"
    else:
        path = args.model or default_model_path()
        model, name = LanguageModel.from_pretrained(path), str(path)
    sents = [s.words for s in load_treebank(None)][: args.sentences]
    n_tokens = sum(len(s) for s in sents)
    P.parse(model, sents[:4], batch_size=4)  # warm-up
    t0 = time.perf_counter()
    batched = P.parse(model, sents, batch_size=args.batch_size)
    t_batched = time.perf_counter() - t0
    t0 = time.perf_counter()
    single = [P.parse(model, [s], batch_size=1)[0] for s in sents]
    t_single = time.perf_counter() - t0
    same = all(a.tree == b.tree for a, b in zip(batched, single))
    print(f"model {name}; {len(sents)} sentences from the bundled WSJ sample ({n_tokens / len(sents):.1f} words on "
          f"average); torch {torch.__version__}, {torch.get_num_threads()} threads")
    print(f"{'mode':<22} {'seconds':>8} {'sentences/s':>12}")
    print(f"{'one at a time':<22} {t_single:8.2f} {len(sents) / t_single:12.1f}")
    print(f"{f'batched ({args.batch_size})':<22} {t_batched:8.2f} {len(sents) / t_batched:12.1f}")
    print(f"speed-up: {t_single / t_batched:.1f}x   (same trees: {same})")


if __name__ == "__main__":
    main()
