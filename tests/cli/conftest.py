"""Shared fixtures of the command-line tests."""

import pytest

from onlstm.tasks import lm as T
from lm_helpers import write_small_corpus


@pytest.fixture(scope="session")
def tiny_model(tmp_path_factory):
    root = tmp_path_factory.mktemp("tiny")
    corpus = write_small_corpus(root / "corpus")
    cfg = T.resolve_config("tiny", overrides=dict(data=str(corpus), epochs=1, hidden_sizes=[24, 24, 16]))
    T.train(cfg, root / "run", log=lambda s: None, progress=False)
    return root / "run"
