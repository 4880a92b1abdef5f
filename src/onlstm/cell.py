"""The ON-LSTM cell: cumax, the master gates, one step, and the fused recurrence.

Equations (SPEC §1). With ``n`` hidden units, chunk size ``C`` and ``m = n / C`` levels::

    z_t  = W x_t + U h_{t-1} + b                  # 4n + 2m pre-activations
    f~_t = cumax(a_f)                             # master forget gate, rises to 1
    i~_t = 1 - cumax(a_i)          ("paper")      # master input gate, falls to 0
    i~_t = revcumsum(softmax(a_i)) ("symmetric")  # starts at exactly 1
    w_t  = f~_t * i~_t                            # overlap
    f^_t = f_t * w_t + (f~_t - w_t)
    i^_t = i_t * w_t + (i~_t - w_t)
    c_t  = f^_t * c_{t-1} + i^_t * c^_t
    h_t  = o_t * tanh(c_t)

Row layout of ``z`` (the published code's): master-input logits (m), master-forget logits
(m), then the output gate, candidate, input gate and forget gate (n each, each viewed as
m levels x C units). The master gates are computed per level and broadcast over the C units
of a level, which is the "repeat each level C times" of the paper without a copy.

Two implementations of the same maths live here:

- :func:`cell_step` — one time step with ordinary autograd ops; used by
  :class:`~onlstm.layer.ONLSTMCell` and easy to read.
- :class:`Recurrence` — a whole sequence in one ``torch.autograd.Function``: the caller
  hoists the input projection over all steps into one matrix product; the time loop does
  one matrix product per step and writes every intermediate into preallocated buffers; the
  hand-written backward runs the loop in reverse and computes the recurrent weight gradient
  with a single matrix product over the sequence. Packed (variable-length) batches are run
  with a shrinking batch, as ``torch.nn.LSTM`` does.
"""

from __future__ import annotations

from typing import Optional, Sequence

import torch
from torch import Tensor
from torch.autograd.function import once_differentiable

from . import kernels
from .kernels import StepMatmul

MASTER_INPUT_VARIANTS = ("paper", "symmetric")


def cumax(logits: Tensor, dim: int = -1) -> Tensor:
    """``cumsum(softmax(logits))``: monotone non-decreasing from ~0 up to 1."""
    return torch.cumsum(torch.softmax(logits, dim=dim), dim=dim)


def master_forget_gate(logits: Tensor) -> Tensor:
    """f~ = cumax(a_f), shape of ``logits`` (..., m): ~0 at low levels, 1 at the top."""
    return cumax(logits)


def master_input_gate(logits: Tensor, variant: str = "paper") -> Tensor:
    """i~ from the master-input logits (..., m).

    ``"paper"``: ``1 - cumax(a_i)`` (~1 at low levels, 0 at the top).
    ``"symmetric"``: ``revcumsum(softmax(a_i))`` (exactly 1 at the lowest level, ~0 at the top),
    computed as ``1 - (cumsum(p) - p)`` so that the first level is exactly 1.
    """
    p = torch.softmax(logits, dim=-1)
    cum = torch.cumsum(p, dim=-1)
    if variant == "paper":
        return 1.0 - cum
    if variant == "symmetric":
        return 1.0 - (cum - p)
    raise ValueError(f"master_input must be one of {MASTER_INPUT_VARIANTS}, got {variant!r}")


def split_gates(z: Tensor, hidden_size: int, chunk_size: int):
    """Split pre-activations (..., 4n+2m) into (a_i, a_f, o, c^, i, f) in the published order."""
    n, m = hidden_size, hidden_size // chunk_size
    return torch.split(z, [m, m, n, n, n, n], dim=-1)


