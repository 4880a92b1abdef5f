"""A language model's architecture (:class:`LMConfig`) and the checks a model folder passes
before anything is built from it (the architecture is docs/spec.md §4).

A model folder is untrusted input. ``config.json`` is checked field by field: types (an
integer is an integer, not ``true`` nor ``"16"``), ranges, every size against
:data:`MAX_SIZE` and the parameter count the sizes imply against :data:`MAX_PARAMETERS`.
``model.safetensors`` is then checked from its header alone -- the name, shape and dtype of
every tensor against what the config implies (:func:`weight_shapes`) -- so a config asking
for 10**9 hidden units, or one that disagrees with its weights, fails in milliseconds
before the model is allocated. Every failure is one :class:`~onlstm.errors.UserError` line
naming the file and the field, e.g. ``m/config.json: model.chunk_size must be an integer
from 1 to 100,000, got 0``. A library caller building ``LMConfig(...)`` with a bad value
gets the same check (a ``ValueError`` subclass naming the field).
"""

from __future__ import annotations

import numbers
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any, Dict, List, Optional, Tuple

from .cell import MASTER_INPUT_VARIANTS
from .errors import UserError
from .fileio import PathLike, decode_utf8, excerpt, parse_json, read_bytes
from .layer import DROPCONNECT_CONVENTIONS
from .text import TextOptions

__all__ = ["LMConfig", "ConfigFieldError", "CONFIG_FORMAT", "CONFIG_VERSION", "MAX_SIZE", "MAX_VOCAB",
           "MAX_LAYERS", "MAX_PARAMETERS", "WEIGHT_DTYPES", "estimate_parameters", "weight_shapes",
           "read_model_config", "check_weights_header", "DIRECTIONS"]

CONFIG_FORMAT = "onlstm-language-model"
CONFIG_VERSION = 1

#: Bounds of a sane model: each embedding / hidden / chunk size, the vocabulary, the number of
#: layers, and the parameters all of them imply (2e9 float32 parameters are 8 GB).
MAX_SIZE = 100_000
MAX_VOCAB = 10_000_000
MAX_LAYERS = 64
MAX_PARAMETERS = 2_000_000_000

#: safetensors dtypes a model's weights may have; all are converted to float32 when loaded.
WEIGHT_DTYPES = ("F32", "F16", "BF16", "F64")

#: Reading directions of a language model (LMConfig.direction).
DIRECTIONS = ("forward", "backward")

_PROBABILITIES = ("dropout", "dropouth", "dropouti", "dropoute", "wdrop")


class ConfigFieldError(UserError):
    """A bad value of one :class:`LMConfig` field; the message starts with the field's name."""

    def __init__(self, name: str, problem: str):
        self.field = name
        super().__init__(f"{name} {problem}")


def _integer(name: str, value: Any, low: int, high: int) -> int:
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or not low <= value <= high:
        raise ConfigFieldError(name, f"must be an integer from {low:,} to {high:,}, got {excerpt(value)}")
    return int(value)


def _probability(name: str, value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, numbers.Real) or not 0.0 <= value < 1.0:
        raise ConfigFieldError(name, f"must be a probability in [0, 1), got {excerpt(value)}")
    return float(value)


def _choice(name: str, value: Any, choices: Tuple[str, ...]) -> str:
    if not isinstance(value, str) or value not in choices:
        raise ConfigFieldError(name, f"must be one of {', '.join(map(repr, choices))}, got {excerpt(value)}")
    return value


