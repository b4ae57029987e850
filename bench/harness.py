"""Measure indexes SOSD's way: same seeded lookups for all, every timed answer validated.

For each index on a key set: compile (a build and a lookup on a tiny key set of the same dtype,
timed apart), build (wall time and peak resident memory), the first lookup call after the build,
then two modes over the whole workload, ``repeats`` times each, alternating (medians reported):

* batch: ``lower_bound(queries)``, the index's batch path (interleaved kernels where it has
  them; ``batch_variant`` names what it does);
* loop: ``lower_bound_loop(queries)``, the same lookups one after another (SOSD's loop), no
  interleaving, with the batch path's threads (the workloads are in the key dtype: coercion
  passes the very same array, no copy). Indexes without a loop kernel of their own (``np.searchsorted``, PyGM, the object structures) answer
  batches one after another already: their batch time is their loop time, measured once.

Then, for indexes that can be saved, the save, the memory-mapped load and the first lookup
after it, and a Python loop of scalar ``lower_bound(int)`` calls. Every timed run's answers
are compared with the expected answers; an index that answers wrong gets no time at all.
"""

from __future__ import annotations

import gc
import os
import tempfile
import threading
import time
from dataclasses import asdict, dataclass

import numpy as np
from numba import carray, njit, types

from learnedidx.toolkit import address, compiled_entry, ptr_like

from .registry import IndexSpec

#: A timed batch run longer than this is not repeated (slow Python structures).
SLOW_RUN_S = 2.0


@dataclass
class Result:
    """One row of the results: an index measured on a dataset."""

    dataset: str
    index: str
    family: str
    variant: str
    n_keys: int
    key_bytes: int
    n_lookups: int = 0
    build_s: float | None = None
    compile_s: float | None = None
    first_call_ms: float | None = None
    index_bytes: int | None = None
    key_copy_bytes: int | None = None
    batch_ns: float | None = None
    batch_runs: int = 0
    loop_ns: float | None = None
    loop_runs: int = 0
    batch_variant: str = ""  #: what the batch path does (``KeyValueIndex.batch_variant``)
    scalar_ns: float | None = None
    peak_build_mb: float | None = None
    save_s: float | None = None
    load_ms: float | None = None
    first_lookup_after_load_us: float | None = None
    note: str = ""

    @property
    def total_bytes(self) -> int | None:
        if self.index_bytes is None:
            return None
        return self.index_bytes + (self.key_copy_bytes or 0)

    def as_dict(self) -> dict:
        row = asdict(self)
        row["total_bytes"] = self.total_bytes
        row["index_pct_of_keys"] = (
            100.0 * self.index_bytes / self.key_bytes if self.index_bytes is not None and self.key_bytes else None
        )
        return row


class PeakRSS:
    """Peak resident memory above the starting point while the block runs (Linux /proc)."""

    def __init__(self, interval: float = 0.005):
        self.interval = interval
        self.peak_mb: float | None = None

    @staticmethod
    def _rss_mb() -> float | None:
        try:
            with open("/proc/self/statm") as f:
                return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20
        except (OSError, ValueError, IndexError):
            return None

    def __enter__(self):
        self._start = self._rss_mb()
        self._max = self._start
        self._stop = threading.Event()
        if self._start is not None:
            self._thread = threading.Thread(target=self._poll, daemon=True)
            self._thread.start()
        return self

    def _poll(self):
        while not self._stop.wait(self.interval):
            now = self._rss_mb()
            if now is not None and now > self._max:
                self._max = now

    def __exit__(self, *exc):
        self._stop.set()
        if self._start is not None:
            self._thread.join()
            now = self._rss_mb()
            self.peak_mb = max(self._max, now or 0.0) - self._start
        return False


def _compile(spec: IndexSpec, dtype: np.dtype) -> float:
    """Build and query a tiny index of the same dtype: JIT compilation (or cache loading)."""
    tiny = np.arange(1, 65, dtype=dtype)
    many = np.resize(tiny[::-1], 1 << 14)  # enough for the multi-threaded kernels (default threshold)
    start = time.perf_counter()
    idx = spec.factory(tiny)
    idx.lower_bound(tiny[:3])
    idx.lower_bound(many)
    idx.lower_bound_loop(many)
    idx.lower_bound(int(tiny[1]) if dtype.kind in "iu" else float(tiny[1]))
    return time.perf_counter() - start


def _measure_persistence(idx, queries, expected, result: Result) -> None:
    """Save to a temporary file, map it back, and time the load and the first lookup after it."""
    import learnedidx

    with tempfile.TemporaryDirectory(prefix="learnedidx-bench-") as tmp:
        path = os.path.join(tmp, "index.lidx")
        start = time.perf_counter()
        try:
            idx.save(path)
        except (TypeError, NotImplementedError):
            return
        result.save_s = time.perf_counter() - start
        start = time.perf_counter()
        loaded = learnedidx.load(path, mmap=True)
        result.load_ms = (time.perf_counter() - start) * 1e3
        q = queries[0].item()
        start = time.perf_counter()
        answer = loaded.lower_bound(q)
        result.first_lookup_after_load_us = (time.perf_counter() - start) * 1e6
        if answer != expected[0]:
            result.note = f"WRONG ANSWERS after load: lower_bound({q!r}) = {answer}, expected {expected[0]}"
        del loaded


