"""What the Python side hands the native step is checked first: a wrong dtype, shape,
layout, device or step is a Python exception naming the argument, never a call into C."""

import shutil

import pytest
import torch

from onlstm import kernels

pytestmark = pytest.mark.skipif(shutil.which("cc") is None and shutil.which("gcc") is None,
                                reason="no C compiler")

T, B, N, CHUNK = 3, 2, 4, 2
M = N // CHUNK
G = 4 * N + 2 * M


def _forward_buffers(dtype=torch.float32):
    per_unit = {name: torch.zeros(T, B, N, dtype=dtype) for name in ("h", "c", "tanh_c", "f_hat", "i_hat")}
    return dict(x_proj=torch.randn(T, B, G, dtype=dtype), c0=torch.zeros(B, N, dtype=dtype),
                gates=torch.zeros(T, B, G, dtype=dtype), mf=torch.zeros(T, B, M, dtype=dtype),
                mi=torch.zeros(T, B, M, dtype=dtype), **per_unit)


def _forward_step(**buffers):
    return kernels.ForwardStep(chunk_size=CHUNK, symmetric=False, **buffers)


def test_valid_buffers_run_and_fill_one_step():
    buffers = _forward_buffers()
    step = _forward_step(**buffers)
    buffers["gates"][1].copy_(buffers["x_proj"][1])  # no `pre`: gates[t] holds the whole pre-activation
    step(1, B)
    assert torch.allclose(buffers["mf"][1, :, -1], torch.ones(B))  # cumax ends at 1
    assert buffers["h"][0].abs().sum() == 0 and buffers["h"][2].abs().sum() == 0  # other steps untouched


@pytest.mark.parametrize("name", ["x_proj", "c0", "gates", "c", "mi"])
def test_wrong_dtype_is_refused(name):
    buffers = _forward_buffers()
    if name == "gates":  # gates sets the dtype of the step: everything else is then wrong
        buffers["gates"] = buffers["gates"].double()
        name = "x_proj"
    else:
        buffers[name] = buffers[name].double()
    with pytest.raises(TypeError, match=rf"onlstm kernel argument '{name}' has dtype torch.float\d\d, expected"):
        _forward_step(**buffers)


@pytest.mark.parametrize("name,shape", [("mf", (T, B, M + 1)), ("tanh_c", (T, B + 1, N)), ("c0", (B + 1, N)),
                                        ("x_proj", (T - 1, B, G))])
def test_wrong_shape_is_refused(name, shape):
    buffers = _forward_buffers()
    buffers[name] = torch.zeros(shape)
    with pytest.raises(ValueError, match=rf"'{name}' has shape \(.*\), expected \(.*\)"):
        _forward_step(**buffers)


def test_gate_width_must_fit_the_hidden_size():
    buffers = _forward_buffers()
    buffers["c0"] = torch.zeros(B, N + 2)  # n = 6 would need G = 30
    with pytest.raises(ValueError, match="do not fit n=6"):
        _forward_step(**buffers)
    buffers["c0"] = torch.zeros(B, N, 1)
    with pytest.raises(ValueError, match=r"expected \(T, B, G\) gates and \(B, n\) c0, got \(3, 2, 20\) and \(2, 4, 1\)"):
        _forward_step(**buffers)
    buffers["c0"] = None
    with pytest.raises(ValueError, match="and NoneType"):
        _forward_step(**buffers)


def test_non_contiguous_and_non_cpu_buffers_are_refused():
    buffers = _forward_buffers()
    buffers["h"] = torch.zeros(T, N, B).transpose(1, 2)  # right shape, wrong strides
    with pytest.raises(ValueError, match="'h' is not contiguous"):
        _forward_step(**buffers)
    buffers = _forward_buffers()
    buffers["i_hat"] = torch.zeros(T, B, N, device="meta")
    with pytest.raises(ValueError, match="'i_hat' is on meta, expected cpu"):
        _forward_step(**buffers)


def test_per_step_arguments_are_checked():
    step = _forward_step(**_forward_buffers())
    with pytest.raises(IndexError, match="step 3 with 2 rows is outside T=3, B=2"):
        step(T, B)
    with pytest.raises(IndexError, match="outside"):
        step(0, B + 1)
    with pytest.raises(ValueError, match=r"'pre' has shape \(1, 20\), expected \(2, 20\)"):
        step(0, B, pre=torch.zeros(1, G))
    with pytest.raises(TypeError, match="'pre' has dtype torch.float64"):
        step(0, B, pre=torch.zeros(B, G, dtype=torch.float64))


def test_backward_step_checks_its_buffers_too():
    f = _forward_buffers(torch.float64)
    grads = dict(grad_h=torch.zeros(T, B, N), grad_mf=torch.zeros(T, B, M, dtype=torch.float64),
                 grad_mi=torch.zeros(T, B, M, dtype=torch.float64), dh=torch.zeros(B, N, dtype=torch.float64),
                 dc=torch.zeros(B, N, dtype=torch.float64), grad_gates=torch.zeros(T, B, G, dtype=torch.float64))
    saved = {k: f[k] for k in ("gates", "mf", "mi", "f_hat", "i_hat", "tanh_c", "c", "c0")}
    with pytest.raises(TypeError, match="'grad_h' has dtype torch.float32, expected torch.float64"):
        kernels.BackwardStep(chunk_size=CHUNK, symmetric=True, **saved, **grads)
    grads["grad_h"] = grads["grad_h"].double()
    step = kernels.BackwardStep(chunk_size=CHUNK, symmetric=True, **saved, **grads)
    step(T - 1, B)
    with pytest.raises(IndexError):
        step(-1, B)
