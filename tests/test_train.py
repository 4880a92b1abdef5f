"""Training: loss goes down, exact resume, NaN stop, config resolution, DDP equality."""

import json
import os
import shutil
import subprocess
import sys

import pytest
import torch
from safetensors import safe_open

from onlstm.errors import UserError
from onlstm.tasks import lm as T
from onlstm.training import TrainingDiverged
from lm_helpers import write_small_corpus


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    return write_small_corpus(tmp_path_factory.mktemp("corpus"))


def _cfg(corpus, **kw):
    return T.resolve_config("tiny", overrides=dict(data=str(corpus), log_interval=5, **kw))


def _valid_losses(run):
    return [r["loss"] for r in map(json.loads, (run / "metrics.jsonl").read_text().splitlines()) if r["kind"] == "valid"]


def _train_losses(run):
    return [r["loss"] for r in map(json.loads, (run / "metrics.jsonl").read_text().splitlines()) if r["kind"] == "train"]


def test_tiny_loss_goes_down_and_run_is_a_model_folder(corpus, tmp_path):
    res = T.train(_cfg(corpus, epochs=3), tmp_path / "run", log=lambda s: None, progress=False)
    assert res.stopped_by == "epochs" and res.epochs_done == 3
    losses = _train_losses(tmp_path / "run")
    assert sum(losses[-5:]) / 5 < sum(losses[:5]) / 5 - 0.5
    valid = _valid_losses(tmp_path / "run")
    assert len(valid) == 3 and valid[-1] < 6.0
    from onlstm.lm import LanguageModel

    model = LanguageModel.from_pretrained(tmp_path / "run")
    ev = T.evaluate_model(model, "valid", str(corpus), batch_size=4, bptt=10, progress=False)
    assert abs(ev["loss"] - min(valid)) < 1e-4  # the folder holds the best model


def test_resume_gives_the_same_losses(corpus, tmp_path):
    T.train(_cfg(corpus, epochs=3), tmp_path / "full", log=lambda s: None, progress=False)
    first = T.train(_cfg(corpus, epochs=3, max_steps=200), tmp_path / "cut", log=lambda s: None, progress=False)
    assert first.stopped_by == "max_steps"
    again = T.train(None, tmp_path / "cut", resume=True, log=lambda s: None, progress=False,
                    resume_overrides={"max_steps": 10**9})
    assert again.stopped_by == "epochs"
    assert _valid_losses(tmp_path / "full") == _valid_losses(tmp_path / "cut")
    assert _train_losses(tmp_path / "full") == _train_losses(tmp_path / "cut")


def test_existing_run_needs_resume(corpus, tmp_path):
    T.train(_cfg(corpus, max_steps=3), tmp_path / "r", log=lambda s: None, progress=False)
    with pytest.raises(UserError, match="--resume"):
        T.train(_cfg(corpus, max_steps=3), tmp_path / "r", log=lambda s: None, progress=False)


def test_nan_loss_stops_with_clear_error_and_keeps_checkpoint(corpus, tmp_path):
    T.train(_cfg(corpus, max_steps=5), tmp_path / "r", log=lambda s: None, progress=False)
    before = (tmp_path / "r" / "checkpoint.safetensors").read_bytes()
    with pytest.raises(TrainingDiverged, match="last good checkpoint"):
        T.train(None, tmp_path / "r", resume=True, log=lambda s: None, progress=False,
                resume_overrides=dict(max_steps=50, lr=1e38, clip=0.0))
    with pytest.raises(UserError, match="cannot change hidden_sizes"):
        T.train(None, tmp_path / "r", resume=True, resume_overrides=dict(hidden_sizes=[8, 16]))
    assert (tmp_path / "r" / "checkpoint.safetensors").read_bytes() == before


def test_config_file_and_overrides(tmp_path):
    f = tmp_path / "c.toml"
    f.write_text('lr = 5.0\nhidden_sizes = [32, 16]\n')
    cfg = T.resolve_config("tiny", str(f), {"lr": 7.0})
    assert cfg.lr == 7.0 and cfg.hidden_sizes == [32, 16] and cfg.emb_size == 16
    with pytest.raises(UserError, match="unknown setting 'nope'"):
        T.resolve_config("tiny", overrides={"nope": 1})
    bad = tmp_path / "bad.json"
    bad.write_text("{")
    with pytest.raises(UserError, match="bad.json"):
        T.resolve_config("tiny", str(bad))
    with pytest.raises(UserError, match="preset"):
        T.resolve_config("huge")


