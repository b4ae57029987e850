"""Tables, files and the Pareto plot of benchmark results."""

from __future__ import annotations

import csv
import json
import math
import os
import platform
import sys
from pathlib import Path

from learnedidx.explain import spans_decades

from .harness import Result

BASELINE = "BinarySearch"

_COLUMNS = [
    ("index", 18), ("build s", 8), ("index bytes", 12), ("% keys", 7), ("total bytes", 12),
    ("loop ns", 8), ("batch ns", 9), ("vs BinSrch", 10), ("scalar ns", 9), ("compile s", 9),
    ("1st call ms", 11), ("load ms", 8), ("1st after load us", 17), ("variant", 26),
]
_LEFT_ALIGNED = {"index", "variant"}


def _bytes(b: int | None) -> str:
    if b is None:
        return "-"
    for unit in ("B", "KB", "MB", "GB"):
        if b < 1024 or unit == "GB":
            return f"{b:.0f} {unit}" if unit == "B" else f"{b:.1f} {unit}"
        b /= 1024
    return str(b)


def _num(x, fmt: str) -> str:
    return "-" if x is None else format(x, fmt)


def _cell(text: str, column: str, width: int) -> str:
    return text.ljust(width) if column in _LEFT_ALIGNED else text.rjust(width)


def table(results: list[Result]) -> str:
    """A fixed-width table of one dataset's results: loop and batch ns/lookup, the batch speed
    ratio against BinarySearch's batch, and what each batch path does (``variant``)."""
    if not results:
        return ""
    first = results[0]
    base = next((r.batch_ns for r in results if r.index == BASELINE and r.batch_ns), None)
    title = (f"{first.dataset}: {first.n_keys:,} keys ({_bytes(first.key_bytes)}), "
             f"{first.n_lookups:,} lookups")
    header = "  ".join(_cell(name, name, width) for name, width in _COLUMNS).rstrip()
    lines = [title, header, "-" * len(header)]
    notes = []
    for r in results:
        ratio = f"{base / r.batch_ns:.2f}x" if base and r.batch_ns else "-"
        pct = f"{100 * r.index_bytes / r.key_bytes:.2f}" if r.index_bytes is not None and r.key_bytes else "-"
        total = _bytes(r.total_bytes) if r.key_copy_bytes else ""
        cells = [
            r.index, _num(r.build_s, ".2f"), _bytes(r.index_bytes), pct, total, _num(r.loop_ns, ".1f"),
            _num(r.batch_ns, ".1f"), ratio, _num(r.scalar_ns, ".0f"), _num(r.compile_s, ".2f"),
            _num(r.first_call_ms, ".2f"), _num(r.load_ms, ".1f"), _num(r.first_lookup_after_load_us, ".0f"),
            r.batch_variant if r.batch_ns is not None else "-",
        ]
        lines.append("  ".join(_cell(c, name, w) for c, (name, w) in zip(cells, _COLUMNS)).rstrip())
        if r.note:
            notes.append(f"  {r.index}: {r.note}")
    lines += notes
    return "\n".join(lines)


