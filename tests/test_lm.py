"""LanguageModel: shapes, save/load round trip, clear errors, sentence scoring and distances."""

import json
import math

import pytest
import torch

from onlstm.text import Vocabulary
from onlstm.errors import UserError
from onlstm.lm import LanguageModel, LMConfig

WORDS = "the cat sat on mat a dog ran".split()


def _model(cell="onlstm", **kw):
    torch.manual_seed(0)
    vocab = Vocabulary.build(WORDS)
    cfg = LMConfig(vocab_size=len(vocab), emb_size=8, hidden_sizes=[12, 8], chunk_size=4, cell=cell, **kw)
    return LanguageModel(cfg, vocab)


@pytest.mark.parametrize("cell", ["onlstm", "lstm"])
def test_forward_shapes_and_tied_decoder(cell):
    model = _model(cell)
    out = model(torch.randint(0, 10, (7, 3)), return_distances=True)
    assert out.logits.shape == (7, 3, 10)
    assert model.decoder.weight is model.encoder.weight
    assert len(out.hidden) == 2 and out.hidden[0][0].shape == (1, 3, 12)
    if cell == "onlstm":
        assert out.distances.shape == (2, 7, 3)
        assert out.input_distances.shape == (2, 7, 3)
    else:
        assert out.distances is None and out.input_distances is None
    assert model(torch.randint(0, 10, (7, 3))).input_distances is None


def test_input_distances_are_each_layers_mean_input_master_gate():
    model = _model().eval()
    x = torch.randint(0, 10, (6, 2))
    out = model(x, return_distances=True)
    h = model.encoder(x)
    for k, rnn in enumerate(model.rnns):
        h, _, dist = rnn(h, return_distances=True)
        assert torch.allclose(out.distances[k], dist.forget[0])
        assert torch.allclose(out.input_distances[k], dist.input[0])
    assert not torch.allclose(out.distances, out.input_distances)


@pytest.mark.parametrize("cell", ["onlstm", "lstm"])
def test_save_load_round_trip(tmp_path, cell):
    model = _model(cell).eval()
    model.save_pretrained(tmp_path / "m")
    assert sorted(p.name for p in (tmp_path / "m").iterdir()) == ["config.json", "model.safetensors", "vocab.json"]
    loaded = LanguageModel.from_pretrained(tmp_path / "m")
    x = torch.randint(0, 10, (5, 2))
    assert torch.equal(model(x).logits, loaded(x).logits)
    assert loaded.vocab == model.vocab
    assert loaded.decoder.weight is loaded.encoder.weight


def test_load_errors(tmp_path):
    with pytest.raises(UserError, match="no such directory"):
        LanguageModel.from_pretrained(tmp_path / "missing")
    (tmp_path / "empty").mkdir()
    with pytest.raises(UserError, match="not a model folder"):
        LanguageModel.from_pretrained(tmp_path / "empty")
    model = _model()
    model.save_pretrained(tmp_path / "m")
    cfg = json.loads((tmp_path / "m" / "config.json").read_text())
    cfg["version"] = 99
    (tmp_path / "m" / "config.json").write_text(json.dumps(cfg))
    with pytest.raises(UserError, match="version 99"):
        LanguageModel.from_pretrained(tmp_path / "m")
    cfg["version"] = 1
    cfg["model"]["hidden_sizes"] = [16, 8]
    (tmp_path / "m" / "config.json").write_text(json.dumps(cfg))
    with pytest.raises(UserError, match="shape"):
        LanguageModel.from_pretrained(tmp_path / "m")
    (tmp_path / "m" / "config.json").write_text("{not json")
    with pytest.raises(UserError, match="not valid JSON"):
        LanguageModel.from_pretrained(tmp_path / "m")


def test_config_errors():
    with pytest.raises(UserError, match="emb_size"):
        LMConfig(vocab_size=10, emb_size=8, hidden_sizes=[12, 6], chunk_size=2)
    with pytest.raises(UserError, match="chunk_size"):
        LMConfig(vocab_size=10, emb_size=8, hidden_sizes=[10, 8], chunk_size=4)
    with pytest.raises(UserError, match="parse_layer must be 1..2"):
        LMConfig(vocab_size=10, emb_size=8, hidden_sizes=[8, 8], chunk_size=4, parse_layer=3)
    assert LMConfig(vocab_size=10, emb_size=8, hidden_sizes=[8, 8], chunk_size=4, parse_layer=2).parse_layer == 2


def test_sentence_logprobs_agree_with_direct_computation():
    model = _model().eval()
    sents = [["the", "cat", "sat"], ["a", "dog"], ["the", "zebra", "ran", "on", "the", "mat"]]
    batched = model.sentence_logprobs(sents, batch_size=2)
    for sent, lp in zip(sents, batched):
        ids = [model.vocab.eos_id] + model.vocab.encode(sent) + [model.vocab.eos_id]
        x = torch.tensor(ids[:-1]).view(-1, 1)
        logp = torch.log_softmax(model(x).logits[:, 0], -1)
        direct = sum(logp[t, ids[t + 1]].item() for t in range(len(ids) - 1))
        assert math.isclose(lp, direct, rel_tol=1e-5, abs_tol=1e-5)


def test_sentence_distances_batched_equal_one_by_one():
    model = _model().eval()
    sents = ["the cat sat on the mat", "a dog", "the dog ran"]
    batched = model.sentence_distances(sents, batch_size=3)
    for s, d in zip(sents, batched):
        single = model.sentence_distances([s], batch_size=1)[0]
        assert d.shape == (2, len(s.split()))
        assert torch.allclose(d, single, atol=1e-6)


def test_distances_need_onlstm():
    with pytest.raises(UserError, match="ON-LSTM"):
        _model("lstm").sentence_distances(["the cat"])
