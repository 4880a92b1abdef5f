"""The library's big matrix products, through the fastest backend this machine has.

"Big" means the products over a whole sequence at once: the hoisted input projection of a
layer ``W x + b`` and its two gradients (input and weight), the recurrent weight gradient
``sum_t dz_t^T h_{t-1}`` computed as one product, and the language model's tied decoder
and its gradients. The small per-step products ``U h_{t-1}`` are
:class:`onlstm.kernels.StepMatmul`'s (pre-packed oneDNN weights).

Two backends:

- ``"onednn"``: ``torch.ops.mkldnn._linear_pointwise`` (oneDNN's inner product, the op
  PyTorch's own CPU inference paths call) on plain dense weights. The gradients are the
  same op on transposed views: ``dX = dY W`` is ``linear(dY, W^T)``, ``dW = dY^T X`` is
  ``linear(dY^T, X^T)``.
- ``"default"``: ``torch.nn.functional.linear`` / ``torch.mm`` / ``torch.addmm`` (MKL on
  the x86 builds of PyTorch, whatever the build has elsewhere).

The rule (:func:`backend`), a rule and not a timing race, so that one machine with one
installation always takes the same path (bit-exact resume, same seed -> same numbers):
a product takes ``"onednn"`` exactly when the tensors are float32 on the CPU, the machine is
x86-64, the product is in the row of the CPU's vendor (``vendor_id`` of /proc/cpuinfo) in
``_ONEDNN_PRODUCTS``, torch is built with oneDNN and ``torch.backends.mkldnn`` is enabled,
neither ``ONLSTM_GEMM=default`` nor ``ONLSTM_NO_KERNEL=1`` is set, and a one-off probe on
fixed values (no random numbers: the global RNG is not touched) gives the same products as
``torch.mm``. Everything else — float64 (oneDNN has no float64 matmul), CUDA, other
architectures, a torch without oneDNN, any failure of the probe — takes ``"default"``.
``ONLSTM_GEMM=onednn`` does not force anything the rule refuses.

Why (float32, 2 threads, torch 2.13, the shapes of a paper-size step, N = 1400 rows;
``python benchmarks/gemm.py`` measures them on the machine at hand):

- AMD EPYC Zen 5 (AVX-512): MKL 159-201 GF/s, oneDNN 415-462 GF/s on every product,
  the forward, the input gradient and the weight gradient (373 GF/s with the transposes made
  contiguous): 2.2-2.6x (issue 11). MKL's switches (MKL_ENABLE_INSTRUCTIONS,
  MKL_DEBUG_CPU_TYPE) change nothing there. Hence every product on oneDNN for AMD, and
  for x86 vendors not in the table.
- Intel Xeon (family 6 model 167, AVX-512 + AMX, 2 vCPUs), ``python benchmarks/gemm.py
  --rounds 15`` on a quiet machine: oneDNN/MKL 0.85-1.01x on the forward products, 0.71-0.94x
  on the input gradients and 0.46-0.62x on the weight gradients (geometric mean 0.73x; 2048^3:
  158 vs 153 GF/s). MKL is at least as fast on every product there, so the Intel row is empty:
  Intel CPUs keep PyTorch's default path (docs/results.md §1).
"""

from __future__ import annotations

import os
import platform
from typing import Optional

import torch
import torch.nn.functional as F
from torch import Tensor
from torch.autograd.function import once_differentiable

BACKENDS = ("onednn", "default")
_X86 = ("x86_64", "amd64", "i686", "i386", "x86")
_probe_result: Optional[bool] = None


def _forced_default() -> bool:
    if os.environ.get("ONLSTM_NO_KERNEL", "") not in ("", "0"):
        return True
    return os.environ.get("ONLSTM_GEMM", "").strip().lower() == "default"


def _onednn_op():
    """``torch.ops.mkldnn._linear_pointwise``, or None when this torch has no such op."""
    try:
        return torch.ops.mkldnn._linear_pointwise
    except (AttributeError, RuntimeError):
        return None


def _probe() -> bool:
    """Once per process: oneDNN's product of fixed values equals ``torch.mm``'s, in each of
    the three layouts used (plain, transposed weight, both transposed)."""
    global _probe_result
    if _probe_result is None:
        ok = False
        try:
            op = _onednn_op()
            if op is not None:
                a = torch.linspace(-1.0, 1.0, 6 * 5).view(6, 5)
                w = torch.linspace(0.5, -0.75, 7 * 5).view(7, 5)
                b = torch.linspace(-0.25, 0.25, 7)
                dy = torch.linspace(-2.0, 1.0, 6 * 7).view(6, 7)
                checks = [
                    (op(a, w, b, "none", [], ""), torch.addmm(b, a, w.t())),
                    (op(dy, w.t(), None, "none", [], ""), dy.mm(w)),
                    (op(dy.t(), a.t(), None, "none", [], ""), dy.t().mm(a)),
                ]
                ok = all(x.shape == y.shape and bool(torch.allclose(x, y, rtol=1e-5, atol=1e-5)) for x, y in checks)
        except (RuntimeError, AttributeError, TypeError, NotImplementedError):
            ok = False
        _probe_result = ok
    return _probe_result


