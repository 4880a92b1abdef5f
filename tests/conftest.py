import os
import sys

sys.path.insert(0, os.path.dirname(__file__))

import pytest


@pytest.fixture(params=["fused", "torch"])
def impl(request, monkeypatch):
    """Run a test on both implementations of the recurrence: the fused native steps
    (default when a C compiler is present) and the pure-PyTorch fallback."""
    if request.param == "torch":
        monkeypatch.setenv("ONLSTM_NO_KERNEL", "1")
    return request.param
