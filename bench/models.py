"""``python -m bench.models``: RMI roots compared on the same leaves, data set by data set.

Every root of :data:`learnedidx.models.MODELS` heads RMIs of the same shape, ``(root, "linear")``
and ``(root, "linear", "linear")`` (``--depths``), over the same number of leaves (``n /
keys_per_leaf`` rounded down to a power of two) and the same inner stage: only the root
differs. Two depths, because the root matters most in two stages, where it sends each key
straight to its leaf; three linear stages is the library's default, where an inner stage of up
to 4096 models evens the leaves out whatever the root does. Columns, one row per root:

* avg lg2 err: ``stats["avg_log2_error"]``, the mean over the keys of
  ``log2(|lower_bound(k) - pos| + 1)``, pos the predicted position (RMI's AvgLg2);
* p99 window: the 99th percentile of ``hi - lo`` of ``predict`` over up to 1M evenly spaced
  keys (all of them when fewer); max err: ``stats["max_error"]``;
* hybrid: leaves whose window was wider than ``RMIConfig.max_window`` and search a sample of
  their keys instead (they cap the windows: ``--max-window none`` shows the roots' own);
* bytes: ``size_in_bytes()``; build s: the index's ``build_time_ns``, each of
  ``--repeat-build`` builds, after a warm-up build on 65,536 evenly spaced keys that compiles
  (or loads) the kernels, timed apart as ``warmup_s`` (for the mlp root, a whole training too:
  it trains on a sample of at most 32,768 keys whatever their number);
* batch ns, loop ns: :func:`bench.harness.measure`'s medians over the same random present
  lookups, every answer checked against the expected ones.

Builds and lookups run on ``--threads`` Numba threads (default 1). Each index is freed before
the next is built, and each key set before the next is made (100M keys: 800 MB).

    python -m bench.models                          # lognormal, normal, uniform_sparse at 10M, 100M; real sets
    python -m bench.models --quick --roots linear cubic mlp
    python -m bench.models --datasets lognormal --sizes 100M --repeat-build 2 --out /tmp/roots
"""

from __future__ import annotations

import argparse
import gc
import json
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from datasets.cli_args import (INPUT_ERRORS, ArgumentParser, check_dataset, error_text, int_range,
                               positive_count)
from learnedidx import RMI
from learnedidx.models import MODELS
from learnedidx.rmi import RMIConfig

from .cli import load_keys, thread_count
from .harness import measure
from .registry import IndexSpec
from .report import _bytes, machine_info

DEFAULT_SYNTHETIC = ("lognormal", "normal", "uniform_sparse")
DEFAULT_SIZES = (10_000_000, 100_000_000)
QUICK_N = 1_000_000
WARMUP_KEYS = 1 << 16  #: evenly spaced keys of the untimed warm-up build
WINDOW_SAMPLE = 1_000_000  #: most evenly spaced keys whose windows give the p99


@dataclass
class RootRow:
    """One row: an RMI with this root over one key set."""

    dataset: str
    n_keys: int
    stages: str  #: e.g. "cubic,linear"
    root: str
    models: tuple = ()  #: models in each stage, root first
    avg_log2_error: float | None = None
    p99_window: float | None = None
    max_error: int | None = None
    mean_window: float | None = None
    hybrid_leaves: int | None = None
    index_bytes: int | None = None
    build_s: list = field(default_factory=list)  #: one per build
    warmup_s: float | None = None
    batch_ns: float | None = None
    loop_ns: float | None = None
    runs: int = 0
    note: str = ""


#: header, RootRow field, text of a value; the lowest value of a column is the best.
_COLUMNS = (
    ("avg lg2 err", "avg_log2_error", "{:.2f}".format),
    ("p99 window", "p99_window", "{:,.0f}".format),
    ("max err", "max_error", "{:,}".format),
    ("hybrid", "hybrid_leaves", "{:,}".format),
    ("bytes", "index_bytes", _bytes),
    ("build s", "build_s", lambda builds: " / ".join(f"{b:.3g}" for b in builds)),
    ("batch ns", "batch_ns", "{:.1f}".format),
    ("loop ns", "loop_ns", "{:.1f}".format),
)


def _value(row: RootRow, name: str):
    """The row's value of a column as compared (the fastest of several builds); None if unmeasured."""
    value = getattr(row, name)
    if isinstance(value, list):
        return min(value) if value else None
    return value


