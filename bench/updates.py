"""``python -m bench.updates``: updatable indexes under GRE-style mixed workloads.

Workloads after "Are Updatable Learned Indexes Ready?" (Wongkham et al., VLDB 2022): bulk-load
n lognormal keys, then run mixes of lookups of present keys and inserts of new keys from the
same distribution: read-only, read-heavy (90% lookups), balanced (50/50) and write-heavy (10%
lookups), each with single-key Python calls and with batch calls of ``--batch`` keys.

Indexes: :class:`learnedidx.DynamicRMI`; ``sortedcontainers.SortedDict``; ``BTrees``
(``QQBTree`` for uint64 keys, ``LLBTree`` for int64); PyGM's ``SortedList``, which has no
updates, so every write batch rebuilds it (its single-key writes are "n/a"). Missing packages
are skipped with a note. Every cell checks a checksum of the values its lookups returned
against the expected one: a wrong index gets "WRONG" instead of a time.

Then the DynamicRMI targets: ``update()`` throughput including merges at several merge
fractions (with the pauses), batch lookups after 10% of the keys were inserted against a static
RMI over the same keys, memory beyond the key and value arrays, single-key insert rate.

    python -m bench.updates                 # 10M keys, 100K-key batches
    python -m bench.updates --quick         # 200K keys, 10K-key batches, about 20 s once compiled
    python -m bench.updates --n 1M --indexes DynamicRMI,BTrees
"""

from __future__ import annotations

import argparse
import gc
import math
import os
import sys
import time
import tracemalloc

import numpy as np

from datasets.cli_args import ArgumentParser, positive_count, unknown

MIXES = (("read-only", 1.0), ("read-heavy", 0.9), ("balanced", 0.5), ("write-heavy", 0.1))
MODES = ("single", "batch")
INDEXES = ("DynamicRMI", "SortedDict", "BTrees", "PyGM")
QUICK = dict(n=200_000, batch=10_000, single_ops=50_000, batch_ops=20, update_keys=60_000)
#: The DynamicRMI targets are set for this many keys; smaller runs print no targets beside their figures.
TARGET_N = 10_000_000


def _fractions(text: str) -> list[float]:
    """argparse ``type=`` for comma-separated merge fractions, each a number > 0."""
    try:
        values = [float(f) for f in text.split(",") if f.strip()]
    except ValueError:
        values = []
    if not values or not all(math.isfinite(v) and v > 0 for v in values):
        raise argparse.ArgumentTypeError(f"{text!r}: expected comma-separated numbers > 0, e.g. 0.02,0.05,0.1")
    return values


def _rss() -> int:
    """Resident bytes of this process (Linux), 0 where unknown."""
    try:
        with open("/proc/self/statm") as f:
            return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError, IndexError):
        return 0


# --- adapters: one updatable map API over every structure ---------------------------------------


class Adapter:
    """``build``, ``get``/``put`` one key, ``get_batch``/``put_batch`` arrays; values are int64."""

    name = "?"
    single_writes = True

    def checksum_batch(self, keys) -> int:
        """Sum of the values of ``keys`` (all present), through the batch lookup."""
        raise NotImplementedError

    def bytes_beyond(self) -> int | None:
        """Bytes held beyond 8-byte keys and values, or None."""
        return None


class DynamicAdapter(Adapter):
    name = "DynamicRMI"

    def __init__(self, keys, values, **options):
        from learnedidx import DynamicRMI

        self.idx = DynamicRMI(keys, values, **options)
        self.get = self.idx.get
        self.put = self.idx.__setitem__

    def get_batch(self, keys):
        values, found = self.idx.get_batch(keys)
        return int(values[found].sum()), int(found.sum())

    def put_batch(self, keys, values):
        self.idx.update(keys, values)

    def bytes_beyond(self):
        return self.idx.size_in_bytes()


class SortedDictAdapter(Adapter):
    name = "SortedDict"

    def __init__(self, keys, values):
        from sortedcontainers import SortedDict

        self.d = SortedDict(zip(keys.tolist(), values.tolist()))
        self.get = self.d.get
        self.put = self.d.__setitem__

    def get_batch(self, keys):
        get = self.d.get
        found = [v for v in map(get, keys.tolist()) if v is not None]
        return sum(found), len(found)

    def put_batch(self, keys, values):
        self.d.update(zip(keys.tolist(), values.tolist()))


