"""Test accuracy of logic runs by number of operators: the paper's table and figure.

The question of the task: trained on pairs with at most 6 operators, how does accuracy hold
up for 7 to 12 operators, never seen in training?
"""

from __future__ import annotations

from dataclasses import asdict
from pathlib import Path
from typing import Sequence

import torch

from .data import MAX_K, Encoded, SymbolTable, read_file
from .model import LogicClassifier, load_model


@torch.no_grad()
def accuracy(model: LogicClassifier, data: Encoded, batch_size: int = 512, device: str = "cpu") -> tuple[int, int]:
    """(correct, total) of the model on ``data`` (eval mode, restored afterwards)."""
    was_training = model.training
    model.eval()
    correct = 0
    for idx in data.epoch_batches(batch_size, None):
        p, pl, h, hl, y = data.batch(idx)
        logits = model(p.to(device), pl, h.to(device), hl)
        correct += int((logits.argmax(1).cpu() == y).sum())
    model.train(was_training)
    return correct, len(data)


def evaluate_by_ops(model: LogicClassifier, symbols: SymbolTable, keep_parens: bool, *, limit: int | None = None,
                    batch_size: int = 512, device: str = "cpu", data_dir: Path | None = None,
                    max_ops: int = 6) -> dict:
    """Test accuracy for every operator count k = 0..12 (at most ``limit`` pairs per file).

    Returns ``{"by_ops": {k: {"correct", "total", "accuracy"}}, "seen": ..., "unseen": ...}``
    where seen / unseen pool k <= max_ops and k > max_ops.
    """
    by_ops = {}
    for k in range(MAX_K + 1):
        data = Encoded(read_file(f"test{k}", data_dir, limit), symbols, keep_parens)
        c, n = accuracy(model, data, batch_size, device)
        by_ops[k] = {"correct": c, "total": n, "accuracy": c / n if n else None}

    def pool(ks):
        c = sum(by_ops[k]["correct"] for k in ks)
        n = sum(by_ops[k]["total"] for k in ks)
        return {"correct": c, "total": n, "accuracy": c / n if n else None}

    return {"by_ops": by_ops, "seen": pool(range(0, max_ops + 1)), "unseen": pool(range(max_ops + 1, MAX_K + 1))}


def evaluate_run(run_dir: str | Path, *, limit: int | None = None, device: str = "cpu",
                 label: str | None = None, batch_size: int = 512, data_dir: Path | None = None) -> dict:
    """Load a run's best model and compute its test accuracy by number of operators.

    Returns a JSON-able dict: label, run, cell, file used, epoch, valid_acc, config,
    ``by_ops`` (keys are operator counts as strings, for JSON), ``seen``, ``unseen``.
    """
    model, info = load_model(run_dir, device=device)
    cfg = model.config
    res = evaluate_by_ops(model, SymbolTable(info["vocab"]), cfg.keep_parens, limit=limit, batch_size=batch_size,
                          device=device, data_dir=data_dir, max_ops=cfg.max_ops)
    return {
        "label": label or Path(run_dir).resolve().name,
        "run": str(run_dir),
        "cell": cfg.cell,
        "weights": info["file"],
        "epoch": info.get("epoch", info.get("progress", {}).get("epoch")),
        "valid_acc": info.get("valid_acc"),
        "limit": limit,
        "config": asdict(cfg),
        "by_ops": {str(k): v for k, v in res["by_ops"].items()},
        "seen": res["seen"],
        "unseen": res["unseen"],
    }


def format_table(results: Sequence[dict]) -> str:
    """Accuracy by number of operators, one column per run (results of `evaluate_run`)."""
    if not results:
        return ""
    labels = [f"{r['label']} ({r['cell']})" if r["cell"] not in r["label"] else r["label"] for r in results]
    w = max(10, *(len(s) for s in labels)) + 2
    max_ops = results[0]["config"]["max_ops"]
    head = f"{'operators':>10s}{'pairs':>8s}" + "".join(f"{s:>{w}s}" for s in labels)
    lines = [head, "-" * len(head)]

    def acc(rec):
        return "-" if rec["accuracy"] is None else f"{100 * rec['accuracy']:.1f}"

    for k in range(MAX_K + 1):
        first = results[0]["by_ops"][str(k)]
        name = f"{k}" + ("+" if k == MAX_K else "") + ("" if k <= max_ops else " *")
        lines.append(f"{name:>10s}{first['total']:>8d}" + "".join(f"{acc(r['by_ops'][str(k)]):>{w}s}" for r in results))
    lines.append("-" * len(head))
    lines.append(f"{f'0-{max_ops}':>10s}{results[0]['seen']['total']:>8d}"
                 + "".join(f"{acc(r['seen']):>{w}s}" for r in results))
    lines.append(f"{f'{max_ops + 1}-{MAX_K}+':>10s}{results[0]['unseen']['total']:>8d}"
                 + "".join(f"{acc(r['unseen']):>{w}s}" for r in results))
    lines.append(f"accuracy in %; * = more operators than in training (k > {max_ops}); "
                 f"12+ = file test12 (12 or more operators)")
    return "\n".join(lines)


def plot_results(results: Sequence[dict], path: str | Path) -> Path:
    """Accuracy vs number of operators, one line per run (as the paper's figure)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 4))
    for r in results:
        ks = [k for k in range(1, MAX_K + 1) if r["by_ops"][str(k)]["accuracy"] is not None]
        ax.plot(ks, [100 * r["by_ops"][str(k)]["accuracy"] for k in ks], marker="o", label=r["label"])
    max_ops = results[0]["config"]["max_ops"] if results else 6
    ax.axvspan(0.5, max_ops + 0.5, color="0.9", zorder=0, label=f"trained on ≤ {max_ops}")
    ax.set_xlabel("number of operators")
    ax.set_ylabel("test accuracy (%)")
    ax.set_xticks(range(1, MAX_K + 1))
    ax.set_xlim(0.5, MAX_K + 0.5)
    ax.grid(True, alpha=0.3)
    ax.legend()
    fig.tight_layout()
    path = Path(path)
    fig.savefig(path, dpi=150)
    plt.close(fig)
    return path
