"""``onlstm import-published``: a checkpoint of the published ON-LSTM code as a model folder.

The published ``main.py`` (yikangshen/Ordered-Neurons) saves ``[model, criterion, optimizer]``
with ``torch.save`` and caches its vocabulary as a pickled ``data.Corpus`` in
``corpus.<md5>.data``. Both are read by :func:`onlstm.convert.load_published_pickle` (a
restricted unpickler: nothing from the files runs); the model's tensors and hyperparameters
become an :class:`~onlstm.lm.LanguageModel` in the published DropConnect convention
(docs/spec.md §4), so its weights are copied unchanged, and a normal model folder is written.

Refused: a checkpoint whose model is not the published ``model.RNNModel`` over an
``ON_LSTM.ONLSTMStack``, untied decoder and embedding, a split (hierarchical) softmax
criterion, parameters we would not use, and a vocabulary that does not fit the embedding.
"""

from __future__ import annotations

import json
import math
from dataclasses import asdict
from pathlib import Path
from typing import Dict, List, Tuple

from ..convert import PublishedObject, check_tied, convert_published_state_dict, load_published_pickle, \
    module_state_dict
from ..errors import UserError
from ..lm import CONFIG_FILE, VOCAB_FILE, WEIGHTS_FILE, LanguageModel, LMConfig
from ..text import EOS, UNK, Vocabulary
from ..training import OutputKind, json_file_has, open_output, prepare_output

PUBLISHED_EOS = ("</s>", "<eos>")  # data.Dictionary's end-of-line token (the published data.py; AWD-LSTM's)
SOURCE = "yikangshen/Ordered-Neurons main.py"


def _is(obj, cls: str) -> bool:
    return isinstance(obj, PublishedObject) and obj.published_class == cls


def _number(attrs: dict, key: str, where: str, kind=float):
    value = attrs.get(key)
    if isinstance(value, bool) or not isinstance(value, (int, float)) or (kind is int and not isinstance(value, int)):
        raise UserError(f"{where}: not a published ON-LSTM checkpoint (its model has no numeric '{key}')")
    return kind(value)


def _find_model(obj, where: str) -> Tuple[PublishedObject, List]:
    """The ``model.RNNModel`` of a ``[model, criterion, optimizer]`` list (or a bare model)."""
    parts = list(obj) if isinstance(obj, (list, tuple)) else [obj]
    if not parts or not _is(parts[0], "model.RNNModel"):
        found = type(parts[0]).__name__ if parts and not isinstance(parts[0], PublishedObject) else (
            parts[0].published_class if parts else "an empty list")
        raise UserError(f"{where}: not a published ON-LSTM checkpoint (expected [model.RNNModel, criterion, "
                        f"optimizer] as main.py saves it, found {found})")
    return parts[0], parts[1:]


def read_checkpoint(path) -> Tuple[LMConfig, Dict, dict]:
    """``(config, state_dict, info)`` of a published checkpoint: the config in the published
    DropConnect convention, the state dict keyed for :class:`LanguageModel`, and a summary."""
    where = str(path)
    model, rest = _find_model(load_published_pickle(path), where)
    attrs = model.attrs
    modules = attrs.get("_modules") or {}
    rnn = modules.get("rnn")
    if not _is(rnn, "ON_LSTM.ONLSTMStack"):
        found = rnn.published_class if isinstance(rnn, PublishedObject) else type(rnn).__name__
        raise UserError(f"{where}: not a published ON-LSTM checkpoint (model.rnn is {found}, not "
                        "ON_LSTM.ONLSTMStack; AWD-LSTM checkpoints are not supported)")
    if attrs.get("tie_weights") is not True:
        raise UserError(f"{where}: the published model was built with untied decoder and embedding "
                        "(tie_weights is not True); onlstm language models are tied, so it cannot be imported")
    cell_list = (rnn.attrs.get("_modules") or {}).get("cells")
    cells = list((cell_list.attrs.get("_modules") or {}).values()) if isinstance(cell_list, PublishedObject) else []
    if not cells or not all(_is(c, "ON_LSTM.ONLSTMCell") for c in cells):
        raise UserError(f"{where}: not a published ON-LSTM checkpoint (model.rnn.cells is not a list of ONLSTMCell)")
    chunks = {_number(c.attrs, "chunk_size", where, int) for c in cells}
    wdrops = set()
    for c in cells:
        hh = (c.attrs.get("_modules") or {}).get("hh")
        if not _is(hh, "ON_LSTM.LinearDropConnect"):
            raise UserError(f"{where}: not a published ON-LSTM checkpoint (a cell's hh is not LinearDropConnect)")
        wdrops.add(_number(hh.attrs, "dropout", where))
    if len(chunks) != 1 or len(wdrops) != 1:
        raise UserError(f"{where}: the layers differ in chunk size {sorted(chunks)} or DropConnect {sorted(wdrops)}; "
                        "an onlstm model has one of each")
    if rest and _is(rest[0], "splitcross.SplitCrossEntropyLoss") and _number(rest[0].attrs, "nsplits", where, int) > 1:
        raise UserError(f"{where}: the model was trained with a split (hierarchical) softmax "
                        f"({rest[0].attrs['nsplits']} splits); only a full softmax decoder can be imported")
    wdrop = wdrops.pop()
    published = module_state_dict(model)
    expected = {"encoder.weight", "decoder.weight", "decoder.bias"} | {
        f"rnn.cells.{k}.{part}.{kind}" for k in range(len(cells)) for part in ("ih.0", "hh") for kind in ("weight", "bias")}
    if set(published) != expected:
        extra, missing = sorted(set(published) - expected), sorted(expected - set(published))
        raise UserError(f"{where}: the published model's parameters are not those of an ON-LSTM language model "
                        f"(unexpected {extra[:4]}, missing {missing[:4]})")
    try:
        check_tied(published)
        state = convert_published_state_dict(published, wdrop, target="lm", convention="published")
    except UserError:
        raise
    except ValueError as err:
        raise UserError(f"{where}: {err}") from None
    vocab_size, emb_size = published["encoder.weight"].shape
    sizes = rnn.attrs.get("sizes")
    if not (isinstance(sizes, list) and len(sizes) == len(cells) + 1 and all(isinstance(n, int) for n in sizes)):
        raise UserError(f"{where}: not a published ON-LSTM checkpoint (model.rnn.sizes is not a list of layer sizes)")
    config = LMConfig(
        vocab_size=int(vocab_size), emb_size=int(emb_size), hidden_sizes=list(sizes[1:]), cell="onlstm",
        chunk_size=chunks.pop(), master_input="paper", dropout=_number(attrs, "dropout", where),
        dropouth=_number(rnn.attrs, "dropout", where), dropouti=_number(attrs, "dropouti", where),
        dropoute=_number(attrs, "dropoute", where), wdrop=wdrop, dropconnect_convention="published")
    optimizer = rest[1].published_class if len(rest) > 1 and isinstance(rest[1], PublishedObject) else None
    return config, state, {"optimizer": optimizer}


