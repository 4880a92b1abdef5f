"""Speed of the ON-LSTM recurrence against torch.nn.LSTM and a straightforward ON-LSTM.

Measures, in one run and interleaved round by round (so that machine noise hits all of
them alike), the median time of:

- ``onlstm``: this package's ``ONLSTM`` layers (DropConnect on the recurrent weights);
- ``nn.LSTM``: ``torch.nn.LSTM`` layers of the same sizes, with the same DropConnect
  (weight-drop, as AWD-LSTM) and locked dropout — the same regularisation as ours;
- ``nn.LSTM (plain)``: the same without any dropout;
- ``straightforward``: an ON-LSTM written as the published code is (a Python loop of small
  ops per step, autograd through every step, Bernoulli DropConnect mask, the evaluation
  weight rescaled at every step).

A training step is forward + backward of the recurrence stack alone (a sum of the outputs as
the loss); an evaluation step is a forward under ``torch.no_grad()``. Locked dropout (0.3)
between layers in training for all but the plain LSTM.

    python benchmarks/recurrence.py                 # paper size: 400-1150-1150-400, chunk 10, batch 20, bptt 70
    python benchmarks/recurrence.py --config small  # 200-256-256-200, chunk 8, batch 32, bptt 35
    python benchmarks/recurrence.py --device cuda

It prints the CPU model and the backend onlstm.gemm chose for the whole-sequence products.
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch
import torch.nn.functional as F
from torch import nn

from onlstm import ONLSTM
from machine import cpu_model


def describe(device: str) -> str:
    try:
        from onlstm import gemm
        backend = gemm.backend(torch.float32, device)
    except ImportError:  # a version before onlstm.gemm (timing an older checkout)
        backend = "default (no onlstm.gemm in this version)"
    return f"machine: {cpu_model()}; big products (float32): {backend}"
from onlstm.layer import drop_connect

CONFIGS = {
    "paper": dict(sizes=[400, 1150, 1150, 400], chunk=10, batch=20, bptt=70),
    "small": dict(sizes=[200, 256, 256, 200], chunk=8, batch=32, bptt=35),
}
DROPCONNECT, LOCKED = 0.45, 0.3


def locked_dropout(x, p, training):
    if not training or p == 0:
        return x
    mask = x.new_empty(1, x.shape[1], x.shape[2]).bernoulli_(1 - p) / (1 - p)
    return x * mask


class OursStack(nn.Module):
    def __init__(self, sizes, chunk):
        super().__init__()
        self.layers = nn.ModuleList(
            ONLSTM(sizes[k], sizes[k + 1], chunk_size=chunk, dropconnect=DROPCONNECT) for k in range(len(sizes) - 1)
        )

    def forward(self, x):
        for k, layer in enumerate(self.layers):
            x, _ = layer(x)
            if k < len(self.layers) - 1:
                x = locked_dropout(x, LOCKED, self.training)
        return x


class LSTMStack(nn.Module):
    """nn.LSTM layers with AWD-LSTM's weight-drop (via functional_call) and locked dropout."""

    def __init__(self, sizes, regularise=True):
        super().__init__()
        self.layers = nn.ModuleList(nn.LSTM(sizes[k], sizes[k + 1]) for k in range(len(sizes) - 1))
        self.regularise = regularise

    def forward(self, x):
        for k, layer in enumerate(self.layers):
            if self.regularise and self.training:
                params = dict(layer.named_parameters())
                w = params["weight_hh_l0"]
                params["weight_hh_l0"] = drop_connect(w, DROPCONNECT, True)  # the same mask code as ours
                x, _ = torch.func.functional_call(layer, params, (x,))
            else:
                x, _ = layer(x)
            if self.regularise and k < len(self.layers) - 1:
                x = locked_dropout(x, LOCKED, self.training)
        return x


class StraightforwardCell(nn.Module):
    """ON-LSTM as the published code writes it: per-step ops, autograd through each."""

    def __init__(self, d, n, chunk):
        super().__init__()
        self.n, self.chunk, self.m = n, chunk, n // chunk
        G = 4 * n + 2 * self.m
        self.ih = nn.Linear(d, G)
        self.hh = nn.Linear(n, G)

    def sample_mask(self):
        mask = self.hh.weight.new_empty(self.hh.weight.shape, dtype=torch.bool).bernoulli_(DROPCONNECT)
        self._weight = self.hh.weight.masked_fill(mask, 0.0)

    def forward(self, x):
        T, B, _ = x.shape
        proj = self.ih(x)
        h = c = x.new_zeros(B, self.n)
        outs = []
        for t in range(T):
            w = self._weight if self.training else self.hh.weight * (1 - DROPCONNECT)
            g = proj[t] + F.linear(h, w, self.hh.bias)
            a_i, a_f = g[:, : 2 * self.m].chunk(2, 1)
            o, ch, i, f = g[:, 2 * self.m :].view(B, 4 * self.m, self.chunk).chunk(4, 1)
            mi = 1.0 - torch.cumsum(F.softmax(a_i, -1), -1)
            mf = torch.cumsum(F.softmax(a_f, -1), -1)
            mi, mf = mi[:, :, None], mf[:, :, None]
            w_ = mf * mi
            f = torch.sigmoid(f) * w_ + (mf - w_)
            i = torch.sigmoid(i) * w_ + (mi - w_)
            c = f * c.view(B, self.m, self.chunk) + i * torch.tanh(ch)
            h = torch.sigmoid(o) * torch.tanh(c)
            c, h = c.view(B, self.n), h.view(B, self.n)
            outs.append(h)
        return torch.stack(outs)