class BTreesAdapter(Adapter):
    name = "BTrees"

    def __init__(self, keys, values):
        if keys.dtype.kind == "u":
            from BTrees.QQBTree import QQBTree as Tree
        else:
            from BTrees.LLBTree import LLBTree as Tree
        self.variant = Tree.__name__
        self.t = Tree()
        for s in range(0, len(keys), 1 << 20):
            self.t.update(list(zip(keys[s:s + (1 << 20)].tolist(), values[s:s + (1 << 20)].tolist())))
        self.get = self.t.get
        self.put = self.t.__setitem__

    def get_batch(self, keys):
        get = self.t.get
        found = [v for v in map(get, keys.tolist()) if v is not None]
        return sum(found), len(found)

    def put_batch(self, keys, values):
        self.t.update(list(zip(keys.tolist(), values.tolist())))


class PyGMAdapter(Adapter):
    """PyGM's static PGM-index over sorted keys, values in a numpy array beside it; every write
    batch merges into the arrays and rebuilds the index (PyGM has no updates)."""

    name = "PyGM"
    single_writes = False

    def __init__(self, keys, values):
        import pygm

        self._pygm = pygm
        order = np.argsort(keys, kind="stable")
        self.keys = keys[order]
        self.values = values[order]
        self._build()

    def _build(self):
        self.sl = self._pygm.SortedList(self.keys, typecode="Q" if self.keys.dtype.kind == "u" else "q")
        self._bisect = self.sl.bisect_left

    def get(self, key, default=None):
        i = self._bisect(key)
        if i < len(self.keys) and self.keys[i] == key:
            return int(self.values[i])
        return default

    def get_batch(self, keys):
        bisect, ks, vs = self._bisect, self.keys, self.values
        pos = np.fromiter(map(bisect, keys.tolist()), dtype=np.int64, count=len(keys))
        hit = pos < len(ks)
        hit[hit] = ks[pos[hit]] == keys[hit]
        return int(vs[pos[hit]].sum()), int(hit.sum())

    def put_batch(self, keys, values):
        order = np.argsort(keys, kind="stable")
        keys, values = keys[order], values[order]
        pos = np.searchsorted(self.keys, keys)
        self.keys = np.insert(self.keys, pos, keys)
        self.values = np.insert(self.values, pos, values)
        self._build()


ADAPTERS = {"DynamicRMI": DynamicAdapter, "SortedDict": SortedDictAdapter, "BTrees": BTreesAdapter,
            "PyGM": PyGMAdapter}
PACKAGES = {"SortedDict": "sortedcontainers", "BTrees": "BTrees", "PyGM": "pygm"}


def available(names):
    """The names whose packages import, and a note for each one that does not."""
    out, notes = [], []
    for name in names:
        package = PACKAGES.get(name)
        if package:
            try:
                __import__(package)
            except ImportError:
                notes.append(f"{name} skipped: pip install {package}")
                continue
        out.append(name)
    return out, notes


# --- workloads ----------------------------------------------------------------------------------


class Keys:
    """The loaded keys and a pool of new keys, both from one lognormal draw."""

    def __init__(self, n: int, extra: int, seed: int):
        import datasets

        allk = datasets.generate("lognormal", n + extra, seed)
        rng = np.random.default_rng(seed)
        perm = rng.permutation(len(allk))
        self.loaded = np.sort(allk[perm[:n]])
        self.values = np.arange(n, dtype=np.int64)  # value of loaded[i] is i
        self.pool = allk[perm[n:]]
        self.rng = rng
        self.used = 0

    def new(self, count: int) -> np.ndarray:
        """``count`` keys never inserted before (the pool is reused across builds)."""
        if self.used + count > len(self.pool):
            self.used = 0
        out = self.pool[self.used:self.used + count]
        self.used += count
        return out

    def lookups(self, count: int) -> np.ndarray:
        """Positions of present keys to look up (uniform over the loaded keys)."""
        return self.rng.integers(0, len(self.loaded), count)