def test_lstm_baseline_trains_through_the_same_pipeline(corpus, tmp_path):
    res = T.train(_cfg(corpus, cell="lstm", max_steps=20), tmp_path / "lstm", log=lambda s: None, progress=False)
    assert res.steps == 20


def _weights(path):
    with safe_open(str(path), "pt") as f:
        return {k: f.get_tensor(k) for k in f.keys() if k.startswith("model.")}


@pytest.mark.skipif(not torch.distributed.is_available(), reason="torch.distributed unavailable")
def test_ddp_step_equals_single_process_step(corpus, tmp_path):
    common = ["--preset", "tiny", "--data", str(corpus), "--max-steps", "1", "--dropout", "0", "--dropouth", "0",
              "--dropouti", "0", "--dropoute", "0", "--wdrop", "0", "--threads", "1"]
    env = dict(os.environ, OMP_NUM_THREADS="1")
    single = subprocess.run([sys.executable, "-m", "onlstm", "train", "--out", str(tmp_path / "single")] + common,
                            capture_output=True, text=True, env=env)
    assert single.returncode == 0, single.stderr
    ddp = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2",
                          "-m", "onlstm", "train", "--out", str(tmp_path / "ddp")] + common,
                         capture_output=True, text=True, env=env, timeout=300)
    assert ddp.returncode == 0, ddp.stderr[-3000:]
    a, b = _weights(tmp_path / "single" / "checkpoint.safetensors"), _weights(tmp_path / "ddp" / "checkpoint.safetensors")
    assert a.keys() == b.keys()
    start = _weights_initial(corpus)
    moved = False
    for k in a:
        assert torch.allclose(a[k], b[k], atol=1e-6), k
        moved |= not torch.equal(a[k], start[k])
    assert moved  # the step changed the weights


def _weights_initial(corpus):
    from onlstm.corpus import load_corpus
    from onlstm.lm import LanguageModel

    cfg = T.resolve_config("tiny", overrides=dict(data=str(corpus)))
    torch.manual_seed(cfg.seed)
    vocab = load_corpus(str(corpus), required=("train", "valid")).vocab
    model = LanguageModel(cfg.model_config(len(vocab)), vocab)
    return {f"model.{k}": v for k, v in model.state_dict().items() if k != "decoder.weight"}


def test_a_last_window_of_one_step_trains(corpus, tmp_path):
    """TAR needs two steps; an epoch whose last window has one step must not produce NaN."""
    from onlstm.batching import batchify
    from onlstm.corpus import load_corpus

    n_steps = batchify(load_corpus(str(corpus), required=("train", "valid")).train, 4).size(0)
    bptt = next(b for b in range(5, 60) if (n_steps - 1) % b == 1)
    res = T.train(_cfg(corpus, epochs=1, bptt=bptt, variable_bptt=False), tmp_path / "r", log=lambda s: None,
                  progress=False)
    assert res.stopped_by == "epochs" and res.best_valid_loss < 10