def _column(rows: list[RootRow], name: str, text) -> list[str]:
    """One column's cells: "-" where unmeasured, the best (lowest) value in bold, with every
    value that reads the same; no bold when all read the same."""
    values = [_value(r, name) for r in rows]
    cells = ["-" if v is None else text(getattr(r, name)) for r, v in zip(rows, values)]
    measured = [(v, c) for v, c in zip(values, cells) if v is not None]
    if len({c for _, c in measured}) < 2:
        return cells
    best = min(measured, key=lambda vc: vc[0])[1]
    return [f"**{c}**" if c == best else c for c in cells]


def table(rows: list[RootRow]) -> str:
    """A markdown table of one key set and shape: a row per root, each column's best (lowest)
    value in bold, then a line per note (skipped roots, wrong answers)."""
    columns = [[r.root for r in rows]] + [_column(rows, name, text) for _, name, text in _COLUMNS]
    body = [list(cells) for cells in zip(*columns)]
    header = ["root", *(c[0] for c in _COLUMNS)]
    widths = [max(len(c) for c in column) for column in zip(header, *body)]

    def line(cells):
        return "| " + " | ".join(c.ljust(w) if i == 0 else c.rjust(w)
                                 for i, (c, w) in enumerate(zip(cells, widths))) + " |"

    rule = "| " + " | ".join(":" + "-" * (w - 1) if i == 0 else "-" * (w - 1) + ":"
                             for i, w in enumerate(widths)) + " |"
    lines = [line(header), rule, *(line(cells) for cells in body)]
    lines += [f"- {r.root}: {r.note}" for r in rows if r.note]
    return "\n".join(lines)


def title(rows: list[RootRow], lookups: int, threads: int) -> str:
    """The heading of one table: key set, shape, models per stage and lookups."""
    r = rows[0]
    shape = ",".join(["ROOT", *r.stages.split(",")[1:]])
    return (f"### {r.dataset}: {r.n_keys:,} keys, stages {shape} "
            f"({' / '.join(f'{m:,}' for m in r.models)} models), {lookups:,} lookups, {threads} thread(s)")


def _evenly_spaced(keys: np.ndarray, count: int) -> np.ndarray:
    """Up to ``count`` keys at evenly spaced positions, the first and last included (all when fewer)."""
    return keys[np.linspace(0, len(keys) - 1, min(len(keys), count)).astype(np.int64)]


def p99_window(idx: RMI, keys: np.ndarray) -> float:
    """99th percentile of the window widths ``hi - lo`` that ``predict`` gives up to
    WINDOW_SAMPLE evenly spaced keys: leaves weigh by their keys."""
    _, lo, hi = idx.predict(_evenly_spaced(keys, WINDOW_SAMPLE))
    return float(np.percentile(hi - lo, 99))


def warm_up(keys: np.ndarray, config: RMIConfig) -> float:
    """Build, predict and look up on WARMUP_KEYS evenly spaced keys; return the seconds taken.

    Compiles (or loads from Numba's cache) the kernels the timed build and lookups call.
    Raises ImportError for a root whose package is missing (mlp without torch).
    """
    sample = _evenly_spaced(keys, WARMUP_KEYS)
    start = time.perf_counter()
    idx = RMI(sample, config=config)
    idx.predict(sample)
    idx.lower_bound(sample)
    return time.perf_counter() - start


class _Keeper:
    """An index factory for :func:`bench.harness.measure` that keeps the last index it built,
    for the figures measure does not take (stats, windows)."""

    def __init__(self, config: RMIConfig):
        self.config = config
        self.last = None

    def __call__(self, keys: np.ndarray) -> RMI:
        self.last = RMI(keys, copy=False, config=self.config)
        return self.last


