"""Logical inference: bundled data, parser, model, training, checkpoints, evaluation."""

from __future__ import annotations

import json
import re
from collections import Counter

import pytest
import torch

from onlstm.batching import pad_batch
from onlstm.cli import main
from onlstm.errors import UserError
from onlstm.tasks import logic as L

TINY = dict(embed_size=8, hidden_size=20, mlp_hidden=16, chunk_size=5, batch_size=16, train_limit=40, seed=3)


def _source_md():
    return (L.DATA_DIR / "SOURCE.md").read_text()


def test_parser_reads_every_bundled_line_and_counts_match_source_md():
    text = _source_md()
    table = {int(k): (int(tr), int(te)) for k, tr, te in
             re.findall(r"^\| (\d+) \| (\d+) \| (\d+) \| \d+ \| \d+ \|$", text, re.M)}
    assert sorted(table) == list(range(13))
    relations = {"train": Counter(), "test": Counter()}
    for split, col in (("train", 0), ("test", 1)):
        for k in range(13):
            examples = L.read_file(f"{split}{k}")
            assert len(examples) == table[k][col], f"{split}{k}"
            for e in examples:
                ops = max(L.count_operators(e.premise), L.count_operators(e.hypothesis))
                assert ops == k if k < 12 else ops >= 12
                relations[split][L.RELATIONS[e.label]] += 1
    for split in ("train", "test"):
        line = re.search(rf"^{split} relation counts: (.*)$", text, re.M).group(1)
        expected = {r: int(n) for r, n in re.findall(r"'(.)' (\d+)", line)}
        assert relations[split] == expected


def test_parse_formula_grammar():
    assert L.parse_formula("a".split()) == "a"
    assert L.parse_formula("( not c )".split()) == ("not", "c")
    assert L.parse_formula("( ( a ( and b ) ) ( or ( not c ) ) )".split()) == (
        "or", ("and", "a", "b"), ("not", "c"))
    for bad in ["( a ( and b )", "( not a b )", "a b", "( a ( xor b ) )", "", "( a )", "g"]:
        with pytest.raises(ValueError):
            L.parse_formula(bad.split())
    ex = L.parse_line("^\t( not c )\tc\n", 1)
    assert (L.RELATIONS[ex.label], ex.premise, ex.hypothesis, ex.k) == ("^", ("(", "not", "c", ")"), ("c",), 1)
    with pytest.raises(UserError, match="f:7"):
        L.parse_line("?\ta\tb", where="f:7")
    with pytest.raises(UserError, match="3 tab-separated"):
        L.parse_line("= a b", where="x")


def test_symbols_and_padding():
    v = L.SymbolTable()
    assert v.itos[0] == L.PAD and len(v) == 12
    assert v.encode("( not a )".split()) == [1, 9, 3, 2]
    assert v.encode("( not a )".split(), keep_parens=False) == [9, 3]
    with pytest.raises(UserError, match="unknown formula symbol 'xor'"):
        v.encode(["xor"])
    ids, lengths = pad_batch([[1, 2, 3], [4]], pad_id=0)
    assert ids.tolist() == [[1, 2, 3], [4, 0, 0]] and lengths.tolist() == [3, 1]


def _cells():
    cells = ["lstm"]
    try:
        from onlstm.layer import ONLSTM  # noqa: F401

        cells.append("onlstm")
    except ImportError:  # pragma: no cover - the layer is a separate part of the package
        pass
    return cells


@pytest.mark.parametrize("cell", _cells())
def test_padding_does_not_change_the_encoding(cell):
    torch.manual_seed(0)
    cfg = L.LogicConfig(cell=cell, **{k: v for k, v in TINY.items() if k not in ("batch_size", "train_limit")})
    model = L.LogicClassifier(cfg, len(L.SYMBOLS)).eval()
    seqs = [[1, 11, 3, 2], [4], [1, 5, 1, 9, 6, 2, 2]]
    ids, lengths = pad_batch(seqs, pad_id=0)
    batched = model.encode(ids, lengths)  # (3, H)
    for i, s in enumerate(seqs):
        alone = model.encode(torch.tensor([s]), torch.tensor([len(s)]))
        torch.testing.assert_close(batched[i : i + 1], alone, rtol=1e-5, atol=1e-6)
    p, pl = pad_batch(seqs, pad_id=0)
    logits = model(p, pl, p.flip(0), pl.flip(0))
    assert logits.shape == (3, 7)


