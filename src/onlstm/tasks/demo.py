"""The ``demo`` task: the whole system on one language model, in a few minutes.

:func:`run_demo` chains the other tasks and writes a report folder:

1. perplexity of the model on the PTB test split (:func:`onlstm.tasks.lm.evaluate_model`, the
   paper's protocol: batch 1, the whole text as one sequence);
2. unsupervised parsing of the bundled treebank sample: sentence F1 of every layer (and of
   the layer mean) beside the four baselines, on all sentences and on WSJ10
   (:mod:`onlstm.parse_eval`);
3. a few example sentences parsed, drawn as text trees and as distance plots
   (:mod:`onlstm.parse`, :mod:`onlstm.plots`).

The report folder (a new or empty one, or an earlier demo's: see `DEMO_REPORT`) holds ``results.json`` (everything), ``report.md`` (the tables and the
example trees in Markdown), ``report.html`` (the same, the trees drawn as SVG over their
distance bars: one self-contained page, :mod:`onlstm.tasks.demo_html`), ``trees/`` (the predicted trees of every system, bracketed, one
per line in the treebank's order) and ``plots/`` (one distance plot per example sentence).
"""

from __future__ import annotations

import json
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Callable, List, Optional, Sequence

from . import parse_eval
from .demo_html import html_report, set_label
from .common import require_onlstm
from .. import bundled, trees as T
from ..fileio import atomic_write_text
from ..training import OutputKind, json_file_has, open_output, os_error, prepare_output

__all__ = ["EXAMPLE_SENTENCES", "DEMO_REPORT", "DemoReport", "run_demo", "markdown_report"]

#: Sentences parsed and drawn by the demo (PTB-style tokens, words the PTB vocabulary knows).
EXAMPLE_SENTENCES = [
    "the company said it expects to report a loss for the third quarter",
    "stock prices rose sharply in early trading after the report",
    "a spokesman for the bank declined to comment on the plan",
    "the man who sold the house moved to new york last year",
]

#: Example sentences for a Chinese model (one whose tokenizer is jieba or chars).
ZH_EXAMPLE_SENTENCES = [
    "苹果的颜色是什么",
    "爱真的需要勇气",
    "他昨天在北京买了一本书",
    "我们明天去公园散步",
]

#: The bundled corpus a Chinese model's perplexity is measured on (test split).
ZH_CORPUS = "pku_199801"


def is_chinese(model) -> bool:
    """Whether ``model`` reads Chinese: its tokenizer is ``jieba`` or ``chars``. The demo then
    uses the bundled PKU test text, the bundled Sinica treebank and Chinese examples."""
    return model.text_options.tokenizer in ("jieba", "chars")


#: The four stages shown by the progress bar.
STAGES = ("perplexity", "parse treebank", "examples", "report")


@dataclass
class DemoReport:
    """What the demo measured (``to_dict`` is what ``results.json`` holds)."""

    model: str
    model_info: dict
    perplexity: Optional[dict]
    parsing: dict  # "all" / "wsj10" -> ParseEvalReport.to_dict()
    examples: List[dict]
    seconds: dict = field(default_factory=dict)

    def to_dict(self) -> dict:
        return asdict(self)


def _subset(sentences, systems, max_length):
    keep = [i for i, s in enumerate(sentences) if len(s.words) <= max_length]
    return [sentences[i] for i in keep], {name: [trees[i] for i in keep] for name, trees in systems.items()}


def _f1_table(parsing: dict) -> List[str]:
    """Markdown table: one row per system, sentence F1 on each evaluation set."""
    sets = list(parsing)
    names = list(parsing[sets[0]]["systems"])
    head = "| system | " + " | ".join(
        f"sent-F1, {set_label(parsing[s])} "
        f"({parsing[s]['sentences']:,} sent.)" for s in sets) + " |"
    lines = [head, "|---" * (len(sets) + 1) + "|"]
    for name in names:
        cells = [f"{100 * parsing[s]['systems'][name]['sentence_f1']:.1f}" for s in sets]
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    return lines


