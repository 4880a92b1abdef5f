"""Pictures of syntactic distances, like the figure of the ON-LSTM paper.

:func:`plot_distances` draws, for one sentence, one bar chart per layer (the distance of
every word, docs/spec.md §2; optionally the forget and input distances side by side)
stacked above the words. matplotlib is imported only when a picture is
drawn, with the non-interactive Agg backend, so this works without a display.
"""

from __future__ import annotations

import unicodedata
import warnings
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Optional, Union

from .errors import UserError

__all__ = ["plot_distances", "PLOT_SUFFIXES"]

#: File types :func:`plot_distances` can write.
PLOT_SUFFIXES = (".png", ".svg")

Distances = Sequence[float]


def _layers(
    distances_by_layer: Union[Mapping[str, Distances], Sequence[Distances]], n_words: int
) -> list[tuple[str, list[float]]]:
    """``(name, values)`` per layer; unnamed layers are called ``layer 1``, ``layer 2``..."""
    if isinstance(distances_by_layer, Mapping):
        items = [(str(name), values) for name, values in distances_by_layer.items()]
    else:
        items = [(f"layer {i + 1}", values) for i, values in enumerate(distances_by_layer)]
    if not items:
        raise ValueError("no layer to plot")
    layers = []
    for name, values in items:
        floats = [float(v) for v in values]
        if len(floats) != n_words:
            raise ValueError(f"{name}: {len(floats)} distances for {n_words} words")
        layers.append((name, floats))
    return layers


def plot_distances(
    words: Sequence[str],
    distances_by_layer: Union[Mapping[str, Distances], Sequence[Distances]],
    path: Union[str, Path],
    title: Optional[str] = None,
    input_distances: Union[Mapping[str, Distances], Sequence[Distances], None] = None,
) -> Path:
    """Draw the distances of every layer as bars under which the words are written.

    ``distances_by_layer`` is either a sequence of per-layer sequences (a list of lists, or
    a ``layers x words`` array or tensor) or a mapping ``name -> distances`` (for example
    ``{"layer 2": d2, "mean": d}``); each has one value per word. ``input_distances``, shaped
    the same (same layers, in the same order), adds the input distances d_i: each layer's
    panel then shows d_f and d_i side by side per word, with a legend. The picture is
    written to ``path``, whose suffix chooses the format (``.png`` or ``.svg``); missing
    parent folders are created. Returns the path written.

    Raises :class:`~onlstm.errors.UserError` for another suffix or an unwritable path, and
    ``ValueError`` when the numbers of words and distances differ.
    """
    path = Path(path)
    if path.suffix.lower() not in PLOT_SUFFIXES:
        raise UserError(
            f"{path}: cannot draw to a {path.suffix or 'suffix-less'} file; "
            f"use a name ending in {' or '.join(PLOT_SUFFIXES)}"
        )
    if len(words) == 0:
        raise ValueError("no word to plot")
    layers = _layers(distances_by_layer, len(words))
    second = None
    if input_distances is not None:
        second = _layers(input_distances, len(words))
        if len(second) != len(layers):
            raise ValueError(f"{len(second)} layers of input distances for {len(layers)} layers of distances")

    import matplotlib

    matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt

    rc, missing = _font_settings(list(words) + [title or ""])
    if missing and not _cjk_warning_given:
        _give_cjk_warning()
    with plt.rc_context(rc), warnings.catch_warnings():
        if missing:
            warnings.filterwarnings("ignore", message=r"Glyph \d+ .* missing from font")
        _draw(plt, words, layers, second, path, title)
    return path


#: Whether this process already said that no CJK font is installed (once is enough: a demo
#: draws several pictures, and Python's own once-per-place rule is reset by every
#: ``warnings.catch_warnings`` block).
_cjk_warning_given = False


def _give_cjk_warning() -> None:
    global _cjk_warning_given
    _cjk_warning_given = True
    warnings.warn("no font with Chinese/Japanese/Korean characters is installed (for example the "
                  "fonts-noto-cjk package): those words are drawn as boxes", stacklevel=3)


#: Fonts with CJK characters, tried in this order when a word needs one.
CJK_FONTS = ("Noto Sans CJK SC", "Noto Sans CJK TC", "Noto Sans CJK JP", "Noto Sans SC", "Noto Sans TC",
             "Source Han Sans SC", "Source Han Sans CN", "WenQuanYi Zen Hei", "WenQuanYi Micro Hei",
             "Droid Sans Fallback", "AR PL UMing CN", "SimHei", "Microsoft YaHei", "PingFang SC",
             "Heiti SC", "Arial Unicode MS")


def _font_settings(texts: Sequence[str]) -> tuple[dict, bool]:
    """matplotlib settings for drawing ``texts``, and whether a needed CJK font is missing:
    when a text holds wide East Asian characters, the installed fonts of `CJK_FONTS` follow
    the default font as fallbacks."""
    if not any(unicodedata.east_asian_width(c) in "WF" for t in texts for c in t):
        return {}, False
    from matplotlib import font_manager, rcParams

    installed = {f.name for f in font_manager.fontManager.ttflist}
    found = [name for name in CJK_FONTS if name in installed]
    if not found:
        return {}, True
    return {"font.family": ["sans-serif"], "font.sans-serif": list(rcParams["font.sans-serif"][:1]) + found}, False


def _draw(plt, words, layers, second, path: Path, title: Optional[str]) -> None:
    width = max(4.0, 0.55 * len(words) + 1.0)
    height = 0.5 + 1.3 * len(layers)
    fig, axes = plt.subplots(
        len(layers), 1, sharex=True, figsize=(width, height), squeeze=False
    )
    positions = list(range(len(words)))
    every = layers + (second or [])
    top = max(max(values) for _, values in every)
    bottom = min(0.0, min(min(values) for _, values in every))
    try:
        for k, (axis, (name, values)) in enumerate(zip(axes[:, 0], layers)):
            if second is None:
                axis.bar(positions, values, width=0.7, color="tab:blue")
            else:
                axis.bar([x - 0.2 for x in positions], values, width=0.4, color="tab:blue", label="d_f (forget)")
                axis.bar([x + 0.2 for x in positions], second[k][1], width=0.4, color="tab:orange",
                         label="d_i (input)")
                if k == 0:
                    axis.legend(fontsize=7, loc="lower right", bbox_to_anchor=(1.0, 1.0), frameon=False, ncol=2)
            axis.set_ylabel(name, rotation=0, ha="right", va="center")
            axis.set_ylim(bottom, top * 1.05 if top > 0 else 1.0)
            axis.spines["top"].set_visible(False)
            axis.spines["right"].set_visible(False)
            axis.tick_params(axis="y", labelsize=7)
        last = axes[-1, 0]
        last.set_xticks(positions)
        rotate = max(len(w) for w in words) > 6 or len(words) > 20
        last.set_xticklabels(
            list(words), rotation=60 if rotate else 0, ha="right" if rotate else "center"
        )
        last.set_xlim(-0.6, len(words) - 0.4)
        if title:
            fig.suptitle(title)
        fig.tight_layout()
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            fig.savefig(path, dpi=150)
        except OSError as err:
            raise UserError(f"{path}: cannot write the picture: {err.strerror or err}") from None
    finally:
        plt.close(fig)