def run_cell(adapter, ks: Keys, mode: str, read_fraction: float, ops: int, batch: int) -> dict:
    """Run one mix; returns ``{"ops", "seconds", "ok"}`` (ok: every lookup found its value)."""
    loaded, values = ks.loaded, ks.values
    if mode == "single":
        reads = int(round(ops * read_fraction))
        writes = ops - reads
        if writes and not adapter.single_writes:
            return {"ops": ops, "seconds": None, "ok": True, "note": "n/a"}
        kinds = np.zeros(ops, dtype=bool)
        kinds[ks.rng.permutation(ops)[:writes]] = True  # True: a write
        pos = ks.lookups(reads)
        rkeys = loaded[pos].tolist()
        expected = int(values[pos].sum())
        wkeys = ks.new(writes).tolist()
        wvals = list(range(10**9, 10**9 + writes))
        get, put = adapter.get, getattr(adapter, "put", None)
        plan = kinds.tolist()
        gc.collect()
        start = time.perf_counter()
        total = 0
        r = w = 0
        for is_write in plan:
            if is_write:
                put(wkeys[w], wvals[w])
                w += 1
            else:
                total += get(rkeys[r])
                r += 1
        seconds = time.perf_counter() - start
        return {"ops": ops, "seconds": seconds, "ok": total == expected}
    batches = max(1, ops)
    reads = int(round(batches * read_fraction))
    kinds = np.zeros(batches, dtype=bool)
    kinds[np.linspace(0, batches - 1, batches - reads).round().astype(int) if batches > reads else []] = True
    plan = []
    expected = 0
    for is_write in kinds.tolist():
        if is_write:
            keys = ks.new(batch)
            plan.append((True, keys, np.arange(10**9, 10**9 + len(keys), dtype=np.int64)))
        else:
            pos = ks.lookups(batch)
            expected += int(values[pos].sum())
            plan.append((False, loaded[pos], None))
    gc.collect()
    start = time.perf_counter()
    total = found = 0
    for is_write, keys, vals in plan:
        if is_write:
            adapter.put_batch(keys, vals)
        else:
            s, f = adapter.get_batch(keys)
            total += s
            found += f
    seconds = time.perf_counter() - start
    return {"ops": batches * batch, "seconds": seconds, "ok": total == expected}


def mixed_workloads(names, ks: Keys, args, out=print) -> list:
    """Every mix x mode x index; returns tidy rows and prints the table."""
    rows = []
    for name in names:
        for mode in MODES:
            gc.collect()
            before = _rss()
            start = time.perf_counter()
            adapter = ADAPTERS[name](ks.loaded, ks.values)
            build = time.perf_counter() - start
            grown = _rss() - before
            out(f"  built {name} for {mode} calls: {build:.1f} s, resident memory +{grown / 2**20:.0f} MiB")
            for mix, read_fraction in MIXES:
                ops = args.single_ops if mode == "single" else args.batch_ops
                cell = run_cell(adapter, ks, mode, read_fraction, ops, args.batch)
                ops_s = cell["ops"] / cell["seconds"] if cell["seconds"] else None
                rows.append({"index": name, "mode": mode, "mix": mix, "ops": cell["ops"],
                             "seconds": cell["seconds"], "ops_per_s": ops_s or 0.0, "ok": cell["ok"],
                             "note": cell.get("note", ""), "build_s": build, "rss_growth": grown})
            del adapter
    return rows


def _fmt_rate(x) -> str:
    if x is None:
        return "n/a"
    if x >= 1e6:
        return f"{x / 1e6:.2f} M"
    return f"{x / 1e3:.0f} K"


def throughput_table(rows, names, batch: int) -> str:
    lines = [f"{'mix':<12} {'mode':<7} " + " ".join(f"{n:>13}" for n in names)]
    for mode in MODES:
        for mix, _ in MIXES:
            cells = []
            for name in names:
                r = next((r for r in rows if r["index"] == name and r["mode"] == mode and r["mix"] == mix), None)
                if r is None:
                    cells.append("-")
                elif not r["ok"]:
                    cells.append("WRONG")
                elif r["seconds"] is None:
                    cells.append("n/a")
                else:
                    cells.append(_fmt_rate(r["ops_per_s"]))
            label = "single" if mode == "single" else f"{batch // 1000}K" if batch >= 1000 else str(batch)
            lines.append(f"{mix:<12} {label:<7} " + " ".join(f"{c:>13}" for c in cells))
    return "\n".join(lines)


# --- DynamicRMI targets -------------------------------------------------------------------------


