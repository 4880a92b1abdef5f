"""Targeted syntactic evaluation (Marvin & Linzen 2018) of a language model.

A language model passes an item when it gives the grammatical sentence of a minimal pair a
higher total log-probability than the ungrammatical one. This module holds

1. the data: the bundled test set (``onlstm/data/syneval/<construction>.jsonl.gz``, a
   lossless conversion of the upstream pickles, see ``CONVERSION.md`` there), the list of
   constructions with their phenomenon and their row and group in the ON-LSTM paper's
   Table 3 (short-term vs long-term dependency), and a loader;
2. the scoring: `evaluate` takes any *scorer*
   ``sentence_logprobs(list[list[str]]) -> Sequence[float]`` (total log-probability of
   each sentence, end-of-sentence token included, fresh state per sentence; the language
   model provides it) and returns a JSON-able result: accuracy per construction, per paper
   row and per group, item counts, and out-of-vocabulary statistics for a given vocabulary;
3. `format_table` for one result or several models side by side.

Scorer contract. It receives a batch of sentences as lists of word strings, as in the data
(lower case, no final punctuation, plus ``suffix`` if one is given); when `evaluate` is
given the model's vocabulary, words outside it are already replaced by ``unk_token``
(so that two sentences that differ only in unknown words get exactly the same score),
otherwise mapping unknown words is the scorer's job. It returns one
float per sentence: ``sum_t log p(w_t | w_<t)`` over the words and the end-of-sentence
token, starting from the model's initial state (the published protocol; the ON-LSTM code
also starts each sentence after an ``<eos>`` token). `evaluate` sends sentences sorted
by length in batches of ``batch_size`` so that a padded batch wastes little, and scores
each distinct sentence once.

NPI items are triples (grammatical, intrusive, ungrammatical): e.g. "no authors that the
guards like have ever been popular" / "the authors that no guards like have ever been
popular" / "most authors that the guards like have ever been popular". As upstream, three
comparisons are reported separately, each named by the sentence that must be more
probable: ``grammatical>intrusive``, ``grammatical>ungrammatical`` and
``intrusive>ungrammatical``. Pairs have the single comparison
``grammatical>ungrammatical``. A tie counts as wrong.
"""

from __future__ import annotations

import gzip
import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterable, Mapping, Sequence

from ..bundled import resource
from ..errors import UserError

DATA_DIR = resource("syneval")

SHORT = "short"
LONG = "long"
GROUP_TITLES = {SHORT: "Short-term dependency", LONG: "Long-term dependency"}
PHENOMENON_TITLES = {
    "agreement": "Subject-verb agreement",
    "reflexive": "Reflexive anaphora",
    "npi": "Negative polarity items",
}

GRAM_UNGRAM = "grammatical>ungrammatical"
GRAM_INTR = "grammatical>intrusive"
INTR_UNGRAM = "intrusive>ungrammatical"
PAIR_COMPARISONS = ((GRAM_UNGRAM, 0, 1),)
NPI_COMPARISONS = ((GRAM_INTR, 0, 1), (GRAM_UNGRAM, 0, 2), (INTR_UNGRAM, 1, 2))

Scorer = Callable[[list], Sequence[float]]


@dataclass(frozen=True)
class Construction:
    """One upstream test file.

    name: file stem (``prep_anim``); phenomenon: ``agreement`` | ``reflexive`` | ``npi``;
    row: the ON-LSTM paper's Table 3 row it is pooled into (anim + inanim files share a
    row); group: ``short`` | ``long`` (the table's "short-term" / "long-term dependency"
    halves: long-term when a phrase or clause intervenes between the two words).
    """

    name: str
    phenomenon: str
    row: str
    group: str

    @property
    def comparisons(self) -> tuple:
        return NPI_COMPARISONS if self.phenomenon == "npi" else PAIR_COMPARISONS

    @property
    def arity(self) -> int:
        return 3 if self.phenomenon == "npi" else 2


