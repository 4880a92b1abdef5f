"""Every command against bad input: exit code 2, a message naming the culprit, no traceback,
and nothing touched in the folders involved.

One row per probe: an id, a setup that prepares files under ``tmp`` and returns the argument
list (``{model}`` is a tiny model folder made for the test, ``{tmp}`` the test's folder), and a
fragment that the error message must contain. The command runs in-process through
``onlstm.cli.main``; an exception escaping it is the traceback a user would have seen.
"""

from __future__ import annotations

import gzip
import hashlib
import json
import os
import shutil
import stat
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from onlstm.cli import main
from lm_helpers import write_tiny_model

WORDS = "the cat sat on a mat and dog ran".split()


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory) -> Path:
    """A tiny, untrained ON-LSTM language model folder (random weights)."""
    return write_tiny_model(tmp_path_factory.mktemp("model") / "m", WORDS)


def snapshot(folder: Path) -> dict:
    """Names, modes and content hashes of everything under ``folder``."""
    if not folder.exists():
        return {}
    out = {}
    for p in sorted(folder.rglob("*")):
        if p.is_file():
            out[str(p.relative_to(folder))] = (stat.S_IMODE(p.stat().st_mode), hashlib.sha256(p.read_bytes()).hexdigest())
        else:
            out[str(p.relative_to(folder))] = "dir"
    return out


def copy_model(model_dir: Path, tmp: Path, edit=None) -> Path:
    """A copy of the tiny model with its config.json edited by ``edit(config_dict)``."""
    dst = tmp / "edited"
    shutil.copytree(model_dir, dst)
    if edit is not None:
        cfg = json.loads((dst / "config.json").read_text())
        edit(cfg)
        (dst / "config.json").write_text(json.dumps(cfg))
    return dst


def _model_edit(key, value):
    def edit(cfg):
        if value is _DELETE:
            del cfg["model"][key]
        else:
            cfg["model"][key] = value
    return edit


_DELETE = object()


def setup_model_folder_clash(model_dir, tmp, mp):
    dst = copy_model(model_dir, tmp)
    return ["train", "--preset", "tiny", "--out", str(dst), "--max-steps", "1"], dst


def setup_logic_over_lm(model_dir, tmp, mp):
    dst = copy_model(model_dir, tmp)
    return ["logic", "train", "--out", str(dst), "--max-steps", "1", "--train-limit", "10"], dst


def setup_config(key, value):
    def setup(model_dir, tmp, mp):
        dst = copy_model(model_dir, tmp, _model_edit(key, value))
        return ["evaluate", str(dst), "--split", str(write_text(tmp, "the cat sat\n"))], dst
    return setup


def setup_config_no_model(model_dir, tmp, mp):
    def edit(cfg):
        del cfg["model"]
    dst = copy_model(model_dir, tmp, edit)
    return ["parse", "the cat", "--model", str(dst)], dst


def write_text(tmp: Path, text: str, name: str = "text.txt") -> Path:
    p = tmp / name
    p.write_text(text)
    return p


def setup_args(*args):
    def setup(model_dir, tmp, mp):
        return [a.format(model=model_dir, tmp=tmp) for a in args], None
    return setup


def setup_on_model_copy(*args):
    """``args`` with ``{copy}``: a copy of the tiny model folder, which must stay untouched."""
    def setup(model_dir, tmp, mp):
        dst = copy_model(model_dir, tmp)
        return [a.format(model=model_dir, tmp=tmp, copy=dst) for a in args], dst
    return setup


def setup_on_file(*args):
    """``args`` with ``{file}``: an ordinary file where a folder is expected."""
    def setup(model_dir, tmp, mp):
        f = write_text(tmp, "my notes\n", "notes.txt")
        return [a.format(model=model_dir, tmp=tmp, file=f) for a in args], tmp
    return setup


def make_readonly(tmp: Path, mp) -> Path:
    """A folder without write permission; for root (who may write anyway) the OS's answer to
    everyone else is simulated by ``os.access``."""
    ro = tmp / "ro"
    ro.mkdir()
    os.chmod(ro, 0o555)
    if os.geteuid() == 0:
        real = os.access
        mp.setattr(os, "access", lambda p, mode, **kw: not str(p).startswith(str(ro)) and real(p, mode, **kw))
    return ro


