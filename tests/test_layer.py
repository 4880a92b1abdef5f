"""ONLSTM equals the plain reference of docs/spec.md §1 (float64), in every configuration."""

import itertools

import pytest
import torch
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

from onlstm import ONLSTM, ONLSTMCell, Distances
from reference import ref_onlstm

TOL = 1e-10


def _close(a, b, tol=TOL):
    assert a.shape == b.shape, (a.shape, b.shape)
    assert (a - b).abs().max().item() <= tol


def _make(seed=0, **kw):
    torch.manual_seed(seed)
    return ONLSTM(**kw).double()


CONFIGS = [
    dict(master_input=v, chunk_size=c, num_layers=L, bidirectional=bi, batch_first=bf)
    for v, c, L, bi, bf in [
        ("paper", 1, 1, False, False),
        ("symmetric", 1, 1, False, True),
        ("paper", 2, 2, False, True),
        ("symmetric", 3, 3, False, False),
        ("paper", 6, 2, True, False),
        ("symmetric", 2, 3, True, True),
        ("paper", 3, 1, True, True),
    ]
]


@pytest.mark.parametrize("cfg", CONFIGS, ids=lambda c: "-".join(f"{k}={v}" for k, v in c.items()))
def test_equals_reference_padded(cfg, impl):
    T, B, d, n = 5, 3, 4, 6
    model = _make(input_size=d, hidden_size=n, **cfg)
    D = 2 if cfg["bidirectional"] else 1
    x = torch.randn(T, B, d, dtype=torch.double, requires_grad=True)
    hx = (torch.randn(cfg["num_layers"] * D, B, n, dtype=torch.double, requires_grad=True),
          torch.randn(cfg["num_layers"] * D, B, n, dtype=torch.double, requires_grad=True))
    inp = x.transpose(0, 1) if cfg["batch_first"] else x
    out, (h_n, c_n), dist = model(inp, hx, return_distances=True)
    assert isinstance(dist, Distances)
    if cfg["batch_first"]:
        out = out.transpose(0, 1)
        dist = Distances(dist.forget.transpose(1, 2), dist.input.transpose(1, 2))
    ref = ref_onlstm(model, [x[:, b] for b in range(B)], hx)
    _close(out, torch.stack([r[0] for r in ref], 1))
    _close(h_n, torch.stack([r[1] for r in ref], 1))
    _close(c_n, torch.stack([r[2] for r in ref], 1))
    _close(dist.forget, torch.stack([r[3] for r in ref], 2))
    _close(dist.input, torch.stack([r[4] for r in ref], 2))
    # gradients of a loss touching every output
    w = [torch.randn_like(t) for t in (out, h_n, c_n, dist.forget, dist.input)]
    loss = sum((a * b).sum() for a, b in zip(w, (out, h_n, c_n, dist.forget, dist.input)))
    ref_out = torch.stack([r[0] for r in ref], 1)
    ref_loss = (w[0] * ref_out).sum() + sum(
        (w[k] * torch.stack([r[k] for r in ref], 1 if k < 3 else 2)).sum() for k in (1, 2, 3, 4)
    )
    inputs = [x, hx[0], hx[1]] + list(model.parameters())
    ours = torch.autograd.grad(loss, inputs)
    theirs = torch.autograd.grad(ref_loss, inputs)
    for a, b in zip(ours, theirs):
        _close(a, b)


