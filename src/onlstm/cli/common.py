"""Helpers shared by the subcommands: the --model argument and loading it."""

from __future__ import annotations

from pathlib import Path

from ..errors import UserError
from ..bundled import default_model_path


def add_model_argument(parser, positional: bool = False) -> None:
    text = "model folder (a training run folder works); default: the bundled pretrained model"
    if positional:
        parser.add_argument("model", nargs="?", default=None, metavar="MODEL", help=text)
    else:
        parser.add_argument("--model", default=None, metavar="DIR", help=text)


def load_model(path):
    """Load a LanguageModel folder, or the bundled default when ``path`` is None."""
    from ..lm import LanguageModel

    if path is None:
        path = default_model_path()
        if path is None:
            raise UserError("no --model given and no pretrained model is bundled with this version; train one with "
                            "`onlstm train --preset cpu --out runs/cpu` and pass --model runs/cpu")
    return LanguageModel.from_pretrained(path), Path(path)
