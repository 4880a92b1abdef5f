"""onlstm: Ordered Neurons LSTM (Shen et al., ICLR 2019) for PyTorch."""

__version__ = "0.1.0"
