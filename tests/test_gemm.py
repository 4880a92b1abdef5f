"""onlstm.gemm: the rule that picks the backend of the big products, the oneDNN products
against the float64 reference (float32 tolerance) and the default backend, determinism, the
global RNG left alone, and the fallback when oneDNN is missing or broken."""

import platform

import pytest
import torch
import torch.nn.functional as F
from torch.nn.utils.rnn import pack_padded_sequence

from onlstm import ONLSTM, gemm
from onlstm.lm import LanguageModel, LMConfig

has_onednn = pytest.mark.skipif(not gemm.onednn_available(), reason="this torch has no working oneDNN on x86")


@pytest.fixture
def onednn_row(monkeypatch):
    """Every product in this CPU vendor's row of the table, so that the oneDNN path is
    exercised on any x86 machine (Intel's row is empty: MKL is faster there)."""
    monkeypatch.setattr(gemm, "_ONEDNN_PRODUCTS", {gemm.cpu_vendor(): frozenset(gemm.PRODUCTS),
                                                   "AuthenticAMD": frozenset(gemm.PRODUCTS)})


@pytest.fixture
def fresh_probe(monkeypatch):
    """Forget the cached probe result for the test, restore it afterwards."""
    monkeypatch.setattr(gemm, "_probe_result", None)


def _rule_says_onednn():
    return (platform.machine().lower() in gemm._X86 and torch.backends.mkldnn.is_available()
            and torch.backends.mkldnn.enabled)


def test_rule_by_dtype_device_and_switches(monkeypatch):
    cpu = torch.device("cpu")
    expected = "onednn" if _rule_says_onednn() and gemm._probe() else "default"
    table = gemm._ONEDNN_PRODUCTS.get(gemm.cpu_vendor(), gemm._ONEDNN_PRODUCTS["AuthenticAMD"])
    for product in gemm.PRODUCTS:
        assert gemm.backend(torch.float32, cpu, product) == (expected if product in table else "default")
    with pytest.raises(ValueError, match="product"):
        gemm.backend(torch.float32, cpu, "backward")
    monkeypatch.setattr(gemm, "_ONEDNN_PRODUCTS", {"AuthenticAMD": frozenset(gemm.PRODUCTS)})
    monkeypatch.setattr(gemm, "cpu_vendor", lambda: "SomeOtherVendor")  # unknown x86 vendors: as AMD
    assert gemm.backend(torch.float32, cpu) == expected
    assert gemm.backend(torch.float32, "cpu") == expected
    assert gemm.backend(torch.float64, cpu) == "default"  # oneDNN has no float64 matmul
    assert gemm.backend(torch.bfloat16, cpu) == "default"
    assert gemm.backend(torch.float32, torch.device("meta")) == "default"
    assert gemm.backend(torch.float32, torch.device("cuda")) == "default"
    monkeypatch.setenv("ONLSTM_GEMM", "default")
    assert gemm.backend(torch.float32, cpu) == "default"
    monkeypatch.setenv("ONLSTM_GEMM", "onednn")  # cannot force what the rule refuses
    assert gemm.backend(torch.float64, cpu) == "default"
    monkeypatch.delenv("ONLSTM_GEMM")
    monkeypatch.setenv("ONLSTM_NO_KERNEL", "1")
    assert gemm.backend(torch.float32, cpu) == "default"


def test_choice_is_the_same_every_time_and_leaves_the_rng_alone(fresh_probe):
    torch.manual_seed(5)
    state = torch.random.get_rng_state()
    first = gemm.backend(torch.float32, "cpu")  # runs the probe
    assert torch.equal(torch.random.get_rng_state(), state)
    assert all(gemm.backend(torch.float32, "cpu") == first for _ in range(3))
    x, w = torch.ones(3, 4), torch.ones(5, 4, requires_grad=True)
    gemm.linear(x, w).sum().backward()
    assert torch.equal(torch.random.get_rng_state(), state)


@pytest.mark.parametrize("how", ["no mkldnn build", "mkldnn disabled", "no op", "op fails", "wrong answer", "not x86"])
def test_fallback_when_onednn_is_unavailable(how, monkeypatch, fresh_probe):
    if how == "no mkldnn build":
        monkeypatch.setattr(torch.backends.mkldnn, "is_available", lambda: False)
    elif how == "mkldnn disabled":
        monkeypatch.setattr(torch.backends.mkldnn, "enabled", False)
    elif how == "no op":
        monkeypatch.setattr(gemm, "_onednn_op", lambda: None)
    elif how == "op fails":
        def broken(*args):
            raise RuntimeError("mkldnn: could not create a primitive")
        monkeypatch.setattr(gemm, "_onednn_op", lambda: broken)
    elif how == "wrong answer":
        monkeypatch.setattr(gemm, "_onednn_op", lambda: lambda x, w, b, *rest: torch.zeros(x.shape[0], w.shape[0]))
    else:
        monkeypatch.setattr(gemm.platform, "machine", lambda: "aarch64")

    def no_onednn(*args, **kwargs):
        raise AssertionError("the oneDNN op was called")

    monkeypatch.setattr(gemm, "_lp", no_onednn)
    assert gemm.backend(torch.float32, "cpu") == "default"
    torch.manual_seed(0)
    x = torch.randn(4, 3, 6, requires_grad=True)
    w = torch.randn(5, 6, requires_grad=True)
    b = torch.randn(5, requires_grad=True)
    y = gemm.linear(x, w, b)
    assert torch.equal(y, F.linear(x, w, b))
    y.sum().backward()
    assert torch.equal(gemm.mm_t(x.detach().view(12, 6), x.detach().view(12, 6)),
                       x.detach().view(12, 6).t().mm(x.detach().view(12, 6)))
    model = ONLSTM(6, 8, chunk_size=4, dropconnect=0.3)
    out, _ = model(x)
    out.sum().backward()  # the whole layer runs without the oneDNN products