def measure_root(config: RMIConfig, dataset: str, keys: np.ndarray, queries: np.ndarray, expected: np.ndarray,
                 repeats: int = 5, builds: int = 1) -> RootRow:
    """One row: warm up, build and time lookups (:func:`bench.harness.measure`), read the
    index's stats and windows, free it, then build ``builds - 1`` more times for their times.

    Never raises for a root that cannot be built: the row's note says why.
    """
    row = RootRow(dataset, len(keys), ",".join(config.stages), config.stages[0],
                  tuple(config.model_counts(len(keys))))
    try:
        row.warmup_s = warm_up(keys, config)
    except ImportError as exc:
        row.note = f"skipped: {exc}"
        return row
    keeper = _Keeper(config)
    spec = IndexSpec(row.root, "learned", keeper, row.stages)
    result = measure(spec, dataset, keys, queries, expected, repeats=repeats, scalar_lookups=0, persist=False)
    idx, keeper.last = keeper.last, None
    row.note = result.note
    if result.build_s is None:
        return row
    stats = idx.stats
    row.avg_log2_error, row.max_error = stats["avg_log2_error"], stats["max_error"]
    row.mean_window, row.hybrid_leaves = stats["mean_window"], stats["hybrid_leaves"]
    row.index_bytes = result.index_bytes
    row.p99_window = p99_window(idx, keys)
    row.build_s = [idx.build_time_ns / 1e9]
    row.batch_ns, row.loop_ns, row.runs = result.batch_ns, result.loop_ns, result.batch_runs
    del idx
    for _ in range(builds - 1):
        gc.collect()
        row.build_s.append(keeper(keys).build_time_ns / 1e9)
        keeper.last = None
    gc.collect()
    return row


def _max_window(text: str) -> int | None:
    """argparse ``type=`` for ``--max-window``: a count of keys, or ``none``."""
    if text.strip().lower() == "none":
        return None
    try:
        return positive_count(text)
    except argparse.ArgumentTypeError as exc:
        raise argparse.ArgumentTypeError(f"{exc}, or none") from None


def _hidden(text: str) -> tuple:
    """argparse ``type=`` for ``--mlp-hidden``: ``16`` or ``16,16``; RMIConfig's message otherwise."""
    try:
        units = tuple(int(u) for u in text.split(","))
    except ValueError:
        units = text  # not numbers: RMIConfig says what it takes
    try:
        return RMIConfig(stages=("mlp", "linear"), mlp_hidden=units).mlp_hidden
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def build_parser() -> argparse.ArgumentParser:
    """The parser of ``python -m bench.models``; its errors are one line and exit status 2."""
    p = ArgumentParser(prog="python -m bench.models", description=__doc__.split("\n\n")[0])
    p.add_argument("--datasets", nargs="+", metavar="NAME_OR_PATH",
                   help=f"generators (made at each --sizes), real set names or key files; default: "
                        f"{' '.join(DEFAULT_SYNTHETIC)} and the real sets in ../shared/datasets when present")
    p.add_argument("--sizes", nargs="+", type=positive_count, metavar="N",
                   help="keys of each generated set (default 10M 100M); real sets and files keep their own")
    p.add_argument("--quick", action="store_true", help=f"generated sets at {QUICK_N:,} keys only")
    p.add_argument("--roots", nargs="+", choices=list(MODELS), default=list(MODELS), metavar="ROOT",
                   help=f"root models compared (default all: {' '.join(MODELS)})")
    p.add_argument("--depths", nargs="+", type=int_range(2, 4, " (the root, then depth - 1 linear stages)"),
                   default=[2, 3], metavar="D",
                   help="stages of the RMIs: the root then D - 1 linear ones (default 2 3)")
    p.add_argument("--keys-per-leaf", type=positive_count, default=RMIConfig.keys_per_leaf,
                   help=f"sets the leaves, the same for every root (default {RMIConfig.keys_per_leaf})")
    p.add_argument("--max-window", type=_max_window, default=RMIConfig.max_window, metavar="N|none",
                   help=f"RMIConfig.max_window: wider leaves go hybrid (default {RMIConfig.max_window}; "
                        f"none: no hybrid leaves)")
    p.add_argument("--mlp-hidden", type=_hidden, default=RMIConfig.mlp_hidden, metavar="H[,H2]",
                   help=f"hidden units of the mlp root (default {','.join(map(str, RMIConfig.mlp_hidden))})")
    p.add_argument("--lookups", type=positive_count, default=1_000_000, help="random present lookups (default 1M)")
    p.add_argument("--repeats", type=positive_count, default=5, help="timed lookup runs, medians reported (default 5)")
    p.add_argument("--repeat-build", type=positive_count, default=1,
                   help="builds of each index, each time reported (default 1; 2 to quote a range)")
    p.add_argument("--threads", type=thread_count(), default=1,
                   help="Numba threads of the builds and lookups (default 1)")
    p.add_argument("--seed", type=int, default=42, help="seed of the generated keys and the lookups")
    p.add_argument("--out", type=Path, default=Path("results"),
                   help="folder of models.json and models.md (default ./results)")
    return p


