"""A published-layout state dict converts and gives the published code's evaluation outputs,
in both DropConnect conventions; an untied one is refused."""

import pytest
import torch

from onlstm import ONLSTM
from onlstm.convert import convert_published_state_dict
from reference import ref_step


def _published_forward_eval(sd, x, sizes, chunk, wdrop, prefix="rnn."):
    """The published stack in evaluation: hh weight scaled by (1 - wdrop), paper variant."""
    layer_in = x
    for k, n in enumerate(sizes):
        w_ih, b_ih = sd[f"{prefix}cells.{k}.ih.0.weight"], sd[f"{prefix}cells.{k}.ih.0.bias"]
        w_hh, b_hh = sd[f"{prefix}cells.{k}.hh.weight"] * (1 - wdrop), sd[f"{prefix}cells.{k}.hh.bias"]
        h = c = x.new_zeros(x.shape[1], n)
        outs = []
        for t in range(x.shape[0]):
            h, c, _, _ = ref_step(layer_in[t], h, c, w_ih, w_hh, b_ih, b_hh, chunk, "paper")
            outs.append(h)
        layer_in = torch.stack(outs)
    return layer_in


def _random_published(sizes, d_in, chunk, prefix="rnn."):
    sd = {}
    for k, n in enumerate(sizes):
        G = 4 * n + 2 * (n // chunk)
        d = d_in if k == 0 else sizes[k - 1]
        sd[f"{prefix}cells.{k}.ih.0.weight"] = 0.3 * torch.randn(G, d, dtype=torch.double)
        sd[f"{prefix}cells.{k}.ih.0.bias"] = 0.3 * torch.randn(G, dtype=torch.double)
        sd[f"{prefix}cells.{k}.hh.weight"] = 0.3 * torch.randn(G, n, dtype=torch.double)
        sd[f"{prefix}cells.{k}.hh.bias"] = 0.3 * torch.randn(G, dtype=torch.double)
    return sd


@pytest.mark.parametrize("convention", ["published", "rescaled"])
def test_layer_target_gives_published_eval_outputs(convention):
    torch.manual_seed(0)
    sizes, d_in, chunk, wdrop = [6, 6, 6], 4, 3, 0.45
    sd = _random_published(sizes, d_in, chunk)
    ours = ONLSTM(d_in, 6, num_layers=3, chunk_size=chunk, dropconnect=wdrop,
                  dropconnect_convention=convention).double().eval()
    conv = convert_published_state_dict(sd, wdrop, target="layer", convention=convention)
    ours.load_state_dict(conv)
    scale = 1.0 if convention == "published" else 1 - wdrop
    assert torch.equal(conv["weight_hh_l1"], sd["rnn.cells.1.hh.weight"] * scale)
    assert torch.equal(conv["weight_ih_l1"], sd["rnn.cells.1.ih.0.weight"])
    x = torch.randn(5, 2, d_in, dtype=torch.double)
    expected = _published_forward_eval(sd, x, sizes, chunk, wdrop)
    out, _ = ours(x)
    assert (out - expected).abs().max() < 1e-10


@pytest.mark.parametrize("convention", ["published", "rescaled"])
def test_lm_target_keys_and_per_layer_sizes(convention):
    torch.manual_seed(0)
    sizes, d_in, chunk, wdrop = [8, 6, 4], 4, 2, 0.3
    sd = _random_published(sizes, d_in, chunk)
    sd["encoder.weight"] = torch.randn(11, d_in, dtype=torch.double)
    sd["decoder.weight"] = sd["encoder.weight"]
    sd["decoder.bias"] = torch.zeros(11, dtype=torch.double)
    conv = convert_published_state_dict(sd, wdrop, target="lm", convention=convention)
    assert {"encoder.weight", "decoder.weight", "decoder.bias", "rnns.2.weight_hh_l0"} <= set(conv)
    layers = []
    for k, n in enumerate(sizes):
        layer = ONLSTM(d_in if k == 0 else sizes[k - 1], n, chunk_size=chunk, dropconnect=wdrop,
                       dropconnect_convention=convention).double().eval()
        layer.load_state_dict({key.split(".", 2)[2]: v for key, v in conv.items() if key.startswith(f"rnns.{k}.")})
        layers.append(layer)
    x = torch.randn(5, 2, d_in, dtype=torch.double)
    h = x
    for layer in layers:
        h, _ = layer(h)
    assert (h - _published_forward_eval(sd, x, sizes, chunk, wdrop)).abs().max() < 1e-10
    scale = 1.0 if convention == "published" else 1 - wdrop
    assert torch.equal(conv["rnns.0.weight_hh_l0"], sd["rnn.cells.0.hh.weight"] * scale)


def test_untied_language_model_is_refused():
    sd = _random_published([4], 4, 2)
    sd["encoder.weight"] = torch.randn(11, 4, dtype=torch.double)
    sd["decoder.weight"] = sd["encoder.weight"].clone()
    sd["decoder.bias"] = torch.zeros(11, dtype=torch.double)
    convert_published_state_dict(sd, 0.45, target="lm")  # equal values: tied, accepted
    sd["decoder.weight"] = sd["decoder.weight"] + 1e-3
    with pytest.raises(ValueError, match="untied"):
        convert_published_state_dict(sd, 0.45, target="lm")
    convert_published_state_dict(sd, 0.45, target="layer")  # the layer target has no decoder


def test_rejects_non_published_dict():
    with pytest.raises(ValueError, match="not a published ON-LSTM"):
        convert_published_state_dict({"weight": torch.zeros(2)}, 0.45)
    with pytest.raises(ValueError, match="target"):
        convert_published_state_dict({}, 0.45, target="x")
    with pytest.raises(ValueError, match="convention"):
        convert_published_state_dict({}, 0.45, convention="inverted")
