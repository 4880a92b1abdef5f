"""Logical inference (Bowman et al. 2015) with a siamese ON-LSTM or LSTM encoder.

- `data`: the formula grammar, the bundled files, the symbol table, batches;
- `model`: `LogicConfig`, `LogicClassifier`, `load_model`;
- `recipe`: `Trainer` / `train` (on the `onlstm.training` harness);
- `evaluation`: accuracy by number of operators, the table and the plot.
"""

from .data import (DATA_DIR, MAX_K, OPERATORS, PAD, RELATION_NAMES, RELATIONS, SYMBOLS, VARIABLES, Encoded, Example,
                   SymbolTable, count_operators, load_split, parse_formula, parse_line, read_file, split_train_valid)
from .evaluation import accuracy, evaluate_by_ops, evaluate_run, format_table, plot_results
from .model import BEST, CHECKPOINT, CONFIG, FORMAT, RESULTS, LogicClassifier, LogicConfig, build_encoder, load_model
from .recipe import LOGIC_RUN, Trainer, train, upgrade_legacy_checkpoint

__all__ = [
    "DATA_DIR", "MAX_K", "OPERATORS", "PAD", "RELATION_NAMES", "RELATIONS", "SYMBOLS", "VARIABLES", "Encoded",
    "Example", "SymbolTable", "count_operators", "load_split", "parse_formula", "parse_line", "read_file",
    "split_train_valid", "accuracy", "evaluate_by_ops", "evaluate_run", "format_table", "plot_results", "BEST",
    "CHECKPOINT", "CONFIG", "FORMAT", "RESULTS", "LogicClassifier", "LogicConfig", "build_encoder", "load_model",
    "LOGIC_RUN", "Trainer", "train", "upgrade_legacy_checkpoint",
]
