"""`ONLSTM` and `ONLSTMCell`: drop-in counterparts of `torch.nn.LSTM` / `torch.nn.LSTMCell`.

Parameters are named and shaped as in ``torch.nn.LSTM`` (``weight_ih_l{k}`` of shape
(4n+2m, input), ``weight_hh_l{k}`` (4n+2m, n), ``bias_ih_l{k}``, ``bias_hh_l{k}``, and the
``_reverse`` ones when bidirectional); the rows follow the published code's order (see
:mod:`onlstm.cell`).

DropConnect (``dropconnect=p``) zeroes each recurrent weight with probability p, one mask per
forward call (docs/spec.md §4). Two conventions (``dropconnect_convention``):
``"published"`` (default) as the published code's ``LinearDropConnect``: the kept weights are
used as stored in training and the weight is multiplied by (1-p) at evaluation, so the
published code's stored weights load unconverted; ``"rescaled"``: the kept weights are scaled
by 1/(1-p) in training and evaluation uses the weight as stored. Both give the same outputs
from weights that differ by the factor (1-p), but not the same training step: the gradient on
the stored weight is 1/(1-p) times larger under ``"rescaled"``.

Initialisation as the published code, whose maps are ``nn.Linear``: every weight and bias is
U(-1/sqrt(fan_in), 1/sqrt(fan_in)), fan_in being the input size for ``*_ih`` and the hidden
size for ``*_hh``.
"""

from __future__ import annotations

import math
from typing import NamedTuple, Optional, Tuple

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.nn.utils.rnn import PackedSequence, pad_packed_sequence

from . import gemm, kernels
from .cell import MASTER_INPUT_VARIANTS, cell_step, check_dtype
from .recurrence import recurrence


class Distances(NamedTuple):
    """Syntactic distances (docs/spec.md §2), each (layers*directions, seq, batch) — batch first
    when the layer is ``batch_first``. ``forget`` is ``1 - mean(f~)``, ``input`` is ``mean(i~)``.
    Padded positions of packed input are zero."""

    forget: Tensor
    input: Tensor


def default_chunk_size(hidden_size: int) -> int:
    """The paper's chunk size 10 when it divides ``hidden_size``, else its largest divisor below 10."""
    return max(c for c in range(1, 11) if hidden_size % c == 0)


def _check_common(input_size, hidden_size, chunk_size, dropconnect, master_input):
    if not isinstance(input_size, int) or input_size <= 0:
        raise ValueError(f"input_size must be a positive int, got {input_size!r}")
    if not isinstance(hidden_size, int) or hidden_size <= 0:
        raise ValueError(f"hidden_size must be a positive int, got {hidden_size!r}")
    if chunk_size is None:
        chunk_size = default_chunk_size(hidden_size)
    if not isinstance(chunk_size, int) or chunk_size <= 0 or hidden_size % chunk_size:
        raise ValueError(
            f"chunk_size must be a positive divisor of hidden_size={hidden_size}, got {chunk_size!r}"
        )
    if not 0.0 <= dropconnect < 1.0:
        raise ValueError(f"dropconnect must be in [0, 1), got {dropconnect!r}")
    if master_input not in MASTER_INPUT_VARIANTS:
        raise ValueError(f"master_input must be one of {MASTER_INPUT_VARIANTS}, got {master_input!r}")
    return chunk_size


DROPCONNECT_CONVENTIONS = ("published", "rescaled")


def _check_convention(convention: str) -> str:
    if convention not in DROPCONNECT_CONVENTIONS:
        raise ValueError(f"dropconnect_convention must be one of {DROPCONNECT_CONVENTIONS}, got {convention!r}")
    return convention


def dropconnect_keep_mask(weight: Tensor, p: float) -> Tensor:
    """Boolean mask of ``weight``'s shape, True (kept) with probability 1 - p."""
    return torch.rand_like(weight) >= p


def drop_connect(weight: Tensor, p: float, training: bool, convention: str = "published") -> Tensor:
    """DropConnect on a weight (docs/spec.md §4), in one of the two conventions.

    ``"published"``: training zeroes each entry with probability ``p`` (kept entries as stored);
    evaluation returns ``weight * (1 - p)``. ``"rescaled"``: training zeroes with probability
    ``p`` and scales the kept entries by 1/(1-p); evaluation returns ``weight``.
    """
    if p == 0.0:
        return weight
    if not training:
        return _evaluation_weight(weight, p) if convention == "published" else weight
    keep = dropconnect_keep_mask(weight, p)
    return _KeptWeight.apply(weight, keep, 1.0 if convention == "published" else 1.0 / (1.0 - p))


