"""Distance pictures (onlstm.plots)."""

import pytest

from onlstm.errors import UserError
from onlstm.plots import plot_distances

WORDS = "the cat sat on the mat".split()


def test_png_and_svg(tmp_path):
    layers = [[0.1, 0.2, 0.9, 0.5, 0.3, 0.1], [0.0, 0.4, 0.8, 0.6, 0.2, 0.0]]
    png = plot_distances(WORDS, layers, tmp_path / "d.png", title="a sentence")
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    svg = plot_distances(WORDS, {"layer 2": layers[0], "mean": layers[1]}, tmp_path / "sub" / "d.svg")
    text = svg.read_text()
    assert text.lstrip().startswith("<?xml") and "<svg" in text


def test_accepts_tensor(tmp_path):
    torch = pytest.importorskip("torch")
    out = plot_distances(WORDS, torch.rand(3, len(WORDS)), tmp_path / "t.png")
    assert out.stat().st_size > 0


def test_errors(tmp_path):
    with pytest.raises(UserError, match=r"\.png or \.svg"):
        plot_distances(WORDS, [[0.0] * 6], tmp_path / "d.jpg")
    with pytest.raises(ValueError, match="5 distances for 6 words"):
        plot_distances(WORDS, [[0.0] * 5], tmp_path / "d.png")
    with pytest.raises(ValueError, match="no layer"):
        plot_distances(WORDS, [], tmp_path / "d.png")
    (tmp_path / "file").write_text("x")
    with pytest.raises(UserError, match="cannot write"):
        plot_distances(WORDS, [[0.0] * 6], tmp_path / "file" / "d.png")
