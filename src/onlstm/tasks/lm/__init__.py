"""The language-model task: training with the paper's recipe, perplexity, sampling.

- `config`: `TrainConfig`, the presets, config files;
- `recipe`: `train` (the training run, on the `onlstm.training` harness);
- `evaluation`: `evaluate_ids`, `evaluate_model` (perplexity);
- `generation`: `sample_tokens` / `generate` (sampling a continuation, token by token).
"""

from .config import PRESETS, TrainConfig, read_config_file, resolve_config
from .evaluation import evaluate_ids, evaluate_model
from .generation import generate, sample_tokens
from .recipe import LM_RUN, TrainResult, train

__all__ = ["PRESETS", "TrainConfig", "read_config_file", "resolve_config", "evaluate_ids", "evaluate_model",
           "generate", "sample_tokens", "LM_RUN", "TrainResult", "train"]
