"""Small things the viewer's tests share: a tiny random ON-LSTM model folder (PTB tokenizer,
3 layers, parse layer 2) and a three-sentence bracketed treebank."""

import socket

import torch

from onlstm.lm import LanguageModel, LMConfig
from onlstm.text import TextOptions, Vocabulary

TREEBANK = ("( (S (NP (DT The) (NN cat)) (VP (VBD sat) (PP (IN on) (NP (DT the) (NN mat)))) (. .)) )\n"
            "( (S (NP (DT A) (NN dog)) (VP (VBD ran) (ADVP (RB away)))) )\n"
            "( (S (NP (DT The) (NN company)) (VP (VBD said) (SBAR (S (NP (PRP it)) (VP (VBD lost) "
            "(NP (NN money) (CD 12) (NNS times))))))) )\n")
WORDS = "the cat sat on mat a dog ran away company said it lost money N times".split()


def write_tiny_model(folder, seed: int = 0):
    """A random 3-layer ON-LSTM (8-12-12-8, chunks of 4) knowing :data:`WORDS`; returns the folder."""
    torch.manual_seed(seed)
    vocab = Vocabulary(["<eos>", "<unk>"] + WORDS)
    cfg = LMConfig(vocab_size=len(vocab), emb_size=8, hidden_sizes=[12, 12, 8], chunk_size=4,
                   text=TextOptions(tokenizer="ptb").to_dict(), parse_layer=2)
    LanguageModel(cfg, vocab).save_pretrained(folder)
    return folder


def write_treebank(path):
    path.write_text(TREEBANK)
    return path


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]
