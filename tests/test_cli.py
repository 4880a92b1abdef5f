import subprocess
import sys

from onlstm import __version__
from onlstm.cli import main


def test_version(capsys):
    try:
        main(["--version"])
    except SystemExit as exit_:
        assert exit_.code == 0
    assert __version__ in capsys.readouterr().out


def test_help_runs_as_module():
    out = subprocess.run([sys.executable, "-m", "onlstm", "--help"], capture_output=True, text=True)
    assert out.returncode == 0
    assert "onlstm" in out.stdout