@pytest.mark.parametrize("bidirectional,batch_first,variant", list(itertools.product([False, True], [False, True], ["paper", "symmetric"])))
def test_equals_reference_packed(bidirectional, batch_first, variant, impl):
    lengths = [3, 6, 1, 4]
    B, d, n, L = len(lengths), 3, 4, 2
    model = _make(seed=1, input_size=d, hidden_size=n, num_layers=L, chunk_size=2,
                  bidirectional=bidirectional, batch_first=batch_first, master_input=variant)
    seqs = [torch.randn(t, d, dtype=torch.double, requires_grad=True) for t in lengths]
    padded = torch.nn.utils.rnn.pad_sequence(seqs, batch_first=batch_first)
    packed = pack_padded_sequence(padded, torch.tensor(lengths), batch_first=batch_first, enforce_sorted=False)
    D = 2 if bidirectional else 1
    hx = tuple(torch.randn(L * D, B, n, dtype=torch.double) for _ in range(2))
    out, (h_n, c_n), dist = model(packed, hx, return_distances=True)
    out_padded, out_len = pad_packed_sequence(out, batch_first=batch_first)
    assert out_len.tolist() == lengths
    ref = ref_onlstm(model, seqs, hx)
    for b, (r_out, r_h, r_c, r_df, r_di) in enumerate(ref):
        T_b = lengths[b]
        ours = out_padded[b, :T_b] if batch_first else out_padded[:T_b, b]
        _close(ours, r_out)
        _close(h_n[:, b], r_h)
        _close(c_n[:, b], r_c)
        df = dist.forget[:, b, :T_b] if batch_first else dist.forget[:, :T_b, b]
        di = dist.input[:, b, :T_b] if batch_first else dist.input[:, :T_b, b]
        _close(df, r_df)
        _close(di, r_di)
        rest = dist.forget[:, b, T_b:] if batch_first else dist.forget[:, T_b:, b]
        assert (rest == 0).all()
    # padded outputs are zero
    for b, T_b in enumerate(lengths):
        pad = out_padded[b, T_b:] if batch_first else out_padded[T_b:, b]
        assert (pad == 0).all()
    # gradients through the packed path
    g_out = torch.randn_like(out.data)
    g_h = torch.randn_like(h_n)
    loss = (out.data * g_out).sum() + (h_n * g_h).sum()
    ours = torch.autograd.grad(loss, seqs + list(model.parameters()))
    # the same loss from the reference, using the packed layout's row order
    ref_packed = pack_padded_sequence(
        torch.nn.utils.rnn.pad_sequence([r[0] for r in ref], batch_first=batch_first),
        torch.tensor(lengths), batch_first=batch_first, enforce_sorted=False)
    ref_loss = (ref_packed.data * g_out).sum() + (torch.stack([r[1] for r in ref], 1) * g_h).sum()
    theirs = torch.autograd.grad(ref_loss, seqs + list(model.parameters()))
    for a, b in zip(ours, theirs):
        _close(a, b)


def test_padded_steps_change_no_state():
    model = _make(input_size=3, hidden_size=4, chunk_size=2)
    seq = torch.randn(2, 1, 3, dtype=torch.double)
    garbage = torch.cat([seq, 1e3 * torch.randn(4, 1, 3, dtype=torch.double)])
    packed = pack_padded_sequence(garbage, torch.tensor([2]))
    _, (h_p, c_p) = model(packed)
    _, (h, c) = model(seq)
    _close(h_p, h)
    _close(c_p, c)


def test_unbatched_matches_batched():
    model = _make(input_size=3, hidden_size=4, num_layers=2, chunk_size=2)
    x = torch.randn(5, 3, dtype=torch.double)
    out, (h, c), dist = model(x, return_distances=True)
    out_b, (h_b, c_b), dist_b = model(x.unsqueeze(1), return_distances=True)
    _close(out, out_b[:, 0])
    _close(h, h_b[:, 0])
    _close(dist.forget, dist_b.forget[:, :, 0])
    assert h.shape == (2, 4) and dist.forget.shape == (2, 5)


def test_parameter_names_and_shapes_match_nn_lstm():
    ours = ONLSTM(7, 10, num_layers=2, chunk_size=5, bidirectional=True)
    lstm = torch.nn.LSTM(7, 10, num_layers=2, bidirectional=True)
    assert [n for n, _ in ours.named_parameters()] == [n for n, _ in lstm.named_parameters()]
    G = 4 * 10 + 2 * 2
    assert ours.weight_ih_l0.shape == (G, 7)
    assert ours.weight_ih_l1.shape == (G, 20)
    assert ours.weight_hh_l1_reverse.shape == (G, 10)
    assert ours.bias_hh_l0.shape == (G,)
    assert [n for n, _ in ONLSTM(3, 4, bias=False).named_parameters()] == ["weight_ih_l0", "weight_hh_l0"]


def test_no_bias_equals_reference():
    model = _make(input_size=3, hidden_size=4, chunk_size=2, bias=False)
    x = torch.randn(4, 2, 3, dtype=torch.double)
    out, _ = model(x)
    ref = ref_onlstm(model, [x[:, b] for b in range(2)])
    _close(out, torch.stack([r[0] for r in ref], 1))


def test_default_chunk_size():
    assert ONLSTM(3, 1150).chunk_size == 10
    assert ONLSTM(3, 256).chunk_size == 8
    assert ONLSTM(3, 7).chunk_size == 7


