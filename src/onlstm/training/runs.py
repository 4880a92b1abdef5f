"""Output folders: what a command writes, and the one rule that protects the user's folders.

The rule (`prepare_output`), for every command that writes a folder (``train``, ``logic
train``, ``demo``, ``import-published``): it writes only into a missing or empty folder, or
into a folder it recognises as its own output of the same kind (`OutputKind.recognises`) --
a training run is then continued with ``--resume`` (`resume_settings`), a report or an
imported model is written again. Anything else is refused, before anything is read or
written, with a message naming the folder and what is in it; ``--overwrite`` writes into it
anyway (the kind's own file names are replaced, other files are left alone). A folder that
cannot be written (read-only, no permission) is refused up front too.

Every training recipe writes ``checkpoint.safetensors`` (see `onlstm.training.checkpoint`)
and ``metrics.jsonl`` (one JSON record per line) into its run folder, next to its own files.
"""

from __future__ import annotations

import json
import os
import re
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Dict, FrozenSet, Iterable, List, Mapping, Optional

from ..errors import UserError
from ..fileio import PathLike, atomic_write_text, os_error
from .checkpoint import read_checkpoint_state

__all__ = ["CHECKPOINT_FILE", "METRICS_FILE", "OutputKind", "prepare_output", "open_output", "resume_settings",
           "json_file_has", "MetricsLog", "os_error"]

CHECKPOINT_FILE = "checkpoint.safetensors"
METRICS_FILE = "metrics.jsonl"

_TEMP = re.compile(r"^\.(?P<name>.+)\.\d+\.tmp$")  # onlstm.fileio's temporary files, left by a kill -9


@dataclass(frozen=True)
class OutputKind:
    """A kind of output folder: ``name`` for messages ("language-model training run"),
    ``files`` (the names the command writes there), ``recognises`` (does a folder belong to
    this kind? reads only small files or a checkpoint's header) and, for a resumable run,
    the checkpoint ``format`` that `resume_settings` reads."""

    name: str
    files: FrozenSet[str]
    recognises: Callable[[Path], bool]
    format: Optional[str] = None
    legacy_unmarked: bool = False  # a checkpoint without a format entry is accepted (older runs)
    resumable: bool = field(default=False)

    def has_checkpoint(self, folder: Path) -> bool:
        return self.resumable and (folder / CHECKPOINT_FILE).is_file()


def json_file_has(path: Path, *keys: str) -> bool:
    """True when ``path`` is a small JSON object holding every key in ``keys`` (never raises)."""
    try:
        if not path.is_file() or path.stat().st_size > 10_000_000:
            return False
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    return isinstance(data, dict) and all(k in data for k in keys)


def _entries(folder: Path) -> List[str]:
    try:
        return sorted(p.name for p in folder.iterdir())
    except OSError as err:
        raise os_error(folder, err, "read the folder") from None


def _listing(names: List[str], limit: int = 6) -> str:
    shown = ", ".join(names[:limit])
    return shown + (f" and {len(names) - limit} more" if len(names) > limit else "")


def _check_writable(folder: Path) -> None:
    """A `UserError` when ``folder`` (or, while missing, its nearest existing parent) cannot
    be written: a read-only file system, or no write permission."""
    existing = folder
    while not existing.exists() and existing != existing.parent:
        existing = existing.parent
    if not existing.is_dir():
        raise UserError(f"{folder}: cannot create the folder: {existing} is a file")
    try:
        read_only = bool(os.statvfs(existing).f_flag & os.ST_RDONLY)
    except (AttributeError, OSError):  # pragma: no cover - platforms without statvfs
        read_only = False
    where = "" if existing == folder else f" ({existing} is where it would be created)"
    if read_only:
        raise UserError(f"{folder}: cannot write: read-only file system{where}")
    if not os.access(existing, os.W_OK | os.X_OK):
        raise UserError(f"{folder}: cannot write: permission denied{where}")


def prepare_output(folder: PathLike, kind: OutputKind, *, resume: bool = False, overwrite: bool = False) -> None:
    """The write rule (module doc), checked before anything is read or written; touches nothing.

    Allowed: a missing or empty folder (not with ``resume``); a folder ``kind`` recognises
    (a resumable kind's run with a checkpoint needs ``resume`` or ``overwrite``); anything
    with ``overwrite``. ``resume`` needs a recognised folder with a checkpoint."""
    folder = Path(folder)
    if resume and overwrite:
        raise UserError("--resume continues the run in the folder and --overwrite starts a new one: give one of them")
    if folder.exists() and not folder.is_dir():
        raise UserError(f"{folder}: exists and is a file, not a folder; choose another path")
    names = [n for n in _entries(folder)] if folder.exists() else []
    if resume:
        if not names or not kind.recognises(folder):
            what = f"it holds {_listing(names)}" if names else "it is empty or missing"
            raise UserError(f"{folder}: no {kind.name} to resume ({what})")
        if not kind.has_checkpoint(folder):
            raise UserError(f"{folder / CHECKPOINT_FILE}: no checkpoint to resume from")
    elif names and not overwrite:
        if not kind.recognises(folder):
            raise UserError(f"{folder}: not empty and not a {kind.name} (it holds {_listing(names)}); choose a new "
                            "or empty folder, or pass --overwrite to write into it anyway")
        if kind.has_checkpoint(folder):
            raise UserError(f"{folder} already holds a {kind.name}; use --resume to continue it, --overwrite to "
                            "start again in it, or choose another folder")
    _check_writable(folder)