def cell_step(
    x: Tensor,
    h: Tensor,
    c: Tensor,
    weight_ih: Tensor,
    weight_hh: Tensor,
    bias_ih: Optional[Tensor],
    bias_hh: Optional[Tensor],
    chunk_size: int,
    master_input: str = "paper",
):
    """One ON-LSTM step with plain autograd ops.

    Shapes: ``x`` (B, d), ``h`` and ``c`` (B, n). Returns ``(h_t, c_t, f~_t, i~_t)`` with the
    master gates of shape (B, m).
    """
    n = h.shape[-1]
    m = n // chunk_size
    z = torch.nn.functional.linear(x, weight_ih, bias_ih) + torch.nn.functional.linear(h, weight_hh, bias_hh)
    a_i, a_f, o, c_hat, i, f = split_gates(z, n, chunk_size)
    master_forget = master_forget_gate(a_f)  # (B, m)
    master_input_ = master_input_gate(a_i, master_input)  # (B, m)
    overlap = (master_forget * master_input_).unsqueeze(-1)  # (B, m, 1), broadcast over C
    mf, mi = master_forget.unsqueeze(-1), master_input_.unsqueeze(-1)
    levels = (-1, m, chunk_size)
    f_hat = torch.sigmoid(f).view(levels) * overlap + (mf - overlap)
    i_hat = torch.sigmoid(i).view(levels) * overlap + (mi - overlap)
    c_new = f_hat * c.view(levels) + i_hat * torch.tanh(c_hat).view(levels)
    c_new = c_new.view(-1, n)
    h_new = torch.sigmoid(o) * torch.tanh(c_new)
    return h_new, c_new, master_forget, master_input_


# --------------------------------------------------------------------------------------
# The fused recurrence over a whole sequence.
# --------------------------------------------------------------------------------------


def _reverse_cumsum(x: Tensor) -> Tensor:
    """revcumsum along the last dim: [x1+..+xm, x2+..+xm, ..., xm]."""
    return x.sum(-1, keepdim=True) - torch.cumsum(x, -1) + x


def _forward_buffers(x_proj: Tensor, n: int, m: int, batch_sizes):
    """Buffers of the forward loop: gates (T,B,G); h, c, tanh(c), f^, i^ (T,B,n); f~, i~ (T,B,m).
    Zero-filled for packed batches, whose padded positions must read as zero."""
    T, B, _ = x_proj.shape
    new = torch.zeros if batch_sizes is not None else torch.empty
    opts = dict(dtype=x_proj.dtype, device=x_proj.device)
    per_unit = [new(T, B, n, **opts) for _ in range(5)]
    return (torch.empty_like(x_proj), *per_unit, new(T, B, m, **opts), new(T, B, m, **opts))


def _backward_buffers(gates, grad_h_n, grad_c_n, batch_sizes):
    """Gradient buffer of the gates and the carried (dh, dc), contiguous."""
    grad_gates = torch.zeros_like(gates) if batch_sizes is not None else torch.empty_like(gates)
    if batch_sizes is None:
        return grad_gates, grad_h_n.contiguous().clone(), grad_c_n.contiguous().clone()
    # packed: a row's final-state gradient enters at its own last step (_enter_final_grads)
    return grad_gates, torch.zeros_like(grad_h_n).contiguous(), torch.zeros_like(grad_c_n).contiguous()


def _enter_final_grads(t, B, batch_sizes, dh, dc, grad_h_n, grad_c_n) -> int:
    """Active rows at step t; rows whose last step is t receive the final-state gradient."""
    if batch_sizes is None:
        return B
    b = batch_sizes[t]
    lo = batch_sizes[t + 1] if t + 1 < len(batch_sizes) else 0
    if lo < b:
        dh[lo:b] = grad_h_n[lo:b]
        dc[lo:b] = grad_c_n[lo:b]
    return b


