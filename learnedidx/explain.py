"""Pictures of where a learned index errs: :func:`explain` draws them, :func:`error_profile`
computes every number they show.

A learned index predicts, for each key k, a position and a window ``[lo, hi]`` holding
``lower_bound(k)`` (:meth:`learnedidx.base.LearnedIndex.predict`); the last-mile search covers the
window. The error is ``predicted - lower_bound(k)``; the window width is ``hi - lo``. One pass
over all the keys, a chunk at a time, finds the largest error and window and their maxima per
key bin; a sample of evenly spaced keys gives the percentiles, histogram and per-bin medians.
matplotlib (the ``explain`` extra) is imported only when a picture is drawn, through its
object-oriented Agg API: no pyplot, no change to the caller's backend.
"""

from __future__ import annotations

import contextlib
import importlib
import math
import os
import secrets
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from .interface import StrPath
from .models import finite_positions

SAMPLE = 1_000_000  #: keys whose windows make the percentiles, the histogram and per-bin medians
BINS = 200  #: equal-count key bins along the key space
FILES = ("cdf.png", "windows.png", "histogram.png")  #: what :func:`explain` writes, in order
_DRAW = 20_000  # points drawn per curve: more add nothing visible
_CHUNK = 1 << 20  # keys predicted at a time in the full pass: memory O(chunk), not O(n)
_EXTRA = 'pip install "learnedidx[explain]"'


@dataclass(frozen=True)
class Zoom:
    """A region of the key array around one key: positions ``start <= p < stop``."""

    position: int  #: the key's position
    error: int  #: its ``predicted - lower_bound``
    window: int  #: its ``hi - lo``
    start: int
    stop: int


@dataclass(frozen=True)
class ErrorProfile:
    """What the pictures of :func:`explain` show, from :func:`error_profile`.

    ``errors`` and ``windows`` are at the sampled positions ``positions`` (every key when there
    are at most ``sample`` of them); ``bin_*`` arrays have one entry per bin of positions
    ``bin_edges[i] <= p < bin_edges[i + 1]``.
    """

    n: int  #: number of keys
    positions: np.ndarray  #: the sampled positions, increasing, evenly spaced, int64
    errors: np.ndarray  #: ``predicted - lower_bound`` at ``positions``
    windows: np.ndarray  #: ``hi - lo`` at ``positions``
    p50: float  #: median of ``windows`` (``np.percentile``, linear interpolation)
    p99: float  #: 99th percentile of ``windows``
    max_error: int  #: largest ``|error|`` over all keys
    max_window: int  #: widest window over all keys
    bin_edges: np.ndarray  #: bin boundaries, positions 0 = edges[0] < ... < edges[-1] = n
    bin_max_window: np.ndarray  #: widest window of each bin, over all its keys
    bin_median_window: np.ndarray  #: median window of each bin's sampled keys (NaN if it has none)
    bin_max_error: np.ndarray  #: largest ``|error|`` of each bin, over all its keys
    worst: Zoom  #: around the largest ``|error|`` (first such key of the bin with the most error)
    widest: Zoom  #: around the widest window outside ``worst``'s region (inside it if none is outside)
    log_keys: bool  #: whether the key axis reads better on a log scale (:func:`log_keys`)


def log_keys(keys: np.ndarray) -> bool:
    """Whether a sorted key set's CDF reads better on a log key axis than on a linear one (O(1)).

    True when all keys are > 0, span 10x or more and the middle 80% of them (10th to 90th
    percentile) cover over twice the share of a log axis that they cover of a linear one: yes for
    lognormal keys, no for uniform ones (the repository's ``datasets.plot`` draws by it too).
    """
    first, last = float(keys[0]), float(keys[-1])
    if first <= 0 or not last >= 10 * first or math.isinf(last):
        return False
    p10, p90 = (float(keys[int(q * (keys.size - 1))]) for q in (0.1, 0.9))
    linear = (p90 - p10) / (last - first)
    log = math.log(p90 / p10) / math.log(last / first)
    return log > 2 * linear