def update_throughput(ks: Keys, batch: int, total: int, fraction: float, measure_lookups: bool, out=print) -> dict:
    """``update()`` of ``total`` new keys in batches, merges included; lookups after 10%."""
    from learnedidx import DynamicRMI

    n = len(ks.loaded)
    idx = DynamicRMI(ks.loaded, ks.values, merge_fraction=fraction)
    pool = ks.new(total)
    elapsed = 0.0
    pauses = []
    full_before = idx.merge_stats["full_retrains"]
    full_pauses = []
    mem = []
    lookups = None
    for s in range(0, total, batch):
        merges = idx.merge_stats["merges"]
        fulls = idx.merge_stats["full_retrains"]
        t = time.perf_counter()
        idx.update(pool[s:s + batch], np.arange(s, s + len(pool[s:s + batch]), dtype=np.int64))
        elapsed += time.perf_counter() - t
        stats = idx.merge_stats
        if stats["merges"] > merges:
            (full_pauses if stats["full_retrains"] > fulls else pauses).append(stats["last_merge_seconds"])
        mem.append(idx.size_in_bytes() / len(idx))
        if measure_lookups and lookups is None and s + batch >= n // 10:
            lookups = lookup_ratio(idx, ks, out)
    stats = idx.merge_stats
    return {"fraction": fraction, "keys_per_s": total / elapsed, "merges": stats["merges"],
            "incremental_pauses": pauses, "full_pauses": full_pauses,
            "full_retrains": stats["full_retrains"] - full_before, "mem_end": mem[-1], "mem_max": max(mem),
            "lookups": lookups, "inserted": total}


def build_peak(ks: Keys) -> dict:
    """Peak bytes that ``DynamicRMI(keys, values)`` allocates while it builds (tracemalloc
    sees numpy's buffers), against the key and value bytes it was given."""
    from learnedidx import DynamicRMI

    gc.collect()
    tracemalloc.start()
    try:
        idx = DynamicRMI(ks.loaded, ks.values)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    del idx
    given = ks.loaded.nbytes + ks.values.nbytes
    return {"peak": peak, "given": given, "ratio": peak / given}


def _best(fn, repeats: int = 5) -> float:
    best = float("inf")
    for _ in range(repeats):
        t = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t)
    return best


def lookup_ratio(idx, ks: Keys, out=print) -> dict:
    """Batch lookups of present keys on idx and on a static RMI over the same keys."""
    from learnedidx import RMI

    keys, values = idx.keys, idx.values
    queries = keys[ks.rng.integers(0, len(keys), min(1_000_000, len(keys)))]
    static = RMI(keys.copy(), values=values.copy())
    idx.get_batch(queries[:1000])
    static.get_batch(queries[:1000])
    a = b = float("inf")
    for _ in range(5):  # alternate, so that both see the same machine load
        a = min(a, _best(lambda: idx.get_batch(queries), 1))
        b = min(b, _best(lambda: static.get_batch(queries), 1))
    got, found = idx.get_batch(queries)
    ref, ref_found = static.get_batch(queries)
    assert found.all() and np.array_equal(got, ref), "DynamicRMI and the static RMI disagree"
    stats = idx.merge_stats
    return {"dynamic_ns": 1e9 * a / len(queries), "static_ns": 1e9 * b / len(queries), "ratio": b / a,
            "delta_keys": stats["delta_keys"], "keys": len(keys), "queries": len(queries)}


def single_insert_rate(ks: Keys, count: int, repeats: int = 3) -> dict:
    """``idx[k] = v`` of ``count`` new keys on a fresh index, ``repeats`` times, each followed by
    the same loop storing into a plain dict: the dict's rate is this machine's Python speed at
    that moment (it moves up to 2x between runs here), so the ratio holds where rates do not."""
    from learnedidx import DynamicRMI

    keys = ks.new(count).tolist()
    vals = list(range(count))
    rates, ratios, merges = [], [], 0
    for _ in range(repeats):
        idx = DynamicRMI(ks.loaded, ks.values)
        gc.collect()
        t = time.perf_counter()
        for k, v in zip(keys, vals):
            idx[k] = v
        seconds = time.perf_counter() - t
        assert len(idx) == len(ks.loaded) + count
        merges = idx.merge_stats["merges"]
        del idx
        plain = {}
        t = time.perf_counter()
        for k, v in zip(keys, vals):
            plain[k] = v
        dict_seconds = time.perf_counter() - t
        rates.append(count / seconds)
        ratios.append(seconds / dict_seconds)
    return {"per_s": float(np.median(rates)), "min_per_s": min(rates), "max_per_s": max(rates),
            "vs_dict": float(np.median(ratios)), "count": count, "merges": merges, "repeats": repeats}