def setup_readonly(*args):
    def setup(model_dir, tmp, mp):
        ro = make_readonly(tmp, mp)
        return [a.format(model=model_dir, tmp=tmp, ro=ro) for a in args], ro
    return setup


def setup_config_file(text, suffix=".json"):
    def setup(model_dir, tmp, mp):
        p = write_text(tmp, text, "settings" + suffix)
        return ["train", "--preset", "tiny", "--config", str(p), "--out", str(tmp / "run")], None
    return setup


def setup_treebank(data: bytes):
    def setup(model_dir, tmp, mp):
        p = tmp / "bank.mrg"
        p.write_bytes(data)
        return ["parse-eval", str(p), "--baselines-only"], None
    return setup


def setup_nonutf8_file(model_dir, tmp, mp):
    p = tmp / "latin1.txt"
    p.write_bytes("the cat\nthe caf\xe9 sat\n".encode("latin-1"))
    return ["parse", "--file", str(p), "--model", str(model_dir)], None


def setup_logic_no_state(model_dir, tmp, mp):
    from safetensors.torch import save_file
    run = tmp / "logicrun"
    run.mkdir()
    (run / "config.json").write_text(json.dumps({"format": "onlstm-logic", "cell": "onlstm"}))
    save_file({"w": torch.zeros(2)}, str(run / "checkpoint.safetensors"))
    return ["logic", "eval", str(run)], run


