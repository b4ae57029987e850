"""Measure every baseline next to the RMI on lognormal uint64 keys, one index after another.

``python -m baselines.measure --n 10M`` prints a markdown table: per index the build time, the
batch ``lower_bound`` ns/lookup over ``--lookups`` present keys (median and best of
``--repeats`` rounds after a warm-up run; every run's answers are checked), the scalar ns/call
of a Python loop of ``lower_bound(int)`` (median over the rounds), the index bytes, and the
bytes of any copy of the keys. All indexes are built first and the rounds interleave them, so
that changes of machine load hit every index alike. ``--sweep-node-keys 8,16,32`` measures
BTree node sizes (and BinarySearch) instead.

Keys: ``np.random.default_rng(seed).lognormal(0, 2, n) * 1e9`` as uint64, sorted, duplicates
dropped (so slightly fewer than n). Lookups: keys drawn uniformly with ``default_rng(seed + 1)``.
Kernels are compiled on a tiny index of the same dtype before anything is timed.
"""

from __future__ import annotations

import argparse
import gc
import platform
import statistics
import sys
import time

import numba
import numpy as np

import baselines
from learnedidx import RMI

#: Object-based structures above this many keys take minutes and gigabytes: skipped by default.
OBJECT_MAX_KEYS = 10_000_000
OBJECT_BASED = ("SortedDictIndex", "BTreesIndex")
SLOW_RUN_S = 2.0  #: an index whose batch run takes longer is timed in 2 rounds only


def parse_count(text: str) -> int:
    """``"10M"``, ``"100k"``, ``"1e6"`` or ``"5000"`` as an int."""
    t = text.strip().lower().replace("_", "")
    scale = {"k": 10**3, "m": 10**6, "g": 10**9}.get(t[-1:], 1)
    if scale != 1:
        t = t[:-1]
    return int(float(t) * scale)


def lognormal_keys(n: int, seed: int = 42) -> np.ndarray:
    """Sorted distinct uint64 keys: ``lognormal(0, 2, n) * 1e9`` truncated, duplicates dropped.

    (Sort then mask rather than ``np.unique``, which takes seconds per million uint64 here.)
    """
    keys = (np.random.default_rng(seed).lognormal(0.0, 2.0, n) * 1e9).astype(np.uint64)
    keys.sort()
    if len(keys) > 1:
        keys = keys[np.concatenate(([True], keys[1:] != keys[:-1]))]
    return keys


def specs(node_keys_sweep=None):
    """``(name, factory)`` for every index measured, RMI first."""
    if node_keys_sweep:
        return [("BinarySearch", lambda k: baselines.BinarySearch(k, copy=False))] + [
            (f"BTree-{b}", lambda k, b=b: baselines.BTree(k, copy=False, node_keys=b)) for b in node_keys_sweep
        ]
    out = [("RMI", lambda k: RMI(k, copy=False))]
    for name, cls in baselines.ALL.items():
        out.append((name, lambda k, cls=cls: cls(k, copy=False)))
    return out


def _timed(fn, *args):
    start = time.perf_counter()
    result = fn(*args)
    return time.perf_counter() - start, result


def _scalar_loop(lower_bound, qs):
    for q in qs:
        lower_bound(q)


def _compile(factory, dtype):
    """Build a tiny index of ``dtype`` and run each path once, so that no timing includes JIT."""
    keys = np.arange(0, 4000, 2, dtype=dtype)
    idx = factory(keys)
    idx.lower_bound(keys[:10].copy())
    idx.lower_bound(np.resize(keys, 1 << 15))  # the multi-threaded path
    idx.lower_bound(int(keys[3]))


def measure(keys, queries, expected, indexes, repeats=5, scalar_lookups=200_000, object_max_keys=OBJECT_MAX_KEYS,
            pgm_max_keys=None):
    """Measure each ``(name, factory)`` on the keys; return a list of result dicts.

    Every index is built first (build time, sizes, a checked warm-up batch run); then
    ``repeats`` rounds time one batch run and one scalar loop of every index in turn, so that
    a change of machine load hits all indexes alike. Indexes whose warm-up batch run took over
    ``SLOW_RUN_S`` get at most 2 rounds. Any wrong answer voids the index's times.
    """
    rows, live = [], []
    n = len(keys)
    qs_scalar = queries[:scalar_lookups].tolist()
    for name, factory in indexes:
        row = dict(index=name, n=n, build_s=None, batch_ns=None, batch_best_ns=None, runs=0, scalar_ns=None,
                   index_bytes=None, key_copy_bytes=None, note="")
        rows.append(row)
        limit = object_max_keys if name in OBJECT_BASED else (pgm_max_keys if name == "PGMIndex" else None)
        missing = baselines.missing_packages().get(name)
        if missing:
            row["note"] = f"skipped: {missing}"
            continue
        if limit is not None and n > limit:
            row["note"] = f"skipped: {n:,} keys > {limit:,} (object structure: minutes and GBs)"
            continue
        _compile(factory, keys.dtype)
        gc.collect()
        row["build_s"], idx = _timed(factory, keys)
        row["index_bytes"] = int(idx.size_in_bytes())
        copy = getattr(idx, "key_copy_bytes", None)
        row["key_copy_bytes"] = int(copy()) if callable(copy) else 0
        warm, got = _timed(idx.lower_bound, queries)
        lower_bound = idx.lower_bound
        if not np.array_equal(got, expected) or [lower_bound(q) for q in qs_scalar[:1000]] != expected[:1000].tolist():
            row["note"] = "WRONG ANSWERS: no time reported"
            continue
        live.append((row, idx, 2 if warm > SLOW_RUN_S else repeats, [], []))
        print(f"  built {name} in {row['build_s']:.2f} s", file=sys.stderr, flush=True)
    for r in range(repeats):
        for row, idx, rounds, batch, scalar in live:
            if r >= rounds:
                continue
            seconds, got = _timed(idx.lower_bound, queries)
            if not np.array_equal(got, expected):
                row["note"] = "WRONG ANSWERS: no time reported"
                rounds = 0
            batch.append(seconds / len(queries) * 1e9)
            scalar.append(_timed(_scalar_loop, idx.lower_bound, qs_scalar)[0] / len(qs_scalar) * 1e9)
        print(f"  round {r + 1}/{repeats} done", file=sys.stderr, flush=True)
    for row, idx, rounds, batch, scalar in live:
        if not row["note"]:
            row["batch_ns"], row["batch_best_ns"], row["runs"] = statistics.median(batch), min(batch), len(batch)
            row["scalar_ns"] = statistics.median(scalar)
    return rows


