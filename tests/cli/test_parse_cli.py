"""``onlstm parse`` on text as people type it: bundled model names, punctuation, d_f and d_i."""

import json
import shutil

import pytest

from onlstm import bundled
from onlstm import trees as T
from onlstm.cli import main
from onlstm.cli.common import resolve_model

YORK = "The man who sold the house moved to New York."


def test_punctuation_is_split_off_and_dropped_with_the_bundled_model(capsys):
    assert main(["parse", YORK]) == 0
    captured = capsys.readouterr()
    tree = T.from_bracketed(captured.out.strip())
    assert T.leaves(tree) == "The man who sold the house moved to New York".split()
    assert "<unk>" not in captured.err and "dropped" in captured.err
    assert main(["parse", "I don't think it costs $5, \"really\".", "--format", "json"]) == 0
    (data,) = json.loads(capsys.readouterr().out)
    assert data["words"] == ["I", "do", "n't", "think", "it", "costs", "5", "really"]
    assert data["model_tokens"] == ["i", "do", "n't", "think", "it", "costs", "N", "really"]
    assert data["dropped"] == ["$", ",", '"', '"', "."] and data["oov"] == 0


def test_pretokenized_keeps_whitespace_words(capsys):
    assert main(["parse", "--pretokenized", "new york .", "--format", "json"]) == 0
    (data,) = json.loads(capsys.readouterr().out)
    assert data["words"] == ["new", "york", "."] and data["dropped"] == [] and data["oov"] == 1


def test_bundled_models_by_name(capsys):
    outputs = []
    for name in (None, "en", "ptb-onlstm", "ptb"):
        assert main(["parse", "the cat sat on the mat"] + (["--model", name] if name else [])) == 0
        outputs.append(capsys.readouterr().out)
    assert len(set(outputs)) == 1
    assert resolve_model("EN") == bundled.default_model_path()


def test_unknown_model_name_lists_the_bundled_ones(capsys):
    assert main(["parse", "a b", "--model", "klingon"]) == 2
    err = capsys.readouterr().err
    assert "klingon" in err and "ptb-onlstm" in err and "en" in err


def test_a_chinese_model_by_its_short_name(tiny_model, tmp_path, monkeypatch, capsys):
    models = tmp_path / "models"
    shutil.copytree(bundled.default_model_path(), models / "ptb-onlstm")
    shutil.copytree(tiny_model, models / "zh-onlstm", ignore=shutil.ignore_patterns("checkpoint*", "*.log"))
    monkeypatch.setattr(bundled, "MODELS", models)
    assert resolve_model("zh") == resolve_model("zh-onlstm") == resolve_model("chinese") == models / "zh-onlstm"
    assert resolve_model(None) == models / "ptb-onlstm"
    assert resolve_model(str(tiny_model)) == tiny_model  # a folder is a folder
    assert main(["parse", "a b", "--model", "nope"]) == 2
    assert "zh-onlstm (chinese/zh)" in capsys.readouterr().err


def test_json_and_table_show_forget_and_input_distances(tiny_model, capsys):
    sentence = "the company said it would report a loss"
    assert main(["parse", sentence, "--model", str(tiny_model), "--format", "json", "--layer", "2"]) == 0
    (forget,) = json.loads(capsys.readouterr().out)
    assert forget["distance"] == "forget" and len(forget["distances"]) == len(forget["input_distances"]) == 3
    assert all(len(row) == 8 for row in forget["input_distances"])
    assert forget["distances"] != forget["input_distances"]
    assert forget["tree"] == json.loads(json.dumps(T.greedy(forget["words"], forget["distances"][1])))
    assert main(["parse", sentence, "--model", str(tiny_model), "--format", "json", "--layer", "2",
                 "--distance", "input"]) == 0
    (inputs,) = json.loads(capsys.readouterr().out)
    assert inputs["distance"] == "input" and inputs["input_distances"] == forget["input_distances"]
    assert inputs["tree"] == json.loads(json.dumps(T.greedy(inputs["words"], inputs["input_distances"][1])))
    assert main(["parse", sentence, "--model", str(tiny_model), "--format", "table", "--distance", "input"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[1].split() == ["d_f", "d_i"] * 3 and out[-1].startswith("tree (layer 2, d_i): (")


def test_plot_draws_both_distances(tiny_model, tmp_path, capsys):
    path = tmp_path / "p.svg"
    assert main(["parse", "the cat sat", "--model", str(tiny_model), "--plot", str(path)]) == 0
    svg = path.read_text()
    assert "d_f (forget)" in svg and "d_i (input)" in svg


def test_bad_distance_choice_exits_2(tiny_model, capsys):
    with pytest.raises(SystemExit) as err:
        main(["parse", "the cat", "--model", str(tiny_model), "--distance", "output"])
    assert err.value.code == 2
