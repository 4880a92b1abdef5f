"""``onlstm demo``: the whole system on the bundled model (argument parsing only)."""

from __future__ import annotations

import sys

from ..tasks import demo as task
from ..training import prepare_output
from . import argtypes
from .common import add_model_argument, load_model


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "demo", help="the whole system in a few minutes on the bundled model (writes a report folder)",
        description=("Load the model (default: the bundled PTB ON-LSTM), print its PTB test perplexity, "
                     "parse the bundled treebank sample and print the F1 of every layer beside the four "
                     "baselines, parse and draw a few example sentences, and write everything into a report "
                     "folder: results.json, report.md, report.html (the same, the trees drawn as SVG over their "
                     "distances, readable offline), trees/ (predicted trees) and plots/ (distance plots)."))
    p.add_argument("--out", default="onlstm-demo", metavar="DIR",
                   help="report folder: new, empty, or an earlier demo's report (written again)")
    p.add_argument("--overwrite", action="store_true",
                   help="write the report into --out even if it holds other files (the report's own names "
                        "are replaced, other files are kept)")
    add_model_argument(p)
    p.add_argument("--sentence", action="append", metavar="TEXT",
                   help="an example sentence to parse and draw (repeatable; default: four built-in ones in the "
                        "model's language)")
    p.add_argument("--treebank", nargs="+", metavar="FILE",
                   help="bracketed .mrg files or folders to evaluate on (default: the bundled WSJ sample; for a Chinese model, "
                        "such as zh, the bundled Sinica sample, and its perplexity on the bundled PKU test text)")
    p.add_argument("--no-perplexity", action="store_true", help="skip the perplexity stage")
    p.add_argument("--eval-batch-size", type=argtypes.positive_int, default=1,
                   help="batch size of the perplexity stage (the paper's protocol: 1)")
    p.add_argument("--quiet", action="store_true", help="no progress bars")
    p.set_defaults(func=run)


def run(args) -> int:
    prepare_output(args.out, task.DEMO_REPORT, overwrite=args.overwrite)  # before the model is loaded
    model, folder = load_model(args.model)
    sentences = args.sentence or None  # default: the examples of the model's language
    report = task.run_demo(model, str(folder), args.out, sentences=sentences, perplexity=not args.no_perplexity,
                           treebank=args.treebank, eval_batch_size=args.eval_batch_size,
                           progress=not args.quiet and sys.stderr.isatty(), overwrite=args.overwrite)
    name, f1 = task.best_layer(report)
    print(f"best layer: {name}, sentence F1 {100 * f1:.1f} on {report.parsing['all']['sentences']:,} sentences")
    print(f"report written to {args.out}/ (report.html, report.md, results.json, trees/, plots/)")
    return 0
