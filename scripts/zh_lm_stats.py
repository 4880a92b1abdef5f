"""Numbers of the Chinese model card: bits per character on the PKU split, and the
out-of-vocabulary rate of the Sinica treebank's words (maintainers only).

    python scripts/zh_lm_stats.py MODEL_FOLDER [MODEL_FOLDER ...] [--split valid] [--batch-size 10]

For each model (a run folder or an exported model folder): the loss of its own tokens on
the bundled PKU split (``<eos>`` after each line; a word model's ``<unk>`` is one class, so
its perplexity is not comparable with a character model's), and the same total loss divided
by the number of characters, read the same way for every model (the characters a
character-level model with ``digits_to_N`` reads, so a digit run counts once, plus one
``<eos>`` per line): bits per character, comparable across word and character models.
Then the share of the Sinica words (Traditional -> Simplified with OpenCC t2s, full-width
digits/letters as ASCII; 91,634 words) that the vocabulary does not know: words for a word
model (in their vocabulary form, digit runs as N when the model uses it), characters for a
character model. Prints one JSON object per model.
"""

from __future__ import annotations

import argparse
import json
import math
import sys

from onlstm.bundled import resource
from onlstm.lm import LanguageModel
from onlstm.text import TextOptions, tokenize
from onlstm.treebank import load_treebank

try:  # the task module moved during the restructure
    from onlstm.tasks.lm import evaluate_model
except ImportError:  # pragma: no cover
    from onlstm.train import evaluate_model  # type: ignore[no-redef]

PKU = "pku_199801"


def characters(split: str) -> int:
    """Characters of a PKU split as a character model with digits_to_N reads them, plus one
    <eos> per non-blank line."""
    import gzip

    text = gzip.decompress(resource(PKU, f"{split}.txt.gz").read_bytes()).decode("utf-8")
    options = TextOptions(char_level=True, digits_to_N=True)
    return sum(len(tokenize(line, options, add_eos=True)) for line in text.split("\n"))


def sinica_oov(model: LanguageModel) -> dict:
    sentences = load_treebank(None, format="sinica")
    options = model.text_options
    unknown = total = 0
    for s in sentences:
        for word in s.model_words:
            pieces = tokenize(word, TextOptions(char_level=options.char_level, lower=options.lower,
                                                digits_to_N=options.digits_to_N))
            total += len(pieces)
            unknown += sum(1 for p in pieces if p not in model.vocab)
    unit = "characters" if options.char_level else "words"
    return {f"sinica_{unit}": total, f"sinica_oov_{unit}": unknown, "sinica_oov_rate": unknown / total}


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("models", nargs="+")
    p.add_argument("--split", default="valid", choices=["train", "valid", "test"])
    p.add_argument("--batch-size", type=int, default=10)
    args = p.parse_args(argv)
    chars = characters(args.split)
    data = str(resource(PKU))
    for folder in args.models:
        model = LanguageModel.from_pretrained(folder)
        result = evaluate_model(model, args.split, data, args.batch_size, 70, progress=False)
        total_nats = result["loss"] * result["tokens"]
        out = dict(model=folder, split=args.split, batch_size=args.batch_size, tokens=result["tokens"],
                   unk_tokens=result["unk_tokens"], perplexity=result["perplexity"],
                   characters=chars, bits_per_character=total_nats / chars / math.log(2))
        out.update(sinica_oov(model))
        print(json.dumps(out), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
