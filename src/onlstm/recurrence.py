"""The fused ON-LSTM recurrence over a whole sequence, with a hand-written backward.

The maths is :func:`onlstm.cell.cell_step` (docs/spec.md §1), run over T steps at once:

- the caller hoists the input projection ``W x + b`` over all steps into one matrix
  product and passes it as ``x_proj`` (T, B, 4n+2m);
- the time loop does one matrix product per step (``U h_{t-1}``) and writes every
  intermediate into preallocated buffers (:class:`ForwardBuffers`);
- the backward runs the loop in reverse and computes the recurrent weight gradient with a
  single matrix product over the sequence (through :mod:`onlstm.gemm`'s backend).

Each loop exists twice with the same buffers: in PyTorch ops (the fallback, and the
float64 reference path of the tests), and with one native call per step for the
element-wise maths (:class:`onlstm.kernels.ForwardStep` / ``BackwardStep``), used on the CPU
when the kernel is available. Packed (variable-length) batches run with a shrinking batch,
as ``torch.nn.LSTM`` does: ``batch_sizes[t]`` rows are active at step t.
"""

from __future__ import annotations

from typing import NamedTuple, Optional, Sequence, Tuple

import torch
from torch import Tensor
from torch.autograd.function import once_differentiable

from . import gemm, kernels
from .cell import check_dtype
from .kernels import StepMatmul


class ForwardBuffers(NamedTuple):
    """Everything the forward loop writes; what backward reads.

    ``gates`` (T, B, G): per row ``[p_i | p_f | o | c^ | i | f]`` — the softmax
    probabilities of the master logits and the activated gates. ``h``, ``c``, ``tanh_c``,
    ``f_hat``, ``i_hat`` (T, B, n). ``mf``, ``mi`` (T, B, m): the master gates f~, i~.
    Padded positions (packed batches) are zero.
    """

    gates: Tensor
    h: Tensor
    c: Tensor
    tanh_c: Tensor
    f_hat: Tensor
    i_hat: Tensor
    mf: Tensor
    mi: Tensor


class Grads(NamedTuple):
    """Incoming gradients: ``h`` (T, B, n) of the outputs, ``h_n``, ``c_n`` (B, n) of the
    final states, ``mf``, ``mi`` (T, B, m) of the master gates."""

    h: Tensor
    h_n: Tensor
    c_n: Tensor
    mf: Tensor
    mi: Tensor


def _reverse_cumsum(x: Tensor) -> Tensor:
    """revcumsum along the last dim: [x1+..+xm, x2+..+xm, ..., xm]."""
    return x.sum(-1, keepdim=True) - torch.cumsum(x, -1) + x


def _forward_buffers(x_proj: Tensor, n: int, m: int, batch_sizes) -> ForwardBuffers:
    """Buffers of the forward loop, zero-filled for packed batches (padded positions read as zero)."""
    T, B, _ = x_proj.shape
    new = torch.zeros if batch_sizes is not None else torch.empty
    opts = dict(dtype=x_proj.dtype, device=x_proj.device)
    per_unit = [new(T, B, n, **opts) for _ in range(5)]
    return ForwardBuffers(torch.empty_like(x_proj), *per_unit, new(T, B, m, **opts), new(T, B, m, **opts))


def _backward_buffers(gates: Tensor, grads: Grads, batch_sizes) -> Tuple[Tensor, Tensor, Tensor]:
    """Gradient buffer of the gates (T, B, G) and the carried (dh, dc) (B, n), contiguous."""
    grad_gates = torch.zeros_like(gates) if batch_sizes is not None else torch.empty_like(gates)
    if batch_sizes is None:
        return grad_gates, grads.h_n.contiguous().clone(), grads.c_n.contiguous().clone()
    # packed: a row's final-state gradient enters at its own last step (_enter_final_grads)
    return grad_gates, torch.zeros_like(grads.h_n).contiguous(), torch.zeros_like(grads.c_n).contiguous()


