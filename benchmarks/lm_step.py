"""Speed and peak memory of a whole language-model step: ON-LSTM against the same pipeline
with ``--cell lstm``, at the ``cpu`` and ``paper`` presets.

A training step is the recipe's (onlstm.tasks.lm.recipe): embedding with embedding dropout,
locked dropouts, the stack (DropConnect on the recurrent weights), the tied decoder,
cross-entropy + AR + TAR, backward, gradient clipping, the preset's optimiser step (SGD for
``paper``, Adam for ``cpu``), the hidden state carried to the next window. An evaluation
step is a forward of the same model in eval mode under ``no_grad`` with the evaluation
batch size, and the summed cross-entropy. The vocabulary is PTB's (10,000); the tokens are
random (the time does not depend on them).

Every measurement (preset, cell, train or eval) runs in its own subprocess, so that its peak
resident memory (``getrusage`` maxrss: model, optimiser state, activations, everything) is its
own; the subprocesses run one after another, round by round, so that machine noise hits all
configurations alike, and the ratios come from the same run.

    python benchmarks/lm_step.py                      # both presets, 6 timed steps each, 2 rounds
    python benchmarks/lm_step.py --presets cpu --steps 10
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import time

VOCAB = 10000


def _worker(preset: str, cell: str, mode: str, steps: int, warmup: int, seed: int) -> dict:
    import torch
    import torch.nn.functional as F
    from torch import nn

    from onlstm.lm import LanguageModel
    from onlstm.tasks.lm.config import PRESETS, TrainConfig
    from onlstm.tasks.lm.recipe import _make_optimizer

    cfg = TrainConfig(**{**PRESETS[preset], "cell": cell})
    torch.manual_seed(seed)
    model = LanguageModel(cfg.model_config(VOCAB))
    batch = cfg.batch_size if mode == "train" else cfg.eval_batch_size
    data = torch.randint(0, VOCAB, (cfg.bptt * (steps + warmup) + 1, batch))
    times = []
    if mode == "train":
        optimizer = _make_optimizer(cfg.optimizer, model.parameters(), cfg)
        params = list(model.parameters())
        hidden = model.init_hidden(batch)
        model.train()
        for k in range(steps + warmup):
            x, y = data[k * cfg.bptt:(k + 1) * cfg.bptt], data[k * cfg.bptt + 1:(k + 1) * cfg.bptt + 1]
            t0 = time.perf_counter()
            out = model(x, [tuple(t.detach() for t in h) for h in hidden])
            hidden = out.hidden
            raw = F.cross_entropy(out.logits.view(-1, VOCAB), y.reshape(-1))
            loss = raw + cfg.alpha * out.last_dropped.pow(2).mean()
            loss = loss + cfg.beta * (out.last_raw[1:] - out.last_raw[:-1]).pow(2).mean()
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            nn.utils.clip_grad_norm_(params, cfg.clip)
            loss.item()
            optimizer.step()
            if k >= warmup:
                times.append(time.perf_counter() - t0)
    else:
        model.eval()
        hidden = model.init_hidden(batch)
        with torch.no_grad():
            for k in range(steps + warmup):
                x, y = data[k * cfg.bptt:(k + 1) * cfg.bptt], data[k * cfg.bptt + 1:(k + 1) * cfg.bptt + 1]
                t0 = time.perf_counter()
                out = model(x, hidden)
                hidden = out.hidden
                F.cross_entropy(out.logits.view(-1, VOCAB), y.reshape(-1), reduction="sum").item()
                if k >= warmup:
                    times.append(time.perf_counter() - t0)
    return dict(times=times, tokens=cfg.bptt * batch, maxrss_mb=resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
                threads=torch.get_num_threads(), sizes=[cfg.emb_size] + list(cfg.hidden_sizes), batch=batch,
                bptt=cfg.bptt, optimizer=cfg.optimizer)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--presets", nargs="+", default=["cpu", "paper"], choices=["cpu", "paper", "tiny"])
    parser.add_argument("--steps", type=int, default=6, help="timed steps per subprocess (median reported)")
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--rounds", type=int, default=2, help="subprocesses per configuration, interleaved")
    parser.add_argument("--modes", nargs="+", default=["train", "eval"], choices=["train", "eval"])
    parser.add_argument("--worker", nargs=3, metavar=("PRESET", "CELL", "MODE"), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.worker:
        print(json.dumps(_worker(*args.worker, args.steps, args.warmup, seed=0)))
        return
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    from machine import cpu_model

    import onlstm
    try:
        from onlstm import gemm
        import torch
        backend = gemm.backend(torch.float32, "cpu")
    except ImportError:
        backend = "default (no onlstm.gemm in this version)"
    print(f"machine: {cpu_model()}; onlstm {onlstm.__version__} from {os.path.dirname(onlstm.__file__)}; "
          f"big products: {backend}")
    configs = [(p, c, m) for p in args.presets for m in args.modes for c in ("onlstm", "lstm")]
    results = {cfg: [] for cfg in configs}
    for _ in range(args.rounds):
        for cfg in configs:
            cmd = [sys.executable, os.path.abspath(__file__), "--worker", *cfg, "--steps", str(args.steps),
                   "--warmup", str(args.warmup)]
            proc = subprocess.run(cmd, capture_output=True, text=True)
            if proc.returncode != 0:
                raise SystemExit(f"{' '.join(cmd)} failed:\n{proc.stderr[-3000:]}")
            results[cfg].append(json.loads(proc.stdout.strip().splitlines()[-1]))
    first = next(iter(results.values()))[0]
    print(f"threads {first['threads']}, {args.steps} timed steps after {args.warmup} warm-up, {args.rounds} "
          f"subprocess(es) per row; tokens/s from the median step; peak RSS = max over the subprocesses")
    print(f"{'preset':<7} {'mode':<6} {'cell':<7} {'ms/step':>9} {'tokens/s':>9} {'peak MB':>8} "
          f"{'speed vs lstm':>14} {'memory vs lstm':>15}")
    for preset in args.presets:
        for mode in args.modes:
            rows = {}
            for cell in ("onlstm", "lstm"):
                runs = results[(preset, cell, mode)]
                step = statistics.median(t for r in runs for t in r["times"])
                rows[cell] = (step, runs[0]["tokens"] / step, max(r["maxrss_mb"] for r in runs), runs[0])
            for cell in ("onlstm", "lstm"):
                step, tps, mb, info = rows[cell]
                print(f"{preset:<7} {mode:<6} {cell:<7} {step * 1e3:9.1f} {tps:9.0f} {mb:8.0f} "
                      f"{tps / rows['lstm'][1]:13.2f}x {mb / rows['lstm'][2]:14.2f}x")
            info = rows["onlstm"][3]
            print(f"        ({preset}: sizes {'-'.join(map(str, info['sizes']))}, batch {info['batch']}, "
                  f"bptt {info['bptt']}, optimiser {info['optimizer']})")


if __name__ == "__main__":
    main()