def _reference_linear(x, w, b, dy):
    x64, w64, b64 = (t.detach().double().requires_grad_() for t in (x, w, b))
    y = F.linear(x64, w64, b64)
    y.backward(dy.double())
    return y.detach(), x64.grad, w64.grad, b64.grad


@has_onednn
@pytest.mark.parametrize("shape", [(37, 50), (7, 6, 50), (0, 50)])
@pytest.mark.parametrize("layout", ["contiguous", "transposed input"])
def test_onednn_linear_against_float64_and_default(shape, layout, monkeypatch, onednn_row):
    assert gemm.backend(torch.float32, "cpu") == "onednn"
    g = torch.Generator().manual_seed(1)
    x = torch.randn(*shape, generator=g)
    if layout == "transposed input" and len(shape) == 3:
        x = x.transpose(0, 1).contiguous().transpose(0, 1)  # same values, not contiguous
    x.requires_grad_()
    w = torch.randn(61, 50, generator=g).requires_grad_()
    b = torch.randn(61, generator=g).requires_grad_()
    dy = torch.randn(*shape[:-1], 61, generator=g)
    results = {}
    for which in ("onednn", "default"):
        monkeypatch.setenv("ONLSTM_GEMM", which)
        for t in (x, w, b):
            t.grad = None
        y = gemm.linear(x, w, b)
        y.backward(dy)
        results[which] = (y.detach(), x.grad.clone(), w.grad.clone(), b.grad.clone())
    reference = _reference_linear(x, w, b, dy)
    for fast, default, ref in zip(results["onednn"], results["default"], reference):
        assert fast.dtype == torch.float32 and fast.shape == ref.shape
        if ref.numel() == 0:
            continue
        scale = 1.0 + float(ref.abs().max())
        assert (fast.double() - ref).abs().max() <= 1e-5 * scale
        assert torch.allclose(fast, default, rtol=1e-5, atol=1e-5 * scale)


@has_onednn
def test_mm_t_against_float64(onednn_row):
    g = torch.Generator().manual_seed(2)
    a, b = torch.randn(300, 83, generator=g), torch.randn(300, 41, generator=g)
    ref = a.double().t().mm(b.double())
    assert (gemm.mm_t(a, b).double() - ref).abs().max() < 1e-4  # b narrower: (b^T a)^T
    assert (gemm.mm_t(b, a).double() - ref.t()).abs().max() < 1e-4  # a narrower: a^T b directly
    assert gemm.mm_t(a, b).shape == (83, 41) and gemm.mm_t(b, a).shape == (41, 83)
    assert gemm.mm_t(a[:0], b[:0]).shape == (83, 41)


def _layer_grads(model, x, h0, c0, lengths):
    x = x.detach().clone().requires_grad_()
    inp = x if lengths is None else pack_padded_sequence(x, lengths, enforce_sorted=False)
    out, (h, c), d = model(inp, (h0, c0), return_distances=True)
    out = out if lengths is None else out.data
    (out.pow(2).sum() + h.sum() + c.sum() + d.forget.sum()).backward()
    return [out.detach(), x.grad] + [p.grad.clone() for p in model.parameters()]


@has_onednn
@pytest.mark.parametrize("lengths", [None, [5, 7, 2, 5]])
def test_layer_on_onednn_against_the_float64_layer(lengths, onednn_row):
    torch.manual_seed(0)
    model = ONLSTM(12, 20, num_layers=2, chunk_size=4, bidirectional=True, dropout=0.0)
    x = torch.randn(7, 4, 12)
    h0, c0 = torch.randn(4, 4, 20) * 0.5, torch.randn(4, 4, 20) * 0.5
    fast = _layer_grads(model, x, h0, c0, lengths)
    ref_model = ONLSTM(12, 20, num_layers=2, chunk_size=4, bidirectional=True).double()
    ref_model.load_state_dict(model.state_dict())
    ref = _layer_grads(ref_model, x.double(), h0.double(), c0.double(), lengths)
    for a, r in zip(fast, ref):
        assert a.dtype == torch.float32
        assert (a.double() - r).abs().max() <= 2e-5 * (1.0 + float(r.abs().max()))


