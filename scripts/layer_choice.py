"""Can a layer be chosen without gold trees? (issue 15; maintainers only)

    python scripts/layer_choice.py MODEL [MODEL ...] [--format sinica] [--max-length N]

For each model (bundled name or folder), per layer: the sentence F1 against the gold trees
(greedy decoder over d_f; only to judge the rules), and four label-free scores, each a rule
"take the layer with the highest (or lowest) score":

- ``spread``: mean over sentences of the coefficient of variation of d_f (std / mean), lowest;
- ``agree-others``: mean sentence F1 of the layer's trees against each other layer's, highest;
- ``agree-mean``: sentence F1 against the trees of the layers' mean distance, highest;
- ``agree-right``: sentence F1 against right-branching trees, highest.

Prints the layer each rule picks beside the best layer by F1.
"""

from __future__ import annotations

import argparse
import statistics

import torch

from onlstm import trees as T
from onlstm.bundled import model_names, model_path
from onlstm.lm import LanguageModel
from onlstm.metrics import evaluate_systems, score_spans
from onlstm.tasks.parse_eval import decode_systems, load_sentences, model_distances


def _agreement(a, b):
    return statistics.mean(score_spans(x, y).f1 for x, y in zip(a, b))


def rule_scores(sentences, distances, systems):
    """{rule: (per-layer scores, pick)}; ``distances``: each sentence's (layers, T) d_f."""
    layers = distances[0].shape[0]
    names = [f"layer {k + 1}" for k in range(layers)]
    spans = {n: [T.spans(t) for t in systems[n]] for n in names + ["mean"]}
    right = [T.spans(T.right_branching(s.words)) for s in sentences]
    rows = [d for d in distances if d.shape[-1] >= 2]
    spread = torch.stack([d.std(-1) / (d.mean(-1).abs() + 1e-9) for d in rows]).mean(0).tolist()
    scores = {
        "spread": (spread, min),
        "agree-others": ([statistics.mean(_agreement(spans[n], spans[m]) for m in names if m != n) for n in names], max),
        "agree-mean": ([_agreement(spans[n], spans["mean"]) for n in names], max),
        "agree-right": ([_agreement(spans[n], right) for n in names], max),
    }
    return {rule: (values, pick(range(layers), key=values.__getitem__)) for rule, (values, pick) in scores.items()}


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
        systems = decode_systems(sentences, d, "greedy", model.config.direction)
        scores = evaluate_systems(sentences, systems)
        f1 = [scores[f"layer {k + 1}"].sentence_f1 for k in range(d[0].shape[0])]
        best = max(range(len(f1)), key=f1.__getitem__)
        print(f"{name}: sentence F1 by layer " + " / ".join(f"{100 * f:.1f}" for f in f1) + f", best layer {best + 1}")
        for rule, (values, pick) in rule_scores(sentences, d, systems).items():
            print(f"  {rule:13s} " + " / ".join(f"{v:.3f}" for v in values)
                  + f" -> layer {pick + 1}{' (agrees)' if pick == best else ''}")


if __name__ == "__main__":
    main()
