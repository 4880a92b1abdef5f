"""DropConnect conventions and initialisation against the published code (docs/spec.md §4).

The published ``LinearDropConnect`` uses the kept recurrent weights as stored in training and
the weight times (1 - p) at evaluation ("published"); the other convention scales the kept
weights by 1/(1 - p) in training ("rescaled"). One SGD step with given masks, in float64, is
checked against a reference of the published step written here from the equations.
"""

import json
import math

import pytest
import torch
import torch.nn.functional as F

import onlstm.layer as layer_module
from onlstm import ONLSTM, ONLSTMCell
from onlstm.bundled import default_model_path
from onlstm.convert import convert_published_state_dict
from onlstm.lm import LanguageModel, LMConfig, WeightDropLSTM
from onlstm.text import Vocabulary
from reference import ref_step

P_DROP, LR, WDECAY = 0.45, 30.0, 1.2e-6
SIZES, EMB, CHUNK, V = [6, 4], 4, 2, 10


def _published_weights(seed=0):
    """Random weights keyed as the published RNNModel's state dict (float64)."""
    g = torch.Generator().manual_seed(seed)
    sd = {"encoder.weight": 0.5 * torch.randn(V, EMB, generator=g, dtype=torch.double)}
    d_in = EMB
    for k, n in enumerate(SIZES):
        G = 4 * n + 2 * (n // CHUNK)
        sd[f"rnn.cells.{k}.ih.0.weight"] = 0.5 * torch.randn(G, d_in, generator=g, dtype=torch.double)
        sd[f"rnn.cells.{k}.ih.0.bias"] = 0.5 * torch.randn(G, generator=g, dtype=torch.double)
        sd[f"rnn.cells.{k}.hh.weight"] = 0.5 * torch.randn(G, n, generator=g, dtype=torch.double)
        sd[f"rnn.cells.{k}.hh.bias"] = 0.5 * torch.randn(G, generator=g, dtype=torch.double)
        d_in = n
    sd["decoder.weight"] = sd["encoder.weight"]
    sd["decoder.bias"] = 0.1 * torch.randn(V, generator=g, dtype=torch.double)
    return sd


def _masks(seed=1):
    """One kept-mask per layer's recurrent weight, keyed by its shape (the shapes differ)."""
    g = torch.Generator().manual_seed(seed)
    shapes = [(4 * n + 2 * (n // CHUNK), n) for n in SIZES]
    return {s: torch.rand(s, generator=g, dtype=torch.double) >= P_DROP for s in shapes}


def _reference_step(sd, masks, x, y, clip):
    """The published training step from the equations: loss, gradients, updated weights.

    Forward: e = E[x]; per layer and step the ON-LSTM cell (tests/reference.py) with the
    recurrent weight W_hh * mask (kept entries unscaled); logits = h E^T + b (tied); mean
    cross-entropy. SGD: g <- g * min(1, clip / (|g| + 1e-6)); W <- W - lr (g + wd W).
    """
    leaves = {k: v.clone().requires_grad_(True) for k, v in sd.items() if k != "decoder.weight"}
    E = leaves["encoder.weight"]
    h_in = E[x]  # (T, B, EMB)
    for k, n in enumerate(SIZES):
        w_hh = leaves[f"rnn.cells.{k}.hh.weight"] * masks[tuple(sd[f"rnn.cells.{k}.hh.weight"].shape)]
        h = c = h_in.new_zeros(x.shape[1], n)
        outs = []
        for t in range(x.shape[0]):
            h, c, _, _ = ref_step(h_in[t], h, c, leaves[f"rnn.cells.{k}.ih.0.weight"], w_hh,
                                  leaves[f"rnn.cells.{k}.ih.0.bias"], leaves[f"rnn.cells.{k}.hh.bias"], CHUNK, "paper")
            outs.append(h)
        h_in = torch.stack(outs)
    logits = h_in @ E.T + leaves["decoder.bias"]
    logp = logits - logits.logsumexp(-1, keepdim=True)
    loss = -logp.gather(-1, y.unsqueeze(-1)).mean()
    loss.backward()
    grads = {k: v.grad.clone() for k, v in leaves.items()}
    norm = math.sqrt(sum(float((g ** 2).sum()) for g in grads.values()))
    scale = 1.0 if clip is None else min(1.0, clip / (norm + 1e-6))
    updated = {k: v.detach() - LR * (grads[k] * scale + WDECAY * v.detach()) for k, v in leaves.items()}
    return float(loss.detach()), grads, updated, scale


def _our_step(convention, sd, masks, x, y, clip, monkeypatch):
    cfg = LMConfig(vocab_size=V, emb_size=EMB, hidden_sizes=SIZES, chunk_size=CHUNK, dropout=0.0, dropouth=0.0,
                   dropouti=0.0, dropoute=0.0, wdrop=P_DROP, dropconnect_convention=convention)
    model = LanguageModel(cfg).double()
    model.load_state_dict(convert_published_state_dict(sd, P_DROP, target="lm", convention=convention))
    drawn = []

    def given_mask(weight, p):
        assert p == P_DROP
        drawn.append(tuple(weight.shape))
        return masks[tuple(weight.shape)]

    monkeypatch.setattr(layer_module, "dropconnect_keep_mask", given_mask)
    model.train()
    opt = torch.optim.SGD(model.parameters(), lr=LR, weight_decay=WDECAY)
    opt.zero_grad()
    out = model(x)
    loss = F.cross_entropy(out.logits.reshape(-1, V), y.reshape(-1))
    loss.backward()
    grads = {k: v.grad.clone() for k, v in model.named_parameters()}
    if clip is not None:
        torch.nn.utils.clip_grad_norm_(model.parameters(), clip)
    opt.step()
    assert sorted(drawn) == sorted(masks)  # one mask per layer per forward call
    return float(loss.detach()), grads, {k: v.detach().clone() for k, v in model.named_parameters()}


def _ours(key):
    """Our parameter name of a published key (language-model target)."""
    for old, new in (("rnn.cells.", "rnns."), (".ih.0.weight", ".weight_ih_l0"), (".ih.0.bias", ".bias_ih_l0"),
                     (".hh.weight", ".weight_hh_l0"), (".hh.bias", ".bias_hh_l0")):
        key = key.replace(old, new)
    return key


@pytest.mark.parametrize("clip", [None, 0.1])
def test_one_training_step_in_both_conventions_against_the_published_step(clip, impl, monkeypatch):
    sd, masks = _published_weights(), _masks()
    g = torch.Generator().manual_seed(2)
    x, y = torch.randint(0, V, (5, 3), generator=g), torch.randint(0, V, (5, 3), generator=g)
    ref_loss, ref_grads, ref_updated, ref_scale = _reference_step(sd, masks, x, y, clip)
    if clip is not None:
        assert ref_scale < 0.5  # clipping is active in this case

    # "published": the stored weights unchanged; loss, gradients and the step equal the reference
    loss, grads, updated = _our_step("published", sd, masks, x, y, clip, monkeypatch)
    assert abs(loss - ref_loss) < 1e-12
    for key in ref_grads:
        assert (grads[_ours(key)] - ref_grads[key]).abs().max() < 1e-11, key
        assert (updated[_ours(key)] - ref_updated[key]).abs().max() < 1e-9, key

    # "rescaled", from the equivalent weights (W_hh times 1-p): the same loss, but the gradient
    # on the stored recurrent weight is 1/(1-p) times the published one, so the step differs
    keep = 1 - P_DROP
    loss_r, grads_r, updated_r = _our_step("rescaled", sd, masks, x, y, clip, monkeypatch)
    assert abs(loss_r - ref_loss) < 1e-12
    for key in ref_grads:
        factor = 1 / keep if key.endswith("hh.weight") else 1.0
        assert (grads_r[_ours(key)] - factor * ref_grads[key]).abs().max() < 1e-11, key
    norm_r = math.sqrt(sum(float((g_ ** 2).sum()) for g_ in grads_r.values()))  # the tied weight counted once
    scale_r = 1.0 if clip is None else min(1.0, clip / (norm_r + 1e-6))
    hh = "rnn.cells.0.hh.weight"
    w0 = sd[hh] * keep
    expected = w0 - LR * (grads_r[_ours(hh)] * scale_r + WDECAY * w0)
    assert (updated_r[_ours(hh)] - expected).abs().max() < 1e-9
    # in the published weight's units, the rescaled step on W_hh is 1/(1-p)^2 the published one
    step_r = updated_r[_ours(hh)] / keep - sd[hh]
    step_p = ref_updated[hh] - sd[hh]
    if clip is None:
        ratio = (step_r + LR * WDECAY * sd[hh]) / (step_p + LR * WDECAY * sd[hh])
        nonzero = ref_grads[hh].abs() > 1e-8
        assert torch.allclose(ratio[nonzero], torch.full_like(ratio[nonzero], 1 / keep ** 2), rtol=1e-6)
    assert (step_r - step_p).abs().max() > 1e-3


def test_published_convention_evaluates_stored_published_weights_unconverted():
    sd = _published_weights()
    cfg = LMConfig(vocab_size=V, emb_size=EMB, hidden_sizes=SIZES, chunk_size=CHUNK, wdrop=P_DROP)
    assert cfg.dropconnect_convention == "published"
    model = LanguageModel(cfg).double().eval()
    model.load_state_dict(convert_published_state_dict(sd, P_DROP, target="lm"))
    assert torch.equal(model.rnns[1].weight_hh_l0, sd["rnn.cells.1.hh.weight"])  # copied unchanged
    x = torch.randint(0, V, (6, 2), generator=torch.Generator().manual_seed(3))
    h_in = sd["encoder.weight"][x]
    for k, n in enumerate(SIZES):  # the published evaluation: W_hh * (1 - p)
        h = c = h_in.new_zeros(2, n)
        outs = []
        for t in range(x.shape[0]):
            h, c, _, _ = ref_step(h_in[t], h, c, sd[f"rnn.cells.{k}.ih.0.weight"],
                                  sd[f"rnn.cells.{k}.hh.weight"] * (1 - P_DROP), sd[f"rnn.cells.{k}.ih.0.bias"],
                                  sd[f"rnn.cells.{k}.hh.bias"], CHUNK, "paper")
            outs.append(h)
        h_in = torch.stack(outs)
    expected = h_in @ sd["encoder.weight"].T + sd["decoder.bias"]
    assert (model(x).logits - expected).abs().max() < 1e-12


@pytest.mark.parametrize("convention", ["published", "rescaled"])
def test_drop_connect_function(convention):
    w = torch.randn(5, 7, dtype=torch.double)
    scale_eval, scale_train = (1 - P_DROP, 1.0) if convention == "published" else (1.0, 1 / (1 - P_DROP))
    assert torch.equal(layer_module.drop_connect(w, P_DROP, False, convention), w * scale_eval)
    torch.manual_seed(4)
    dropped = layer_module.drop_connect(w, P_DROP, True, convention)
    torch.manual_seed(4)
    keep = torch.rand_like(w) >= P_DROP
    assert torch.allclose(dropped, torch.where(keep, w * scale_train, 0.0), rtol=1e-15, atol=0)
    assert layer_module.drop_connect(w, 0.0, True, convention) is w
    with pytest.raises(ValueError, match="dropconnect_convention"):
        ONLSTM(3, 4, chunk_size=2, dropconnect_convention="inverted")


@pytest.mark.parametrize("convention", ["published", "rescaled"])
def test_lstm_baseline_weight_drop_conventions(convention, monkeypatch):
    torch.manual_seed(0)
    layer = WeightDropLSTM(3, 4, P_DROP, convention).double()
    x = torch.randn(5, 2, 3, dtype=torch.double)
    mask = torch.rand(16, 4, dtype=torch.double) >= P_DROP
    monkeypatch.setattr(layer_module, "dropconnect_keep_mask", lambda w, p: mask)
    plain = torch.nn.LSTM(3, 4).double()
    for train, factor in [(True, mask.double() / ((1 - P_DROP) if convention == "rescaled" else 1.0)),
                          (False, 1 - P_DROP if convention == "published" else 1.0)]:
        layer.train(train)
        with torch.no_grad():
            for name, p in layer.lstm.named_parameters():
                getattr(plain, name).copy_(p * factor if name == "weight_hh_l0" else p)
        assert (layer(x)[0] - plain(x)[0]).abs().max() < 1e-12


def test_config_conventions_default_and_old_configs(tmp_path):
    assert LMConfig(vocab_size=10, emb_size=8, hidden_sizes=[8], chunk_size=4).dropconnect_convention == "published"
    assert LMConfig(vocab_size=10, emb_size=8, hidden_sizes=[8], cell="lstm").dropconnect_convention == "rescaled"
    old = dict(vocab_size=10, emb_size=8, hidden_sizes=[8], chunk_size=4)
    assert LMConfig.from_dict(old).dropconnect_convention == "rescaled"  # written before the key existed
    from onlstm.errors import UserError
    with pytest.raises(UserError, match="dropconnect_convention"):
        LMConfig(vocab_size=10, emb_size=8, hidden_sizes=[8], chunk_size=4, dropconnect_convention="x")
    vocab = Vocabulary.build("a b c d e f g h".split())
    torch.manual_seed(0)
    model = LanguageModel(LMConfig(vocab_size=len(vocab), emb_size=8, hidden_sizes=[8], chunk_size=4), vocab).eval()
    model.save_pretrained(tmp_path / "m")
    saved = json.loads((tmp_path / "m" / "config.json").read_text())
    assert saved["model"]["dropconnect_convention"] == "published"
    loaded = LanguageModel.from_pretrained(tmp_path / "m")
    assert loaded.rnns[0].dropconnect_convention == "published"
    x = torch.randint(0, len(vocab), (4, 2))
    assert torch.equal(loaded(x).logits, model(x).logits)
    del saved["model"]["dropconnect_convention"]  # an older folder: trained "rescaled"
    (tmp_path / "m" / "config.json").write_text(json.dumps(saved))
    older = LanguageModel.from_pretrained(tmp_path / "m")
    assert older.rnns[0].dropconnect_convention == "rescaled"
    assert not torch.allclose(older(x).logits, model(x).logits)  # (1-p) no longer applied at evaluation


def test_bundled_model_is_rescaled_and_unchanged():
    model = LanguageModel.from_pretrained(default_model_path())
    assert model.config.dropconnect_convention == "rescaled" and model.config.wdrop > 0
    x = torch.tensor(model.vocab.encode("<eos> the company said it expects to report a loss".split())).view(-1, 1)
    h = model.encoder(x)
    for rnn in model.rnns:  # evaluation uses the stored weights as they are, as before
        copy = ONLSTM(rnn.input_size, rnn.hidden_size, chunk_size=rnn.chunk_size).eval()
        copy.load_state_dict(rnn.state_dict())
        h, _ = copy(h)
    assert torch.allclose(model(x).logits, model.decoder(h), atol=1e-5)
    # log-probabilities computed with the code before the convention was recorded
    before = [-19.969282150268555, -26.363998413085938]
    now = model.sentence_logprobs(["the company said it expects to report a loss",
                                   "prices rose sharply in new york trading"])
    assert all(abs(a - b) < 1e-3 for a, b in zip(now, before))


def test_initialisation_as_the_published_nn_linear_maps():
    torch.manual_seed(0)
    layer = ONLSTM(16, 100, num_layers=2, chunk_size=10)
    cell = ONLSTMCell(25, 100, chunk_size=10)
    bounds = {"weight_ih_l0": 1 / 4, "bias_ih_l0": 1 / 4, "weight_hh_l0": 1 / 10, "bias_hh_l0": 1 / 10,
              "weight_ih_l1": 1 / 10, "bias_ih_l1": 1 / 10, "weight_hh_l1": 1 / 10, "bias_hh_l1": 1 / 10}
    params = dict(layer.named_parameters())
    params.update({f"cell.{k}": v for k, v in cell.named_parameters()})
    bounds.update({"cell.weight_ih": 1 / 5, "cell.bias_ih": 1 / 5, "cell.weight_hh": 1 / 10, "cell.bias_hh": 1 / 10})
    for name, bound in bounds.items():
        m = float(params[name].detach().abs().max())
        assert 0.95 * bound < m <= bound, (name, m, bound)
    vocab = Vocabulary.build("a b c".split())
    lm = LanguageModel(LMConfig(vocab_size=len(vocab), emb_size=20, hidden_sizes=[30, 20], chunk_size=10), vocab)
    assert 0.095 < float(lm.encoder.weight.detach().abs().max()) <= 0.1
    assert torch.equal(lm.decoder.bias, torch.zeros_like(lm.decoder.bias))
    assert 0.95 / math.sqrt(20) < float(lm.rnns[0].weight_ih_l0.detach().abs().max()) <= 1 / math.sqrt(20)
