"""Helpers shared by the baselines: option checks and the batch dispatch rule."""

from __future__ import annotations

import numba
import numpy as np

#: Batches of at least this many queries use every Numba thread (as RMIConfig.parallel_threshold).
PARALLEL_THRESHOLD = 1 << 14


def check_options(cls_name: str, options: dict, known: tuple) -> None:
    """Raise TypeError naming the unknown keyword options, as KeyValueIndex does."""
    unknown = sorted(set(options) - set(known))
    if unknown:
        raise TypeError(f"{cls_name} got unknown options {unknown}; its options are {sorted(known)}")


def whole_number(name: str, value, minimum: int, maximum: int | None = None) -> int:
    """``value`` as an int in ``[minimum, maximum]``; ValueError otherwise (bools refused)."""
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < minimum or (
        maximum is not None and value > maximum
    ):
        bounds = f"[{minimum}, {maximum}]" if maximum is not None else f">= {minimum}"
        raise ValueError(f"{name} must be a whole number {bounds}, got {value!r}")
    return int(value)


def flag(name: str, value) -> bool:
    """``value`` as a bool; TypeError for anything but True or False (numpy bools included)."""
    if not isinstance(value, (bool, np.bool_)):
        raise TypeError(f"{name} must be True or False, got {value!r}")
    return bool(value)


def use_threads(n_queries: int, threshold: int) -> bool:
    """True when a batch of ``n_queries`` should run on every Numba thread."""
    return n_queries >= threshold and numba.get_num_threads() > 1
