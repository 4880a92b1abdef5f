"""The training harness on its own: checkpoint codec, run-folder check, stop rules, metrics log."""

import json
import math
import os
import signal

import pytest
import torch

from onlstm.errors import UserError
from onlstm.training import (CHECKPOINT_FILE, DistInfo, MetricsLog, StopRules, TrainingDiverged, check_finite,
                             read_checkpoint, read_checkpoint_state, resume_settings, write_checkpoint)


def test_checkpoint_round_trip_keeps_types_and_tensors(tmp_path):
    opt = torch.optim.Adam([torch.nn.Parameter(torch.randn(3, 2))], lr=0.01)
    opt.param_groups[0]["params"][0].grad = torch.ones(3, 2)
    opt.step()
    state = {"config": {"lr": 0.5, "sizes": [3, 4], "name": None}, "optimizer": opt.state_dict(),
             "history": [1.5, float("inf"), float("nan")], "pair": (1, (2, "x")), "odd": {7: "seven", "__x": 1},
             "tensor_in_list": [torch.arange(4)]}
    tensors = {"model.w": torch.randn(2, 5), "rng.0": torch.get_rng_state()}
    path = tmp_path / "c.safetensors"
    write_checkpoint(path, tensors, state, "test-format")
    got_tensors, got = read_checkpoint(path, "test-format")
    assert got_tensors.keys() == tensors.keys()
    for k in tensors:
        assert torch.equal(got_tensors[k], tensors[k])
    assert got["config"] == state["config"] and got["pair"] == (1, (2, "x")) and got["odd"] == {7: "seven", "__x": 1}
    assert got["history"][:2] == [1.5, float("inf")] and math.isnan(got["history"][2])
    assert torch.equal(got["tensor_in_list"][0], torch.arange(4))
    sd = opt.state_dict()
    assert got["optimizer"]["param_groups"] == sd["param_groups"]  # betas come back as a tuple
    for name, value in sd["state"][0].items():
        assert torch.equal(got["optimizer"]["state"][0][name], value)
    # the header alone: the settings as plain JSON, no tensor loaded
    header = read_checkpoint_state(path, "test-format")
    assert header["config"] == state["config"] and header["tensor_in_list"] == [None]
    raw = path.read_bytes()
    meta = json.loads(raw[8: 8 + int.from_bytes(raw[:8], "little")])["__metadata__"]
    assert json.loads(meta["state"])["config"] == state["config"] and meta["format"] == "test-format"


def test_checkpoint_errors_name_the_file(tmp_path):
    path = tmp_path / "c.safetensors"
    write_checkpoint(path, {}, {"a": 1}, "kind-a")
    with pytest.raises(UserError, match="not an kind-b file"):
        read_checkpoint(path, "kind-b")
    with pytest.raises(UserError, match="no such checkpoint"):
        read_checkpoint(tmp_path / "missing", "kind-a")
    path.write_bytes(path.read_bytes()[:20])
    with pytest.raises(UserError, match="unreadable checkpoint"):
        read_checkpoint(path, "kind-a")
    with pytest.raises(ValueError, match="reserved"):
        write_checkpoint(path, {"state.x": torch.zeros(1)}, {}, "kind-a")
    with pytest.raises(TypeError, match="set"):
        write_checkpoint(path, {}, {"s": {1, 2}}, "kind-a")
    assert not list(tmp_path.glob(".*tmp"))  # no temporary file left behind


def test_resume_settings_is_the_one_run_folder_check(tmp_path):
    run = tmp_path / "run"
    assert resume_settings(run, False, "f") is None  # empty folder: a new run may start
    with pytest.raises(UserError, match="no checkpoint to resume from"):
        resume_settings(run, True, "f")
    run.mkdir()
    write_checkpoint(run / CHECKPOINT_FILE, {"big": torch.zeros(10)}, {"config": {"a": 1, "b": 2, "c": 3}}, "f")
    with pytest.raises(UserError, match="already holds a run; use --resume"):
        resume_settings(run, False, "f")
    assert resume_settings(run, True, "f", {"b": 5}, fixed=["a"]) == {"a": 1, "b": 5, "c": 3}
    assert resume_settings(run, True, "f", {"a": 1}) == {"a": 1, "b": 2, "c": 3}
    with pytest.raises(UserError, match="cannot change a, c when resuming .*differ"):
        resume_settings(run, True, "f", {"a": 9, "b": 9, "c": 9}, fixed=["a", "c"])
    with pytest.raises(UserError, match="cannot change b "):
        resume_settings(run, True, "f", {"b": 9})  # fixed=None: nothing may change


def test_stop_rules_reasons_and_first_ctrl_c_only_asks():
    single = DistInfo()
    rules = StopRules(max_minutes=2.0, max_steps=10)
    assert rules.poll(1.0, 9, single) == (None, [])
    assert rules.poll(1.0, 10, single)[0] == "max_steps"
    assert rules.poll(2.0, 3, single)[0] == "max_minutes"
    assert rules.poll(0.0, 0, single, True, False) == (None, [True, False])
    assert StopRules().poll(1e9, 10**9, single)[0] is None
    before = signal.getsignal(signal.SIGINT)
    with rules:
        os.kill(os.getpid(), signal.SIGINT)  # the first one only sets the flag
        assert rules.poll(0.0, 0, single)[0] == "interrupt"
        with pytest.raises(KeyboardInterrupt):
            os.kill(os.getpid(), signal.SIGINT)
    assert signal.getsignal(signal.SIGINT) is before


def test_check_finite_raises_a_user_error_naming_the_checkpoint():
    check_finite("at step 3", "ck.safetensors", loss=1.0, other=2.0)
    with pytest.raises(TrainingDiverged, match=r"\(loss nan\) at step 3; .*last good checkpoint is ck.safetensors"):
        check_finite("at step 3", "ck.safetensors", loss=float("nan"))
    assert issubclass(TrainingDiverged, UserError) and issubclass(TrainingDiverged, ValueError)


def test_metrics_log_cuts_back_to_the_checkpointed_lines(tmp_path):
    log = MetricsLog(tmp_path)
    log.start(resume=False)
    for i in range(3):
        log.write({"i": i})
    resumed = MetricsLog(tmp_path, lines=2)
    resumed.start(resume=True)
    resumed.write({"i": "again"})
    lines = [json.loads(s) for s in (tmp_path / "metrics.jsonl").read_text().splitlines()]
    assert lines == [{"i": 0}, {"i": 1}, {"i": "again"}] and resumed.lines == 3
    quiet = MetricsLog(tmp_path / "other", enabled=False)
    quiet.start(resume=False)
    quiet.write({"x": 1})
    assert quiet.lines == 1 and not (tmp_path / "other").exists()
