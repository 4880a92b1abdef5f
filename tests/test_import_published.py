"""`onlstm import-published` on files written here in the published layout.

The published main.py does ``torch.save([model, criterion, optimizer])`` and caches a pickled
``data.Corpus``. This test defines stand-in classes under the published module and class
names (model.RNNModel, ON_LSTM.*, locked_dropout.LockedDropout, splitcross.*, data.*) as fake
modules, torch.saves them, and imports the result; and checks that foreign, untied and
malicious pickles are refused without running anything.
"""

import collections
import json
import os
import sys
import types

import pytest
import torch
from torch import nn

from onlstm.cli import main
from onlstm.convert import load_published_pickle
from onlstm.errors import UserError
from onlstm.lm import LanguageModel
from onlstm.tasks.import_published import import_published
from reference import ref_step

WORDS = ["the", "<unk>", "cat", "sat", "on", "mat", "</s>", "a", "dog", "ran", "N", "'s"]
EMB, NHID, CHUNK, WDROP = 4, 6, 2, 0.45


@pytest.fixture
def published(monkeypatch):
    """Fake published modules in sys.modules, returning a namespace of their classes."""
    mods = {name: types.ModuleType(name) for name in ("model", "ON_LSTM", "locked_dropout", "splitcross", "data")}
    for name, mod in mods.items():
        monkeypatch.setitem(sys.modules, name, mod)

    def publish(module):
        def register(cls):
            cls.__module__, cls.__qualname__ = module, cls.__name__
            setattr(mods[module], cls.__name__, cls)
            return cls
        return register

    @publish("locked_dropout")
    class LockedDropout(nn.Module):
        pass

    @publish("ON_LSTM")
    class LinearDropConnect(nn.Linear):
        def __init__(self, n_in, n_out, dropout):
            super().__init__(n_in, n_out)
            self.dropout = dropout

    @publish("ON_LSTM")
    class ONLSTMCell(nn.Module):
        def __init__(self, n_in, n, chunk, dropconnect):
            super().__init__()
            self.input_size, self.hidden_size, self.chunk_size, self.n_chunk = n_in, n, chunk, n // chunk
            gates = 4 * n + 2 * (n // chunk)
            self.ih = nn.Sequential(nn.Linear(n_in, gates))
            self.hh = LinearDropConnect(n, gates, dropconnect)
            self.drop_weight_modules = [self.hh]
            mask = torch.rand(self.hh.weight.shape) < dropconnect  # as after a training batch
            self.hh._weight = self.hh.weight.masked_fill(mask, 0.0)

    @publish("ON_LSTM")
    class ONLSTMStack(nn.Module):
        def __init__(self, sizes, chunk, dropout, dropconnect):
            super().__init__()
            self.cells = nn.ModuleList([ONLSTMCell(sizes[i], sizes[i + 1], chunk, dropconnect)
                                        for i in range(len(sizes) - 1)])
            self.lockdrop, self.dropout, self.sizes = LockedDropout(), dropout, sizes

    @publish("model")
    class RNNModel(nn.Module):
        def __init__(self, ntoken, tie=True, rnn=None):
            super().__init__()
            self.lockdrop = LockedDropout()
            self.idrop, self.hdrop, self.drop = nn.Dropout(0.5), nn.Dropout(0.25), nn.Dropout(0.4)
            self.encoder = nn.Embedding(ntoken, EMB)
            self.rnn = rnn if rnn is not None else ONLSTMStack([EMB, NHID, NHID, EMB], CHUNK, 0.25, WDROP)
            self.decoder = nn.Linear(EMB, ntoken)
            if tie:
                self.decoder.weight = self.encoder.weight
            nn.init.uniform_(self.encoder.weight, -0.1, 0.1)
            nn.init.uniform_(self.decoder.bias, -0.1, 0.1)  # not zero, so that the bias is checked
            self.rnn_type, self.ninp, self.nhid, self.nlayers = "LSTM", EMB, NHID, 3
            self.dropout, self.dropouti, self.dropouth, self.dropoute, self.tie_weights = 0.4, 0.5, 0.25, 0.1, tie

    @publish("splitcross")
    class SplitCrossEntropyLoss(nn.Module):
        def __init__(self, hidden, splits):
            super().__init__()
            self.hidden_size, self.splits = hidden, [0] + splits + [100 * 1000000]
            self.nsplits, self.stats, self.verbose = len(self.splits) - 1, collections.defaultdict(list), False
            if self.nsplits > 1:
                self.tail_vectors = nn.Parameter(torch.zeros(self.nsplits - 1, hidden))

    @publish("data")
    class Dictionary:
        def __init__(self, words):
            self.idx2word = list(words)
            self.word2idx = {w: i for i, w in enumerate(words)}

    @publish("data")
    class Corpus:
        def __init__(self, words):
            self.dictionary = Dictionary(words)
            self.train = torch.randint(0, len(words), (50,))
            self.valid = self.test = torch.randint(0, len(words), (20,))

    return types.SimpleNamespace(**{c.__name__: c for c in (RNNModel, ONLSTMStack, SplitCrossEntropyLoss,
                                                            Dictionary, Corpus)})


def _save_published(published, folder, ntoken=len(WORDS), words=WORDS, tie=True, splits=(), rnn=None):
    """A checkpoint and corpus file as main.py writes them (after one ASGD step)."""
    torch.manual_seed(0)
    model = published.RNNModel(ntoken, tie=tie, rnn=rnn)
    criterion = published.SplitCrossEntropyLoss(EMB, list(splits))
    params = list(model.parameters()) + list(criterion.parameters())
    optimizer = torch.optim.ASGD(params, lr=30, t0=0, lambd=0.0, weight_decay=1.2e-6)
    for p in params:
        p.grad = 0.01 * torch.randn_like(p)
    optimizer.step()
    folder.mkdir(parents=True, exist_ok=True)
    torch.save([model, criterion, optimizer], folder / "model.pt")
    torch.save(published.Corpus(words), folder / "corpus.0123abcd.data")
    return model, folder / "model.pt", folder / "corpus.0123abcd.data"


def _published_eval_logits(model, x):
    """The published evaluation from the equations, float64: W_hh times (1 - wdrop), tied decoder."""
    E = model.encoder.weight.detach().double()
    h_in = E[x]
    for cell in model.rnn.cells:
        w_ih, b_ih = cell.ih[0].weight.detach().double(), cell.ih[0].bias.detach().double()
        w_hh, b_hh = cell.hh.weight.detach().double() * (1 - cell.hh.dropout), cell.hh.bias.detach().double()
        h = c = h_in.new_zeros(x.shape[1], cell.hidden_size)
        outs = []
        for t in range(x.shape[0]):
            h, c, _, _ = ref_step(h_in[t], h, c, w_ih, w_hh, b_ih, b_hh, cell.chunk_size, "paper")
            outs.append(h)
        h_in = torch.stack(outs)
    return h_in @ E.T + model.decoder.bias.detach().double()


def test_import_gives_the_published_evaluation(published, tmp_path):
    model, ckpt, corpus = _save_published(published, tmp_path / "pub")
    summary = import_published(ckpt, corpus, tmp_path / "out")
    assert summary["layer_sizes"] == [EMB, NHID, NHID, EMB] and summary["optimizer"] == "torch.optim.asgd.ASGD"
    ours = LanguageModel.from_pretrained(tmp_path / "out")
    c = ours.config
    assert (c.vocab_size, c.emb_size, c.hidden_sizes, c.chunk_size) == (len(WORDS), EMB, [NHID, NHID, EMB], CHUNK)
    assert (c.dropout, c.dropouth, c.dropouti, c.dropoute, c.wdrop) == (0.4, 0.25, 0.5, 0.1, WDROP)
    assert c.dropconnect_convention == "published" and c.cell == "onlstm" and c.master_input == "paper"
    saved = json.loads((tmp_path / "out" / "config.json").read_text())
    assert saved["model"]["dropconnect_convention"] == "published"
    assert saved["training"]["imported_from"]["checkpoint"] == "model.pt"
    # ids unchanged; the published end-of-line token is our <eos>
    assert list(ours.vocab.itos) == [("<eos>" if w == "</s>" else w) for w in WORDS]
    assert torch.equal(ours.rnns[2].weight_hh_l0, model.rnn.cells[2].hh.weight.detach())  # copied unscaled
    x = torch.tensor([[6, 0], [2, 7], [3, 8], [4, 9], [0, 6], [5, 1]])
    expected = _published_eval_logits(model, x)
    assert (ours(x).logits.double() - expected).abs().max() < 1e-5


def test_cli_import_then_evaluate_and_parse(published, tmp_path, capsys):
    _, ckpt, corpus = _save_published(published, tmp_path / "pub")
    out = tmp_path / "model"
    assert main(["import-published", str(ckpt), "--corpus", str(corpus), "--out", str(out)]) == 0
    assert "published convention" in capsys.readouterr().out
    text = tmp_path / "text.txt"
    text.write_text("the cat sat on the mat\na dog ran\n")
    assert main(["evaluate", str(out), "--split", str(text), "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["tokens"] == 11 and 1 < result["perplexity"] < 1000
    assert main(["parse", "the cat sat on the mat", "--model", str(out), "--format", "json"]) == 0
    parsed = json.loads(capsys.readouterr().out)
    assert parsed[0]["words"] == ["the", "cat", "sat", "on", "the", "mat"]
    # an earlier import is written again; a folder holding anything else only with --overwrite (or --force)
    assert main(["import-published", str(ckpt), "--corpus", str(corpus), "--out", str(out),
                 "--parse-layer", "2"]) == 0
    assert LanguageModel.from_pretrained(out).config.parse_layer == 2
    (out / "notes.txt").write_text("mine")

    def not_an_import():
        config = json.loads((out / "config.json").read_text())
        config["training"].pop("imported_from", None)
        (out / "config.json").write_text(json.dumps(config))

    not_an_import()
    before = (out / "config.json").read_bytes()
    assert main(["import-published", str(ckpt), "--corpus", str(corpus), "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert "--overwrite" in err and "notes.txt" in err and (out / "config.json").read_bytes() == before
    for flag, k in (("--overwrite", 3), ("--force", 1)):
        not_an_import()
        assert main(["import-published", str(ckpt), "--corpus", str(corpus), "--out", str(out), flag,
                     "--parse-layer", str(k)]) == 0
        assert LanguageModel.from_pretrained(out).config.parse_layer == k
    assert (out / "notes.txt").read_text() == "mine"


def test_untied_checkpoints_are_refused(published, tmp_path):
    _, ckpt, corpus = _save_published(published, tmp_path / "a", tie=False)
    with pytest.raises(UserError, match="untied"):
        import_published(ckpt, corpus, tmp_path / "out")
    # tie_weights says True, but the decoder weight is a separate tensor with other values
    torch.manual_seed(0)
    model = published.RNNModel(len(WORDS))
    model.decoder.weight = nn.Parameter(model.encoder.weight.detach() + 0.01)
    torch.save([model, None, None], tmp_path / "b.pt")
    with pytest.raises(UserError, match="untied"):
        import_published(tmp_path / "b.pt", corpus, tmp_path / "out")
    assert not (tmp_path / "out").exists()


def test_foreign_and_mismatched_files_are_refused(published, tmp_path):
    _, ckpt, corpus = _save_published(published, tmp_path / "pub")
    torch.manual_seed(0)
    awd = published.RNNModel(len(WORDS), rnn=nn.ModuleList([nn.LSTM(EMB, EMB)]))  # an AWD-LSTM-like model
    torch.save([awd, None, None], tmp_path / "awd.pt")
    torch.save(awd.state_dict(), tmp_path / "state.pt")
    torch.save(published.Dictionary(WORDS[:-1]), tmp_path / "short.data")
    (tmp_path / "text.pt").write_text("not a checkpoint")
    cases = [((tmp_path / "awd.pt", corpus), "ONLSTMStack"), ((tmp_path / "state.pt", corpus), "not a published"),
             ((tmp_path / "text.pt", corpus), "not a zip-format"), ((ckpt, ckpt), "not a published corpus"),
             ((ckpt, tmp_path / "short.data"), "11 words but the checkpoint's embedding has 12 rows"),
             ((tmp_path / "missing.pt", corpus), "no such file")]
    for (c, v), message in cases:
        with pytest.raises(UserError, match=message):
            import_published(c, v, tmp_path / "out")
    _, ckpt2, _ = _save_published(published, tmp_path / "split", splits=[5])
    with pytest.raises(UserError, match="split"):
        import_published(ckpt2, corpus, tmp_path / "out")
    no_eos = [w for w in WORDS if w != "</s>"] + ["x"]
    _, _, corpus3 = _save_published(published, tmp_path / "noeos", words=no_eos)
    with pytest.raises(UserError, match="end-of-line"):
        import_published(ckpt, corpus3, tmp_path / "out")


class _Shell:
    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return os.system, (f"touch {self.marker}",)


class _Eval:
    def __reduce__(self):
        return eval, ("__import__('os').getpid()",)


class _StatefulList:
    def __reduce__(self):  # BUILD on a list: a state the restricted unpickler must not set
        return list, (), {"append": 1}


def test_malicious_pickles_are_refused_without_running_anything(tmp_path, monkeypatch):
    marker = tmp_path / "pwned"
    torch.save([_Shell(marker)], tmp_path / "shell.pt")
    torch.save({"weights": torch.zeros(2), "x": _Eval()}, tmp_path / "eval.pt")
    torch.save([_StatefulList()], tmp_path / "build.pt")
    evil = types.ModuleType("evil_published_helper")
    evil.run = lambda: None
    evil.run.__module__, evil.run.__qualname__ = "evil_published_helper", "run"
    monkeypatch.setitem(sys.modules, "evil_published_helper", evil)
    torch.save([evil.run], tmp_path / "import.pt")
    monkeypatch.delitem(sys.modules, "evil_published_helper")
    for name, message in [("shell.pt", r"global (posix|nt)\.system"), ("eval.pt", r"global builtins\.eval"),
                          ("build.pt", "refused to set the state of a list"),
                          ("import.pt", r"global evil_published_helper\.run")]:
        with pytest.raises(UserError, match=message):
            load_published_pickle(tmp_path / name)
        with pytest.raises(UserError, match=message):  # as the corpus file as well
            import_published(tmp_path / name, tmp_path / name, tmp_path / "out")
    assert not marker.exists()
    assert "evil_published_helper" not in sys.modules  # never imported


def test_cli_refusal_exits_2(tmp_path, capsys):
    torch.save([_Shell(tmp_path / "pwned")], tmp_path / "shell.pt")
    code = main(["import-published", str(tmp_path / "shell.pt"), "--corpus", str(tmp_path / "shell.pt"),
                 "--out", str(tmp_path / "out")])
    assert code == 2 and "refused to unpickle the global" in capsys.readouterr().err
    assert not (tmp_path / "pwned").exists()
