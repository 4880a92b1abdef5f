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
    rows = {line.split()[0]: line.split() for line in out.splitlines() if line.split()[:1]}
    assert rows["right"][1] == "58.6" and rows["left"][1] == "19.2"
    for name in ("balanced", "random"):
        assert name in rows
    header = next(line for line in out.splitlines() if line.startswith("system"))
    for column in ("sent-F1", "corp-F1", "prec", "recall", "depth", "NP", "VP", "PP"):
        assert column in header


def test_json_and_seed(small, capsys):
    assert main(["parse-eval", str(small), "--baselines-only", "--json", "--seed", "5"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["sentences"] == 3 and report["seed"] == 5 and report["max_length"] is None
    assert list(report["systems"]) == ["left", "right", "balanced", "random"]
    right = report["systems"]["right"]
    assert right["sentence_f1"] == pytest.approx((2 / 3 + 1 + 0) / 3)
    assert right["label_counts"] == {"NP": 3, "VP": 1}


def test_save_trees_one_system_and_per_system(small, tmp_path, capsys):
    one = tmp_path / "out" / "right.txt"
    assert main(["parse-eval", str(small), "--baselines-only", "--baseline", "right",
                 "--save-trees", str(one)]) == 0
    assert one.read_text().splitlines() == [
        "(the (dog (saw (a cat))))",
        "(it rained)",
        "(dogs (dogs bark))",
    ]
    many = tmp_path / "trees.txt"
    assert main(["parse-eval", str(small), "--baselines-only", "--save-trees", str(many)]) == 0
    for name in ("left", "right", "balanced", "random"):
        lines = (tmp_path / f"trees.{name}.txt").read_text().splitlines()
        assert len(lines) == 3
        assert T.leaves(T.from_bracketed(lines[0])) == ["the", "dog", "saw", "a", "cat"]
    assert "trees written to" in capsys.readouterr().err


def test_no_model_and_none_bundled_is_a_clear_error(capsys, monkeypatch):
    monkeypatch.setattr("onlstm.cli.common.default_model_path", lambda: None)
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
    assert main(["parse-eval", str(small), "--baselines-only", "--max-length", "0"]) == 2
    with pytest.raises(SystemExit) as info:
        main(["parse-eval", "--baselines-only", "--baseline", "middle"])
    assert info.value.code == 2


def test_tree_file_paths():
    assert task.tree_file_paths("t.txt", ["right"]) == {"right": task.Path("t.txt")}
    paths = task.tree_file_paths("dir/t.txt", ["layer 1", "mean"])
    assert [p.name for p in paths.values()] == ["t.layer_1.txt", "t.mean.txt"]