def test_ctrl_c_saves_and_resume_continues(corpus, tmp_path):
    import signal
    import time

    run = tmp_path / "r"
    proc = subprocess.Popen([sys.executable, "-m", "onlstm", "train", "--preset", "tiny", "--data", str(corpus),
                             "--out", str(run), "--epochs", "50", "--log-interval", "5"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.time() + 120
    while time.time() < deadline and not ((run / "metrics.jsonl").exists() and (run / "metrics.jsonl").read_text()):
        time.sleep(0.2)
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 130, err
    assert "Traceback" not in err and "interrupt" in out
    assert (run / "checkpoint.safetensors").exists()
    res = T.train(None, run, resume=True, log=lambda s: None, progress=False, resume_overrides={"epochs": 1})
    assert res.epochs_done == 1


def _write_legacy_checkpoint(path, tensors, state):
    """A checkpoint as the code before the training harness wrote it: no "format" entry,
    every dict as {"__dict__": pairs}, every list/tuple as {"__list__": items, "tuple": bool}."""
    import json
    import math

    from safetensors.torch import save_file

    flat = {}

    def old(obj, prefix):
        if isinstance(obj, torch.Tensor):
            flat[prefix] = obj.contiguous()
            return {"__tensor__": prefix}
        if isinstance(obj, dict):
            return {"__dict__": [[old(k, f"{prefix}.k{i}"), old(v, f"{prefix}.{i}")] for i, (k, v) in enumerate(obj.items())]}
        if isinstance(obj, (list, tuple)):
            return {"__list__": [old(v, f"{prefix}.{i}") for i, v in enumerate(obj)], "tuple": isinstance(obj, tuple)}
        if isinstance(obj, float) and not math.isfinite(obj):
            return {"__float__": repr(obj)}
        return obj

    meta = old(state, "state")
    flat.update(tensors)
    save_file(flat, str(path), metadata={"state": json.dumps(meta)})


def test_a_checkpoint_in_the_old_layout_resumes_exactly(corpus, tmp_path):
    from onlstm.tasks.lm.recipe import FORMAT
    from onlstm.training import read_checkpoint

    T.train(_cfg(corpus, epochs=2), tmp_path / "full", log=lambda s: None, progress=False)
    # stopped at a multiple of log_interval: a log group does not span the cut
    T.train(_cfg(corpus, epochs=2, max_steps=35), tmp_path / "cut", log=lambda s: None, progress=False)
    path = tmp_path / "cut" / "checkpoint.safetensors"
    tensors, state = read_checkpoint(path, FORMAT)
    _write_legacy_checkpoint(path, tensors, state)
    with safe_open(str(path), "pt") as f:
        assert "format" not in f.metadata()
    T.train(None, tmp_path / "cut", resume=True, log=lambda s: None, progress=False,
            resume_overrides={"max_steps": 10**9})
    assert _train_losses(tmp_path / "full") == _train_losses(tmp_path / "cut")
    assert _valid_losses(tmp_path / "full") == _valid_losses(tmp_path / "cut")


def test_the_dropconnect_convention_is_recorded_and_an_old_run_resumes_rescaled(corpus, tmp_path):
    from onlstm.cli import main
    from onlstm.lm import LanguageModel
    from onlstm.tasks.lm.recipe import FORMAT
    from onlstm.training import read_checkpoint, write_checkpoint

    quiet = dict(log=lambda s: None, progress=False)
    new = T.train(_cfg(corpus, epochs=1), tmp_path / "new", **quiet).run_dir
    assert json.loads((new / "train_config.json").read_text())["dropconnect_convention"] is None  # the cell's own:
    assert LanguageModel.from_pretrained(new).config.dropconnect_convention == "published"  # ON-LSTM's published
    T.train(_cfg(corpus, epochs=1, dropconnect_convention="rescaled"), tmp_path / "chosen", **quiet)
    assert LanguageModel.from_pretrained(tmp_path / "chosen").config.dropconnect_convention == "rescaled"

    # a run saved before the setting existed: its checkpoint's settings lack it
    old = tmp_path / "old"
    T.train(_cfg(corpus, epochs=1, max_steps=3), old, **quiet)
    tensors, state = read_checkpoint(old / "checkpoint.safetensors", FORMAT)
    del state["config"]["dropconnect_convention"]
    write_checkpoint(old / "checkpoint.safetensors", tensors, state, FORMAT)
    (old / "train_config.json").write_text(json.dumps(state["config"]))
    with pytest.raises(UserError, match="cannot change dropconnect_convention"):
        T.train(None, old, resume=True, resume_overrides={"dropconnect_convention": "published"}, **quiet)
    assert main(["train", "--resume", "--out", str(old), "--dropconnect-convention", "rescaled",
                 "--max-steps", "100000"]) == 0
    assert LanguageModel.from_pretrained(old).config.dropconnect_convention == "rescaled"
    assert json.loads((old / "train_config.json").read_text())["dropconnect_convention"] == "rescaled"
    _, state = read_checkpoint(old / "checkpoint.safetensors", FORMAT)
    assert state["config"]["dropconnect_convention"] == "rescaled"


def test_settings_are_checked_where_they_are_read(tmp_path):
    with pytest.raises(UserError, match=r"training settings: lr must be a number > 0, got 'fast'"):
        T.TrainConfig(lr="fast")
    with pytest.raises(UserError, match=r"hidden_sizes must be a non-empty list of integers >= 1, got \[\]"):
        T.TrainConfig(hidden_sizes=[])
    cfg = T.TrainConfig(lr=1, max_vocab=None)
    assert cfg.lr == 1.0 and isinstance(cfg.lr, float)
    f = tmp_path / "s.json"
    for text, match in (('{"bptt": 0}', "s.json: bptt must be an integer >= 1, got 0"),
                        ('{"batch_size": true}', "s.json: batch_size must be an integer >= 1, got True"),
                        ('{"epochs": 2.5}', "s.json: epochs must be an integer >= 1"),
                        ('{"dropouth": -0.1}', r"s.json: dropouth must be a number in \[0, 1\)"),
                        ('{"optimizer": "rmsprop"}', "s.json: optimizer must be one of 'sgd', 'asgd', 'adam'"),
                        ('{"data": 3}', "s.json: data must be a string or null"),
                        ('{"device": "gpu"}', "s.json: device must be cpu, cuda or cuda:N"),
                        ('{"lr": 1, "lr2": 2, "momentum": 0}', "s.json: unknown settings 'lr2', 'momentum'"),
                        ('"lr"', "s.json: the settings must be an object")):
        f.write_text(text)
        with pytest.raises(UserError, match=match):
            T.resolve_config("tiny", str(f))
    f.write_text('{"hidden_sizes": [22, 16]}')  # checked as the model will be, before any data is read
    with pytest.raises(UserError, match=r"s.json \(with the preset and flags\): chunk_size \(4\) must divide"):
        T.resolve_config("tiny", str(f))
    assert sorted(T.TrainConfig.CHECKS) == sorted(T.TrainConfig.field_names())


def test_a_backward_model_learns_the_reversed_text(corpus, tmp_path):
    from onlstm.lm import LanguageModel

    res = T.train(_cfg(corpus, direction="backward", epochs=1), tmp_path / "back", log=lambda s: None, progress=False)
    assert res.epochs_done == 1
    assert json.loads((tmp_path / "back" / "config.json").read_text())["model"]["direction"] == "backward"
    model = LanguageModel.from_pretrained(tmp_path / "back")
    ev = T.evaluate_model(model, "valid", str(corpus), batch_size=4, bptt=10, progress=False)
    assert abs(ev["loss"] - min(_valid_losses(tmp_path / "back"))) < 1e-4  # validated on the reversed text too
    from onlstm.corpus import load_corpus

    ids = load_corpus(str(corpus), vocab=model.vocab, options=model.text_options, required=("valid",)).valid
    assert T.evaluate_ids(model, ids.flip(0), batch_size=4, bptt=10) == pytest.approx(ev["loss"], abs=1e-6)
    assert abs(T.evaluate_ids(model, ids, batch_size=4, bptt=10) - ev["loss"]) > 1e-4  # not the forward text


def test_init_from_starts_at_the_saved_weights_and_keep_epochs_saves_each_epoch(corpus, tmp_path):
    from onlstm.lm import LanguageModel

    T.train(_cfg(corpus, epochs=2), tmp_path / "base", log=lambda s: None, progress=False)
    base = LanguageModel.from_pretrained(tmp_path / "base")
    base_loss = T.evaluate_model(base, "valid", str(corpus), batch_size=4, bptt=10, progress=False)["loss"]
    fresh = LanguageModel(base.config, base.vocab)  # random weights
    fresh_loss = T.evaluate_model(fresh, "valid", str(corpus), batch_size=4, bptt=10, progress=False)["loss"]
    tuned = T.train(_cfg(corpus, epochs=2, init_from=str(tmp_path / "base"), lr=1e-9, keep_epochs=True),
                    tmp_path / "tuned", log=lambda s: None, progress=False)
    assert fresh_loss > base_loss + 0.5  # random weights are far worse
    assert tuned.best_valid_loss == pytest.approx(base_loss, abs=1e-3)  # lr ~0: the base model's loss
    for epoch in (1, 2):  # every epoch's model kept, loadable
        kept = LanguageModel.from_pretrained(tmp_path / "tuned" / "epochs" / f"{epoch:03d}")
        assert kept.training_info["epoch"] == epoch
    assert not (tmp_path / "base" / "epochs").exists()
    with pytest.raises(UserError, match="init-from .*hidden_sizes"):
        T.train(_cfg(corpus, init_from=str(tmp_path / "base"), hidden_sizes=[20, 16]), tmp_path / "bad",
                log=lambda s: None, progress=False)


def test_asgd_averages_from_the_first_step(corpus, tmp_path):
    T.train(_cfg(corpus, epochs=1, optimizer="asgd"), tmp_path / "avg", log=lambda s: None, progress=False)
    T.train(_cfg(corpus, epochs=1, optimizer="sgd"), tmp_path / "plain", log=lambda s: None, progress=False)
    records = [json.loads(line) for line in (tmp_path / "avg" / "metrics.jsonl").read_text().splitlines()]
    assert [r["optimizer"] for r in records if r["kind"] == "valid"] == ["asgd"]
    # ASGD's iterates are SGD's steps (its step size lags the window's lr scale by one step, as in AWD-LSTM)
    assert _train_losses(tmp_path / "avg")[0] == pytest.approx(_train_losses(tmp_path / "plain")[0], abs=0.1)
    assert _valid_losses(tmp_path / "avg") != _valid_losses(tmp_path / "plain")  # validated with the averaged weights
