"""``onlstm serve`` on the command line: a user's mistake is one error line and exit 2 before
the server starts; started, it answers on 127.0.0.1 and Ctrl-C stops it cleanly."""

import json
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request

import pytest

pytest.importorskip("fastapi", reason="onlstm serve needs FastAPI and uvicorn: pip install 'onlstm[serve]'")
pytest.importorskip("uvicorn", reason="onlstm serve needs FastAPI and uvicorn: pip install 'onlstm[serve]'")

import torch  # noqa: E402

from onlstm.cli import main  # noqa: E402
from onlstm.lm import LanguageModel, LMConfig  # noqa: E402
from onlstm.text import Vocabulary  # noqa: E402
from serve_helpers import free_port, write_tiny_model, write_treebank  # noqa: E402


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    return write_tiny_model(tmp_path_factory.mktemp("serve-cli") / "tiny")


def _lstm_folder(path):
    torch.manual_seed(0)
    vocab = Vocabulary(["<eos>", "<unk>", "a"])
    LanguageModel(LMConfig(vocab_size=3, emb_size=4, hidden_sizes=[4], cell="lstm"), vocab).save_pretrained(path)
    return path


def _fails(capsys, args, message):
    capsys.readouterr()
    assert main(["serve", *map(str, args)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("onlstm serve: error: ") and message in err, err
    assert err.count("\n") == 1 and "Traceback" not in err


def test_mistakes_are_one_line_and_exit_2(tiny, tmp_path, capsys):
    _fails(capsys, ["--model", tmp_path / "missing"], "no such model folder")
    (tmp_path / "empty").mkdir()
    _fails(capsys, ["--model", tmp_path / "empty"], "not a model folder")
    _fails(capsys, ["--model", _lstm_folder(tmp_path / "lstm")], "parsing needs an ON-LSTM model")
    _fails(capsys, ["--model", tiny, "--treebank", tmp_path / "none.mrg"], "none.mrg")
    (tmp_path / "bad.mrg").write_text("( (S (NP (DT The) (NN cat)) \n")
    _fails(capsys, ["--model", tiny, "--treebank", tmp_path / "bad.mrg"], "bad.mrg")
    _fails(capsys, ["--model", tiny, "--port", "70000"], "--port must be 1..65535")
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        _fails(capsys, ["--model", tiny, "--port", port], f"port {port} on 127.0.0.1 is in use")


def test_serves_until_ctrl_c(tiny, tmp_path):
    treebank = write_treebank(tmp_path / "small.mrg")
    port = free_port()
    proc = subprocess.Popen([sys.executable, "-m", "onlstm", "serve", "--model", str(tiny), "--treebank",
                             str(treebank), "--port", str(port)], stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 120
        while True:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/api/treebanks", timeout=30) as r:
                    treebanks = json.loads(r.read())["treebanks"]
                break
            except OSError:
                assert proc.poll() is None and time.monotonic() < deadline, proc.stderr.read() if proc.poll() else ""
                time.sleep(0.3)
        assert [t["name"] for t in treebanks] == ["small", "wsj", "sinica"]
        request = urllib.request.Request(f"http://127.0.0.1:{port}/api/parse", method="POST",
                                         data=json.dumps({"sentences": ["a dog ran away"]}).encode(),
                                         headers={"Content-Type": "application/json"})
        with urllib.request.urlopen(request, timeout=60) as r:
            assert json.loads(r.read())["sentences"][0]["words"] == ["a", "dog", "ran", "away"]
        # another web site's name for this address is refused (DNS rebinding)
        rebound = urllib.request.Request(f"http://127.0.0.1:{port}/api/models", headers={"Host": "evil.example"})
        with pytest.raises(urllib.error.HTTPError) as refused:
            urllib.request.urlopen(rebound, timeout=30)
        assert refused.value.code == 400
    finally:
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=30)
    assert proc.returncode == 0, err
    assert f"onlstm serve: http://127.0.0.1:{port}/" in err and "Traceback" not in err
