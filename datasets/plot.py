"""PNG plots of a key set's CDF (key vs position), with a zoomed-in second panel.

matplotlib is imported only when a plot is made (so ``import datasets`` does
not need it) and only through its object-oriented Agg API: no pyplot, no
global backend switch in the caller's process.
"""

from __future__ import annotations

import contextlib
import os
import secrets
from pathlib import Path

import numpy as np

_MAX_POINTS = 100_000  # points drawn for the full CDF; more add nothing visible


def _offsets(window: np.ndarray) -> np.ndarray:
    """Keys of a sorted window minus its first key, as float64, exact for 64-bit integers."""
    if window.dtype.kind == "f":
        return window - window[0]
    wide = window.astype(np.uint64 if window.dtype.kind == "u" else np.int64)
    # Modular uint64 difference: exact because the true difference is in [0, 2**64).
    return (wide.view(np.uint64) - wide[:1].view(np.uint64)).astype(np.float64)


def plot_cdf(
    keys: np.ndarray,
    out: str | os.PathLike,
    *,
    title: str | None = None,
    zoom_at: float = 0.5,
    zoom_keys: int = 1000,
) -> Path:
    """Write a two-panel PNG of sorted keys' CDF and return its path (O(n) to subsample).

    Left: the whole CDF (at most 100,000 evenly spaced points). Right: the
    ``zoom_keys`` keys around relative position ``zoom_at`` (0..1), keys shown
    relative to the window's first key, which the left panel marks. The file is
    written atomically (temporary file + os.replace).

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
    lo = min(max(0, int(zoom_at * (n - 1)) - width // 2), n - width)
    window = keys[lo : lo + width]

    fig = Figure(figsize=(12, 5), dpi=100, layout="constrained")
    FigureCanvasAgg(fig)
    full, zoom = fig.subplots(1, 2)
    full.plot(keys[idx].astype(np.float64), idx, lw=1.0)
    # The zoom window is usually too narrow to see: mark it with a dot and bands.
    full.axvspan(float(window[0]), float(window[-1]), color="tab:red", alpha=0.3, lw=0)
    full.axhspan(lo, lo + width - 1, color="tab:red", alpha=0.3, lw=0)
    full.plot([float(window[width // 2])], [lo + width // 2], "o", color="tab:red", ms=5)
    full.set(xlabel="key", ylabel="position", title=f"CDF of {n:,} keys")
    zoom.plot(_offsets(window), np.arange(lo, lo + width), ".-", ms=2, lw=0.5, color="tab:red")
    zoom.set(
        xlabel=f"key - {window[0].item()}",
        ylabel="position",
        title=f"zoom: positions {lo:,}..{lo + width - 1:,}",
    )
    if title:
        fig.suptitle(title)
    tmp = out.with_name(f".{out.name}.{secrets.token_hex(6)}.tmp")
    try:
        fig.savefig(tmp, format="png")
        os.replace(tmp, out)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise
    return out