def _weights(run_dir):
    model, _ = L.load_model(run_dir, which="last")
    return model.state_dict()


@pytest.mark.parametrize("cell", _cells())
def test_tiny_model_learns_on_a_small_slice(tmp_path, cell):
    cfg = L.LogicConfig(cell=cell, epochs=4, lr=1e-2, **TINY)
    t = L.Trainer(tmp_path / "run", cfg, progress=False, log=lambda *a: None)
    assert t.run() == "done"
    losses = [h["train_loss"] for h in t.history]
    assert len(losses) == 4 and losses[-1] < losses[0]
    assert (tmp_path / "run" / L.BEST).exists() and (tmp_path / "run" / L.CONFIG).exists()
    # no pickle anywhere: checkpoint files are safetensors (8-byte header size, then JSON)
    for name in (L.CHECKPOINT, L.BEST):
        raw = (tmp_path / "run" / name).read_bytes()
        n = int.from_bytes(raw[:8], "little")
        header = json.loads(raw[8 : 8 + n])
        assert header["__metadata__"]["format"] == L.FORMAT


def test_checkpoint_resume_round_trip(tmp_path):
    quiet = dict(progress=False, log=lambda *a: None)
    cfg = L.LogicConfig(cell="lstm", epochs=2, **TINY)
    straight = L.Trainer(tmp_path / "a", cfg, **quiet)
    assert straight.run() == "done"
    # stop after one epoch, then resume for a second one
    L.Trainer(tmp_path / "b", L.LogicConfig(cell="lstm", epochs=1, **TINY), **quiet).run()
    b = L.Trainer(tmp_path / "b", resume=True, epochs=2, **quiet)
    assert b.epoch == 1 and b.step == straight.history[0]["step"]
    assert b.run() == "done"
    # stop in the middle of an epoch (3 steps), resume twice
    c1 = L.Trainer(tmp_path / "c", cfg, max_steps=3, **quiet)
    assert c1.run() == "steps" and (c1.epoch, c1.batch) == (0, 3)
    assert L.Trainer(tmp_path / "c", resume=True, max_steps=4, **quiet).run() == "steps"
    c = L.Trainer(tmp_path / "c", resume=True, **quiet)
    assert c.run() == "done"
    wa = _weights(tmp_path / "a")
    for other in ("b", "c"):
        wo = _weights(tmp_path / other)
        assert wa.keys() == wo.keys()
        for k in wa:
            assert torch.equal(wa[k], wo[k]), (other, k)
    assert [h["valid_acc"] for h in straight.history] == [h["valid_acc"] for h in c.history]
    assert [h["train_loss"] for h in straight.history] == pytest.approx([h["train_loss"] for h in c.history])
    # the optimizer state survives the round trip
    sa, sc = straight.opt.state_dict(), c.opt.state_dict()
    for i in sa["state"]:
        for name, val in sa["state"][i].items():
            assert torch.equal(val, sc["state"][i][name])
    assert sa["param_groups"] == [dict(g, betas=tuple(g["betas"])) for g in sc["param_groups"]]
    # misuse
    with pytest.raises(UserError, match="already holds a logic training run; use --resume"):
        L.Trainer(tmp_path / "a", cfg, **quiet)
    with pytest.raises(UserError, match="differ"):
        L.Trainer(tmp_path / "a", L.LogicConfig(cell="lstm", epochs=2, **dict(TINY, seed=4)), resume=True, **quiet)
    with pytest.raises(UserError):
        L.Trainer(tmp_path / "nothing", resume=True, **quiet)