def _check_index(idx: Any) -> np.ndarray:
    """The keys of ``idx``; TypeError unless it predicts windows, ValueError when it is empty."""
    if not callable(getattr(idx, "predict", None)) or not hasattr(idx, "keys"):
        hint = (" (it has no predict(): explain learnedidx.RMI(idx.keys), an RMI over its current keys)"
                if type(idx).__name__ == "DynamicRMI" else "")
        raise TypeError(f"explain needs a learned index with predict(): RMI, PGM or RadixSpline, "
                        f"got {type(idx).__name__}{hint}")
    keys = idx.keys
    if len(keys) == 0:
        raise ValueError(f"explain needs at least one key; {type(idx).__name__} is empty")
    return keys


def _predict_chunk(idx, keys: np.ndarray, start: int, stop: int) -> tuple[np.ndarray, np.ndarray]:
    """``(errors, windows)`` of the keys at positions ``start..stop-1``."""
    part = keys[start:stop]
    pos, lo, hi = idx.predict(part)
    lb = np.searchsorted(keys, part, side="left")  # a repeated key's first position
    return pos - lb, hi - lo


def _zoom(idx, keys: np.ndarray, start: int, stop: int, score) -> Zoom:
    """The zoom around the key of ``keys[start:stop]`` with the largest ``score(errors, windows)``
    (the first on ties): half a width of twice its error or window, at least 16 keys."""
    errors, windows = _predict_chunk(idx, keys, start, stop)
    p = int(np.argmax(score(errors, windows)))
    error, window = int(errors[p]), int(windows[p])
    half = 2 * max(abs(error), window, 8)
    p += start
    return Zoom(p, error, window, max(0, p - half), min(len(keys), p + half + 1))


def _first_best(maxima: np.ndarray, sums: np.ndarray, candidates: np.ndarray) -> int:
    """The candidate bin with the largest maximum, then the largest sum, then the first."""
    order = np.lexsort((-candidates, sums[candidates], maxima[candidates]))
    return int(candidates[order[-1]])


