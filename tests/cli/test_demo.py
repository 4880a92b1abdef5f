"""``onlstm demo`` end to end on a tiny trained model and a small treebank."""

import json
import subprocess
import sys

from onlstm import trees as T
from onlstm.cli import main

TREEBANK = ("( (S (NP (DT The) (NN cat)) (VP (VBD sat) (PP (IN on) (NP (DT the) (NN mat)))) (. .)) )\n"
            "( (S (NP (DT A) (NN dog)) (VP (VBD ran) (ADVP (RB away)))) )\n"
            "( (S (NP (DT The) (NN company)) (VP (VBD said) (SBAR (S (NP (PRP it)) (VP (VBD lost) "
            "(NP (NN money))))))) )\n")


def test_demo_writes_the_report(tiny_model, tmp_path, capsys):
    treebank = tmp_path / "small.mrg"
    treebank.write_text(TREEBANK)
    out = tmp_path / "report"
    assert main(["demo", "--model", str(tiny_model), "--out", str(out), "--treebank", str(treebank),
                 "--sentence", "the cat sat on the mat", "--sentence", "a dog ran away", "--quiet"]) == 0
    printed = capsys.readouterr().out
    assert "perplexity" in printed and "right" in printed and "best layer" in printed

    results = json.loads((out / "results.json").read_text())
    # perplexity on the model's own test split (the small corpus it was trained from), batch 1
    assert results["perplexity"]["batch_size"] == 1 and 1 < results["perplexity"]["perplexity"] < 10000
    systems = results["parsing"]["all"]["systems"]
    assert list(systems) == ["layer 1", "layer 2", "layer 3", "mean", "left", "right", "balanced", "random"]
    assert results["parsing"]["all"]["sentences"] == 3 and results["parsing"]["wsj10"]["sentences"] == 3
    # trees: one file per system, one tree per gold sentence
    for name in ("layer_2", "mean", "right"):
        assert len((out / "trees" / f"trees.{name}.txt").read_text().splitlines()) == 3
    assert 0.0 <= systems["right"]["sentence_f1"] <= 1.0
    assert [e["words"] for e in results["examples"]] == [["the", "cat", "sat", "on", "the", "mat"],
                                                         ["a", "dog", "ran", "away"]]
    for example in results["examples"]:
        assert (out / example["plot"]).stat().st_size > 1000
        assert len(example["distances"]) == 3 and len(example["distances"][0]) == len(example["words"])
    report = (out / "report.md").read_text()
    assert "| layer 1 |" in report and "| right |" in report and "plots/example_1.png" in report

    # report.html: the same tables, each example drawn as an inline SVG tree over its distance bars,
    # self-contained (no script, no file or network fetch)
    page = (out / "report.html").read_text()
    assert "<td>layer 1</td>" in page and "<td>right</td>" in page and "sent-F1, WSJ10" in page
    assert "<script" not in page and "src=" not in page and "href=" not in page and "@import" not in page
    drawings = page.split("<svg")[1:]
    assert len(drawings) == 2
    for drawing, example in zip(drawings, results["examples"]):
        drawing = drawing.split("</svg>")[0]
        n = len(example["words"])
        assert drawing.count('class="leaf"') == n and drawing.count('class="bar') == 3 * n
        assert drawing.count('class="bar chosen"') == n  # the row of the layer that built the tree
        assert T.leaves(example["tree"]) == example["words"]
        assert example["bracketed"] in page

    # the folder is the demo's own: a new demo writes it again; with a file of the user's in it, only --overwrite
    again = ["demo", "--model", str(tiny_model), "--out", str(out), "--treebank", str(treebank), "--no-perplexity",
             "--sentence", "a dog ran away", "--quiet"]
    assert main(again) == 0
    assert json.loads((out / "results.json").read_text())["perplexity"] is None
    (out / "mine.txt").write_text("keep me")
    capsys.readouterr()
    assert main(again) == 2
    assert "not a demo report folder (it holds mine.txt, plots, report.html, report.md" in capsys.readouterr().err
    assert main(again + ["--overwrite"]) == 0
    assert (out / "mine.txt").read_text() == "keep me" and sorted(p.name for p in (out / "plots").iterdir()) == [
        "example_1.png"]  # the earlier report's plots were removed, not mixed with the new ones


def test_demo_errors_exit_2_without_traceback(tiny_model, tmp_path):
    for args in (["--model", tmp_path / "missing"], ["--model", tiny_model, "--eval-batch-size", "0"],
                 ["--model", tiny_model, "--treebank", tmp_path / "none.mrg", "--no-perplexity"]):
        res = subprocess.run([sys.executable, "-m", "onlstm", "demo", "--out", str(tmp_path / "r"), *map(str, args)],
                             capture_output=True, text=True, timeout=300)
        assert res.returncode == 2, (args, res.stderr)
        assert "Traceback" not in res.stderr and "error" in res.stderr


def test_demo_of_a_chinese_model_uses_sinica_pku_and_chinese_examples(tmp_path, capsys):
    from onlstm import bundled
    from onlstm.cli.common import load_model
    from onlstm.tasks import demo as task

    assert task.is_chinese(load_model("zh")[0]) and not task.is_chinese(load_model("en")[0])
    assert any(bundled.resource(task.ZH_CORPUS).glob("test.txt*"))  # where its perplexity is measured
    out = tmp_path / "zh-report"
    assert main(["demo", "--model", "zh", "--out", str(out), "--no-perplexity", "--quiet"]) == 0
    assert "best layer" in capsys.readouterr().out
    results = json.loads((out / "results.json").read_text())
    assert "Sinica" in results["parsing"]["all"]["treebank"] and results["parsing"]["all"]["sentences"] == 10000
    assert ["".join(e["words"]) for e in results["examples"]] == task.ZH_EXAMPLE_SENTENCES
    assert "sent-F1, <= 10 words" in (out / "report.md").read_text()
    assert "sent-F1, &lt;= 10 words" in (out / "report.html").read_text()
