"""``onlstm parse``: sentences in, trees out (argument parsing and printing only)."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from ..tasks import parse as task
from ..tasks.common import require_onlstm
from .. import trees as T
from ..errors import UserError
from ..fileio import read_text
from ..training import StopRules
from . import argtypes
from .common import add_backward_model_argument, add_model_argument, load_model

FORMATS = ("bracket", "json", "tree", "table")


def layer_argument(text: str):
    """``--layer``: ``"mean"`` or a 1-based layer number, returned 0-based (argparse type)."""
    if text == "mean":
        return "mean"
    try:
        return argtypes.positive_int(text) - 1
    except argparse.ArgumentTypeError:
        raise argparse.ArgumentTypeError(f"must be a layer number (1, 2, ...) or 'mean', got {text!r}") from None


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "parse", help="parse sentences into unsupervised constituency trees",
        description=("Parse sentences with an ON-LSTM language model: the master forget gate read as a syntactic "
                     "distance between words, decoded top-down into a binary tree (docs/spec.md §2). Sentences "
                     "come from the arguments, --file (one per line) or standard input, typed as people write "
                     "them: the model's tokenizer splits them into words (English the Penn Treebank way, "
                     "Chinese by jieba or by characters), and punctuation is dropped before parsing as the "
                     "evaluation protocol does (docs/spec.md §3)."))
    p.add_argument("sentences", nargs="*", metavar="SENTENCE", help="sentences to parse (quote each one)")
    p.add_argument("--file", metavar="FILE", help="read sentences from FILE, one per line ('-' for stdin)")
    add_model_argument(p)
    add_backward_model_argument(p)
    p.add_argument("--layer", type=layer_argument, default=None, metavar="N|mean",
                   help="layer whose distances build the tree (1-based; default: the model's parse_layer, else the middle one) or 'mean'")
    p.add_argument("--distance", choices=task.DISTANCES, default="forget",
                   help="distances that build the tree: forget (d_f = 1 - mean forget gate, the paper's) or "
                        "input (d_i = mean input gate); both are shown by --format json|table and --plot")
    p.add_argument("--pretokenized", action="store_true",
                   help="the sentences are already tokenized: split at whitespace only and drop nothing")
    p.add_argument("--decoder", choices=sorted(task.DECODERS), default="greedy",
                   help="greedy: the published [left, [w_k, right]]; split: cut at the maximum after the first word")
    p.add_argument("--format", choices=FORMATS, default="bracket",
                   help="bracket (w (w w)), json nested lists, tree drawn in the terminal, or table of the "
                        "distances d_f and d_i of every layer")
    p.add_argument("--plot", metavar="FILE.png|FILE.svg",
                   help="draw d_f and d_i of every layer under the words (several sentences: FILE-1.png, ...)")
    p.add_argument("--batch-size", type=argtypes.positive_int, default=64,
                   help="sentences per padded batch; the trees of each batch are printed as soon as it is parsed")
    p.set_defaults(func=run)


def _read_sentences(args):
    if args.file and args.sentences:
        raise UserError("give sentences either as arguments or with --file, not both")
    if args.file:
        if args.file == "-":
            lines = _read_stdin()
            source = "stdin"
        else:
            lines = read_text(Path(args.file)).splitlines()  # UserErrors name the file (and line)
            source = args.file
    elif args.sentences:
        return list(args.sentences)
    elif sys.stdin is None:
        raise UserError("no sentence given and stdin is closed: pass sentences as arguments or --file FILE")
    elif not sys.stdin.isatty():
        lines = _read_stdin()
        source = "stdin"
    else:
        raise UserError("no sentence given: pass sentences as arguments, --file FILE, or pipe them on stdin")
    sentences = [line for line in lines if line.strip()]
    skipped = len(lines) - len(sentences)
    if skipped:
        print(f"note: skipped {skipped} empty line(s) of {source}", file=sys.stderr)
    return sentences


def _read_stdin() -> list:
    """Lines of standard input; a closed or undecodable stdin is a UserError."""
    if sys.stdin is None:
        raise UserError("cannot read sentences from stdin: it is closed")
    try:
        return sys.stdin.read().splitlines()
    except UnicodeDecodeError as err:
        raise UserError(f"stdin: not valid UTF-8 ({err.reason} at byte {err.start})") from None
    except OSError as err:
        raise UserError(f"cannot read stdin: {err.strerror or err}") from None


def _note_dropped(parsed) -> None:
    """One line on stderr naming the punctuation left out (protocol of docs/spec.md §3)."""
    dropped = [text for p in parsed for _, text in p.dropped]
    if not dropped:
        return
    kinds = sorted(set(dropped), key=dropped.index)
    shown = " ".join(kinds[:12]) + (" ..." if len(kinds) > 12 else "")
    print(f"note: {len(dropped)} punctuation token(s) dropped before parsing, as the evaluation protocol "
          f"does: {shown}", file=sys.stderr)


def run(args) -> int:
    sentences = _read_sentences(args)
    if not sentences:
        raise UserError("no sentence to parse (every line was empty)")
    model, _ = load_model(args.model)
    require_onlstm(model, "parsing")
    backward = None if args.backward_model is None else load_model(args.backward_model, "--backward-model")[0]
    batches = task.parse_batches(model, sentences, args.layer, args.decoder, args.batch_size,
                                 progress=len(sentences) > 256, distance=args.distance, pretokenized=args.pretokenized,
                                 backward_model=backward)
    done = []  # ParsedSentence of every sentence printed so far (the notes at the end count them)
    json_open = False
    # each batch is printed as soon as it is parsed; a first Ctrl-C stops after the batch being printed
    with StopRules() as stop:
        try:
            for batch in batches:
                for p in batch:
                    if args.format == "json":
                        print(("[" if not json_open else ", ") + json.dumps(p.to_dict(), ensure_ascii=False), end="")
                        json_open = True
                    else:
                        if done and args.format in ("tree", "table"):
                            print()
                        print(_formatted(p, args.format))
                    if args.plot:
                        _plot(p, args.plot, len(done) + 1, len(sentences))
                    done.append(p)
                sys.stdout.flush()
                if stop.interrupted:
                    raise KeyboardInterrupt
        finally:  # also on Ctrl-C or an error: what was printed stays valid (JSON: the list is closed)
            if json_open:
                print("]")
            sys.stdout.flush()
            if done:
                oov = sum(p.oov for p in done)
                if oov:
                    print(f"warning: {oov} word(s) not in the model's vocabulary were read as <unk>", file=sys.stderr)
                _note_dropped(done)
    return 0


def _formatted(p, format: str) -> str:
    """One parsed sentence as --format bracket, tree or table prints it."""
    if format == "bracket":
        return T.to_bracketed(p.tree)
    if format == "tree":
        return T.draw(p.tree)
    return (task.distance_table(p) + "\n"
            + f"tree ({p.layer}, {'d_f' if p.distance == 'forget' else 'd_i'}): {T.to_bracketed(p.tree)}")


def _plot(p, plot: str, number: int, total: int) -> None:
    """The distance plot of sentence ``number`` of ``total`` (several: FILE-1.png, FILE-2.png, ...)."""
    from ..plots import plot_distances

    base = Path(plot)
    path = base if total == 1 else base.with_name(f"{base.stem}-{number}{base.suffix}")
    layers = range(p.distances.shape[0])
    plot_distances(p.words, {f"layer {k + 1}": p.distances[k].tolist() for k in layers}, path,
                   title=T.to_bracketed(p.tree), input_distances={f"layer {k + 1}": p.input_distances[k].tolist()
                                                                  for k in layers})
    print(f"wrote {path}", file=sys.stderr)
