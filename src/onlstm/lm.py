"""`LanguageModel`: embedding -> stack of ON-LSTM (or LSTM) layers -> tied decoder.

The AWD-LSTM recipe of the paper (docs/spec.md §4): per-layer sizes (400 -> 1150 -> 1150 -> 400),
decoder tied to the embedding, embedding dropout (whole words), locked (variational)
dropout on the input, between layers and on the output, DropConnect on the recurrent
weights (one mask per forward call), and the activation regularisers AR / TAR computed
from the last layer's outputs. ``cell="lstm"`` builds the same model with
``torch.nn.LSTM`` layers (AWD-LSTM), so comparisons run through one pipeline.

As the published code (docs/spec.md §4): DropConnect in ``config.dropconnect_convention``
(new ON-LSTM models: ``"published"``, weights unscaled in training and times (1-p) at
evaluation; new LSTM models: AWD-LSTM's ``"rescaled"``; folders saved before the key existed
load as ``"rescaled"``, as they were trained), embedding U(±0.1), decoder bias 0, and the
layers' ``nn.Linear``-style initialisation (see :mod:`onlstm.layer`).

A model folder holds ``model.safetensors`` (weights), ``config.json`` and ``vocab.json``;
:meth:`LanguageModel.save_pretrained` / :meth:`LanguageModel.from_pretrained` write and read
it, never unpickling anything.
"""

from __future__ import annotations

import json
import math
from dataclasses import asdict
from pathlib import Path
from typing import List, NamedTuple, Optional, Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from . import __version__, gemm
from .text import EOS, TextOptions, Vocabulary, tokenize
from .errors import UserError
from .fileio import atomic_write_bytes, atomic_write_text
from .layer import ONLSTM, drop_connect
from .lm_config import CONFIG_FORMAT, CONFIG_VERSION, LMConfig, check_weights_header, read_model_config

WEIGHTS_FILE, CONFIG_FILE, VOCAB_FILE = "model.safetensors", "config.json", "vocab.json"


class LMOutput(NamedTuple):
    """``logits`` (T, B, V) (None when called with ``decode=False``); ``hidden``: per-layer (h, c) states; ``last_raw`` / ``last_dropped``:
    the last layer's outputs before / after output dropout (for TAR / AR); ``distances``:
    per-layer forget distances d_f = 1 - mean(f~) (L, T, B) and ``input_distances``: per-layer
    input distances d_i = mean(i~) (L, T, B) (docs/spec.md §2), both when asked for, else None."""

    logits: Tensor
    hidden: list
    last_raw: Tensor
    last_dropped: Tensor
    distances: Optional[Tensor]
    input_distances: Optional[Tensor] = None


def locked_dropout(x: Tensor, p: float, training: bool) -> Tensor:
    """Variational dropout: one mask per sequence, shared over time. x: (T, B, F)."""
    if not training or p == 0.0:
        return x
    mask = x.new_empty(1, x.shape[1], x.shape[2]).bernoulli_(1.0 - p) / (1.0 - p)
    return x * mask


def embedding_dropout(weight: Tensor, p: float, training: bool) -> Tensor:
    """Drop whole words: zero rows of the embedding matrix with probability p."""
    if not training or p == 0.0:
        return weight
    mask = weight.new_empty(weight.shape[0], 1).bernoulli_(1.0 - p) / (1.0 - p)
    return weight * mask


class WeightDropLSTM(nn.Module):
    """A one-layer ``nn.LSTM`` with DropConnect on ``weight_hh_l0`` (AWD-LSTM's weight drop),
    in either convention of :func:`~onlstm.layer.drop_connect` (AWD-LSTM's own ``WeightDrop``
    is ``"rescaled"``); shaped like a one-layer :class:`~onlstm.ONLSTM`. ``nn.LSTM``'s init."""

    def __init__(self, input_size: int, hidden_size: int, wdrop: float, convention: str = "rescaled"):
        super().__init__()
        self.lstm = nn.LSTM(input_size, hidden_size)
        self.wdrop = wdrop
        self.convention = convention

    def forward(self, x: Tensor, hx=None):
        if self.wdrop > 0 and (self.training or self.convention == "published"):
            params = dict(self.lstm.named_parameters())
            params["weight_hh_l0"] = drop_connect(params["weight_hh_l0"], self.wdrop, self.training, self.convention)
            return torch.func.functional_call(self.lstm, params, (x, hx))
        return self.lstm(x, hx)


