"""`onlstm parse-eval` with a (tiny, freshly trained) model: --distance, --show, the report."""

import json

import pytest
import torch

from onlstm import trees as T
from onlstm.cli import main
from onlstm.lm import LanguageModel
from onlstm.tasks import parse_eval as task
from onlstm.tasks import parse_show

TREEBANK = (
    "( (S (NP (DT The) (NN cat)) (VP (VBD sat) (PP (IN on) (NP (DT the) (NN mat)))) (. .)) )\n"
    "( (S (NP (DT A) (NN dog)) (VP (VBD ran) (ADVP (RB away)))) )\n"
    "( (S (NP (NNS Prices)) (VP (VBD rose) (NP (CD 3) (NN %)))) )\n"
)


@pytest.fixture
def treebank(tmp_path):
    path = tmp_path / "small.mrg"
    path.write_text(TREEBANK)
    return path


@pytest.fixture(scope="module")
def model(tiny_model):
    return LanguageModel.from_pretrained(tiny_model)


def test_decoding_distance_is_chosen_and_recorded(tiny_model, model, treebank, capsys):
    sentences = task.load_sentences([treebank])
    pairs = task.model_distances(model, sentences)
    assert [d_f.shape for d_f, _ in pairs] == [(3, 6), (3, 4), (3, 4)]
    assert all(d_i.shape == d_f.shape for d_f, d_i in pairs)
    for distance, k in (("forget", 0), ("input", 1)):
        assert main(["parse-eval", str(treebank), "--model", str(tiny_model), "--json",
                     "--distance", distance, "--baseline", "right", "--save-trees",
                     str(treebank.parent / distance / "t.txt")]) == 0
        report = json.loads(capsys.readouterr().out)
        assert report["distance"] == distance and report["decoder"] == "greedy"
        assert list(report["systems"]) == ["layer 1", "layer 2", "layer 3", "mean", "right"]
        saved = (treebank.parent / distance / "t.layer_2.txt").read_text().splitlines()
        expected = [T.to_bracketed(T.greedy(s.words, pair[k][1].tolist())) for s, pair in zip(sentences, pairs)]
        assert saved == expected
        mean = (treebank.parent / distance / "t.mean.txt").read_text().splitlines()
        assert mean == [T.to_bracketed(T.greedy(s.words, pair[k].mean(0).tolist()))
                        for s, pair in zip(sentences, pairs)]
        gold = (treebank.parent / distance / "t.gold.txt").read_text().splitlines()
        assert gold[0] == "((the cat) (sat (on (the mat))))"
        for scores in report["systems"].values():
            assert scores["corpus_f1_with_sentence"] >= scores["corpus_f1"]
            assert scores["word_depth"] <= scores["tree_height"]
    assert main(["parse-eval", str(treebank), "--model", str(tiny_model), "--distance", "input",
                 "--baseline", "right"]) == 0
    out = capsys.readouterr().out
    assert "model trees: greedy decoder over the input distances d_i (--distance input)" in out


def test_show_prints_both_distances_of_every_layer(tiny_model, model, treebank, capsys):
    assert main(["parse-eval", str(treebank), "--model", str(tiny_model), "--show", "1",
                 "--baseline", "right"]) == 0
    out = capsys.readouterr().out
    first = out.split("\n\n")[0].splitlines()
    assert first[0].endswith("small.mrg:1), 6 words")
    assert first[1].split() == ["word", "d_f", "L1", "d_f", "L2", "d_f", "L3", "d_i", "L1", "d_i", "L2",
                                "d_i", "L3", "gold", "layer", "2"]
    sentences = task.load_sentences([treebank])
    d_f, d_i = task.model_distances(model, sentences)[0]
    cat = first[3].split()
    assert cat[0] == "cat"
    assert [float(v) for v in cat[1:7]] == pytest.approx(d_f[:, 1].tolist() + d_i[:, 1].tolist(), abs=6e-4)
    assert "(model trees decoded from d_f)" in out
    scores = {line.split()[0]: line.split()[-3:] for line in first if line.startswith(("layer", "mean", "right"))}
    assert set(scores) >= {"mean", "right"}
    assert out.count(" of 3 (") == 3

    assert main(["parse-eval", str(treebank), "--model", str(tiny_model), "--show", "2", "--json",
                 "--distance", "input", "--show-system", "mean"]) == 0
    report = json.loads(capsys.readouterr().out)
    (shown,) = report["shown"]
    d_f, d_i = task.model_distances(model, sentences)[1]
    assert shown["number"] == 2 and shown["distance"] == "input"
    assert torch.allclose(torch.tensor(shown["forget_distances"]), d_f, atol=1e-5)
    assert torch.allclose(torch.tensor(shown["input_distances"]), d_i, atol=1e-5)
    assert shown["trees"]["layer 1"] == T.greedy(sentences[1].words, d_i[0].tolist())
    assert shown["trees"]["mean"] == T.greedy(sentences[1].words, d_i.mean(0).tolist())


