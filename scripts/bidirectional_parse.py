"""Parsing with a left-to-right model, a right-to-left model, and both (issue 15's question:
is a left-to-right model enough?).

    python scripts/bidirectional_parse.py --forward RUN_F --backward RUN_B [--json OUT]

Reads the bundled WSJ sample (or ``--treebank FILE``), takes the forget distances of both
models (each a run or model folder; the backward one trained with ``--direction backward``),
and scores, with the greedy and the split decoders, one system per layer and for the layer
mean of: the forward model, the backward model (decoded right to left and mirrored, see
``onlstm.tasks.parse.decode``) and both combined (``onlstm.tasks.parse.combined_distances``:
the boundary before word t scored by the forward distance at t and the backward distance at
t - 1, averaged, same layer of each). Prints sentence F1 on all sentences and on those of at
most 10 words (WSJ10), beside the right-branching baseline.
"""

from __future__ import annotations

import argparse
import json

import torch

from onlstm.lm import LanguageModel
from onlstm.metrics import evaluate_systems
from onlstm.tasks.parse import combined_distances
from onlstm.tasks.parse_eval import baseline_systems, decode_systems, load_sentences, model_distances


def systems_of(sentences, f, b, decoder):
    """``f``, ``b``: each sentence's (layers, T) forget distances of the two models."""
    out = {}
    for tag, dists, direction in (("forward", f, "forward"), ("backward", b, "backward"),
                                  ("combined", [combined_distances(x, y) for x, y in zip(f, b)], "forward")):
        for name, trees in decode_systems(sentences, dists, decoder, direction).items():
            out[f"{tag} {name}"] = trees
    return out


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--forward", required=True, help="forward model (run or model folder)")
    parser.add_argument("--backward", required=True, help="backward model (trained with --direction backward)")
    parser.add_argument("--treebank", nargs="*", help="treebank file(s); default: the bundled WSJ sample")
    parser.add_argument("--json", help="write the scores here as JSON")
    args = parser.parse_args(argv)
    forward, backward = LanguageModel.from_pretrained(args.forward), LanguageModel.from_pretrained(args.backward)
    if forward.config.direction != "forward" or backward.config.direction != "backward":
        parser.error(f"--forward reads {forward.config.direction}, --backward reads {backward.config.direction}")
    torch.set_grad_enabled(False)
    sentences = load_sentences(args.treebank)
    short = [i for i, s in enumerate(sentences) if len(s.words) <= 10]
    f = [pair[0] for pair in model_distances(forward, sentences)]
    b = [pair[0] for pair in model_distances(backward, sentences)]
    results = {}
    for decoder in ("greedy", "split"):
        systems = systems_of(sentences, f, b, decoder)
        systems.update(baseline_systems(sentences, ["right"]))
        every = evaluate_systems(sentences, systems)
        wsj10 = evaluate_systems([sentences[i] for i in short], {k: [v[i] for i in short] for k, v in systems.items()})
        results[decoder] = {k: {"sentence_f1": every[k].sentence_f1, "sentence_f1_wsj10": wsj10[k].sentence_f1}
                            for k in systems}
    print(f"{len(sentences)} sentences, {len(short)} of at most 10 words; sentence F1 (%)")
    print(f"{'system':24s}" + "".join(f"{d + ' all':>14s}{d + ' 10':>13s}" for d in results))
    for name in results["greedy"]:
        print(f"{name:24s}" + "".join(f"{100 * r[name]['sentence_f1']:14.1f}{100 * r[name]['sentence_f1_wsj10']:13.1f}"
                                      for r in results.values()))
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"forward": args.forward, "backward": args.backward, "results": results}, f, indent=2)


if __name__ == "__main__":
    main()