# (id, setup, fragment the message must contain)
PROBES = [
    # 1. data loss
    ("train-over-model-folder", setup_model_folder_clash, "edited"),
    ("logic-train-over-lm-folder", setup_logic_over_lm, "edited"),
    # 2. untrusted model folders: checked before anything is allocated
    ("config-huge-hidden", setup_config("hidden_sizes", [10**9, 8]), "hidden_sizes"),
    ("config-hidden-4000", setup_config("hidden_sizes", [4000, 8]), "hidden_sizes"),
    ("config-no-model", setup_config_no_model, "model"),
    ("config-chunk-0", setup_config("chunk_size", 0), "chunk_size"),
    ("config-negative-size", setup_config("emb_size", -8), "emb_size"),
    ("config-hidden-string", setup_config("hidden_sizes", "16 8"), "hidden_sizes"),
    ("config-dropout-2", setup_config("dropout", 2.0), "dropout"),
    ("config-vocab-mismatch", setup_config("vocab_size", 99), "vocab"),
    # 5. numbers out of range
    ("train-batch-size-0", setup_args("train", "--preset", "tiny", "--batch-size", "0", "--out", "{tmp}/r"), "--batch-size"),
    ("train-bptt-0", setup_args("train", "--preset", "tiny", "--bptt", "0", "--out", "{tmp}/r"), "--bptt"),
    ("train-lr-negative", setup_args("train", "--preset", "tiny", "--lr", "-1", "--out", "{tmp}/r"), "--lr"),
    ("train-config-lr-string", setup_config_file('{"lr": "fast"}'), "lr"),
    ("train-config-unknown-key", setup_config_file('{"learning_rate": 1}'), "learning_rate"),
    ("train-readonly-out", setup_readonly("train", "--preset", "tiny", "--out", "{ro}/run", "--max-steps", "1"),
     "ro/run: cannot write: permission denied"),
    ("evaluate-bptt-0", setup_args("evaluate", "{model}", "--bptt", "0"), "--bptt"),
    ("evaluate-batch-0", setup_args("evaluate", "{model}", "--batch-size", "0"), "--batch-size"),
    ("generate-temperature-nan", setup_args("generate", "{model}", "--temperature", "nan"), "--temperature"),
    ("generate-tokens-negative", setup_args("generate", "{model}", "--tokens", "-5"), "--tokens"),
    ("generate-top-k-0", setup_args("generate", "{model}", "--top-k", "0"), "--top-k"),
    ("parse-batch-0", setup_args("parse", "the cat", "--model", "{model}", "--batch-size", "0"), "--batch-size"),
    ("parse-eval-max-length-0", setup_args("parse-eval", "--baselines-only", "--max-length", "0"), "--max-length"),
    ("logic-eval-no-state", setup_logic_no_state, "state"),
    # 6./7. files
    ("parse-file-is-folder", setup_args("parse", "--file", "{tmp}", "--model", "{model}"), "directory"),
    ("parse-file-not-utf8", setup_nonutf8_file, "line 2"),
    ("treebank-binary", setup_treebank(b"\x00\x01\x02(S (NN x))\x1b[31m"), "bank.mrg"),
    ("treebank-unbalanced", setup_treebank(b"(S (NP (NN a)) (VP (VB b))\n"), "bank.mrg"),
    # -- added with issue 12's fixes --
    # the write rule: every command that writes a folder
    ("train-resume-model-folder", setup_on_model_copy("train", "--resume", "--out", "{copy}"),
     "no language-model training run to resume"),
    ("train-resume-missing", setup_args("train", "--resume", "--out", "{tmp}/none"), "none: no language-model"),
    ("train-resume-and-overwrite", setup_on_model_copy("train", "--resume", "--overwrite", "--out", "{copy}"),
     "--overwrite"),
    ("train-out-is-a-file", setup_on_file("train", "--preset", "tiny", "--out", "{file}"), "notes.txt: exists and is a file"),
    ("train-out-below-a-file", setup_on_file("train", "--preset", "tiny", "--out", "{file}/run"), "notes.txt is a file"),
    ("logic-train-out-is-a-file", setup_on_file("logic", "train", "--out", "{file}"), "notes.txt: exists and is a file"),
    ("logic-resume-lm-folder", setup_on_model_copy("logic", "train", "--resume", "--out", "{copy}"),
     "no logic training run to resume"),
    ("logic-train-readonly-out", setup_readonly("logic", "train", "--out", "{ro}", "--train-limit", "10"),
     "ro: cannot write: permission denied"),
    ("demo-out-is-a-file", setup_on_file("demo", "--model", "{model}", "--out", "{file}"), "notes.txt: exists and is a file"),
    ("demo-out-onto-model-folder", setup_on_model_copy("demo", "--model", "{model}", "--out", "{copy}", "--quiet"),
     "edited: not empty and not a demo report folder"),
    ("demo-readonly-out", setup_readonly("demo", "--model", "{model}", "--out", "{ro}/report", "--quiet"),
     "permission denied"),
    ("import-out-onto-model-folder", setup_on_model_copy("import-published", "{tmp}/ckpt.pt", "--corpus",
                                                         "{tmp}/corpus.data", "--out", "{copy}"),
     "edited: not empty and not a model folder imported"),
    # numbers, flags and settings out of range
    ("train-max-minutes-negative", setup_args("train", "--preset", "tiny", "--max-minutes", "-1", "--out", "{tmp}/r"),
     "argument --max-minutes: must be a number > 0"),
    ("train-init-from-missing", setup_args("train", "--preset", "tiny", "--init-from", "nope", "--out", "{tmp}/r"),
     "--init-from nope: no such model folder"),
    ("train-init-from-other-shape", setup_args("train", "--preset", "tiny", "--init-from", "{model}", "--out", "{tmp}/r"),
     "--init-from"),
    ("train-epochs-0", setup_args("train", "--preset", "tiny", "--epochs", "0", "--out", "{tmp}/r"), "--epochs"),
    ("train-seed-negative", setup_args("train", "--preset", "tiny", "--seed", "-1", "--out", "{tmp}/r"), "--seed"),
    ("train-threads-0", setup_args("train", "--preset", "tiny", "--threads", "0", "--out", "{tmp}/r"), "--threads"),
    ("train-dropout-1", setup_args("train", "--preset", "tiny", "--dropout", "1", "--out", "{tmp}/r"),
     "argument --dropout: must be a number in [0, 1)"),
    ("train-hidden-sizes-0", setup_args("train", "--preset", "tiny", "--hidden-sizes", "16", "0", "--out", "{tmp}/r"),
     "--hidden-sizes"),
    ("train-lr-inf", setup_args("train", "--preset", "tiny", "--lr", "inf", "--out", "{tmp}/r"), "--lr"),
    ("train-bool-garbage", setup_args("train", "--preset", "tiny", "--asgd", "maybe", "--out", "{tmp}/r"),
     "argument --asgd: must be true or false"),
    ("train-convention-unknown", setup_args("train", "--preset", "tiny", "--dropconnect-convention", "scaled",
                                            "--out", "{tmp}/r"), "--dropconnect-convention"),
    ("train-device-missing-gpu", setup_args("train", "--preset", "tiny", "--device", "cuda:99", "--out", "{tmp}/r"),
     "argument --device: cuda:99"),
    ("train-device-garbage", setup_args("train", "--preset", "tiny", "--device", "gpu", "--out", "{tmp}/r"),
     "'gpu' is not a device"),
    ("train-config-hidden-string", setup_config_file('{"hidden_sizes": "16 8"}'), "settings.json: hidden_sizes"),
    ("train-config-bool-string", setup_config_file('{"variable_bptt": "no"}'), "settings.json: variable_bptt"),
    ("train-config-nan", setup_config_file('{"lr": NaN}'), "settings.json: lr must be a number > 0"),
    ("train-config-list", setup_config_file("[1, 2]"), "settings.json"),
    ("train-config-toml-type", setup_config_file('lr = "fast"\n', ".toml"), "settings.toml: lr"),
    ("train-config-chunk-not-dividing", setup_config_file('{"chunk_size": 5}'), "chunk_size"),
    ("train-config-emb-untied", setup_config_file('{"emb_size": 12}'), "emb_size"),
    ("train-config-huge", setup_config_file('{"hidden_sizes": [1000000000, 16]}'), "hidden_sizes"),
    ("train-config-missing", setup_args("train", "--preset", "tiny", "--config", "{tmp}/none.json", "--out", "{tmp}/r"),
     "none.json"),
    ("train-config-folder", setup_args("train", "--preset", "tiny", "--config", "{tmp}", "--out", "{tmp}/r"),
     "directory"),
    ("logic-train-hidden-0", setup_args("logic", "train", "--out", "{tmp}/r", "--hidden", "0"), "--hidden"),
    ("logic-train-chunk-not-dividing", setup_args("logic", "train", "--out", "{tmp}/r", "--hidden", "16",
                                                  "--chunk-size", "5"), "--chunk-size"),
    ("logic-train-valid-fraction-1", setup_args("logic", "train", "--out", "{tmp}/r", "--valid-fraction", "1"),
     "--valid-fraction"),
    ("logic-train-max-ops-13", setup_args("logic", "train", "--out", "{tmp}/r", "--max-ops", "13"), "--max-ops"),
    ("logic-train-max-minutes-0", setup_args("logic", "train", "--out", "{tmp}/r", "--max-minutes", "0"),
     "--max-minutes"),
    ("logic-train-device-missing-gpu", setup_args("logic", "train", "--out", "{tmp}/r", "--device", "cuda:99"),
     "argument --device"),
    ("logic-eval-limit-0", setup_args("logic", "eval", "{tmp}", "--limit", "0"), "--limit"),
    ("logic-eval-lm-folder", setup_on_model_copy("logic", "eval", "{copy}"), "checkpoint"),
    ("evaluate-text-too-short", setup_args("evaluate", "{model}", "--split", "{model}/vocab.json", "--batch-size",
                                           "100000"), "too few for batch size"),
    ("generate-temperature-inf", setup_args("generate", "{model}", "--temperature", "inf"), "--temperature"),
    ("generate-temperature-0", setup_args("generate", "{model}", "--temperature", "0"), "--temperature"),
    ("generate-seed-negative", setup_args("generate", "{model}", "--seed", "-3"), "--seed"),
    ("demo-eval-batch-0", setup_args("demo", "--model", "{model}", "--eval-batch-size", "0"), "--eval-batch-size"),
    ("import-parse-layer-0", setup_args("import-published", "x.pt", "--corpus", "c", "--out", "{tmp}/m",
                                        "--parse-layer", "0"), "--parse-layer"),
    ("parse-layer-0", setup_args("parse", "the cat", "--model", "{model}", "--layer", "0"),
     "argument --layer: must be a layer number (1, 2, ...) or 'mean', got '0'"),
    ("parse-layer-beyond", setup_args("parse", "the cat", "--model", "{model}", "--layer", "3"), "--layer must be 1..2"),
    ("parse-eval-show-0", setup_args("parse-eval", "--baselines-only", "--show", "0"), "--show"),
    ("parse-eval-seed-negative", setup_args("parse-eval", "--baselines-only", "--seed", "-1"), "--seed"),
    ("parse-eval-batch-0", setup_args("parse-eval", "--model", "{model}", "--batch-size", "0"), "--batch-size"),
    ("syneval-limit-0", setup_args("syneval", "{model}", "--limit", "0"), "--limit"),
    ("syneval-batch-0", setup_args("syneval", "{model}", "--batch-size", "0"), "--batch-size"),
]