def open_output(folder: PathLike, kind: OutputKind, *, overwrite: bool = False) -> Path:
    """Create ``folder`` (after `prepare_output` allowed it) for the first write; with
    ``overwrite``, first remove the files of ``kind`` it holds (not other files), so that a
    new run's files never mix with an old one's. OS errors are `UserError` lines."""
    folder = Path(folder)
    try:
        folder.mkdir(parents=True, exist_ok=True)
        if overwrite:
            for name in _entries(folder):
                temp = _TEMP.match(name)
                if name in kind.files or (temp and temp.group("name") in kind.files):
                    path = folder / name
                    shutil.rmtree(path) if path.is_dir() and not path.is_symlink() else path.unlink()
    except OSError as err:
        raise os_error(err.filename or folder, err) from None
    return folder


def resume_settings(run_dir: PathLike, resume: bool, kind: OutputKind, requested: Optional[Mapping[str, Any]] = None,
                    fixed: Optional[Iterable[str]] = None, *, overwrite: bool = False,
                    recorded_later: Optional[Mapping[str, Any]] = None) -> Optional[Dict[str, Any]]:
    """The one check of a run folder before training starts (`prepare_output`); reads only
    JSON (the checkpoint's header), never a model.

    Not resuming: returns None. Resuming: returns the settings saved in the checkpoint
    (``state["config"]``; a setting it lacks takes its value from ``recorded_later``, the
    values runs had before the setting was recorded) updated by ``requested``; a requested
    value that differs from the saved one is a `UserError` when its name is in ``fixed``
    (every name when ``fixed`` is None).
    """
    run_dir = Path(run_dir)
    prepare_output(run_dir, kind, resume=resume, overwrite=overwrite)
    if not resume:
        return None
    path = run_dir / CHECKPOINT_FILE
    state = read_checkpoint_state(path, kind.format, legacy_unmarked=kind.legacy_unmarked)
    if not isinstance(state, dict) or not isinstance(state.get("config"), dict):
        raise UserError(f"{path}: the checkpoint's state has no 'config' of settings; it cannot be resumed")
    saved = {**(recorded_later or {}), **state["config"]}
    requested = dict(requested or {})
    names = set(requested) if fixed is None else set(requested) & set(fixed)
    clash = sorted(k for k in names if requested[k] != saved.get(k))
    if clash:
        raise UserError(f"cannot change {', '.join(clash)} when resuming {run_dir} "
                        "(they differ from its checkpoint's settings; leave them out)")
    saved.update(requested)
    return saved


class MetricsLog:
    """``metrics.jsonl`` of a run: one JSON record per line, appended as training goes.

    ``lines`` counts the records written so far and belongs in the checkpoint: on resume,
    `start` cuts the file back to that many lines (records written after the checkpoint are
    made again). Only the main process writes (``enabled``); every process counts.
    """

    def __init__(self, run_dir: PathLike, enabled: bool = True, lines: int = 0):
        self.path = Path(run_dir) / METRICS_FILE
        self.enabled = enabled
        self.lines = lines

    def start(self, resume: bool) -> None:
        """New run: an empty file. Resumed run: keep the first `lines` records."""
        if not self.enabled:
            return
        if not resume:
            atomic_write_text(self.path, "")
        elif self.path.exists():
            try:
                kept = self.path.read_text(encoding="utf-8").splitlines(keepends=True)
            except (OSError, UnicodeDecodeError) as err:
                raise UserError(f"{self.path}: cannot read the run's metrics: {err}") from None
            if len(kept) > self.lines:
                atomic_write_text(self.path, "".join(kept[: self.lines]))

    def write(self, record: Dict[str, Any]) -> None:
        """Append one record (flushed at once; an OS error is a `UserError` naming the file)."""
        if self.enabled:
            try:
                with open(self.path, "a", encoding="utf-8") as f:
                    f.write(json.dumps(record) + "\n")
            except OSError as err:
                raise os_error(self.path, err) from None
        self.lines += 1
