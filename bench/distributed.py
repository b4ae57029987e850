"""``python -m bench.distributed``: a ShardedIndex on a local Dask cluster against one index in
this process, over the same SOSD key file.

For each worker count W a ``LocalCluster`` of W worker processes (one thread each) serves
``ShardedIndex.from_sosd`` with W shards, each mapping its slice of the file. Reported:
throughput of 1M-key batches (median of ``--rounds``), timed in turn with the same index kind
in this process over the mapped file so that the ratio compares like with like; the latency
of 1K-key batches (p50, p99 of ``--small`` batches); and the workers' resident memory after
the timed lookups: all of it, their own part (anonymous, not the mapped keys' file pages) and
the peak. Every timed
answer is checked against ``np.searchsorted`` on the mapped keys.

    python -m bench.distributed                       # 10M lognormal keys, W = 1 2 4
    python -m bench.distributed --n 100M --workers 1 2
    python -m bench.distributed --n 1B --workers 2    # out of core: 8 GB of keys, mapped
"""

from __future__ import annotations

import argparse
import sys
import time

import numpy as np

from datasets import GENERATORS
from datasets.catalog import resolve
from datasets.cli_args import ArgumentParser, positive_count
from datasets.sosd import read_sosd
from learnedidx.tuning import families


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
    p.add_argument("--shards-per-worker", type=positive_count, default=1,
                   help="shards a worker holds (default 1); more keeps the keys being trained on at once "
                        "fewer where memory is short: a worker builds its shards one after another")
    p.add_argument("--local", action=argparse.BooleanOptionalAction, default=True,
                   help="also time the index in this process (default; --no-local skips it, e.g. when the "
                        "keys do not fit in memory)")
    p.add_argument("--kind", default="RMI", choices=list(families()),
                   help="index of each shard and of the in-process run (default RMI)")
    return p


def resident() -> dict:
    """This process's resident bytes: ``rss`` (all), ``anon`` (its own memory, without mapped
    file pages; Linux only, else None) and ``peak`` (the most rss so far; None on Windows)."""
    import psutil

    out = {"rss": psutil.Process().memory_info().rss, "anon": None, "peak": None}
    if sys.platform != "win32":
        import resource

        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * (1 if sys.platform == "darwin" else 1024)
        out["peak"] = max(peak, out["rss"])  # the kernel updates its high-water mark lazily
    try:
        with open("/proc/self/status") as f:
            out["anon"] = next(int(line.split()[1]) * 1024 for line in f if line.startswith("RssAnon:"))
    except (OSError, StopIteration):
        pass
    return out


def _summed(per_worker: dict) -> dict:
    """Field-wise sums of the workers' :func:`resident` (None where a worker lacks a field)."""
    fields = list(next(iter(per_worker.values())))
    return {f: None if any(r[f] is None for r in per_worker.values()) else sum(r[f] for r in per_worker.values())
            for f in fields}


def is_lower_bound(keys: np.ndarray, queries: np.ndarray, positions: np.ndarray) -> bool:
    """Is each position ``np.searchsorted(keys, query)`` (sorted keys)? Checked by the keys on
    either side, two reads a query instead of a search's log2(n): at 1B mapped keys, most of
    a search's reads would go to disk."""
    n = len(keys)
    if positions.shape != queries.shape or ((positions < 0) | (positions > n)).any():
        return False
    inside = positions < n
    before = positions > 0
    return bool((keys[positions[inside]] >= queries[inside]).all()
                and (keys[positions[before] - 1] < queries[before]).all())


def _gb(n) -> str:
    return "?" if n is None else f"{n / 1e9:.2f}"


def _median_seconds(*fns, rounds: int) -> list:
    """Median seconds of each of ``fns``, timed in turn ``rounds`` times (interleaved, so that
    the machine's drift hits them alike)."""
    times = [[] for _ in fns]
    for _ in range(rounds):
        for fn, spent in zip(fns, times):
            start = time.perf_counter()
            fn()
            spent.append(time.perf_counter() - start)
    return [float(np.median(spent)) for spent in times]


def main(argv=None) -> list:
    """Run the benchmark and print its table; return the rows (dicts)."""
    args = build_parser().parse_args(argv)
    import distributed

    from learnedidx.distributed import ShardedIndex, random_access, sosd_slice

    path = resolve(args.dataset, n=args.n, seed=args.seed)
    header = read_sosd(path)  # validates the file
    keys, mapping = sosd_slice(path, 0, len(header), header.dtype)
    if mapping is not None:
        random_access(mapping)
    rng = np.random.default_rng(args.seed)
    big = keys[rng.integers(0, len(keys), args.big)]
    small = [keys[rng.integers(0, len(keys), 1000)] for _ in range(args.small)]
    rows, local = [], None
    print(f"{path.name}: {len(keys):,} keys", flush=True)
    if args.local:
        local = families()[args.kind](keys, assume_sorted=True, copy=False)
        local.lower_bound(big[:1000])
        local_s, = _median_seconds(lambda: local.lower_bound(big), rounds=args.rounds)
        rows.append({"where": "in-process", "workers": 0, "big_mkeys_s": args.big / local_s / 1e6, "p50_ms": None,
                     "p99_ms": None})
        print(f"in-process {args.kind}: {rows[0]['big_mkeys_s']:.1f} M lookups/s ({args.big:,}-key batches)",
              flush=True)
    for w in args.workers:
        with distributed.LocalCluster(n_workers=w, threads_per_worker=1, processes=True,
                                      dashboard_address=None) as cluster, distributed.Client(cluster) as client:
            start = time.perf_counter()
            idx = ShardedIndex.from_sosd(path, client=client, shards=w * args.shards_per_worker, kind=args.kind)
            build_s = time.perf_counter() - start
            if not is_lower_bound(keys, big, idx.lower_bound(big)):
                raise AssertionError(f"W={w}: answers differ from np.searchsorted")
            timed = [lambda: idx.lower_bound(big)] + ([lambda: local.lower_bound(big)] if local else [])
            seconds, *local_s = _median_seconds(*timed, rounds=args.rounds)
            for q in small[:10]:
                idx.lower_bound(q)
            lat = []
            for q in small:
                start = time.perf_counter()
                idx.lower_bound(q)
                lat.append(time.perf_counter() - start)
            row = {"where": "cluster", "workers": w, "shards": idx.shards, "build_s": build_s,
                   "big_mkeys_s": args.big / seconds / 1e6, "vs_local": local_s[0] / seconds if local else None,
                   "p50_ms": 1e3 * float(np.median(lat)),
                   "p99_ms": 1e3 * float(np.percentile(lat, 99)), "bytes": idx.size_in_bytes()}
            row.update({f"workers_{k}": v for k, v in _summed(client.run(resident)).items()})
            rows.append(row)
            share = "" if local is None else f" ({row['vs_local']:.0%} of in-process)"
            print(f"W={w}, {idx.shards} shard{'s' * (idx.shards > 1)}: built in {build_s:.1f} s; "
                  f"{row['big_mkeys_s']:.1f} M lookups/s"
                  f"{share}; 1K batch p50 {row['p50_ms']:.2f} ms, "
                  f"p99 {row['p99_ms']:.2f} ms; {row['bytes']:,} index bytes; workers resident "
                  f"{_gb(row['workers_rss'])} GB ({_gb(row['workers_anon'])} GB own), peak "
                  f"{_gb(row['workers_peak'])} GB", flush=True)
    return rows


if __name__ == "__main__":
    main()