def warm_up(out=print) -> float:
    """Compile (or load from Numba's cache) every kernel the timed runs use, on a toy index."""
    from learnedidx import RMI, DynamicRMI

    t = time.perf_counter()
    keys = np.arange(0, 200_000, 2, dtype=np.uint64)
    idx = DynamicRMI(keys, np.arange(len(keys)), merge_min=100)
    idx.update(keys[:5000] + 1, np.arange(5000))
    idx.delete(keys[:10])
    idx.merge()
    idx.update(keys[5000:40000] + 1, np.arange(35000))
    for _ in range(2):
        idx.get_batch(keys[:50_000])
        idx.lower_bound(keys[:50_000])
        idx[7] = 1
        idx.get(7)
        idx.merge()
    RMI(idx.keys.copy(), values=idx.values.copy()).get_batch(keys[:50_000])
    return time.perf_counter() - t


# --- the command --------------------------------------------------------------------------------


def _target(text: str, judged: bool) -> str:
    """`` (target <text>)`` when the run has the scale the targets are set for (TARGET_N keys), else ""."""
    return f" (target {text})" if judged else ""


def build_parser() -> argparse.ArgumentParser:
    """The parser of ``python -m bench.updates``; its errors are one line and exit status 2."""
    p = ArgumentParser(prog="python -m bench.updates", description=__doc__.split("\n\n")[0])
    p.add_argument("--n", type=positive_count, default=10_000_000, help="keys loaded (default 10M)")
    p.add_argument("--batch", type=positive_count, default=100_000, help="keys per batch call (default 100K)")
    p.add_argument("--single-ops", type=positive_count, default=300_000,
                   help="single-key calls per mix (default 300K)")
    p.add_argument("--batch-ops", type=positive_count, default=20, help="batch calls per mix (default 20)")
    p.add_argument("--update-keys", type=positive_count, default=None,
                   help="keys inserted by the update() runs (default 30%% of n)")
    p.add_argument("--fractions", type=_fractions, default=[0.02, 0.05, 0.1],
                   help="comma-separated merge fractions the update() runs compare (default 0.02,0.05,0.1)")
    p.add_argument("--indexes", default=",".join(INDEXES), help=f"comma-separated subset of {','.join(INDEXES)}")
    p.add_argument("--object-n", type=positive_count, default=None,
                   help="keys for SortedDict/BTrees when fewer than --n (they build one object per key)")
    p.add_argument("--seed", type=int, default=42)
    p.add_argument("--quick", action="store_true",
                   help="200K keys, 10K batches: a smoke run of about 20 s once compiled; no 10M-key targets shown")
    p.add_argument("--skip-mixes", action="store_true", help="only the DynamicRMI target measurements")
    p.add_argument("--skip-targets", action="store_true", help="only the mixed-workload table")
    return p


