"""Native speed-ups for the recurrence on CPU, each with a pure-PyTorch fallback.

1. A fused element-wise step (``_kernels.c``), compiled once with the system C compiler
   into a per-user cache (``$ONLSTM_CACHE``, default ``~/.cache/onlstm``) and called through
   ctypes. With OpenMP (when the compiler has it) a step's rows are split over
   ``torch.get_num_threads()`` threads, bit-identical to one thread. This module is the
   only caller of the C code: :class:`ForwardStep` and :class:`BackwardStep` check every
   tensor they are given (dtype, device, shape, contiguity) once per sequence and pass the
   C side one named structure per call
   (:class:`ForwardArgs` / :class:`BackwardArgs`, mirrored field by field in the C source
   and compared with its layout after loading). A mismatch is a Python exception.
   If no compiler is found or the build fails, :func:`available` is false and the
   recurrence uses PyTorch ops for the same maths.
2. The DropConnect mask applied to a weight or its gradient in one pass
   (:func:`mask_apply`, ``onlstm_mask_apply_*``), else ``torch.where``.
3. Pre-packed recurrent weights for the per-step matrix product (oneDNN's packed linear,
   used by PyTorch's own CPU inference paths), float32 on CPU only; else ``torch.mm``.

The cached library's file name carries a hash of the source, the compiler flags, the
compiler and the CPU features; the library is checked to be the one built from this source
before it is loaded (its embedded build key) and after (``onlstm_build_key()``).
``ONLSTM_NO_KERNEL=1`` turns all of them off, and the oneDNN products of :mod:`onlstm.gemm`
too (used by the tests to check the fallback).
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
from typing import Optional, Sequence, Tuple

import torch
from torch import Tensor

_SOURCE = Path(__file__).with_name("_kernels.c")
_lock = threading.Lock()
_lib = None
_tried = False

# -ffast-math for the vectorised exp, but with IEEE NaN/inf (no finite-math assumptions).
# Results must not depend on where tensors sit in memory (exact resume, determinism):
# no reassociated reductions, no peeling of loops to reach an aligned address.
# Linked without -ffast-math: that would add crtfastmath.o, which turns on flush-to-zero
# for the whole process.
# On x86, full-width vectors where the CPU has them: GCC keeps AVX-512 machines at 256-bit
# vectors by default, and the forward step takes half the time at 512 bits (Intel Xeon,
# B=32, n=256: 109 -> 50 us per step; docs/results.md §1).
# OpenMP: a step's rows split over threads (the libgomp PyTorch ships has the same soname, so
# the one runtime and thread pool serve both); a compiler without OpenMP builds the
# single-threaded variant (SERIAL_FLAGS) instead.
COMPILE_FLAGS = ("-O3", "-march=native", "-ffast-math", "-fno-finite-math-only", "-fno-associative-math",
                 "--param=vect-max-peeling-for-alignment=0", "-fopenmp", "-fPIC") + (
    ("-mprefer-vector-width=512",) if platform.machine().lower() in ("x86_64", "amd64") else ())
LINK_FLAGS = ("-shared", "-fopenmp", "-lm")
SERIAL_FLAGS = (tuple("-fopenmp-simd" if f == "-fopenmp" else f for f in COMPILE_FLAGS),
                tuple(f for f in LINK_FLAGS if f != "-fopenmp"))


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


def _compiler() -> Optional[str]:
    return os.environ.get("CC") or shutil.which("cc") or shutil.which("gcc") or shutil.which("clang")


def build_key(source: bytes, compiler: str, flags: Optional[Tuple[Sequence[str], Sequence[str]]] = None) -> str:
    """Hash of everything the built library depends on: source, flags (default: COMPILE_FLAGS
    and LINK_FLAGS), compiler, CPU."""
    compile_flags, link_flags = flags or (COMPILE_FLAGS, LINK_FLAGS)
    parts = [source, "\0".join(tuple(compile_flags) + tuple(link_flags)).encode(), compiler.encode(),
             _cpu_key().encode()]
    return hashlib.sha256(b"\0\0".join(parts)).hexdigest()[:20]


def _key_marker(key: str) -> bytes:
    return f"onlstm-build-key:{key}".encode()


def _build(compiler: str, key: str, target: Path, flags: Tuple[Sequence[str], Sequence[str]]) -> None:
    compile_flags, link_flags = flags
    target.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=target.parent) as tmp:
        out, obj = Path(tmp) / target.name, Path(tmp) / "kernels.o"
        compile_cmd = [compiler, *compile_flags, f'-DONLSTM_BUILD_KEY="{key}"', "-c", "-o", str(obj), str(_SOURCE)]
        link_cmd = [compiler, link_flags[0], "-o", str(out), str(obj), *link_flags[1:]]
        for cmd in (compile_cmd, link_cmd):
            proc = subprocess.run(cmd, capture_output=True, text=True)
            if proc.returncode != 0:
                raise RuntimeError(f"{' '.join(cmd)} failed:\n{proc.stderr[-2000:]}")
        os.replace(out, target)  # atomic: concurrent builders never see a half-written file


def _library_path() -> Tuple[Path, str]:
    """The cached library built from this source and its build key; built when missing or
    when the cached file does not carry the key."""
    compiler = _compiler()
    if compiler is None:
        raise RuntimeError("no C compiler found (set CC)")
    source, first_error = _SOURCE.read_bytes(), None
    for flags in ((COMPILE_FLAGS, LINK_FLAGS), SERIAL_FLAGS):  # with OpenMP, else without
        key = build_key(source, compiler, flags)
        target = _cache_dir() / f"onlstm_kernels_{key}.so"
        if not (target.is_file() and _key_marker(key) in target.read_bytes()):
            try:
                _build(compiler, key, target, flags)
            except RuntimeError as err:
                first_error = first_error or err
                continue
        if _key_marker(key) not in target.read_bytes():
            raise RuntimeError(f"{target} does not carry build key {key} after building it")
        return target, key
    raise first_error


def _loaded_library(target: Path, key: str):
    """CDLL of ``target`` with its build key, structures and entry points checked."""
    lib = ctypes.CDLL(str(target))
    lib.onlstm_build_key.restype = ctypes.c_char_p
    expected = _key_marker(key)
    if lib.onlstm_build_key() != expected:
        raise RuntimeError(f"{target}: build key {lib.onlstm_build_key()!r}, expected {expected!r}")
    for which, args_type in _ARGS.items():
        _check_layout(lib, which, args_type)
        for suffix in _SUFFIX.values():
            fn = getattr(lib, f"{_ENTRY[which]}_{suffix}")
            fn.argtypes = [ctypes.POINTER(args_type)]
            fn.restype = ctypes.c_int
    return lib


def load():
    """The ctypes library of fused steps, or None when unavailable (fallback to PyTorch)."""
    global _lib, _tried
    if disabled():
        return None
    if _tried:
        return _lib
    with _lock:
        if not _tried:
            try:
                _lib = _loaded_library(*_library_path())
            except (OSError, RuntimeError, AttributeError) as err:
                warnings.warn(f"onlstm: fused CPU kernel unavailable, using PyTorch ops ({err})", RuntimeWarning)
            _tried = True
    return _lib


def available(dtype: torch.dtype, device: torch.device) -> bool:
    """Whether the fused steps run for tensors of this dtype on this device."""
    return device.type == "cpu" and dtype in _SUFFIX and load() is not None


# ------------------------------------------------------------------------------------
# The structures passed to the C side, and the checks on what goes into them.
# ------------------------------------------------------------------------------------
_SUFFIX = {torch.float32: "f32", torch.float64: "f64"}
_SIZES = ("T", "B", "n", "m", "C", "symmetric", "t", "b", "threads")


class ForwardArgs(ctypes.Structure):
    """``onlstm_forward_args`` of ``_kernels.c`` (same fields, same order)."""

    _fields_ = [(name, ctypes.c_int64) for name in _SIZES] + [
        (name, ctypes.c_void_p)
        for name in ("x_proj", "pre", "c0", "gates", "c", "tanh_c", "h", "f_hat", "i_hat", "mf", "mi", "work")
    ]


class BackwardArgs(ctypes.Structure):
    """``onlstm_backward_args`` of ``_kernels.c`` (same fields, same order)."""

    _fields_ = [(name, ctypes.c_int64) for name in _SIZES] + [
        (name, ctypes.c_void_p)
        for name in ("gates", "mf", "mi", "f_hat", "i_hat", "tanh_c", "c", "c0", "grad_h", "grad_mf", "grad_mi",
                     "dh", "dc", "grad_gates", "work")
    ]


class MaskArgs(ctypes.Structure):
    """``onlstm_mask_args`` of ``_kernels.c`` (same fields, same order)."""

    _fields_ = [("numel", ctypes.c_int64), ("scale", ctypes.c_double)] + [
        (name, ctypes.c_void_p) for name in ("src", "keep", "dst")
    ]


_ARGS = {"forward": ForwardArgs, "backward": BackwardArgs, "mask": MaskArgs}
_ENTRY = {"forward": "onlstm_forward_step", "backward": "onlstm_backward_step", "mask": "onlstm_mask_apply"}


def _check_layout(lib, which: str, args_type) -> None:
    """``onlstm_{which}_args`` in C has the size and field offsets of ``args_type``."""
    count_fn = getattr(lib, f"onlstm_{which}_args_fields")
    count_fn.restype = ctypes.c_int64
    layout_fn = getattr(lib, f"onlstm_{which}_args_layout")
    layout_fn.restype = ctypes.POINTER(ctypes.c_int64)
    count = count_fn()
    theirs = [layout_fn()[k] for k in range(count + 1)]
    ours = [ctypes.sizeof(args_type)] + [getattr(args_type, name).offset for name, _ in args_type._fields_]
    if theirs != ours:
        raise RuntimeError(f"onlstm_{which}_args: C layout {theirs} differs from the ctypes one {ours}")


def check_tensor(name: str, tensor, shape: Sequence[int], dtype: torch.dtype) -> None:
    """Refuse anything but a contiguous CPU tensor of exactly ``shape`` and ``dtype``."""
    where = f"onlstm kernel argument {name!r}"
    if not isinstance(tensor, Tensor):
        raise TypeError(f"{where} must be a Tensor, got {type(tensor).__name__}")
    if tensor.dtype != dtype:
        raise TypeError(f"{where} has dtype {tensor.dtype}, expected {dtype}")
    if tensor.device.type != "cpu":
        raise ValueError(f"{where} is on {tensor.device}, expected cpu")
    if tuple(tensor.shape) != tuple(shape):
        raise ValueError(f"{where} has shape {tuple(tensor.shape)}, expected {tuple(shape)}")
    if not tensor.is_contiguous():
        raise ValueError(f"{where} is not contiguous (strides {tensor.stride()}, shape {tuple(tensor.shape)})")


def _sizes(reference: Tensor, c0: Tensor, chunk_size: int) -> Tuple[int, int, int, int, int]:
    """(T, B, n, m, G) from a (T, B, G) buffer and the (B, n) initial cell state."""
    if not (isinstance(reference, Tensor) and isinstance(c0, Tensor) and reference.dim() == 3 and c0.dim() == 2):
        got = [tuple(t.shape) if isinstance(t, Tensor) else type(t).__name__ for t in (reference, c0)]
        raise ValueError(f"onlstm kernel: expected (T, B, G) gates and (B, n) c0, got {got[0]} and {got[1]}")
    (T, B, G), n = reference.shape, c0.shape[1]
    if not isinstance(chunk_size, int) or chunk_size <= 0 or n % chunk_size:
        raise ValueError(f"onlstm kernel: chunk_size {chunk_size!r} does not divide n={n}")
    m = n // chunk_size
    if G != 4 * n + 2 * m or T == 0 or B == 0:
        raise ValueError(f"onlstm kernel: gates of shape {(T, B, G)} do not fit n={n}, m={m} (G = 4n + 2m, T, B > 0)")
    return T, B, n, m, G


class _Step:
    """One native step function bound to the buffers of one sequence, checked once."""

    def __init__(self, which: str, args_type, tensors: dict, shapes: dict, sizes, chunk_size, symmetric):
        dtype = tensors["gates"].dtype
        if dtype not in _SUFFIX:
            raise TypeError(f"onlstm kernel: dtype {dtype} has no fused step (float32, float64)")
        for name, tensor in tensors.items():
            check_tensor(name, tensor, shapes[name], dtype)
        lib = load()
        if lib is None:
            raise RuntimeError("onlstm kernel: the fused steps are not available")
        self._fn = getattr(lib, f"onlstm_{which}_step_{_SUFFIX[dtype]}")
        T, B, n, m, G = sizes
        threads = max(1, torch.get_num_threads())  # the rows of a step split over PyTorch's threads
        work = torch.empty(threads, shapes["work"][0], dtype=dtype)  # a scratch row per thread
        self._tensors = dict(tensors, work=work)  # keeps every buffer alive while the C side may use it
        self._args = args_type(T=T, B=B, n=n, m=m, C=chunk_size, symmetric=int(bool(symmetric)), threads=threads,
                               **{name: t.data_ptr() for name, t in self._tensors.items()})
        self._T, self._B, self._G, self._dtype = T, B, G, dtype

    def _run(self, t: int, b: int) -> None:
        if not (0 <= t < self._T and 0 < b <= self._B):
            raise IndexError(f"onlstm kernel: step {t} with {b} rows is outside T={self._T}, B={self._B}")
        self._args.t, self._args.b = t, b
        if self._fn(ctypes.byref(self._args)) != 0:
            raise RuntimeError("onlstm kernel: inconsistent sizes in the argument structure")


class ForwardStep(_Step):
    """The native forward step over one sequence: ``step(t, b, pre=None)`` fills step ``t``
    of the buffers for its first ``b`` rows.

    Buffers (all one float dtype, contiguous, on the CPU): ``x_proj``, ``gates`` (T, B, G);
    ``c``, ``tanh_c``, ``h``, ``f_hat``, ``i_hat`` (T, B, n); ``mf``, ``mi`` (T, B, m);
    ``c0`` (B, n). ``pre`` is ``U h_{t-1}`` (b, G), added to ``x_proj[t]``; without it
    ``gates[t]`` must already hold the whole pre-activation.
    """

    def __init__(self, *, chunk_size: int, symmetric: bool, x_proj, c0, gates, c, tanh_c, h, f_hat, i_hat, mf, mi):
        sizes = T, B, n, m, G = _sizes(gates, c0, chunk_size)
        per_unit, per_level = (T, B, n), (T, B, m)
        shapes = dict(x_proj=(T, B, G), c0=(B, n), gates=(T, B, G), c=per_unit, tanh_c=per_unit, h=per_unit,
                      f_hat=per_unit, i_hat=per_unit, mf=per_level, mi=per_level, work=(3 * n,))
        tensors = dict(x_proj=x_proj, c0=c0, gates=gates, c=c, tanh_c=tanh_c, h=h, f_hat=f_hat, i_hat=i_hat,
                       mf=mf, mi=mi)
        super().__init__("forward", ForwardArgs, tensors, shapes, sizes, chunk_size, symmetric)

    def __call__(self, t: int, b: int, pre: Optional[Tensor] = None) -> None:
        if pre is not None:
            check_tensor("pre", pre, (b, self._G), self._dtype)
        self._args.pre = None if pre is None else pre.data_ptr()
        self._run(t, b)


class BackwardStep(_Step):
    """The native backward step over one sequence: ``step(t, b)`` writes ``grad_gates[t]``
    for the first ``b`` rows and carries ``dc`` back one step (``dh`` is read, not written).

    Buffers as saved by :class:`ForwardStep` (``gates``, ``mf``, ``mi``, ``f_hat``, ``i_hat``,
    ``tanh_c``, ``c``, ``c0``), the incoming gradients ``grad_h`` (T, B, n), ``grad_mf``,
    ``grad_mi`` (T, B, m), the carried ``dh``, ``dc`` (B, n) and the output ``grad_gates``
    (T, B, G).
    """

    def __init__(self, *, chunk_size: int, symmetric: bool, gates, mf, mi, f_hat, i_hat, tanh_c, c, c0,
                 grad_h, grad_mf, grad_mi, dh, dc, grad_gates):
        sizes = T, B, n, m, G = _sizes(gates, c0, chunk_size)
        per_unit, per_level = (T, B, n), (T, B, m)
        shapes = dict(gates=(T, B, G), mf=per_level, mi=per_level, f_hat=per_unit, i_hat=per_unit,
                      tanh_c=per_unit, c=per_unit, c0=(B, n), grad_h=per_unit, grad_mf=per_level,
                      grad_mi=per_level, dh=(B, n), dc=(B, n), grad_gates=(T, B, G), work=(4 * n + 2 * m,))
        tensors = dict(gates=gates, mf=mf, mi=mi, f_hat=f_hat, i_hat=i_hat, tanh_c=tanh_c, c=c, c0=c0,
                       grad_h=grad_h, grad_mf=grad_mf, grad_mi=grad_mi, dh=dh, dc=dc, grad_gates=grad_gates)
        super().__init__("backward", BackwardArgs, tensors, shapes, sizes, chunk_size, symmetric)

    def __call__(self, t: int, b: int) -> None:
        self._run(t, b)


def mask_apply(src: Tensor, keep: Tensor, scale: float) -> Tensor:
    """``keep ? src * scale : 0`` element-wise, in a new tensor (no autograd): one native
    pass on the CPU when the library is loaded, else ``torch.where``. ``src`` float, ``keep``
    bool of the same shape. ``scale`` is cast to ``src``'s dtype, as ``src * scale`` does."""
    if not (isinstance(src, Tensor) and isinstance(keep, Tensor) and keep.dtype == torch.bool
            and tuple(keep.shape) == tuple(src.shape)):
        raise ValueError("onlstm mask_apply: expected a float tensor and a bool mask of the same shape")
    if available(src.dtype, src.device) and keep.device.type == "cpu":
        src_c, keep_c = src.contiguous(), keep.contiguous()
        out = torch.empty_like(src_c)
        args = MaskArgs(numel=src_c.numel(), scale=float(scale), src=src_c.data_ptr(), keep=keep_c.data_ptr(),
                        dst=out.data_ptr())
        if getattr(load(), f"onlstm_mask_apply_{_SUFFIX[src.dtype]}")(ctypes.byref(args)) != 0:
            raise RuntimeError("onlstm kernel: negative size in the mask arguments")
        return out
    return torch.where(keep, src if scale == 1.0 else src * scale, 0.0)


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
        # A parameter used as it is (evaluation: no DropConnect mask), or the evaluation weight
        # cached from one (onlstm.layer.drop_connect), keeps its packed copy until it changes;
        # in-place updates (optimizer steps, load_state_dict) bump _version.
        cacheable = isinstance(weight, torch.nn.Parameter) or getattr(weight, "_onlstm_cacheable", False)
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
