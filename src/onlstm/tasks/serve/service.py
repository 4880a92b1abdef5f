"""The work behind ``onlstm serve``'s JSON API, without the web framework.

A :class:`Viewer` holds what the server may use, all named when it starts: model folders
(checked at once, loaded on first use and kept) and treebanks (the bundled WSJ sample and
Sinica sample, and files named on the command line; nothing a request names is read from
disk). Its three tasks:

- :meth:`Viewer.parse` -- sentences to trees with :func:`onlstm.tasks.parse.parse` (batched),
  each with its distances (d_f and d_i of every layer, docs/spec.md §2), bracketed form and
  SVG drawing (:mod:`onlstm.tree_svg`);
- :meth:`Viewer.summary` -- a treebank's ``parse-eval`` report (every layer, the layer mean
  and the four baselines, docs/spec.md §3) and the sentence F1 of one system on each
  sentence;
- :meth:`Viewer.sentence` -- one treebank sentence: gold and predicted trees, their matched,
  missing and extra constituents, the distances, drawn side by side.

A treebank's distances are computed once per model, and its systems and scores once per
(treebank, model, decoder, distance). A request the API refuses raises :class:`ApiError`
(a 4xx status and a one-line message). One lock serialises the model work, so concurrent
requests never compute the same thing twice nor oversubscribe the CPU.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Optional, Union

from ... import bundled
from ... import trees as T
from ...errors import UserError
from ...lm_config import read_model_config
from ...metrics import score_spans
from ...text import TextOptions
from ...tree_svg import labels_by_span, span_marks, tree_svg
from .. import parse_eval
from ..parse import DECODERS, DISTANCES, default_layer, layer_name, parse

__all__ = ["ApiError", "Limits", "TreebankSource", "Viewer", "bundled_treebanks", "file_treebank",
           "check_model_folder", "default_models"]

DECODER_NAMES = tuple(sorted(DECODERS, key=lambda name: name != "greedy"))  # greedy first: the default
DISTANCE_SYMBOLS = {"forget": "d_f", "input": "d_i"}


class ApiError(Exception):
    """A request the API refuses: an HTTP ``status`` (4xx) and a one-line ``message``."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


@dataclass(frozen=True)
class Limits:
    """What one ``/api/parse`` request may hold (beyond: status 413)."""

    max_sentences: int = 100
    max_chars: int = 20_000  # all sentences together
    max_sentence_chars: int = 2_000


@dataclass
class TreebankSource:
    """A treebank the server may read: ``inputs`` for :func:`parse_eval.load_sentences`
    (None: the bundled sample of ``format``), the model it is parsed with by default, and
    its sentences once read."""

    name: str
    description: str
    inputs: Optional[list[str]] = None
    format: Optional[str] = None
    default_model: Optional[str] = None
    sentences: Optional[list] = None


@dataclass
class _Model:
    name: str
    folder: Path
    config: Any  # LMConfig, checked at start
    source: str
    model: Any = None  # the LanguageModel, once loaded


@dataclass
class _Result:
    """One (treebank, model, decoder, distance): the systems' trees, the report, and every
    system's F1 on every sentence."""

    systems: dict
    report: Any
    f1: dict = field(default_factory=dict)


def check_model_folder(folder: Union[str, Path]) -> Any:
    """The checked :class:`~onlstm.lm_config.LMConfig` of an ON-LSTM model folder, read
    without loading the weights; a :class:`UserError` naming the folder otherwise."""
    folder = Path(folder)
    if not folder.is_dir():
        raise UserError(f"{folder}: not a model folder (no such directory)")
    if not (folder / "config.json").is_file() or not (folder / "model.safetensors").is_file():
        raise UserError(f"{folder}: not a model folder (needs config.json and model.safetensors)")
    config, _ = read_model_config(folder / "config.json")
    if config.cell != "onlstm":
        raise UserError(f"{folder}: an LSTM baseline (cell={config.cell!r}); parsing needs an ON-LSTM model")
    return config


def default_models() -> dict[str, Path]:
    """The bundled models by name, the default one first."""
    names = sorted(bundled.model_names(), key=lambda name: name != bundled.DEFAULT_MODEL)
    return {name: bundled.model_path(name) for name in names}


def bundled_treebanks(models: Sequence[str] = ()) -> dict[str, TreebankSource]:
    """The bundled WSJ sample (``wsj``, parsed with ``ptb-onlstm`` by default) and Sinica
    sample (``sinica``, with ``zh-onlstm``); the default model is used only if served."""
    return {
        "wsj": TreebankSource("wsj", parse_eval.BUNDLED_DESCRIPTION, None, "ptb",
                              "ptb-onlstm" if "ptb-onlstm" in models else None),
        "sinica": TreebankSource("sinica", parse_eval.SINICA_DESCRIPTION, None, "sinica",
                                 "zh-onlstm" if "zh-onlstm" in models else None),
    }


