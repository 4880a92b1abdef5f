"""The cell's maths: cumax properties, the one-hot hard limit of docs/spec.md §1, gradcheck."""

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from onlstm import ONLSTM, ONLSTMCell
from onlstm.cell import cumax, master_forget_gate, master_input_gate
from onlstm.recurrence import recurrence
from reference import ref_step

BIG = 1e4  # logits this far apart give exactly one-hot softmaxes in float64


@settings(max_examples=50, deadline=None)
@given(st.lists(st.floats(-30, 30), min_size=1, max_size=20), st.sampled_from(["paper", "symmetric"]))
def test_master_gate_properties(logits, variant):
    a = torch.tensor(logits, dtype=torch.double)
    mf = master_forget_gate(a)
    mi = master_input_gate(a, variant)
    assert (mf[1:] - mf[:-1] >= -1e-15).all()  # f~ non-decreasing
    assert abs(mf[-1].item() - 1.0) < 1e-12  # ends at 1
    assert (mi[1:] - mi[:-1] <= 1e-15).all()  # i~ non-increasing
    assert ((mf >= -1e-15) & (mf <= 1 + 1e-12)).all() and ((mi >= -1e-12) & (mi <= 1 + 1e-15)).all()
    if variant == "symmetric":
        assert mi[0].item() == 1.0  # exactly 1 at the lowest level
    else:
        assert abs(mi[-1].item()) < 1e-12  # exactly 0 at the top (up to rounding)


def test_distances_in_unit_interval():
    torch.manual_seed(0)
    model = ONLSTM(5, 20, num_layers=2, chunk_size=4)
    with torch.no_grad():
        for p in model.parameters():
            p.mul_(20)  # saturate gates to reach the extremes
    _, _, dist = model(torch.randn(30, 4, 5), return_distances=True)
    for d in dist:
        assert d.min() >= 0 and d.max() <= 1 + 1e-6


def _one_step_with_logits(module_kind, variant, n, chunk, a_i, a_f, rest, c_prev):
    """One step where the pre-activations equal given logits (zero weights, bias = logits)."""
    z = torch.cat([a_i, a_f, rest])
    if module_kind == "layer":
        model = ONLSTM(1, n, chunk_size=chunk, master_input=variant).double()
        prefix = "_l0"
    else:
        model = ONLSTMCell(1, n, chunk_size=chunk, master_input=variant).double()
        prefix = ""
    with torch.no_grad():
        getattr(model, f"weight_ih{prefix}").zero_()
        getattr(model, f"weight_hh{prefix}").zero_()
        getattr(model, f"bias_ih{prefix}").copy_(z)
        getattr(model, f"bias_hh{prefix}").zero_()
    h_prev = torch.zeros(1, n, dtype=torch.double)
    x = torch.zeros(1, 1, dtype=torch.double)
    if module_kind == "layer":
        _, (_, c) = model(x.unsqueeze(0), (h_prev.unsqueeze(0), c_prev.view(1, 1, n)))
        return c.view(n)
    _, c = model(x, (h_prev, c_prev.view(1, n)))
    return c.view(n)


@pytest.mark.parametrize("module_kind", ["layer", "cell"])
@pytest.mark.parametrize("variant", ["paper", "symmetric"])
def test_hard_limit_is_the_piecewise_rule(module_kind, variant, impl):
    torch.manual_seed(0)
    m, chunk = 5, 2
    n = m * chunk
    rest = torch.randn(4 * n, dtype=torch.double)
    o, c_hat, i, f = torch.sigmoid(rest[:n]), torch.tanh(rest[n:2 * n]), torch.sigmoid(rest[2 * n:3 * n]), torch.sigmoid(rest[3 * n:])
    c_prev = torch.randn(n, dtype=torch.double)
    level = torch.arange(n) // chunk
    for k_f in range(m):
        for k_i in range(m):
            a_f = torch.full((m,), -BIG, dtype=torch.double)
            a_f[k_f] = BIG
            a_i = torch.full((m,), -BIG, dtype=torch.double)
            a_i[k_i] = BIG
            d_f = k_f  # history survives in levels >= d_f
            d_i = k_i - 1 if variant == "paper" else k_i  # input writes levels <= d_i
            c = _one_step_with_logits(module_kind, variant, n, chunk, a_i, a_f, rest, c_prev)
            expected = torch.empty(n, dtype=torch.double)
            for u in range(n):
                lv = level[u].item()
                if d_f <= d_i:
                    if lv < d_f:
                        expected[u] = c_hat[u]  # overwritten by the new input
                    elif lv <= d_i:
                        expected[u] = f[u] * c_prev[u] + i[u] * c_hat[u]  # ordinary LSTM
                    else:
                        expected[u] = c_prev[u]  # copied unchanged
                else:
                    if lv <= d_i:
                        expected[u] = c_hat[u]
                    elif lv >= d_f:
                        expected[u] = c_prev[u]
                    else:
                        expected[u] = 0.0
            assert torch.allclose(c, expected, atol=1e-12, rtol=0), (k_f, k_i, c, expected)