def test_eval_table_json_and_plot(tmp_path, capsys):
    run = tmp_path / "lstm-run"
    status = L.train(run, L.LogicConfig(cell="lstm", epochs=1, **TINY), eval_limit=8,
                     progress=False, log=lambda *a: None)
    assert status == "done"
    saved = json.loads((run / L.RESULTS).read_text())
    assert sorted(saved["by_ops"], key=int) == [str(k) for k in range(13)]
    assert saved["by_ops"]["0"]["total"] == 6 and saved["by_ops"]["5"]["total"] == 8
    plot = tmp_path / "acc.png"
    rc = main(["logic", "eval", str(run), str(run), "--label", "first", "--label", "second",
               "--limit", "8", "--plot", str(plot), "--json"])
    assert rc == 0
    out = json.loads(capsys.readouterr().out)
    assert [r["label"] for r in out] == ["first", "second"]
    assert out[0]["by_ops"] == saved["by_ops"]
    assert plot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    table = L.format_table(out)
    assert "first" in table and "second" in table and "12+" in table and "7-12+" in table
    assert main(["logic", "eval", str(run), "--limit", "4"]) == 0
    assert "operators" in capsys.readouterr().out
    assert main(["logic", "eval", str(tmp_path / "missing")]) == 2
    assert main(["logic", "eval", str(run), "--label", "a", "--label", "b"]) == 2
    assert main(["logic", "train", "--out", str(run), "--cell", "lstm"]) == 2  # exists, no --resume
    assert main(["logic", "train", "--out", str(run), "--resume", "--hidden", "64"]) == 2


def test_cli_train_smoke(tmp_path, capsys):
    out = tmp_path / "cli"
    args = ["logic", "train", "--out", str(out), "--cell", "lstm", "--embed", "8", "--hidden", "16",
            "--mlp-hidden", "8", "--train-limit", "20", "--batch-size", "16", "--epochs", "1", "--max-steps", "2",
            "--quiet"]
    assert main(args) == 0
    assert "continue with --resume" in capsys.readouterr().out
    state = json.loads((out / L.CONFIG).read_text())
    assert state["config"]["hidden_size"] == 16 and state["vocab"][0] == L.PAD


def _write_legacy_checkpoint(path, tensors, state):
    """A checkpoint as logic.py wrote it before the shared harness: Adam's tensors as
    ``optim.<i>.<name>`` beside ``{"param_groups", "scalars"}``, the RNG as ``rng.torch``."""
    from safetensors.torch import save_file

    out = {k: v for k, v in tensors.items() if k.startswith("model.")}
    out["rng.torch"] = tensors["rng.0"]
    scalars = {}
    for idx, st in state["optimizer"]["state"].items():
        for name, val in st.items():
            if isinstance(val, torch.Tensor):
                out[f"optim.{idx}.{name}"] = val
            else:
                scalars[f"{idx}.{name}"] = val
    old = {k: state[k] for k in ("config", "vocab", "relations", "history", "best", "progress")}
    old["optimizer"] = {"param_groups": state["optimizer"]["param_groups"], "scalars": scalars}
    save_file(out, str(path), metadata={"format": L.FORMAT, "state": json.dumps(old)})


def test_a_checkpoint_in_the_old_layout_resumes_exactly(tmp_path):
    from onlstm.training import read_checkpoint

    quiet = dict(progress=False, log=lambda *a: None)
    cfg = L.LogicConfig(cell="lstm", epochs=2, **TINY)
    straight = L.Trainer(tmp_path / "a", cfg, **quiet)
    assert straight.run() == "done"
    assert L.Trainer(tmp_path / "old", cfg, max_steps=3, **quiet).run() == "steps"
    path = tmp_path / "old" / L.CHECKPOINT
    _write_legacy_checkpoint(path, *read_checkpoint(path, L.FORMAT))
    assert "optim.0.exp_avg" in _safetensors_keys(path)
    resumed = L.Trainer(tmp_path / "old", resume=True, **quiet)
    assert (resumed.epoch, resumed.batch) == (0, 3)
    assert resumed.run() == "done"
    wa, wo = _weights(tmp_path / "a"), _weights(tmp_path / "old")
    for k in wa:
        assert torch.equal(wa[k], wo[k]), k
    assert [h["train_loss"] for h in straight.history] == pytest.approx([h["train_loss"] for h in resumed.history])
    assert "optim.0.exp_avg" not in _safetensors_keys(path)  # saved again in today's layout
    records = [json.loads(s) for s in (tmp_path / "a" / "metrics.jsonl").read_text().splitlines()]
    assert records == straight.history