def read_vocabulary(path) -> Vocabulary:
    """The vocabulary of a published ``corpus.<md5>.data`` (a ``data.Corpus``, or its
    ``data.Dictionary``), ids unchanged; its end-of-line token becomes ``<eos>``."""
    where = str(path)
    obj = load_published_pickle(path)
    if _is(obj, "data.Corpus"):
        obj = obj.attrs.get("dictionary")
    if not _is(obj, "data.Dictionary"):
        raise UserError(f"{where}: not a published corpus file (expected a pickled data.Corpus or data.Dictionary)")
    words = obj.attrs.get("idx2word")
    if not isinstance(words, list) or not all(isinstance(w, str) for w in words):
        raise UserError(f"{where}: the corpus dictionary has no idx2word list of words")
    eos = [w for w in PUBLISHED_EOS if w in words]
    if not eos:
        raise UserError(f"{where}: the vocabulary has no end-of-line token ({' or '.join(PUBLISHED_EOS)})")
    if len(eos) > 1:
        raise UserError(f"{where}: the vocabulary has both {eos[0]!r} and {eos[1]!r}; which one ends a line is ambiguous")
    if UNK not in words:
        raise UserError(f"{where}: the vocabulary has no {UNK!r}; onlstm maps unknown words to it")
    tokens = [EOS if w == eos[0] else w for w in words]
    try:
        return Vocabulary(tokens)
    except ValueError as err:
        raise UserError(f"{where}: {err}") from None


def _is_imported_model(folder: Path) -> bool:
    """A model folder this command wrote (its config.json records the import)."""
    if not json_file_has(folder / CONFIG_FILE, "model", "training"):
        return False
    config = json.loads((folder / CONFIG_FILE).read_text(encoding="utf-8"))
    return isinstance(config["training"], dict) and "imported_from" in config["training"]


#: What ``import-published`` writes (see `onlstm.training.prepare_output`): a model folder;
#: one it imported before is written again, any other folder needs ``overwrite``.
IMPORTED_MODEL = OutputKind("model folder imported by import-published",
                            frozenset({CONFIG_FILE, WEIGHTS_FILE, VOCAB_FILE}), _is_imported_model)


def import_published(checkpoint, corpus, out, parse_layer=None, overwrite: bool = False) -> dict:
    """Write the model folder ``out`` from a published checkpoint and corpus file; returns a
    summary. ``out`` must be new, empty or an earlier import (``overwrite``: any folder)."""
    out = Path(out)
    prepare_output(out, IMPORTED_MODEL, overwrite=overwrite)
    config, state, info = read_checkpoint(checkpoint)
    vocab = read_vocabulary(corpus)
    if len(vocab) != config.vocab_size:
        raise UserError(f"{corpus}: the vocabulary has {len(vocab)} words but the checkpoint's embedding has "
                        f"{config.vocab_size} rows: not the corpus this model was trained on")
    if parse_layer is not None:
        config = LMConfig.from_dict({**asdict(config), "parse_layer": parse_layer})
    model = LanguageModel(config, vocab)
    model.load_state_dict({k: v.float() for k, v in state.items()})
    if not all(math.isfinite(float(v.float().abs().max())) for v in state.values() if v.numel()):
        raise UserError(f"{checkpoint}: the published weights hold NaN or infinite values")
    training = {"data": None, "imported_from": {"checkpoint": Path(checkpoint).name, "corpus": Path(corpus).name,
                                                "code": SOURCE, "optimizer": info["optimizer"]}}
    open_output(out, IMPORTED_MODEL, overwrite=overwrite)
    model.save_pretrained(out, extra_config={"training": training})
    return {"out": str(out), "vocab_size": config.vocab_size, "layer_sizes": [config.emb_size] + config.hidden_sizes,
            "chunk_size": config.chunk_size, "wdrop": config.wdrop, "dropconnect_convention": "published",
            "parameters": model.num_parameters(), "optimizer": info["optimizer"]}
