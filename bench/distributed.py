"""``python -m bench.distributed``: a ShardedIndex on a local Dask cluster against one index in
this process, over the same SOSD key file.

For each worker count W a ``LocalCluster`` of W worker processes (one thread each) serves
``ShardedIndex.from_sosd`` with W shards, each mapping its slice of the file. Reported:
throughput of 1M-key batches (median of ``--rounds``) next to the same index kind in this
process over the mapped file, and the latency of 1K-key batches (p50, p99 of ``--small``
batches). Every timed answer is checked against ``np.searchsorted`` on the mapped keys.

    python -m bench.distributed                       # 10M lognormal keys, W = 1 2 4
    python -m bench.distributed --n 100M --workers 1 2
"""

from __future__ import annotations

import argparse
import time

import numpy as np

from datasets import GENERATORS
from datasets.catalog import resolve
from datasets.cli_args import ArgumentParser, positive_count
from datasets.sosd import read_sosd


def build_parser() -> argparse.ArgumentParser:
    """The parser of ``python -m bench.distributed``; its errors are one line and exit status 2."""
    p = ArgumentParser(prog="python -m bench.distributed", description=__doc__.split("\n\n")[0])
    p.add_argument("--dataset", default="lognormal", choices=list(GENERATORS), metavar="NAME",
                   help="generator of the keys (default lognormal)")
    p.add_argument("--n", type=positive_count, default=10_000_000, help="keys (default 10M)")
    p.add_argument("--workers", nargs="+", type=positive_count, default=[1, 2, 4], help="worker counts (default 1 2 4)")
    p.add_argument("--big", type=positive_count, default=1_000_000, help="keys of a throughput batch (default 1M)")
    p.add_argument("--small", type=positive_count, default=200, help="1K-key batches timed for latency (default 200)")
    p.add_argument("--rounds", type=positive_count, default=5, help="timed big batches (default 5)")
    p.add_argument("--seed", type=int, default=42, help="seed of the keys and lookups (default 42)")
    return p


def _median_seconds(fn, rounds: int) -> float:
    times = []
    for _ in range(rounds):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return float(np.median(times))


def main(argv=None) -> list:
    """Run the benchmark and print its table; return the rows (dicts)."""
    args = build_parser().parse_args(argv)
    import distributed

    from learnedidx import RMI
    from learnedidx.distributed import ShardedIndex

    path = resolve(args.dataset, n=args.n, seed=args.seed)
    keys = read_sosd(path)  # mapped
    rng = np.random.default_rng(args.seed)
    big = keys[rng.integers(0, len(keys), args.big)]
    small = [keys[rng.integers(0, len(keys), 1000)] for _ in range(args.small)]
    expect = np.searchsorted(keys, big)
    local = RMI(keys, assume_sorted=True, copy=False)
    local.lower_bound(big[:1000])
    local_s = _median_seconds(lambda: local.lower_bound(big), args.rounds)
    rows = [{"where": "in-process", "workers": 0, "big_mkeys_s": args.big / local_s / 1e6, "p50_ms": None,
             "p99_ms": None}]
    print(f"{path.name}: {len(keys):,} keys; in-process RMI: {rows[0]['big_mkeys_s']:.1f} M lookups/s "
          f"({args.big:,}-key batches)", flush=True)
    for w in args.workers:
        with distributed.LocalCluster(n_workers=w, threads_per_worker=1, processes=True,
                                      dashboard_address=None) as cluster, distributed.Client(cluster) as client:
            start = time.perf_counter()
            idx = ShardedIndex.from_sosd(path, client=client, shards=w)
            build_s = time.perf_counter() - start
            if not np.array_equal(idx.lower_bound(big), expect):
                raise AssertionError(f"W={w}: answers differ from np.searchsorted")
            seconds = _median_seconds(lambda: idx.lower_bound(big), args.rounds)
            for q in small[:10]:
                idx.lower_bound(q)
            lat = []
            for q in small:
                start = time.perf_counter()
                idx.lower_bound(q)
                lat.append(time.perf_counter() - start)
            row = {"where": "cluster", "workers": w, "build_s": build_s, "big_mkeys_s": args.big / seconds / 1e6,
                   "vs_local": local_s / seconds, "p50_ms": 1e3 * float(np.median(lat)),
                   "p99_ms": 1e3 * float(np.percentile(lat, 99)), "bytes": idx.size_in_bytes()}
            rows.append(row)
            print(f"W={w}: built in {build_s:.1f} s; {row['big_mkeys_s']:.1f} M lookups/s "
                  f"({row['vs_local']:.0%} of in-process); 1K batch p50 {row['p50_ms']:.2f} ms, "
                  f"p99 {row['p99_ms']:.2f} ms; {row['bytes']:,} index bytes", flush=True)
    return rows


if __name__ == "__main__":
    main()
