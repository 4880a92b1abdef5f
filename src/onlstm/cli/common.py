"""Helpers shared by the subcommands: the --model argument and loading it."""

from __future__ import annotations

from pathlib import Path
from typing import Dict, Optional

from ..errors import UserError
from .. import bundled

#: Short names of bundled models, beside the folder names (used only when that model ships).
ALIASES = {"en": "ptb-onlstm", "english": "ptb-onlstm", "zh": "zh-onlstm", "chinese": "zh-onlstm"}


def add_model_argument(parser, positional: bool = False) -> None:
    text = ("a bundled model by name (" + _names_text() + ") or a model folder (a training run folder "
            "works); default: the bundled English model")
    if positional:
        parser.add_argument("model", nargs="?", default=None, metavar="MODEL", help=text)
    else:
        parser.add_argument("--model", default=None, metavar="NAME|DIR", help=text)


def add_backward_model_argument(parser) -> None:
    """``--backward-model``: a right-to-left model whose distances join --model's."""
    parser.add_argument("--backward-model", default=None, metavar="DIR",
                        help="a right-to-left model of the same language (trained with `onlstm train --direction "
                        "backward`, as many layers as --model): each boundary is scored by the mean of both "
                        "models' distances, layer by layer (docs/results.md §11: +4 to +6 F1 on the WSJ sample)")


def bundled_aliases() -> Dict[str, str]:
    """Every name that selects a bundled model -> its folder name: the folder names, the part
    before the first ``-`` (``ptb``, ``zh``), and :data:`ALIASES`."""
    names = bundled.model_names()
    out: Dict[str, str] = {}
    for name in names:
        out.setdefault(name.split("-")[0], name)
    out.update({alias: name for alias, name in ALIASES.items() if name in names})
    out.update({name: name for name in names})
    return out


def _names_text() -> str:
    by_model: Dict[str, list] = {}
    for alias, name in sorted(bundled_aliases().items()):
        if alias != name:
            by_model.setdefault(name, []).append(alias)
    if not by_model and not bundled.model_names():
        return "none bundled"
    return ", ".join(f"{name} ({'/'.join(by_model.get(name, []))})" if by_model.get(name) else name
                     for name in bundled.model_names())


def resolve_model(arg: Optional[str], flag: str = "--model") -> Path:
    """The folder a --model argument (or ``flag``) names: None -> the bundled default; an
    existing folder -> itself; a bundled model's name or alias -> its folder. Anything else is
    a UserError that names the flag and lists the bundled names."""
    if arg is None:
        path = bundled.default_model_path()
        if path is None:
            raise UserError("no --model given and no pretrained model is bundled with this version; train one with "
                            "`onlstm train --preset cpu --out runs/cpu` and pass --model runs/cpu")
        return path
    path = Path(arg)
    if path.is_dir():
        return path
    name = bundled_aliases().get(str(arg).lower())
    if name is not None:
        return bundled.model_path(name)
    raise UserError(f"{flag} {arg}: no such model folder, and not the name of a bundled model "
                    f"(bundled: {_names_text()})")


def load_model(path, flag: str = "--model"):
    """Load a LanguageModel from a folder or a bundled model's name (see :func:`resolve_model`;
    errors name ``flag``); the bundled default when ``path`` is None."""
    from ..lm import LanguageModel

    folder = resolve_model(None if path is None else str(path), flag)
    return LanguageModel.from_pretrained(folder), folder
