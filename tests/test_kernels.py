"""The native fused step: it builds where a C compiler exists, its library is the one built
from this source, and float32 agrees with the PyTorch fallback (float64 agreement with the
reference is in test_layer / test_cell; the argument checks are in test_kernel_args)."""

import shutil

import pytest
import torch

from onlstm import ONLSTM, kernels

needs_compiler = pytest.mark.skipif(shutil.which("cc") is None and shutil.which("gcc") is None,
                                    reason="no C compiler")


@needs_compiler
def test_kernel_builds_and_loads():
    assert kernels.load() is not None
    assert kernels.available(torch.float32, torch.device("cpu"))
    assert kernels.available(torch.float64, torch.device("cpu"))
    assert not kernels.available(torch.float16, torch.device("cpu"))
    assert not kernels.available(torch.float32, torch.device("meta"))


def test_cache_key_follows_source_flags_and_compiler(monkeypatch):
    key = kernels.build_key(b"int x;", "/usr/bin/cc")
    assert kernels.build_key(b"int x;", "/usr/bin/cc") == key
    assert kernels.build_key(b"int y;", "/usr/bin/cc") != key
    assert kernels.build_key(b"int x;", "/usr/bin/clang") != key
    monkeypatch.setattr(kernels, "COMPILE_FLAGS", kernels.COMPILE_FLAGS + ("-O1",))
    assert kernels.build_key(b"int x;", "/usr/bin/cc") != key


@needs_compiler
def test_cached_library_not_built_from_this_source_is_rebuilt(monkeypatch, tmp_path):
    monkeypatch.setenv("ONLSTM_CACHE", str(tmp_path))
    target, key = kernels._library_path()  # builds into the empty cache
    assert target.parent == tmp_path and key in target.name
    target.write_bytes(b"not the library built from _kernels.c")  # a stale or foreign file
    rebuilt, _ = kernels._library_path()
    assert rebuilt == target and f"onlstm-build-key:{key}".encode() in target.read_bytes()
    lib = kernels._loaded_library(target, key)  # the build key and the structures' layout check out
    assert lib.onlstm_build_key() == f"onlstm-build-key:{key}".encode()
    with pytest.raises(RuntimeError, match="build key"):
        kernels._loaded_library(target, "0" * 20)


@needs_compiler
def test_structure_layout_mismatch_is_refused():
    lib = kernels.load()

    class Shorter(kernels.ctypes.Structure):  # a field dropped on the Python side
        _fields_ = kernels.ForwardArgs._fields_[:-1]

    with pytest.raises(RuntimeError, match="onlstm_forward_args: C layout"):
        kernels._check_layout(lib, "forward", Shorter)
    kernels._check_layout(lib, "backward", kernels.BackwardArgs)  # the real one passes


def test_loading_does_not_flush_subnormals():
    kernels.load()
    tiny = torch.tensor(1e-45, dtype=torch.float32)  # a subnormal
    assert (tiny * 1.0).item() > 0


def test_float32_fused_matches_fallback(monkeypatch):
    torch.manual_seed(0)
    model = ONLSTM(16, 40, num_layers=2, chunk_size=4, bidirectional=True)
    x = torch.randn(9, 5, 16, requires_grad=True)
    out, (h, c), d = model(x, return_distances=True)
    (out.sum() + h.sum() + d.forget.sum()).backward()
    grads = [x.grad.clone()] + [p.grad.clone() for p in model.parameters()]
    monkeypatch.setenv("ONLSTM_NO_KERNEL", "1")
    x.grad = None
    model.zero_grad()
    out2, (h2, c2), d2 = model(x, return_distances=True)
    (out2.sum() + h2.sum() + d2.forget.sum()).backward()
    grads2 = [x.grad] + [p.grad for p in model.parameters()]
    assert torch.allclose(out, out2, atol=1e-5)
    assert torch.allclose(d.forget, d2.forget, atol=1e-5)
    for a, b in zip(grads, grads2):
        assert torch.allclose(a, b, atol=1e-4, rtol=1e-4)


