"""Kernel measurements behind issue 7's choices, on lognormal uint64 keys (``--dataset``: others).

``python -m bench.kernels binary --n 100M --threads 1``: BinarySearch batch kernels, the plain
loop against lock-step groups of 8-64 lookups prefetching each lookup's next probe, and against
prefetching both candidate probes of the level after next instead.

``python -m bench.kernels rmi --n 100M --threads 1``: the RMI's batch variants (one lookup at a
time, lock-step groups, AMAC state machines with 8-32 slots) at 128 and 2048 keys per leaf,
against the interleaved BTree: the measurements behind ``RMIConfig.variant``.

``python -m bench.kernels search --dataset words_prefix8_uint64 --threads 1``: the last-mile
search of each learned index's predicted windows (RMI, PGM and RadixSpline at their defaults),
one window after another against ``_search.search_group``'s lock-step groups: the measurements
behind ``_search.search_group``.

``python -m bench.kernels sorted --n 100M --threads 2``: sorted batches of several densities
m/n, the galloping path of :mod:`learnedidx._sorted` against the batch paths of RMI, BTree and
BinarySearch on the same queries.

Keys: ``datasets.generate('lognormal', n, seed)``, or ``--dataset``'s; queries: present keys drawn
with ``default_rng(seed + 1)``. Every kernel runs once untimed (compiling, answers checked
against ``np.searchsorted``), then the candidates are timed in alternating rounds so that a
change of machine load hits them alike; the median per candidate is printed in ns/lookup.
"""

from __future__ import annotations

import dataclasses
import sys
import time

import numba
import numpy as np
from numba import njit, prange

from baselines import _binary_kernels as BK
from learnedidx import toolkit as S
from learnedidx.toolkit import before, prefetch

from datasets.cli_args import INPUT_ERRORS, ArgumentParser, check_dataset, error_text, positive_count

from .cli import thread_count

MODES = ("binary", "sorted", "rmi", "search")
SORTED_INDEXES = ("rmi", "btree", "binarysearch", "numpysearchsorted")


@njit(nogil=True, cache=True)
def _two_ahead_range(keys, queries, out, start, stop, group):
    """The lock-step walk prefetching both candidate probes of the level after next (the
    alternative the BinarySearch kernel was measured against), lower_bound only."""
    n = keys.shape[0]
    bases = np.empty(group, np.int64)
    targets = np.empty(group, queries.dtype)
    for first in range(start, stop, group):
        size = min(group, stop - first)
        for g in range(size):
            bases[g] = 0
            targets[g] = queries[first + g]
        length = n
        while length > 1:
            half = length >> 1
            length -= half
            next_half = length >> 1
            after = (length - next_half) >> 1
            for g in range(size):
                b = bases[g]
                if before(keys[b + half], targets[g], False):
                    b += half
                bases[g] = b
                prefetch(keys, b + after)
                prefetch(keys, b + next_half + after)
        for g in range(size):
            b = bases[g]
            if length == 1 and before(keys[b], targets[g], False):
                b += 1
            out[first + g] = b