def git_commit() -> dict | None:
    """``{"commit": full hash, "dirty": bool}`` of the git checkout holding bench/; None outside one.

    None too when git is missing or hangs (10 s timeout): a result file never fails for want of git.
    Dirty means tracked files differ from the commit (None if that could not be told); untracked files
    such as ./results do not count.
    """
    import subprocess

    repo = Path(__file__).resolve().parent.parent

    def git(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run(["git", *args], cwd=repo, capture_output=True, text=True, timeout=10)

    try:
        head = git("rev-parse", "HEAD")
        if head.returncode != 0:
            return None
        status = git("status", "--porcelain", "--untracked-files=no")
    except (OSError, subprocess.SubprocessError):
        return None
    return {"commit": head.stdout.strip(), "dirty": bool(status.stdout.strip()) if status.returncode == 0 else None}


def machine_info() -> dict:
    """Versions, hardware facts and the git commit (see git_commit) recorded with every result file."""
    import numba
    import numpy

    info = {
        "git": git_commit(),
        "python": sys.version.split()[0],
        "platform": platform.platform(),
        "machine": platform.machine(),
        "cpu_count": os.cpu_count(),
        "numpy": numpy.__version__,
        "numba": numba.__version__,
        "numba_threads": numba.get_num_threads(),
    }
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    info["cpu"] = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    try:
        import learnedidx

        info["learnedidx"] = learnedidx.__version__
    except ImportError:  # pragma: no cover
        pass
    for package in ("pygm", "BTrees", "sortedcontainers"):
        try:
            from importlib.metadata import version

            info[package] = version(package)
        except Exception:  # noqa: BLE001 - a missing optional package is not an error
            info[package] = None
    return info


def write_files(results: list[Result], out: Path, settings: dict, notes: list[str]) -> list[Path]:
    """Write results.csv, results.json and pareto.png into ``out``; return their paths."""
    out.mkdir(parents=True, exist_ok=True)
    rows = [r.as_dict() for r in results]
    csv_path = out / "results.csv"
    with open(csv_path, "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(rows[0]) if rows else ["dataset"])
        writer.writeheader()
        writer.writerows(rows)
    json_path = out / "results.json"
    with open(json_path, "w") as f:
        json.dump({"machine": machine_info(), "settings": settings, "notes": notes, "results": rows}, f, indent=1)
    paths = [csv_path, json_path]
    png = pareto_plot(results, out / "pareto.png")
    if png:
        paths.append(png)
    return paths


_DPI = 110
_FAMILY_COLORS = {"learned": "tab:red", "classic": "tab:blue", "python": "tab:gray"}
_MARKER_AREA = 30  # scatter marker area, points**2
_LABEL_FONTSIZE = 8
_LABEL_RADII = (5, 11, 19, 29, 42, 58, 78)  # label offsets from the marker centre, in points, nearest first
# Directions to try at each radius: right of the point first (reading order), then left, the diagonals, above, below.
_LABEL_DIRECTIONS = ((1, 0), (-1, 0), (1, 1), (1, -1), (-1, 1), (-1, -1), (0, 1), (0, -1))
_BYTE_UNITS = ("B", "kB", "MB", "GB", "TB", "PB")


def _overlap(a, b) -> float:
    """Area shared by two display-space boxes (0.0 when they are disjoint or only touch)."""
    w = min(a.x1, b.x1) - max(a.x0, b.x0)
    h = min(a.y1, b.y1) - max(a.y0, b.y0)
    return w * h if w > 0 and h > 0 else 0.0


def _distance(box, point) -> float:
    """Display distance from a point to the nearest edge of a box (0.0 inside it)."""
    return math.hypot(max(box.x0 - point[0], 0, point[0] - box.x1), max(box.y0 - point[1], 0, point[1] - box.y1))


def _place_labels(ax, points: list[tuple[float, float]], labels: list[str], renderer) -> list:
    """Annotate each data point with its label at the nearest free spot; return the annotations.

    Greedy and deterministic: the most crowded points choose first; each label tries offsets of
    growing radius (``_LABEL_RADII``) in 8 directions and takes the first whose text box lies
    inside the axes, overlaps no placed label and no marker, and either (first radius, no leader
    line) has no other marker within twice the distance to its own or has a leader line that
    crosses no placed label; else the one with the least overlap, then the fewest misreadings.
    Labels beyond the first radius get a thin leader line. Works in display space, so the axis
    limits and the figure layout must be final before it is called.
    """
    import numpy as np
    from matplotlib.text import Text
    from matplotlib.transforms import Bbox

    frame = ax.get_window_extent(renderer)
    xy = ax.transData.transform(points)
    pixels = ax.figure.dpi / 72  # per point
    half = (_MARKER_AREA ** 0.5 / 2 + 1) * pixels  # marker radius + 1 pt
    markers = [Bbox.from_extents(x - half, y - half, x + half, y + half) for x, y in xy]
    crowd = [sum(abs(xy[j] - xy[i]).max() < 40 * pixels for j in range(len(xy))) for i in range(len(xy))]
    order = sorted(range(len(points)), key=lambda i: (-crowd[i], xy[i][0], xy[i][1], labels[i]))
    placed: list = []
    annotations = []
    for i in order:
        probe = ax.annotate(labels[i], points[i], xytext=(0, 0), textcoords="offset points", fontsize=_LABEL_FONTSIZE)
        best = None
        for radius in _LABEL_RADII:
            for dx, dy in _LABEL_DIRECTIONS:
                probe.xyann = (dx * radius, dy * radius)
                probe.set_horizontalalignment({1: "left", 0: "center", -1: "right"}[dx])
                probe.set_verticalalignment({1: "bottom", 0: "center", -1: "top"}[dy])
                probe.update_positions(renderer)
                box = Text.get_window_extent(probe, renderer)  # the text alone, not its leader line
                outside = box.width * box.height - _overlap(box, frame)
                # (collisions, misreadings): any spot free of collisions beats any that has one.
                hard = outside + sum(_overlap(box, b) for b in placed + markers)
                soft = 0
                if radius > _LABEL_RADII[0]:  # a leader line through another label would misattribute it
                    end = xy[i] + np.array(probe.xyann) * pixels
                    along = [xy[i] + t * (end - xy[i]) for t in np.linspace(0.2, 1, 9)]
                    soft = sum(b.contains(*q) for b in placed for q in along)
                else:  # without a leader, a label about as near another marker may read as that one's
                    own = _distance(box, xy[i])
                    soft = sum(_distance(box, q) < 2 * own + half and abs(q - xy[i]).max() > half for q in xy)
                cost = (hard, soft)
                if best is None or cost < best[0]:
                    best = (cost, radius, probe.xyann, probe.get_ha(), probe.get_va(), box)
                if cost == (0, 0):
                    break
            if best[0] == (0, 0):
                break
        probe.remove()
        _, radius, offset, ha, va, box = best
        leader = dict(arrowstyle="-", color="0.5", lw=0.6, shrinkA=0, shrinkB=2) if radius > _LABEL_RADII[0] else None
        annotations.append(ax.annotate(labels[i], points[i], xytext=offset, textcoords="offset points", ha=ha, va=va,
                                       fontsize=_LABEL_FONTSIZE, arrowprops=leader, gid="pareto-label"))
        placed.append(box)
    return annotations


def _decade_label(value: float, _pos=None) -> str:
    """'1 B', '10 kB', '100 MB', ... for a power of ten (decimal units: 1 kB = 1000 B)."""
    exponent = round(math.log10(value))
    return f"{10 ** (exponent % 3)} {_BYTE_UNITS[min(exponent // 3, len(_BYTE_UNITS) - 1)]}"


def _size_axis(ax, sizes: list[int]) -> float:
    """Set up the x axis for index sizes in bytes; return the x position of a 0 B index.

    Log scale with decade ticks in byte units when the sizes span a factor of 10 or more.
    Zero-byte indexes (which add nothing to the keys) cannot sit on a log axis: they get their
    own "0 B" tick one decade left of the smallest real size, behind an axis break (//) and a
    dotted line. Otherwise linear, with 0 B at 0.
    """
    from matplotlib.ticker import FixedLocator, FuncFormatter, NullFormatter

    if not spans_decades(sizes):
        ax.set_xlim(0, max(sizes) * 1.15 or 1)
        ax.xaxis.set_major_formatter(FuncFormatter(lambda v, _pos: f"{v:,.0f} B"))
        return 0.0
    lo = min(s for s in sizes if s > 0)
    first = math.floor(math.log10(lo))
    last = math.ceil(math.log10(max(sizes) * 10 ** 0.3))
    ax.set_xscale("log")
    decades = [10.0 ** k for k in range(first, last + 1)]
    minor = [m * d for d in decades for m in range(2, 10)]
    zero_x = 0.0
    if 0 in sizes:
        zero_x = decades[0] / 10
        ax.set_xlim(zero_x / 10 ** 0.4, 10.0 ** last)
        cut = decades[0] / 10 ** 0.5
        ax.axvline(cut, color="0.45", lw=0.7, ls=(0, (1, 2)))
        for y in (0, 1):  # the break mark on both spines
            ax.plot([cut / 10 ** 0.05, cut * 10 ** 0.05], [y, y], color="white", lw=3,
                    transform=ax.get_xaxis_transform(), clip_on=False, zorder=5, solid_capstyle="butt")
            ax.plot([cut / 10 ** 0.08, cut / 10 ** 0.02], [y - 0.015, y + 0.015], [cut * 10 ** 0.02, cut * 10 ** 0.08],
                    [y - 0.015, y + 0.015], color="black", lw=0.8, transform=ax.get_xaxis_transform(), clip_on=False,
                    zorder=6)
    else:
        ax.set_xlim(decades[0] / 10 ** 0.2, 10.0 ** last)
    ax.xaxis.set_major_locator(FixedLocator(([zero_x] if zero_x else []) + decades))
    ax.xaxis.set_minor_locator(FixedLocator(minor))
    ax.xaxis.set_major_formatter(FuncFormatter(lambda v, pos: "0 B" if v == zero_x else _decade_label(v)))
    ax.xaxis.set_minor_formatter(NullFormatter())
    return zero_x


def _time_axis(ax, times: list[float]) -> None:
    """Set up the y axis for ns/lookup: log with plain-number ticks if the times span a factor of 10, else linear."""
    from matplotlib.ticker import FuncFormatter, LogLocator, NullFormatter

    if spans_decades(times):
        ax.set_yscale("log")
        ax.set_ylim(min(times) / 10 ** 0.2, max(times) * 10 ** 0.2)
        ax.yaxis.set_major_locator(LogLocator(base=10, subs=(1.0, 3.0)))
        ax.yaxis.set_major_formatter(FuncFormatter(lambda v, _pos: f"{v:g}"))
        ax.yaxis.set_minor_formatter(NullFormatter())
    else:
        ax.set_ylim(0, max(times) * 1.15)


def _better_key(fig, rect) -> None:
    """A small key axes at ``rect`` (figure fraction) with an arrow to the smaller-and-faster corner."""
    key = fig.add_axes(rect)
    key.set(xticks=[], yticks=[], xlim=(0, 1), ylim=(0, 1))
    key.set_xlabel("bytes", fontsize=8, labelpad=2)
    key.set_ylabel("ns/lookup", fontsize=8, labelpad=2)
    for side in ("top", "right"):
        key.spines[side].set_visible(False)
    key.annotate("", xy=(0.12, 0.12), xytext=(0.8, 0.8), arrowprops=dict(arrowstyle="-|>", lw=1.5, color="tab:green"))
    key.text(0.5, 0.42, "better:\nsmaller\nand faster", fontsize=8, color="tab:green", ha="left", va="top")


def _pareto_figure(results: list[Result]):
    """The Pareto figure of ``results`` (a matplotlib Figure on an Agg canvas), or None if nothing was measured."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure
    from matplotlib.lines import Line2D

    measured = [r for r in results if r.batch_ns and r.index_bytes is not None]
    if not measured:
        return None
    datasets = list(dict.fromkeys(r.dataset for r in measured))
    cols = min(3, len(datasets))
    rows = (len(datasets) + cols - 1) // cols
    key_inches = 2.1  # right-hand column for the legend and the "better" key, outside every panel
    width = 4.6 * cols + key_inches
    fig = Figure(figsize=(width, 3.8 * rows + 0.2), dpi=_DPI)
    canvas = FigureCanvasAgg(fig)
    axes = fig.subplots(rows, cols, squeeze=False)
    sizes = [r.total_bytes for r in measured]
    panels = []
    for n, (ax, name) in enumerate(zip(axes.flat, datasets)):
        mine = [r for r in measured if r.dataset == name]
        zero_x = _size_axis(ax, sizes)  # one x range for all panels: sizes compare across datasets
        _time_axis(ax, [r.batch_ns for r in mine])
        points = [(r.total_bytes or zero_x, r.batch_ns) for r in mine]
        # White edges keep markers on top of each other distinguishable.
        ax.scatter(*zip(*points), color=[_FAMILY_COLORS.get(r.family, "black") for r in mine], s=_MARKER_AREA,
                   edgecolors="white", linewidths=0.6, zorder=3)
        ax.set_title(name, fontsize=9)
        ax.set_xlabel("index bytes (+ key copy)", fontsize=8)
        if n % cols == 0:
            ax.set_ylabel("batch lower_bound ns/lookup", fontsize=8)
        ax.tick_params(labelsize=7.5)
        ax.grid(True, which="major", alpha=0.35)
        ax.grid(True, which="minor", alpha=0.12)
        panels.append((ax, points, [r.index for r in mine]))
    for ax in list(axes.flat)[len(datasets):]:
        ax.axis("off")
    right = 1 - key_inches / width
    fig.tight_layout(rect=(0, 0, right, 1))  # final layout first: labels are placed in display space
    top = axes[0, 0].get_position().y1
    families = [f for f in _FAMILY_COLORS if any(r.family == f for r in measured)]
    handles = [Line2D([], [], marker="o", ls="", color=_FAMILY_COLORS[f], label=f) for f in families]
    fig.legend(handles=handles, title="index family", loc="upper left", bbox_to_anchor=(right + 0.01, top),
                        fontsize=8, title_fontsize=8, frameon=False)
    key_w = 1.2 / width
    key_h = 1.2 / fig.get_figheight()
    _better_key(fig, (right + 0.55 / width, top - 0.95 / fig.get_figheight() - key_h, key_w, key_h))
    if 0 in sizes and spans_decades(sizes):
        fig.text(right + 0.01, top - 1.5 / fig.get_figheight() - key_h, "0 B: binary search over\nthe keys, "
                 "adds no bytes;\ndrawn left of the\naxis break (//)", fontsize=7.5, va="top", color="0.25")
    canvas.draw()
    renderer = canvas.get_renderer()
    for ax, points, labels in panels:
        _place_labels(ax, points, labels, renderer)
    return fig


def pareto_plot(results: list[Result], path: Path) -> Path | None:
    """Write index size against batch ns/lookup, one panel per dataset, as a PNG at ``path``; return it.

    One x range for all panels (log with byte-unit ticks when sizes span a factor of 10; 0 B indexes
    get their own tick behind an axis break), log y per panel when its times span a factor of 10,
    labels placed clear of each other and of the markers, the legend and a "better" arrow outside
    the panels. Returns None (and writes nothing) when no result has both a size and a batch time.
    Needs matplotlib (ModuleNotFoundError otherwise); uses its Agg canvas, not pyplot.
    """
    fig = _pareto_figure(results)
    if fig is None:
        return None
    fig.savefig(path, dpi=_DPI)
    return path


def _load_results(path: Path) -> list[Result]:
    """Result rows of a results.json or results.csv as write_files writes them (derived columns dropped).

    Raises OSError if the file cannot be read, ValueError (json.JSONDecodeError included) if it does
    not hold such rows (a row lacks a required field, or a number does not parse).
    """
    from dataclasses import MISSING, fields

    with open(path, newline="") as f:
        if path.suffix == ".json":
            rows = json.load(f)
            rows = rows.get("results") if isinstance(rows, dict) else None
            if not isinstance(rows, list):
                raise ValueError('expected {"results": [rows...]} as written by python -m bench')
        else:
            rows = list(csv.DictReader(f))
    results = []
    for number, row in enumerate(rows, 1):
        if not isinstance(row, dict):
            raise ValueError(f"row {number} is not an object of named fields")
        values = {}
        for field in fields(Result):
            if field.name not in row:
                if field.default is MISSING:
                    raise ValueError(f"row {number} has no {field.name!r} field: not a results file of python -m bench")
                continue
            value = row[field.name]
            # CSV cells are strings ("" for None); JSON values already have their types.
            if isinstance(value, str) and field.type != "str":
                value = None if value == "" else int(value) if field.type.startswith("int") else float(value)
            values[field.name] = value
        results.append(Result(**values))
    return results


def main(argv: list[str] | None = None) -> int:
    """``python -m bench.report RESULTS [--out PNG]``: re-draw the Pareto plot from saved result rows."""
    import argparse

    parser = argparse.ArgumentParser(
        prog="python -m bench.report",
        description="Re-draw pareto.png from the results.json or results.csv of a python -m bench run.",
    )
    parser.add_argument("results", type=Path, metavar="RESULTS", help="results.json or results.csv")
    parser.add_argument("--out", type=Path, help="PNG file (default: pareto.png next to RESULTS)")
    args = parser.parse_args(argv)
    try:
        results = _load_results(args.results)
    except (OSError, ValueError) as exc:
        parser.error(f"{args.results}: {exc}")
    png = pareto_plot(results, args.out or args.results.with_name("pareto.png"))
    if png is None:
        parser.error(f"{args.results}: no row has both an index size and a batch time")
    print(png)
    return 0


if __name__ == "__main__":
    sys.exit(main())
