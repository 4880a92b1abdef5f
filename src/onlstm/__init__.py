"""onlstm: Ordered Neurons LSTM (Shen et al., ICLR 2019) for PyTorch."""

__version__ = "0.1.0"

from .cell import cumax  # noqa: E402
from .layer import ONLSTM, ONLSTMCell, Distances  # noqa: E402
from .lm import LanguageModel, LMConfig  # noqa: E402

__all__ = ["ONLSTM", "ONLSTMCell", "Distances", "LanguageModel", "LMConfig", "cumax", "__version__"]
