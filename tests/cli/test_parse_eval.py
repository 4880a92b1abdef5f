"""`onlstm parse-eval` on the command line (baselines here; with a model in test_lm_commands.py)."""

import json
import subprocess
import sys

import pytest

from onlstm.tasks import parse_eval as task
from onlstm import trees as T
from onlstm.cli import main

SMALL = """\
( (S (NP-SBJ (DT The) (NN dog) ) (VP (VBD saw) (NP (DT a) (NN cat) )) (. .) ))
( (S (NP-SBJ (PRP It) ) (VP (VBD rained) ) (. .) ))
( (S (NP-SBJ (NNS Dogs) (NNS dogs) ) (VP (VBP bark) ) ) )
"""


@pytest.fixture
def small(tmp_path):
    path = tmp_path / "small.mrg"
    path.write_text(SMALL)
    return path


def test_baselines_table_on_bundled_sample_wsj10(capsys):
    assert main(["parse-eval", "--baselines-only", "--max-length", "10"]) == 0
    out = capsys.readouterr().out
    assert "555 sentences" in out
    scores, labels, labels_whole = out.split("\nRecall of gold constituents by label")
    rows = {line.split()[0]: line.split() for line in scores.splitlines() if line.split()[:1]}
    assert rows["right"][1] == "58.6" and rows["left"][1] == "19.2"
    for name in ("balanced", "random"):
        assert name in rows
    header = next(line for line in scores.splitlines() if line.startswith("system"))
    for column in ("sent-F1", "corp-F1", "prec", "recall", "EVALB-F1", "word", "height"):
        assert column in header
    assert "whole sentence left out" in scores and "whole sentence counted" in scores
    assert "model trees" not in scores  # no model: no distance to name
    assert labels.startswith(" (%), whole-sentence constituents left out")
    assert labels_whole.startswith(" (%), whole-sentence constituents counted")
    for block in (labels, labels_whole):
        header = next(line for line in block.splitlines() if line.startswith("system"))
        assert header.split()[1:] == ["NP", "VP", "PP", "S", "SBAR", "ADJP", "ADVP"]


