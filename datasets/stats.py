"""Summary figures of a key set, including how hard it is for one straight line.

The difficulty figure is the error, in positions, of the least-squares line
``position ~ a + b * key`` fitted over the whole CDF (every key with its
position 0..n-1, duplicates included): the maximum and the mean of
``|a + b * key_i - i|``. It is the figure the shared folder's README reports
(same definition; see the project report for how closely its numbers agree).
A line through the first and last key is NOT used: one outlier at either end
would dominate it.
"""

from __future__ import annotations

import numpy as np

_CHUNK = 1 << 22  # keys per pass step: bounds float64 temporaries to ~32 MiB each


def _chunks(n: int):
    for lo in range(0, n, _CHUNK):
        yield lo, min(n, lo + _CHUNK)


def line_fit_error(keys: np.ndarray) -> tuple[float, float]:
    """Max and mean absolute position error of the least-squares line over sorted keys.

    Three streaming passes over the keys (works on memory maps), O(n) time and
    O(chunk) extra memory. Keys are converted to float64 (exact to 53 bits,
    plenty for a fit). Returns (0.0, 0.0) for fewer than 2 keys; a constant key
    set gets the horizontal line through the mean position.
    """
    n = int(keys.size)
    if n < 2:
        return 0.0, 0.0
    mean_pos = (n - 1) / 2.0
    mean_key = sum(float(keys[lo:hi].astype(np.float64).sum()) for lo, hi in _chunks(n)) / n
    sxx = sxp = 0.0
    for lo, hi in _chunks(n):
        x = keys[lo:hi].astype(np.float64) - mean_key
        p = np.arange(lo, hi, dtype=np.float64) - mean_pos
        sxx += float(x @ x)
        sxp += float(x @ p)
    slope = sxp / sxx if sxx > 0 else 0.0
    worst = total = 0.0
    for lo, hi in _chunks(n):
        err = (keys[lo:hi].astype(np.float64) - mean_key) * slope
        err += mean_pos
        err -= np.arange(lo, hi, dtype=np.float64)
        np.abs(err, out=err)
        worst = max(worst, float(err.max()))
        total += float(err.sum())
    return worst, total / n


def _pairs(keys: np.ndarray):
    """(key[i], key[i-1]) slices covering every adjacent pair, chunk by chunk."""
    for lo, hi in _chunks(int(keys.size)):
        a = max(lo, 1)
        yield keys[a:hi], keys[a - 1 : hi - 1]


def is_sorted(keys: np.ndarray) -> bool:
    """Whether keys are in non-decreasing order (O(n), streaming)."""
    return all(bool(np.all(cur >= prev)) for cur, prev in _pairs(keys))


def count_duplicates(sorted_keys: np.ndarray) -> int:
    """Number of keys equal to their predecessor in a sorted array, i.e. n - distinct (O(n), streaming)."""
    return sum(int(np.count_nonzero(cur == prev)) for cur, prev in _pairs(sorted_keys))


def describe(keys: np.ndarray) -> dict:
    """n, dtype, min, max, sortedness, duplicate count and single-line fit errors of a key set.

    Sorted input (the norm) is processed in streaming passes, O(n); unsorted
    input is sorted into a copy first (O(n log n)) and reported as unsorted.
    Raises ValueError for keys that are not 1-D or contain NaN.
    """
    keys = np.asarray(keys)
    if keys.ndim != 1:
        raise ValueError(f"keys: expected a 1-D array, got shape {keys.shape}")
    if keys.dtype.kind == "f" and np.isnan(keys).any():
        raise ValueError("keys: contain NaN, which has no place in a sorted key set; drop those entries")
    ordered = is_sorted(keys)
    work = keys if ordered else np.sort(keys)
    n = int(keys.size)
    max_err, mean_err = line_fit_error(work)
    return {
        "n": n,
        "dtype": keys.dtype.name,
        "min": work[0].item() if n else None,
        "max": work[-1].item() if n else None,
        "sorted": ordered,
        "duplicates": count_duplicates(work),
        "fit_max_error": max_err,
        "fit_mean_error": mean_err,
    }