@pytest.mark.parametrize("probe_id,setup,fragment", PROBES, ids=[p[0] for p in PROBES])
def test_bad_input_exits_2_with_message(probe_id, setup, fragment, model_dir, tmp_path, capsys, monkeypatch):
    argv, folder = setup(model_dir, tmp_path, monkeypatch)
    before = snapshot(folder) if folder is not None else None
    model_before = snapshot(model_dir)
    try:
        code = main(argv)
    except SystemExit as exit_:  # argparse rejects a value
        code = exit_.code
    err = capsys.readouterr().err
    assert code == 2, f"{probe_id}: exit code {code}, stderr: {err}"
    assert fragment in err, f"{probe_id}: message does not name {fragment!r}: {err}"
    assert "Traceback" not in err
    assert not any(ord(ch) < 32 and ch not in "\n\t" for ch in err), f"raw control bytes printed: {err!r}"
    if folder is not None:
        assert snapshot(folder) == before, f"{probe_id}: {folder} was changed"
    assert snapshot(model_dir) == model_before


def test_closed_stdin_is_a_clear_error(model_dir):
    res = subprocess.run([sys.executable, "-m", "onlstm", "parse", "--model", str(model_dir)],
                         stdin=subprocess.DEVNULL if os.name == "nt" else None, capture_output=True, text=True,
                         timeout=120, preexec_fn=lambda: os.close(0))
    assert res.returncode == 2, res.stderr
    assert "Traceback" not in res.stderr and "stdin" in res.stderr.lower()


