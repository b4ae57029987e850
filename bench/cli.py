"""``python -m bench``: learned vs classic indexes, memory and speed, in one command."""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from typing import Callable

import numpy as np

from datasets.cli_args import (INPUT_ERRORS, ArgumentParser, check_dataset, count, error_text, fraction, int_range,
                               positive_count)

from . import registry
from .harness import measure, scalar_floor_ns
from .report import table, write_files

#: The embedded default: tens of millions of lognormal keys, made on the fly.
DEFAULT_DATASET = "lognormal"
DEFAULT_N = 20_000_000
QUICK_N = 200_000


def thread_count() -> Callable[[str], int]:
    """argparse ``type=`` for a Numba thread count: 1 to ``numba.config.NUMBA_NUM_THREADS``."""
    import numba

    return int_range(1, numba.config.NUMBA_NUM_THREADS,
                     " (the Numba threads here; the environment variable NUMBA_NUM_THREADS sets the maximum)")


def build_parser() -> argparse.ArgumentParser:
    """The parser of ``python -m bench``; its errors are one line and exit status 2."""
    p = ArgumentParser(
        prog="python -m bench",
        description="Benchmark learned and classic indexes on the same lookups: build time, size, "
                    "lower_bound speed one lookup at a time (loop), in batch (with the batch path's variant) "
                    "and as scalar calls. With no arguments: 20M lognormal uint64 keys "
                    "plus the real key sets in ../shared/datasets when present.",
    )
    p.add_argument("--datasets", nargs="+", metavar="NAME_OR_PATH",
                   help="generator names (lognormal, uniform_sparse, ...), 'adversarial' (the shapes "
                        "built to hurt a learned index), real set names or SOSD files; default: "
                        "lognormal plus the real sets")
    p.add_argument("--n", type=positive_count, default=None, help=f"keys per generated dataset (default {DEFAULT_N:,})")
    p.add_argument("--indexes", nargs="+", metavar="NAME",
                   help="index names (default: all default variants); see --list")
    p.add_argument("--lookups", type=positive_count, default=1_000_000, help="lookups per run (default 1M)")
    p.add_argument("--negative-ratio", type=fraction, default=0.0, help="share of absent lookups (default 0)")
    p.add_argument("--repeats", type=positive_count, default=5,
                   help="timed runs per index and mode (loop, batch), alternating; medians are reported")
    p.add_argument("--scalar-lookups", type=count, default=100_000, help="Python-loop scalar calls timed")
    p.add_argument("--threads", type=thread_count(), default=None,
                   help="Numba threads, 1 to NUMBA_NUM_THREADS (default: all cores)")
    p.add_argument("--seed", type=int, default=42, help="seed of the generated keys and the lookups")
    p.add_argument("--out", type=Path, default=Path("results"), help="output directory (default ./results)")
    p.add_argument("--no-real", action="store_true", help="skip the real key sets")
    p.add_argument("--no-persist", action="store_true", help="skip timing save/load of savable indexes")
    p.add_argument("--quick", action="store_true",
                   help=f"smoke run: {QUICK_N:,} keys, 20K lookups, 2 repeats, no real sets by default")
    p.add_argument("--list", action="store_true", help="list the index variants and exit")
    return p


def load_keys(name: str, n: int, seed: int) -> tuple[str, np.ndarray]:
    """``(label, keys)`` of one data set: a generator's ``n`` keys, labelled SOSD-style
    (``lognormal_20M_uint64``), or a key file's or real set's own keys (``n`` unused).

    Raises what datasets.resolve, generate and read_sosd raise for bad names and files.
    """
    import datasets

    if name in datasets.GENERATORS:
        return f"{name}_{datasets.format_size(n)}_uint64", datasets.generate(name, n, seed)
    path = datasets.resolve(name, seed=seed)
    return Path(path).name, datasets.read_sosd(path)


def _load_datasets(args) -> list[tuple[str, np.ndarray]]:
    """(name, keys) of every data set asked for, names checked before any is made.

    Raises what datasets.resolve, generate and read_sosd raise for bad names and files.
    """
    import datasets

    for name in args.datasets or ():
        check_dataset(name, extra=("adversarial",))
    names = [m for name in (args.datasets or [DEFAULT_DATASET])
             for m in (datasets.ADVERSARIAL if name == "adversarial" else (name,))]
    n = args.n if args.n is not None else (QUICK_N if args.quick else DEFAULT_N)
    out = [load_keys(name, n, args.seed) for name in names]
    if not args.datasets and not args.no_real and not args.quick:
        for name, path in datasets.real_datasets().items():
            out.append((name, datasets.read_sosd(path)))
    return out


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark; return 1 if an index answered wrongly, else 0.

    Bad input (names, counts, files) raises SystemExit(2) after one line on stderr.
    """
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.list:
        specs, notes = registry.all_specs()
        for s in specs:
            print(f"{s.name:18} {s.family:8} {s.variant}{'' if s.default else '  (not in the default run)'}")
        for note in notes:
            print(note)
        return 0
    if args.quick:
        args.lookups = min(args.lookups, 20_000)
        args.repeats = min(args.repeats, 2)
        args.scalar_lookups = min(args.scalar_lookups, 2_000)

    import numba
    from tqdm import tqdm

    import datasets

    if args.threads:
        numba.set_num_threads(args.threads)
    started = time.perf_counter()
    try:  # bad names, files and key sets are reported in one line before anything is timed
        specs, notes = registry.select(args.indexes)
        loaded = [(name, keys, *datasets.make_workload(keys, args.lookups, seed=args.seed,
                                                        negative_ratio=args.negative_ratio))
                  for name, keys in _load_datasets(args)]
    except INPUT_ERRORS as exc:
        parser.error(error_text(exc))
    results = []
    floors = {}
    with tqdm(total=len(loaded) * len(specs), desc="bench", unit="index", file=sys.stderr,
              disable=None) as progress:
        for name, keys, queries, expected in loaded:
            rows = []
            for spec in specs:
                progress.set_postfix_str(f"{name}: {spec.name}")
                rows.append(measure(spec, name, keys, queries, expected, repeats=args.repeats,
                                    scalar_lookups=args.scalar_lookups, persist=not args.no_persist))
                progress.update()
            results += rows
            floor = scalar_floor_ns(keys, expected, args.scalar_lookups)
            floors[name] = None if floor is None else round(floor, 1)
            floor_line = "" if floor is None else (
                f"scalar floor: {floor:.0f} ns a call (a compiled call from a Python loop that only reads each "
                f"answer's key: no index's scalar lookup costs less)\n")
            tqdm.write(table(rows) + "\n" + floor_line, file=sys.stdout)
    for note in notes:
        print(f"note: {note}")
    settings = {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items()}
    settings["elapsed_s"] = round(time.perf_counter() - started, 1)
    settings["scalar_floor_ns"] = floors
    paths = write_files(results, args.out, settings, notes)
    print(f"wrote {', '.join(str(p) for p in paths)} in {settings['elapsed_s']} s")
    wrong = [r for r in results if r.note.startswith("WRONG")]
    return 1 if wrong else 0
