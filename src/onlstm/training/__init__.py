"""The training harness: one set of rules for every training recipe in ``onlstm.tasks``.

- `checkpoint`: one file format (safetensors + JSON state, atomic and fsync'ed);
- `rng`: capture and restore every random generator, for exact resume;
- `stopping`: Ctrl-C, time and step limits, divergence (`TrainingDiverged`);
- `runs`: output folders: the one write rule (`prepare_output`), resuming (`resume_settings`),
  ``metrics.jsonl``;
- `settings`: one `Check` per setting, `validate_settings` (types and ranges, named errors);
- `distributed`: torchrun process groups and the small collectives training needs;
- `progress`: the progress bar;
- `loop`: `run_epochs`, the epoch loop a recipe plugs its model, batches and step into.

Imports go one way: tasks import this package; this package imports only the library.
"""

from .checkpoint import read_checkpoint, read_checkpoint_state, write_checkpoint
from .distributed import DistInfo, agree, all_gather, parse_device, setup_distributed, teardown_distributed
from .loop import Epoch, Recipe, run_epochs
from .progress import progress_bar
from .rng import capture_rng, restore_rng
from .runs import (CHECKPOINT_FILE, METRICS_FILE, MetricsLog, OutputKind, json_file_has, open_output, os_error,
                   prepare_output, resume_settings)
from .settings import Check, validate_settings
from .stopping import StopRules, TrainingDiverged, check_finite

__all__ = [
    "read_checkpoint", "read_checkpoint_state", "write_checkpoint",
    "DistInfo", "agree", "all_gather", "parse_device", "setup_distributed", "teardown_distributed",
    "Epoch", "Recipe", "run_epochs", "progress_bar", "capture_rng", "restore_rng",
    "CHECKPOINT_FILE", "METRICS_FILE", "MetricsLog", "OutputKind", "json_file_has", "open_output", "os_error",
    "prepare_output", "resume_settings", "Check", "validate_settings",
    "StopRules", "TrainingDiverged", "check_finite",
]
