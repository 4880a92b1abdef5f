"""The ON-LSTM cell, top to bottom: cumax, the master gates, the gate split, one step.

Equations (docs/spec.md §1). With ``n`` hidden units, chunk size ``C`` and ``m = n / C``
levels::

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

:func:`cell_step` is the readable reference, used by :class:`~onlstm.layer.ONLSTMCell`.
:mod:`onlstm.recurrence` runs the same maths over a whole sequence with a hand-written
backward (and :mod:`onlstm.kernels` its native steps); the tests hold both to this file.
"""

from __future__ import annotations

from typing import Optional, Tuple

import torch
from torch import Tensor

MASTER_INPUT_VARIANTS = ("paper", "symmetric")


def cumax(logits: Tensor, dim: int = -1) -> Tensor:
    """``cumsum(softmax(logits))``: monotone non-decreasing from ~0 up to 1. Shape of ``logits``."""
    return torch.cumsum(torch.softmax(logits, dim=dim), dim=dim)


def master_forget_gate(logits: Tensor) -> Tensor:
    """f~ = cumax(a_f), shape of ``logits`` (..., m): ~0 at low levels, 1 at the top."""
    return cumax(logits)


def master_input_gate(logits: Tensor, variant: str = "paper") -> Tensor:
    """i~ from the master-input logits (..., m), same shape.

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


def split_gates(z: Tensor, hidden_size: int, chunk_size: int) -> Tuple[Tensor, ...]:
    """Split pre-activations (..., 4n+2m) into ``(a_i, a_f, o, c^, i, f)`` in the published
    order: (..., m) twice, then (..., n) four times."""
    n, m = hidden_size, hidden_size // chunk_size
    return torch.split(z, [m, m, n, n, n, n], dim=-1)


def check_dtype(input: Tensor, weight: Tensor, name: str = "input") -> None:
    """Refuse, naming both dtypes, an ``input`` whose dtype differs from the module's ``weight``."""
    if input.dtype != weight.dtype:
        raise ValueError(
            f"{name} has dtype {input.dtype} but the ON-LSTM weights are {weight.dtype}: convert the "
            f"{name} with .to({weight.dtype}) or the module with .to({input.dtype})"
        )


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
) -> Tuple[Tensor, Tensor, Tensor, Tensor]:
    """One ON-LSTM step with plain autograd ops.

    Shapes: ``x`` (B, d), ``h`` and ``c`` (B, n); ``weight_ih`` (4n+2m, d), ``weight_hh``
    (4n+2m, n), biases (4n+2m,) or None. Returns ``(h_t, c_t, f~_t, i~_t)``: (B, n) twice,
    then the master gates (B, m).
    """
    check_dtype(x, weight_ih)
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