def test_same_seed_same_numbers():
    def run():
        torch.manual_seed(3)
        model = ONLSTM(8, 20, chunk_size=5, dropconnect=0.3)
        x = torch.randn(6, 4, 8)
        out, _ = model(x)
        out.sum().backward()
        return out.detach(), model.weight_hh_l0.grad
    a, b = run(), run()
    assert torch.equal(a[0], b[0]) and torch.equal(a[1], b[1])


def test_packed_weight_cache_follows_parameter_updates():
    torch.manual_seed(0)
    model = ONLSTM(6, 8, chunk_size=4).eval()
    x = torch.randn(5, 3, 6)
    with torch.no_grad():
        first, _ = model(x)
        model.weight_hh_l0.mul_(0.5)  # in place: the cached packed copy must not be reused
        second, _ = model(x)
    fresh = ONLSTM(6, 8, chunk_size=4).eval()
    fresh.load_state_dict(model.state_dict())
    with torch.no_grad():
        expected, _ = fresh(x)
    assert not torch.allclose(first, second)
    assert torch.equal(second, expected)


@needs_compiler
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("scale", [1.0, 1.0 / (1.0 - 0.45)])
def test_native_dropconnect_mask_equals_torch_where(dtype, scale):
    kernels._check_layout(kernels.load(), "mask", kernels.MaskArgs)
    g = torch.Generator().manual_seed(0)
    w = torch.randn(97, 33, generator=g, dtype=dtype)
    w[0, :4] = torch.tensor([float("nan"), float("inf"), -float("inf"), -0.0], dtype=dtype)
    keep = torch.rand(97, 33, generator=g) >= 0.45
    keep[0, :2] = True
    keep[0, 2:4] = False  # a dropped -inf is 0, as torch.where gives
    expected = torch.where(keep, w if scale == 1.0 else w * scale, 0.0)
    got = kernels.mask_apply(w, keep, scale)
    assert got.dtype == dtype and got.data_ptr() != w.data_ptr()
    assert torch.equal(got.nan_to_num(7.0), expected.nan_to_num(7.0)) and bool(got[0, 0].isnan())
    strided = kernels.mask_apply(w.t(), keep.t(), scale)  # any layout
    assert torch.equal(strided.nan_to_num(7.0), expected.t().nan_to_num(7.0))
    with pytest.raises(ValueError, match="bool mask"):
        kernels.mask_apply(w, keep.to(torch.uint8), scale)


@pytest.mark.parametrize("convention", ["published", "rescaled"])
def test_drop_connect_gradient_is_the_masked_gradient(convention, impl):
    from onlstm.layer import drop_connect

    p = 0.45
    scale = 1.0 if convention == "published" else 1.0 / (1.0 - p)
    w = torch.randn(40, 12, dtype=torch.double, requires_grad=True)
    torch.manual_seed(9)
    dropped = drop_connect(w, p, True, convention)
    torch.manual_seed(9)
    keep = torch.rand_like(w) >= p  # the same draw: the mask is torch's uniform stream
    assert torch.equal(dropped, torch.where(keep, w * scale, 0.0))
    upstream = torch.randn(40, 12, dtype=torch.double)
    dropped.backward(upstream)
    assert torch.equal(w.grad, torch.where(keep, upstream * scale, 0.0))
    # double backward goes through differentiable ops
    w2 = w.detach().clone().requires_grad_()
    torch.manual_seed(9)
    (grad,) = torch.autograd.grad(drop_connect(w2, p, True, convention).pow(2).sum(), w2, create_graph=True)
    grad.sum().backward()  # d/dw sum(2 s^2 keep w) = 2 s^2 keep
    assert torch.allclose(w2.grad, keep.double() * (2.0 * scale * scale), rtol=1e-12, atol=0)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_published_evaluation_weight_cache_follows_parameter_updates(dtype, impl):
    torch.manual_seed(0)
    model = ONLSTM(6, 8, chunk_size=4, dropconnect=0.4, dropconnect_convention="published").to(dtype).eval()
    x = torch.randn(5, 3, 6, dtype=dtype)
    with torch.no_grad():
        first, _ = model(x)
        again, _ = model(x)  # from the cached (1 - p) weight
        model.weight_hh_l0.mul_(0.5)  # in place: neither the scaled weight nor its packed copy may be reused
        second, _ = model(x)
    fresh = ONLSTM(6, 8, chunk_size=4, dropconnect=0.4).to(dtype).eval()
    fresh.load_state_dict(model.state_dict())
    expected, _ = fresh(x)  # grad enabled: no cache on this path
    assert torch.equal(first, again)
    assert not torch.allclose(first, second)
    assert torch.equal(second, expected.detach())


