"""``python -m bench.scaling``: how each index's batch lookups scale with Numba threads.

One process times each index's batch path (``lower_bound`` of an array) at every thread count,
alternating indexes and thread counts round by round: the shared machine's speed drifts between
runs, so the speed-up is taken within each round and its median reported, next to the median
ns/lookup. Every answer is checked against ``np.searchsorted``.

    python -m bench.scaling                          # 10M lognormal keys: RMI, BTree, BinarySearch
    python -m bench.scaling --n 100M --threads 1 2 --rounds 5
"""

from __future__ import annotations

import argparse
import time

import numba
import numpy as np

from datasets import GENERATORS, generate
from datasets.cli_args import ArgumentParser, positive_count

from . import registry
from .cli import thread_count

DEFAULT_INDEXES = ("RMI", "BTree", "BinarySearch")


def build_parser() -> argparse.ArgumentParser:
    """The parser of ``python -m bench.scaling``; its errors are one line and exit status 2."""
    p = ArgumentParser(prog="python -m bench.scaling", description=__doc__.split("\n\n")[0])
    p.add_argument("--dataset", default="lognormal", choices=list(GENERATORS), metavar="NAME",
                   help="generator of the keys (default lognormal; python -m datasets list names them)")
    p.add_argument("--n", type=positive_count, default=10_000_000, help="keys (default 10M)")
    p.add_argument("--lookups", type=positive_count, default=2_000_000,
                   help="present keys looked up per run (default 2M)")
    p.add_argument("--indexes", nargs="+", default=list(DEFAULT_INDEXES), metavar="NAME",
                   help=f"index variants of python -m bench --list (default {' '.join(DEFAULT_INDEXES)})")
    p.add_argument("--threads", nargs="+", type=thread_count(), default=None,
                   help="thread counts compared, each 1 to NUMBA_NUM_THREADS; the first is the reference "
                        "(default: 1 and every core)")
    p.add_argument("--rounds", type=positive_count, default=5,
                   help="rounds; each times every index at every count once")
    p.add_argument("--seed", type=int, default=42)
    return p


def main(argv=None) -> list:
    """Run the comparison; returns one row per index and thread count.

    Bad input raises SystemExit(2) after one line on stderr.
    """
    parser = build_parser()
    args = parser.parse_args(argv)
    threads = args.threads or sorted({1, numba.config.NUMBA_NUM_THREADS})
    try:
        specs, _ = registry.select(args.indexes)
    except ValueError as exc:
        parser.error(str(exc))
    keys = generate(args.dataset, args.n, args.seed)
    rng = np.random.default_rng(args.seed)
    queries = keys[rng.integers(0, len(keys), args.lookups)]
    expected = np.searchsorted(keys, queries)
    built = [(spec.name, spec.factory(keys)) for spec in specs]
    before = numba.get_num_threads()
    times: dict = {}
    try:
        for name, idx in built:  # compile, and check every count's answers once
            for t in threads:
                numba.set_num_threads(t)
                if not np.array_equal(idx.lower_bound(queries), expected):
                    raise SystemExit(f"{name} answered wrongly with {t} threads")
        for _ in range(args.rounds):
            for name, idx in built:
                for t in threads:
                    numba.set_num_threads(t)
                    start = time.perf_counter()
                    idx.lower_bound(queries)
                    times.setdefault((name, t), []).append((time.perf_counter() - start) / len(queries) * 1e9)
    finally:
        numba.set_num_threads(before)
    print(f"bench.scaling: {args.n:,} {args.dataset} keys, {args.lookups:,} present lookups, batch lower_bound, "
          f"median of {args.rounds} rounds")
    print(f"{'index':<14}{'threads':>8}{'ns/lookup':>11}{'speed-up':>10}")
    rows = []
    for name, _ in built:
        reference = np.array(times[(name, threads[0])])
        for t in threads:
            ns = np.array(times[(name, t)])
            speedup = float(np.median(reference / ns))
            rows.append({"index": name, "threads": t, "ns": float(np.median(ns)), "speedup": speedup})
            print(f"{name:<14}{t:>8}{np.median(ns):>11.1f}{speedup:>9.2f}x")
    return rows


if __name__ == "__main__":
    main()