def _jobs(args) -> tuple[list[tuple[str, int]], list[str]]:
    """``(name, n)`` of every key set to measure, generated ones by size first, and notes.

    Raises what check_dataset and datasets.resolve raise for unknown names and missing files.
    """
    import datasets

    names = args.datasets
    notes = []
    if names is None:
        real = list(datasets.real_datasets())
        if not real:
            notes.append(f"no real key sets in {datasets.shared_datasets_dir()}: generated ones only")
        names = [*DEFAULT_SYNTHETIC, *real]
    for name in names:
        check_dataset(name)
        if name not in datasets.GENERATORS:
            datasets.resolve(name, seed=args.seed)  # a missing file fails now, not after an hour
    sizes = args.sizes or ([QUICK_N] if args.quick else list(DEFAULT_SIZES))
    generated = [(name, n) for n in sizes for name in names if name in datasets.GENERATORS]
    return generated + [(name, 0) for name in names if name not in datasets.GENERATORS], notes


def write_files(out: Path, rows: list[RootRow], markdown: str, settings: dict, notes: list[str]) -> list[Path]:
    """Write models.json (machine, settings, notes, rows: as bench.report writes results.json)
    and models.md (the tables) into ``out``; return their paths."""
    out.mkdir(parents=True, exist_ok=True)
    json_path, md_path = out / "models.json", out / "models.md"
    with open(json_path, "w") as f:
        json.dump({"machine": machine_info(), "settings": settings, "notes": notes,
                   "results": [asdict(r) for r in rows]}, f, indent=1)
    md_path.write_text(markdown)
    return [json_path, md_path]


def main(argv: list[str] | None = None) -> int:
    """Run the comparison; return 1 if an index answered wrongly, else 0.

    Writes the files again after each table, so a long run leaves what it measured. Bad input
    (names, counts, files) raises SystemExit(2) after one line on stderr.
    """
    parser = build_parser()
    args = parser.parse_args(argv)
    import numba

    import datasets

    try:
        jobs, notes = _jobs(args)
    except INPUT_ERRORS as exc:
        parser.error(error_text(exc))
    settings = {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items()}
    settings.update(sizes=sorted({n for _, n in jobs if n}), warmup_keys=WARMUP_KEYS, window_sample=WINDOW_SAMPLE)
    command = " ".join(["python -m bench.models", *(sys.argv[1:] if argv is None else argv)])
    head = (f"# RMI roots on the same leaves\n\n`{command}`\n\n{args.keys_per_leaf} keys/leaf, max_window "
            f"{args.max_window}, mlp_hidden {args.mlp_hidden}; best (lowest) value of each column in bold; "
            f"build s: one per build. Columns: see bench/models.py.\n")
    sections, rows = [head], []
    started = time.perf_counter()
    before = numba.get_num_threads()
    numba.set_num_threads(args.threads)
    try:
        for name, n in jobs:
            label, keys = load_keys(name, n, args.seed)
            queries, expected = datasets.make_workload(keys, args.lookups, seed=args.seed)
            for depth in args.depths:
                group = []
                for root in args.roots:
                    config = RMIConfig(stages=(root,) + ("linear",) * (depth - 1), keys_per_leaf=args.keys_per_leaf,
                                       max_window=args.max_window, mlp_hidden=args.mlp_hidden)
                    group.append(measure_root(config, label, keys, queries, expected, args.repeats, args.repeat_build))
                    r = group[-1]
                    print(f"{time.perf_counter() - started:7.0f} s  {label} {r.stages}: build "
                          f"{' / '.join(f'{b:.3g}' for b in r.build_s) or '-'} s, warm-up {r.warmup_s or 0:.3g} s"
                          f"{'; ' + r.note if r.note else ''}", file=sys.stderr, flush=True)
                rows += group
                sections.append(f"{title(group, len(queries), args.threads)}\n\n{table(group)}\n")
                print(sections[-1], flush=True)
                settings["elapsed_s"] = round(time.perf_counter() - started, 1)
                paths = write_files(args.out, rows, "\n".join(sections + [f"- note: {t}" for t in notes]),
                                    settings, notes)
            del keys, queries, expected
            gc.collect()
    finally:
        numba.set_num_threads(before)
    for note in notes:
        print(f"note: {note}")
    if rows:
        print(f"wrote {', '.join(str(p) for p in paths)} in {settings['elapsed_s']} s")
    return 1 if any(r.note.startswith("WRONG") for r in rows) else 0


if __name__ == "__main__":
    sys.exit(main())
