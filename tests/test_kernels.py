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
