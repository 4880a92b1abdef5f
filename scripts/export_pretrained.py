"""Export a trained run folder as the bundled default model (maintainers only).

    python scripts/export_pretrained.py runs/cpu-onlstm --parse-layer 3 \
        --training-note "..." --out src/onlstm/resources/models/ptb-onlstm

Writes model.safetensors (float16 by default; loading casts back to float32), config.json
(with ``parse_layer``, the layer `onlstm parse` uses by default, and the training facts
given here) and vocab.json. With ``--check`` it measures the test perplexity of the run's
float32 model and of the exported one (batch 1, the paper's protocol) and refuses to export
when they differ by 0.5% or more: on the bundled PTB, or on ``--data`` (a folder with
test.txt[.gz], e.g. ``--data src/onlstm/resources/pku_199801`` for the Chinese model). The
model card (README.md in that folder) is written by hand.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
from pathlib import Path

import torch

from onlstm.lm import LanguageModel
from onlstm.tasks.lm import evaluate_model


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("run", help="training run folder (or any model folder)")
    p.add_argument("--out", default="src/onlstm/resources/models/ptb-onlstm")
    p.add_argument("--parse-layer", type=int, required=True, help="1-based default layer for parsing")
    p.add_argument("--dtype", choices=["float16", "float32"], default="float16")
    p.add_argument("--training-note", action="append", default=[], metavar="KEY=VALUE",
                   help="facts stored under config.json's training (hardware=..., minutes=...)")
    p.add_argument("--check", action="store_true", help="compare test perplexity before and after")
    p.add_argument("--data", default=None, metavar="DIR",
                   help="with --check: the folder whose test text is measured (default: the bundled PTB)")
    args = p.parse_args(argv)

    model = LanguageModel.from_pretrained(args.run)
    info = dict(model.training_info or {})
    for note in args.training_note:
        key, _, value = note.partition("=")
        info[key] = value
    progress = sys.stderr.isatty()
    before = evaluate_model(model, "test", args.data, progress=progress)["perplexity"] if args.check else None

    with tempfile.TemporaryDirectory() as tmp:
        staged = Path(tmp) / "model"
        model.config.parse_layer = args.parse_layer
        model.to(getattr(torch, args.dtype)).save_pretrained(staged, extra_config={"training": info})
        exported = LanguageModel.from_pretrained(staged)  # also validates parse_layer
        if args.check:
            after = evaluate_model(exported, "test", args.data, progress=progress)["perplexity"]
            change = abs(after - before) / before
            print(json.dumps(dict(float32=before, exported=after, dtype=args.dtype, relative_change=change)))
            if change >= 0.005:
                print(f"refusing: test perplexity moved by {100 * change:.2f}% (>= 0.5%)", file=sys.stderr)
                return 1
        out = Path(args.out)
        out.mkdir(parents=True, exist_ok=True)
        for name in ("model.safetensors", "config.json", "vocab.json"):
            shutil.copyfile(staged / name, out / name)
    print(f"exported to {out} ({(out / 'model.safetensors').stat().st_size / 1e6:.1f} MB weights)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
