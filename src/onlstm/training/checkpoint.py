"""Checkpoint files: named tensors plus a JSON *state*, in one safetensors file.

A checkpoint holds

* named tensors (weights, RNG states, carried hidden states, ...), and
* a state: any nesting of dicts, lists, tuples, numbers, strings and tensors (counters,
  the run's settings, an optimizer's ``state_dict()``).

Tensors found inside the state are stored as tensors named ``state.<path>`` and stand in the
JSON as ``{"__tensor__": name}``; dicts whose keys are not plain strings, tuples and
non-finite floats get a tagged form (``__dict__``, ``__tuple__``, ``__float__``), so
`read_checkpoint` returns exactly what `write_checkpoint` was given. Everything else is
plain JSON, readable in the file's header. The header's metadata has two entries:
``format`` (what kind of file, checked on reading) and ``state``.

Files are written with `onlstm.fileio.atomic_write_bytes` (temporary file, fsync, rename):
a crash never leaves half a checkpoint. No pickle is written or read.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any, Dict, Mapping, Tuple

import torch

from ..errors import UserError
from ..fileio import PathLike, atomic_write_bytes

__all__ = ["write_checkpoint", "read_checkpoint", "read_checkpoint_state"]

_STATE = "state."


def _flatten(obj: Any, name: str, tensors: Dict[str, torch.Tensor]) -> Any:
    """JSON-able form of ``obj``; its tensors go into ``tensors`` under names below ``name``."""
    if isinstance(obj, torch.Tensor):
        tensors[name] = obj.detach().cpu().contiguous()
        return {"__tensor__": name}
    if isinstance(obj, dict):
        if all(isinstance(k, str) and not k.startswith("__") for k in obj):
            return {k: _flatten(v, f"{name}.{i}", tensors) for i, (k, v) in enumerate(obj.items())}
        return {"__dict__": [[_flatten(k, f"{name}.k{i}", tensors), _flatten(v, f"{name}.{i}", tensors)]
                             for i, (k, v) in enumerate(obj.items())]}
    if isinstance(obj, (list, tuple)):
        items = [_flatten(v, f"{name}.{i}", tensors) for i, v in enumerate(obj)]
        return {"__tuple__": items} if isinstance(obj, tuple) else items
    if isinstance(obj, float) and not math.isfinite(obj):
        return {"__float__": repr(obj)}
    if obj is None or isinstance(obj, (bool, int, float, str)):
        return obj
    raise TypeError(f"cannot store a {type(obj).__name__} in a checkpoint state")


def _unflatten(obj: Any, tensors: Mapping[str, torch.Tensor]) -> Any:
    """Inverse of `_flatten` (also reads the older ``{"__list__": [...], "tuple": bool}`` form)."""
    if isinstance(obj, list):
        return [_unflatten(v, tensors) for v in obj]
    if not isinstance(obj, dict):
        return obj
    if "__tensor__" in obj:
        return tensors.get(obj["__tensor__"])
    if "__dict__" in obj:
        return {_unflatten(k, tensors): _unflatten(v, tensors) for k, v in obj["__dict__"]}
    if "__tuple__" in obj:
        return tuple(_unflatten(v, tensors) for v in obj["__tuple__"])
    if "__list__" in obj:
        items = [_unflatten(v, tensors) for v in obj["__list__"]]
        return tuple(items) if obj.get("tuple") else items
    if "__float__" in obj:
        return float(obj["__float__"])
    return {k: _unflatten(v, tensors) for k, v in obj.items()}


def write_checkpoint(path: PathLike, tensors: Mapping[str, torch.Tensor], state: Any, format: str) -> None:
    """Write ``tensors`` and ``state`` to ``path`` atomically and durably (see the module doc)."""
    from safetensors.torch import save

    flat: Dict[str, torch.Tensor] = {}
    meta = _flatten(state, _STATE.rstrip("."), flat)
    for k, v in tensors.items():
        if k.startswith(_STATE):
            raise ValueError(f"tensor name {k!r}: names starting with {_STATE!r} are reserved for the state")
        flat[k] = v.detach().cpu().contiguous()
    atomic_write_bytes(path, save(flat, metadata={"format": format, "state": json.dumps(meta)}))


def _open(path: Path, format: str, legacy_unmarked: bool, with_tensors: bool):
    from safetensors import safe_open

    if not path.is_file():
        raise UserError(f"{path}: no such checkpoint file")
    try:
        with safe_open(str(path), framework="pt") as f:
            meta = f.metadata() or {}
            flat = {k: f.get_tensor(k) for k in f.keys()} if with_tensors else {}
        found = meta.get("format")
        if "state" not in meta:
            missing = "'format' and 'state' entries" if found is None else "'state' entry"
            raise UserError(f"{path}: not an {format} checkpoint: its header has no {missing} in the metadata "
                            "(the run's settings and progress); a bare safetensors file of weights cannot be used")
        if found != format and not (found is None and legacy_unmarked):
            raise UserError(f"{path}: not an {format} file (its format is {found!r})")
        state = json.loads(meta["state"])
    except UserError:
        raise
    except Exception as err:  # truncated, foreign or hand-edited files
        raise UserError(f"{path}: unreadable checkpoint ({type(err).__name__}: {err})") from None
    return flat, state


def read_checkpoint(path: PathLike, format: str, *,
                    legacy_unmarked: bool = False) -> Tuple[Dict[str, torch.Tensor], Any]:
    """``(tensors, state)`` as given to `write_checkpoint`. The file's ``format`` must be
    ``format`` (``legacy_unmarked``: a file without one is accepted too). Any problem is a
    `UserError` naming the file."""
    flat, meta = _open(Path(path), format, legacy_unmarked, with_tensors=True)
    state = _unflatten(meta, flat)
    return {k: v for k, v in flat.items() if not k.startswith(_STATE)}, state


def read_checkpoint_state(path: PathLike, format: str, *, legacy_unmarked: bool = False) -> Any:
    """The state of a checkpoint, read from the file's header alone (no tensor is loaded:
    tensors inside the state come back as None). For looking at a run's settings cheaply."""
    _, meta = _open(Path(path), format, legacy_unmarked, with_tensors=False)
    return _unflatten(meta, {})