def _enter_final_grads(t: int, B: int, batch_sizes, dh: Tensor, dc: Tensor, grads: Grads) -> int:
    """Active rows at step t; rows whose last step is t receive the final-state gradient."""
    if batch_sizes is None:
        return B
    b = batch_sizes[t]
    lo = batch_sizes[t + 1] if t + 1 < len(batch_sizes) else 0
    if lo < b:
        dh[lo:b] = grads.h_n[lo:b]
        dc[lo:b] = grads.c_n[lo:b]
    return b


def _recurrent_weight_grad(grad_gates: Tensor, h0: Tensor, h: Tensor) -> Tensor:
    """dL/dU = sum_t dz_t^T h_{t-1}: one product over the whole sequence, (G, n)."""
    T, _, G = grad_gates.shape
    if gemm.backend(grad_gates.dtype, grad_gates.device, "weight_grad") == "onednn":
        h_prev = torch.cat((h0.unsqueeze(0), h[:-1])) if T > 1 else h0.unsqueeze(0)
        return gemm.mm_t(grad_gates.reshape(-1, G), h_prev.reshape(-1, h.shape[-1]))
    grad_w = grad_gates[0].t().mm(h0)
    if T > 1:
        grad_w.addmm_(grad_gates[1:].reshape(-1, G).t(), h[:-1].reshape(-1, h.shape[-1]))
    return grad_w


# --------------------------------------------------------------------------------------
# PyTorch loops.
# --------------------------------------------------------------------------------------


def _forward_torch(x_proj, weight_hh, h0, c0, batch_sizes, chunk_size, symmetric) -> ForwardBuffers:
    """The time loop in PyTorch ops, no autograd. ``x_proj`` (T, B, G) = W x + b for every
    step; ``weight_hh`` (G, n); ``h0``, ``c0`` (B, n)."""
    T, B, G = x_proj.shape
    n = weight_hh.shape[1]
    m = n // chunk_size
    C = chunk_size
    buf = _forward_buffers(x_proj, n, m, batch_sizes)
    w_t = weight_hh.t()
    h, c = h0, c0
    for t in range(T):
        b = B if batch_sizes is None else batch_sizes[t]
        g = buf.gates[t, :b]
        torch.addmm(x_proj[t, :b], h[:b], w_t, out=g)
        # master gates, per level
        logits = g[:, : 2 * m].view(b, 2, m)
        p = torch.softmax(logits, -1)
        logits.copy_(p)  # keep the probabilities for backward
        cum = torch.cumsum(p, -1)
        mf, mi = buf.mf[t, :b], buf.mi[t, :b]
        mf.copy_(cum[:, 1])
        if symmetric:
            torch.sub(p[:, 0], cum[:, 0], out=mi).add_(1.0)  # 1 - exclusive cumsum
        else:
            torch.neg(cum[:, 0], out=mi).add_(1.0)
        # ordinary gates, in place in the buffer
        o = g[:, 2 * m : 2 * m + n]
        c_hat = g[:, 2 * m + n : 2 * m + 2 * n]
        in_f = g[:, 2 * m + 2 * n :]
        o.sigmoid_()
        c_hat.tanh_()
        in_f.sigmoid_()
        i, f = in_f[:, :n], in_f[:, n:]
        overlap = mf * mi  # (b, m)
        f_hat = buf.f_hat[t, :b].view(b, m, C)
        i_hat = buf.i_hat[t, :b].view(b, m, C)
        torch.addcmul((mf - overlap).unsqueeze(-1), f.view(b, m, C), overlap.unsqueeze(-1), out=f_hat)
        torch.addcmul((mi - overlap).unsqueeze(-1), i.view(b, m, C), overlap.unsqueeze(-1), out=i_hat)
        c_new = buf.c[t, :b]
        torch.mul(f_hat.view(b, n), c[:b], out=c_new)
        c_new.addcmul_(i_hat.view(b, n), c_hat)
        tc = buf.tanh_c[t, :b]
        torch.tanh(c_new, out=tc)
        torch.mul(o, tc, out=buf.h[t, :b])
        h, c = buf.h[t], buf.c[t]
    return buf