def _evaluation_weight(weight: Tensor, p: float) -> Tensor:
    """``weight * (1 - p)``; kept on a parameter that needs no gradient here until the
    parameter changes (its ``_version``), so that evaluation scales and packs it once."""
    if not isinstance(weight, nn.Parameter) or (torch.is_grad_enabled() and weight.requires_grad):
        return weight * (1.0 - p)
    key = (weight._version, weight.data_ptr(), weight.dtype, weight.device, p)
    cached = getattr(weight, "_onlstm_eval_weight", None)
    if cached is None or cached[0] != key:
        scaled = weight.detach() * (1.0 - p)
        scaled._onlstm_cacheable = True  # onlstm.kernels.StepMatmul may keep its packed copy
        cached = (key, scaled)
        weight._onlstm_eval_weight = cached
    return cached[1]


class _KeptWeight(torch.autograd.Function):
    """``keep ? weight * scale : 0`` and, backward, the same map of the gradient: one native
    pass each way (:func:`onlstm.kernels.mask_apply`); only the bool mask is kept for backward."""

    @staticmethod
    def forward(ctx, weight: Tensor, keep: Tensor, scale: float) -> Tensor:
        ctx.save_for_backward(keep)
        ctx.scale = scale
        return kernels.mask_apply(weight, keep, scale)

    @staticmethod
    def backward(ctx, grad: Tensor):
        (keep,) = ctx.saved_tensors
        if torch.is_grad_enabled():  # double backward: differentiable ops
            return torch.where(keep, grad * ctx.scale, 0.0), None, None
        return kernels.mask_apply(grad, keep, ctx.scale), None, None


def _linear_default_init(weight: Tensor, fan_in: int) -> None:
    """``nn.Linear``'s default: U(-1/sqrt(fan_in), 1/sqrt(fan_in)) (for weights and biases)."""
    bound = 1.0 / math.sqrt(fan_in) if fan_in > 0 else 0.0
    nn.init.uniform_(weight, -bound, bound)


