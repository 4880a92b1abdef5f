"""Optional native speed-ups for the recurrence on CPU, each with a pure-PyTorch fallback.

1. A fused element-wise step (``_kernels.c``): compiled once with the system C compiler
   into a per-user cache (``$ONLSTM_CACHE``, default ``~/.cache/onlstm``) and called through
   ctypes. If no compiler is found or the build fails, :func:`load` returns None and the
   recurrence uses PyTorch ops for the same maths.
2. Pre-packed recurrent weights for the per-step matrix product (oneDNN's packed linear,
   used by PyTorch's own CPU inference paths), float32 on CPU only; else ``torch.addmm``.

``ONLSTM_NO_KERNEL=1`` turns both off (used by the tests to check the fallback).
"""

from __future__ import annotations

import ctypes
import hashlib
import os
import platform
import shutil
import subprocess
import tempfile
import threading
import warnings
from pathlib import Path
from typing import Optional

import torch

_SOURCE = Path(__file__).with_name("_kernels.c")
_lock = threading.Lock()
_lib = None
_tried = False


def disabled() -> bool:
    return os.environ.get("ONLSTM_NO_KERNEL", "") not in ("", "0")


def _cache_dir() -> Path:
    root = os.environ.get("ONLSTM_CACHE") or os.path.join(os.path.expanduser("~"), ".cache", "onlstm")
    return Path(root)


def _cpu_key() -> str:
    """Identifies the CPU features, since the library is built with -march=native."""
    flags = ""
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("flags"):
                    flags = line
                    break
    except OSError:
        pass
    return platform.machine() + flags


def _build(target: Path) -> None:
    compiler = os.environ.get("CC") or shutil.which("cc") or shutil.which("gcc") or shutil.which("clang")
    if compiler is None:
        raise RuntimeError("no C compiler found (set CC)")
    target.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=target.parent) as tmp:
        out, obj = Path(tmp) / target.name, Path(tmp) / "kernels.o"
        # Compile with -ffast-math (vectorised exp via libmvec) but link without it: linking
        # with it would add crtfastmath.o, which flips flush-to-zero for the whole process.
        # Results must not depend on where tensors sit in memory (exact resume, determinism):
        # no reassociated reductions, no peeling of loops to reach an aligned address.
        compile_cmd = [compiler, "-O3", "-march=native", "-ffast-math", "-fno-associative-math",
                       "--param=vect-max-peeling-for-alignment=0", "-fopenmp-simd", "-fPIC",
                       "-c", "-o", str(obj), str(_SOURCE)]
        link_cmd = [compiler, "-shared", "-o", str(out), str(obj), "-lm"]
        for cmd in (compile_cmd, link_cmd):
            proc = subprocess.run(cmd, capture_output=True, text=True)
            if proc.returncode != 0:
                raise RuntimeError(f"{' '.join(cmd)} failed:\n{proc.stderr[-2000:]}")
        os.replace(out, target)  # atomic: concurrent builders never see a half-written file


def load():
    """The ctypes library of fused steps, or None when unavailable (fallback to PyTorch)."""
    global _lib, _tried
    if disabled():
        return None
    if _tried:
        return _lib
    with _lock:
        if _tried:
            return _lib
        _tried = True
        source = _SOURCE.read_bytes()
        key = hashlib.sha256(source + _cpu_key().encode() + b"v3").hexdigest()[:16]
        target = _cache_dir() / f"onlstm_kernels_{key}.so"
        try:
            if not target.exists():
                _build(target)
            lib = ctypes.CDLL(str(target))
        except (OSError, RuntimeError) as err:
            warnings.warn(f"onlstm: fused CPU kernel unavailable, using PyTorch ops ({err})", RuntimeWarning)
            return None
        ptr, i, l = ctypes.c_void_p, ctypes.c_int, ctypes.c_long
        for suffix in ("f32", "f64"):
            fwd = getattr(lib, f"onlstm_forward_step_{suffix}")
            fwd.argtypes = [i, i, i, i, i, ptr, l] + [ptr] * 11
            fwd.restype = None
            bwd = getattr(lib, f"onlstm_backward_step_{suffix}")
            bwd.argtypes = [i, i, i, i, i] + [ptr] * 14
            bwd.restype = None
        _lib = lib
        return _lib


def step_functions(dtype: torch.dtype, device: torch.device):
    """(forward_step, backward_step) ctypes functions for this dtype/device, or None."""
    if device.type != "cpu" or dtype not in (torch.float32, torch.float64):
        return None
    lib = load()
    if lib is None:
        return None
    suffix = "f32" if dtype == torch.float32 else "f64"
    return getattr(lib, f"onlstm_forward_step_{suffix}"), getattr(lib, f"onlstm_backward_step_{suffix}")


# ------------------------------------------------------------------------------------
# Pre-packed weights for the per-step product  (b, k) @ (k, G).
# ------------------------------------------------------------------------------------
_packed_ok: Optional[bool] = None


def _packed_available() -> bool:
    global _packed_ok
    if _packed_ok is None:
        try:
            # fixed values, not the global RNG: probing must not change anyone's random stream
            w = torch.linspace(-1.0, 1.0, 32).view(8, 4)
            x = torch.linspace(0.5, -0.5, 12).view(3, 4)
            packed = torch.ops.mkldnn._reorder_linear_weight(w, 3)
            y = torch.ops.mkldnn._linear_pointwise(x, packed, None, "none", [], "")
            _packed_ok = bool(torch.allclose(y, x @ w.t(), atol=1e-5))
        except (RuntimeError, AttributeError):
            _packed_ok = False
    return _packed_ok


class StepMatmul:
    """``x @ weight.T`` for many small ``x`` against one fixed ``weight`` (out, in).

    Uses a packed copy of the weight when that is available (float32 CPU), else a plain
    matrix product. ``__call__(x)`` returns a new (b, out) tensor.
    """

    def __init__(self, weight: torch.Tensor, batch_hint: int):
        self.weight = weight
        self.packed = None
        if (not disabled() and weight.device.type == "cpu" and weight.dtype == torch.float32
                and torch.backends.mkldnn.is_available() and _packed_available()):
            self.packed = self._pack(weight, batch_hint)
        self.weight_t = weight.t()

    @staticmethod
    def _pack(weight: torch.Tensor, batch_hint: int):
        # A parameter used as it is (evaluation: no DropConnect mask) keeps its packed copy
        # until it changes; in-place updates (optimizer steps, load_state_dict) bump _version.
        cacheable = isinstance(weight, torch.nn.Parameter)
        key = (weight._version, weight.data_ptr(), tuple(weight.shape), batch_hint)
        if cacheable:
            cached = getattr(weight, "_onlstm_packed", None)
            if cached is not None and cached[0] == key:
                return cached[1]
        packed = torch.ops.mkldnn._reorder_linear_weight(weight.detach().contiguous(), batch_hint)
        if cacheable:
            weight._onlstm_packed = (key, packed)
        return packed

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        if self.packed is not None:
            return torch.ops.mkldnn._linear_pointwise(x, self.packed, None, "none", [], "")
        return torch.mm(x, self.weight_t)
