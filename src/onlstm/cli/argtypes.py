"""argparse types that check every numeric flag where it is parsed.

Each type is built from a `onlstm.training.settings.Check` (the same checks the training
settings use), so the valid range is written once; argparse prints the flag with it, e.g.
``onlstm generate: error: argument --tokens: must be an integer >= 1, got '-5'`` (exit 2).
"""

from __future__ import annotations

import argparse
from typing import Any, Callable

from ..errors import UserError
from ..training.distributed import parse_device
from ..training.settings import (NONNEGATIVE_FLOAT, NONNEGATIVE_INT, POSITIVE_FLOAT, POSITIVE_INT, PROBABILITY,
                                 SEED, Check)

__all__ = ["from_check", "positive_int", "nonnegative_int", "positive_float", "nonnegative_float", "probability",
           "finite_float", "seed", "boolean", "device"]


def from_check(check: Check) -> Callable[[str], Any]:
    """An argparse ``type`` that parses one value with ``check`` (see `Check.parse`)."""

    def parse(text: str) -> Any:
        try:
            return check.parse(text)
        except ValueError as err:
            raise argparse.ArgumentTypeError(str(err)) from None

    parse.__name__ = check.describe()  # argparse's fallback message names the type
    return parse


positive_int = from_check(POSITIVE_INT)
nonnegative_int = from_check(NONNEGATIVE_INT)
positive_float = from_check(POSITIVE_FLOAT)
nonnegative_float = from_check(NONNEGATIVE_FLOAT)
probability = from_check(PROBABILITY)
finite_float = from_check(Check(float))
seed = from_check(SEED)
boolean = from_check(Check(bool))


def device(text: str) -> str:
    """A torch device this machine has: cpu, cuda, cuda:N (checked when parsed)."""
    try:
        parse_device(text)
    except UserError as err:
        raise argparse.ArgumentTypeError(str(err)) from None
    return text