def test_json_and_seed(small, capsys):
    assert main(["parse-eval", str(small), "--baselines-only", "--json", "--seed", "5"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["sentences"] == 3 and report["seed"] == 5 and report["max_length"] is None
    assert list(report["systems"]) == ["left", "right", "balanced", "random"]
    right = report["systems"]["right"]
    assert right["sentence_f1"] == pytest.approx((2 / 3 + 1 + 0) / 3)
    assert right["label_counts"] == {"NP": 3, "VP": 1}


def test_json_carries_both_conventions(small, capsys):
    assert main(["parse-eval", str(small), "--baselines-only", "--json", "--baseline", "right"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["distance"] is None and report["decoder"] is None
    right = report["systems"]["right"]
    # sentence 1: 2 of 3 spans, sentence 3: 0 of 1; with the whole-sentence span of all
    # three sentences (each has two words or more): 5 of 7
    assert right["corpus_f1"] == pytest.approx(0.5)
    assert right["corpus_f1_with_sentence"] == pytest.approx(5 / 7)
    assert right["corpus_precision_with_sentence"] == pytest.approx(5 / 7)
    assert right["label_counts_with_sentence"] == {"NP": 3, "S": 3, "VP": 1}
    assert right["label_recall_with_sentence"]["S"] == 1.0
    assert right["word_depth"] == pytest.approx((14 / 5 + 1 + 5 / 3) / 3)
    assert right["tree_height"] == pytest.approx((4 + 1 + 2) / 3)
    assert "shown" not in report


def test_save_trees_one_system_and_per_system(small, tmp_path, capsys):
    one = tmp_path / "out" / "right.txt"
    assert main(["parse-eval", str(small), "--baselines-only", "--baseline", "right",
                 "--save-trees", str(one)]) == 0
    assert one.read_text().splitlines() == [
        "(the (dog (saw (a cat))))",
        "(it rained)",
        "(dogs (dogs bark))",
    ]
    # the gold trees (preprocessed: punctuation gone, unary chains collapsed) beside them
    assert (tmp_path / "out" / "right.gold.txt").read_text().splitlines() == [
        "((the dog) (saw (a cat)))",
        "(it rained)",
        "((dogs dogs) bark)",
    ]
    many = tmp_path / "trees.txt"
    assert main(["parse-eval", str(small), "--baselines-only", "--save-trees", str(many)]) == 0
    for name in ("left", "right", "balanced", "random"):
        lines = (tmp_path / f"trees.{name}.txt").read_text().splitlines()
        assert len(lines) == 3
        assert T.leaves(T.from_bracketed(lines[0])) == ["the", "dog", "saw", "a", "cat"]
    assert (tmp_path / "trees.gold.txt").is_file()
    assert "trees written to" in capsys.readouterr().err


def test_unwritable_save_trees_fails_after_the_results_are_printed(small, tmp_path, capsys):
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    (tmp_path / "folder").mkdir()
    for target in (blocker / "sub" / "t.txt", tmp_path / "folder"):  # a file as folder; a folder as file
        assert main(["parse-eval", str(small), "--baselines-only", "--baseline", "right",
                     "--save-trees", str(target)]) == 2
        captured = capsys.readouterr()
        assert "sent-F1" in captured.out and "right" in captured.out  # the table is kept
        assert captured.err.startswith("onlstm parse-eval: error: ")
        assert "Traceback" not in captured.err
    assert main(["parse-eval", str(small), "--baselines-only", "--json", "--save-trees",
                 str(blocker / "t.txt")]) == 2
    captured = capsys.readouterr()
    assert json.loads(captured.out)["sentences"] == 3  # the JSON is complete
    assert str(blocker) in captured.err
    assert blocker.read_text() == "not a folder"


def test_show_every_nth_sentence(small, capsys):
    assert main(["parse-eval", str(small), "--baselines-only", "--show", "2"]) == 0
    out = capsys.readouterr().out
    assert out.count("sentence 2 of 3 (") == 1 and "sentence 1 of 3" not in out
    block = out.split("\n\n")[0].splitlines()
    assert block[0].endswith("small.mrg:2), 2 words")
    assert block[1].split() == ["word", "gold", "right"]  # no model: no distances
    assert block[2].split()[0] == "it" and block[3].split()[0] == "rained"
    scores = {line.split()[0]: line.split()[1:] for line in block[5:]}
    assert scores["right"] == ["100.0", "100.0", "100.0"]  # no gold span: the convention
    assert set(scores) == {"left", "right", "balanced", "random"}
    assert out.index("sentence 2 of 3") < out.index("Unsupervised parsing")  # table last
    assert main(["parse-eval", str(small), "--baselines-only", "--show", "1", "--show-system", "left"]) == 0
    out = capsys.readouterr().out
    assert out.count(" of 3 (") == 3
    first = out.split("\n\n")[0].splitlines()
    assert first[1].split() == ["word", "gold", "left"]
    # (the dog) (saw (a cat)) against ((((the dog) saw) a) cat): drawn one line per word
    assert [line.split()[0] for line in first[2:7]] == ["the", "dog", "saw", "a", "cat"]
    scores = {line.split()[0]: line.split()[1:] for line in first[8:]}
    assert scores["left"] == ["33.3", "33.3", "33.3"]


def test_show_in_json(small, capsys):
    assert main(["parse-eval", str(small), "--baselines-only", "--json", "--show", "3",
                 "--baseline", "right"]) == 0
    report = json.loads(capsys.readouterr().out)
    (shown,) = report["shown"]
    assert shown["number"] == 3 and shown["words"] == ["dogs", "dogs", "bark"]
    assert shown["gold"] == [["dogs", "dogs"], "bark"]
    assert shown["trees"] == {"right": ["dogs", ["dogs", "bark"]]}
    assert shown["scores"]["right"] == {"precision": 0.0, "recall": 0.0, "f1": 0.0}
    assert shown["forget_distances"] is None and shown["input_distances"] is None


def test_show_arguments_checked(small, capsys):
    with pytest.raises(SystemExit) as info:
        main(["parse-eval", str(small), "--baselines-only", "--show", "0"])
    assert info.value.code == 2 and "argument --show: must be an integer >= 1, got '0'" in capsys.readouterr().err
    assert main(["parse-eval", str(small), "--baselines-only", "--show", "1", "--show-system", "layer 2"]) == 2
    assert "'layer 2' is not among the systems" in capsys.readouterr().err
    assert main(["parse-eval", str(small), "--baselines-only", "--show-system", "left"]) == 2
    assert "--show-system needs --show" in capsys.readouterr().err


def test_no_model_and_none_bundled_is_a_clear_error(capsys, monkeypatch):
    monkeypatch.setattr("onlstm.bundled.default_model_path", lambda: None)
    assert main(["parse-eval"]) == 2
    assert "no --model given" in capsys.readouterr().err
    assert main(["parse-eval", "--model", "somewhere", "--baselines-only"]) == 2
    assert "exclude each other" in capsys.readouterr().err


def run_cli(*args):
    return subprocess.run(
        [sys.executable, "-m", "onlstm", "parse-eval", *map(str, args)],
        capture_output=True, text=True, timeout=120,
    )


def test_missing_and_malformed_files_exit_2_without_traceback(tmp_path, capsys):
    bad = tmp_path / "bad.mrg"
    bad.write_text("( (S (NP (DT the) (NN cat))\n (VP (VBD sat))))\n)\n")
    for path, expected in ((tmp_path / "missing.mrg", "no such file"), (bad, f"{bad}:3:")):
        result = run_cli(path, "--baselines-only")
        assert result.returncode == 2, result.stderr
        assert "Traceback" not in result.stderr
        assert result.stderr.startswith("onlstm parse-eval: error: ")
        assert expected in result.stderr
    assert main(["parse-eval", str(tmp_path / "*.none"), "--baselines-only"]) == 2
    assert "no file matches" in capsys.readouterr().err


def test_empty_selection_and_bad_arguments(small, capsys):
    assert main(["parse-eval", str(small), "--baselines-only", "--max-length", "1"]) == 2
    assert "no sentence of at most 1 words" in capsys.readouterr().err
    with pytest.raises(SystemExit) as info:
        main(["parse-eval", str(small), "--baselines-only", "--max-length", "0"])
    assert info.value.code == 2 and "argument --max-length: must be an integer >= 1" in capsys.readouterr().err
    with pytest.raises(SystemExit) as info:
        main(["parse-eval", "--baselines-only", "--baseline", "middle"])
    assert info.value.code == 2


def test_tree_file_paths():
    assert task.tree_file_paths("t.txt", ["right"]) == {"right": task.Path("t.txt")}
    paths = task.tree_file_paths("dir/t.txt", ["layer 1", "mean"])
    assert [p.name for p in paths.values()] == ["t.layer_1.txt", "t.mean.txt"]
    paths = task.tree_file_paths("t.txt", ["right"], gold=True)
    assert {k: p.name for k, p in paths.items()} == {"right": "t.txt", "gold": "t.gold.txt"}