def markdown_report(report: DemoReport) -> str:
    """The report as Markdown: perplexity, the parsing table, the example trees."""
    lines = ["# onlstm demo", "", f"Model: `{report.model}`"]
    info = report.model_info
    if info:
        lines.append("")
        lines.append(", ".join(f"{k}: {v}" for k, v in info.items()))
    lines += ["", "## Language modelling", ""]
    ppl = report.perplexity
    if ppl is None:
        lines.append("(skipped)")
    else:
        lines += ["| data | tokens | perplexity | bits/token |", "|---|---|---|---|",
                  f"| {ppl['source']} | {ppl['tokens']:,} | {ppl['perplexity']:.2f} | {ppl['bits_per_token']:.3f} |",
                  "", f"Batch size {ppl['batch_size']}, state carried across the whole text (the paper's protocol)."]
    first = next(iter(report.parsing.values()))
    lines += ["", "## Unsupervised constituency parsing", "",
              f"Treebank: {first['treebank']}. Punctuation removed, the whole-sentence span not counted, "
              "greedy top-down decoding of the master-forget-gate distances, as in the ON-LSTM paper. "
              "`layer k`: the distances of layer k; `mean`: their average; "
              "the last four rows are the baselines (random: seeded).", ""]
    lines += _f1_table(report.parsing)
    lines += ["", "## Example sentences", ""]
    for k, ex in enumerate(report.examples, 1):
        lines += [f"### {k}. {' '.join(ex['words'])}", "", f"Tree from {ex['layer']}:", "", "```",
                  ex["drawing"], "```", "", f"`{ex['bracketed']}`", ""]
        if ex.get("plot"):
            lines += [f"![distances of sentence {k}]({ex['plot']})", ""]
    lines += ["## Time", "", ", ".join(f"{k}: {v:.1f} s" for k, v in report.seconds.items()), ""]
    return "\n".join(lines)


def _model_info(model) -> dict:
    cfg = model.config
    info = dict(cell=cfg.cell, layers=len(cfg.hidden_sizes), sizes=f"{cfg.emb_size}-" +
                "-".join(str(h) for h in cfg.hidden_sizes), vocabulary=len(model.vocab),
                parameters=f"{model.num_parameters() / 1e6:.2f}M")
    if cfg.cell == "onlstm":
        info["chunk_size"] = cfg.chunk_size
    return info


def _is_demo_report(folder: Path) -> bool:
    """A folder the demo wrote: only its names, a results.json of a demo (if any), trees/ of
    tree files and plots/ of example plots."""
    names = {p.name for p in folder.iterdir()}
    if not names <= DEMO_FILES:
        return False
    if "results.json" in names and not json_file_has(folder / "results.json", "model", "parsing", "examples"):
        return False
    inside = {sub: [p.name for p in (folder / sub).iterdir()] for sub in ("trees", "plots") if (folder / sub).is_dir()}
    return (all(n.startswith("trees.") and n.endswith(".txt") for n in inside.get("trees", []))
            and all(n.startswith("example_") for n in inside.get("plots", [])))


DEMO_FILES = frozenset({"results.json", "report.md", "report.html", "trees", "plots"})
#: The demo's report folder (see `onlstm.training.prepare_output`): written again by a new demo.
DEMO_REPORT = OutputKind("demo report folder", DEMO_FILES, _is_demo_report)