# In the order of the paper's Table 3 (rows) and of Marvin & Linzen's files.
CONSTRUCTIONS: tuple[Construction, ...] = (
    # --- short-term dependency ---
    Construction("simple_agrmt", "agreement", "Simple", SHORT),
    Construction("sent_comp", "agreement", "In a sentential complement", SHORT),
    Construction("vp_coord", "agreement", "Short VP coordination", SHORT),
    Construction("obj_rel_within_anim", "agreement", "In an object relative clause", SHORT),
    Construction("obj_rel_within_inanim", "agreement", "In an object relative clause", SHORT),
    Construction("obj_rel_no_comp_within_anim", "agreement", "In an object relative (no that)", SHORT),
    Construction("obj_rel_no_comp_within_inanim", "agreement", "In an object relative (no that)", SHORT),
    Construction("simple_reflexives", "reflexive", "Simple", SHORT),
    Construction("reflexive_sent_comp", "reflexive", "In a sentential complement", SHORT),
    Construction("simple_npi_anim", "npi", "Simple", SHORT),
    Construction("simple_npi_inanim", "npi", "Simple", SHORT),
    # --- long-term dependency ---
    Construction("long_vp_coord", "agreement", "Long VP coordination", LONG),
    Construction("prep_anim", "agreement", "Across a prepositional phrase", LONG),
    Construction("prep_inanim", "agreement", "Across a prepositional phrase", LONG),
    Construction("subj_rel", "agreement", "Across a subject relative clause", LONG),
    Construction("obj_rel_across_anim", "agreement", "Across an object relative clause", LONG),
    Construction("obj_rel_across_inanim", "agreement", "Across an object relative clause", LONG),
    Construction("obj_rel_no_comp_across_anim", "agreement", "Across an object relative (no that)", LONG),
    Construction("obj_rel_no_comp_across_inanim", "agreement", "Across an object relative (no that)", LONG),
    Construction("reflexives_across", "reflexive", "Across a relative clause", LONG),
    Construction("npi_across_anim", "npi", "Across a relative clause", LONG),
    Construction("npi_across_inanim", "npi", "Across a relative clause", LONG),
)
BY_NAME = {c.name: c for c in CONSTRUCTIONS}


@dataclass(frozen=True)
class Item:
    """One test item: a pair (grammatical, ungrammatical) or an NPI triple
    (grammatical, intrusive, ungrammatical); sentences are space-separated words."""

    construction: str
    condition: str
    sentences: tuple[str, ...]


def construction_names() -> list[str]:
    """All construction names, in table order."""
    return [c.name for c in CONSTRUCTIONS]


def resolve_constructions(names: Iterable[str] | None) -> list[Construction]:
    """Constructions by name (``None``: all); an unknown name is a `UserError`."""
    if names is None:
        return list(CONSTRUCTIONS)
    out = []
    for n in names:
        if n not in BY_NAME:
            raise UserError(f"unknown construction {n!r}; choose from: {', '.join(BY_NAME)}")
        out.append(BY_NAME[n])
    return out


def load_construction(name: str, data_dir: Path | None = None) -> list[Item]:
    """Read the bundled items of one construction, in upstream order."""
    cons = BY_NAME.get(name)
    if cons is None:
        raise UserError(f"unknown construction {name!r}; choose from: {', '.join(BY_NAME)}")
    path = Path(data_dir or DATA_DIR) / f"{name}.jsonl.gz"
    if not path.exists():
        raise UserError(f"missing syneval data file {path}")
    items = []
    with gzip.open(path, "rt", encoding="ascii") as fh:
        for lineno, line in enumerate(fh, 1):
            rec = json.loads(line)
            sents = tuple(rec["sentences"])
            if len(sents) != cons.arity:
                raise ValueError(f"{path}:{lineno}: expected {cons.arity} sentences, got {len(sents)}")
            items.append(Item(name, rec["condition"], sents))
    return items


