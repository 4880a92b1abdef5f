"""The demo's ``report.html``: its tables and example trees, readable offline in any browser.

One self-contained file: the styles inline, every tree an inline SVG drawn by
:func:`onlstm.tree_svg.tree_svg` (the drawings of ``onlstm serve``) with the distances of
every layer under the words; no script, no image file and no network fetch.
"""

from __future__ import annotations

from html import escape
from typing import TYPE_CHECKING, Union

from ..tree_svg import SVG_CSS, tree_svg

if TYPE_CHECKING:
    from .demo import DemoReport

__all__ = ["html_report"]

PAGE_CSS = """\
body { font-family: system-ui, -apple-system, "Segoe UI", "Noto Sans", sans-serif; color: #0f172a; background: #f1f5f9;
  margin: 0; font-size: 14px; }
main { max-width: 1100px; margin: 0 auto; padding: 20px 24px 40px; }
h1 { font-size: 22px; margin: 0 0 4px; } h2 { font-size: 17px; margin: 26px 0 8px; } h3 { font-size: 14px; margin: 0 0 6px; }
.muted { color: #64748b; }
.card { background: #fff; border: 1px solid #e2e8f0; border-radius: 10px; padding: 12px 14px; margin-bottom: 12px; }
table { border-collapse: collapse; font-variant-numeric: tabular-nums; background: #fff; }
th, td { padding: 4px 12px; border-bottom: 1px solid #e2e8f0; text-align: right; white-space: nowrap; }
th:first-child, td:first-child { text-align: left; }
th { color: #64748b; font-size: 12px; font-weight: 600; }
tr.baseline td { color: #475569; } tr.first-baseline td { border-top: 2px solid #cbd5e1; }
td.best, tr.baseline td.best { color: #15803d; font-weight: 700; }
.svg-box { overflow-x: auto; }
code { font-family: ui-monospace, Menlo, Consolas, monospace; font-size: 12.5px; background: #f8fafc; padding: 2px 4px;
  border-radius: 4px; word-break: break-word; }
"""


def _layer_index(name: str) -> Union[int, str, None]:
    """``"layer 3"`` -> 2, ``"mean"`` -> ``"mean"``; anything else None."""
    if name == "mean":
        return "mean"
    parts = name.split()
    return int(parts[1]) - 1 if len(parts) == 2 and parts[0] == "layer" and parts[1].isdigit() else None


def set_label(result: dict) -> str:
    """The name of an evaluation set of the report: "all", "WSJ10" (the length-limited part
    of an English treebank), "<= 10 words" on Sinica."""
    n = result["max_length"]
    if n is None:
        return "all"
    return f"<= {n} words" if "Sinica" in result["treebank"] else f"WSJ{n}"


def _f1_table(parsing: dict) -> str:
    sets = list(parsing)
    names = list(parsing[sets[0]]["systems"])
    best = {s: max(parsing[s]["systems"][n]["sentence_f1"] for n in names) for s in sets}
    head = "".join(f"<th>sent-F1, {escape(set_label(parsing[s]))}"
                   f"<br><span class=muted>{parsing[s]['sentences']:,} sentences</span></th>" for s in sets)
    rows = []
    first_baseline = True
    for name in names:
        model = name.startswith("layer ") or name == "mean"
        cls = "" if model else ' class="baseline first-baseline"' if first_baseline else ' class="baseline"'
        if not model:
            first_baseline = False
        cells = "".join(
            f"<td{' class=best' if parsing[s]['systems'][name]['sentence_f1'] == best[s] else ''}>"
            f"{100 * parsing[s]['systems'][name]['sentence_f1']:.1f}</td>" for s in sets)
        rows.append(f"<tr{cls}><td>{escape(name)}</td>{cells}</tr>")
    return f"<table><thead><tr><th>system</th>{head}</tr></thead><tbody>{''.join(rows)}</tbody></table>"


def html_report(report: "DemoReport") -> str:
    """The report as one HTML page (see the module docstring)."""
    out = ["<!doctype html><html lang=en><head><meta charset=utf-8>",
           "<meta name=viewport content='width=device-width, initial-scale=1'>",
           "<title>onlstm demo</title>", f"<style>{PAGE_CSS}{SVG_CSS}</style></head><body><main>",
           "<h1>onlstm demo</h1>", f"<div class=muted>Model: <code>{escape(report.model)}</code></div>"]
    if report.model_info:
        out.append("<div class=muted>" + escape(", ".join(f"{k}: {v}" for k, v in report.model_info.items())) + "</div>")
    out.append("<h2>Language modelling</h2>")
    ppl = report.perplexity
    if ppl is None:
        out.append("<p class=muted>(skipped)</p>")
    else:
        out.append("<table><thead><tr><th>data</th><th>tokens</th><th>perplexity</th><th>bits/token</th></tr></thead>"
                   f"<tbody><tr><td>{escape(str(ppl['source']))}</td><td>{ppl['tokens']:,}</td>"
                   f"<td>{ppl['perplexity']:.2f}</td><td>{ppl['bits_per_token']:.3f}</td></tr></tbody></table>"
                   f"<p class=muted>Batch size {ppl['batch_size']}, state carried across the whole text "
                   "(the paper's protocol).</p>")
    first = next(iter(report.parsing.values()))
    out += ["<h2>Unsupervised constituency parsing</h2>",
            f"<p>Treebank: {escape(first['treebank'])}. Punctuation removed, the whole-sentence span not counted, "
            "greedy top-down decoding of the master-forget-gate distances, as in the ON-LSTM paper (docs/spec.md "
            "§2, §3). <i>layer k</i>: the distances of layer k; <i>mean</i>: their average; the last four rows are "
            "the baselines (random: seeded). Best in green.</p>", _f1_table(report.parsing)]
    out.append("<h2>Example sentences</h2>")
    out.append("<p class=muted>Each tree is drawn over its words; under them, one row of bars per layer: the "
               "forget distance d_f of every word (each row scaled from its smallest to its largest value; "
               "blue: the layer that built the tree).</p>")
    for k, ex in enumerate(report.examples, 1):
        svg = tree_svg(ex["tree"], ex["distances"], chosen=_layer_index(ex["layer"]))
        out.append(f"<div class=card><h3>{k}. {escape(' '.join(ex['words']))} "
                   f"<span class=muted>(tree from {escape(ex['layer'])})</span></h3>"
                   f"<div class=svg-box>{svg}</div><code>{escape(ex['bracketed'])}</code></div>")
    out += ["<h2>Time</h2>", "<p>" + escape(", ".join(f"{k}: {v:.1f} s" for k, v in report.seconds.items())) + "</p>",
            "</main></body></html>\n"]
    return "\n".join(out)