def _lm_step(seed, backend, monkeypatch):
    monkeypatch.setenv("ONLSTM_GEMM", backend)
    torch.manual_seed(seed)
    model = LanguageModel(LMConfig(vocab_size=50, emb_size=16, hidden_sizes=[24, 16], chunk_size=4))
    opt = torch.optim.SGD(model.parameters(), lr=1.0)
    tokens = torch.randint(0, 50, (9, 3))
    for _ in range(2):
        opt.zero_grad()
        out = model(tokens)
        loss = F.cross_entropy(out.logits.view(-1, 50), tokens.roll(-1, 0).view(-1))
        loss.backward()
        opt.step()
    return [p.detach().clone() for p in model.parameters()]


@pytest.mark.parametrize("backend", ["onednn", "default"])
def test_same_seed_same_numbers_on_each_backend(backend, monkeypatch, onednn_row):
    a, b = _lm_step(3, backend, monkeypatch), _lm_step(3, backend, monkeypatch)
    assert all(torch.equal(x, y) for x, y in zip(a, b))


@has_onednn
def test_language_model_decoder_and_layers_take_the_onednn_products(monkeypatch, onednn_row):
    calls = []
    real = gemm._lp

    def counting(x, w, b):
        calls.append((tuple(x.shape), tuple(w.shape)))
        return real(x, w, b)

    monkeypatch.setattr(gemm, "_lp", counting)
    params = _lm_step(0, "onednn", monkeypatch)
    assert ((27, 16), (50, 16)) in calls  # the tied decoder, forward (T*B = 27 rows)
    assert ((16, 27), (50, 27)) in calls  # its weight gradient (X^T dY)^T: the narrower X copied
    assert ((27, 16), (24 * 4 + 12, 16)) in calls  # the first layer's input projection
    default = _lm_step(0, "default", monkeypatch)
    for p, q in zip(params, default):
        assert torch.allclose(p, q, rtol=1e-4, atol=1e-5)


@has_onednn
def test_nan_and_inf_go_through_the_onednn_products_as_through_the_default(monkeypatch, onednn_row):
    g = torch.Generator().manual_seed(4)
    x = torch.randn(6, 5, generator=g)
    x[1, 2], x[3, 0], x[4, 4] = float("nan"), float("inf"), -float("inf")
    w = torch.randn(7, 5, generator=g)
    w[2, 1] = float("nan")
    b = torch.randn(7, generator=g)
    dy = torch.randn(6, 7, generator=g)
    out = {}
    for which in ("onednn", "default"):
        monkeypatch.setenv("ONLSTM_GEMM", which)
        xs, ws, bs = (t.clone().requires_grad_() for t in (x, w, b))
        y = gemm.linear(xs, ws, bs)
        y.backward(dy)
        out[which] = [y.detach(), xs.grad, ws.grad, bs.grad]
    for fast, default in zip(out["onednn"], out["default"]):
        for check in (torch.isnan, torch.isposinf, torch.isneginf):
            assert torch.equal(check(fast), check(default))
        finite = torch.isfinite(default)
        assert torch.allclose(fast[finite], default[finite], rtol=1e-5, atol=1e-5)
    assert out["onednn"][0].isnan().any()


@has_onednn
@pytest.mark.parametrize("products", [("forward",), ("input_grad", "weight_grad"), ()])
def test_products_split_between_backends_by_the_vendor_table(products, monkeypatch):
    monkeypatch.setattr(gemm, "_ONEDNN_PRODUCTS", {gemm.cpu_vendor(): frozenset(products),
                                                   "AuthenticAMD": frozenset(products)})
    calls = []
    real = gemm._lp
    monkeypatch.setattr(gemm, "_lp", lambda x, w, b: calls.append((tuple(x.shape), tuple(w.shape))) or real(x, w, b))
    g = torch.Generator().manual_seed(6)
    x = torch.randn(9, 13, generator=g, requires_grad=True)
    w = torch.randn(17, 13, generator=g, requires_grad=True)
    b = torch.randn(17, generator=g, requires_grad=True)
    y = gemm.linear(x, w, b)
    y.backward(torch.ones_like(y))
    expected = {"forward": ((9, 13), (17, 13)), "input_grad": ((9, 17), (13, 17)), "weight_grad": ((13, 9), (17, 9))}  # (X^T dY)^T
    assert sorted(calls) == sorted(expected[p] for p in products)
    x64, w64, b64 = (t.detach().double().requires_grad_() for t in (x, w, b))
    F.linear(x64, w64, b64).sum().backward()
    for got, ref in ((y, F.linear(x64, w64, b64)), (x.grad, x64.grad), (w.grad, w64.grad), (b.grad, b64.grad)):
        assert (got.double() - ref).abs().max() < 1e-4
