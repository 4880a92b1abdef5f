"""Load checkpoints of the published ON-LSTM code (yikangshen/Ordered-Neurons).

The published stack stores layer k as ``cells.{k}.ih.0.weight`` / ``cells.{k}.ih.0.bias``
(input-to-hidden) and ``cells.{k}.hh.weight`` / ``cells.{k}.hh.bias`` (hidden-to-hidden,
with DropConnect), usually under a prefix such as ``rnn.``; its language model adds
``encoder.weight`` and ``decoder.weight`` / ``decoder.bias``. The gate rows are already in
our order. Its DropConnect keeps the recurrent weight unscaled in training and multiplies it
by (1 - p) at evaluation: our ``"published"`` convention (docs/spec.md §4), for which the
weights are copied unchanged. For a target in the ``"rescaled"`` convention (scaled by
1/(1-p) in training, used as stored at evaluation) the converted ``weight_hh`` is the
published one times (1 - p); both then give the same evaluation outputs and the same
training-time forward pass (not the same gradient: see :mod:`onlstm.layer`).

The published ``main.py`` saves ``[model, criterion, optimizer]`` with ``torch.save`` and the
vocabulary as a pickled ``data.Corpus``. :func:`load_published_pickle` reads such a file
(torch's zip format) without running anything from it: a restricted unpickler rebuilds only
tensors, storages, ordered dicts and plain containers; the published classes, ``torch.nn``
modules and ``torch.optim`` optimizers become inert :class:`PublishedObject` stand-ins that keep
their pickled state; any other global is refused. :func:`module_state_dict` then reads a
stand-in module's parameter tree like ``nn.Module.state_dict``.
"""

from __future__ import annotations

import collections
import io
import pickle
import re
import sys
import zipfile
from pathlib import Path
from typing import Any, Dict, Mapping

import torch
from torch import Tensor

from .errors import UserError

_CELL_KEY = re.compile(r"^(?P<prefix>.*?)cells\.(?P<layer>\d+)\.(?P<part>ih\.0|hh)\.(?P<kind>weight|bias)$")


def convert_published_state_dict(
    state_dict: Mapping[str, Tensor], dropconnect: float, target: str = "lm", convention: str = "published"
) -> Dict[str, Tensor]:
    """Rename (and, for a ``"rescaled"`` target, rescale) a published state dict into ours.

    Args:
        state_dict: tensors keyed as in the published code.
        dropconnect: the ``wdrop`` the published model was trained with (0.45 in the paper).
        convention: the DropConnect convention of the model that will load the result:
            ``"published"`` copies the recurrent weights; ``"rescaled"`` multiplies them by
            ``1 - dropconnect``.
        target: ``"lm"`` gives the keys of :class:`onlstm.LanguageModel`
            (``rnns.{k}.weight_ih_l0``, ``encoder.weight``, ``decoder.*``);
            ``"layer"`` gives those of one multi-layer :class:`onlstm.ONLSTM`
            (``weight_ih_l{k}``; every layer must then have the same hidden size).
    Raises:
        ValueError: for an unknown target or convention, a bad dropconnect, a dict with no
            ON-LSTM cells, or (target ``"lm"``) a decoder not tied to the embedding.
    """
    if target not in ("lm", "layer"):
        raise ValueError(f"target must be 'lm' or 'layer', got {target!r}")
    if convention not in ("published", "rescaled"):
        raise ValueError(f"convention must be 'published' or 'rescaled', got {convention!r}")
    if not 0.0 <= dropconnect < 1.0:
        raise ValueError(f"dropconnect must be in [0, 1), got {dropconnect!r}")
    out: Dict[str, Tensor] = {}
    found = False
    for key, value in state_dict.items():
        match = _CELL_KEY.match(key)
        if match is None:
            if key in ("encoder.weight", "decoder.weight", "decoder.bias") and target == "lm":
                out[key] = value.clone()
            continue
        found = True
        layer, part, kind = int(match["layer"]), match["part"], match["kind"]
        direction = "ih" if part == "ih.0" else "hh"
        name = f"{kind}_{direction}_l{layer}" if target == "layer" else f"rnns.{layer}.{kind}_{direction}_l0"
        value = value.clone()
        if direction == "hh" and kind == "weight" and convention == "rescaled":
            value = value * (1.0 - dropconnect)
        out[name] = value
    if not found:
        raise ValueError("state_dict has no keys of the form '[prefix]cells.{k}.ih.0.weight': not a published ON-LSTM")
    if target == "lm":
        check_tied(out)
    return out