def _forward_torch(
    x_proj: Tensor,
    weight_hh: Tensor,
    h0: Tensor,
    c0: Tensor,
    batch_sizes: Optional[Sequence[int]],
    chunk_size: int,
    symmetric: bool,
):
    """Run the time loop. No autograd; returns outputs and the buffers backward needs.

    ``x_proj``: (T, B, 4n+2m) = W x + b for every step. ``batch_sizes``: per-step number of
    active rows (non-increasing; rows sorted by length), or None when every row is active.
    Returns ``h_all (T,B,n), c_all (T,B,n), master_forget (T,B,m), master_input (T,B,m)``
    and the saved activations ``gates (T,B,G)`` (softmax probabilities and gate values),
    ``tanh_c, f_hat, i_hat`` (T,B,n). Padded positions of the outputs are zero.
    """
    T, B, G = x_proj.shape
    n = weight_hh.shape[1]
    m = n // chunk_size
    C = chunk_size
    gates, h_all, c_all, tanh_c, f_hat_all, i_hat_all, mf_all, mi_all = _forward_buffers(x_proj, n, m, batch_sizes)
    w_t = weight_hh.t()
    h, c = h0, c0
    for t in range(T):
        b = B if batch_sizes is None else batch_sizes[t]
        g = gates[t, :b]
        torch.addmm(x_proj[t, :b], h[:b], w_t, out=g)
        # master gates, per level
        logits = g[:, : 2 * m].view(b, 2, m)
        p = torch.softmax(logits, -1)
        logits.copy_(p)  # keep the probabilities for backward
        cum = torch.cumsum(p, -1)
        mf, mi = mf_all[t, :b], mi_all[t, :b]
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
        f_hat = f_hat_all[t, :b].view(b, m, C)
        i_hat = i_hat_all[t, :b].view(b, m, C)
        torch.addcmul((mf - overlap).unsqueeze(-1), f.view(b, m, C), overlap.unsqueeze(-1), out=f_hat)
        torch.addcmul((mi - overlap).unsqueeze(-1), i.view(b, m, C), overlap.unsqueeze(-1), out=i_hat)
        c_new = c_all[t, :b]
        torch.mul(f_hat.view(b, n), c[:b], out=c_new)
        c_new.addcmul_(i_hat.view(b, n), c_hat)
        tc = tanh_c[t, :b]
        torch.tanh(c_new, out=tc)
        torch.mul(o, tc, out=h_all[t, :b])
        h, c = h_all[t], c_all[t]
    return h_all, c_all, mf_all, mi_all, gates, tanh_c, f_hat_all, i_hat_all