@dataclass
class LMConfig:
    """Everything that defines a language model's architecture (saved as config.json's ``"model"``).

    Every field is checked when the config is made (:class:`ConfigFieldError`, a ``ValueError``
    naming the field); numbers are stored as plain ``int`` / ``float``."""

    vocab_size: int
    emb_size: int = 400
    hidden_sizes: List[int] = field(default_factory=lambda: [1150, 1150, 400])  # output size of each layer
    cell: str = "onlstm"  # "onlstm" or "lstm"
    chunk_size: int = 10
    master_input: str = "paper"
    dropout: float = 0.45  # locked dropout on the last layer's output
    dropouth: float = 0.3  # locked dropout between layers
    dropouti: float = 0.5  # locked dropout on the embedded input
    dropoute: float = 0.1  # embedding dropout (whole words)
    wdrop: float = 0.45  # DropConnect on the recurrent weights
    # "published" | "rescaled" (see onlstm.layer); None: the cell's published code's ("published"
    # for ON-LSTM's LinearDropConnect, "rescaled" for AWD-LSTM's WeightDrop). A saved config
    # without the key was trained with "rescaled" (from_dict).
    dropconnect_convention: Optional[str] = None
    text: dict = field(default_factory=lambda: TextOptions().to_dict())
    parse_layer: Optional[int] = None  # 1-based layer `parse` uses by default (None: the middle one)
    # "forward": reads text left to right (the paper's); "backward": trained on the reversed
    # token stream, so it reads each sentence right to left (LanguageModel.reading_order)
    direction: str = "forward"

    def __post_init__(self):
        self.vocab_size = _integer("vocab_size", self.vocab_size, 1, MAX_VOCAB)
        self.emb_size = _integer("emb_size", self.emb_size, 1, MAX_SIZE)
        sizes = self.hidden_sizes
        if not isinstance(sizes, (list, tuple)) or not 1 <= len(sizes) <= MAX_LAYERS:
            raise ConfigFieldError("hidden_sizes", f"must be a list of 1 to {MAX_LAYERS} positive integers "
                                   f"(one per layer), got {excerpt(sizes)}")
        self.hidden_sizes = [_integer(f"hidden_sizes[{k}]", n, 1, MAX_SIZE) for k, n in enumerate(sizes)]
        self.cell = _choice("cell", self.cell, ("onlstm", "lstm"))
        self.chunk_size = _integer("chunk_size", self.chunk_size, 1, MAX_SIZE)
        self.master_input = _choice("master_input", self.master_input, MASTER_INPUT_VARIANTS)
        self.direction = _choice("direction", self.direction, DIRECTIONS)
        for name in _PROBABILITIES:
            setattr(self, name, _probability(name, getattr(self, name)))
        if self.dropconnect_convention is None:
            self.dropconnect_convention = "published" if self.cell == "onlstm" else "rescaled"
        _choice("dropconnect_convention", self.dropconnect_convention, DROPCONNECT_CONVENTIONS)
        if not (self.text is None or isinstance(self.text, (dict, TextOptions))):
            raise ConfigFieldError("text", f"must be an object of text options, got {excerpt(self.text)}")
        try:
            TextOptions.from_dict(self.text)
        except (UserError, TypeError) as err:
            raise ConfigFieldError("text", f"is not valid: {err}") from None
        if self.parse_layer is not None:
            n = len(self.hidden_sizes)
            if isinstance(self.parse_layer, bool) or not isinstance(self.parse_layer, numbers.Integral) \
                    or not 1 <= self.parse_layer <= n:
                raise ConfigFieldError("parse_layer", f"must be 1..{n} (a layer of hidden_sizes) or null, "
                                       f"got {excerpt(self.parse_layer)}")
            self.parse_layer = int(self.parse_layer)
        if self.hidden_sizes[-1] != self.emb_size:
            raise ConfigFieldError("emb_size", f"({self.emb_size}) must equal the last layer size, hidden_sizes[-1] "
                                   f"({self.hidden_sizes[-1]}), to tie the decoder")
        if self.cell == "onlstm":
            for k, n in enumerate(self.hidden_sizes):
                if n % self.chunk_size:
                    raise ConfigFieldError("chunk_size", f"({self.chunk_size}) must divide every layer size; "
                                           f"hidden_sizes[{k}]={n} is not divisible")
        total = estimate_parameters(self)
        if total > MAX_PARAMETERS:
            raise ConfigFieldError("hidden_sizes", f"{self.hidden_sizes} with emb_size={self.emb_size} and "
                                   f"vocab_size={self.vocab_size} imply {total:,} parameters, more than the "
                                   f"{MAX_PARAMETERS:,} onlstm builds")

    @classmethod
    def from_dict(cls, d: dict) -> "LMConfig":
        """The config saved as ``config.json["model"]``; one written before the DropConnect
        convention was recorded loads as ``"rescaled"``, the convention it was trained with."""
        if not isinstance(d, dict):
            raise UserError(f"the model config must be an object of architecture fields, got {excerpt(d)}")
        known = [f.name for f in fields(cls)]
        unknown = sorted(set(d) - set(known))
        if unknown:
            raise UserError(f"unknown model config key(s) {excerpt(unknown)} (known: {', '.join(known)})")
        if "vocab_size" not in d:
            raise ConfigFieldError("vocab_size", "is missing (the number of tokens of the vocabulary)")
        return cls(**{"dropconnect_convention": "rescaled", **d})


# --------------------------------------------------------------------------------------
# What a config implies: parameters and weight shapes
# --------------------------------------------------------------------------------------


