"""Parsing F1 and perplexity against training time (issue 15; maintainers only)

    python scripts/training_curve.py RUN [RUN ...] [--json FILE]

For each training run folder made with ``onlstm train --keep-epochs true``: every kept
epoch's model (``RUN/epochs/NNN/``) parses the bundled WSJ sample (greedy decoder over d_f,
the published protocol); prints, per epoch, the training minutes and validation perplexity
from ``RUN/metrics.jsonl`` beside the sentence F1 of every layer and of the layers' mean, on
all sentences and on the WSJ10 part (at most 10 words). ``--json`` also writes the rows.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import torch

from onlstm.lm import LanguageModel
from onlstm.metrics import evaluate_systems
from onlstm.tasks.parse_eval import decode_systems, load_sentences, model_distances


def valid_records(run: Path) -> dict[int, dict]:
    """{epoch: the last validation record of that epoch} from the run's metrics.jsonl."""
    records = {}
    for line in (run / "metrics.jsonl").read_text().splitlines():
        r = json.loads(line)
        if r.get("kind") == "valid":
            records[r["epoch"]] = r
    return records


def f1_by_system(sentences, systems, keep) -> dict[str, float]:
    chosen = [s for s, k in zip(sentences, keep) if k]
    subset = {name: [t for t, k in zip(trees, keep) if k] for name, trees in systems.items()}
    return {name: round(100 * score.sentence_f1, 1) for name, score in evaluate_systems(chosen, subset).items()}


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("runs", nargs="+", type=Path)
    parser.add_argument("--json", type=Path, help="also write the rows to this file")
    args = parser.parse_args(argv)
    torch.set_grad_enabled(False)
    sentences = load_sentences(None)
    short = [len(s.words) <= 10 for s in sentences]
    rows = []
    for run in args.runs:
        valid = valid_records(run)
        for folder in sorted((run / "epochs").iterdir()):
            model = LanguageModel.from_pretrained(folder)
            epoch = model.training_info["epoch"]
            d = [pair[0] for pair in model_distances(model, sentences)]
            systems = decode_systems(sentences, d, "greedy", model.config.direction)
            row = dict(run=str(run), epoch=epoch, minutes=round(valid[epoch]["minutes"], 1),
                       valid_ppl=round(valid[epoch]["ppl"], 2), optimizer=valid[epoch].get("optimizer"),
                       f1=f1_by_system(sentences, systems, [True] * len(sentences)),
                       f1_wsj10=f1_by_system(sentences, systems, short))
            rows.append(row)
            layers = [k for k in row["f1"] if k.startswith("layer")] + ["mean"]
            print(f"{run.name} epoch {epoch:3d} {row['minutes']:7.1f} min  valid ppl {row['valid_ppl']:8.2f}  F1 "
                  + " / ".join(f"{row['f1'][k]:.1f}" for k in layers) + "  WSJ10 "
                  + " / ".join(f"{row['f1_wsj10'][k]:.1f}" for k in layers), flush=True)
    if args.json:
        args.json.write_text(json.dumps(rows, indent=1) + "\n")


if __name__ == "__main__":
    main()