class LanguageModel(nn.Module):
    """Word-level language model with an ON-LSTM (or LSTM) stack and a tied decoder.

    ``forward(tokens, hidden=None, return_distances=False)``: ``tokens`` (T, B) ids; returns
    :class:`LMOutput`. ``vocab`` (a :class:`~onlstm.text.Vocabulary`) is attached when the model
    is built by :meth:`from_pretrained` or the training pipeline.
    """

    def __init__(self, config: LMConfig, vocab: Optional[Vocabulary] = None):
        super().__init__()
        self.config = config
        self.vocab = vocab
        self.training_info: Optional[dict] = None  # set by from_pretrained (e.g. the training data folder)
        if vocab is not None and len(vocab) != config.vocab_size:
            raise UserError(f"vocabulary has {len(vocab)} tokens but the config says vocab_size={config.vocab_size}")
        c = config
        self.encoder = nn.Embedding(c.vocab_size, c.emb_size)
        sizes = [c.emb_size] + list(c.hidden_sizes)
        layers = []
        for k in range(len(c.hidden_sizes)):
            if c.cell == "onlstm":
                layers.append(ONLSTM(sizes[k], sizes[k + 1], chunk_size=c.chunk_size, dropconnect=c.wdrop,
                                     master_input=c.master_input, dropconnect_convention=c.dropconnect_convention))
            else:
                layers.append(WeightDropLSTM(sizes[k], sizes[k + 1], c.wdrop, c.dropconnect_convention))
        self.rnns = nn.ModuleList(layers)
        self.decoder = nn.Linear(c.emb_size, c.vocab_size)
        self.decoder.weight = self.encoder.weight  # tied
        nn.init.uniform_(self.encoder.weight, -0.1, 0.1)
        nn.init.zeros_(self.decoder.bias)

    @property
    def text_options(self) -> TextOptions:
        return TextOptions.from_dict(self.config.text)

    def reading_order(self, ids):
        """A token sequence (1-D tensor or list of ids) in the order this model reads it:
        reversed for a ``direction="backward"`` model (trained right to left), unchanged for a
        forward one. Applied twice it gives the original order back."""
        if self.config.direction == "forward":
            return ids
        return ids.flip(0) if isinstance(ids, Tensor) else list(reversed(ids))

    def init_hidden(self, batch_size: int) -> list:
        w = self.encoder.weight
        return [(w.new_zeros(1, batch_size, n), w.new_zeros(1, batch_size, n)) for n in self.config.hidden_sizes]

    def forward(self, tokens: Tensor, hidden: Optional[list] = None, return_distances: bool = False,
                decode: bool = True) -> LMOutput:
        c = self.config
        if tokens.dim() != 2:
            raise ValueError(f"tokens must be (seq, batch), got shape {tuple(tokens.shape)}")
        if hidden is None:
            hidden = self.init_hidden(tokens.shape[1])
        weight = embedding_dropout(self.encoder.weight, c.dropoute, self.training)
        x = locked_dropout(F.embedding(tokens, weight), c.dropouti, self.training)
        new_hidden, distances, input_distances = [], [], []
        for k, rnn in enumerate(self.rnns):
            if return_distances and c.cell == "onlstm":
                x, h, dist = rnn(x, hidden[k], return_distances=True)
                distances.append(dist.forget[0])
                input_distances.append(dist.input[0])
            else:
                x, h = rnn(x, hidden[k])
            new_hidden.append(h)
            if k < len(self.rnns) - 1:
                x = locked_dropout(x, c.dropouth, self.training)
        last_raw = x
        last_dropped = locked_dropout(x, c.dropout, self.training)
        logits = gemm.linear(last_dropped, self.decoder.weight, self.decoder.bias) if decode else None  # distances alone need no softmax
        dist = torch.stack(distances) if distances else None
        input_dist = torch.stack(input_distances) if input_distances else None
        return LMOutput(logits, new_hidden, last_raw, last_dropped, dist, input_dist)

    # ----------------------------------------------------------------------------------
    # Sentences: log-probabilities and distances, in padded batches
    # ----------------------------------------------------------------------------------
    def encode_sentence(self, sentence) -> List[int]:
        """Token ids of a sentence (a string is tokenized with the model's text options)."""
        if self.vocab is None:
            raise UserError("this model has no vocabulary attached")
        tokens = tokenize(sentence, self.text_options) if isinstance(sentence, str) else list(sentence)
        return self.vocab.encode(tokens)

    def _padded(self, id_lists: Sequence[Sequence[int]], pad: int):
        device = self.encoder.weight.device
        T = max(len(s) for s in id_lists)
        batch = torch.full((T, len(id_lists)), pad, dtype=torch.long)
        for b, s in enumerate(id_lists):
            batch[: len(s), b] = torch.as_tensor(s, dtype=torch.long)
        return batch.to(device)

    @torch.no_grad()
    def sentence_logprobs(self, sentences: Sequence, batch_size: int = 64) -> List[float]:
        """Total natural-log probability of each sentence, ``<eos>`` included, fresh state each.

        Sentences are fed as ``<eos> w_1 .. w_T`` predicting ``w_1 .. w_T <eos>``; right padding
        cannot affect the real positions of a left-to-right model, so batches are padded. A
        backward model reads the sentence reversed: the same probability, factored right to left."""
        was_training = self.training
        self.eval()
        eos = self.vocab.index(EOS)
        ids = [self.reading_order(self.encode_sentence(s)) for s in sentences]
        out: List[float] = [0.0] * len(ids)
        order = sorted(range(len(ids)), key=lambda i: len(ids[i]))
        for start in range(0, len(order), batch_size):
            chunk = order[start : start + batch_size]
            inputs = self._padded([[eos] + ids[i] for i in chunk], eos)
            targets = self._padded([ids[i] + [eos] for i in chunk], eos)
            logp = torch.log_softmax(self(inputs).logits.float(), -1).gather(-1, targets.unsqueeze(-1)).squeeze(-1)
            for b, i in enumerate(chunk):
                out[i] = float(logp[: len(ids[i]) + 1, b].sum())
        self.train(was_training)
        return out

    @torch.no_grad()
    def sentence_distances(self, sentences: Sequence, batch_size: int = 64) -> List[Tensor]:
        """Forget distances of every layer for each sentence: a list of (layers, T) tensors.

        As the paper's parser: ``<eos> w_1 .. w_T <eos>`` with a fresh zero state, the two
        boundary positions dropped. Batched with right padding (harmless, see above). A
        backward model reads ``<eos> w_T .. w_1 <eos>``; its distances come back in word order."""
        if self.config.cell != "onlstm":
            raise UserError("distances need an ON-LSTM model (this one has cell='lstm')")
        was_training = self.training
        self.eval()
        eos = self.vocab.index(EOS)
        ids = [self.reading_order(self.encode_sentence(s)) for s in sentences]
        out: List[Tensor] = [None] * len(ids)  # type: ignore[list-item]
        order = sorted(range(len(ids)), key=lambda i: len(ids[i]))
        for start in range(0, len(order), batch_size):
            chunk = order[start : start + batch_size]
            inputs = self._padded([[eos] + ids[i] + [eos] for i in chunk], eos)
            dist = self(inputs, return_distances=True, decode=False).distances  # (L, T, B)
            for b, i in enumerate(chunk):
                d = dist[:, 1 : len(ids[i]) + 1, b].float().cpu()
                out[i] = d if self.config.direction == "forward" else d.flip(1)
        self.train(was_training)
        return out

    # ----------------------------------------------------------------------------------
    # Save / load
    # ----------------------------------------------------------------------------------
    def weights_for_saving(self) -> dict:
        """State dict without the tied decoder weight (safetensors refuses shared tensors)."""
        return {k: v.detach().contiguous() for k, v in self.state_dict().items() if k != "decoder.weight"}

    def save_pretrained(self, path, extra_config: Optional[dict] = None) -> None:
        """Write model.safetensors, config.json and vocab.json into ``path`` (atomically and
        durably per file, with the folder's usual permissions; OS errors are UserErrors)."""
        from safetensors.torch import save

        path = Path(path)
        try:
            path.mkdir(parents=True, exist_ok=True)
        except OSError as err:
            raise UserError(f"{path}: cannot create the model folder ({err.strerror or err})") from None
        atomic_write_bytes(path / WEIGHTS_FILE, save(self.weights_for_saving(), metadata={"format": CONFIG_FORMAT}))
        config = {"format": CONFIG_FORMAT, "version": CONFIG_VERSION, "onlstm_version": __version__,
                  "model": asdict(self.config)}
        if extra_config:
            config.update(extra_config)
        atomic_write_text(path / CONFIG_FILE, json.dumps(config, indent=2) + "\n")
        if self.vocab is not None:
            self.vocab.save(path / VOCAB_FILE)

    @classmethod
    def from_pretrained(cls, path, map_location="cpu") -> "LanguageModel":
        """Load a model folder written by :meth:`save_pretrained` (or a training run folder).

        The folder is untrusted input: config.json, vocab.json and the header of
        model.safetensors are checked against each other (:mod:`onlstm.lm_config`) before the
        model is built; float16 / bfloat16 / float64 weights are converted to float32."""
        from safetensors import SafetensorError
        from safetensors.torch import load_file

        path = Path(path)
        if not path.is_dir():
            raise UserError(f"{path}: not a model folder (no such directory)")
        config_path, weights_path, vocab_path = path / CONFIG_FILE, path / WEIGHTS_FILE, path / VOCAB_FILE
        if not config_path.is_file() or not weights_path.is_file():
            raise UserError(f"{path}: not a model folder (needs {CONFIG_FILE} and {WEIGHTS_FILE}; "
                            "a training run folder has them once its first epoch is validated)")
        config, raw = read_model_config(config_path)
        vocab = Vocabulary.load(vocab_path)
        if len(vocab) != config.vocab_size:
            raise UserError(f"{vocab_path}: holds {len(vocab):,} tokens but {config_path} says "
                            f"model.vocab_size={config.vocab_size:,}")
        check_weights_header(weights_path, config)
        model = cls(config, vocab)
        try:
            state = load_file(str(weights_path), device=str(map_location))
        except (SafetensorError, OSError) as err:
            raise UserError(f"{weights_path}: cannot read weights ({err})") from None
        state["decoder.weight"] = state["encoder.weight"]
        model.load_state_dict({k: v.float() for k, v in state.items()})
        model.training_info = raw.get("training")
        model.eval()
        return model

    def num_parameters(self) -> int:
        return sum(p.numel() for p in self.parameters())


def perplexity(loss: float) -> float:
    return math.exp(min(loss, 50.0))
