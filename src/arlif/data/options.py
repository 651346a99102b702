"""Checks of dataset option values, which may come from the command line as YAML (``-o size=48``)."""

from __future__ import annotations

import numpy as np

from ..errors import DataError


def positive_int(dataset: str, option: str, value, what: str) -> int:
    """``value`` as an int ≥ 1, or a DataError naming the option and ``what`` it means."""
    ok = isinstance(value, (int, np.integer, str)) and not isinstance(value, bool) and str(value).strip().isdigit()
    if not ok or int(value) < 1:
        raise DataError(f"{dataset}: option {option} must be a positive integer ({what}), got {value!r}")
    return int(value)


def bool_option(dataset: str, option: str, value) -> bool:
    if not isinstance(value, (bool, np.bool_)):
        raise DataError(f"{dataset}: option {option} must be true or false, got {value!r}")
    return bool(value)


def choice(dataset: str, option: str, value, choices: tuple[str, ...]) -> str:
    if not isinstance(value, str) or value.lower() not in choices:
        raise DataError(f"{dataset}: option {option} must be one of {', '.join(choices)}; got {value!r}")
    return value.lower()