_SUFFIXES = re.compile(r"(\.(mrg|icg|txt|ptb|tree|trees))?(\.gz)?$", re.IGNORECASE)


def file_treebank(path: Union[str, Path], taken: Sequence[str] = (), max_length: Optional[int] = None,
                  default_model: Optional[str] = None) -> TreebankSource:
    """A treebank file (or folder, or glob) named at start, read now (its errors are
    UserErrors naming the file); named after the file, made unique among ``taken``."""
    sentences = parse_eval.load_sentences([str(path)], max_length=max_length)
    base = _SUFFIXES.sub("", Path(str(path)).name) or "treebank"
    base = re.sub(r"[^A-Za-z0-9_.-]+", "-", base).strip("-.") or "treebank"
    name, k = base, 2
    while name in taken:
        name, k = f"{base}-{k}", k + 1
    return TreebankSource(name, str(path), [str(path)], None, default_model, sentences)


def _choice(value: Any, choices: Sequence[str], what: str) -> str:
    if value is None or value == "":
        return choices[0]
    if not isinstance(value, str) or value not in choices:
        raise ApiError(422, f"{what} must be one of {', '.join(choices)}; got {value!r}")
    return value


def _preview(words: Sequence[str], limit: int = 90) -> str:
    text = " ".join(words)
    return text if len(text) <= limit else text[:limit - 1].rstrip() + "…"


def _rows(values) -> list:
    return [[round(float(v), 6) for v in row] for row in values]