def load_items(
    constructions: Iterable[str] | None = None, data_dir: Path | None = None
) -> dict[str, list[Item]]:
    """``{construction name: [Item, ...]}`` for the chosen (default: all) constructions."""
    return {c.name: load_construction(c.name, data_dir) for c in resolve_constructions(constructions)}


def subsample(items: list[Item], limit: int | None) -> list[Item]:
    """At most ``limit`` items spread evenly over the list (conditions are contiguous in
    the files, so every condition stays represented); deterministic."""
    if limit is None or limit >= len(items):
        return items
    if limit <= 0:
        return []
    n = len(items)
    return [items[(i * n) // limit] for i in range(limit)]


# ---------------------------------------------------------------------------------------
# Scoring
# ---------------------------------------------------------------------------------------


def score_sentences(
    scorer: Scorer,
    sentences: Iterable[tuple[str, ...]],
    batch_size: int = 256,
    progress: bool = False,
) -> dict[tuple[str, ...], float]:
    """Log-probability of every distinct token tuple, by calling ``scorer`` on batches of
    sentences of similar length (sorted by length, longest first)."""
    unique = sorted(set(sentences), key=lambda s: (-len(s), s))
    out: dict[tuple[str, ...], float] = {}
    bar = None
    if progress:
        from tqdm import tqdm

        bar = tqdm(total=len(unique), desc="syneval", unit="sent")
    for start in range(0, len(unique), batch_size):
        batch = unique[start : start + batch_size]
        scores = list(scorer([list(s) for s in batch]))
        if len(scores) != len(batch):
            raise ValueError(f"scorer returned {len(scores)} scores for {len(batch)} sentences")
        for s, v in zip(batch, scores):
            v = float(v)
            if math.isnan(v):
                raise ValueError(f"scorer returned NaN for {' '.join(s)!r}")
            out[s] = v
        if bar is not None:
            bar.update(len(batch))
    if bar is not None:
        bar.close()
    return out


def evaluate(
    scorer: Scorer,
    *,
    constructions: Iterable[str] | None = None,
    vocab: set[str] | frozenset[str] | None = None,
    skip_unk: bool = False,
    unk_token: str = "<unk>",
    batch_size: int = 256,
    limit: int | None = None,
    suffix: Sequence[str] = (),
    progress: bool = False,
    items: Mapping[str, list[Item]] | None = None,
) -> dict:
    """Score a language model on the targeted syntactic evaluation items.

    Args:
        scorer: ``sentence_logprobs(list[list[str]]) -> Sequence[float]`` (see the module
            docstring): total log-probability of each sentence incl. end of sentence.
        constructions: names to evaluate (default: all 22, see `CONSTRUCTIONS`).
        vocab: the model's vocabulary (word strings). Used only for statistics and
            ``skip_unk``: a sentence is "unk" when one of its words is not in ``vocab``.
        skip_unk: leave out every item with an unk sentence (needs ``vocab``).
        unk_token: replaces words outside ``vocab`` before scoring. Items whose sentences
            become identical that way cannot be told apart (a tie: counted wrong); their
            number is reported as ``identical_after_unk``.
        batch_size: sentences per scorer call.
        limit: at most this many items per construction (evenly spread; for quick runs).
        suffix: tokens appended to every sentence before scoring (e.g. ``(".",)`` for a
            model trained with sentence-final punctuation; upstream wrote ``<s> .``).
        progress: show a tqdm bar.
        items: pre-loaded items (default: the bundled data).

    Returns a JSON-able dict: ``constructions`` (per file: group, row, phenomenon, items,
    items_scored, unk_items, unk_sentences, identical_after_unk, and per comparison
    ``correct`` / ``accuracy``), ``rows`` (the paper's Table 3 rows, anim + inanim
    pooled, one entry per comparison), ``groups`` (short / long: macro mean of the
    ``grammatical>ungrammatical`` row accuracies and pooled micro accuracy), ``settings``
    and ``vocabulary`` (OOV word types and totals; ``None`` without a vocabulary).
    Accuracies are ``None`` when nothing was scored.
    """
    if skip_unk and vocab is None:
        raise UserError("--skip-unk needs the model's vocabulary")
    chosen = resolve_constructions(constructions)
    if items is None:
        items = load_items([c.name for c in chosen])
    suffix = tuple(suffix)

    def tokens(sentence: str) -> tuple[str, ...]:
        """What the scorer sees: the words (unknown ones as ``unk_token``) + suffix."""
        if vocab is None:
            return tuple(sentence.split()) + suffix
        return tuple(w if w in vocab else unk_token for w in sentence.split()) + suffix

    def is_unk(sentence: str) -> bool:
        return vocab is not None and any(w not in vocab for w in sentence.split())

    # 1. choose items, gather statistics
    per_cons: dict[str, dict] = {}
    selected: dict[str, list[Item]] = {}
    oov_types: set[str] = set()
    n_sentences = n_unk_sentences = 0
    for c in chosen:
        its = subsample(list(items[c.name]), limit)
        unk_items = unk_sents = identical = 0
        keep = []
        for it in its:
            flags = [is_unk(s) for s in it.sentences]
            n_sentences += len(flags)
            unk_sents += sum(flags)
            if vocab is not None:
                for s in it.sentences:
                    oov_types.update(w for w in s.split() if w not in vocab)
            if any(flags):
                unk_items += 1
                if len({tokens(s) for s in it.sentences}) < len(it.sentences):
                    identical += 1
                if skip_unk:
                    continue
            keep.append(it)
        n_unk_sentences += unk_sents
        selected[c.name] = keep
        per_cons[c.name] = {
            "group": c.group,
            "phenomenon": c.phenomenon,
            "row": c.row,
            "items": len(its),
            "items_scored": len(keep),
            "unk_items": unk_items if vocab is not None else None,
            "unk_sentences": unk_sents if vocab is not None else None,
            "identical_after_unk": identical if vocab is not None else None,
        }

    # 2. score every distinct sentence once
    logp = score_sentences(
        scorer,
        (tokens(s) for its in selected.values() for it in its for s in it.sentences),
        batch_size=batch_size,
        progress=progress,
    )

    # 3. per construction, per comparison
    for c in chosen:
        rec = per_cons[c.name]
        rec["correct"], rec["accuracy"] = {}, {}
        for label, a, b in c.comparisons:
            ok = sum(
                logp[tokens(it.sentences[a])] > logp[tokens(it.sentences[b])] for it in selected[c.name]
            )
            rec["correct"][label] = int(ok)
            rec["accuracy"][label] = ok / rec["items_scored"] if rec["items_scored"] else None

    # 4. paper rows (anim + inanim pooled) and groups
    rows = []
    for c in chosen:
        for label, _, _ in c.comparisons:
            key = (c.group, c.phenomenon, c.row, label)
            row = next((r for r in rows if (r["group"], r["phenomenon"], r["row"], r["comparison"]) == key), None)
            if row is None:
                row = {"group": c.group, "phenomenon": c.phenomenon, "row": c.row, "comparison": label,
                       "constructions": [], "items": 0, "items_scored": 0, "correct": 0}
                rows.append(row)
            rec = per_cons[c.name]
            row["constructions"].append(c.name)
            row["items"] += rec["items"]
            row["items_scored"] += rec["items_scored"]
            row["correct"] += rec["correct"][label]
    for row in rows:
        row["accuracy"] = row["correct"] / row["items_scored"] if row["items_scored"] else None

    groups = {}
    for g in (SHORT, LONG):
        main = [r for r in rows if r["group"] == g and r["comparison"] == GRAM_UNGRAM]
        if not main:
            continue
        accs = [r["accuracy"] for r in main if r["accuracy"] is not None]
        scored = sum(r["items_scored"] for r in main)
        groups[g] = {
            "rows": len(main),
            "items": sum(r["items"] for r in main),
            "items_scored": scored,
            "macro_accuracy": sum(accs) / len(accs) if accs else None,
            "micro_accuracy": sum(r["correct"] for r in main) / scored if scored else None,
        }

    return {
        "constructions": per_cons,
        "rows": rows,
        "groups": groups,
        "settings": {"skip_unk": skip_unk, "limit": limit, "suffix": list(suffix), "unk_token": unk_token},
        "vocabulary": None
        if vocab is None
        else {
            "size": len(vocab),
            "sentences": n_sentences,
            "unk_sentences": n_unk_sentences,
            "oov_types": sorted(oov_types),
        },
    }


# ---------------------------------------------------------------------------------------
# Reporting
# ---------------------------------------------------------------------------------------


def _fmt(acc: float | None) -> str:
    return "   -" if acc is None else f"{acc:.2f}"


def _row_label(row: dict) -> str:
    label = row["row"]
    if row["phenomenon"] == "npi":
        a, b = row["comparison"].split(">")
        label += f" ({a} > {b})"
    return label


def format_table(results: Mapping[str, dict] | dict, per_construction: bool = False) -> str:
    """A plain-text table in the layout of the paper's Table 3.

    ``results`` is one `evaluate` result or ``{model name: result}`` (one accuracy column
    per model; the item counts and unk counts come from the first). With
    ``per_construction`` the 22 upstream files are listed after the table.
    """
    if "rows" in results and "groups" in results:
        results = {"model": results}
    names = list(results)
    first = results[names[0]]
    width = max([len(_row_label(r)) for r in first["rows"]] + [44]) + 6
    head = f"{'':{width}s}" + "".join(f"{n[:10]:>11s}" for n in names) + f"{'items':>8s}"
    lines = [head, "-" * len(head)]
    for group in (SHORT, LONG):
        rows = [i for i, r in enumerate(first["rows"]) if r["group"] == group]
        if not rows:
            continue
        lines.append(GROUP_TITLES[group])
        phen = None
        for i in rows:
            r = first["rows"][i]
            if r["phenomenon"] != phen:
                phen = r["phenomenon"]
                lines.append(f"  {PHENOMENON_TITLES[phen]}")
            accs = "".join(f"{_fmt(results[n]['rows'][i]['accuracy']):>11s}" for n in names)
            lines.append(f"    {_row_label(r):{width - 4}s}{accs}{r['items_scored']:>8d}")
        g = first["groups"].get(group)
        if g:
            macro = "".join(f"{_fmt(results[n]['groups'][group]['macro_accuracy']):>11s}" for n in names)
            lines.append(f"  {'mean of rows (grammatical > ungrammatical)':{width - 2}s}{macro}{g['items_scored']:>8d}")
    voc = first.get("vocabulary")
    lines.append("")
    if voc is not None:
        skip = first["settings"]["skip_unk"]
        lines.append(
            f"{voc['unk_sentences']} of {voc['sentences']} sentences contain a word outside the "
            f"model's {voc['size']}-word vocabulary ({len(voc['oov_types'])} word types); "
            + ("their items were skipped (--skip-unk)." if skip
               else "they were scored with those words as <unk> (use --skip-unk to leave them out).")
        )
        ident = sum(c["identical_after_unk"] or 0 for c in first["constructions"].values())
        if ident and not skip:
            lines.append(f"{ident} items become identical sentences after <unk> mapping (always counted wrong).")
    else:
        lines.append("No vocabulary given: out-of-vocabulary words were not counted.")
    if per_construction:
        lines += ["", f"{'construction':32s}{'group':>6s}" + "".join(f"{n[:10]:>11s}" for n in names)
                  + f"{'items':>8s}{'unk':>8s}  comparison"]
        for name, rec in first["constructions"].items():
            for label in rec["accuracy"]:
                accs = "".join(f"{_fmt(results[n]['constructions'][name]['accuracy'][label]):>11s}" for n in names)
                unk = "-" if rec["unk_items"] is None else str(rec["unk_items"])
                lines.append(f"{name:32s}{rec['group']:>6s}{accs}{rec['items_scored']:>8d}{unk:>8s}  {label}")
    return "\n".join(lines)