@njit(parallel=True, nogil=True, cache=True)
def _two_ahead_parallel(keys, queries, out, group):
    m = queries.shape[0]
    for c in prange((m + BK.CHUNK - 1) // BK.CHUNK):
        _two_ahead_range(keys, queries, out, c * BK.CHUNK, min(m, (c + 1) * BK.CHUNK), group)


def _rounds(candidates: dict, rounds: int, per_lookup: dict) -> dict:
    """Median ns/lookup of each ``name -> fn`` over alternating rounds."""
    times = {name: [] for name in candidates}
    for _ in range(rounds):
        for name, fn in candidates.items():
            start = time.perf_counter_ns()
            fn()
            times[name].append((time.perf_counter_ns() - start) / per_lookup[name])
    return {name: float(np.median(t)) for name, t in times.items()}


def _report(candidates: dict, args, n: int, m: int, base_name: str, unit: str) -> None:
    """Time the candidates in alternating rounds; print ns/lookup and speed-up over one of them."""
    result = _rounds(candidates, args.rounds, dict.fromkeys(candidates, m))
    print(f"{n:,} {args.dataset} keys, {m:,} random present lookups, {numba.get_num_threads()} threads, "
          f"median of {args.rounds} rounds (ns/lookup)")
    width = max(len(name) for name in result)
    for name, ns in result.items():
        print(f"  {name:{width}s} {ns:8.1f}   {result[base_name] / ns:5.2f}x{unit}")


def _keys(args) -> np.ndarray:
    """The keys of ``--dataset``: a generator's ``--n`` keys, or a key file's (or real set's).

    Raises what datasets.load raises for an unknown name or a missing or corrupt file.
    """
    import datasets

    if args.dataset in datasets.GENERATORS:
        keys = datasets.generate(args.dataset, args.n, args.seed)
    else:
        check_dataset(args.dataset)
        keys = datasets.load(args.dataset, seed=args.seed, mmap=False)
    keys.flags.writeable = False
    return keys


def _lookups(args, keys: np.ndarray) -> tuple:
    """``(keys, queries, expected, out)``: ``--lookups`` random present keys, their
    ``np.searchsorted`` answers and an output array."""
    m = args.lookups
    queries = keys[np.random.default_rng(args.seed + 1).integers(0, len(keys), m)]
    return keys, queries, np.searchsorted(keys, queries), np.empty(m, np.int64)


def _verify(candidates: dict, out: np.ndarray, expected: np.ndarray) -> None:
    """Run each candidate once into ``out``; SystemExit naming the first that answers wrong."""
    for name, fn in candidates.items():
        out[:] = -1
        fn()
        if not np.array_equal(out, expected):
            raise SystemExit(f"{name}: wrong answers")


def binary(args, keys: np.ndarray) -> None:
    keys, queries, expected, out = _lookups(args, keys)
    m = len(queries)
    threads = numba.get_num_threads() > 1
    plain = BK.lookup_batch_parallel if threads else BK.lookup_batch
    interleaved = BK.lookup_batch_interleaved_parallel if threads else BK.lookup_batch_interleaved
    candidates = {"plain loop": lambda: plain(keys, queries, out, 0)}
    for g in (8, 16, 32, 64):
        candidates[f"next probe x{g}"] = lambda g=g: interleaved(keys, queries, out, 0, g)
    for g in (16, 32):
        if threads:
            candidates[f"both, 2 ahead x{g}"] = lambda g=g: _two_ahead_parallel(keys, queries, out, g)
        else:
            candidates[f"both, 2 ahead x{g}"] = lambda g=g: _two_ahead_range(keys, queries, out, 0, m, g)
    _verify(candidates, out, expected)
    _report(candidates, args, len(keys), m, "plain loop", "")


def sorted_batches(args, keys: np.ndarray) -> None:
    from baselines import BinarySearch, BTree, NumpySearchsorted
    from learnedidx import RMI

    n = len(keys)
    indexes = {}
    for name, cls in (("RMI", RMI), ("BTree", BTree), ("BinarySearch", BinarySearch),
                      ("NumpySearchsorted", NumpySearchsorted)):
        if name.lower() in args.indexes:
            indexes[name] = cls(keys, copy=False)
    def sorted_kernel(keys, queries, out, mode):
        S.run_sliced(lambda a, b: S.search_sorted(keys, queries[a:b], out[a:b], mode), len(queries),
                     S.threads_for(len(queries), 1 << 14))
    rng = np.random.default_rng(args.seed + 1)
    print(f"{n:,} {args.dataset} keys, sorted present lookups, {numba.get_num_threads()} threads, "
          f"median of {args.rounds} rounds (ns/lookup); ratio = index batch path / sorted path")
    header = f"  {'n/m':>6} {'m':>11}  {'sorted':>7}  {'check':>5}"
    header += "".join(f"  {name:>12} {'ratio':>6}" for name in indexes)
    print(header)
    for gap in args.gaps:
        m = max(1, n // gap)
        queries = np.sort(keys[rng.integers(0, n, m)])
        out = np.empty(m, np.int64)
        candidates = {"sorted": lambda queries=queries, out=out: sorted_kernel(keys, queries, out, 0),
                      "check": lambda queries=queries: S.is_sorted(queries)}
        for name, idx in indexes.items():
            # The batch path itself, past lower_bound's detection of sorted batches: what this compares.
            candidates[name] = lambda idx=idx, queries=queries: idx._search_array(queries, 0)
        expected = np.searchsorted(keys, queries)
        sorted_kernel(keys, queries, out, 0)
        if not np.array_equal(out, expected):
            raise SystemExit(f"sorted path: wrong answers at n/m={gap}")
        for name, idx in indexes.items():
            if not np.array_equal(idx._search_array(queries, 0), expected):
                raise SystemExit(f"{name}: wrong answers at n/m={gap}")
        del expected
        result = _rounds(candidates, args.rounds, dict.fromkeys(candidates, m))
        line = f"  {gap:>6} {m:>11,}  {result['sorted']:7.1f}  {result['check']:5.1f}"
        line += "".join(f"  {result[name]:{max(12, len(name))}.1f} {result[name] / result['sorted']:5.2f}x"
                        for name in indexes)
        print(line, flush=True)


GROUP = 32  #: lookups a group, as the learned indexes' batch kernels


@njit(nogil=True, cache=True)
def _windows_in_turn(keys, queries, lo, hi, out):
    """Each window searched in turn, its first, middle and last lines prefetched a group ahead."""
    m = queries.shape[0]
    for g in range(0, m, GROUP):
        stop = min(m, g + GROUP)
        for i in range(g, stop):
            S.prefetch_window(keys, lo[i], hi[i])
        for i in range(g, stop):
            out[i] = S.search_window(keys, queries[i], lo[i], lo[i], hi[i], False, S.SEARCH_BINARY)


@njit(nogil=True, cache=True)
def windows_lockstep(keys, queries, lo, hi, out, mode, method):
    """Groups of GROUP windows searched by ``_search.search_group``, as the batch kernels do;
    ``lo[i] < 0`` skips query i (``out[i]`` untouched)."""
    m = queries.shape[0]
    sq = np.empty(GROUP, queries.dtype)
    spos = np.empty(GROUP, np.int64)
    slo = np.empty(GROUP, np.int64)
    shi = np.empty(GROUP, np.int64)
    for g in range(0, m, GROUP):
        count = min(m, g + GROUP) - g
        for k in range(count):
            sq[k] = queries[g + k]
            spos[k] = max(lo[g + k], 0)
            slo[k] = lo[g + k]
            shi[k] = hi[g + k]
        S.search_group(keys, sq, spos, slo, shi, count, out, g, mode, method)


def window_search(args, keys: np.ndarray) -> None:
    from learnedidx import PGM, RMI, RadixSpline

    keys, queries, expected, out = _lookups(args, keys)
    candidates = {}
    for name, cls in (("RMI", RMI), ("PGM", PGM), ("RadixSpline", RadixSpline)):
        _, lo, hi = cls(keys, copy=False).predict(queries)
        width = hi - lo
        print(f"{name}: windows median {np.median(width):.0f}, p99 {np.percentile(width, 99):.0f}, "
              f"max {width.max()} keys")
        candidates[f"{name} in turn"] = lambda lo=lo, hi=hi: _windows_in_turn(keys, queries, lo, hi, out)
        candidates[f"{name} lock-step"] = lambda lo=lo, hi=hi: windows_lockstep(keys, queries, lo, hi, out, 0, S.SEARCH_BINARY)
    _verify(candidates, out, expected)
    _report(candidates, args, len(keys), len(queries), "RMI in turn", "")


def rmi_variants(args, keys: np.ndarray) -> None:
    from baselines import BTree
    from learnedidx import RMI

    keys, queries, expected, _ = _lookups(args, keys)
    m = len(queries)
    candidates = {}

    def with_config(idx, **fields):
        """The same trained RMI with another batch variant: its lower_bound."""
        config = dataclasses.replace(idx.config, **fields)
        return RMI.from_arrays(keys, idx.arrays, config, idx.stats, copy=False, verify=False).lower_bound

    for label, options in (("128 keys/leaf", {}), ("128 keys/leaf, lines only", {"max_window": None}),
                           ("2048 keys/leaf", {"keys_per_leaf": 2048})):
        idx = RMI(keys, copy=False, **options)
        print(f"RMI {label}: mean window {idx.mean_window:.1f} keys, {idx.hybrid_leaves} hybrid leaves, "
              f"{idx.size_in_bytes() / keys.nbytes:.2%} of "
              f"the keys, auto variant: {idx.batch_variant}")
        candidates[f"{label} loop"] = with_config(idx, interleaved=False)
        candidates[f"{label} group"] = with_config(idx, variant="group")
        for slots in (8, 16, 32):
            candidates[f"{label} amac x{slots}"] = with_config(idx, variant="amac", slots=slots)
    btree = BTree(keys, copy=False)
    candidates["BTree interleaved"] = btree.lower_bound
    candidates = {name: (lambda fn=fn: fn(queries)) for name, fn in candidates.items()}
    for name, fn in candidates.items():
        if not np.array_equal(fn(), expected):
            raise SystemExit(f"{name}: wrong answers")
    _report(candidates, args, len(keys), m, "BTree interleaved", " BTree")


def main(argv: list[str] | None = None) -> int:
    """Run one measurement; return 0. Bad input raises SystemExit(2) after one line on stderr."""
    p = ArgumentParser(prog="python -m bench.kernels", description=__doc__.splitlines()[0])
    p.add_argument("what", choices=MODES, help=f"the measurement: {', '.join(MODES)} (see the module doc)")
    p.add_argument("--n", type=positive_count, default=10_000_000, help="keys (default 10M)")
    p.add_argument("--dataset", default="lognormal",
                   help="a generator (default lognormal; --n keys), or a key file or real set name (--n ignored)")
    p.add_argument("--lookups", type=positive_count, default=1_000_000,
                   help="random lookups (binary, rmi, search; default 1M)")
    p.add_argument("--gaps", type=positive_count, nargs="+", default=[1, 2, 4, 16, 64, 256, 1024, 4096],
                   help="n/m of the sorted batches (sorted; default 1 2 4 16 64 256 1024 4096)")
    p.add_argument("--indexes", nargs="+", default=["rmi", "btree", "binarysearch"], type=str.lower,
                   choices=SORTED_INDEXES, metavar="NAME",
                   help=f"batch paths compared with the sorted path (sorted; of {', '.join(SORTED_INDEXES)})")
    p.add_argument("--rounds", type=positive_count, default=5, help="timed rounds (default 5)")
    p.add_argument("--threads", type=thread_count(), default=None,
                   help="Numba threads, 1 to NUMBA_NUM_THREADS (default: all)")
    p.add_argument("--seed", type=int, default=42)
    args = p.parse_args(argv)
    if args.threads:
        numba.set_num_threads(args.threads)
    try:
        keys = _keys(args)
    except INPUT_ERRORS as exc:
        p.error(error_text(exc))
    {"binary": binary, "rmi": rmi_variants, "search": window_search, "sorted": sorted_batches}[args.what](args, keys)
    return 0


if __name__ == "__main__":
    sys.exit(main())