def check_tied(state_dict: Mapping[str, Tensor]) -> None:
    """Refuse a language model whose decoder weight is not its embedding (ours is always tied;
    loading an untied one would silently replace the embedding by the decoder weight)."""
    enc, dec = state_dict.get("encoder.weight"), state_dict.get("decoder.weight")
    if enc is None:
        raise ValueError("state_dict has no 'encoder.weight': not a published language model")
    if dec is not None and not (dec is enc or (dec.shape == enc.shape and torch.equal(dec, enc))):
        raise ValueError("the published model's decoder weight differs from its embedding (untied weights): "
                         "onlstm language models are tied, so it cannot be converted")



# --------------------------------------------------------------------------------------------
# Reading the published pickles without running them
# --------------------------------------------------------------------------------------------

class PublishedObject:
    """Inert stand-in for an object of a published, ``torch.nn`` or ``torch.optim`` class.

    ``published_class`` is the pickled class's ``module.Name``; ``state`` what the pickle set
    as its state (a module's ``__dict__``: ``_parameters``, ``_modules``, hyperparameters);
    ``args`` the constructor arguments, if any. None of the class's code exists or runs here.
    """

    published_class = "?"

    def __new__(cls, *args, **kwargs):
        obj = super().__new__(cls)
        obj.args, obj.state = args, None
        return obj

    def __setstate__(self, state) -> None:
        self.state = state

    @property
    def attrs(self) -> dict:
        """The pickled attributes (``{}`` when the state is not a dict)."""
        return self.state if isinstance(self.state, dict) else {}

    def __repr__(self) -> str:
        return f"<stand-in for {self.published_class}>"


# Classes of the published code (main.py's pickles), mapped to stand-ins by name.
PUBLISHED_CLASSES = {
    "model": {"RNNModel"},
    "ON_LSTM": {"ONLSTMStack", "ONLSTMCell", "LinearDropConnect", "LayerNorm"},
    "locked_dropout": {"LockedDropout"},
    "weight_drop": {"WeightDrop"},
    "splitcross": {"SplitCrossEntropyLoss"},
    "data": {"Corpus", "Dictionary"},
}
_STAND_IN_PACKAGES = ("torch.nn.modules.", "torch.optim.")  # any class there becomes a stand-in
_PLAIN_BUILTINS = {"dict": dict, "list": list, "set": set, "frozenset": frozenset, "tuple": tuple, "int": int,
                   "float": float, "complex": complex, "bool": bool, "str": str, "bytes": bytes,
                   "bytearray": bytearray, "slice": slice}
_STORAGE_DTYPES = {"FloatStorage": torch.float32, "DoubleStorage": torch.float64, "HalfStorage": torch.float16,
                   "BFloat16Storage": torch.bfloat16, "LongStorage": torch.int64, "IntStorage": torch.int32,
                   "ShortStorage": torch.int16, "CharStorage": torch.int8, "ByteStorage": torch.uint8,
                   "BoolStorage": torch.bool, "UntypedStorage": torch.uint8}
_DTYPES = {name: getattr(torch, name) for name in ("float32", "float64", "float16", "bfloat16", "int64", "int32",
                                                   "int16", "int8", "uint8", "bool", "float", "double", "half",
                                                   "long", "int", "short")}


class _StorageType:
    def __init__(self, dtype):
        self.dtype = dtype


class _TypeMarker:
    """``torch.Tensor`` / ``torch.nn.Parameter`` when named as a type in a pickle."""


def _as_tensor(storage, offset, size, stride):
    if not isinstance(storage, Tensor) or storage.dim() != 1:
        raise pickle.UnpicklingError("a tensor is rebuilt from something that is not a storage")
    ints = lambda t: isinstance(t, (tuple, list)) and all(isinstance(v, int) and v >= 0 for v in t)
    if not (isinstance(offset, int) and offset >= 0 and ints(size) and ints(stride) and len(size) == len(stride)):
        raise pickle.UnpicklingError("a tensor has a malformed size, stride or offset")
    return storage.as_strided(tuple(size), tuple(stride), offset)  # RuntimeError when out of bounds


