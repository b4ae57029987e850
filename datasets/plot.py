"""PNG plots of a key set's CDF (key vs position), with a zoomed-in second panel.

The key axis is logarithmic when the keys are crammed at its low end (``log_keys``) and the
zoom window is picked from the data (``zoom_window``) so it never sits in one run of duplicates.

matplotlib is imported only when a plot is made (so ``import datasets`` does
not need it) and only through its object-oriented Agg API: no pyplot, no
global backend switch in the caller's process.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

# One rule for the key axis and one atomic PNG writer, shared with learnedidx.explain.
from learnedidx.explain import key_offsets, log_keys, save_png

_MAX_POINTS = 100_000  # points drawn for the full CDF; more add nothing visible


def _window_distinct(keys: np.ndarray, width: int, chunk: int = 1 << 20):
    """Yield (first start, distinct-key counts) of every ``width``-key window of sorted keys, chunk by chunk.

    Memory is O(chunk + width), not O(n): key sets can be hundreds of millions of keys.
    """
    n = keys.size
    for lo in range(0, n - width + 1, chunk):
        part = keys[lo : min(n, lo + chunk + width - 1)]
        # starts[j]: distinct keys beginning at part positions 1..j; a window's count is 1 + the starts inside it.
        starts = np.concatenate(([0], np.cumsum(part[1:] != part[:-1])))
        yield lo, 1 + starts[width - 1 :] - starts[: part.size - width + 1]


def zoom_window(keys: np.ndarray, width: int, at: float = 0.5) -> int:
    """First position of the ``width``-key window to zoom into, nearest relative position ``at`` (O(n)).

    Chosen from the data so the zoom shows structure, not one run of duplicates: among the
    windows holding at least half as many distinct keys as the most varied window of that
    width, the one nearest the window centred on ``at``. Keys must be sorted; ``width`` is
    clipped to 1..len(keys).
    """
    n = keys.size
    width = max(1, min(width, n))
    want = min(max(0, int(at * (n - 1)) - width // 2), n - width)
    enough = (max(int(d.max()) for _, d in _window_distinct(keys, width)) + 1) // 2
    best = None
    for lo, distinct in _window_distinct(keys, width):
        good = np.flatnonzero(distinct >= enough) + lo
        if good.size:
            near = int(good[np.argmin(np.abs(good - want))])
            if best is None or abs(near - want) < abs(best - want):
                best = near
    return best


def plot_cdf(
    keys: np.ndarray,
    out: str | os.PathLike,
    *,
    title: str | None = None,
    zoom_at: float = 0.5,
    zoom_keys: int = 1000,
) -> Path:
    """Write a two-panel PNG of sorted keys' CDF and return its path (O(n) to subsample).

    Left: the whole CDF (at most 100,000 evenly spaced points), on a log key
    axis when the keys ask for one (``log_keys``: e.g. lognormal). Right:
    ``zoom_keys`` keys (default 1000) near relative position ``zoom_at`` (0..1,
    default 0.5), moved to the nearest window with at least half the distinct
    keys of the most varied one (``zoom_window``), keys shown relative to the
    window's first key; the left panel marks it. The file is written atomically
    (temporary file + os.replace).

    Raises ModuleNotFoundError (pip install matplotlib) if matplotlib is
    missing, ValueError for empty or non-1-D keys, zoom_at outside [0, 1] or
    zoom_keys < 2.
    """
    try:
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure
    except ModuleNotFoundError as exc:
        raise ModuleNotFoundError("plotting needs matplotlib: pip install matplotlib") from exc
    keys = np.asarray(keys)
    if keys.ndim != 1 or keys.size == 0:
        raise ValueError(f"keys: expected a non-empty 1-D array, got shape {keys.shape}")
    if not 0.0 <= zoom_at <= 1.0:
        raise ValueError(f"zoom_at: a relative position in [0, 1], got {zoom_at}")
    if zoom_keys < 2:
        raise ValueError(f"zoom_keys: need at least 2 keys to zoom into, got {zoom_keys}")
    out = Path(out)
    n = keys.size

    stride = max(1, n // _MAX_POINTS)
    idx = np.unique(np.append(np.arange(0, n, stride), n - 1))
    width = min(n, zoom_keys)
    lo = zoom_window(keys, width, zoom_at)
    window = keys[lo : lo + width]
    distinct = 1 + int(np.count_nonzero(window[1:] != window[:-1]))
    log = log_keys(keys)

    fig = Figure(figsize=(12, 5), dpi=100, layout="constrained")
    FigureCanvasAgg(fig)
    full, zoom = fig.subplots(1, 2)
    full.plot(keys[idx].astype(np.float64), idx, lw=1.0)
    # The zoom window is usually too narrow to see: mark it with a dot and bands.
    full.axvspan(float(window[0]), float(window[-1]), color="tab:red", alpha=0.3, lw=0)
    full.axhspan(lo, lo + width - 1, color="tab:red", alpha=0.3, lw=0)
    full.plot([float(window[width // 2])], [lo + width // 2], "o", color="tab:red", ms=5)
    full.set(xlabel="key (log scale)" if log else "key", ylabel="position", title=f"CDF of {n:,} keys")
    if log:
        full.set_xscale("log")
    zoom.plot(key_offsets(window), np.arange(lo, lo + width), ".-", ms=2, lw=0.5, color="tab:red")
    zoom.set(
        xlabel=f"key - {window[0].item()}",
        ylabel="position",
        title=f"zoom: positions {lo:,}..{lo + width - 1:,} ({distinct:,} distinct keys)",
    )
    if title:
        fig.suptitle(title)
    save_png(fig, out)
    return out