def _safetensors_keys(path):
    from safetensors import safe_open

    with safe_open(str(path), "pt") as f:
        return set(f.keys())


def test_the_dropconnect_convention_is_recorded_and_old_runs_resume_rescaled(tmp_path):
    from onlstm.training import read_checkpoint, write_checkpoint

    quiet = dict(progress=False, log=lambda *a: None)
    cfg = L.LogicConfig(epochs=1, dropconnect=0.3, **TINY)
    assert cfg.dropconnect_convention == "published"  # new runs: the ON-LSTM code's
    assert L.LogicConfig.from_dict({"cell": "onlstm"}).dropconnect_convention == "rescaled"  # saved before it was
    t = L.Trainer(tmp_path / "new", cfg, max_steps=2, **quiet)
    assert t.model.encoder.dropconnect_convention == "published"
    t.run()
    assert json.loads((tmp_path / "new" / L.CONFIG).read_text())["config"]["dropconnect_convention"] == "published"
    path = tmp_path / "new" / L.CHECKPOINT
    tensors, state = read_checkpoint(path, L.FORMAT)
    assert state["config"]["dropconnect_convention"] == "published"
    del state["config"]["dropconnect_convention"]  # as a checkpoint written before the setting existed
    write_checkpoint(path, tensors, state, L.FORMAT)
    old = L.Trainer(tmp_path / "new", resume=True, **quiet)
    assert old.config.dropconnect_convention == "rescaled" and old.model.encoder.dropconnect_convention == "rescaled"
    with pytest.raises(UserError, match="cannot change dropconnect_convention"):
        L.Trainer(tmp_path / "new", resume=True, resume_overrides={"dropconnect_convention": "published"}, **quiet)


def test_logic_settings_are_checked_and_foreign_folders_refused(tmp_path, capsys):
    from dataclasses import fields

    assert sorted(L.LogicConfig.CHECKS) == sorted(f.name for f in fields(L.LogicConfig))
    with pytest.raises(UserError, match=r"logic settings: hidden_size must be an integer in \[1, 100000\], got 0"):
        L.LogicConfig(hidden_size=0)
    with pytest.raises(UserError, match=r"logic settings: lr must be a number > 0, got 'fast'"):
        L.LogicConfig(lr="fast")
    with pytest.raises(UserError, match="chunk_size .* must divide hidden_size"):
        L.LogicConfig(hidden_size=16, chunk_size=5)
    with pytest.raises(UserError, match=r"run/best.safetensors: seed must be an integer in \[0, "):
        L.LogicConfig.from_dict({"seed": -1}, "run/best.safetensors")
    with pytest.raises(UserError, match="max_steps must be an integer >= 1"):
        L.Trainer(tmp_path / "r", L.LogicConfig(**TINY), max_steps=0)
    lm = tmp_path / "lm"
    lm.mkdir()
    (lm / "config.json").write_text('{"model": {}}')
    args = ["logic", "train", "--out", str(lm), "--cell", "lstm", "--embed", "8", "--hidden", "16", "--mlp-hidden",
            "8", "--train-limit", "20", "--batch-size", "16", "--max-steps", "1", "--quiet"]
    assert main(args) == 2
    assert "lm: not empty and not a logic training run (it holds config.json)" in capsys.readouterr().err
    assert (lm / "config.json").read_text() == '{"model": {}}'
    assert main(args + ["--overwrite"]) == 0
    assert json.loads((lm / "config.json").read_text())["config"]["hidden_size"] == 16
    assert main(args) == 2 and "already holds a logic training run" in capsys.readouterr().err