class StraightforwardStack(nn.Module):
    def __init__(self, sizes, chunk):
        super().__init__()
        self.cells = nn.ModuleList(StraightforwardCell(sizes[k], sizes[k + 1], chunk) for k in range(len(sizes) - 1))

    def forward(self, x):
        if self.training:
            for cell in self.cells:
                cell.sample_mask()
        for k, cell in enumerate(self.cells):
            x = cell(x)
            if k < len(self.cells) - 1:
                x = locked_dropout(x, LOCKED, self.training)
        return x


def _sync(device):
    if device.type == "cuda":
        torch.cuda.synchronize()


def time_train(model, x, device):
    model.train()
    _sync(device)
    t0 = time.perf_counter()
    model(x).sum().backward()
    _sync(device)
    return time.perf_counter() - t0


def time_eval(model, x, device):
    model.eval()
    _sync(device)
    t0 = time.perf_counter()
    with torch.no_grad():
        model(x)
    _sync(device)
    return time.perf_counter() - t0


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--config", choices=sorted(CONFIGS), default="paper")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--rounds", type=int, default=7, help="timed rounds per implementation (median reported)")
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--threads", type=int, default=None, help="torch.set_num_threads (default: torch's)")
    parser.add_argument("--skip-straightforward", action="store_true")
    args = parser.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    cfg = CONFIGS[args.config]
    torch.manual_seed(0)
    models = {
        "onlstm": OursStack(cfg["sizes"], cfg["chunk"]),
        "nn.LSTM": LSTMStack(cfg["sizes"]),
        "nn.LSTM (plain)": LSTMStack(cfg["sizes"], regularise=False),
    }
    if not args.skip_straightforward:
        models["straightforward"] = StraightforwardStack(cfg["sizes"], cfg["chunk"])
    models = {k: m.to(device) for k, m in models.items()}
    x = torch.randn(cfg["bptt"], cfg["batch"], cfg["sizes"][0], device=device)
    times = {(name, mode): [] for name in models for mode in ("train", "eval")}
    for r in range(args.warmup + args.rounds):
        for name, model in models.items():
            for mode, fn in (("train", time_train), ("eval", time_eval)):
                model.zero_grad(set_to_none=True)
                t = fn(model, x, device)
                if r >= args.warmup:
                    times[(name, mode)].append(t)
    print(describe(str(device)))
    print(f"config {args.config}: sizes {'-'.join(map(str, cfg['sizes']))}, chunk {cfg['chunk']}, "
          f"batch {cfg['batch']}, bptt {cfg['bptt']}, DropConnect {DROPCONNECT}, device {device}, "
          f"threads {torch.get_num_threads()}, torch {torch.__version__}, {args.rounds} rounds (median)")
    print(f"{'implementation':<18} {'train ms':>9} {'eval ms':>9} {'vs nn.LSTM (same drop)':>23} "
          f"{'vs nn.LSTM (plain)':>19}")
    med = {key: statistics.median(v) for key, v in times.items()}
    for name in models:
        tr, ev = med[(name, "train")], med[(name, "eval")]
        same = f"{tr / med[('nn.LSTM', 'train')]:.2f}x / {ev / med[('nn.LSTM', 'eval')]:.2f}x"
        plain = f"{tr / med[('nn.LSTM (plain)', 'train')]:.2f}x / {ev / med[('nn.LSTM (plain)', 'eval')]:.2f}x"
        print(f"{name:<18} {tr * 1e3:9.1f} {ev * 1e3:9.1f} {same:>23} {plain:>19}")
    print("(ratios: train / eval time against nn.LSTM with the same DropConnect + locked dropout, and without)")
    if "straightforward" in models:
        sf = {mode: statistics.median(times[("straightforward", mode)]) for mode in ("train", "eval")}
        ours = {mode: statistics.median(times[("onlstm", mode)]) for mode in ("train", "eval")}
        print(f"onlstm speed-up over straightforward: train {sf['train'] / ours['train']:.2f}x, "
              f"eval {sf['eval'] / ours['eval']:.2f}x")


if __name__ == "__main__":
    main()
