"""The training harness on its own: checkpoint codec, run-folder check, stop rules, metrics log."""

import json
import math
import os
import signal

import pytest
import torch

from onlstm.errors import UserError
from onlstm.training import (CHECKPOINT_FILE, DistInfo, MetricsLog, OutputKind, StopRules, TrainingDiverged,
                             check_finite, open_output, prepare_output, read_checkpoint, read_checkpoint_state,
                             resume_settings, write_checkpoint)


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


def _kind(resumable=True):
    """A run kind for the tests: files a.json, checkpoint, metrics; recognised by a.json."""
    names = frozenset({"a.json", CHECKPOINT_FILE, "metrics.jsonl", "plots"})
    return OutputKind("test run", names, lambda folder: (folder / "a.json").is_file(), format="f",
                      resumable=resumable)


def test_resume_settings_is_the_one_run_folder_check(tmp_path):
    run, kind = tmp_path / "run", _kind()
    assert resume_settings(run, False, kind) is None  # a missing folder: a new run may start
    with pytest.raises(UserError, match="no test run to resume .*empty or missing"):
        resume_settings(run, True, kind)
    run.mkdir()
    assert resume_settings(run, False, kind) is None  # empty
    (run / "a.json").write_text("{}")
    write_checkpoint(run / CHECKPOINT_FILE, {"big": torch.zeros(10)}, {"config": {"a": 1, "b": 2, "c": 3}}, "f")
    with pytest.raises(UserError, match="already holds a test run; use --resume to continue it, --overwrite"):
        resume_settings(run, False, kind)
    assert resume_settings(run, False, kind, overwrite=True) is None
    assert resume_settings(run, True, kind, {"b": 5}, fixed=["a"]) == {"a": 1, "b": 5, "c": 3}
    assert resume_settings(run, True, kind, {"a": 1}) == {"a": 1, "b": 2, "c": 3}
    with pytest.raises(UserError, match="cannot change a, c when resuming .*differ"):
        resume_settings(run, True, kind, {"a": 9, "b": 9, "c": 9}, fixed=["a", "c"])
    with pytest.raises(UserError, match="cannot change b "):
        resume_settings(run, True, kind, {"b": 9})  # fixed=None: nothing may change
    # a setting recorded by later versions: the saved run's value is the one given, and may be asked for
    later = {"d": "old"}
    assert resume_settings(run, True, kind, {"d": "old"}, recorded_later=later) == {"a": 1, "b": 2, "c": 3, "d": "old"}
    with pytest.raises(UserError, match="cannot change d"):
        resume_settings(run, True, kind, {"d": "new"}, recorded_later=later)
    with pytest.raises(UserError, match="--resume .* --overwrite"):
        resume_settings(run, True, kind, overwrite=True)
    (run / CHECKPOINT_FILE).unlink()
    with pytest.raises(UserError, match="no checkpoint to resume from"):
        resume_settings(run, True, kind)


def test_the_write_rule_refuses_foreign_folders_and_touches_nothing(tmp_path):
    kind = _kind(resumable=False)
    mine = tmp_path / "model"
    mine.mkdir()
    for name in ("config.json", "model.safetensors", "vocab.json"):
        (mine / name).write_text(name)
    (tmp_path / "file").write_text("x")
    before = sorted((p.name, p.read_text()) for p in mine.iterdir())
    with pytest.raises(UserError, match=r"model: not empty and not a test run \(it holds config.json, "
                                        r"model.safetensors, vocab.json\).*--overwrite"):
        prepare_output(mine, kind)
    with pytest.raises(UserError, match="no test run to resume .*holds config.json"):
        prepare_output(mine, kind, resume=True)
    with pytest.raises(UserError, match="file: exists and is a file"):
        prepare_output(tmp_path / "file", kind, overwrite=True)
    with pytest.raises(UserError, match="file is a file"):
        prepare_output(tmp_path / "file" / "run", kind)
    assert sorted((p.name, p.read_text()) for p in mine.iterdir()) == before
    # an output of its own kind is written again (no checkpoint: not a resumable run)
    (mine / "a.json").write_text("{}")
    (mine / "config.json").unlink()
    prepare_output(mine, kind)
    # --overwrite: the kind's own names are removed when writing starts, other files are kept
    (mine / "plots").mkdir()
    (mine / "plots" / "p.png").write_text("old plot")
    (mine / ".a.json.123.tmp").write_text("left by a kill -9")
    prepare_output(mine, kind, overwrite=True)
    assert (mine / "a.json").exists()  # the check touches nothing
    open_output(mine, kind, overwrite=True)
    assert sorted(p.name for p in mine.iterdir()) == ["model.safetensors", "vocab.json"]
    open_output(tmp_path / "new" / "deep", kind)
    assert (tmp_path / "new" / "deep").is_dir()