def test_dropconnect_one_mask_per_call_and_none_in_eval(impl):
    p = 0.4  # the "rescaled" convention; the "published" one is tested in test_dropconnect.py
    model = _make(input_size=3, hidden_size=4, chunk_size=2, dropconnect=p, dropconnect_convention="rescaled")
    x = torch.randn(6, 2, 3, dtype=torch.double)
    model.train()
    torch.manual_seed(123)
    out, _ = model(x)
    torch.manual_seed(123)
    keep = torch.rand_like(model.weight_hh_l0) >= p
    ref_model = _make(input_size=3, hidden_size=4, chunk_size=2)
    ref_model.load_state_dict(model.state_dict())
    with torch.no_grad():
        ref_model.weight_hh_l0.mul_(keep.double() / (1 - p))
    ref = ref_onlstm(ref_model, [x[:, b] for b in range(2)])
    _close(out, torch.stack([r[0] for r in ref], 1))
    out2, _ = model(x)
    assert not torch.allclose(out, out2)  # a new mask at the next call
    model.eval()
    e1, _ = model(x)
    e2, _ = model(x)
    plain = ref_onlstm(model, [x[:, b] for b in range(2)])
    _close(e1, e2, 0.0)
    _close(e1, torch.stack([r[0] for r in plain], 1))


def test_dropout_between_layers_only_in_training():
    model = _make(input_size=3, hidden_size=4, num_layers=2, chunk_size=2, dropout=0.5)
    x = torch.randn(5, 2, 3, dtype=torch.double)
    model.eval()
    ref = ref_onlstm(model, [x[:, b] for b in range(2)])
    _close(model(x)[0], torch.stack([r[0] for r in ref], 1))
    model.train()
    assert not torch.allclose(model(x)[0], torch.stack([r[0] for r in ref], 1))


def test_float32_and_dtype_follow_input():
    model = ONLSTM(3, 4, chunk_size=2)
    out, (h, c), dist = model(torch.randn(5, 2, 3), return_distances=True)
    assert out.dtype == h.dtype == dist.forget.dtype == torch.float32


@pytest.mark.parametrize(
    "kwargs,needle",
    [
        (dict(input_size=3, hidden_size=10, chunk_size=3), "chunk_size"),
        (dict(input_size=3, hidden_size=10, master_input="nope"), "master_input"),
        (dict(input_size=0, hidden_size=10), "input_size"),
        (dict(input_size=3, hidden_size=10, dropconnect=1.0), "dropconnect"),
        (dict(input_size=3, hidden_size=10, num_layers=0), "num_layers"),
    ],
)
def test_bad_constructor_arguments(kwargs, needle):
    with pytest.raises(ValueError, match=needle):
        ONLSTM(**kwargs)


def test_bad_forward_arguments():
    model = ONLSTM(3, 4, num_layers=2, chunk_size=2)
    with pytest.raises(ValueError, match="3 dimensions"):
        model(torch.randn(2, 3, 4, 3))
    with pytest.raises(ValueError, match="input_size=3"):
        model(torch.randn(5, 2, 7))
    with pytest.raises(ValueError, match=r"h_0 must have shape \(2, 2, 4\)"):
        model(torch.randn(5, 2, 3), (torch.zeros(1, 2, 4), torch.zeros(2, 2, 4)))
    with pytest.raises(ValueError, match="c_0"):
        model(torch.randn(5, 2, 3), (torch.zeros(2, 2, 4), torch.zeros(2, 3, 4)))


@pytest.mark.parametrize("shape,batch_first", [((0, 2, 3), False), ((2, 0, 3), True), ((0, 3), False)])
def test_zero_length_sequence_is_refused_like_nn_lstm(shape, batch_first, impl):
    model = ONLSTM(3, 4, chunk_size=2, bidirectional=True, batch_first=batch_first)
    with pytest.raises(ValueError, match="Expected sequence length to be larger than 0 in ONLSTM"):
        model(torch.randn(shape))


def test_dtype_mismatch_names_both_dtypes(impl):
    model = ONLSTM(3, 4, chunk_size=2)  # float32
    with pytest.raises(ValueError, match=r"input has dtype torch.float64 but the ON-LSTM weights are torch.float32"):
        model(torch.randn(5, 2, 3, dtype=torch.float64))
    hx = (torch.zeros(1, 2, 4, dtype=torch.float64), torch.zeros(1, 2, 4))
    with pytest.raises(ValueError, match=r"h_0 has dtype torch.float64 but the ON-LSTM weights are torch.float32"):
        model(torch.randn(5, 2, 3), hx)
    cell = ONLSTMCell(3, 4, chunk_size=2).double()
    with pytest.raises(ValueError, match=r"input has dtype torch.float32 .* torch.float64: convert"):
        cell(torch.randn(2, 3))
