"""Tables, files and the Pareto plot of benchmark results."""

from __future__ import annotations

import csv
import json
import os
import platform
import sys
from pathlib import Path

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


def machine_info() -> dict:
    """Versions and hardware facts recorded with every result file."""
    import numba
    import numpy

    info = {
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


def pareto_plot(results: list[Result], path: Path) -> Path | None:
    """Index size (log scale) against batch ns/lookup, one panel per dataset."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    datasets = list(dict.fromkeys(r.dataset for r in results))
    measured = [r for r in results if r.batch_ns and r.index_bytes is not None]
    if not measured:
        return None
    cols = min(3, len(datasets))
    rows = (len(datasets) + cols - 1) // cols
    fig, axes = plt.subplots(rows, cols, figsize=(5.5 * cols, 4.2 * rows), squeeze=False)
    colors = {"learned": "tab:red", "classic": "tab:blue", "python": "tab:gray"}
    for ax, name in zip(axes.flat, datasets):
        for r in (r for r in measured if r.dataset == name):
            size = max(r.total_bytes or 0, 1)
            ax.scatter(size, r.batch_ns, color=colors.get(r.family, "black"), s=30)
            ax.annotate(r.index, (size, r.batch_ns), fontsize=7, xytext=(3, 3), textcoords="offset points")
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_title(name, fontsize=9)
        ax.set_xlabel("index bytes (+ key copy), log")
        ax.set_ylabel("batch lower_bound ns/lookup")
        ax.grid(True, which="both", alpha=0.3)
    for ax in list(axes.flat)[len(datasets):]:
        ax.axis("off")
    handles = [plt.Line2D([], [], marker="o", ls="", color=c, label=f) for f, c in colors.items()]
    fig.legend(handles=handles, loc="upper right", fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path