@needs_compiler
def test_a_compiler_without_openmp_builds_the_serial_variant(monkeypatch, tmp_path):
    monkeypatch.setenv("ONLSTM_CACHE", str(tmp_path))
    monkeypatch.setattr(kernels, "COMPILE_FLAGS", kernels.COMPILE_FLAGS + ("-fno-such-flag-for-onlstm",))
    target, key = kernels._library_path()  # the OpenMP build fails, the serial one is made
    assert key == kernels.build_key(kernels._SOURCE.read_bytes(), kernels._compiler(), kernels.SERIAL_FLAGS)
    assert "-fopenmp" not in kernels.SERIAL_FLAGS[0] + kernels.SERIAL_FLAGS[1]
    assert kernels._loaded_library(target, key).onlstm_build_key() == f"onlstm-build-key:{key}".encode()


@needs_compiler
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_steps_do_not_depend_on_the_thread_count(dtype):
    """A step's rows split over threads (b * n >= 4096 here): bit-identical to one thread,
    forward and backward, whole batch and a shorter b."""
    from onlstm.recurrence import Grads, _backward_buffers, _forward_buffers

    T, B, n, C = 3, 16, 512, 16
    m, G = n // C, 4 * n + 2 * n // C
    g = torch.Generator().manual_seed(3)
    x_proj, pre = torch.randn(T, B, G, generator=g, dtype=dtype), torch.randn(B, G, generator=g, dtype=dtype)
    c0 = torch.randn(B, n, generator=g, dtype=dtype)
    grads = Grads(h=torch.randn(T, B, n, generator=g, dtype=dtype), mf=torch.randn(T, B, m, generator=g, dtype=dtype),
                  mi=torch.randn(T, B, m, generator=g, dtype=dtype), h_n=torch.zeros(B, n, dtype=dtype),
                  c_n=torch.randn(B, n, generator=g, dtype=dtype))
    results = []
    before = torch.get_num_threads()
    try:
        for threads in (1, 2, 3):
            torch.set_num_threads(threads)
            buf = _forward_buffers(x_proj, n, m, None)
            for tensor in buf:
                tensor.zero_()  # rows past b at the last step are not written
            step = kernels.ForwardStep(chunk_size=C, symmetric=False, x_proj=x_proj, c0=c0, **buf._asdict())
            for t, b in zip(range(T), (B, B, 9)):
                step(t, b, pre=pre[:b])
            grad_gates, dh, dc = _backward_buffers(buf.gates, grads, None)
            grad_gates.zero_()  # rows past b at the last step are not written
            back = kernels.BackwardStep(chunk_size=C, symmetric=False, gates=buf.gates, mf=buf.mf, mi=buf.mi,
                                        f_hat=buf.f_hat, i_hat=buf.i_hat, tanh_c=buf.tanh_c, c=buf.c, c0=c0,
                                        grad_h=grads.h, grad_mf=grads.mf, grad_mi=grads.mi, dh=dh, dc=dc,
                                        grad_gates=grad_gates)
            for t, b in zip(range(T - 1, -1, -1), (9, B, B)):
                back(t, b)
            results.append(list(buf) + [grad_gates, dc])
    finally:
        torch.set_num_threads(before)
    for other in results[1:]:
        for a, b in zip(results[0], other):
            assert torch.equal(a, b)