@pytest.mark.parametrize("variant", ["paper", "symmetric"])
@pytest.mark.parametrize("batch_sizes", [None, [3, 3, 2, 1]])
def test_gradcheck_recurrence(variant, batch_sizes, impl):
    torch.manual_seed(0)
    T, B, n, chunk = 4, 3, 4, 2
    G = 4 * n + 2 * (n // chunk)
    x_proj = torch.randn(T, B, G, dtype=torch.double, requires_grad=True)
    w_hh = (0.5 * torch.randn(G, n, dtype=torch.double)).requires_grad_()
    h0 = torch.randn(B, n, dtype=torch.double, requires_grad=True)
    c0 = torch.randn(B, n, dtype=torch.double, requires_grad=True)

    def fn(x_proj, w_hh, h0, c0):
        return recurrence(x_proj, w_hh, h0, c0, batch_sizes, chunk, variant)

    assert torch.autograd.gradcheck(fn, (x_proj, w_hh, h0, c0))


def test_gradcheck_tiny_layer():
    torch.manual_seed(0)
    model = ONLSTM(2, 4, num_layers=2, chunk_size=2, bidirectional=True).double()
    x = torch.randn(3, 2, 2, dtype=torch.double, requires_grad=True)

    def fn(x, *params):
        named = dict(zip([n for n, _ in model.named_parameters()], params))
        out, (h, c), d = torch.func.functional_call(model, named, (x,), {"return_distances": True})
        return out, h, c, d.forget, d.input

    assert torch.autograd.gradcheck(fn, (x, *[p.detach().requires_grad_() for p in model.parameters()]))


@pytest.mark.parametrize("variant", ["paper", "symmetric"])
def test_cell_module_equals_reference_and_layer(variant):
    torch.manual_seed(0)
    cell = ONLSTMCell(3, 6, chunk_size=3, master_input=variant).double()
    layer = ONLSTM(3, 6, chunk_size=3, master_input=variant).double()
    layer.load_state_dict({k + "_l0": v for k, v in cell.state_dict().items()})
    x = torch.randn(4, 2, 3, dtype=torch.double)
    h = c = torch.zeros(2, 6, dtype=torch.double)
    hr, cr = h, c
    outs, dfs = [], []
    for t in range(4):
        (h, c), (df, di) = cell(x[t], (h, c), return_distances=True)
        hr, cr, mf, mi = ref_step(x[t], hr, cr, cell.weight_ih, cell.weight_hh, cell.bias_ih, cell.bias_hh, 3, variant)
        assert torch.allclose(h, hr, atol=1e-12) and torch.allclose(c, cr, atol=1e-12)
        assert torch.allclose(df, 1 - mf.mean(-1), atol=1e-12) and torch.allclose(di, mi.mean(-1), atol=1e-12)
        outs.append(h)
        dfs.append(df)
    out, (h_n, c_n), dist = layer(x, return_distances=True)
    assert torch.allclose(out, torch.stack(outs), atol=1e-12)
    assert torch.allclose(dist.forget[0], torch.stack(dfs), atol=1e-12)
    # unbatched
    h1, c1 = cell(x[0, 0])
    assert h1.shape == (6,)


def test_cell_bad_arguments():
    cell = ONLSTMCell(3, 6, chunk_size=3)
    with pytest.raises(ValueError, match="input_size=3"):
        cell(torch.randn(2, 4))
    with pytest.raises(ValueError, match="2 dimensions"):
        cell(torch.randn(2, 2, 3))
    with pytest.raises(ValueError, match=r"hx h must have shape \(2, 6\)"):
        cell(torch.randn(2, 3), (torch.zeros(3, 6), torch.zeros(2, 6)))
    with pytest.raises(ValueError, match="chunk_size"):
        ONLSTMCell(3, 6, chunk_size=4)


def test_cumax_is_cumsum_of_softmax():
    a = torch.randn(3, 7, dtype=torch.double)
    assert torch.allclose(cumax(a), torch.cumsum(torch.softmax(a, -1), -1))
