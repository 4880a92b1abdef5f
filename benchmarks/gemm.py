"""MKL (torch.addmm / torch.mm) against oneDNN (torch.ops.mkldnn._linear_pointwise) on the
products of a training step, float32 on the CPU: the measurement behind onlstm.gemm's rule.

Each product is done as the two backends are used in a step: the default one as autograd's
``F.linear`` does it (``addmm(b, x, W^T)``, ``dY W``, ``dY^T X`` on transposed views), oneDNN
as ``onlstm.gemm`` does (the same views handed to ``_linear_pointwise``); the weight gradient
also through oneDNN's inner-product backward (``mkldnn_linear_backward_weights`` on
``to_mkldnn`` copies, the copies timed with it). Rounds alternate
between the backends; the median of each is reported in GF/s.

    python benchmarks/gemm.py                 # paper-size shapes (N = bptt 70 x batch 20 = 1400 rows)
    python benchmarks/gemm.py --rounds 15
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch

from machine import cpu_model

N = 70 * 20  # rows of a paper-size step
N_SMALL = 35 * 32


def _shapes():
    """(name, rows, in, out) of every whole-sequence product of a paper-size LM step."""
    return [
        ("proj 400->4830 (layer 1)", N, 400, 4830),
        ("proj 1150->4830 (layer 2)", N, 1150, 4830),
        ("proj 1150->1680 (layer 3)", N, 1150, 1680),
        ("decoder 400->10000", N, 400, 10000),
        ("small proj 256->1088", N_SMALL, 256, 1088),
    ]


def _ops(rows, k, out):
    g = torch.Generator().manual_seed(0)
    x = torch.randn(rows, k, generator=g)
    w = torch.randn(out, k, generator=g)
    b = torch.randn(out, generator=g)
    dy = torch.randn(rows, out, generator=g)
    lp = torch.ops.mkldnn._linear_pointwise
    flops = 2.0 * rows * k * out
    return flops, {
        "forward x W^T + b": (lambda: torch.addmm(b, x, w.t()), lambda: lp(x, w, b, "none", [], "")),
        "input grad dY W": (lambda: dy.mm(w), lambda: lp(dy, w.t(), None, "none", [], "")),
        # oneDNN as onlstm.gemm.mm_t does it: the narrower operand copied transposed
        "weight grad dY^T X": (lambda: dy.t().mm(x),
                               (lambda: lp(x.t(), dy.t(), None, "none", [], "").t()) if k <= out
                               else (lambda: lp(dy.t(), x.t(), None, "none", [], ""))),
        "weight grad, oneDNN ip-backward": (
            lambda: dy.t().mm(x),
            lambda: torch.ops.aten.mkldnn_linear_backward_weights(dy.to_mkldnn(), x.to_mkldnn(), w, False)[0]),
    }


def _time(fn):
    t0 = time.perf_counter()
    fn()
    return time.perf_counter() - t0


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=9)
    parser.add_argument("--threads", type=int, default=None)
    args = parser.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    print(f"machine: {cpu_model()}, {torch.get_num_threads()} threads, torch {torch.__version__}, "
          f"{args.rounds} rounds (median), float32")
    print(f"{'product':<46} {'MKL GF/s':>9} {'oneDNN GF/s':>12} {'oneDNN/MKL':>11}")
    ratios = []
    for name, rows, k, out in _shapes() + [("square 2048^3", 2048, 2048, 2048)]:
        flops, ops = _ops(rows, k, out)
        for what, (mkl, onednn) in ops.items():
            if name.startswith("square") and what != "forward x W^T + b":
                continue
            times = {"mkl": [], "onednn": []}
            for fn in (mkl, onednn, mkl, onednn):  # warm-up
                fn()
            for _ in range(args.rounds):
                times["mkl"].append(_time(mkl))
                times["onednn"].append(_time(onednn))
            gf = {key: flops / statistics.median(v) / 1e9 for key, v in times.items()}
            ratios.append(gf["onednn"] / gf["mkl"])
            label = f"{name}: {what}" if not name.startswith("square") else name
            print(f"{label:<46} {gf['mkl']:9.0f} {gf['onednn']:12.0f} {gf['onednn'] / gf['mkl']:10.2f}x")
    print(f"oneDNN/MKL over these products: geometric mean {statistics.geometric_mean(ratios):.2f}x, "
          f"min {min(ratios):.2f}x, max {max(ratios):.2f}x")


if __name__ == "__main__":
    main()