def run_demo(model, model_path: str, out_dir, sentences: Optional[Sequence[str]] = None,
             perplexity: bool = True, treebank=None, eval_batch_size: int = 1, progress: bool = True,
             log: Callable[[str], None] = print, overwrite: bool = False) -> DemoReport:
    """Run the demo on ``model`` (an ON-LSTM :class:`~onlstm.lm.LanguageModel`) and write the
    report into ``out_dir``: a new or empty folder, or an earlier demo's report (anything else
    only with ``overwrite``; checked before the model runs). ``treebank``: files for
    :func:`parse_eval.load_sentences` (default: the bundled sample). ``log`` receives the
    tables as they are ready. ``sentences``: the examples to draw (default: English ones, or
    Chinese ones for a Chinese model, see :func:`is_chinese`, whose default treebank is Sinica
    and whose perplexity is measured on the bundled PKU test text)."""
    from tqdm.auto import tqdm

    from .parse import parse
    from ..plots import plot_distances
    from .lm.evaluation import evaluate_model

    require_onlstm(model, "the demo")
    chinese = is_chinese(model)
    fmt = "sinica" if chinese and treebank is None else None
    if sentences is None:
        sentences = ZH_EXAMPLE_SENTENCES if chinese else EXAMPLE_SENTENCES
    out = Path(out_dir)
    prepare_output(out, DEMO_REPORT, overwrite=overwrite)
    seconds = {}
    bar = tqdm(total=len(STAGES), desc="demo", unit="stage", disable=not progress,
               bar_format="{desc}[stage {n_fmt}/{total_fmt}] |{bar}| {elapsed}")

    def say(text: str) -> None:  # print above the progress bar, not through it
        with tqdm.external_write_mode():
            log(text)

    # 1. perplexity
    bar.set_description("demo: perplexity on PTB test")
    start = time.perf_counter()
    ppl = None
    if perplexity:
        data = str(bundled.resource(ZH_CORPUS)) if chinese else (model.training_info or {}).get("data")
        ppl = evaluate_model(model, "test", data, batch_size=eval_batch_size, progress=progress)
        say(f"{'PKU' if chinese else 'PTB'} test perplexity {ppl['perplexity']:.2f} ({ppl['tokens']:,} tokens, batch {eval_batch_size}, "
            f"{ppl['bits_per_token']:.3f} bits/token)\n")
    seconds["perplexity"] = time.perf_counter() - start
    bar.update(1)

    # 2. parse the treebank
    bar.set_description("demo: parsing the treebank")
    start = time.perf_counter()
    gold = parse_eval.load_sentences(treebank, format=fmt)
    systems = parse_eval.model_systems(model, gold, progress=progress)
    systems.update(parse_eval.baseline_systems(gold))
    description = parse_eval.describe_treebank(treebank, format=fmt)
    reports = {"all": parse_eval.build_report(gold, systems, treebank=description, seed=0)}
    short, short_systems = _subset(gold, systems, 10)
    if short:  # baselines drawn anew on the subset: the same numbers as `parse-eval --max-length 10`
        short_systems.update(parse_eval.baseline_systems(short))
        reports["wsj10"] = parse_eval.build_report(short, short_systems, treebank=description, max_length=10, seed=0)
    open_output(out, DEMO_REPORT, overwrite=overwrite)  # the first write
    try:
        (out / "plots").mkdir(exist_ok=True)
        (out / "trees").mkdir(exist_ok=True)
    except OSError as err:
        raise os_error(err.filename or out, err) from None
    parse_eval.save_trees(out / "trees" / "trees.txt", systems)
    for r in reports.values():
        say(parse_eval.format_table(r, labels=()) + "\n")
    seconds["parse treebank"] = time.perf_counter() - start
    bar.update(1)

    # 3. example sentences: text trees and distance plots
    bar.set_description("demo: example sentences")
    start = time.perf_counter()
    examples = []
    for k, parsed in enumerate(parse(model, list(sentences)), 1):
        names = [f"layer {i + 1}" for i in range(parsed.distances.shape[0])]
        plot = plot_distances(parsed.words, dict(zip(names, parsed.distances.tolist())),
                              out / "plots" / f"example_{k}.png", title=" ".join(parsed.words))
        drawing = T.draw(parsed.tree)
        examples.append(dict(words=parsed.words, layer=parsed.layer, bracketed=T.to_bracketed(parsed.tree),
                             tree=parsed.tree, drawing=drawing, distances=parsed.to_dict()["distances"], oov=parsed.oov,
                             plot=str(plot.relative_to(out))))
        say(f"{k}. {' '.join(parsed.words)}  ({parsed.layer})\n{drawing}\n")
    seconds["examples"] = time.perf_counter() - start
    bar.update(1)

    # 4. the report
    bar.set_description("demo: writing the report")
    report = DemoReport(model=model_path, model_info=_model_info(model), perplexity=ppl,
                        parsing={name: r.to_dict() for name, r in reports.items()}, examples=examples,
                        seconds=seconds)
    atomic_write_text(out / "results.json", json.dumps(report.to_dict(), indent=2) + "\n")
    atomic_write_text(out / "report.md", markdown_report(report))
    atomic_write_text(out / "report.html", html_report(report))
    bar.update(1)
    bar.set_description("demo: done")
    bar.close()
    return report


def best_layer(report: DemoReport, subset: str = "all") -> tuple:
    """``(name, sentence F1)`` of the best single layer."""
    systems = report.parsing[subset]["systems"]
    layers = {k: v["sentence_f1"] for k, v in systems.items() if k.startswith("layer ")}
    name = max(layers, key=layers.get)
    return name, layers[name]