def _backward_torch(
    grad_h_all: Tensor,
    grad_h_n: Tensor,
    grad_c_n: Tensor,
    grad_mf: Tensor,
    grad_mi: Tensor,
    weight_hh: Tensor,
    h0: Tensor,
    c0: Tensor,
    h_all: Tensor,
    c_all: Tensor,
    mf_all: Tensor,
    mi_all: Tensor,
    gates: Tensor,
    tanh_c: Tensor,
    f_hat_all: Tensor,
    i_hat_all: Tensor,
    batch_sizes: Optional[Sequence[int]],
    chunk_size: int,
    symmetric: bool,
):
    """Reverse time loop. Returns gradients w.r.t. ``x_proj, weight_hh, h0, c0``."""
    T, B, G = gates.shape
    n = weight_hh.shape[1]
    m = n // chunk_size
    C = chunk_size
    grad_gates, dh, dc = _backward_buffers(gates, grad_h_n, grad_c_n, batch_sizes)
    for t in range(T - 1, -1, -1):
        b = _enter_final_grads(t, B, batch_sizes, dh, dc, grad_h_n, grad_c_n)
        g = gates[t, :b]
        p = g[:, : 2 * m].view(b, 2, m)
        o = g[:, 2 * m : 2 * m + n]
        c_hat = g[:, 2 * m + n : 2 * m + 2 * n]
        i = g[:, 2 * m + 2 * n : 2 * m + 3 * n]
        f = g[:, 2 * m + 3 * n :]
        mf, mi = mf_all[t, :b], mi_all[t, :b]
        tc = tanh_c[t, :b]
        c_prev = c_all[t - 1, :b] if t > 0 else c0[:b]
        dg = grad_gates[t, :b]
        d_o, d_chat = dg[:, 2 * m : 2 * m + n], dg[:, 2 * m + n : 2 * m + 2 * n]
        d_i, d_f = dg[:, 2 * m + 2 * n : 2 * m + 3 * n], dg[:, 2 * m + 3 * n :]

        dht = grad_h_all[t, :b] + dh[:b]
        # h = o * tanh(c)
        torch.mul(dht, tc, out=d_o)
        d_o.mul_(o).mul_(1.0 - o)
        dct = dht * o
        dct.mul_(1.0 - tc * tc).add_(dc[:b])
        # c = f^ * c_prev + i^ * c^
        d_fhat = dct * c_prev
        d_ihat = dct * c_hat
        torch.mul(dct, i_hat_all[t, :b], out=d_chat)
        d_chat.mul_(1.0 - c_hat * c_hat)
        torch.mul(dct, f_hat_all[t, :b], out=dc[:b])
        # f^ = f*w + f~ - w ;  i^ = i*w + i~ - w ;  w = f~ * i~
        overlap = (mf * mi).unsqueeze(-1)
        lv = (b, m, C)
        torch.mul(d_fhat.view(lv), overlap, out=d_f.view(lv))
        d_f.mul_(f).mul_(1.0 - f)
        torch.mul(d_ihat.view(lv), overlap, out=d_i.view(lv))
        d_i.mul_(i).mul_(1.0 - i)
        d_overlap = (d_fhat * (f - 1.0)).addcmul_(d_ihat, i - 1.0).view(lv).sum(-1)  # (b, m)
        d_mf = d_fhat.view(lv).sum(-1).addcmul_(d_overlap, mi).add_(grad_mf[t, :b])
        d_mi = d_ihat.view(lv).sum(-1).addcmul_(d_overlap, mf).add_(grad_mi[t, :b])
        # back through cumsum and softmax, both master gates at once: (b, 2, m)
        d_cum = torch.stack((d_mi.neg(), d_mf), 1)  # i~ = 1 - cumsum(p_i) (+ p_i if symmetric)
        d_p = _reverse_cumsum(d_cum)
        if symmetric:
            d_p[:, 0] += d_mi
        d_logits = dg[:, : 2 * m].view(b, 2, m)
        torch.mul(p, d_p - (p * d_p).sum(-1, keepdim=True), out=d_logits)
        # into the previous hidden state
        torch.mm(dg, weight_hh, out=dh[:b])
    # one matrix product for the recurrent weight gradient over the whole sequence
    grad_w = grad_gates[0].t().mm(h0)
    if T > 1:
        grad_w.addmm_(grad_gates[1:].reshape(-1, G).t(), h_all[:-1].reshape(-1, n))
    return grad_gates, grad_w, dh, dc


# --------------------------------------------------------------------------------------
# Fast path: the same loops with one fused native call per step (onlstm/_kernels.c) and
# pre-packed recurrent weights. Same buffers, same results up to float rounding.
# --------------------------------------------------------------------------------------


def _ptr(t: Tensor, index: int = 0, row: int = 0) -> int:
    """Address of ``t[index, row]`` for a contiguous (T, B, X) tensor (or (B, X) with index 0)."""
    if t.dim() == 2:
        return t.data_ptr() + row * t.shape[1] * t.element_size()
    return t.data_ptr() + (index * t.shape[1] + row) * t.shape[2] * t.element_size()