def test_treebank_with_bom_and_crlf_is_read(tmp_path, capsys):
    text = "\ufeff(S (NP (DT the) (NN cat)) (VP (VBD sat)))\r\n(S (NP (NN dogs)) (VP (VBP run)))  \r\n"
    (tmp_path / "bom.mrg").write_bytes(text.encode("utf-8"))
    gz = tmp_path / "bank.mrg.gz"
    gz.write_bytes(gzip.compress(text.encode("utf-8")))
    for p in (tmp_path / "bom.mrg", gz):
        assert main(["parse-eval", str(p), "--baselines-only", "--json"]) == 0
        out = json.loads(capsys.readouterr().out)
        assert out["sentences"] == 2 if "sentences" in out else True


def test_saved_weights_have_the_folder_permissions(model_dir):
    modes = {p.name: stat.S_IMODE(p.stat().st_mode) for p in model_dir.iterdir()}
    assert len(set(modes.values())) == 1, modes


def _start_generating(model_dir):
    """`onlstm generate` asked for far more tokens than the test waits for; returns the process
    once its first words have been printed (they arrive as they are sampled)."""
    proc = subprocess.Popen([sys.executable, "-m", "onlstm", "generate", str(model_dir), "--tokens", "10000000"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, bufsize=0)  # unbuffered: nothing
    first = b""                                                                        # held back from communicate
    while len(first) < 40:
        chunk = proc.stdout.read(40 - len(first))
        assert chunk, proc.stderr.read()
        first += chunk
    return proc, first


def test_generate_streams_and_ctrl_c_keeps_what_was_printed(model_dir):
    import signal

    proc, first = _start_generating(model_dir)
    proc.send_signal(signal.SIGINT)
    rest, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, err
    text = (first + rest).decode()
    assert "Traceback" not in err.decode() and "interrupted" in err.decode()
    words = set(text.split())
    assert words and words <= set(WORDS) | {"<unk>"} and text.endswith("\n")


def test_generate_into_a_closed_pipe_stops_quietly(model_dir):
    proc, _ = _start_generating(model_dir)
    proc.stdout.close()  # as `| head -c 40` does
    err = proc.stderr.read().decode()
    assert proc.wait(timeout=60) == 141 and err == ""


def test_a_full_disk_during_training_is_one_line_and_keeps_the_checkpoint(tmp_path, monkeypatch, capsys):
    import errno

    from lm_helpers import write_small_corpus

    corpus = write_small_corpus(tmp_path / "corpus", lines=(60, 10, 10))
    run = tmp_path / "run"
    base = ["--out", str(run), "--log-interval", "2"]
    assert main(["train", "--preset", "tiny", "--data", str(corpus), "--max-steps", "3", *base]) == 0
    before = snapshot(run)
    real_replace = os.replace

    def full_disk(src, dst):
        if Path(dst).name == "checkpoint.safetensors":
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(dst))
        return real_replace(src, dst)

    monkeypatch.setattr(os, "replace", full_disk)
    capsys.readouterr()
    assert main(["train", "--resume", "--max-steps", "6", *base[:2]]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "checkpoint.safetensors: cannot write: no space left on device" in err
    assert snapshot(run)["checkpoint.safetensors"] == before["checkpoint.safetensors"]
    assert not [p for p in run.iterdir() if p.name.endswith(".tmp")]
    monkeypatch.setattr(os, "replace", real_replace)
    assert main(["train", "--resume", "--max-steps", "6", *base[:2]]) == 0  # the run goes on from its checkpoint


def test_overwrite_writes_into_a_foreign_folder_and_keeps_other_files(model_dir, tmp_path, capsys):
    from lm_helpers import write_small_corpus

    corpus = write_small_corpus(tmp_path / "corpus", lines=(60, 10, 10))
    dst = copy_model(model_dir, tmp_path)
    (dst / "notes.txt").write_text("mine")
    args = ["train", "--preset", "tiny", "--data", str(corpus), "--out", str(dst), "--max-steps", "2"]
    assert main(args + ["--overwrite"]) == 0
    names = {p.name for p in dst.iterdir()}
    assert {"notes.txt", "checkpoint.safetensors", "train_config.json", "metrics.jsonl"} <= names
    assert (dst / "notes.txt").read_text() == "mine"
    # stopped before its first validation: the old model's files were removed, not left to mix with the new run
    assert "model.safetensors" not in names
    assert main(args) == 2 and "already holds a language-model training run" in capsys.readouterr().err


def test_parse_prints_each_batch_and_ctrl_c_keeps_valid_json(model_dir, tmp_path):
    import signal

    text = tmp_path / "many.txt"
    text.write_text("the cat sat on a mat\n" * 100000)
    proc = subprocess.Popen([sys.executable, "-m", "onlstm", "parse", "--file", str(text), "--model", str(model_dir),
                             "--format", "json", "--batch-size", "1"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, bufsize=0)
    first = proc.stdout.read(1)  # the first tree arrives long before the 100,000th is parsed
    assert first == b"[", proc.stderr.read()
    proc.send_signal(signal.SIGINT)
    rest, err = proc.communicate(timeout=120)
    assert proc.returncode == 130, err
    parsed = json.loads(first + rest)  # the list is closed after the last sentence printed
    assert 1 <= len(parsed) < 100000 and parsed[0]["words"] == "the cat sat on a mat".split()
    assert "Traceback" not in err.decode() and "interrupted" in err.decode()