def test_collect_shown_and_format(model, treebank):
    sentences = task.load_sentences([treebank])
    pairs = task.model_distances(model, sentences)
    systems = task.decode_systems(sentences, [d_f for d_f, _ in pairs], "split")
    shown = parse_show.collect_shown(sentences, systems, 3, pairs, "forget")
    assert [item.number for item in shown] == [3]
    item = shown[0]
    assert item.drawn == "layer 2" and item.sentence is sentences[2]
    text = parse_show.format_shown(item)
    lines = text.splitlines()
    assert lines[0].startswith("sentence 3 of 3")
    assert sentences[2].words == ["prices", "rose", "N", "%"]
    assert [line.split()[0] for line in lines[2:6]] == sentences[2].words
    assert parse_show.shown_indices(10, 3) == [2, 5, 8]
    assert parse_show.shown_indices(2, 3) == []
    assert parse_show.default_shown_system(["left", "right"]) == "right"
    assert parse_show.default_shown_system(["layer 1", "mean"]) == "layer 1"


def test_show_draws_the_layer_the_model_recommends(tiny_model, treebank, tmp_path, capsys):
    import shutil

    folder = tmp_path / "model"
    shutil.copytree(tiny_model, folder)
    config = json.loads((folder / "config.json").read_text())
    config["model"]["parse_layer"] = 3
    (folder / "config.json").write_text(json.dumps(config))
    assert main(["parse-eval", str(treebank), "--model", str(folder), "--show", "3", "--baseline", "left"]) == 0
    header = capsys.readouterr().out.splitlines()[1]
    assert header.split()[-3:] == ["gold", "layer", "3"]
    assert main(["parse-eval", str(treebank), "--model", str(folder), "--show", "3", "--baseline", "left",
                 "--show-system", "left"]) == 0
    assert capsys.readouterr().out.splitlines()[1].split()[-2:] == ["gold", "left"]
    assert main(["parse-eval", str(treebank), "--model", str(folder), "--show", "3", "--show-system", "layer 4"]) == 2
    assert "'layer 4' is not among the systems" in capsys.readouterr().err


@pytest.fixture(scope="module")
def backward_dir(model, tmp_path_factory):
    """The tiny model's weights as a right-to-left model."""
    from onlstm.lm import LMConfig

    folder = tmp_path_factory.mktemp("backward") / "model"
    back = LanguageModel(LMConfig(**{**model.config.__dict__, "direction": "backward"}), model.vocab)
    back.load_state_dict(model.state_dict())
    back.save_pretrained(folder)
    return folder


def test_a_backward_model_joins_the_models_trees(tiny_model, model, backward_dir, treebank, capsys):
    from onlstm.tasks.parse import combined_distances

    sentences = task.load_sentences([treebank])
    back = LanguageModel.from_pretrained(backward_dir)
    assert main(["parse-eval", str(treebank), "--model", str(tiny_model), "--backward-model", str(backward_dir),
                 "--baseline", "right", "--save-trees", str(treebank.parent / "both" / "t.txt")]) == 0
    out = capsys.readouterr().out
    assert f"forward and backward models combined (--backward-model {backward_dir})" in out
    saved = (treebank.parent / "both" / "t.layer_2.txt").read_text().splitlines()
    f = [pair[0] for pair in task.model_distances(model, sentences)]
    b = [pair[0] for pair in task.model_distances(back, sentences)]
    assert saved == [T.to_bracketed(T.greedy(s.words, combined_distances(x, y)[1].tolist()))
                     for s, x, y in zip(sentences, f, b)]
    assert main(["parse-eval", str(treebank), "--model", str(tiny_model), "--json", "--backward-model",
                 str(backward_dir), "--baseline", "right"]) == 0
    assert json.loads(capsys.readouterr().out)["backward_model"] == str(backward_dir)
    # mistakes: exit 2 with the flag named, no traceback
    assert main(["parse-eval", str(treebank), "--model", str(tiny_model), "--backward-model", "nope"]) == 2
    assert "--backward-model nope: no such model folder" in capsys.readouterr().err
    assert main(["parse-eval", str(treebank), "--model", str(tiny_model), "--backward-model", str(tiny_model)]) == 2
    assert "--backward-model reads left to right" in capsys.readouterr().err
    assert main(["parse-eval", str(treebank), "--baselines-only", "--backward-model", str(backward_dir)]) == 2
    assert "exclude each other" in capsys.readouterr().err
    assert main(["parse", "the cat sat on the mat", "--model", str(tiny_model), "--backward-model", str(backward_dir),
                 "--format", "json", "--layer", "2"]) == 0
    (parsed,) = json.loads(capsys.readouterr().out)
    assert parsed["layer"] == "layer 2, forward+backward"
    assert parsed["tree"] == T.greedy("the cat sat on the mat".split(), [row[1] for row in zip(*parsed["distances"])])