def measure(spec: IndexSpec, dataset: str, keys: np.ndarray, queries: np.ndarray, expected: np.ndarray,
            repeats: int = 5, scalar_lookups: int = 100_000, persist: bool = True) -> Result:
    """Measure one index on one key set; see the module docstring. Never raises for the index's
    own failures: they are recorded in ``Result.note``."""
    result = Result(dataset, spec.name, spec.family, spec.variant, len(keys), keys.nbytes, len(queries))
    if spec.max_keys is not None and len(keys) > spec.max_keys:
        result.note = f"skipped: {len(keys):,} keys > {spec.max_keys:,} (one Python object per key)"
        return result
    try:
        result.compile_s = _compile(spec, keys.dtype)
        gc.collect()
        with PeakRSS() as peak:
            start = time.perf_counter()
            idx = spec.factory(keys)
            result.build_s = time.perf_counter() - start
        result.peak_build_mb = peak.peak_mb
        result.index_bytes = int(idx.size_in_bytes())
        copy = getattr(idx, "key_copy_bytes", None)
        result.key_copy_bytes = int(copy()) if callable(copy) else 0

        result.batch_variant = str(getattr(idx, "batch_variant", ""))
        report = getattr(idx, "tune_report", None)
        if report is not None:  # the tuner's choice: say which index it built
            result.batch_variant = f"{report.chosen.label}: {result.batch_variant}"

        start = time.perf_counter()
        idx.lower_bound(queries[:1])
        result.first_call_ms = (time.perf_counter() - start) * 1e3

        warm = 1 << 14  # untimed: loads the kernels for these arrays' types, multi-threaded ones too
        idx.lower_bound(queries[:warm])
        idx.lower_bound_loop(queries[:warm])
        # An index without its own loop kernel answers batches one lookup after another already:
        # its loop mode is its batch path, timed once.
        own_loop = idx.has_loop_kernel
        times = {"batch": [], "loop": []} if own_loop else {"batch": []}
        for _ in range(repeats):
            for mode, runs in times.items():
                start = time.perf_counter_ns()
                answers = idx.lower_bound(queries) if mode == "batch" else idx.lower_bound_loop(queries)
                elapsed = time.perf_counter_ns() - start
                if not np.array_equal(answers, expected):
                    bad = int(np.flatnonzero(answers != expected)[0])
                    call = "lower_bound" if mode == "batch" else "lower_bound_loop"
                    result.note = (f"WRONG ANSWERS: {call}({queries[bad]!r}) = {answers[bad]}, "
                                   f"expected {expected[bad]}; no time reported")
                    return result
                runs.append(elapsed)
            if max(runs[-1] for runs in times.values()) > SLOW_RUN_S * 1e9:
                break
        per_lookup = max(1, len(queries))
        result.batch_ns = float(np.median(times["batch"])) / per_lookup
        result.loop_ns = float(np.median(times.get("loop", times["batch"]))) / per_lookup
        result.batch_runs = result.loop_runs = len(times["batch"])

        if persist and hasattr(idx, "_state"):
            _measure_persistence(idx, queries, expected, result)

        count = min(scalar_lookups, len(queries))
        as_python = queries[:count].tolist()
        if as_python:
            idx.lower_bound(as_python[0])  # untimed: compiles or loads the scalar kernel
        lookup = idx.lower_bound  # after that first call: the fast path it installed
        start = time.perf_counter_ns()
        total = 0
        for q in as_python:
            total += lookup(q)
        elapsed = time.perf_counter_ns() - start
        if total != int(expected[:count].sum()):
            result.note = "WRONG ANSWERS from scalar lower_bound; no scalar time reported"
        elif count:
            result.scalar_ns = elapsed / count
        del idx
    except MemoryError:
        result.note = "skipped: out of memory"
    except (TypeError, ValueError) as exc:
        result.note = f"not applicable: {exc}"
    finally:
        gc.collect()
    return result


@njit(cache=True)
def _read_byte(array_address, nbytes, offset):
    """Byte ``offset`` of the ``nbytes`` at ``array_address``: one memory read, nothing else."""
    return carray(ptr_like(array_address, np.uint8(0)), nbytes)[offset]


def scalar_floor_ns(keys: np.ndarray, positions: np.ndarray, count: int) -> float | None:
    """ns per call of a Python loop like the scalar one, calling a compiled function that only
    reads the key at each answer's position: the call and one key read (a cache miss once the
    keys outgrow the cache), no search. No index's scalar lookup here costs less. None for an
    empty key set."""
    count = min(count, len(positions))
    if len(keys) == 0 or count == 0:
        return None
    keys = np.ascontiguousarray(keys)
    entry = compiled_entry(_read_byte, (types.int64, types.int64, types.int64))
    base, size, width = address(keys), keys.nbytes, keys.itemsize

    def read(offset):
        return entry(base, size, offset)

    offsets = (np.minimum(positions[:count], len(keys) - 1) * width).tolist()
    read(offsets[0])
    start = time.perf_counter_ns()
    for offset in offsets:
        read(offset)
    return (time.perf_counter_ns() - start) / count
