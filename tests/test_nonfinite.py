"""NaN and infinity go through the layer as through torch.nn.LSTM: a NaN input poisons its
own row from its step on and nothing else, and the fused native path gives NaN, inf and
finite values in exactly the positions of the PyTorch fallback, forward and backward."""

import pytest
import torch

from onlstm import ONLSTM


def _run(model, x, h0=None, c0=None):
    x = x.clone().requires_grad_()
    hx = None if h0 is None else (h0, c0)
    out, (h_n, c_n), dist = model(x, hx, return_distances=True)
    (out.sum() + c_n.sum() + dist.forget.sum()).backward()
    return [out, h_n, c_n, dist.forget, dist.input, x.grad] + [p.grad for p in model.parameters()]


def _both_paths(monkeypatch, model, *inputs):
    fused = _run(model, *inputs)
    model.zero_grad()
    monkeypatch.setenv("ONLSTM_NO_KERNEL", "1")
    fallback = _run(model, *inputs)
    monkeypatch.delenv("ONLSTM_NO_KERNEL")
    return fused, fallback


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_nan_input_poisons_only_its_row_from_its_step(impl, dtype):
    torch.manual_seed(0)
    model = ONLSTM(3, 8, chunk_size=2).to(dtype)
    x = torch.randn(6, 3, 3, dtype=dtype)
    x[2, 1, 0] = float("nan")
    with torch.no_grad():
        out, (h_n, c_n), dist = model(x, return_distances=True)
    expected = torch.zeros(6, 3, dtype=torch.bool)
    expected[2:, 1] = True
    assert torch.equal(out.isnan().all(-1), expected) and torch.equal(out.isnan().any(-1), expected)
    assert torch.equal(dist.forget[0].isnan(), expected) and torch.equal(dist.input[0].isnan(), expected)
    assert h_n[0, 1].isnan().all() and c_n[0, 1].isnan().all()
    assert torch.isfinite(h_n[0, [0, 2]]).all() and torch.isfinite(c_n[0, [0, 2]]).all()
    lstm = torch.nn.LSTM(3, 8).to(dtype)  # the same pattern as nn.LSTM
    lstm_out, _ = lstm(x)
    assert torch.equal(lstm_out.isnan().any(-1), expected)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("where", ["nan-input", "inf-input", "-inf-input", "inf-cell", "huge-input"])
def test_fused_path_matches_fallback_on_non_finite_values(monkeypatch, dtype, where):
    torch.manual_seed(1)
    model = ONLSTM(4, 12, num_layers=2, chunk_size=3, bidirectional=True).to(dtype)
    x = torch.randn(5, 3, 4, dtype=dtype)
    h0 = torch.zeros(4, 3, 12, dtype=dtype)
    c0 = torch.randn(4, 3, 12, dtype=dtype)
    if where == "inf-cell":
        c0[0, 1, ::2] = float("inf")  # inf in the initial cell state of one row, half its units
        c0[0, 2, 5] = -float("inf")
    elif where == "huge-input":
        x[1, 0] = 1e30  # finite but saturating every gate
    else:
        x[3, 0, 1] = {"nan-input": float("nan"), "inf-input": float("inf"), "-inf-input": -float("inf")}[where]
    fused, fallback = _both_paths(monkeypatch, model, x, h0, c0)
    assert any((~torch.isfinite(t)).any() for t in fused[:5]) or where == "huge-input"
    tol = dict(rtol=1e-4, atol=1e-5) if dtype == torch.float32 else dict(rtol=1e-9, atol=1e-10)
    for ours, theirs in zip(fused, fallback):
        # same NaN positions, same infinities, finite values close
        torch.testing.assert_close(ours, theirs, equal_nan=True, **tol)
