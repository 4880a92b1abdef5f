"""Checks and word forms shared by the tasks."""

from __future__ import annotations

import re
import unicodedata

from ..errors import UserError
from ..treebank import normalize_word

__all__ = ["require_onlstm", "vocabulary_form"]


def require_onlstm(model, purpose: str = "parsing") -> None:
    """A `UserError` unless ``model`` (a `onlstm.lm.LanguageModel`) has ON-LSTM layers:
    ``purpose`` (e.g. ``"parsing"``, ``"the demo"``) needs the master forget gate."""
    if model.config.cell != "onlstm":
        raise UserError(f"this model is an LSTM baseline (cell={model.config.cell!r}); {purpose} needs an ON-LSTM model")


_NUMBER = re.compile(r"N(?:[.,:/]N)+")  # "3.5", "1,000", "10:30" after digits -> N


def vocabulary_form(model, word: str) -> str:
    """The word as the vocabulary knows it: itself; else lower-cased with digit runs as ``N``
    (the PTB convention, e.g. "The" -> "the", "1990" -> "N"); else that of its NFKC form
    (full-width "１９９８" -> "N"); else ``N`` for a number written with separators ("3.5",
    "1,000") and for "%" when the vocabulary has no "%" (Mikolov's PTB writes "3.5 %" as
    "N N"); else itself (read as <unk>)."""
    vocab = model.vocab
    if word in vocab:
        return word
    for alt in (normalize_word(word), normalize_word(unicodedata.normalize("NFKC", word))):
        if alt in vocab:
            return alt
        if (_NUMBER.fullmatch(alt) or alt == "%") and "N" in vocab:
            return "N"
    return word
