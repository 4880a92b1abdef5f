"""The settings of a training run, checked where they are read: one `Check` per field.

A recipe's config dataclass (`onlstm.tasks.lm.TrainConfig`, `onlstm.tasks.logic.LogicConfig`)
declares a `Check` for every field in a ``CHECKS`` class attribute; `validate_settings` applies
them to values from anywhere (a preset, a ``--config`` file, a saved run, a library call) and
the command line builds each flag's argparse type from the same `Check`
(`onlstm.cli.argtypes`), so a range is written once and every message states it.

Messages name the source and the setting, e.g. ``settings.json: lr must be a number > 0, got
'fast'``; the command line's say ``argument --lr: must be a number > 0, got '-1'``.
"""

from __future__ import annotations

import math
import numbers
from dataclasses import dataclass, fields, replace
from typing import Any, Callable, Dict, Mapping, Optional, Tuple

from ..errors import UserError
from ..fileio import excerpt

__all__ = ["Check", "validate_settings", "SEED", "PROBABILITY", "POSITIVE_INT", "NONNEGATIVE_INT",
           "POSITIVE_FLOAT", "NONNEGATIVE_FLOAT"]

_TRUE, _FALSE = ("1", "true", "yes", "on"), ("0", "false", "no", "off")


@dataclass(frozen=True)
class Check:
    """What one setting may hold: ``kind`` (int, float, bool or str), an optional range
    ``low``..``high`` (``*_open``: the bound itself excluded), ``choices`` for strings,
    ``optional`` (None allowed), ``many`` (a non-empty list of such values) and ``test``
    (an extra test of the value: returns a problem, or None when the value is fine)."""

    kind: type
    low: Optional[float] = None
    high: Optional[float] = None
    low_open: bool = False
    high_open: bool = False
    choices: Tuple[str, ...] = ()
    optional: bool = False
    many: bool = False
    test: Optional[Callable[[Any], Optional[str]]] = None

    def describe(self) -> str:
        """The valid values in words: 'an integer >= 1', 'a number in [0, 1)', "one of 'a', 'b'"."""
        if self.choices:
            text = "one of " + ", ".join(repr(c) for c in self.choices)
        elif self.kind is bool:
            text = "true or false"
        elif self.kind is str:
            text = "a string"
        else:
            noun = "an integer" if self.kind is int else "a number"
            low, high = (None if b is None else (str(b) if isinstance(b, int) else f"{b:g}")
                         for b in (self.low, self.high))
            if low is not None and high is not None:
                text = f"{noun} in {'(' if self.low_open else '['}{low}, {high}{')' if self.high_open else ']'}"
            elif low is not None:
                text = f"{noun} {'>' if self.low_open else '>='} {low}"
            elif high is not None:
                text = f"{noun} {'<' if self.high_open else '<='} {high}"
            else:
                text = f"a finite {'integer' if self.kind is int else 'number'}"
        if self.many:
            text = f"a non-empty list of {text.replace('an integer', 'integers').replace('a number', 'numbers')}"
        return text + (" or null" if self.optional else "")

    def problem(self, value: Any) -> Optional[str]:
        """None when ``value`` is valid, else 'must be ..., got ...'."""
        if value is None and self.optional:
            return None
        items = value if self.many else [value]
        if self.many and (not isinstance(value, (list, tuple)) or not value):
            items = None
        if items is None or not all(self._one_ok(v) for v in items):
            return f"must be {self.describe()}, got {excerpt(value)}"
        return self.test(value) if self.test is not None else None

    def _one_ok(self, v: Any) -> bool:
        if self.kind is bool:
            return isinstance(v, bool)
        if isinstance(v, bool):
            return False
        if self.kind is str:
            return isinstance(v, str) and (not self.choices or v in self.choices)
        if self.kind is int and not isinstance(v, numbers.Integral):
            return False
        if not isinstance(v, numbers.Real) or not math.isfinite(v):
            return False
        if self.low is not None and (v < self.low or (self.low_open and v == self.low)):
            return False
        return self.high is None or not (v > self.high or (self.high_open and v == self.high))

    def normalise(self, value: Any) -> Any:
        """A valid value as a plain Python value (a float setting given as 1 becomes 1.0)."""
        if value is None:
            return None
        conv = float if self.kind is float else (int if self.kind is int else (lambda v: v))
        return [conv(v) for v in value] if self.many else conv(value)

    def parse(self, text: str) -> Any:
        """One value from command-line text (a ``many`` setting: one item, as argparse's
        ``nargs`` hands them over); ``ValueError`` saying what is valid when it is not."""
        one = replace(self, many=False, optional=False, test=None if self.many else self.test)
        try:
            if self.kind is bool:
                if text.lower() not in _TRUE + _FALSE:
                    raise ValueError
                value = text.lower() in _TRUE
            else:
                value = self.kind(text)
        except ValueError:
            raise ValueError(f"must be {one.describe()}, got {text!r}") from None
        problem = one.problem(value)
        if problem:
            raise ValueError(problem.rsplit(", got ", 1)[0] + f", got {text!r}")
        return value


POSITIVE_INT = Check(int, low=1)
NONNEGATIVE_INT = Check(int, low=0)
POSITIVE_FLOAT = Check(float, low=0, low_open=True)
NONNEGATIVE_FLOAT = Check(float, low=0)
PROBABILITY = Check(float, low=0, high=1, high_open=True)  # a dropout rate: 1 would drop everything
SEED = Check(int, low=0, high=2 ** 32 - 1)


def validate_settings(cls, values: Mapping[str, Any], where: str, *, partial: bool = False) -> Dict[str, Any]:
    """``values`` checked against the ``CHECKS`` of the dataclass ``cls`` and normalised.

    An unknown name, a wrong type or a value out of range is a `UserError` naming ``where``
    (a file, "--config x.json", "the run in runs/a") and the setting. ``partial``: the
    values may be a subset of the fields (overrides); else missing fields take their defaults
    and are not checked here."""
    if not isinstance(values, Mapping):
        raise UserError(f"{where}: the settings must be an object/table of name = value, got {excerpt(values)}")
    checks: Mapping[str, Check] = cls.CHECKS
    known = [f.name for f in fields(cls)]
    unknown = [k for k in values if k not in known]
    if unknown:
        raise UserError(f"{where}: unknown setting{'s' if len(unknown) > 1 else ''} "
                        f"{', '.join(map(repr, unknown))} (known: {', '.join(known)})")
    out: Dict[str, Any] = {}
    for name, value in values.items():
        problem = checks[name].problem(value)
        if problem:
            raise UserError(f"{where}: {name} {problem}")
        out[name] = checks[name].normalise(value)
    return out