class ONLSTM(nn.Module):
    r"""Ordered Neurons LSTM, shaped like :class:`torch.nn.LSTM`.

    Args:
        input_size: features of the input ``x``.
        hidden_size: ``n``, units of the hidden state (same for every layer).
        num_layers: stacked layers.
        chunk_size: ``C``, units per level; the master gates have ``m = n / C`` levels.
            Default: 10 when it divides ``hidden_size`` (the paper's), else the largest
            divisor of ``hidden_size`` below 10.
        bias: use ``bias_ih`` / ``bias_hh``.
        batch_first: input and output are (batch, seq, feature).
        dropout: dropout on the outputs of every layer but the last (as in nn.LSTM).
        dropconnect: DropConnect probability on the hidden-to-hidden weights (training only,
            one mask per forward call).
        bidirectional: run a reverse direction too; outputs are concatenated.
        master_input: ``"paper"`` (``1 - cumax``) or ``"symmetric"`` (``revcumsum(softmax)``).
        dropconnect_convention: ``"published"`` (kept weights as stored in training, weight
            times (1-p) at evaluation; the published code's) or ``"rescaled"`` (kept weights
            times 1/(1-p) in training, as stored at evaluation). See the module docstring.

    Shapes (L = num_layers, D = 2 if bidirectional else 1, T = seq, B = batch):
        input: (T, B, input_size), (B, T, input_size) if batch_first, (T, input_size)
        unbatched, or a :class:`~torch.nn.utils.rnn.PackedSequence`.
        hx: optional ``(h_0, c_0)``, each (L*D, B, n) ((L*D, n) unbatched).
        output: (T, B, D*n) (or packed); ``h_n``, ``c_n``: (L*D, B, n).
        distances (``return_distances=True``): :class:`Distances` of (L*D, T, B) tensors
        ((L*D, B, T) if batch_first, (L*D, T) unbatched).

    Equations (docs/spec.md §1), for each layer and direction and each step t, with
    ``n = hidden_size``, ``C = chunk_size``, ``m = n / C`` levels and
    ``cumax(a) = cumsum(softmax(a))``::

        z_t  = W_ih x_t + b_ih + W_hh h_{t-1} + b_hh    # (4n+2m,) = [a_i | a_f | o | c^ | i | f]
        f~_t = cumax(a_f)                               # master forget gate (m,)
        i~_t = 1 - cumax(a_i)                           # master input gate (m,), "paper"
        i~_t = revcumsum(softmax(a_i))                  #   or "symmetric"
        w_t  = f~_t * i~_t                              # each level repeated over its C units
        f^_t = sigmoid(f) * w_t + (f~_t - w_t)
        i^_t = sigmoid(i) * w_t + (i~_t - w_t)
        c_t  = f^_t * c_{t-1} + i^_t * tanh(c^)
        h_t  = sigmoid(o) * tanh(c_t)

    ``W_hh`` is the recurrent weight after DropConnect (one mask per forward call). Layer k > 0
    reads the output of layer k-1 (both directions concatenated, dropout in training); the
    reverse direction reads each sequence backwards. The distances (docs/spec.md §2) are
    ``forget = 1 - mean(f~_t)`` and ``input = mean(i~_t)`` over the m levels.

    The fused recurrence computes the same numbers as looping the one-step function
    :func:`onlstm.cell.cell_step`, here for one layer and direction on a (T, B, d) input::

        from onlstm.cell import cell_step
        from onlstm.layer import drop_connect

        def layer_forward(x, h_0, c_0, weight_ih, weight_hh, bias_ih, bias_hh):
            # x (T, B, d); h_0, c_0 (B, n); the layer's weight_ih_l{k}, weight_hh_l{k}, ...
            weight_hh = drop_connect(weight_hh, dropconnect, training, dropconnect_convention)
            h, c, outputs, d_f, d_i = h_0, c_0, [], [], []
            for t in range(x.shape[0]):
                h, c, f_master, i_master = cell_step(
                    x[t], h, c, weight_ih, weight_hh, bias_ih, bias_hh, chunk_size, master_input
                )
                outputs.append(h)
                d_f.append(1 - f_master.mean(-1))
                d_i.append(i_master.mean(-1))
            return torch.stack(outputs), (h, c), Distances(torch.stack(d_f), torch.stack(d_i))

    Attributes (G = 4n + 2m, rows in the order of ``z_t`` above; D = 2 if bidirectional):
        weight_ih_l{k}: input-to-hidden weight of layer k, (G, input_size) for k = 0 and
            (G, D*n) for k > 0.
        weight_hh_l{k}: hidden-to-hidden weight of layer k, (G, n).
        bias_ih_l{k}, bias_hh_l{k}: biases of layer k, (G,) each; absent when ``bias=False``.
        weight_ih_l{k}_reverse, weight_hh_l{k}_reverse, bias_ih_l{k}_reverse,
            bias_hh_l{k}_reverse: the same for the reverse direction when bidirectional.
        chunk_size: ``C``. num_levels: ``m``. gate_size: ``G``.

    Every weight and bias starts as U(-1/sqrt(fan_in), 1/sqrt(fan_in)) (:meth:`reset_parameters`).
    """

    def __init__(
        self,
        input_size: int,
        hidden_size: int,
        num_layers: int = 1,
        chunk_size: Optional[int] = None,
        bias: bool = True,
        batch_first: bool = False,
        dropout: float = 0.0,
        dropconnect: float = 0.0,
        bidirectional: bool = False,
        master_input: str = "paper",
        dropconnect_convention: str = "published",
        device=None,
        dtype=None,
    ):
        super().__init__()
        self.chunk_size = _check_common(input_size, hidden_size, chunk_size, dropconnect, master_input)
        self.dropconnect_convention = _check_convention(dropconnect_convention)
        if not isinstance(num_layers, int) or num_layers < 1:
            raise ValueError(f"num_layers must be an int >= 1, got {num_layers!r}")
        if not 0.0 <= dropout < 1.0:
            raise ValueError(f"dropout must be in [0, 1), got {dropout!r}")
        self.input_size, self.hidden_size, self.num_layers = input_size, hidden_size, num_layers
        self.bias, self.batch_first, self.bidirectional = bias, batch_first, bidirectional
        self.dropout, self.dropconnect, self.master_input = float(dropout), float(dropconnect), master_input
        self.num_levels = hidden_size // self.chunk_size
        self.gate_size = 4 * hidden_size + 2 * self.num_levels
        factory = dict(device=device, dtype=dtype)
        directions = 2 if bidirectional else 1
        for layer in range(num_layers):
            layer_input = input_size if layer == 0 else hidden_size * directions
            for suffix in self._suffixes(layer):
                setattr(self, f"weight_ih{suffix}", nn.Parameter(torch.empty(self.gate_size, layer_input, **factory)))
                setattr(self, f"weight_hh{suffix}", nn.Parameter(torch.empty(self.gate_size, hidden_size, **factory)))
                if bias:
                    setattr(self, f"bias_ih{suffix}", nn.Parameter(torch.empty(self.gate_size, **factory)))
                    setattr(self, f"bias_hh{suffix}", nn.Parameter(torch.empty(self.gate_size, **factory)))
        self.reset_parameters()

    def _suffixes(self, layer: int):
        return [f"_l{layer}"] + ([f"_l{layer}_reverse"] if self.bidirectional else [])

    def reset_parameters(self) -> None:
        """As the published code's ``nn.Linear`` maps: U(±1/sqrt(fan_in)) for each weight and
        bias, fan_in = the layer's input size for ``*_ih``, ``hidden_size`` for ``*_hh``."""
        for name, weight in self.named_parameters():
            fan_in = self.hidden_size if "_hh" in name else getattr(self, name.replace("bias_ih", "weight_ih")).shape[1]
            _linear_default_init(weight, fan_in)

    def extra_repr(self) -> str:
        s = f"{self.input_size}, {self.hidden_size}, num_layers={self.num_layers}, chunk_size={self.chunk_size}"
        for name, default in [("batch_first", False), ("dropout", 0.0), ("dropconnect", 0.0),
                              ("bidirectional", False), ("bias", True), ("master_input", "paper"),
                              ("dropconnect_convention", "published")]:
            if getattr(self, name) != default:
                s += f", {name}={getattr(self, name)!r}"
        return s

    # ------------------------------------------------------------------------------
    def forward(self, input, hx: Optional[Tuple[Tensor, Tensor]] = None, return_distances: bool = False):
        """Run the stack. Returns ``(output, (h_n, c_n))``, plus :class:`Distances` when
        ``return_distances`` is true."""
        directions = 2 if self.bidirectional else 1
        n = self.hidden_size
        packed = isinstance(input, PackedSequence)
        unbatched = False
        if packed:
            sorted_idx, unsorted_idx = input.sorted_indices, input.unsorted_indices
            x, lengths = pad_packed_sequence(PackedSequence(input.data, input.batch_sizes), batch_first=False)
            batch_sizes = [int(b) for b in input.batch_sizes]
            if x.shape[-1] != self.input_size:
                raise ValueError(f"input feature size must be input_size={self.input_size}, got {x.shape[-1]}")
        else:
            if not isinstance(input, Tensor):
                raise ValueError(f"input must be a Tensor or PackedSequence, got {type(input).__name__}")
            if input.dim() not in (2, 3):
                raise ValueError(f"input must have 3 dimensions (or 2 unbatched), got shape {tuple(input.shape)}")
            if input.shape[-1] != self.input_size:
                raise ValueError(f"input.size(-1) must be input_size={self.input_size}, got {input.shape[-1]}")
            unbatched = input.dim() == 2
            x = input.unsqueeze(1) if unbatched else (input.transpose(0, 1) if self.batch_first else input)
            batch_sizes, lengths, sorted_idx = None, None, None
        T, B = x.shape[0], x.shape[1]
        check_dtype(x, self.weight_ih_l0)
        h0, c0 = self._initial_state(hx, B, x, unbatched, sorted_idx)

        reverse_index = None
        if self.bidirectional:
            reverse_index = _reverse_index(T, B, lengths, x.device)

        h_finals, c_finals, forget_d, input_d = [], [], [], []
        layer_input = x
        for layer in range(self.num_layers):
            outputs = []
            for direction, suffix in enumerate(self._suffixes(layer)):
                idx = layer * directions + direction
                w_ih = getattr(self, f"weight_ih{suffix}")
                w_hh = drop_connect(getattr(self, f"weight_hh{suffix}"), self.dropconnect, self.training,
                                    self.dropconnect_convention)
                bias = getattr(self, f"bias_ih{suffix}") + getattr(self, f"bias_hh{suffix}") if self.bias else None
                seq = layer_input if direction == 0 else _gather_time(layer_input, reverse_index)
                x_proj = gemm.linear(seq, w_ih, bias)  # hoisted: one product for all steps (onlstm.gemm)
                h_all, h_n, c_n, mf, mi = recurrence(
                    x_proj, w_hh, h0[idx], c0[idx], batch_sizes, self.chunk_size, self.master_input
                )
                if direction == 1:
                    h_all, mf, mi = (_gather_time(t, reverse_index) for t in (h_all, mf, mi))
                outputs.append(h_all)
                h_finals.append(h_n)
                c_finals.append(c_n)
                if return_distances:
                    forget_d.append(1.0 - mf.mean(-1))
                    input_d.append(mi.mean(-1))
            layer_input = outputs[0] if directions == 1 else torch.cat(outputs, -1)
            if self.dropout > 0 and self.training and layer < self.num_layers - 1:
                layer_input = F.dropout(layer_input, self.dropout, True)

        output = layer_input
        h_n, c_n = torch.stack(h_finals), torch.stack(c_finals)
        distances = None
        if return_distances:
            forget, inp = torch.stack(forget_d), torch.stack(input_d)  # (L*D, T, B)
            if packed:
                valid = torch.arange(T, device=x.device).unsqueeze(1) < lengths.to(x.device).unsqueeze(0)
                forget, inp = forget * valid, inp * valid
        if packed:
            data = torch.cat([output[t, :b] for t, b in enumerate(batch_sizes)]) if T else output.reshape(0, output.shape[-1])
            output = PackedSequence(data, input.batch_sizes, sorted_idx, unsorted_idx)
            if unsorted_idx is not None:
                h_n, c_n = h_n.index_select(1, unsorted_idx), c_n.index_select(1, unsorted_idx)
                if return_distances:
                    forget, inp = forget.index_select(2, unsorted_idx), inp.index_select(2, unsorted_idx)
            if return_distances and self.batch_first:
                forget, inp = forget.transpose(1, 2), inp.transpose(1, 2)
        elif unbatched:
            output, h_n, c_n = output.squeeze(1), h_n.squeeze(1), c_n.squeeze(1)
            if return_distances:
                forget, inp = forget.squeeze(2), inp.squeeze(2)
        elif self.batch_first:
            output = output.transpose(0, 1)
            if return_distances:
                forget, inp = forget.transpose(1, 2), inp.transpose(1, 2)
        if return_distances:
            distances = Distances(forget, inp)
            return output, (h_n, c_n), distances
        return output, (h_n, c_n)

    def _initial_state(self, hx, B, x, unbatched, sorted_idx):
        directions = 2 if self.bidirectional else 1
        shape = (self.num_layers * directions, B, self.hidden_size)
        if hx is None:
            zeros = x.new_zeros(shape)
            return zeros, zeros
        if not (isinstance(hx, (tuple, list)) and len(hx) == 2):
            raise ValueError("hx must be a tuple (h_0, c_0)")
        h0, c0 = hx
        expected = shape[:1] + shape[2:] if unbatched else shape
        for name, t in (("h_0", h0), ("c_0", c0)):
            if not isinstance(t, Tensor) or tuple(t.shape) != expected:
                got = tuple(t.shape) if isinstance(t, Tensor) else type(t).__name__
                raise ValueError(f"hx {name} must have shape {expected}, got {got}")
        if unbatched:
            h0, c0 = h0.unsqueeze(1), c0.unsqueeze(1)
        if sorted_idx is not None:
            h0, c0 = h0.index_select(1, sorted_idx), c0.index_select(1, sorted_idx)
        return h0, c0


