"""onlstm.tasks.parse_eval: the label-free layer suggestion."""

import pytest
import torch

from onlstm.errors import UserError
from onlstm.tasks.parse_eval import relative_spread, suggest_layer


def test_suggest_layer_takes_the_lowest_relative_spread():
    d = [torch.tensor([[0.2, 0.8, 0.2], [0.5, 0.6, 0.5], [0.1, 0.9, 0.5]]),
         torch.tensor([[0.3, 0.7], [0.5, 0.5], [0.2, 0.4]]),
         torch.tensor([[0.4], [0.1], [0.9]])]  # one word: left out
    spread = relative_spread(d)
    expected = [(x.std(-1) / x.mean(-1)) for x in d[:2]]
    assert spread == pytest.approx(((expected[0] + expected[1]) / 2).tolist())
    assert suggest_layer(d) == 1
    with pytest.raises(UserError, match="two words"):
        relative_spread(d[2:])