class Viewer:
    """Models and treebanks served, and the caches of their results.

    ``models``: name -> model folder (default: the bundled models); each is checked now
    (:func:`check_model_folder`) and loaded on first use. ``treebanks``: name ->
    :class:`TreebankSource` (default: :func:`bundled_treebanks`). ``max_length``: read only
    treebank sentences of at most that many words (as ``parse-eval --max-length``)."""

    def __init__(self, models: Optional[Mapping[str, Union[str, Path]]] = None,
                 treebanks: Optional[Mapping[str, TreebankSource]] = None, *, limits: Limits = Limits(),
                 batch_size: int = 64, max_length: Optional[int] = None) -> None:
        chosen = default_models() if models is None else dict(models)
        if not chosen:
            raise UserError("no model to serve: none is bundled; name a model folder with --model DIR")
        self.models = {name: _Model(name, Path(folder), check_model_folder(folder),
                                    "bundled" if bundled.model_path(name) == Path(folder) else "folder")
                       for name, folder in chosen.items()}
        self.treebanks = dict(bundled_treebanks(list(self.models)) if treebanks is None else treebanks)
        self.limits = limits
        self.batch_size = batch_size
        self.max_length = max_length
        self._lock = threading.RLock()
        self._distances: dict = {}
        self._results: dict = {}

    # ----------------------------------------------------------------------------------
    # What is served
    # ----------------------------------------------------------------------------------

    def model_list(self) -> list[dict]:
        out = []
        for entry in self.models.values():
            c = entry.config
            layers = len(c.hidden_sizes)
            text = TextOptions.from_dict(c.text)
            out.append(dict(name=entry.name, source=entry.source, layers=layers,
                            default_layer=self._default_layer(entry) + 1, parse_layer=c.parse_layer,
                            sizes=[c.emb_size, *c.hidden_sizes], vocabulary=c.vocab_size,
                            tokenizer=text.tokenizer, char_level=text.char_level, loaded=entry.model is not None))
        return out

    def treebank_list(self) -> list[dict]:
        return [dict(name=src.name, description=src.description, format=src.format or "ptb",
                     sentences=None if src.sentences is None else len(src.sentences),
                     default_model=self._default_model(src).name,
                     computed=sorted({key[1] for key in self._distances if key[0] == src.name}))
                for src in self.treebanks.values()]

    # ----------------------------------------------------------------------------------
    # Arguments of a request
    # ----------------------------------------------------------------------------------

    def _entry(self, name: Any) -> _Model:
        if name is None or name == "":
            return next(iter(self.models.values()))
        if not isinstance(name, str) or name not in self.models:
            raise ApiError(404, f"unknown model {name!r}; this server has: {', '.join(self.models)}")
        return self.models[name]

    def _default_model(self, src: TreebankSource) -> _Model:
        return self.models.get(src.default_model or "", next(iter(self.models.values())))

    @staticmethod
    def _default_layer(entry: _Model) -> int:
        c = entry.config
        return c.parse_layer - 1 if c.parse_layer is not None else default_layer(len(c.hidden_sizes))

    def _layer(self, value: Any, entry: _Model) -> Union[int, str]:
        """0-based layer or ``"mean"`` from a request's ``layer``: absent -> the model's
        default, ``1..L`` (a number or its digits), or ``"mean"``."""
        layers = len(entry.config.hidden_sizes)
        if value is None or value == "":
            return self._default_layer(entry)
        if value == "mean":
            return "mean"
        if isinstance(value, str) and re.fullmatch(r"[0-9]{1,6}", value.strip()):
            value = int(value)
        if isinstance(value, int) and not isinstance(value, bool) and 1 <= value <= layers:
            return value - 1
        raise ApiError(422, f"layer must be 1..{layers} or 'mean' for model {entry.name}; got {value!r}")

    def _loaded(self, entry: _Model):
        from ...lm import LanguageModel

        with self._lock:
            if entry.model is None:
                entry.model = LanguageModel.from_pretrained(entry.folder)
            return entry.model

    # ----------------------------------------------------------------------------------
    # Parsing sentences
    # ----------------------------------------------------------------------------------

    def parse(self, sentences: Any, model: Any = None, layer: Any = None, distance: Any = None,
              decoder: Any = None, pretokenized: bool = False) -> dict:
        """Parse ``sentences`` (strings; blank ones skipped) and return every sentence's
        words, tree, bracketed form, d_f and d_i of every layer and SVG drawing."""
        if not isinstance(sentences, list) or not all(isinstance(s, str) for s in sentences):
            raise ApiError(422, "sentences must be a list of strings")
        texts = [s for s in sentences if s.strip()]
        if not texts:
            raise ApiError(422, "no sentence to parse: the text is empty")
        lim = self.limits
        if len(texts) > lim.max_sentences:
            raise ApiError(413, f"too many sentences: {len(texts):,} (at most {lim.max_sentences:,} per request)")
        total = sum(len(s) for s in texts)
        if total > lim.max_chars:
            raise ApiError(413, f"too much text: {total:,} characters (at most {lim.max_chars:,} per request)")
        longest = max(range(len(texts)), key=lambda i: len(texts[i]))
        if len(texts[longest]) > lim.max_sentence_chars:
            raise ApiError(413, f"sentence {longest + 1} is too long: {len(texts[longest]):,} characters "
                                f"(at most {lim.max_sentence_chars:,})")
        if not isinstance(pretokenized, bool):
            raise ApiError(422, f"pretokenized must be true or false; got {pretokenized!r}")
        entry = self._entry(model)
        chosen = self._layer(layer, entry)
        distance = _choice(distance, DISTANCES, "distance")
        decoder = _choice(decoder, DECODER_NAMES, "decoder")
        lm = self._loaded(entry)
        with self._lock:
            try:
                parsed = parse(lm, texts, layer=chosen, decoder=decoder, batch_size=self.batch_size,
                               distance=distance, pretokenized=pretokenized)
            except UserError as err:
                raise ApiError(422, str(err)) from None
        layers = len(entry.config.hidden_sizes)
        out = []
        for p in parsed:
            item = p.to_dict()
            item["bracketed"] = T.to_bracketed(p.tree)
            rows = item["distances"] if distance == "forget" else item["input_distances"]
            item["svg"] = tree_svg(p.tree, rows, chosen=chosen, distance_name=DISTANCE_SYMBOLS[distance])
            out.append(item)
        return dict(model=entry.name, layer=layer_name(chosen, layers), layers=layers, distance=distance,
                    decoder=decoder, skipped_empty=len(sentences) - len(texts), sentences=out)

    # ----------------------------------------------------------------------------------
    # Treebanks
    # ----------------------------------------------------------------------------------

    def _treebank(self, name: Any) -> TreebankSource:
        src = self.treebanks.get(name) if isinstance(name, str) else None
        if src is None:
            raise ApiError(404, f"unknown treebank {name!r}; this server has: {', '.join(self.treebanks)}")
        with self._lock:
            if src.sentences is None:
                try:
                    src.sentences = parse_eval.load_sentences(src.inputs, max_length=self.max_length,
                                                              format=src.format)
                except UserError as err:
                    raise ApiError(422, f"treebank {src.name}: {err}") from None
        return src

    def _result(self, src: TreebankSource, entry: _Model, decoder: str, distance: str) -> _Result:
        key = (src.name, entry.name, decoder, distance)
        with self._lock:
            if key in self._results:
                return self._results[key]
            pairs = self._distances.get((src.name, entry.name))
            if pairs is None:
                try:
                    pairs = parse_eval.model_distances(self._loaded(entry), src.sentences, self.batch_size)
                except UserError as err:
                    raise ApiError(422, str(err)) from None
                self._distances[(src.name, entry.name)] = pairs
            gold = src.sentences
            systems = parse_eval.decode_systems(gold, [pair[DISTANCES.index(distance)] for pair in pairs], decoder,
                                                self._loaded(entry).config.direction)
            systems.update(parse_eval.baseline_systems(gold))
            report = parse_eval.build_report(gold, systems, treebank=src.description, max_length=self.max_length,
                                             seed=0, distance=distance, decoder=decoder)
            f1 = {name: [score_spans(T.spans(tree), s.spans).f1 for tree, s in zip(trees, gold)]
                  for name, trees in systems.items()}
            result = self._results[key] = _Result(systems, report, f1)
            return result

    def _setting(self, treebank: Any, model: Any, layer: Any, decoder: Any, distance: Any):
        src = self._treebank(treebank)
        entry = self._default_model(src) if model is None or model == "" else self._entry(model)
        chosen = self._layer(layer, entry)
        decoder = _choice(decoder, DECODER_NAMES, "decoder")
        distance = _choice(distance, DISTANCES, "distance")
        system = layer_name(chosen, len(entry.config.hidden_sizes))
        return src, entry, chosen, system, decoder, distance, self._result(src, entry, decoder, distance)

    def summary(self, treebank: Any, model: Any = None, layer: Any = None, decoder: Any = None,
                distance: Any = None) -> dict:
        """The ``parse-eval`` report of a treebank (as ``parse-eval --json`` and its table)
        and, for the chosen layer's system, every sentence's F1."""
        src, entry, chosen, system, decoder, distance, result = self._setting(treebank, model, layer, decoder,
                                                                               distance)
        f1 = result.f1[system]
        sentences = [dict(index=i, length=len(s.words), text=_preview(s.words), f1=round(f1[i], 4),
                          source=s.source) for i, s in enumerate(src.sentences)]
        return dict(treebank=src.name, description=src.description, model=entry.name, system=system,
                    layers=len(entry.config.hidden_sizes), decoder=decoder, distance=distance,
                    report=result.report.to_dict(), table=parse_eval.format_table(result.report),
                    sentences=sentences)

    def sentence(self, treebank: Any, index: Any, model: Any = None, layer: Any = None, decoder: Any = None,
                 distance: Any = None) -> dict:
        """Sentence ``index`` (0-based) of a treebank: its gold and predicted trees, their
        matched / missing / extra constituents, every system's F1, the distances, and both
        trees drawn (the predicted one over the distances)."""
        count = len(self._treebank(treebank).sentences)
        if isinstance(index, bool) or not isinstance(index, int) or not 0 <= index < count:  # before any parsing
            raise ApiError(404, f"no sentence {index!r} in treebank {treebank}: it has {count:,} "
                                f"(indices 0..{count - 1:,})")
        src, entry, chosen, system, decoder, distance, result = self._setting(treebank, model, layer, decoder,
                                                                               distance)
        gold = src.sentences[index]
        n = len(gold.words)
        predicted = result.systems[system][index]
        predicted_spans = T.spans(predicted)
        score = score_spans(predicted_spans, gold.spans)
        gold_marks, predicted_marks = span_marks(predicted_spans, gold.spans)
        labels = labels_by_span(gold.labeled_spans)
        if gold.sentence_labels:
            labels[(0, n)] = "/".join(dict.fromkeys(gold.sentence_labels))
        d_f, d_i = self._distances[(src.name, entry.name)][index]
        rows = _rows(d_f if distance == "forget" else d_i)
        gold_svg = tree_svg(gold.tree, marks=gold_marks, labels=labels, title="gold: " + " ".join(gold.words))
        predicted_svg = tree_svg(predicted, rows, chosen=chosen, marks=predicted_marks,
                                 labels={s: labels[s] for s in predicted_spans if s in labels},
                                 distance_name=DISTANCE_SYMBOLS[distance],
                                 title=f"{system}: " + " ".join(gold.words))

        def spans(kind: str, marks: dict) -> list:
            return sorted([list(s) for s, m in marks.items() if m == kind])

        return dict(treebank=src.name, index=index, total=count, source=gold.source, words=gold.words,
                    model_words=gold.model_words, model=entry.name, system=system, decoder=decoder,
                    distance=distance, gold=gold.tree, predicted=predicted,
                    bracketed=dict(gold=T.to_bracketed(gold.tree), predicted=T.to_bracketed(predicted)),
                    labels=[[s, e, label] for s, e, label in gold.labeled_spans],
                    spans=dict(matched=spans("match", predicted_marks), missing=spans("miss", gold_marks),
                               extra=spans("extra", predicted_marks)),
                    score=dict(precision=score.precision, recall=score.recall, f1=score.f1, matched=score.matched,
                               predicted=score.predicted, gold=score.gold),
                    scores={name: round(values[index], 4) for name, values in result.f1.items()},
                    distances=_rows(d_f), input_distances=_rows(d_i),
                    svg=dict(gold=gold_svg, predicted=predicted_svg))