def _rebuild_tensor_v2(storage, offset, size, stride, requires_grad=False, hooks=None, *metadata):
    return _as_tensor(storage, offset, size, stride)


def _rebuild_tensor_v3(storage, offset, size, stride, requires_grad, hooks, dtype, *metadata):
    if dtype not in _DTYPES.values():
        raise pickle.UnpicklingError(f"unsupported tensor dtype {dtype!r}")
    return _as_tensor(storage.view(dtype) if storage.numel() else storage.to(dtype), offset, size, stride)


def _rebuild_parameter(data, requires_grad=False, hooks=None, *state):
    if not isinstance(data, Tensor):
        raise pickle.UnpicklingError("a parameter is rebuilt from something that is not a tensor")
    return data


def _rebuild_from_type_v2(func, new_type, args, state=None):
    if func not in (_rebuild_tensor_v2, _rebuild_tensor_v3, _rebuild_parameter) or not isinstance(args, tuple):
        raise pickle.UnpicklingError("a tensor subclass is rebuilt by an unexpected function")
    return func(*args)


def _defaultdict(factory=None, *rest):
    return {}  # a plain dict: the factory is never called


_TORCH_FUNCTIONS = {
    ("torch._utils", "_rebuild_tensor_v2"): _rebuild_tensor_v2,
    ("torch._utils", "_rebuild_tensor_v3"): _rebuild_tensor_v3,
    ("torch._utils", "_rebuild_parameter"): _rebuild_parameter,
    ("torch._utils", "_rebuild_parameter_with_state"): _rebuild_parameter,
    ("torch._tensor", "_rebuild_from_type_v2"): _rebuild_from_type_v2,
    ("collections", "OrderedDict"): collections.OrderedDict,
    ("collections", "defaultdict"): _defaultdict,
}


class _RestrictedUnpickler(pickle._Unpickler):  # the pure-Python one, so that BUILD can be restricted
    """Rebuilds tensors from the zip archive's storages, containers and inert stand-ins only."""

    dispatch = dict(pickle._Unpickler.dispatch)

    def __init__(self, data: bytes, read_storage, where: str):
        super().__init__(io.BytesIO(data))
        self._read_storage = read_storage
        self._where = where
        self._stand_ins: Dict[str, type] = {}
        self._storages: Dict[str, Tensor] = {}

    def find_class(self, module: str, name: str) -> Any:
        module = "builtins" if module == "__builtin__" else module  # protocol 2 writes Python 2's name
        if module == "builtins" and name in _PLAIN_BUILTINS:
            return _PLAIN_BUILTINS[name]
        if (module, name) in _TORCH_FUNCTIONS:
            return _TORCH_FUNCTIONS[module, name]
        if module == "torch" and name in _STORAGE_DTYPES or (module == "torch.storage" and name == "UntypedStorage"):
            return _StorageType(_STORAGE_DTYPES[name])
        if module == "torch" and name in _DTYPES:
            return _DTYPES[name]
        if (module, name) in (("torch", "Tensor"), ("torch._tensor", "Tensor"), ("torch.nn.parameter", "Parameter")):
            return _TypeMarker
        if name in PUBLISHED_CLASSES.get(module, ()) or (module.startswith(_STAND_IN_PACKAGES) and name.isidentifier()):
            key = f"{module}.{name}"
            if key not in self._stand_ins:
                self._stand_ins[key] = type(name, (PublishedObject,), {"published_class": key})
            return self._stand_ins[key]
        raise UserError(f"{self._where}: refused to unpickle the global {module}.{name}: only tensors, storages, "
                        "ordered dicts, plain containers and the published ON-LSTM / torch.nn / torch.optim classes "
                        "(as inert stand-ins) are read")

    def persistent_load(self, pid):
        if not (isinstance(pid, tuple) and len(pid) == 5 and pid[0] == "storage" and isinstance(pid[1], _StorageType)
                and isinstance(pid[2], str) and isinstance(pid[4], int)):
            raise pickle.UnpicklingError(f"unexpected persistent id {pid!r:.80}")
        _, kind, key, _location, numel = pid  # every storage is read onto the CPU
        if key not in self._storages:
            raw = self._read_storage(key)
            itemsize = torch.empty(0, dtype=kind.dtype).element_size()
            if len(raw) < numel * itemsize:
                raise pickle.UnpicklingError(f"storage {key} holds {len(raw)} bytes, {numel * itemsize} expected")
            raw = raw[: numel * itemsize]
            self._storages[key] = (torch.frombuffer(bytearray(raw), dtype=kind.dtype) if raw
                                   else torch.empty(0, dtype=kind.dtype))
        return self._storages[key]

    def _load_build(self):
        state = self.stack.pop()
        inst = self.stack[-1]
        if isinstance(inst, PublishedObject):
            inst.__setstate__(state)
        elif type(inst) is not collections.OrderedDict:  # a state dict's ``_metadata``: dropped
            raise pickle.UnpicklingError(f"refused to set the state of a {type(inst).__name__}")

    dispatch[pickle.BUILD[0]] = _load_build


