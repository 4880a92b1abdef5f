"""Where the time of one ON-LSTM step goes (torch profiler), grouped into the parts that
matter for speed: per-step products, whole-sequence products, DropConnect, weight packing,
copies, the fused native steps with the Python time loop, the rest.

    python benchmarks/profile_recurrence.py                 # paper size, training and evaluation
    python benchmarks/profile_recurrence.py --config small --top 15
"""

from __future__ import annotations

import argparse
from collections import defaultdict

import torch
from torch.profiler import ProfilerActivity, profile

from recurrence import CONFIGS, OursStack, describe


def _category(name: str, shapes, batch: int) -> str:
    if name == "mkldnn::_linear_pointwise" or name in ("aten::mm", "aten::addmm", "aten::addmm_"):
        rows = shapes[0][0] if shapes and shapes[0] else 0
        return "per-step products" if rows <= batch else "whole-sequence products"
    if name in ("aten::uniform_", "aten::ge", "_KeptWeight", "_KeptWeightBackward", "aten::where"):
        return "DropConnect (draw, compare, apply)"
    if name == "mkldnn::_reorder_linear_weight":
        return "packing recurrent weights"
    if name in ("aten::copy_", "aten::cat", "aten::clone", "aten::contiguous"):
        return "copies"
    if name in ("Recurrence", "RecurrenceBackward"):
        return "fused native steps + Python time loop"
    return "other"


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--config", choices=sorted(CONFIGS), default="paper")
    parser.add_argument("--top", type=int, default=12, help="also list the N most expensive ops (by input shape)")
    parser.add_argument("--threads", type=int, default=None)
    args = parser.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    cfg = CONFIGS[args.config]
    torch.manual_seed(0)
    model = OursStack(cfg["sizes"], cfg["chunk"])
    x = torch.randn(cfg["bptt"], cfg["batch"], cfg["sizes"][0])
    print(describe("cpu") + f", {torch.get_num_threads()} threads, config {args.config}")
    for mode in ("train", "eval"):
        for _ in range(2):  # warm-up (packing caches, the kernel library)
            model.zero_grad(set_to_none=True)
            model.train(mode == "train")
            if mode == "train":
                model(x).sum().backward()
            else:
                with torch.no_grad():
                    model(x)
        with profile(activities=[ProfilerActivity.CPU], record_shapes=True) as prof:
            model.zero_grad(set_to_none=True)
            if mode == "train":
                model(x).sum().backward()
            else:
                with torch.no_grad():
                    model(x)
        events = prof.key_averages(group_by_input_shape=True)
        total = sum(e.self_cpu_time_total for e in events)
        parts = defaultdict(float)
        for e in events:
            parts[_category(e.key, e.input_shapes, cfg["batch"])] += e.self_cpu_time_total
        print(f"\n{mode} step: {total / 1e3:.1f} ms of CPU time (self times, profiler overhead included)")
        for name, us in sorted(parts.items(), key=lambda kv: -kv[1]):
            print(f"  {name:<40} {us / 1e3:8.1f} ms  {100 * us / total:5.1f} %")
        print(f"  top {args.top} ops by input shape:")
        for e in sorted(events, key=lambda e: -e.self_cpu_time_total)[: args.top]:
            print(f"    {e.key:<32} {e.self_cpu_time_total / 1e3:8.1f} ms  x{e.count:<4} {str(e.input_shapes)[:80]}")


if __name__ == "__main__":
    main()
