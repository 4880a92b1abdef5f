"""The bundled Chinese model (zh-onlstm): it is there, loads, parses, and is a trained model."""

import json

import torch

from onlstm import trees as T
from onlstm.bundled import model_path
from onlstm.corpus import load_corpus
from onlstm.bundled import resource
from onlstm.lm import LanguageModel
from onlstm.tasks.parse import parse

try:  # the task module moved during the restructure
    from onlstm.tasks.lm import evaluate_ids
except ImportError:  # pragma: no cover
    from onlstm.train import evaluate_ids  # type: ignore[no-redef]

NAME = "zh-onlstm"


def _model():
    path = model_path(NAME)
    assert path is not None, f"the package must ship src/onlstm/resources/models/{NAME}/model.safetensors"
    return LanguageModel.from_pretrained(path), path


def test_shipped_files_config_and_size():
    model, path = _model()
    assert sum(f.stat().st_size for f in path.iterdir()) <= 20e6
    assert (path / "README.md").is_file(), "the model card"
    config = json.loads((path / "config.json").read_text())
    assert config["model"]["cell"] == "onlstm" and config["model"]["parse_layer"] is not None
    assert config["model"]["text"]["digits_to_N"] is True
    assert all(p.dtype == torch.float32 for p in model.parameters())  # stored fp16, computed in fp32
    for word in ("的", "中国", "我们") if not model.text_options.char_level else ("的", "中", "国"):
        assert word in model.vocab


def test_parses_a_segmented_sentence():
    model, _ = _model()
    words = ["苹果", "的", "颜色", "是", "什么"]
    (parsed,) = parse(model, [words])
    assert T.leaves(parsed.tree) == words and T.is_binary(parsed.tree)
    assert parsed.distances.shape == (len(model.rnns), len(words))
    assert parsed.layer == f"layer {model.config.parse_layer}"
    assert parsed.tree == T.greedy(words, parsed.distances[model.config.parse_layer - 1].tolist())


def test_is_trained_on_pku_valid():
    """Perplexity on the first 4,000 tokens of the PKU valid split: an untrained model sits
    near the vocabulary size (4,609 characters); the shipped one measures 82 on all of it."""
    model, _ = _model()
    ids = load_corpus(resource("pku_199801"), vocab=model.vocab, options=model.text_options,
                      required=("valid",)).split("valid")
    loss = evaluate_ids(model, ids[:4000], batch_size=4, bptt=70)
    assert torch.tensor(loss).exp() < (150.0 if model.text_options.char_level else 1500.0)