def load_published_pickle(path) -> Any:
    """Read a ``torch.save`` file (zip format, torch >= 1.6) of the published code, safely.

    Returns the pickled object with tensors on the CPU, containers as such and every object of
    a published / ``torch.nn`` / ``torch.optim`` class as a :class:`PublishedObject`.
    Raises :class:`~onlstm.errors.UserError` naming the file for a refused global, a legacy
    (pre-1.6) or broken file.
    """
    path = Path(path)
    if not path.is_file():
        raise UserError(f"{path}: no such file")
    try:
        archive = zipfile.ZipFile(path)
    except (zipfile.BadZipFile, OSError) as err:
        head = path.read_bytes()[:16] if path.stat().st_size else b""
        hint = (" (torch's legacy pre-1.6 format: load and re-save it with torch >= 1.6 and the published code)"
                if head.startswith(b"\x80") else "")
        raise UserError(f"{path}: not a zip-format torch.save file{hint} ({err})") from None
    with archive:
        pkls = [n for n in archive.namelist() if n.endswith("/data.pkl") and n.count("/") == 1]
        if len(pkls) != 1:
            raise UserError(f"{path}: not a torch.save archive (no single '<name>/data.pkl' inside)")
        prefix = pkls[0][: -len("data.pkl")]
        names = set(archive.namelist())
        if prefix + "byteorder" in names and archive.read(prefix + "byteorder").strip() != sys.byteorder.encode():
            raise UserError(f"{path}: saved on a {archive.read(prefix + 'byteorder').decode()}-endian machine; "
                            f"this one is {sys.byteorder}-endian")

        def read_storage(key: str) -> bytes:
            name = f"{prefix}data/{key}"
            if name not in names:
                raise pickle.UnpicklingError(f"the archive has no storage {key!r}")
            return archive.read(name)

        try:
            return _RestrictedUnpickler(archive.read(pkls[0]), read_storage, str(path)).load()
        except UserError:
            raise
        except (pickle.UnpicklingError, EOFError, TypeError, ValueError, RuntimeError, AttributeError, KeyError,
                IndexError, OverflowError, MemoryError, zipfile.BadZipFile) as err:
            raise UserError(f"{path}: cannot read the pickle ({type(err).__name__}: {err})") from None


def module_state_dict(module: PublishedObject, prefix: str = "") -> Dict[str, Tensor]:
    """``state_dict()`` of a stand-in ``nn.Module``: its ``_parameters`` and persistent
    ``_buffers``, then its ``_modules``' recursively, keys joined with dots."""
    attrs = module.attrs
    skip = attrs.get("_non_persistent_buffers_set") or set()
    out: Dict[str, Tensor] = {}
    for group in ("_parameters", "_buffers"):
        entries = attrs.get(group) or {}
        if not isinstance(entries, dict):
            raise UserError(f"{module.published_class}.{group} is not a dict: not a torch module")
        for name, tensor in entries.items():
            if tensor is None or (group == "_buffers" and name in skip):
                continue
            if not isinstance(tensor, Tensor):
                raise UserError(f"{prefix}{name} of {module.published_class} is not a tensor")
            out[prefix + name] = tensor
    children = attrs.get("_modules") or {}
    if not isinstance(children, dict):
        raise UserError(f"{module.published_class}._modules is not a dict: not a torch module")
    for name, child in children.items():
        if child is None:
            continue
        if not isinstance(child, PublishedObject):
            raise UserError(f"{prefix}{name} of {module.published_class} is not a module")
        out.update(module_state_dict(child, f"{prefix}{name}."))
    return out