def main(argv=None) -> list:
    """Run the benchmark; returns the rows of the mixed-workload table.

    Bad input raises SystemExit(2) after one line on stderr.
    """
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.quick:
        explicit = set(argv or sys.argv[1:])
        for key, value in QUICK.items():
            if f"--{key.replace('_', '-')}" not in explicit:
                setattr(args, key, value)
    names = [s.strip() for s in args.indexes.split(",") if s.strip()]
    for name in names:
        if name not in INDEXES:
            parser.error("--indexes: " + unknown("index", name, INDEXES))
    names, notes = available(names)
    update_keys = args.update_keys or max(args.batch, int(0.3 * args.n))
    fractions = args.fractions
    judged = args.n >= TARGET_N
    extra = max(update_keys, args.single_ops * 2, args.batch_ops * args.batch * 2) + args.batch
    ks = Keys(args.n, extra, args.seed)
    print(f"bench.updates: {args.n:,} lognormal uint64 keys (datasets.generate seed {args.seed}), "
          f"batches of {args.batch:,} keys")
    print(f"  warm-up (Numba compile or cache load): {warm_up():.1f} s")
    rows = []
    if not args.skip_mixes:
        object_names = [n for n in names if n in ("SortedDict", "BTrees")]
        learned = [n for n in names if n not in object_names]
        rows = mixed_workloads(learned, ks, args)
        if object_names:
            if args.object_n and args.object_n < args.n:
                small = Keys(args.object_n, extra, args.seed)
                notes.append(f"SortedDict and BTrees ran on {args.object_n:,} keys, not {args.n:,} (--object-n)")
                rows += mixed_workloads(object_names, small, args)
            else:
                rows += mixed_workloads(object_names, ks, args)
        print()
        print(f"Throughput, operations per second ({args.single_ops:,} single-key calls or "
              f"{args.batch_ops} batch calls per cell; lookups of present keys, inserts of new keys)")
        print(throughput_table(rows, names, args.batch))
        if "PyGM" in names:
            notes.append("PyGM has no updates: each write batch merges into its arrays and rebuilds the "
                         "index; single-key writes would rebuild per key, so they are n/a")
        if "BTrees" in names:
            notes.append("BTrees: QQBTree (uint64 keys and values); batch calls are Python loops over "
                         "get and one tree.update(pairs)")
        notes.append("SortedDict batch calls: a list comprehension of get, one update(pairs)")
        notes.append("each index is built once per mode; the mixes run in the order shown on it, so "
                     "later mixes see the keys earlier ones inserted")
        for note in notes:
            print(f"  note: {note}")
    if not args.skip_targets:
        print()
        scale = "" if judged else f"; the targets are set for {TARGET_N:,} keys, so none are shown here"
        print(f"DynamicRMI targets ({args.n:,} keys, update() of {update_keys:,} new keys in batches of "
              f"{args.batch:,}{scale})")
        peak = build_peak(ks)
        print(f"  build peak: {peak['peak'] / 2**20:.0f} MiB allocated, {peak['ratio']:.2f}x the "
              f"{peak['given'] / 2**20:.0f} MiB of keys and values given{_target('< 2x', judged)}")
        results = []
        for f in fractions:
            r = update_throughput(ks, args.batch, update_keys, f, measure_lookups=(f == fractions[len(fractions) // 2]))
            results.append(r)
            inc = r["incremental_pauses"]
            print(f"  merge_fraction {f:<5}: update() {r['keys_per_s'] / 1e6:.2f} M keys/s incl. "
                  f"{r['merges']} merges; pause median {1e3 * np.median(inc) if inc else 0:.0f} ms, "
                  f"max {1e3 * max(inc) if inc else 0:.0f} ms; full retrains {r['full_retrains']}"
                  + (f" ({', '.join(f'{1e3 * x:.0f}' for x in r['full_pauses'])} ms)" if r["full_pauses"] else "")
                  + f"; bytes/key beyond keys+values {r['mem_end']:.2f} (max {r['mem_max']:.2f})")
        best = next((r for r in results if r["lookups"] is not None), None)
        if best is None:
            print("  batch lookups after 10% inserts: not measured (--update-keys is below 10% of --n)")
        else:
            lk = best["lookups"]
            print(f"  batch lookups after 10% inserts (merge_fraction {best['fraction']}, {lk['delta_keys']:,} keys "
                  f"in the delta): DynamicRMI {lk['dynamic_ns']:.0f} ns/lookup, static RMI {lk['static_ns']:.0f} "
                  f"ns/lookup: {lk['ratio']:.2f}x the static RMI's speed{_target('>= 0.9x', judged)}")
        single = single_insert_rate(ks, min(1_000_000, max(10_000, args.n // 10)))
        print(f"  single-key idx[k] = v: {single['per_s'] / 1e6:.2f} M/s over {single['count']:,} inserts, median "
              f"of {single['repeats']} ({single['min_per_s'] / 1e6:.2f}-{single['max_per_s'] / 1e6:.2f}; "
              f"{single['merges']} merges each){_target('>= 1 M/s', judged)}; {single['vs_dict']:.1f}x the time "
              f"of storing the same pairs in a plain dict")
        default = next((r for r in results if r["fraction"] == 0.05), results[0])
        print(f"  update() at merge_fraction {default['fraction']}: {default['keys_per_s'] / 1e6:.2f} M keys/s"
              f"{_target('>= 4 M/s', judged)}; memory {default['mem_max']:.2f} bytes/key at most"
              f"{_target('<= 8.5', judged)}")
    return rows


if __name__ == "__main__":
    main()