def _backward_torch(grads: Grads, weight_hh, h0, c0, buf: ForwardBuffers, batch_sizes, chunk_size, symmetric):
    """Reverse time loop in PyTorch ops. Returns gradients w.r.t. ``x_proj, weight_hh, h0, c0``."""
    T, B, G = buf.gates.shape
    n = weight_hh.shape[1]
    m = n // chunk_size
    C = chunk_size
    grad_gates, dh, dc = _backward_buffers(buf.gates, grads, batch_sizes)
    for t in range(T - 1, -1, -1):
        b = _enter_final_grads(t, B, batch_sizes, dh, dc, grads)
        g = buf.gates[t, :b]
        p = g[:, : 2 * m].view(b, 2, m)
        o = g[:, 2 * m : 2 * m + n]
        c_hat = g[:, 2 * m + n : 2 * m + 2 * n]
        i = g[:, 2 * m + 2 * n : 2 * m + 3 * n]
        f = g[:, 2 * m + 3 * n :]
        mf, mi = buf.mf[t, :b], buf.mi[t, :b]
        tc = buf.tanh_c[t, :b]
        c_prev = buf.c[t - 1, :b] if t > 0 else c0[:b]
        dg = grad_gates[t, :b]
        d_o, d_chat = dg[:, 2 * m : 2 * m + n], dg[:, 2 * m + n : 2 * m + 2 * n]
        d_i, d_f = dg[:, 2 * m + 2 * n : 2 * m + 3 * n], dg[:, 2 * m + 3 * n :]

        dht = grads.h[t, :b] + dh[:b]
        # h = o * tanh(c)
        torch.mul(dht, tc, out=d_o)
        d_o.mul_(o).mul_(1.0 - o)
        dct = dht * o
        dct.mul_(1.0 - tc * tc).add_(dc[:b])
        # c = f^ * c_prev + i^ * c^
        d_fhat = dct * c_prev
        d_ihat = dct * c_hat
        torch.mul(dct, buf.i_hat[t, :b], out=d_chat)
        d_chat.mul_(1.0 - c_hat * c_hat)
        torch.mul(dct, buf.f_hat[t, :b], out=dc[:b])
        # f^ = f*w + f~ - w ;  i^ = i*w + i~ - w ;  w = f~ * i~
        overlap = (mf * mi).unsqueeze(-1)
        lv = (b, m, C)
        torch.mul(d_fhat.view(lv), overlap, out=d_f.view(lv))
        d_f.mul_(f).mul_(1.0 - f)
        torch.mul(d_ihat.view(lv), overlap, out=d_i.view(lv))
        d_i.mul_(i).mul_(1.0 - i)
        d_overlap = (d_fhat * (f - 1.0)).addcmul_(d_ihat, i - 1.0).view(lv).sum(-1)  # (b, m)
        d_mf = d_fhat.view(lv).sum(-1).addcmul_(d_overlap, mi).add_(grads.mf[t, :b])
        d_mi = d_ihat.view(lv).sum(-1).addcmul_(d_overlap, mf).add_(grads.mi[t, :b])
        # back through cumsum and softmax, both master gates at once: (b, 2, m)
        d_cum = torch.stack((d_mi.neg(), d_mf), 1)  # i~ = 1 - cumsum(p_i) (+ p_i if symmetric)
        d_p = _reverse_cumsum(d_cum)
        if symmetric:
            d_p[:, 0] += d_mi
        d_logits = dg[:, : 2 * m].view(b, 2, m)
        torch.mul(p, d_p - (p * d_p).sum(-1, keepdim=True), out=d_logits)
        # into the previous hidden state
        torch.mm(dg, weight_hh, out=dh[:b])
    return grad_gates, _recurrent_weight_grad(grad_gates, h0, buf.h), dh, dc