def test_an_unwritable_output_folder_is_refused_up_front(tmp_path, monkeypatch):
    ro = tmp_path / "ro"
    ro.mkdir()
    os.chmod(ro, 0o555)
    real_access = os.access
    if os.geteuid() == 0:  # root may write anyway: make the OS say what it says to a user
        monkeypatch.setattr(os, "access", lambda p, mode, **kw: not str(p).startswith(str(ro)) and real_access(p, mode))
    try:
        with pytest.raises(UserError, match=r"ro/run: cannot write: permission denied \(.*ro is where it would"):
            prepare_output(ro / "run", _kind())
        with pytest.raises(UserError, match="ro: cannot write: permission denied"):
            prepare_output(ro, _kind())
    finally:
        os.chmod(ro, 0o755)
    assert list(ro.iterdir()) == []


def test_os_errors_while_writing_are_one_line_user_errors(tmp_path, monkeypatch):
    import errno

    path = tmp_path / "c.safetensors"
    write_checkpoint(path, {"w": torch.ones(3)}, {"step": 1}, "f")
    before = path.read_bytes()
    real_replace = os.replace
    for code, words in ((errno.ENOSPC, "no space left on device"), (errno.EROFS, "read-only file system"),
                        (errno.EACCES, "permission denied")):
        def failing(src, dst, code=code):
            raise OSError(code, os.strerror(code), str(dst))

        monkeypatch.setattr(os, "replace", failing)
        with pytest.raises(UserError, match=f"(?i)c.safetensors: cannot write: {words}"):
            write_checkpoint(path, {"w": torch.zeros(3)}, {"step": 2}, "f")
        monkeypatch.setattr(os, "replace", real_replace)
        assert path.read_bytes() == before  # the previous checkpoint is intact
        assert not list(tmp_path.glob(".*tmp"))
    log = MetricsLog(tmp_path / "gone")
    with pytest.raises(UserError, match="metrics.jsonl: cannot write: no such file or directory"):
        log.write({"x": 1})


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


def test_one_check_per_setting_for_files_and_flags():
    import argparse
    from dataclasses import dataclass
    from typing import ClassVar, Optional

    from onlstm.cli import argtypes
    from onlstm.training import Check, validate_settings

    @dataclass
    class S:
        n: int = 1
        p: float = 0.5
        name: Optional[str] = None
        sizes: tuple = (1,)
        CHECKS: ClassVar[dict] = {"n": Check(int, low=1, high=9), "p": Check(float, low=0, high=1, high_open=True),
                                  "name": Check(str, choices=("a", "b"), optional=True),
                                  "sizes": Check(int, low=1, many=True)}

    assert validate_settings(S, {"n": 3, "p": 0, "sizes": [2, 3]}, "f") == {"n": 3, "p": 0.0, "sizes": [2, 3]}
    for values, message in (({"n": 0}, r"f: n must be an integer in \[1, 9\], got 0"),
                            ({"n": True}, "got True"), ({"n": 2.0}, "got 2.0"),
                            ({"p": 1}, r"f: p must be a number in \[0, 1\), got 1"),
                            ({"p": float("nan")}, "got nan"), ({"name": "c"}, "name must be one of 'a', 'b' or null"),
                            ({"sizes": []}, "sizes must be a non-empty list of integers >= 1"),
                            ({"sizes": [1, -1]}, r"got \[1, -1\]"), ({"x": 1}, "f: unknown setting 'x'")):
        with pytest.raises(UserError, match=message):
            validate_settings(S, values, "f")
    parse = argtypes.from_check(S.CHECKS["n"])
    assert parse("4") == 4
    for text, message in (("10", r"must be an integer in \[1, 9\], got '10'"), ("x", "got 'x'"), ("2.5", "'2.5'")):
        with pytest.raises(argparse.ArgumentTypeError, match=message):
            parse(text)
    assert argtypes.boolean("Yes") is True and argtypes.boolean("off") is False
    with pytest.raises(argparse.ArgumentTypeError, match="must be a finite number"):
        argtypes.finite_float("-inf")
    assert argtypes.probability("0") == 0.0 and argtypes.seed("0") == 0
    with pytest.raises(argparse.ArgumentTypeError, match=r"must be an integer in \[0, 4294967295\], got '-1'"):
        argtypes.seed("-1")
    with pytest.raises(argparse.ArgumentTypeError, match="'tpu:0' is not a device"):
        argtypes.device("tpu:0")