def error_profile(idx: Any, *, sample: int = SAMPLE, bins: int = BINS) -> ErrorProfile:
    """The numbers behind :func:`explain`'s pictures (see :class:`ErrorProfile`).

    Complexity: one ``predict`` and one binary search per key (a chunk of keys at a time, memory
    O(sample + 2**20)), plus O(sample log sample) for the percentiles. Defaults: statistics over
    ``sample`` = 1,000,000 evenly spaced keys (all of them when there are fewer), ``bins`` = 200
    bins of equal key counts (fewer when there are fewer keys or sampled keys).

    Raises:
        TypeError: ``idx`` has no ``predict`` (a classic index, a DynamicRMI).
        ValueError: ``idx`` holds no key, or ``sample`` or ``bins`` is below 1.
    """
    keys = _check_index(idx)
    if sample < 1 or bins < 1:
        raise ValueError(f"sample and bins must be at least 1, got sample={sample}, bins={bins}")
    n = len(keys)
    positions = np.arange(n, dtype=np.int64) if n <= sample else \
        np.linspace(0, n - 1, sample).round().astype(np.int64)
    count = min(bins, len(positions))
    edges = np.array([i * n // count for i in range(count + 1)], dtype=np.int64)
    bin_max_window = np.zeros(count, dtype=np.int64)
    bin_max_error = np.zeros(count, dtype=np.int64)
    # Sums break ties between bins of equal maxima: the bin that is worse on average wins.
    bin_sum_error, bin_sum_window = np.zeros(count), np.zeros(count)
    errors, windows = np.empty(len(positions), dtype=np.int64), np.empty(len(positions), dtype=np.int64)
    for start in range(0, n, _CHUNK):
        stop = min(n, start + _CHUNK)
        e, w = _predict_chunk(idx, keys, start, stop)
        a = np.abs(e)
        # The bins meeting this chunk, and where each begins inside it.
        first, last = np.searchsorted(edges, start, "right") - 1, np.searchsorted(edges, stop, "left")
        cuts = np.maximum(edges[first:last], start) - start
        ids = np.arange(first, last)
        bin_max_window[ids] = np.maximum(bin_max_window[ids], np.maximum.reduceat(w, cuts))
        bin_max_error[ids] = np.maximum(bin_max_error[ids], np.maximum.reduceat(a, cuts))
        bin_sum_error[ids] += np.add.reduceat(a, cuts)
        bin_sum_window[ids] += np.add.reduceat(w, cuts)
        s0, s1 = np.searchsorted(positions, (start, stop))
        errors[s0:s1], windows[s0:s1] = e[positions[s0:s1] - start], w[positions[s0:s1] - start]

    worst_bin = _first_best(bin_max_error, bin_sum_error, np.arange(count))
    worst = _zoom(idx, keys, int(edges[worst_bin]), int(edges[worst_bin + 1]), lambda e, w: np.abs(e))
    # The widest window elsewhere: a second region rather than the same one twice.
    outside = (edges[1:] <= worst.start) | (edges[:-1] >= worst.stop)
    away = np.flatnonzero(outside) if outside.any() else np.arange(count)
    wide_bin = _first_best(bin_max_window, bin_sum_window, away)
    widest = _zoom(idx, keys, int(edges[wide_bin]), int(edges[wide_bin + 1]), lambda e, w: w)

    cut = np.searchsorted(positions, edges)
    medians = np.array([np.median(windows[a:b]) if b > a else np.nan for a, b in zip(cut[:-1], cut[1:])])
    p50, p99 = (float(v) for v in np.percentile(windows, [50, 99]))
    return ErrorProfile(
        n=n, positions=positions, errors=errors, windows=windows, p50=p50, p99=p99,
        max_error=int(bin_max_error.max()), max_window=int(bin_max_window.max()), bin_edges=edges,
        bin_max_window=bin_max_window, bin_median_window=medians, bin_max_error=bin_max_error,
        worst=worst, widest=widest, log_keys=log_keys(keys),
    )


# --- drawing ---------------------------------------------------------------------------------


def require_matplotlib() -> None:
    """Raise ModuleNotFoundError naming the extra to install when matplotlib is missing (O(1))."""
    try:
        importlib.import_module("matplotlib")
    except ImportError as exc:
        raise ModuleNotFoundError(f"learnedidx.explain draws with matplotlib: {_EXTRA}") from exc


def _size(b: int) -> str:
    """Bytes in decimal units: '164.0 KB', '3.2 MB'."""
    for unit in ("B", "KB", "MB", "GB"):
        if b < 1000 or unit == "GB":
            return f"{b} B" if unit == "B" else f"{b:.1f} {unit}"
        b /= 1000


def spans_decades(values) -> bool:
    """Whether the finite positive values span a factor of 10 (a log axis then shows them
    better; the repository's bench plots decide by it too)."""
    positive = np.asarray(values, dtype=np.float64)
    positive = positive[np.isfinite(positive) & (positive > 0)]
    return bool(positive.size > 0 and positive.max() >= 10 * positive.min())


def _x(keys: np.ndarray) -> np.ndarray:
    """Keys as float64 for an axis, ±inf as NaN (not drawn)."""
    x = keys.astype(np.float64)
    x[~np.isfinite(x)] = np.nan
    return x


def _finite_range(keys: np.ndarray) -> tuple[float, float]:
    """The smallest and largest finite key (O(log n)); ValueError when no key is finite."""
    first, stop = finite_positions(keys)
    if first >= stop:
        raise ValueError("explain draws keys on an axis, and every key is infinite")
    return float(keys[first]), float(keys[stop - 1])


def key_offsets(window: np.ndarray) -> np.ndarray:
    """Keys of a sorted window minus its first (finite) key, as float64, exact for 64-bit integers."""
    if window.dtype.kind == "f":
        x = _x(window)
        return x - x[np.isfinite(x)][0] if np.isfinite(x).any() else x
    wide = window.astype(np.uint64 if window.dtype.kind == "u" else np.int64)
    # Modular uint64 difference: exact because the true difference is in [0, 2**64).
    return (wide.view(np.uint64) - wide[:1].view(np.uint64)).astype(np.float64)


def _thin(count: int, limit: int = _DRAW) -> np.ndarray:
    """At most ``limit`` evenly spaced indexes of ``range(count)``, the first and last included."""
    return np.unique(np.linspace(0, count - 1, min(count, limit)).round().astype(np.int64))


def _plain(ax) -> None:
    """Whole numbers with thousands separators on the y axis (positions, windows, errors): no
    '1e6' offset to decode, and on a linear axis no fractional ticks."""
    from matplotlib.ticker import FuncFormatter, MaxNLocator

    if ax.get_yscale() == "linear":
        ax.yaxis.set_major_locator(MaxNLocator(integer=True))
    ax.yaxis.set_major_formatter(FuncFormatter(lambda v, _pos: f"{v:,.0f}"))


def _figure(size: tuple[float, float]):
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=size, dpi=100, layout="constrained")
    FigureCanvasAgg(fig)
    return fig


def save_png(fig, path: Path) -> Path:
    """Write a PNG atomically: a temporary file renamed over ``path``."""
    tmp = path.with_name(f".{path.name}.{secrets.token_hex(6)}.tmp")
    try:
        fig.savefig(tmp, format="png")
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise
    return path


def _title(idx, prof: ErrorProfile, name: str | None) -> str:
    keys = idx.keys
    size = int(idx.size_in_bytes())
    head = f"{name}: " if name else ""
    sampled = "" if len(prof.positions) == prof.n else f" (percentiles of {len(prof.positions):,} evenly spaced keys)"
    return (f"{head}{type(idx).__name__} over {prof.n:,} {keys.dtype} keys, index {_size(size)} "
            f"({100 * size / max(1, keys.nbytes):.2f}% of the key bytes)\n"
            f"largest error {prof.max_error:,} positions; windows p50 {prof.p50:,.4g}, p99 {prof.p99:,.4g}, "
            f"max {prof.max_window:,} keys{sampled}")


_TRUE, _PRED, _MARK = "black", "tab:orange", ("tab:red", "tab:purple")


def _apart(a: Zoom, b: Zoom) -> bool:
    return a.stop <= b.start or b.stop <= a.start


def _cdf_figure(idx, prof: ErrorProfile, title: str):
    """The whole CDF with the predicted positions over it, and the two zoomed regions."""
    from matplotlib.ticker import MaxNLocator

    keys = idx.keys
    fig = _figure((17, 5.6))
    full, *zooms = fig.subplots(1, 3, width_ratios=(1.25, 1, 1))
    drawn = prof.positions[_thin(len(prof.positions))]
    at = np.searchsorted(prof.positions, drawn)
    lb = np.searchsorted(keys, keys[drawn], side="left")
    x = _x(keys[drawn])
    full.plot(x, lb, color=_TRUE, lw=1.2, label="true position (lower bound)")
    full.plot(x, lb + prof.errors[at], ".", color=_PRED, ms=1.5, alpha=0.6, label="predicted position")
    for letter, zoom, color in _marked(keys, prof):
        point = (float(keys[zoom.position]), zoom.position)
        full.plot(*point, "o", mfc="none", mec=color, ms=11, mew=1.6)
        full.annotate(letter, point, xytext=(8, -14), textcoords="offset points", color=color, fontweight="bold")
    if prof.log_keys:
        full.set_xscale("log")
    full.set(xlabel="key (log scale)" if prof.log_keys else "key", ylabel="position",
             title=f"CDF of all {prof.n:,} keys; A and B are zoomed on the right")
    _plain(full)
    full.legend(loc="upper left", fontsize=8, markerscale=6)

    labels = (f"A: largest error, {prof.worst.error:+,} positions",
              f"B: widest window{' elsewhere' if _apart(prof.worst, prof.widest) else ''}, {prof.widest.window:,} keys")
    for ax, zoom, label, color in zip(zooms, (prof.worst, prof.widest), labels, _MARK):
        part = keys[zoom.start:zoom.stop]
        pos, lo, hi = idx.predict(part)
        lb = np.searchsorted(keys, part, side="left")
        log = log_keys(part)  # a zoom into a sparse tail can span decades of keys too
        dx = _x(part) if log else key_offsets(part)
        k = zoom.position - zoom.start
        here, truth = dx[k], lb[k]
        pick = _thin(len(part))
        ax.fill_between(dx[pick], lo[pick], hi[pick], color=_PRED, alpha=0.2, lw=0, label="window [lo, hi)")
        ax.step(dx[pick], lb[pick], where="post", color=_TRUE, lw=1, label="true position (lower bound)")
        ax.plot(dx[pick], pos[pick], color=_PRED, lw=1.3, label="predicted position")
        if np.isfinite(here):
            # The key itself: its window as a bar (a band over few keys is too thin to see), and
            # an arrow from its true position to the predicted one.
            ax.plot([here, here], [lo[k], hi[k]], color=color, lw=7, alpha=0.3, solid_capstyle="butt",
                    label=f"this key's window: {zoom.window:,} keys")
            ax.annotate("", (here, truth + zoom.error), (here, truth),
                        arrowprops=dict(arrowstyle="->", color=color, lw=1.8, shrinkA=0, shrinkB=0))
            ax.plot([here], [truth], "o", color=color, ms=5)
        if log:
            ax.set_xscale("log")
        else:
            ax.xaxis.set_major_locator(MaxNLocator(nbins=5))
        ax.set(xlabel="key (log scale)" if log else f"key - {part[0].item():,}", ylabel="position",
               title=f"{label}\nat position {zoom.position:,}\nkey {keys[zoom.position].item():,}")
        ax.title.set_color(color)
        _plain(ax)
        ax.legend(loc="best", fontsize=8)
    fig.suptitle(title)
    return fig


def _bin_keys(keys: np.ndarray, edges: np.ndarray) -> np.ndarray:
    """Each bin's first key and, last, the last key: the bins' edges on the key axis (±inf at
    the ends of the finite keys)."""
    return np.clip(np.append(keys[edges[:-1]], keys[-1]).astype(np.float64), *_finite_range(keys))


def _marked(keys: np.ndarray, prof: ErrorProfile):
    """``(letter, zoom, color)`` of the zoomed regions whose key can be placed on a key axis."""
    return [(letter, zoom, color) for letter, zoom, color in zip("AB", (prof.worst, prof.widest), _MARK)
            if np.isfinite(keys[zoom.position])]


def _windows_figure(idx, prof: ErrorProfile, title: str):
    """Window width and |error| along the key space: sampled keys, and each bin's max and median."""
    keys = idx.keys
    fig = _figure((15, 8))
    top, bottom = fig.subplots(2, 1, sharex=True)
    drawn = _thin(len(prof.positions))
    x = _x(keys[prof.positions[drawn]])
    edges = _bin_keys(keys, prof.bin_edges)
    bins = len(prof.bin_edges) - 1
    per_bin = f"{bins} bin{'s' * (bins > 1)} of {prof.n / bins:,.0f} keys"
    top.plot(x, prof.windows[drawn], ".", color="0.6", ms=2, alpha=0.5, label="a key's window (sampled)")
    top.stairs(prof.bin_max_window, edges, baseline=None, color="tab:red", lw=1.4,
               label=f"largest in each of\n{per_bin}")
    top.stairs(prof.bin_median_window, edges, baseline=None, color="tab:blue", lw=1.4, label="median in each bin")
    top.axhline(prof.p99, color="tab:red", lw=0.8, ls=":", label=f"p99 of all keys: {prof.p99:,.4g}")
    top.set(ylabel="window hi - lo (keys)", title="Window a lookup searches, along the key space")
    if spans_decades([prof.windows.min(), prof.max_window]):
        top.set_yscale("log")
        top.set_ylabel("window hi - lo (keys, log scale)")
    else:
        top.set_ylim(0, prof.max_window * 1.12)
    _plain(top)
    top.legend(loc="upper left", bbox_to_anchor=(1.01, 1), fontsize=8, markerscale=4)

    bottom.plot(x, np.abs(prof.errors[drawn]), ".", color="0.6", ms=2, alpha=0.5, label="a key's |error| (sampled)")
    bottom.stairs(prof.bin_max_error, edges, baseline=None, color="tab:red", lw=1.4, label="largest in each bin")
    bottom.set(ylabel="|predicted - true position|", title="Error of the predicted position, along the key space")
    if prof.max_error >= 10:  # symlog: errors of 0 stay on the axis
        bottom.set_yscale("symlog", linthresh=1)
        bottom.set_ylim(0, prof.max_error * 2)
        bottom.set_ylabel("|predicted - true position| (log scale)")
    else:
        bottom.set_ylim(0, max(1, prof.max_error) * 1.12)
    _plain(bottom)
    for letter, zoom, color in _marked(keys, prof):
        for ax in (top, bottom):
            ax.axvline(float(keys[zoom.position]), color=color, lw=0.8, ls="--")
        top.annotate(letter, (float(keys[zoom.position]), 0), xycoords=top.get_xaxis_transform(), xytext=(3, 6),
                     textcoords="offset points", color=color, fontweight="bold", backgroundcolor="white")
    bottom.legend(loc="upper left", bbox_to_anchor=(1.01, 1), fontsize=8, markerscale=4)
    if prof.log_keys:
        bottom.set_xscale("log")
    bottom.set_xlabel("key (log scale)" if prof.log_keys else "key")
    fig.suptitle(title)
    return fig


def _histogram_edges(low: int, high: int) -> np.ndarray:
    """Integer bin edges over ``low..high``: one bin a value up to 400 values, else about 60
    log-spaced bins whose widths never shrink (shrinking widths draw a comb)."""
    if high - low < 400:
        return np.arange(low, high + 2) - 0.5
    edges = [low]
    width = 1
    ratio = ((high + 1) / max(low, 1)) ** (1 / 60)
    while edges[-1] <= high:
        width = max(width, round(edges[-1] * (ratio - 1)))
        edges.append(edges[-1] + width)
    return np.array(edges, dtype=np.float64)


def _histogram_figure(prof: ErrorProfile, title: str):
    """The windows' histogram, as shares of the keys, with p50 and p99 marked."""
    windows = prof.windows
    low, high = int(windows.min()), int(windows.max())
    edges = _histogram_edges(low, high)
    counts, _ = np.histogram(windows, bins=edges)
    share = 100 * counts / len(windows)
    wide = high - low >= 400
    if wide:  # per window value, so that wider bins do not look taller
        share /= np.diff(edges)
    fig = _figure((11, 5.5))
    ax = fig.subplots()
    ax.stairs(share, edges, fill=True, color="tab:blue", alpha=0.75)
    if wide:
        ax.set_xscale("log")
    if spans_decades(share):
        ax.set_yscale("log")
    # Headroom above the bars for the labels, one a row, each on the side of its line with room for it.
    top = share.max()
    ax.set_ylim(top=top * 30 if ax.get_yscale() == "log" else top * 1.3)
    marks = [(prof.p50, "p50", "-"), (prof.p99, "p99", "--")]
    if prof.p50 == prof.p99:
        marks = [(prof.p50, "p50 = p99", "-")]
    scale = np.log10 if wide else float
    x0, x1 = (scale(v) for v in ax.get_xlim())
    for row, (value, label, style) in enumerate(marks):
        at = (scale(value) - x0) / (x1 - x0)  # where the line is, as a share of the axis
        ax.axvline(value, color="tab:red", lw=1.2, ls=style)
        ax.annotate(f"{label} = {value:,.4g}", (value, 1), xycoords=ax.get_xaxis_transform(),
                    xytext=(-4 if at > 0.7 else 4, -14 - 15 * row), textcoords="offset points",
                    ha="right" if at > 0.7 else "left", color="tab:red", fontweight="bold")
    what = "all" if len(windows) == prof.n else f"{len(windows):,} evenly spaced"
    ax.set(xlabel="window hi - lo (keys" + (", log scale)" if wide else ")"),
           ylabel=("share of keys per window value" if wide else "share of keys") + " (%"
           + (", log scale)" if ax.get_yscale() == "log" else ")"),
           title=f"Windows of {what} keys")
    fig.suptitle(title)
    return fig


def explain(idx: Any, path: StrPath, *, sample: int = SAMPLE, name: str | None = None) -> list[Path]:
    """Draw where a learned index errs, as three PNGs in the folder ``path``; return their paths.

    - ``cdf.png``: the keys' CDF with the predicted positions over it, and two zoomed panels,
      the largest error (A) and the widest window elsewhere (B): true positions, predicted
      positions and the window band.
    - ``windows.png``: the window width and the error along the key space (sampled keys; each
      bin's largest and median), A and B marked.
    - ``histogram.png``: the windows' histogram with p50 and p99 marked.

    Every title names the index class, key count and dtype, index bytes and ``name`` (e.g. the
    data set) when given. Log axes where the data asks: keys when :func:`log_keys` says so,
    windows and errors when they span a factor of 10. The folder is created if missing and the
    files replaced atomically. Complexity and ``sample`` (default 1,000,000): as
    :func:`error_profile`, whose numbers the pictures show.

    Raises:
        ModuleNotFoundError: matplotlib is missing (``pip install "learnedidx[explain]"``).
        TypeError: ``idx`` has no ``predict`` (see :func:`error_profile`).
        ValueError: ``idx`` holds no key, or ``sample`` is below 1.
        OSError: the folder or a file cannot be written.
    """
    require_matplotlib()
    prof = error_profile(idx, sample=sample)
    _finite_range(idx.keys)
    folder = Path(path)
    folder.mkdir(parents=True, exist_ok=True)
    title = _title(idx, prof, name)
    figures = (_cdf_figure(idx, prof, title), _windows_figure(idx, prof, title), _histogram_figure(prof, title))
    return [save_png(fig, folder / file) for fig, file in zip(figures, FILES)]