def _forward_fused(steps, x_proj, weight_hh, h0, c0, batch_sizes, chunk_size, symmetric):
    forward_step = steps[0]
    T, B, G = x_proj.shape
    n = weight_hh.shape[1]
    m = n // chunk_size
    gates, h_all, c_all, tanh_c, f_hat_all, i_hat_all, mf_all, mi_all = _forward_buffers(x_proj, n, m, batch_sizes)
    work = torch.empty(4 * n + 2 * m, dtype=x_proj.dtype, device=x_proj.device)
    matmul = StepMatmul(weight_hh, B)
    w_t = weight_hh.t()
    h, c = h0.contiguous(), c0.contiguous()
    for t in range(T):
        b = B if batch_sizes is None else batch_sizes[t]
        if matmul.packed is not None:  # gates = x_proj[t] + packed(U) h, summed inside the kernel
            pre = matmul(h[:b])
            xp, xp_stride, pre_ptr = _ptr(x_proj, t), G, pre.data_ptr()
        else:
            torch.addmm(x_proj[t, :b], h[:b], w_t, out=gates[t, :b])
            xp, xp_stride, pre_ptr = None, 0, _ptr(gates, t)
        c_prev = _ptr(c_all, t - 1) if t > 0 else c.data_ptr()
        forward_step(
            b, n, m, chunk_size, int(symmetric), xp, xp_stride, pre_ptr, _ptr(gates, t), c_prev,
            _ptr(c_all, t), _ptr(tanh_c, t), _ptr(h_all, t), _ptr(f_hat_all, t), _ptr(i_hat_all, t),
            _ptr(mf_all, t), _ptr(mi_all, t), work.data_ptr(),
        )
        h = h_all[t]
    return h_all, c_all, mf_all, mi_all, gates, tanh_c, f_hat_all, i_hat_all


def _backward_fused(steps, grad_h_all, grad_h_n, grad_c_n, grad_mf, grad_mi, weight_hh, h0, c0,
                    h_all, c_all, mf_all, mi_all, gates, tanh_c, f_hat_all, i_hat_all,
                    batch_sizes, chunk_size, symmetric):
    backward_step = steps[1]
    T, B, G = gates.shape
    n = weight_hh.shape[1]
    m = n // chunk_size
    grad_h_all, grad_mf, grad_mi = grad_h_all.contiguous(), grad_mf.contiguous(), grad_mi.contiguous()
    c0 = c0.contiguous()
    grad_gates, dh, dc = _backward_buffers(gates, grad_h_n, grad_c_n, batch_sizes)
    work = torch.empty(4 * n + 2 * m, dtype=gates.dtype, device=gates.device)
    matmul = StepMatmul(weight_hh.t(), B)  # (b, G) @ (G, n)
    for t in range(T - 1, -1, -1):
        b = _enter_final_grads(t, B, batch_sizes, dh, dc, grad_h_n, grad_c_n)
        c_prev = _ptr(c_all, t - 1) if t > 0 else c0.data_ptr()
        backward_step(
            b, n, m, chunk_size, int(symmetric), _ptr(gates, t), _ptr(mf_all, t), _ptr(mi_all, t),
            _ptr(f_hat_all, t), _ptr(i_hat_all, t), _ptr(tanh_c, t), c_prev, _ptr(grad_h_all, t),
            dh.data_ptr(), dc.data_ptr(), _ptr(grad_mf, t), _ptr(grad_mi, t), _ptr(grad_gates, t),
            work.data_ptr(),
        )
        if matmul.packed is not None:
            dh[:b] = matmul(grad_gates[t, :b])
        else:
            torch.mm(grad_gates[t, :b], weight_hh, out=dh[:b])
    grad_w = grad_gates[0].t().mm(h0)
    if T > 1:
        grad_w.addmm_(grad_gates[1:].reshape(-1, G).t(), h_all[:-1].reshape(-1, n))
    return grad_gates, grad_w, dh, dc


def recurrence_forward(x_proj, weight_hh, h0, c0, batch_sizes, chunk_size, symmetric):
    """The forward time loop (see :func:`_forward_torch`); fused native steps when available."""
    steps = kernels.step_functions(x_proj.dtype, x_proj.device)
    if steps is None:
        return _forward_torch(x_proj, weight_hh, h0, c0, batch_sizes, chunk_size, symmetric)
    return _forward_fused(steps, x_proj, weight_hh, h0, c0, batch_sizes, chunk_size, symmetric)