def _reverse_index(T: int, B: int, lengths: Optional[Tensor], device) -> Tensor:
    """(T, B) time index that reverses each sequence within its own length."""
    t = torch.arange(T, device=device).unsqueeze(1).expand(T, B)
    if lengths is None:
        return (T - 1 - t).contiguous()
    L = lengths.to(device).unsqueeze(0)
    return torch.where(t < L, L - 1 - t, t)


def _gather_time(x: Tensor, index: Tensor) -> Tensor:
    """x (T, B, F) reordered along time per batch row by ``index`` (T, B)."""
    return torch.gather(x, 0, index.unsqueeze(-1).expand_as(x))


class ONLSTMCell(nn.Module):
    r"""One ON-LSTM step, shaped like :class:`torch.nn.LSTMCell`, with the same parameters
    (``weight_ih``, ``weight_hh``, ``bias_ih``, ``bias_hh``) and equations as :class:`ONLSTM`.

    ``forward(input, hx=None, return_distances=False)``: ``input`` (B, input_size) or
    (input_size,); ``hx = (h, c)`` each (B, n). Returns ``(h', c')``, plus
    ``(forget distance, input distance)`` each (B,) when ``return_distances``.
    DropConnect draws a new mask at every call; to keep one mask over a sequence, apply a
    cell with ``dropconnect=0`` to a masked copy of the weights, or use :class:`ONLSTM`.

    ``forward`` is one call of :func:`onlstm.cell.cell_step` (the equations of :class:`ONLSTM`,
    docs/spec.md §1) on the weights after DropConnect.

    Attributes (n = hidden_size, m = n / chunk_size levels, G = 4n + 2m):
        weight_ih: input-to-hidden weight, (G, input_size).
        weight_hh: hidden-to-hidden weight, (G, n).
        bias_ih, bias_hh: biases, (G,) each; None when ``bias=False``.
        chunk_size: ``C``. num_levels: ``m``. gate_size: ``G``.
    """

    def __init__(self, input_size: int, hidden_size: int, chunk_size: Optional[int] = None, bias: bool = True,
                 dropconnect: float = 0.0, master_input: str = "paper", dropconnect_convention: str = "published",
                 device=None, dtype=None):
        super().__init__()
        self.chunk_size = _check_common(input_size, hidden_size, chunk_size, dropconnect, master_input)
        self.dropconnect_convention = _check_convention(dropconnect_convention)
        self.input_size, self.hidden_size, self.bias = input_size, hidden_size, bias
        self.dropconnect, self.master_input = float(dropconnect), master_input
        self.num_levels = hidden_size // self.chunk_size
        self.gate_size = 4 * hidden_size + 2 * self.num_levels
        factory = dict(device=device, dtype=dtype)
        self.weight_ih = nn.Parameter(torch.empty(self.gate_size, input_size, **factory))
        self.weight_hh = nn.Parameter(torch.empty(self.gate_size, hidden_size, **factory))
        if bias:
            self.bias_ih = nn.Parameter(torch.empty(self.gate_size, **factory))
            self.bias_hh = nn.Parameter(torch.empty(self.gate_size, **factory))
        else:
            self.register_parameter("bias_ih", None)
            self.register_parameter("bias_hh", None)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """As :meth:`ONLSTM.reset_parameters`: U(±1/sqrt(fan_in)), fan_in = input_size for ``*_ih``."""
        for name, weight in self.named_parameters():
            _linear_default_init(weight, self.hidden_size if "_hh" in name else self.input_size)

    def forward(self, input: Tensor, hx: Optional[Tuple[Tensor, Tensor]] = None, return_distances: bool = False):
        if not isinstance(input, Tensor) or input.dim() not in (1, 2):
            shape = tuple(input.shape) if isinstance(input, Tensor) else type(input).__name__
            raise ValueError(f"input must have 2 dimensions (or 1 unbatched), got {shape}")
        if input.shape[-1] != self.input_size:
            raise ValueError(f"input.size(-1) must be input_size={self.input_size}, got {input.shape[-1]}")
        unbatched = input.dim() == 1
        x = input.unsqueeze(0) if unbatched else input
        B = x.shape[0]
        if hx is None:
            h = c = x.new_zeros(B, self.hidden_size)
        else:
            h, c = hx
            expected = (self.hidden_size,) if unbatched else (B, self.hidden_size)
            for name, t in (("h", h), ("c", c)):
                if tuple(t.shape) != expected:
                    raise ValueError(f"hx {name} must have shape {expected}, got {tuple(t.shape)}")
            if unbatched:
                h, c = h.unsqueeze(0), c.unsqueeze(0)
        w_hh = drop_connect(self.weight_hh, self.dropconnect, self.training, self.dropconnect_convention)
        h, c, mf, mi = cell_step(x, h, c, self.weight_ih, w_hh, self.bias_ih, self.bias_hh,
                                 self.chunk_size, self.master_input)
        if unbatched:
            h, c, mf, mi = h[0], c[0], mf[0], mi[0]
        if return_distances:
            return (h, c), (1.0 - mf.mean(-1), mi.mean(-1))
        return h, c
