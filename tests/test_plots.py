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


def test_forget_and_input_distances_side_by_side(tmp_path):
    forget = [[0.1, 0.2, 0.9, 0.5, 0.3, 0.1], [0.0, 0.4, 0.8, 0.6, 0.2, 0.0]]
    inputs = [[0.5, 0.5, 0.1, 0.2, 0.3, 0.9], [0.7, 0.1, 0.2, 0.6, 0.2, 0.3]]
    svg = plot_distances(WORDS, forget, tmp_path / "both.svg", input_distances=inputs).read_text()
    assert "d_f (forget)" in svg and "d_i (input)" in svg
    alone = plot_distances(WORDS, forget, tmp_path / "one.svg").read_text()
    assert "d_i (input)" not in alone
    with pytest.raises(ValueError, match="1 layers of input distances for 2 layers"):
        plot_distances(WORDS, forget, tmp_path / "x.png", input_distances=inputs[:1])
    with pytest.raises(ValueError, match="5 distances for 6 words"):
        plot_distances(WORDS, forget, tmp_path / "x.png", input_distances=[[0.0] * 5, [0.0] * 6])


def test_chinese_words_use_an_installed_cjk_font_or_warn(tmp_path, monkeypatch):
    import warnings

    from matplotlib import font_manager

    from onlstm import plots

    words = ["苹果", "的", "颜色"]
    installed = {f.name for f in font_manager.fontManager.ttflist}
    rc, missing = plots._font_settings(words)
    assert missing == (not any(name in installed for name in plots.CJK_FONTS))
    assert plots._font_settings(["the", "cat"]) == ({}, False)
    monkeypatch.setattr(plots, "CJK_FONTS", ())  # as on a machine without one
    monkeypatch.setattr(plots, "_cjk_warning_given", False)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        plot_distances(words, [[0.1, 0.2, 0.3]], tmp_path / "zh.png")
        plot_distances(words[::-1], [[0.3, 0.2, 0.1]], tmp_path / "zh2.png")
    messages = [str(w.message) for w in caught]
    # one clear warning for the process: not one per glyph, not one per picture
    assert len(messages) == 1 and "fonts-noto-cjk" in messages[0]
    assert (tmp_path / "zh.png").stat().st_size > 1000
