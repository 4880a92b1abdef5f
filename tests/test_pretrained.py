"""The model shipped in the package: it is there, loads, parses, and is a trained model."""

import json

import torch

from onlstm import trees as T
from onlstm.cli import main
from onlstm.corpus import load_corpus
from onlstm.tasks.parse import parse
from onlstm.bundled import default_model_path
from onlstm.tasks.lm import evaluate_ids


def _model():
    from onlstm.lm import LanguageModel

    path = default_model_path()
    assert path is not None, "the package must ship src/onlstm/pretrained/ptb-onlstm/model.safetensors"
    return LanguageModel.from_pretrained(path), path


def test_shipped_model_files_and_config():
    model, path = _model()
    assert sum(f.stat().st_size for f in path.iterdir()) < 50e6
    assert (path / "README.md").is_file(), "the model card"
    config = json.loads((path / "config.json").read_text())
    assert config["model"]["cell"] == "onlstm" and config["model"]["parse_layer"] is not None
    assert all(p.dtype == torch.float32 for p in model.parameters())  # stored fp16, computed in fp32
    assert len(model.vocab) == 10000


def test_shipped_model_parses_a_sentence():
    model, _ = _model()
    words = "the company said it would report a loss for the quarter".split()
    (parsed,) = parse(model, [" ".join(words)])
    assert T.leaves(parsed.tree) == words and T.is_binary(parsed.tree)
    assert parsed.layer == f"layer {model.config.parse_layer}" and parsed.oov == 0
    assert parsed.distances.shape == (len(model.rnns), len(words))
    assert parsed.tree == T.greedy(words, parsed.distances[model.config.parse_layer - 1].tolist())


def test_shipped_model_is_trained():
    """Perplexity on the first PTB validation tokens: an untrained model sits near 10,000."""
    model, _ = _model()
    ids = load_corpus(None, vocab=model.vocab, options=model.text_options, required=("valid",)).split("valid")
    loss = evaluate_ids(model, ids[:4000], batch_size=4, bptt=70)
    assert torch.tensor(loss).exp() < 150


def test_commands_default_to_the_shipped_model(capsys):
    assert main(["parse", "the cat sat on the mat"]) == 0
    out = capsys.readouterr().out.strip()
    assert out.startswith("(") and T.leaves(T.from_bracketed(out)) == "the cat sat on the mat".split()
    assert main(["generate", "--prompt", "the market", "--tokens", "3", "--seed", "1"]) == 0
    assert capsys.readouterr().out.startswith("the market")


def test_generate_reads_the_prompt_as_typed():
    """A prompt is split like `parse` splits a sentence: "Didn't" is "did n't", "$5" is "$ N"."""
    from onlstm.tasks.lm import generate

    model, _ = _model()
    typed = generate(model, "Stock prices didn't rise, $5 a share.", tokens=4, seed=3)
    assert typed == generate(model, "stock prices did n't rise , $ N a share .", tokens=4, seed=3)
    assert typed != generate(model, "<unk> prices <unk> rise , <unk> a share .", tokens=4, seed=3)  # not read as <unk>