def recurrence_backward(*args):
    """The reverse time loop (see :func:`_backward_torch`); fused native steps when available."""
    steps = kernels.step_functions(args[0].dtype, args[0].device)
    if steps is None:
        return _backward_torch(*args)
    return _backward_fused(steps, *args)


class Recurrence(torch.autograd.Function):
    """Autograd wrapper of :func:`recurrence_forward` / :func:`recurrence_backward`.

    Inputs ``x_proj (T,B,G), weight_hh (G,n), h0 (B,n), c0 (B,n)``; outputs
    ``h_all (T,B,n), h_n (B,n), c_n (B,n), master_forget (T,B,m), master_input (T,B,m)``.
    """

    @staticmethod
    def forward(ctx, x_proj, weight_hh, h0, c0, batch_sizes, chunk_size, symmetric):
        h_all, c_all, mf, mi, gates, tanh_c, f_hat, i_hat = recurrence_forward(
            x_proj, weight_hh, h0, c0, batch_sizes, chunk_size, symmetric
        )
        h_n, c_n = _final_states(h_all, c_all, batch_sizes)
        ctx.save_for_backward(weight_hh, h0, c0, h_all, c_all, mf, mi, gates, tanh_c, f_hat, i_hat)
        ctx.batch_sizes, ctx.chunk_size, ctx.symmetric = batch_sizes, chunk_size, symmetric
        return h_all, h_n, c_n, mf, mi

    @staticmethod
    @once_differentiable
    def backward(ctx, grad_h_all, grad_h_n, grad_c_n, grad_mf, grad_mi):
        weight_hh, h0, c0, h_all, c_all, mf, mi, gates, tanh_c, f_hat, i_hat = ctx.saved_tensors
        grad_x, grad_w, grad_h0, grad_c0 = recurrence_backward(
            grad_h_all, grad_h_n, grad_c_n, grad_mf, grad_mi, weight_hh, h0, c0,
            h_all, c_all, mf, mi, gates, tanh_c, f_hat, i_hat,
            ctx.batch_sizes, ctx.chunk_size, ctx.symmetric,
        )
        return grad_x, grad_w, grad_h0, grad_c0, None, None, None


def _final_states(h_all: Tensor, c_all: Tensor, batch_sizes: Optional[Sequence[int]]):
    """The state at each row's last real step: (B, n) each."""
    if batch_sizes is None:
        return h_all[-1].clone(), c_all[-1].clone()
    B = h_all.shape[1]
    bs = torch.tensor(batch_sizes)
    lengths = (bs.unsqueeze(1) > torch.arange(B).unsqueeze(0)).sum(0)  # (B,)
    last = (lengths - 1).to(h_all.device)
    rows = torch.arange(B, device=h_all.device)
    return h_all[last, rows], c_all[last, rows]


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
        x_proj: (T, B, 4n+2m) input pre-activations, biases included.
        weight_hh: (4n+2m, n) recurrent weight (DropConnect already applied).
        h0, c0: (B, n) initial state.
        batch_sizes: per-step active rows for length-sorted packed batches, or None.
    Returns:
        ``h_all (T,B,n), h_n (B,n), c_n (B,n), master_forget (T,B,m), master_input (T,B,m)``;
        padded positions are zero.
    """
    symmetric = master_input == "symmetric"
    x_proj = x_proj.contiguous()
    if torch.is_grad_enabled() and any(t.requires_grad for t in (x_proj, weight_hh, h0, c0)):
        return Recurrence.apply(x_proj, weight_hh, h0, c0, batch_sizes, chunk_size, symmetric)
    with torch.no_grad():
        h_all, c_all, mf, mi, *_ = recurrence_forward(x_proj, weight_hh, h0, c0, batch_sizes, chunk_size, symmetric)
        h_n, c_n = _final_states(h_all, c_all, batch_sizes)
    return h_all, h_n, c_n, mf, mi
