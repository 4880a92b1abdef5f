"""Small test inputs: a corpus folder cut from the bundled PTB, a tiny untrained model folder."""

import gzip

import torch

from onlstm.bundled import resource
from onlstm.lm import LanguageModel, LMConfig
from onlstm.text import Vocabulary


def write_small_corpus(folder, lines=(300, 40, 40)):
    folder.mkdir(parents=True, exist_ok=True)
    root = resource("ptb")
    for split, n in zip(("train", "valid", "test"), lines):
        text = gzip.decompress((root / f"{split}.txt.gz").read_bytes()).decode().splitlines()[:n]
        (folder / f"{split}.txt").write_text("\n".join(text) + "\n")
    return folder


def write_tiny_model(path, words):
    """A tiny, untrained ON-LSTM language model folder at ``path`` (seeded random weights;
    vocabulary ``<eos>``, ``<unk>`` and ``words``; layers 16 and 8, chunk 4)."""
    torch.manual_seed(0)
    vocab = Vocabulary(["<eos>", "<unk>"] + list(words))
    cfg = LMConfig(vocab_size=len(vocab), emb_size=8, hidden_sizes=[16, 8], chunk_size=4)
    LanguageModel(cfg, vocab).save_pretrained(path)
    return path
