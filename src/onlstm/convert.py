"""Load checkpoints of the published ON-LSTM code (yikangshen/Ordered-Neurons).

The published stack stores layer k as ``cells.{k}.ih.0.weight`` / ``cells.{k}.ih.0.bias``
(input-to-hidden) and ``cells.{k}.hh.weight`` / ``cells.{k}.hh.bias`` (hidden-to-hidden,
with DropConnect), usually under a prefix such as ``rnn.``; its language model adds
``encoder.weight`` and ``decoder.weight`` / ``decoder.bias``. The gate rows are already in
our order. Its DropConnect keeps the recurrent weight unscaled in training and multiplies it
by (1 - p) at evaluation; ours is inverted (scaled by 1/(1-p) in training, used as stored at
evaluation), so the converted ``weight_hh`` is the published one times (1 - p). Both then
give the same evaluation outputs, and the same training-time distribution.
"""

from __future__ import annotations

import re
from typing import Dict, Mapping

from torch import Tensor

_CELL_KEY = re.compile(r"^(?P<prefix>.*?)cells\.(?P<layer>\d+)\.(?P<part>ih\.0|hh)\.(?P<kind>weight|bias)$")


def convert_published_state_dict(
    state_dict: Mapping[str, Tensor], dropconnect: float, target: str = "lm"
) -> Dict[str, Tensor]:
    """Rename (and rescale) a published state dict into ours.

    Args:
        state_dict: tensors keyed as in the published code.
        dropconnect: the ``wdrop`` the published model was trained with (0.45 in the paper);
            the recurrent weights are multiplied by ``1 - dropconnect``.
        target: ``"lm"`` gives the keys of :class:`onlstm.LanguageModel`
            (``rnns.{k}.weight_ih_l0``, ``encoder.weight``, ``decoder.*``);
            ``"layer"`` gives those of one multi-layer :class:`onlstm.ONLSTM`
            (``weight_ih_l{k}``; every layer must then have the same hidden size).
    Raises:
        ValueError: for an unknown target, a bad dropconnect, or a dict with no ON-LSTM cells.
    """
    if target not in ("lm", "layer"):
        raise ValueError(f"target must be 'lm' or 'layer', got {target!r}")
    if not 0.0 <= dropconnect < 1.0:
        raise ValueError(f"dropconnect must be in [0, 1), got {dropconnect!r}")
    out: Dict[str, Tensor] = {}
    found = False
    for key, value in state_dict.items():
        match = _CELL_KEY.match(key)
        if match is None:
            if key in ("encoder.weight", "decoder.weight", "decoder.bias") and target == "lm":
                out[key] = value.clone()
            continue
        found = True
        layer, part, kind = int(match["layer"]), match["part"], match["kind"]
        direction = "ih" if part == "ih.0" else "hh"
        name = f"{kind}_{direction}_l{layer}" if target == "layer" else f"rnns.{layer}.{kind}_{direction}_l0"
        value = value.clone()
        if direction == "hh" and kind == "weight":
            value = value * (1.0 - dropconnect)
        out[name] = value
    if not found:
        raise ValueError("state_dict has no keys of the form '[prefix]cells.{k}.ih.0.weight': not a published ON-LSTM")
    return out