def _gate_rows(config: LMConfig, n: int) -> int:
    """Rows of a layer's stacked gate weights: 4n for an LSTM, 4n + 2n/C for an ON-LSTM (docs/spec.md §2)."""
    return 4 * n + (2 * (n // config.chunk_size) if config.cell == "onlstm" else 0)


def estimate_parameters(config: LMConfig) -> int:
    """Parameters of the model ``config`` describes (tied decoder counted once), from the sizes alone."""
    total = config.vocab_size * config.emb_size + config.vocab_size  # embedding (= decoder weight) + decoder bias
    inputs = [config.emb_size] + list(config.hidden_sizes[:-1])
    for n_in, n in zip(inputs, config.hidden_sizes):
        total += _gate_rows(config, n) * (n_in + n + 2)
    return total


def weight_shapes(config: LMConfig) -> Dict[str, Tuple[Tuple[int, ...], str]]:
    """``name -> (shape, the config fields it follows from)`` for every tensor of
    ``model.safetensors`` (the tied ``decoder.weight`` is not saved)."""
    out: Dict[str, Tuple[Tuple[int, ...], str]] = {
        "encoder.weight": ((config.vocab_size, config.emb_size), "vocab_size, emb_size"),
        "decoder.bias": ((config.vocab_size,), "vocab_size"),
    }
    inputs = [config.emb_size] + list(config.hidden_sizes[:-1])
    prefix = "" if config.cell == "onlstm" else "lstm."
    sizes = "hidden_sizes" + (", chunk_size" if config.cell == "onlstm" else "")
    for k, (n_in, n) in enumerate(zip(inputs, config.hidden_sizes)):
        rows = _gate_rows(config, n)
        base = f"rnns.{k}.{prefix}"
        source = f"{sizes}, {'emb_size' if k == 0 else 'hidden_sizes'}"
        out[f"{base}weight_ih_l0"] = ((rows, n_in), source)
        out[f"{base}weight_hh_l0"] = ((rows, n), sizes)
        out[f"{base}bias_ih_l0"] = ((rows,), sizes)
        out[f"{base}bias_hh_l0"] = ((rows,), sizes)
    return out


# --------------------------------------------------------------------------------------
# Checking a model folder's files
# --------------------------------------------------------------------------------------


def read_model_config(path: PathLike) -> Tuple[LMConfig, dict]:
    """``config.json`` of a model folder -> (its checked :class:`LMConfig`, the whole JSON object).

    Every problem is one UserError naming ``path`` and the field."""
    path = Path(path)
    raw = parse_json(decode_utf8(read_bytes(path, what="config file"), path), path)
    if not isinstance(raw, dict) or raw.get("format") != CONFIG_FORMAT:
        got = raw.get("format") if isinstance(raw, dict) else raw
        raise UserError(f"{path}: not an onlstm language model config (expected \"format\": \"{CONFIG_FORMAT}\", "
                        f"got {excerpt(got)})")
    version = raw.get("version")
    if type(version) is not int or version != CONFIG_VERSION:
        raise UserError(f"{path}: config version {excerpt(version)} is not supported "
                        f"(this onlstm reads version {CONFIG_VERSION})")
    if "model" not in raw:
        raise UserError(f"{path}: has no \"model\" section (the architecture: vocab_size, emb_size, "
                        "hidden_sizes, ...)")
    if not isinstance(raw.get("training", {}), (dict, type(None))):
        raise UserError(f"{path}: \"training\" must be an object, got {excerpt(raw['training'])}")
    try:
        config = LMConfig.from_dict(raw["model"])
    except ConfigFieldError as err:
        raise UserError(f"{path}: model.{err}") from None
    except UserError as err:
        raise UserError(f"{path}: {err}") from None
    return config, raw


def check_weights_header(path: PathLike, config: LMConfig, config_name: str = "config.json") -> None:
    """Compare the header of a ``model.safetensors`` with :func:`weight_shapes` of ``config``:
    the same tensor names, each with the implied shape and a dtype of :data:`WEIGHT_DTYPES`.
    Reads the header only (no tensor is loaded); a mismatch is a UserError naming the tensor."""
    from safetensors import SafetensorError, safe_open

    path = Path(path)
    try:
        with safe_open(str(path), framework="pt") as f:
            found = {}
            for name in f.keys():
                piece = f.get_slice(name)
                found[name] = (tuple(piece.get_shape()), piece.get_dtype())
    except (SafetensorError, OSError, ValueError) as err:
        raise UserError(f"{path}: cannot read weights ({excerpt(str(err), 200)})") from None
    expected = weight_shapes(config)
    optional = {"decoder.weight": expected["encoder.weight"]}  # tied: ignored if a file has it
    missing = sorted(set(expected) - set(found))
    unexpected = sorted(set(found) - set(expected) - set(optional))
    if missing or unexpected:
        raise UserError(f"{path}: weights do not match {config_name} (model.cell {config.cell!r}, "
                        f"{len(config.hidden_sizes)} layer(s) in model.hidden_sizes): {len(missing)} tensor(s) "
                        f"missing {excerpt(missing[:3], 160)}, {len(unexpected)} unexpected "
                        f"{excerpt(unexpected[:3], 160)}")
    for name, (want, source) in {**expected, **optional}.items():
        if name not in found:
            continue
        shape, dtype = found[name]
        if shape != want:
            raise UserError(f"{path}: {name} has shape {shape}, {config_name} implies {want} "
                            f"(from model.{source})")
        if dtype not in WEIGHT_DTYPES:
            raise UserError(f"{path}: {name} has dtype {dtype}; weights must be floating point "
                            f"({', '.join(WEIGHT_DTYPES)})")