# --------------------------------------------------------------------------------------
# The same loops with one native call per step for the element-wise maths, and
# pre-packed recurrent weights. Same buffers, same results up to float rounding.
# --------------------------------------------------------------------------------------


def _forward_fused(x_proj, weight_hh, h0, c0, batch_sizes, chunk_size, symmetric) -> ForwardBuffers:
    T, B, G = x_proj.shape
    n = weight_hh.shape[1]
    buf = _forward_buffers(x_proj, n, n // chunk_size, batch_sizes)
    step = kernels.ForwardStep(chunk_size=chunk_size, symmetric=symmetric, x_proj=x_proj, c0=c0.contiguous(),
                               **buf._asdict())
    matmul = StepMatmul(weight_hh, B)
    w_t = weight_hh.t()
    h = h0.contiguous()
    for t in range(T):
        b = B if batch_sizes is None else batch_sizes[t]
        if matmul.packed is not None:  # gates = x_proj[t] + packed(U) h, summed inside the kernel
            step(t, b, pre=matmul(h[:b]))
        else:
            torch.addmm(x_proj[t, :b], h[:b], w_t, out=buf.gates[t, :b])
            step(t, b)
        h = buf.h[t]
    return buf


def _backward_fused(grads: Grads, weight_hh, h0, c0, buf: ForwardBuffers, batch_sizes, chunk_size, symmetric):
    T, B, G = buf.gates.shape
    grad_gates, dh, dc = _backward_buffers(buf.gates, grads, batch_sizes)
    step = kernels.BackwardStep(
        chunk_size=chunk_size, symmetric=symmetric, gates=buf.gates, mf=buf.mf, mi=buf.mi, f_hat=buf.f_hat,
        i_hat=buf.i_hat, tanh_c=buf.tanh_c, c=buf.c, c0=c0.contiguous(), grad_h=grads.h.contiguous(),
        grad_mf=grads.mf.contiguous(), grad_mi=grads.mi.contiguous(), dh=dh, dc=dc, grad_gates=grad_gates,
    )
    matmul = StepMatmul(weight_hh.t(), B)  # (b, G) @ (G, n)
    for t in range(T - 1, -1, -1):
        b = _enter_final_grads(t, B, batch_sizes, dh, dc, grads)
        step(t, b)
        if matmul.packed is not None:
            dh[:b] = matmul(grad_gates[t, :b])
        else:
            torch.mm(grad_gates[t, :b], weight_hh, out=dh[:b])
    return grad_gates, _recurrent_weight_grad(grad_gates, h0, buf.h), dh, dc


def recurrence_forward(x_proj, weight_hh, h0, c0, batch_sizes, chunk_size, symmetric) -> ForwardBuffers:
    """The forward time loop; fused native steps when available."""
    fused = kernels.available(x_proj.dtype, x_proj.device)
    return (_forward_fused if fused else _forward_torch)(x_proj, weight_hh, h0, c0, batch_sizes, chunk_size, symmetric)


def recurrence_backward(grads: Grads, weight_hh, h0, c0, buf: ForwardBuffers, batch_sizes, chunk_size, symmetric):
    """The reverse time loop; fused native steps when available. Returns gradients
    w.r.t. ``x_proj`` (T, B, G), ``weight_hh`` (G, n), ``h0``, ``c0`` (B, n)."""
    fused = kernels.available(buf.gates.dtype, buf.gates.device)
    return (_backward_fused if fused else _backward_torch)(
        grads, weight_hh, h0, c0, buf, batch_sizes, chunk_size, symmetric
    )


def _final_states(buf: ForwardBuffers, batch_sizes: Optional[Sequence[int]]) -> Tuple[Tensor, Tensor]:
    """The state at each row's last real step: (B, n) each."""
    if batch_sizes is None:
        return buf.h[-1].clone(), buf.c[-1].clone()
    B = buf.h.shape[1]
    bs = torch.tensor(batch_sizes)
    lengths = (bs.unsqueeze(1) > torch.arange(B).unsqueeze(0)).sum(0)  # (B,)
    last = (lengths - 1).to(buf.h.device)
    rows = torch.arange(B, device=buf.h.device)
    return buf.h[last, rows], buf.c[last, rows]


class Recurrence(torch.autograd.Function):
    """Autograd wrapper of :func:`recurrence_forward` / :func:`recurrence_backward`.

    Inputs ``x_proj (T,B,G), weight_hh (G,n), h0 (B,n), c0 (B,n)``; outputs
    ``h_all (T,B,n), h_n (B,n), c_n (B,n), master_forget (T,B,m), master_input (T,B,m)``.
    """

    @staticmethod
    def forward(ctx, x_proj, weight_hh, h0, c0, batch_sizes, chunk_size, symmetric):
        buf = recurrence_forward(x_proj, weight_hh, h0, c0, batch_sizes, chunk_size, symmetric)
        h_n, c_n = _final_states(buf, batch_sizes)
        ctx.save_for_backward(weight_hh, h0, c0, *buf)
        ctx.batch_sizes, ctx.chunk_size, ctx.symmetric = batch_sizes, chunk_size, symmetric
        return buf.h, h_n, c_n, buf.mf, buf.mi

    @staticmethod
    @once_differentiable
    def backward(ctx, grad_h_all, grad_h_n, grad_c_n, grad_mf, grad_mi):
        weight_hh, h0, c0, *saved = ctx.saved_tensors
        grads = Grads(grad_h_all, grad_h_n, grad_c_n, grad_mf, grad_mi)
        grad_x, grad_w, grad_h0, grad_c0 = recurrence_backward(
            grads, weight_hh, h0, c0, ForwardBuffers(*saved), ctx.batch_sizes, ctx.chunk_size, ctx.symmetric
        )
        return grad_x, grad_w, grad_h0, grad_c0, None, None, None


def recurrence(
    x_proj: Tensor,
    weight_hh: Tensor,
    h0: Tensor,
    c0: Tensor,
    batch_sizes: Optional[Sequence[int]] = None,
    chunk_size: int = 1,
    master_input: str = "paper",
):
    """ON-LSTM over a sequence whose input projection ``W x + b`` is precomputed.

    Args:
        x_proj: (T, B, 4n+2m) input pre-activations, biases included; T > 0.
        weight_hh: (4n+2m, n) recurrent weight (DropConnect already applied).
        h0, c0: (B, n) initial state.
        batch_sizes: per-step active rows for length-sorted packed batches, or None.
    Returns:
        ``h_all (T,B,n), h_n (B,n), c_n (B,n), master_forget (T,B,m), master_input (T,B,m)``;
        padded positions are zero.
    """
    if x_proj.shape[0] == 0:
        raise ValueError("Expected sequence length to be larger than 0 in ONLSTM, got a sequence of length 0")
    for name, t in (("x_proj", x_proj), ("h_0", h0), ("c_0", c0)):
        check_dtype(t, weight_hh, name)
    symmetric = master_input == "symmetric"
    x_proj = x_proj.contiguous()
    if torch.is_grad_enabled() and any(t.requires_grad for t in (x_proj, weight_hh, h0, c0)):
        return Recurrence.apply(x_proj, weight_hh, h0, c0, batch_sizes, chunk_size, symmetric)
    with torch.no_grad():
        buf = recurrence_forward(x_proj, weight_hh, h0, c0, batch_sizes, chunk_size, symmetric)
        h_n, c_n = _final_states(buf, batch_sizes)
    return buf.h, h_n, c_n, buf.mf, buf.mi
