"""Does the label-free layer choice (onlstm.tasks.parse_eval.suggest_layer) pick the layer
with the best sentence F1? (issue 15; maintainers only)

    python scripts/layer_choice.py MODEL [MODEL ...] [--format sinica] [--max-length N]

For each model (bundled name or folder): per layer, the sentence F1 against the gold trees
(greedy decoder over d_f) and the relative spread of d_f; then the suggested and the best layer.
"""

from __future__ import annotations

import argparse

import torch

from onlstm.bundled import model_names, model_path
from onlstm.lm import LanguageModel
from onlstm.metrics import evaluate_systems
from onlstm.tasks.parse_eval import decode_systems, load_sentences, model_distances, relative_spread, suggest_layer


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("models", nargs="+")
    parser.add_argument("--format", choices=["ptb", "sinica"])
    parser.add_argument("--max-length", type=int)
    args = parser.parse_args(argv)
    torch.set_grad_enabled(False)
    sentences = load_sentences(None, max_length=args.max_length, format=args.format)
    for name in args.models:
        model = LanguageModel.from_pretrained(model_path(name) if name in model_names() else name)
        d = [pair[0] for pair in model_distances(model, sentences)]
        scores = evaluate_systems(sentences, decode_systems(sentences, d, "greedy", model.config.direction))
        f1 = [scores[f"layer {k + 1}"].sentence_f1 for k in range(d[0].shape[0])]
        spread = relative_spread(d)
        best, chosen = max(range(len(f1)), key=f1.__getitem__), suggest_layer(d)
        cells = "  ".join(f"L{k + 1} F1 {100 * f:.1f} spread {s:.3f}" for k, (f, s) in enumerate(zip(f1, spread)))
        print(f"{name}: {cells} | suggested layer {chosen + 1}, best layer {best + 1}"
              f"{' (agree)' if best == chosen else ''}")


if __name__ == "__main__":
    main()