def onednn_available() -> bool:
    """Whether this process can use the oneDNN backend at all (build, architecture, probe)."""
    return (platform.machine().lower() in _X86 and torch.backends.mkldnn.is_available()
            and bool(torch.backends.mkldnn.enabled) and _probe())


PRODUCTS = ("forward", "input_grad", "weight_grad")
# Which products oneDNN does, by CPU vendor (the measurements are in the module docstring
# and docs/results.md §1); x86 vendors not listed take the AMD row.
_ONEDNN_PRODUCTS = {
    "AuthenticAMD": frozenset(PRODUCTS),
    "GenuineIntel": frozenset(),
}
_vendor: Optional[str] = None


def cpu_vendor() -> str:
    """``vendor_id`` of /proc/cpuinfo ("GenuineIntel", "AuthenticAMD", ...), "" if unreadable."""
    global _vendor
    if _vendor is None:
        vendor = ""
        try:
            with open("/proc/cpuinfo") as f:
                for line in f:
                    if line.startswith("vendor_id"):
                        vendor = line.split(":", 1)[1].strip()
                        break
        except OSError:
            pass
        _vendor = vendor
    return _vendor


def backend(dtype: torch.dtype, device, product: str = "forward") -> str:
    """The backend that ``product`` (one of :data:`PRODUCTS`) takes for tensors of ``dtype``
    on ``device`` (the rule of the module docstring): ``"onednn"`` or ``"default"``."""
    if product not in PRODUCTS:
        raise ValueError(f"product must be one of {PRODUCTS}, got {product!r}")
    device = torch.device(device)
    if device.type != "cpu" or dtype != torch.float32 or _forced_default():
        return "default"
    if product not in _ONEDNN_PRODUCTS.get(cpu_vendor(), _ONEDNN_PRODUCTS["AuthenticAMD"]):
        return "default"
    return "onednn" if onednn_available() else "default"


def _use_onednn(product: str, *tensors: Tensor) -> bool:
    t = tensors[0]
    return (backend(t.dtype, t.device, product) == "onednn"
            and all(x.dtype == t.dtype and x.device == t.device for x in tensors if x is not None))


def _lp(x: Tensor, w: Tensor, b: Optional[Tensor]) -> Tensor:
    """oneDNN ``x @ w.T + b`` for 2-D ``x`` (N, k) and ``w`` (out, k), any strides."""
    return torch.ops.mkldnn._linear_pointwise(x, w, b, "none", [], "")


class _Linear(torch.autograd.Function):
    """``y = x W^T + b``, each of the three products through its backend."""

    @staticmethod
    def forward(ctx, x, weight, bias):
        x2 = x.reshape(-1, x.shape[-1])
        if _use_onednn("forward", x2, weight, bias):
            y = _lp(x2, weight, bias)
        else:
            y = torch.addmm(bias, x2, weight.t()) if bias is not None else x2.mm(weight.t())
        ctx.save_for_backward(x2, weight)
        ctx.x_shape, ctx.has_bias = x.shape, bias is not None
        return y.view(*x.shape[:-1], weight.shape[0])

    @staticmethod
    @once_differentiable
    def backward(ctx, grad_y):
        x2, weight = ctx.saved_tensors
        dy = grad_y.reshape(-1, weight.shape[0])
        grad_x = grad_w = grad_b = None
        if ctx.needs_input_grad[0]:
            grad_x = (_lp(dy, weight.t(), None) if _use_onednn("input_grad", dy, weight)
                      else dy.mm(weight)).view(ctx.x_shape)  # dY W
        if ctx.needs_input_grad[1]:
            grad_w = mm_t(dy, x2)  # dY^T X
        if ctx.has_bias and ctx.needs_input_grad[2]:
            grad_b = dy.sum(0)
        return grad_x, grad_w, grad_b


def linear(x: Tensor, weight: Tensor, bias: Optional[Tensor] = None) -> Tensor:
    """``F.linear(x, weight, bias)`` through the chosen backends: ``x`` (..., k), ``weight``
    (out, k), ``bias`` (out,) or None; returns (..., out). Differentiable (once)."""
    if x.dim() >= 2 and x.numel() > 0 and any(_use_onednn(p, x, weight, bias) for p in PRODUCTS):
        return _Linear.apply(x, weight, bias)
    return F.linear(x, weight, bias)


def mm_t(a: Tensor, b: Tensor) -> Tensor:
    """``a^T b`` for ``a`` (N, p), ``b`` (N, q) -> (p, q): a weight gradient summed over N rows.

    oneDNN wants its left operand row-major, so one operand is copied transposed; the
    narrower one is: ``(b^T a)^T`` when q <= p (the result is then a transposed view).
    Copying the wide ``dY`` (N, 10000) of the decoder cost more than the product saved
    (docs/results.md §1, AMD Zen 4)."""
    if a.shape[0] > 0 and _use_onednn("weight_grad", a, b):
        if b.shape[1] <= a.shape[1]:
            return _lp(b.t(), a.t(), None).t()
        return _lp(a.t(), b.t(), None)
    return a.t().mm(b)
