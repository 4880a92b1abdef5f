"""The model commands end to end on a tiny trained model: parse, evaluate, generate, syneval."""

import json
import subprocess
import sys

import pytest

from onlstm.cli import main


def run_cli(*args, stdin=None):
    return subprocess.run([sys.executable, "-m", "onlstm", *map(str, args)], capture_output=True, text=True,
                          input=stdin, timeout=300)


def test_parse_formats(tiny_model, tmp_path, capsys):
    assert main(["parse", "the cat sat on the mat", "--model", str(tiny_model)]) == 0
    out = capsys.readouterr().out.strip()
    assert out.startswith("(") and out.count("cat") == 1
    assert main(["parse", "the cat sat", "--model", str(tiny_model), "--format", "json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data[0]["words"] == ["the", "cat", "sat"] and len(data[0]["distances"]) == 3
    assert main(["parse", "the cat sat", "--model", str(tiny_model), "--format", "table", "--layer", "mean"]) == 0
    assert "layer  3" in capsys.readouterr().out
    assert main(["parse", "the cat sat", "--model", str(tiny_model), "--format", "tree", "--plot",
                 str(tmp_path / "p.png")]) == 0
    assert (tmp_path / "p.png").stat().st_size > 1000


def test_parse_stdin_skips_empty_lines_and_warns_oov(tiny_model):
    res = run_cli("parse", "--model", tiny_model, stdin="the cat\n\nzyzzyva sat here\n")
    assert res.returncode == 0, res.stderr
    assert len(res.stdout.strip().splitlines()) == 2
    assert "skipped 1 empty line" in res.stderr and "<unk>" in res.stderr


def test_parse_user_errors_exit_2_without_traceback(tiny_model, tmp_path):
    for args in (["parse", "x", "--model", tmp_path / "nope"], ["parse", "x", "--model", tiny_model, "--layer", "9"],
                 ["parse", "--file", tmp_path / "missing.txt", "--model", tiny_model],
                 ["evaluate", tiny_model, "--split", tmp_path / "missing.txt"],
                 ["generate", tiny_model, "--temperature", "0"]):
        res = run_cli(*args)
        assert res.returncode == 2, (args, res.stderr)
        assert "Traceback" not in res.stderr and "error" in res.stderr


def test_evaluate_and_generate(tiny_model, capsys):
    assert main(["evaluate", str(tiny_model), "--split", "valid", "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["tokens"] > 100 and 1 < result["perplexity"] < 2000
    assert abs(result["bits_per_token"] * 0.6931471805599453 - result["loss"]) < 1e-9
    assert main(["generate", str(tiny_model), "--prompt", "the company", "--tokens", "5", "--seed", "3"]) == 0
    first = capsys.readouterr().out
    assert main(["generate", str(tiny_model), "--prompt", "the company", "--tokens", "5", "--seed", "3"]) == 0
    assert capsys.readouterr().out == first and first.startswith("the company")


def test_syneval_small_slice(tiny_model, capsys):
    assert main(["syneval", str(tiny_model), "--limit", "5", "--constructions", "simple_agrmt", "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    (result,) = data.values()
    assert result["constructions"]["simple_agrmt"]["items_scored"] == 5


def test_parse_eval_with_a_model_scores_every_layer_and_the_baselines(tiny_model, tmp_path, capsys):
    treebank = tmp_path / "small.mrg"
    treebank.write_text("( (S (NP (DT The) (NN cat)) (VP (VBD sat) (PP (IN on) (NP (DT the) (NN mat)))) (. .)) )\n"
                        "( (S (NP (DT A) (NN dog)) (VP (VBD ran) (ADVP (RB away)))) )\n")
    assert main(["parse-eval", str(treebank), "--model", str(tiny_model), "--json",
                 "--save-trees", str(tmp_path / "t.txt")]) == 0
    report = json.loads(capsys.readouterr().out)
    assert list(report["systems"]) == ["layer 1", "layer 2", "layer 3", "mean", "left", "right", "balanced", "random"]
    # by hand: right-branching finds 3 of 4 gold spans in the first sentence (F1 .75), 1 of 2 in the second (.5)
    assert report["systems"]["right"]["sentence_f1"] == pytest.approx(0.625)
    assert len((tmp_path / "t.layer_2.txt").read_text().splitlines()) == 2


def test_parse_maps_words_to_the_vocabulary_form(tiny_model, capsys):
    assert main(["parse", "The company said 1990", "--model", str(tiny_model), "--format", "json"]) == 0
    data = json.loads(capsys.readouterr().out)[0]
    assert data["words"] == ["The", "company", "said", "1990"]
    assert data["model_tokens"] == ["the", "company", "said", "N"]
    assert data["oov"] == 0


def test_parse_default_layer_follows_the_models_parse_layer(tiny_model):
    from onlstm.lm import LanguageModel
    from onlstm.tasks.parse import parse

    model = LanguageModel.from_pretrained(tiny_model)
    assert model.config.parse_layer is None
    assert parse(model, ["the cat sat"])[0].layer == "layer 2"  # the middle of 3
    model.config.parse_layer = 3
    (parsed,) = parse(model, ["the cat sat on the mat"])
    assert parsed.layer == "layer 3"
    from onlstm import trees as T

    assert parsed.tree == T.greedy(parsed.words, parsed.distances[2].tolist())
    assert parse(model, ["the cat sat"], layer=0)[0].layer == "layer 1"  # an explicit layer wins