def _fmt_bytes(b):
    if b is None:
        return ""
    for unit, scale in (("GB", 2**30), ("MB", 2**20), ("KB", 2**10)):
        if b >= scale:
            return f"{b / scale:.1f} {unit}"
    return f"{b} B"


def table(rows, key_bytes, reference="BinarySearch") -> str:
    """The results as a markdown table, with batch speed-ups over ``reference``."""
    ref = next((r["batch_ns"] for r in rows if r["index"] == reference and r["batch_ns"]), None)
    lines = [
        "| index | build s | batch ns/lookup (median / best) | vs BinarySearch | scalar ns/call | "
        "index bytes | % of keys | key copy | note |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---|",
    ]
    for r in rows:
        cells = [r["index"]]
        cells.append("" if r["build_s"] is None else f"{r['build_s']:.2f}")
        cells.append("" if r["batch_ns"] is None else f"{r['batch_ns']:.0f} / {r['batch_best_ns']:.0f}")
        cells.append("" if r["batch_ns"] is None or ref is None else f"{ref / r['batch_ns']:.2f}x")
        cells.append("" if r["scalar_ns"] is None else f"{r['scalar_ns']:.0f}")
        cells.append(_fmt_bytes(r["index_bytes"]))
        cells.append("" if r["index_bytes"] is None else f"{100 * r['index_bytes'] / key_bytes:.2f}")
        cells.append(_fmt_bytes(r["key_copy_bytes"]) if r["key_copy_bytes"] else "")
        cells.append(r["note"])
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m baselines.measure", description=__doc__.splitlines()[0])
    parser.add_argument("--n", default="10M", help="keys drawn before dropping duplicates (10M, 1e8, ...)")
    parser.add_argument("--lookups", default="1M", help="batch lookups (present keys)")
    parser.add_argument("--scalar-lookups", default="200k", help="scalar lower_bound calls timed")
    parser.add_argument("--repeats", type=int, default=5, help="timed rounds after the warm-up")
    parser.add_argument("--threads", type=int, default=None, help="Numba threads (default: all)")
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--indexes", default=None, help="comma-separated names (default: all)")
    parser.add_argument("--object-max-keys", default=str(OBJECT_MAX_KEYS),
                        help="skip SortedDictIndex and BTreesIndex above this many keys")
    parser.add_argument("--pgm-max-keys", default=None, help="skip PGMIndex above this many keys")
    parser.add_argument("--sweep-node-keys", default=None, help="measure BTree node sizes, e.g. 8,16,32")
    args = parser.parse_args(argv)

    if args.threads:
        numba.set_num_threads(args.threads)
    sweep = [int(x) for x in args.sweep_node_keys.split(",")] if args.sweep_node_keys else None
    indexes = specs(sweep)
    if args.indexes:
        wanted = [x.strip().lower() for x in args.indexes.split(",")]
        indexes = [s for s in indexes if s[0].lower() in wanted]
        if not indexes:
            parser.error(f"no index matches {args.indexes!r}")

    start = time.perf_counter()
    keys = lognormal_keys(parse_count(args.n), args.seed)
    keys.flags.writeable = False
    rng = np.random.default_rng(args.seed + 1)
    queries = keys[rng.integers(0, len(keys), parse_count(args.lookups))]
    expected = np.searchsorted(keys, queries).astype(np.int64)
    print(f"keys ready in {time.perf_counter() - start:.1f} s", file=sys.stderr, flush=True)

    rows = measure(
        keys, queries, expected, indexes, repeats=args.repeats, scalar_lookups=parse_count(args.scalar_lookups),
        object_max_keys=parse_count(args.object_max_keys),
        pgm_max_keys=parse_count(args.pgm_max_keys) if args.pgm_max_keys else None,
    )
    print(f"`python -m baselines.measure {' '.join(argv if argv is not None else sys.argv[1:])}`")
    print(
        f"{len(keys):,} distinct lognormal uint64 keys ({_fmt_bytes(keys.nbytes)}), {len(queries):,} batch "
        f"lookups of present keys, {min(len(queries), parse_count(args.scalar_lookups)):,} scalar calls; "
        f"{numba.get_num_threads()} Numba threads; numpy {np.__version__}, numba {numba.__version__}, "
        f"Python {platform.python_version()}, {platform.machine()} {platform.processor() or ''}".rstrip()
    )
    print()
    print(table(rows, keys.nbytes))
    return 0


if __name__ == "__main__":
    sys.exit(main())
