"""`DynamicRMI`: an updatable map over a static RMI, a sorted delta, tombstones and a write buffer.

The parts (kernels in :mod:`learnedidx._dynamic_kernels`):

* **Main**: sorted unique keys and their values, indexed by a static :class:`~learnedidx.RMI`.
  Overwriting a main key writes its value in place.
* **Tombstones**: one bit per main position marks a deleted key, plus a count per 512 bits, so
  ``tombstones below p`` costs one load and at most 8 popcounts.
* **Delta**: the live keys that are not in main, sorted, in chunks of ``chunk_size`` keys (a
  two-level sorted list): a key inserts by shifting one chunk, a batch by merging into the
  chunks it touches. A *directory* (one entry per 64 main keys) tells which delta chunk lies
  between two main keys, so a batch lookup that misses main searches a handful of delta keys.
* **Write buffer**: ``idx[k] = v`` and ``del idx[k]`` only touch a Python dict and a set; the
  buffer applies as one sorted batch when ``buffer_size`` writes are pending, or before any read
  that needs ranks (``lower_bound``, ``range``, ``len``, ``keys``, batch reads). Point reads
  (``get``, ``[]``, ``in``) look at it first. So every read sees every earlier write, exactly.
* **Merge**: when the delta plus the tombstones pass ``merge_fraction`` of main, one Numba pass
  merges them into main from the back: in place when main's buffers have room (no fresh memory,
  whose page faults cost more than the merge itself here), else reading old main and writing new
  buffers with room to grow. Past ``parallel_threshold`` keys the pass runs as two independent
  halves on two threads: the delta is cut at main's middle key, and in place the few keys the
  lower half overwrites before the upper half reads them are copied aside first. A second pass
  refits every leaf of the RMI on its new keys (least squares, then exact error bounds with the
  inference expression; a leaf is fitted and checked in one visit, its keys still in cache; the
  leaves shared out between the threads), keeping the upper stages. The leaf of every old key
  comes from stored *runs* (routing is almost monotone), so only the delta keys are routed. A
  full retraining happens only when the refitted leaves lose more than ``retrain_bits`` of mean
  search precision (estimated on every 16th key), or main has doubled or halved since the
  last one.
* **Write batches** sort as packed uint64 words (integer keys: the key's offset in the batch's
  span, then its index in the batch, so repeats keep batch order and the last value wins), then
  find their keys in main without the RMI: the sorted batch walks the directory's samples
  (every 64th main key) to each key's block of 64 keys, interpolates between the block's two
  samples, and searches the 17 keys around that guess (three lines, requested 16 keys
  earlier; the whole block when the key lies outside them); one contiguous part of the batch
  per thread. The new keys then
  merge into the delta's chunks, the lower and the upper half of the chunks on two threads
  (each half taking the new chunks it may need from its own share of the free stack).

``rank(q) = main_rank(q) - tombstones_below(main_rank(q)) + delta_rank(q)``: a key in main is
never in the delta, dead or alive (writing a deleted main key clears its tombstone).

Measured at 10M lognormal uint64 keys on this 2-core machine, a shared VM whose speed moves by
up to 2x between runs (compare within a run): four runs of ``python -m bench.updates
--skip-mixes`` (2026-12-01) gave, for ``update()`` of 3M new keys in 100K-key batches, merges
included, 3.1-4.0 / 5.2-6.2 / 5.7-6.8 M keys/s at ``merge_fraction`` 0.02 / 0.05 / 0.1, and at
most 3.3 / 6.1 / 7.8 bytes per key beyond the key and value arrays. Merging 5% of main paused
62-73 ms (medians of the runs; the longest pause of a run 67-91 ms). Single-key ``idx[k] = v``
ran at 0.95-1.46 M/s (a Python dict insert and the checks cost most of it). At 0.05 about half
of ``update()`` is merges (the merge pass 32%, the refit 16%; the pass runs within 1.3x of a
plain memmove of main), 15% the search of main, 14% the inserts into the delta and 12%
sorting the batch (cProfile). 0.05 is the default: 0.1 merges half as often but each merge
pauses about 1.3x longer and a batch insert moves a delta twice as large; batch lookups after
10% more keys (400K of them in the delta) ran 1.02-1.24x the static RMI's speed; memory is well
under 8.5 bytes per key.
"""

from __future__ import annotations

import dataclasses
import functools
import math
import threading
import time
from dataclasses import dataclass, field

import numba
import numpy as np

from . import _dynamic_kernels as K
from ._coerce import (
    ANSWER_N,
    ANSWER_ZERO,
    IN_RANGE,
    LEFT,
    RIGHT,
    _check_number,
    as_number_array,
    checked_default,
    as_query_array,
    coerce_array,
    coerce_scalar,
    key_dtype_for,
    prepare_keys_values,
    reject_nan,
)
from ._modes import FIND, NOT_FOUND
from ._pointers import address
from .base import KeyValueIndex, compiled_entry
from .persist import register
from .rmi import RMI, RMIConfig

__all__ = ["DynamicRMI", "DynamicConfig"]

_MISSING = object()


_NAN_KEYS = "keys contain NaN (first at position {position}), which cannot be a key; drop NaNs first"


def _last_of_each(keys: np.ndarray, vals: np.ndarray):
    """Sorted keys whose repeats sit in batch order: each key once, with its last value."""
    keep = np.empty(len(keys), dtype=bool)
    np.not_equal(keys[1:], keys[:-1], out=keep[:-1])
    keep[-1] = True
    return keys[keep], vals[keep]


#: log2(e + 1) for small errors e in fixed point: the merge's statistics without a log per key.
_LOG2_FIXED = np.rint(np.log2(np.arange(1, 1025, dtype=np.float64)) * K.LOG2_SCALE).astype(np.int64)
_INITIAL_CHUNKS = 4
_FILL_BLOCK = 1 << 20  #: positions written into a new value buffer at a time


@dataclass(frozen=True)
class DynamicConfig:
    """Hyperparameters of a :class:`DynamicRMI`. None of them changes any answer.

    Attributes:
        merge_fraction: merge the delta and the tombstones into main when together they exceed
            this fraction of main (and ``merge_min``). Larger: fewer merges (each one two passes
            over main, 55-110 ms per 10M keys here) but a larger delta (lookups that miss main
            search it; batch inserts touch all its chunks) and more memory (main keeps room for
            ``min(0.2, 4 * merge_fraction)`` more keys, so that merges work in place). Default 0.05,
            measured at 10M keys (module docstring, ``python -m bench.updates``): 0.02 spends
            most of ``update()`` in merges (3.1-4.0 against 5.2-6.2 M keys/s in four runs); 0.1
            reached 5.7-6.8 M keys/s for more memory (7.8 against 6.1 bytes per key), merge
            pauses about 1.3x longer (79-100 against 62-73 ms) and a delta twice as large.
        merge_min: never merge for fewer pending keys than this (small indexes would merge all
            the time). Default 4096.
        buffer_size: single-key writes wait in a Python dict until this many are pending, then
            apply as one sorted batch. Larger amortizes better (a sorted batch of scattered keys
            is cheaper per key the denser it is), but a read that needs ranks applies the buffer
            first. Default 65536.
        retrain_bits: after a merge, retrain the whole RMI when the refitted leaves' mean
            ``log2(error + 1)`` exceeds the last full training's by this much (each bit is about
            one more search step per lookup). Default 1.0.
        chunk_size: keys per delta chunk: an insert shifts up to this many keys, a lookup does
            a binary search of this many. Default 128, at most 65536.
        rmi: the :class:`~learnedidx.RMIConfig` of the main index, whose leaves stay lines
            (merges refit them in place; its ``max_window`` is not used). Its
            ``parallel_threshold`` also decides when a write batch's search and its insert into
            the delta, a merge and its refit use every thread (as two halves).
    """

    merge_fraction: float = 0.05
    merge_min: int = 4096
    buffer_size: int = 65536
    retrain_bits: float = 1.0
    chunk_size: int = 128
    rmi: RMIConfig = field(default_factory=RMIConfig)

    def __post_init__(self):
        f = self.merge_fraction
        if isinstance(f, bool) or not isinstance(f, (int, float)) or not 0 < f <= 1e6 or f != f:
            raise ValueError(f"merge_fraction must be a number > 0, got {f!r}")
        for name, low, high in (("merge_min", 1, 1 << 62), ("buffer_size", 1, 1 << 62), ("chunk_size", 2, 1 << 16)):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, (int, np.integer)) or not low <= v <= high:
                raise ValueError(f"{name} must be an int in [{low}, {high}], got {v!r}")
        r = self.retrain_bits
        if isinstance(r, bool) or not isinstance(r, (int, float)) or not r >= 0:
            raise ValueError(f"retrain_bits must be a number >= 0 (inf: never), got {r!r}")
        if isinstance(self.rmi, dict):
            object.__setattr__(self, "rmi", RMIConfig(**self.rmi))
        elif not isinstance(self.rmi, RMIConfig):
            raise TypeError(f"rmi must be an RMIConfig, got {type(self.rmi).__name__}")

    def as_dict(self) -> dict:
        """The fields as JSON-able types (``rmi`` as a dict)."""
        out = dataclasses.asdict(self)
        out["retrain_bits"] = float(self.retrain_bits) if math.isfinite(self.retrain_bits) else "inf"
        return out

    @classmethod
    def from_dict(cls, d: dict) -> "DynamicConfig":
        d = dict(d)
        if d.get("retrain_bits") == "inf":
            d["retrain_bits"] = math.inf
        return cls(**d)


def _make_config(config, fields) -> DynamicConfig:
    if config is not None and fields:
        raise TypeError("pass either config=DynamicConfig(...) or keywords, not both")
    if config is not None:
        if not isinstance(config, DynamicConfig):
            raise TypeError(f"config must be a DynamicConfig, got {type(config).__name__}")
        return config
    own = {f.name for f in dataclasses.fields(DynamicConfig)} - {"rmi"}
    rmi_fields = {f.name for f in dataclasses.fields(RMIConfig)}
    unknown = sorted(set(fields) - own - rmi_fields - {"rmi"})
    if unknown:
        raise TypeError(
            f"DynamicRMI got unknown options {unknown}; DynamicConfig fields are {sorted(own)}, "
            f"RMIConfig fields are {sorted(rmi_fields)}"
        )
    rmi = fields.pop("rmi", None)
    rmi_kw = {k: fields.pop(k) for k in list(fields) if k in rmi_fields}
    if rmi is not None and rmi_kw:
        raise TypeError("pass either rmi=RMIConfig(...) or RMIConfig keywords, not both")
    return DynamicConfig(rmi=rmi if rmi is not None else RMIConfig(**rmi_kw), **fields)


def _sort_batch(keys: np.ndarray, vals: np.ndarray, unique: bool):
    """A write batch sorted by key with each key's last value (``unique``: no key repeats).

    Integer keys sort as packed uint64 words (:func:`learnedidx._dynamic_kernels.pack_batch`),
    which keep equal keys in batch order, keys that shared their packed top bits mended by
    insertion; when that would move too many keys, and for float keys, a stable argsort.
    ``vals`` is in the index's value dtype. Complexity O(m log m).
    """
    vu = _value_view_dtype(vals.dtype)
    if keys.dtype.kind in "iu":
        packed = np.empty(len(keys), dtype=np.uint64)
        b = K.pack_batch(keys, packed)
        packed.sort()
        sk = np.empty_like(keys)
        sv = np.empty_like(vals)
        ordered, repeats = K.unpack_batch(packed, b, keys, vals.view(vu), sk, sv.view(vu))
        if ordered:
            return _last_of_each(sk, sv) if repeats and not unique else (sk, sv)
    order = np.argsort(keys)
    sk = keys[order]
    if not unique and (sk[1:] == sk[:-1]).any():
        order = np.argsort(keys, kind="stable")
        return _last_of_each(keys[order], vals[order])
    return sk, vals[order]


def _value_view_dtype(dtype: np.dtype) -> np.dtype:
    """The unsigned dtype the kernels move values as; TypeError for unsupported value dtypes."""
    if dtype.kind in "biufmM" and dtype.itemsize in (1, 2, 4, 8) and dtype.fields is None:
        return np.dtype(f"u{dtype.itemsize}")
    raise TypeError(
        f"DynamicRMI values must have a numeric dtype of 1, 2, 4 or 8 bytes (bool, int8..int64, "
        f"uint8..uint64, float32, float64, datetime64, timedelta64), got {dtype}; store other "
        "payloads in your own array and keep their int64 row numbers as values"
    )


def _first_inexact(n: int, forced, exact) -> int:
    """Position of the first of n coerced numbers that is out of range (``forced``) or not
    exact, or -1 (the masks as :func:`learnedidx._coerce.coerce_array` returns them)."""
    bad = np.zeros(n, dtype=bool)
    if forced is not None:
        bad |= forced
    if exact is not None:
        bad |= ~exact
    return int(np.flatnonzero(bad)[0]) if bad.any() else -1


def _describe_key(x) -> str:
    return repr(x.item() if isinstance(x, np.generic) else x)


_ENTRY_SLOTS: dict = {}  #: key dtype -> [rank_at, find_at] (see _entry_slots)


def _entry_slots(kdtype: np.dtype) -> list:
    """``[rank_at, find_at]``, the scalar entry points for one key dtype, shared by every index
    of that dtype: until the first call of either they are stubs that compile (or load from
    Numba's cache) both and replace themselves, so building an index never compiles scalar
    code. Indexes read them through this list, so none holds a method of itself: a bound
    method stored on the instance made every index a reference cycle."""
    slots = _ENTRY_SLOTS.get(kdtype)
    if slots is None:
        slots = _ENTRY_SLOTS[kdtype] = []

        def compile_both():
            from numba import from_dtype, int64

            sig_key = from_dtype(kdtype)
            slots[:] = [compiled_entry(K.rank_at, (int64, sig_key, int64)), compiled_entry(K.find_at, (int64, sig_key))]

        def first_rank(h, q, right):
            compile_both()
            return slots[0](h, q, right)

        def first_find(h, q):
            compile_both()
            return slots[1](h, q)

        slots[:] = [first_rank, first_find]
    return slots


def _serialized(method):
    """``method`` run holding the index's lock: one call at a time per index, so a reader
    never sees a write half done and two writers never interleave (see the class doc)."""

    @functools.wraps(method)
    def locked(self, *args, **kwargs):
        with self._lock:
            return method(self, *args, **kwargs)

    return locked


class DynamicRMI(KeyValueIndex):
    """An updatable map with unique keys, like ``dict`` and ``SortedDict``, over a learned index.

    ``DynamicRMI(keys=None, values=None, *, dtype=None, value_dtype=None, config=None,
    copy=True, **options)``

    Args:
        keys: initial keys (any 1-D numeric array-like, as for :class:`KeyValueIndex`), or None
            to start empty. Duplicate keys: the last value wins.
        values: one value per key, or None: each key's value is then its rank among the initial
            keys (int64), as a static index's positions are.
        dtype: the key dtype, fixed for life. Default: the keys' dtype, or int64 when starting
            empty. Initial keys must be exactly representable in it.
        value_dtype: the value dtype, fixed for life: bool, integers, float32/float64,
            datetime64 or timedelta64 (1 to 8 bytes). Default: the values' dtype, or int64.
        config / options: a :class:`DynamicConfig`, or its fields and :class:`RMIConfig` fields
            as keywords (``DynamicRMI(keys, merge_fraction=0.1, keys_per_leaf=256)``).
        copy: as for :class:`KeyValueIndex` (keys are never modified in place; values are copied
            before the first write that would change them).

    Writes: ``idx[k] = v`` (insert or overwrite), ``del idx[k]``, :meth:`pop`, :meth:`update`
    and :meth:`delete` (batches). A write key must be exactly representable in the key dtype
    and a value in the value dtype (integers exactly, floats rounded to the value dtype):
    otherwise ValueError (TypeError for non-numbers) naming the key or value and the dtype.

    Reads: every :class:`KeyValueIndex` method (``lower_bound``/``upper_bound`` are ranks in the
    current key order, ``range``, ``get``, ``get_batch``, ``contains``...), with the same exact
    query coercion, and they always see every earlier write.

    Costs (n keys, d delta keys, k = d / C chunks of C = chunk_size keys; numbers measured at
    10M lognormal keys, see the module docstring and ``python -m bench.updates``):

    - ``idx[k] = v``, ``del idx[k]``, ``pop``: O(1) into the buffer (``del``/``pop`` of a key
      not in it: one lookup), plus a share of the buffer's sorted batch and of the merges.
    - ``update``/``delete`` of b keys: O(b log b) to sort, one batch RMI search, O(k + b + C *
      chunks touched) for the delta; plus a merge when due: O(n + d * stages), 160-260 ms per 10M
      keys, rarely a full retraining (~1.5 s per 10M keys).
    - ``get``/``[]``/``in``: O(1) for a buffered key, else one RMI lookup and, when it misses
      main, O(log k + log C) in the delta. ``get_batch``/``contains``: one interleaved pass
      (main search, tombstone, delta through the directory, value), as fast as the static
      RMI's ``get_batch`` when few keys are in the delta.
    - ``lower_bound``/``upper_bound``: the same plus the tombstone and delta counts below q;
      ``range``: two of them plus O(hits).
    - ``len``, ``keys``, ``values``, ``lower_bound``, ``range``, batch reads and ``save`` apply
      the buffer first; ``keys``/``values`` materialize the contents in O(n), cached until the
      next write (the arrays handed out never change afterwards).

    ``save``/``load`` and pickling keep the delta and tombstones (no retraining on load);
    a loaded index copies its mapped values before the first write that changes them.
    Safe to share between threads: every call holds the index's lock (an ``RLock``), so
    calls on one index run one at a time and each sees the contents before or after any
    other call, never a write half done. A batch still runs on every Numba thread; for
    reads that scale over Python threads, use a static index (immutable, no lock).

    >>> import numpy as np
    >>> idx = DynamicRMI(np.array([10, 30], dtype=np.uint64), values=np.array([1, 3]))
    >>> idx[20] = 2
    >>> del idx[30]
    >>> idx.lower_bound(25), len(idx), idx.get(20), 30 in idx
    (2, 2, np.int64(2), False)
    """

    name = "DynamicRMI"
    _native_find = True

    # --- construction -------------------------------------------------------------------------

    def __init__(self, keys=None, values=None, *, dtype=None, value_dtype=None, config=None,
                 copy=True, **options):
        start = time.perf_counter_ns()
        self.config = _make_config(config, options)
        if keys is None:
            if values is not None:
                raise ValueError("values were given without keys; pass keys too")
            kdtype = key_dtype_for(np.dtype(np.int64 if dtype is None else dtype), "dtype")
            vdtype = np.dtype(np.int64 if value_dtype is None else value_dtype)
            _value_view_dtype(vdtype)
            mk = np.zeros(0, dtype=kdtype)
            mv = np.zeros(0, dtype=vdtype)
            owned = True
        else:
            # With copy, the keys and values go into our own buffers below: no copy here.
            mk, mv = prepare_keys_values(keys, values, copy=False)
            if dtype is not None:
                kdtype = key_dtype_for(np.dtype(dtype), "dtype")
                if mk.dtype != kdtype:
                    mk = self._exact_keys(mk, kdtype)
            kdtype = mk.dtype
            if len(mk) > 1:
                keep = np.empty(len(mk), dtype=bool)
                np.not_equal(mk[1:], mk[:-1], out=keep[:-1])
                keep[-1] = True
                if not keep.all():
                    mk = mk[keep]
                    if mv is not None:
                        mv = mv[keep]
            positions = mv is None
            if positions:
                owned = True
                vdtype = np.dtype(np.int64 if value_dtype is None else value_dtype)
                # Written straight into the value buffer below; an array only without copy.
                mv = None if copy else np.arange(len(mk), dtype=np.int64)
            else:
                vdtype = np.dtype(mv.dtype if value_dtype is None else value_dtype)
                owned = not np.may_share_memory(mv, np.asarray(values))
            _value_view_dtype(vdtype)
            if mv is not None and mv.dtype != vdtype:
                mv = self._exact_values(mv, vdtype)
                owned = True
        if not mk.flags.c_contiguous:
            mk = np.ascontiguousarray(mk)
        if mv is not None and not mv.flags.c_contiguous:
            mv = np.ascontiguousarray(mv)
            owned = True
        if mv is not None and owned and not mv.flags.writeable:
            try:
                mv.flags.writeable = True  # our own copy behind a read-only view
            except ValueError:
                mv = mv.copy()
        mk = mk.view()
        mk.flags.writeable = False
        self._init_common(mk.dtype, vdtype)
        self._merges = 0
        self._full_retrains = 0
        self._merge_seconds = 0.0
        self._max_merge_seconds = 0.0
        self._last_merge_seconds = 0.0
        kbuf = vbuf = None
        if copy:
            # Our own buffers with room to grow, so that merges can work in place.
            n = len(mk)
            kbuf, vbuf = self._buffers(n)
            kbuf[:n] = mk
            if mv is None:
                for a in range(0, n, _FILL_BLOCK):  # positions, a block at a time: no n-sized temporary
                    block = np.arange(a, min(n, a + _FILL_BLOCK), dtype=np.int64)
                    vbuf[a:a + len(block)] = block if vdtype == block.dtype else self._exact_values(block, vdtype)
            else:
                vbuf[:n] = mv
            mk = kbuf[:n]
            mk.flags.writeable = False
            mv = vbuf[:n]
        self._install_main(mk, mv, self._train(mk), kbuf, vbuf)
        self._new_delta(_INITIAL_CHUNKS)
        self.build_time_ns = time.perf_counter_ns() - start
        self._bind_fast_paths()

    def _init_common(self, kdtype, vdtype) -> None:
        self._lock = threading.RLock()
        self._kdtype = np.dtype(kdtype)
        self._vdtype = np.dtype(vdtype)
        self._vu = _value_view_dtype(self._vdtype)
        self._vtype = self._vdtype.type
        self._log_set = {}
        self._log_del = set()
        self._snap = None
        self._h = np.zeros(K.H_SIZE, dtype=np.int64)
        self._haddr = address(self._h)
        self._positions = None
        self._kbuf = self._vbuf = None
        self._keys_shared = True
        self._values_owned = False
        self._scratch_k = np.zeros(0, dtype=kdtype)
        self._scratch_v = np.zeros(0, dtype=self._vu)

    def _train(self, keys):
        """Fully train an RMI on main keys; returns ``(rmi, run_start, run_leaf)``."""
        try:
            # Lines only: merges refit each leaf's line in place (RMIConfig.max_window is not used).
            rmi = RMI(keys, config=dataclasses.replace(self.config.rmi, max_window=None), assume_sorted=True,
                      copy=False)
        except ValueError as e:  # main's keys were checked when they came in: only corruption fails
            raise ValueError(
                "main's keys are not sorted or hold NaN: this index's data is corrupt (a file changed "
                "after saving and loaded with verify=False?); load(path, verify=True) checks a file"
            ) from e
        run_start, run_leaf = K.leaf_runs(rmi._meta, rmi._params, rmi._keys)
        self._trained_n = len(keys)
        self._trained_log2 = rmi.avg_log2_error
        self._full_retrains = getattr(self, "_full_retrains", 0) + 1
        return rmi, run_start, run_leaf

    def _install_main(self, keys, values, trained, kbuf=None, vbuf=None) -> None:
        """Make ``keys``/``values`` the main arrays with their RMI, and no tombstones.

        ``kbuf``/``vbuf``: our own writable buffers that ``keys``/``values`` start (merges can
        then work in place); None when the arrays may be shared (the caller's, a file's).
        """
        rmi, run_start, run_leaf = trained
        self._rmi = rmi
        self._keys = rmi._keys
        self._values = values
        self._kbuf, self._vbuf = kbuf, vbuf
        self._keys_shared = kbuf is None
        self._values_owned = vbuf is not None
        self._run_start = run_start
        self._run_leaf = run_leaf
        n = len(keys)
        self._tbits = np.zeros((n >> 6) + 1, dtype=np.uint64)
        self._tcum = np.zeros((n >> K.BLOCK_SHIFT) + 2, dtype=np.int64)
        self._t = 0
        self._samples = np.ascontiguousarray(keys[::1 << K.DIR_SHIFT])
        self._dirs = np.zeros((n >> K.DIR_SHIFT) + 2, dtype=np.int64)
        self._dir_valid = False
        self._snap = None

    def _buffers(self, n: int):
        """New key and value buffers for n keys with room to grow: ``min(0.2, 4 * merge_fraction)``
        of n more, about four merges of inserts before the next reallocation (which costs page
        faults: more than the merge itself here)."""
        capacity = n + int(min(0.2, 4 * self.config.merge_fraction) * n) + 1
        return np.empty(capacity, dtype=self._kdtype), np.empty(capacity, dtype=self._vdtype)

    def _new_delta(self, cap: int) -> None:
        c = int(self.config.chunk_size)
        self._dk = np.zeros((cap, c), dtype=self._kdtype)
        self._dv = np.zeros((cap, c), dtype=self._vdtype)
        self._dn = np.zeros(cap, dtype=np.int64)
        self._order = np.zeros(cap, dtype=np.int64)
        self._dmax = np.zeros(cap, dtype=self._kdtype)
        self._dcum = np.zeros(cap + 1, dtype=np.int64)
        self._free = np.arange(cap - 1, -1, -1, dtype=np.int64)
        self._st = np.zeros(K.ST_SIZE, dtype=np.int64)
        self._st[K.N_FREE] = cap
        self._sync_header()

    def _grow_delta(self, chunks_needed: int) -> None:
        """Make room for ``chunks_needed`` more chunks than are in use (doubling the pool)."""
        st = self._st
        cap = self._dk.shape[0]
        if st[K.N_FREE] >= chunks_needed:
            return
        new_cap = max(2 * cap, int(st[K.K_CHUNKS]) + chunks_needed)
        k = int(st[K.K_CHUNKS])
        c = self._dk.shape[1]
        dk = np.zeros((new_cap, c), dtype=self._kdtype)
        dv = np.zeros((new_cap, c), dtype=self._vdtype)
        dk[:cap] = self._dk
        dv[:cap] = self._dv
        dn = np.zeros(new_cap, dtype=np.int64)
        dn[:cap] = self._dn
        order = np.zeros(new_cap, dtype=np.int64)
        order[:k] = self._order[:k]
        dmax = np.zeros(new_cap, dtype=self._kdtype)
        dmax[:k] = self._dmax[:k]
        dcum = np.zeros(new_cap + 1, dtype=np.int64)
        dcum[:cap + 1] = self._dcum
        nfree = int(st[K.N_FREE])
        free = np.zeros(new_cap, dtype=np.int64)
        free[:new_cap - cap] = np.arange(new_cap - 1, cap - 1, -1)
        free[new_cap - cap:new_cap - cap + nfree] = self._free[:nfree]
        st[K.N_FREE] = nfree + new_cap - cap
        self._dk, self._dv, self._dn, self._order, self._dmax, self._dcum, self._free = (
            dk, dv, dn, order, dmax, dcum, free)
        self._sync_header()

    def _sync_header(self) -> None:
        """Point the scalar kernels' header at the current arrays."""
        h = self._h
        h[K.H_MK] = address(self._keys)
        h[K.H_N] = len(self._keys)
        h[K.H_META] = address(self._rmi._meta)
        h[K.H_PARAMS] = address(self._rmi._params)
        h[K.H_TBITS] = address(self._tbits)
        h[K.H_TCUM] = address(self._tcum)
        if hasattr(self, "_dk"):
            h[K.H_ORDER] = address(self._order)
            h[K.H_DMAX] = address(self._dmax)
            h[K.H_DK] = address(self._dk)
            h[K.H_DN] = address(self._dn)
            h[K.H_DCUM] = address(self._dcum)
            h[K.H_ST] = address(self._st)
            h[K.H_C] = self._dk.shape[1]
            h[K.H_CAP] = self._dk.shape[0]
            self._dv_flat = self._dv.reshape(-1)

    def _bind_fast_paths(self) -> None:
        """Set what the scalar fast paths read. The scalar entry points compile (or load from
        cache) at the first scalar operation (:func:`_entry_slots`): an index used only for
        batches never compiles them (seconds a key dtype on a cold cache)."""
        self._entries = _entry_slots(self._kdtype)
        kd = self._kdtype
        if kd.kind in "iu":
            info = np.iinfo(kd)
            self._kfast, self._kmin, self._kmax = int, int(info.min), int(info.max)
        elif kd == np.float64:
            self._kfast, self._kmin, self._kmax = float, -math.inf, math.inf
        else:
            self._kfast, self._kmin, self._kmax = None, 0, 0
        vd = self._vdtype
        if vd.kind in "iu":
            info = np.iinfo(vd)
            self._vfast, self._vmin, self._vmax = int, int(info.min), int(info.max)
        elif vd == np.float64:
            self._vfast, self._vmin, self._vmax = float, -math.inf, math.inf
        else:
            self._vfast, self._vmin, self._vmax = None, 0, 0
        self._log_max = int(self.config.buffer_size)
        # Everything __setitem__ reads, in one attribute (each attribute load costs here).
        self._fast = (self._kfast, self._kmin, self._kmax, self._vfast, self._vmin, self._vmax,
                      self._log_set, self._log_del, self._log_max)
        self._get_fast = (self._kfast, self._kmin, self._kmax, self._log_set, self._log_del, self._entries,
                          self._haddr, self._vtype)

    # --- coercion of written keys and values --------------------------------------------------

    @staticmethod
    def _exact_keys(arr: np.ndarray, dtype: np.dtype) -> np.ndarray:
        """``arr`` in the key dtype, every element exactly; ValueError naming the first that is not."""
        values, forced, exact = coerce_array(arr, dtype, LEFT, nan_message=_NAN_KEYS)
        i = _first_inexact(len(arr), forced, exact)
        if i >= 0:
            raise ValueError(
                f"key {_describe_key(arr[i])} (position {i}) is not exactly representable in the "
                f"key dtype {dtype}; pass keys that fit, or build the index with another dtype="
            )
        return values

    def _write_keys(self, keys) -> np.ndarray:
        """Keys of a batch write as a contiguous 1-D array of the key dtype, exactly."""
        if isinstance(keys, (str, bytes)) or keys is None:
            raise TypeError(f"keys must be a 1-D array of numbers, got {type(keys).__name__}")
        arr = as_query_array(keys, "keys")
        if arr.ndim != 1:
            raise ValueError(f"keys must be 1-D, got an array of shape {arr.shape}")
        if arr.dtype.kind == "b":
            raise TypeError("keys must be numbers, got booleans; pass keys.astype(np.uint8)")
        if arr.dtype == self._kdtype:
            reject_nan(arr, _NAN_KEYS)
            return np.ascontiguousarray(arr)
        return np.ascontiguousarray(self._exact_keys(arr, self._kdtype))

    def _write_key(self, key):
        """The canonical Python number for one written key; ValueError/TypeError when it cannot be one."""
        if isinstance(key, np.ndarray) and key.ndim:
            raise TypeError("a key must be a scalar; use update() or delete() for arrays")
        x = _check_number(key, "key")
        value, status, exact = coerce_scalar(x, self._kdtype, LEFT)
        if status != IN_RANGE or not exact:
            raise ValueError(
                f"key {_describe_key(key)} is not exactly representable in the key dtype "
                f"{self._kdtype}; this index can only hold {self._kdtype} keys"
            )
        return value.item()

    def _read_key(self, key):
        """The canonical Python number for a looked-up key, or None when no key can equal it."""
        if isinstance(key, np.ndarray) and key.ndim:
            raise TypeError("a key must be a scalar; use contains() or get_batch() for arrays")
        value, status, exact = coerce_scalar(key, self._kdtype, LEFT)
        if status != IN_RANGE or not exact:
            return None
        return value.item()

    @staticmethod
    def _exact_values(arr: np.ndarray, dtype: np.dtype) -> np.ndarray:
        """Values in the value dtype: integers exactly, floats rounded; ValueError/TypeError."""
        kind = arr.dtype.kind
        if dtype.kind in "mM":
            if kind != dtype.kind:
                raise TypeError(f"values of dtype {arr.dtype} cannot be stored as {dtype}; pass {dtype} values")
            return arr.astype(dtype, casting="same_kind")
        if kind not in "biufO":
            raise TypeError(f"values must be numbers for the value dtype {dtype}, got an array of dtype {arr.dtype}")
        if dtype.kind == "f":
            try:
                with np.errstate(over="ignore"):
                    out = arr.astype(dtype)
            except (TypeError, ValueError):
                raise TypeError(f"values must be numbers for the value dtype {dtype}") from None
            if kind in "fO":
                with np.errstate(invalid="ignore"):
                    src = arr.astype(np.float64) if kind == "O" else arr
                    over = np.isinf(out) & ~np.isinf(src)
            else:
                over = np.isinf(out)
            if over.any():
                i = int(np.flatnonzero(over)[0])
                raise ValueError(f"value {_describe_key(arr[i])} (position {i}) overflows the value dtype {dtype}")
            return out
        if kind == "O":
            for v in arr:
                _check_number(v, "value")
        reject_nan(arr, f"value NaN (position {{position}}) does not fit the value dtype {dtype}")
        if dtype.kind == "b":
            if kind == "b":
                return arr.astype(dtype)
            ok = (arr == 0) | (arr == 1)
            if not ok.all():
                i = int(np.flatnonzero(~ok)[0])
                raise ValueError(f"value {_describe_key(arr[i])} (position {i}) does not fit the value dtype bool")
            return arr.astype(dtype)
        src = arr.astype(np.uint8) if kind == "b" else arr
        values, forced, exact = coerce_array(src, dtype, LEFT)
        i = _first_inexact(len(arr), forced, exact)
        if i >= 0:
            raise ValueError(f"value {_describe_key(arr[i])} (position {i}) does not fit the value dtype {dtype}")
        return values

    def _write_values(self, values, n: int) -> np.ndarray:
        if isinstance(values, (str, bytes)) or values is None:
            raise TypeError(f"values must be a 1-D array, got {type(values).__name__}")
        arr = as_number_array(values)
        if arr.ndim != 1:
            raise ValueError(f"values must be 1-D, got an array of shape {arr.shape}")
        if len(arr) != n:
            raise ValueError(f"values has length {len(arr)} but keys has length {n}; pass one value per key")
        if arr.dtype == self._vdtype:
            return np.ascontiguousarray(arr)
        return np.ascontiguousarray(self._exact_values(arr, self._vdtype))

    def _write_value(self, value):
        """One written value, checked and converted to the value dtype (a numpy scalar)."""
        if isinstance(value, np.ndarray) and value.ndim:
            raise TypeError("a value must be a scalar; use update() for arrays")
        if isinstance(value, (str, bytes)) or value is None:
            raise TypeError(f"value {value!r} is not a number; the value dtype is {self._vdtype}")
        arr = np.asarray([value])
        if arr.dtype.kind == "O" and not isinstance(value, (int, float, np.generic)):
            raise TypeError(f"value {value!r} is not a number; the value dtype is {self._vdtype}")
        return self._exact_values(arr, self._vdtype)[0]

    # --- writes -------------------------------------------------------------------------------

    def __setitem__(self, key, value):
        """Insert or overwrite ``key``. O(1): the write waits in the buffer (see the class doc).

        Raises:
            ValueError: the key is NaN or not exactly representable in the key dtype, or the
                value does not fit the value dtype. TypeError: a non-number.
        """
        kfast, kmin, kmax, vfast, vmin, vmax, log, dels, limit = self._fast
        if type(key) is not kfast or not kmin <= key <= kmax:
            key = self._write_key(key)
        if type(value) is not vfast or not vmin <= value <= vmax:
            value = self._write_value(value)
        with self._lock:
            log[key] = value
            if dels:
                dels.discard(key)
            if len(log) >= limit:
                self._flush()

    @_serialized
    def __delitem__(self, key):
        """Delete ``key``. Raises KeyError when it is absent (ValueError for NaN, TypeError for
        non-numbers). O(1) when the key waits in the buffer, else one lookup."""
        k = self._read_key(key)
        if k is None:
            raise KeyError(key)
        if self._log_set.pop(k, _MISSING) is _MISSING:
            if k in self._log_del or self._entries[1](self._haddr, k) == -1:
                raise KeyError(key)
        self._log_del.add(k)
        if len(self._log_del) >= self._log_max:
            self._flush()

    @_serialized
    def pop(self, key, default=_MISSING):
        """Remove ``key`` and return its value; ``default`` when absent, else KeyError."""
        k = self._read_key(key)
        value = _MISSING
        if k is not None:
            value = self._log_set.pop(k, _MISSING)
            if value is not _MISSING:
                value = self._vtype(value)
            elif k not in self._log_del:
                value = self._value_at_location(self._entries[1](self._haddr, k), _MISSING)
        if value is _MISSING:
            if default is _MISSING:
                raise KeyError(key)
            return default
        self._log_del.add(k)
        if len(self._log_del) >= self._log_max:
            self._flush()
        return value

    @_serialized
    def update(self, keys, values) -> None:
        """Insert or overwrite every key (a batch upsert); within the batch the last value wins.

        Complexity O(b log b) to sort b keys, O(b log(n / b)) to find them in main, O(b C) or
        O(d + b) to insert the new ones into the delta, plus any merge.

        Raises:
            ValueError: keys and values of different lengths or not 1-D, a NaN key, a key not
                exactly representable in the key dtype, a value that does not fit the value
                dtype. TypeError: non-numbers. Nothing is written when it raises.
        """
        k = self._write_keys(keys)
        v = self._write_values(values, len(k))
        self._flush()
        self._upsert(k, v, unique=False)

    @_serialized
    def delete(self, keys, missing: str = "raise") -> int:
        """Delete every key of a batch; returns how many were deleted.

        ``missing="raise"`` raises KeyError naming the absent keys and deletes nothing;
        ``missing="ignore"`` skips them. Keys that no key can equal (2.5 for integer keys) are
        absent. Complexity O(b log b + b log(n / b) + d), plus any merge.

        Raises:
            KeyError: absent keys with ``missing="raise"``. ValueError: a NaN key, a bad
            ``missing``. TypeError: non-numbers.
        """
        if missing not in ("raise", "ignore"):
            raise ValueError(f"missing must be 'raise' or 'ignore', got {missing!r}")
        if isinstance(keys, (str, bytes)) or keys is None:
            raise TypeError(f"keys must be a 1-D array of numbers, got {type(keys).__name__}")
        arr = as_query_array(keys, "keys")
        if arr.ndim != 1:
            raise ValueError(f"keys must be 1-D, got an array of shape {arr.shape}")
        flat, forced, exact = coerce_array(arr, self._kdtype, LEFT)
        representable = np.ones(len(arr), dtype=bool)
        if forced is not None:
            representable &= ~forced
        if exact is not None:
            representable &= exact
        if missing == "raise" and not representable.all():
            self._raise_absent(arr[~representable])
        self._flush()
        return self._delete(np.unique(flat[representable]), raise_missing=missing == "raise")

    @staticmethod
    def _raise_absent(absent) -> None:
        shown = [_describe_key(x) for x in absent[:5]]
        more = f" and {len(absent) - 5} more" if len(absent) > 5 else ""
        raise KeyError(f"{len(absent)} keys are not in the index: {', '.join(shown)}{more}; nothing was deleted")

    def _flush(self) -> None:
        """Apply the write buffer as sorted batches (deletes, then upserts: they are disjoint)."""
        dels = self._log_del
        if dels:
            keys = np.fromiter(dels, dtype=self._kdtype, count=len(dels))
            dels.clear()
            keys.sort()
            self._delete(keys, raise_missing=False)
        sets = self._log_set
        if sets:
            m = len(sets)
            keys = np.fromiter(sets.keys(), dtype=self._kdtype, count=m)
            vals = np.fromiter(sets.values(), dtype=self._vdtype, count=m)
            sets.clear()
            self._upsert(keys, vals, unique=True)

    def _own_values(self) -> None:
        """Copy the main values into our own buffer before the first in-place write."""
        if not self._values_owned:
            n = len(self._values)
            vbuf = np.empty(max(n, len(self._kbuf) if self._kbuf is not None else 0), dtype=self._vdtype)
            vbuf[:n] = self._values
            self._vbuf = vbuf
            self._values = vbuf[:n]
            self._values_owned = True

    def _upsert(self, keys: np.ndarray, vals: np.ndarray, unique: bool) -> None:
        """Upsert a batch (keys in the key dtype, values in the value dtype)."""
        if len(keys) == 0:
            return
        self._snap = None
        # Writable arrays only: Numba compiles read-only arguments separately.
        keys = keys if keys.flags.writeable else keys.copy()
        vals = vals if vals.flags.writeable else vals.copy()
        if len(keys) > 1 and not (keys[1:] > keys[:-1]).all():
            keys, vals = _sort_batch(keys, vals, unique)
        mpos = self._find_main(keys)
        hit = mpos >= 0
        if hit.any():
            p = mpos[hit]
            self._own_values()
            self._values[p] = vals[hit]
            if self._t and K.t_clear_many(self._tbits, p):
                self._t = int(K.t_fix(self._tbits, self._tcum, int(p[0]) >> K.BLOCK_SHIFT))
            new = ~hit
            keys = keys[new]
            vals = vals[new]
        if len(keys):
            self._delta_upsert(keys, vals)
        self._after_write()

    def _find_main(self, keys: np.ndarray) -> np.ndarray:
        """Main position of every key of a sorted batch, or -1 (a walk of the directory samples:
        see :func:`learnedidx._dynamic_kernels.find_sorted`)."""
        out = np.empty(len(keys), dtype=np.int64)
        if self._parallel(len(keys)):
            K.find_sorted_parallel(self._keys, self._samples, keys, out, numba.get_num_threads())
        else:
            K.find_sorted(self._keys, self._samples, keys, out)
        return out

    def _parallel(self, m: int) -> bool:
        """Whether work over m keys or queries runs on every thread (the RMI's ``parallel_threshold``)."""
        return m >= self._rmi.config.parallel_threshold and numba.get_num_threads() > 1

    def _small(self, b: int) -> bool:
        """Whether a batch of b keys goes into the delta key by key rather than chunk by chunk."""
        return b <= 8 or b * 64 <= int(self._st[K.K_CHUNKS])

    def _delta_upsert(self, keys, vals) -> None:
        """Upsert sorted unique keys (none of them in main) into the delta."""
        st, vu = self._st, self._vu
        self._dir_valid = False
        if self._small(len(keys)):
            self._grow_delta(len(keys))
            K.d_upsert_sorted(self._dk, self._dv.view(vu), self._dn, self._order, self._dmax, self._free,
                              st, keys, vals.view(vu))
        else:
            c = self._dk.shape[1]
            fill = max(1, (3 * c) // 4)
            need = int(K.d_bulk_chunks(self._dk, self._dn, self._order, self._dmax, st, keys, fill))
            self._grow_delta(need - int(st[K.K_CHUNKS]))
            if len(self._scratch_k) < len(keys) + 2 * c:  # each half of a parallel insert: C + its keys
                self._scratch_k = np.empty(2 * (len(keys) + c), dtype=self._kdtype)
                self._scratch_v = np.empty(2 * (len(keys) + c), dtype=vu)
            cap = self._dk.shape[0]
            K.d_bulk_upsert(self._dk, self._dv.view(vu), self._dn, self._order, self._dmax, self._free, st,
                            keys, vals.view(vu), fill, np.empty(cap, dtype=np.int64),
                            np.empty(cap, dtype=self._kdtype), self._scratch_k, self._scratch_v,
                            self._parallel(len(keys)))
        K.d_fix(self._dn, self._order, self._dcum, st)

    def _delta_flat(self):
        d = int(self._st[K.D_KEYS])
        flat_k = np.empty(d, dtype=self._kdtype)
        flat_v = np.empty(d, dtype=self._vdtype)
        K.d_flatten(self._dk, self._dv.view(self._vu), self._dn, self._order, self._st[K.K_CHUNKS],
                    flat_k, flat_v.view(self._vu))
        return flat_k, flat_v

    def _delta_rebuild(self, keys, vals) -> None:
        """Replace the delta by sorted unique ``keys``/``vals``, chunks 3/4 full."""
        c = self._dk.shape[1]
        fill = max(1, (3 * c) // 4)
        chunks = -(-len(keys) // fill)
        if chunks > self._dk.shape[0]:
            self._new_delta(max(chunks + chunks // 2, _INITIAL_CHUNKS))
        K.d_rebuild(self._dk, self._dv.view(self._vu), self._dn, self._order, self._dmax, self._dcum,
                    self._free, self._st, np.ascontiguousarray(keys), np.ascontiguousarray(vals).view(self._vu), fill)
        self._dir_valid = False
        self._sync_header()

    def _delete(self, keys: np.ndarray, raise_missing: bool) -> int:
        """Delete sorted unique keys of the key dtype; returns how many were present."""
        if len(keys) == 0:
            return 0
        mpos = self._find_main(keys)
        in_main = mpos >= 0
        live = in_main.copy()
        if self._t and in_main.any():
            p = mpos[in_main]
            dead = ((self._tbits[p >> 6] >> (p & 63).astype(np.uint64)) & np.uint64(1)).astype(bool)
            live[in_main] = ~dead
        rest = ~in_main
        st = self._st
        slots = np.full(len(keys), -1, dtype=np.int64)
        if rest.any() and st[K.D_KEYS]:
            sub = np.empty(int(rest.sum()), dtype=np.int64)
            K.d_find_many(self._dk, self._dn, self._order, self._dmax, st, keys[rest], sub)
            slots[rest] = sub
        in_delta = slots >= 0
        present = live | in_delta
        if raise_missing and not present.all():
            self._raise_absent(keys[~present])
        count = int(present.sum())
        if count == 0:
            return 0
        self._snap = None
        if live.any():
            self._set_tombstones(mpos[live])
        if in_delta.any():
            gone = keys[in_delta]
            self._dir_valid = False
            if self._small(len(gone)):
                K.d_remove_many(self._dk, self._dv.view(self._vu), self._dn, self._order, self._dmax,
                                self._free, st, gone)
            else:
                K.d_bulk_remove(self._dk, self._dv.view(self._vu), self._dn, self._order, self._dmax,
                                self._free, st, gone)
            K.d_fix(self._dn, self._order, self._dcum, st)
        self._after_write()
        return count

    def _set_tombstones(self, positions: np.ndarray) -> None:
        """Mark sorted live main positions deleted."""
        K.t_set_many(self._tbits, positions)
        self._t = int(K.t_fix(self._tbits, self._tcum, int(positions[0]) >> K.BLOCK_SHIFT))

    def _after_write(self) -> None:
        """Merge when the pending changes pass the threshold."""
        pending = int(self._st[K.D_KEYS]) + self._t
        cfg = self.config
        if pending > max(cfg.merge_min, cfg.merge_fraction * len(self._keys)):
            self.merge()

    # --- merging ------------------------------------------------------------------------------

    @_serialized
    def merge(self) -> None:
        """Apply the write buffer, then merge the delta and tombstones into main (refitting the
        leaves, or retraining fully when they degrade). Answers never change.

        Called automatically (see :class:`DynamicConfig`); call it to pay the pause now.
        Complexity O(n + d * stages), plus a full training when one is due.
        """
        if self._log_set or self._log_del:
            self._flush()
        st = self._st
        d = int(st[K.D_KEYS])
        if d == 0 and self._t == 0:
            return
        start = time.perf_counter()
        mk, vu, rmi = self._keys, self._vu, self._rmi
        n = len(mk)
        total = n - self._t + d
        runs = len(self._run_leaf)
        out_start = np.empty(runs + 2 * d + 4, dtype=np.int64)  # a delta key may split a run in three
        out_leaf = np.empty(runs + 2 * d + 4, dtype=np.int64)
        kbuf, vbuf = self._kbuf, self._vbuf
        in_place = (kbuf is not None and vbuf is not None and not self._keys_shared and self._values_owned
                    and len(kbuf) >= total and len(vbuf) >= total)
        if not in_place:
            # New buffers with room to grow. The merge reads main and writes them in one pass; with
            # tombstones main is copied into them first and compacted there.
            kbuf, vbuf = self._buffers(max(total, n))
            if self._t:
                kbuf[:n] = mk
                vbuf[:n] = self._values
                in_place = True
        src_k, src_v = (kbuf, vbuf.view(vu)) if in_place else (mk, self._values.view(vu))
        parallel = self._parallel(total)
        nr = K.merge_delta(src_k, src_v, n, self._tbits, self._t > 0, self._dk, self._dv.view(vu), self._dn,
                           self._order, st[K.K_CHUNKS], rmi._meta, rmi._params, self._run_start, self._run_leaf,
                           kbuf, vbuf.view(vu), in_place, parallel, out_start, out_leaf)
        keys = kbuf[:total]
        keys.flags.writeable = False
        values = vbuf[:total]
        trained = None
        if self._trained_n and total and 0.5 <= total / self._trained_n <= 2.0:
            meta = rmi._meta.copy()
            meta[1] = total
            params = rmi._params.copy()
            max_err, sum_log2, sum_window = K.refit_leaves(meta, params, keys, out_start, out_leaf, nr, _LOG2_FIXED,
                                                           parallel)
            avg_log2 = float(sum_log2 / total)
            if avg_log2 <= self._trained_log2 + self.config.retrain_bits:
                counts = rmi.model_counts
                options = dataclasses.asdict(dataclasses.replace(rmi.config, branching_factor=tuple(counts[1:])))
                stats = {"max_error": int(max_err), "avg_log2_error": avg_log2,
                         "mean_window": float(sum_window / counts[-1])}
                new_rmi = RMI._from_state(
                    {"build_time_ns": 0, "positions": True, "options": options, "stats": stats},
                    {"keys": keys, "meta": meta, "params": params},
                )
                trained = (new_rmi, out_start[:nr + 1].copy(), out_leaf[:nr].copy())
        if trained is None:
            trained = self._train(keys)
        self._install_main(keys, values, trained, kbuf, vbuf)
        self._clear_delta()
        self._sync_header()
        seconds = time.perf_counter() - start
        self._merges += 1
        self._merge_seconds += seconds
        self._last_merge_seconds = seconds
        self._max_merge_seconds = max(self._max_merge_seconds, seconds)

    def _clear_delta(self) -> None:
        """Empty the delta, keeping its pool (the next one will need as much)."""
        st = self._st
        cap = self._dk.shape[0]
        self._dn[:] = 0
        self._free[:] = np.arange(cap - 1, -1, -1)
        st[K.K_CHUNKS] = 0
        st[K.D_KEYS] = 0
        st[K.N_FREE] = cap
        st[K.DIRTY] = 0
        self._dir_valid = False

    @property
    @_serialized
    def merge_stats(self) -> dict:
        """Counters: merges, full trainings, merge seconds (total, last, max), pending sizes."""
        return {
            "merges": self._merges,
            "full_retrains": self._full_retrains,
            "merge_seconds": self._merge_seconds,
            "last_merge_seconds": self._last_merge_seconds,
            "max_merge_seconds": self._max_merge_seconds,
            "main_keys": len(self._keys),
            "delta_keys": int(self._st[K.D_KEYS]),
            "tombstones": self._t,
            "buffered_writes": len(self._log_set) + len(self._log_del),
            "avg_log2_error": self._rmi.avg_log2_error,
            "trained_avg_log2_error": self._trained_log2,
        }

    # --- reads --------------------------------------------------------------------------------

    @_serialized
    def __len__(self) -> int:
        """Number of keys. Applies the write buffer first."""
        if self._log_set or self._log_del:
            self._flush()
        return len(self._keys) - self._t + int(self._st[K.D_KEYS])

    def __iter__(self):
        """The keys in order, from a snapshot (O(n) after a write)."""
        return iter(self.keys)

    @_serialized
    def _snapshot(self):
        if self._log_set or self._log_del:
            self._flush()
        if self._snap is None:
            d = int(self._st[K.D_KEYS])
            if d == 0 and self._t == 0:
                keys = self._keys
                values = self._values.view()
                values.flags.writeable = False
                self._keys_shared = True  # the caller holds views now: copy before writing
                self._values_owned = False
            else:
                n = len(self._keys) - self._t + d
                keys = np.empty(n, dtype=self._kdtype)
                values = np.empty(n, dtype=self._vdtype)
                vu = self._vu
                K.materialize(self._keys, self._values.view(vu), self._tbits, 0, len(self._keys), self._dk,
                              self._dv.view(vu), self._dn, self._order, self._dcum, self._st[K.K_CHUNKS], 0, d,
                              keys, values.view(vu))
                keys.flags.writeable = False
                values.flags.writeable = False
            self._snap = (keys, values)
        return self._snap

    @property
    def keys(self) -> np.ndarray:
        """The keys in sorted order (read-only). O(n) after a write, then cached."""
        return self._snapshot()[0]

    @property
    def values(self) -> np.ndarray:
        """The values in key order (read-only). O(n) after a write, then cached."""
        return self._snapshot()[1]

    def lower_bound(self, q):
        """Number of keys ``< q`` in the current contents, exactly (see KeyValueIndex).

        Applies the write buffer first. Complexity O(RMI lookup + log d + log C).
        """
        with self._lock:
            if self._log_set or self._log_del:
                self._flush()
            if type(q) is self._kfast and self._kmin <= q <= self._kmax:
                return self._entries[0](self._haddr, q, LEFT)
            return self._answer(q, LEFT)

    def upper_bound(self, q):
        """Number of keys ``<= q`` in the current contents, exactly; as :meth:`lower_bound`."""
        with self._lock:
            if self._log_set or self._log_del:
                self._flush()
            if type(q) is self._kfast and self._kmin <= q <= self._kmax:
                return self._entries[0](self._haddr, q, RIGHT)
            return self._answer(q, RIGHT)

    @_serialized
    def _answer(self, q, mode: int):
        if self._log_set or self._log_del:
            self._flush()
        if isinstance(q, (np.ndarray, list, tuple)):
            arr = as_query_array(q)
            values, forced, _ = coerce_array(arr.ravel(), self._kdtype, mode)
            out = self._search_array(values, mode)
            if forced is not None:
                out[forced] = len(self) if mode == LEFT else 0
            return out.reshape(arr.shape)
        value, status, _ = coerce_scalar(q, self._kdtype, mode)
        if status == ANSWER_ZERO:
            return 0
        if status == ANSWER_N:
            return len(self)
        return int(self._entries[0](self._haddr, value, mode))

    def _use_dir(self, m: int) -> bool:
        """Whether m batch queries should search the delta through the directory (building it
        when stale costs O(n / 64 + d), worth it for batches of more than n / 512 queries)."""
        if not self._dir_valid:
            if m * 8 < len(self._dirs):
                return False
            st = self._st
            K.dir_build(self._samples, len(self._keys), self._dk, self._dn, self._order, st[K.K_CHUNKS], self._dirs)
            self._dir_valid = True
        return True

    def _search_array(self, queries: np.ndarray, mode: int) -> np.ndarray:
        """Answers for key-dtype queries in the applied contents, as a new int64 array: ranks
        (LEFT/RIGHT), or for FIND the position in the current key order or -1."""
        m = len(queries)
        out = np.empty(m, dtype=np.int64)
        if m == 0:
            return out
        if not queries.flags.writeable:
            queries = queries.copy()  # Numba compiles read-only arguments separately
        if mode == FIND:
            ranks = self._search_array(queries, LEFT)
            return np.where(self._lookup(queries)[1], ranks, -1)
        st, rmi = self._st, self._rmi
        kernel = K.rank_batch_parallel if self._parallel(m) else K.rank_batch
        kernel(rmi._meta, rmi._params, self._keys, self._tbits, self._tcum, self._t > 0, self._use_dir(m),
               self._dirs, self._dk, self._dn, self._order, self._dmax, self._dcum, st, queries, mode == RIGHT, out)
        return out

    def _search_scalar(self, q, mode: int) -> int:
        """Rank of one key-dtype query (LEFT/RIGHT), or for FIND its position or -1."""
        if mode == FIND:
            return NOT_FOUND if self._entries[1](self._haddr, q) == -1 else int(self._entries[0](self._haddr, q, LEFT))
        return int(self._entries[0](self._haddr, q, mode))

    def _value_at_location(self, loc, default):
        if loc == -1:
            return default
        if loc >= 0:
            return self._values[loc]
        return self._dv_flat[-2 - loc]

    @_serialized
    def _find(self, q) -> int:
        """Position of key q in the current key order, or -1 (applies the write buffer)."""
        if self._log_set or self._log_del:
            self._flush()
        k = self._read_key(q)
        return -1 if k is None else self._search_scalar(k, 2)

    def get(self, key, default=None):
        """Value of ``key``, or ``default``. Sees buffered writes; O(1) for those, else one
        lookup in main and, for keys not there, one in the delta.

        Raises: TypeError for a non-number, ValueError for NaN.
        """
        kfast, kmin, kmax, log, dels, entries, haddr, vtype = self._get_fast
        if type(key) is not kfast or not kmin <= key <= kmax:
            return self._get_general(key, default)
        with self._lock:
            if log or dels:
                v = log.get(key, _MISSING)
                if v is not _MISSING:
                    return vtype(v)
                if key in dels:
                    return default
            loc = entries[1](haddr, key)
            if loc >= 0:
                return self._values[loc]
            return default if loc == -1 else self._dv_flat[-2 - loc]

    @_serialized
    def _get_general(self, key, default):
        k = self._read_key(key)
        if k is None:
            return default
        if self._log_set or self._log_del:
            v = self._log_set.get(k, _MISSING)
            if v is not _MISSING:
                return self._vtype(v)
            if k in self._log_del:
                return default
        loc = self._entries[1](self._haddr, k)
        if loc == -1:
            return default
        return self._values[loc] if loc >= 0 else self._dv_flat[-2 - loc]

    def __getitem__(self, key):
        """Value of ``key``. Raises KeyError when absent (ValueError for NaN)."""
        value = self.get(key, _MISSING)
        if value is _MISSING:
            raise KeyError(key)
        return value

    def __contains__(self, key) -> bool:
        """True when ``key`` is present. Raises ValueError for NaN."""
        return self.get(key, _MISSING) is not _MISSING

    def _lookup(self, queries):
        """``(values, found, shape)`` of a batch of queries (flat arrays)."""
        if self._log_set or self._log_del:
            self._flush()
        arr = as_query_array(queries)
        flat, forced, exact = coerce_array(arr.ravel(), self._kdtype, LEFT)
        if not flat.flags.writeable:
            flat = flat.copy()  # Numba compiles read-only arguments separately
        m = len(flat)
        st = self._st
        if m == 0:
            found = np.zeros(0, dtype=bool)
            values = np.zeros(0, dtype=self._vdtype)
        else:
            values = np.empty(m, dtype=self._vdtype)
            found = np.empty(m, dtype=bool)
            vu = self._vu
            rmi = self._rmi
            kernel = K.lookup_batch_parallel if self._parallel(m) else K.lookup_batch
            kernel(rmi._meta, rmi._params, self._keys, self._values.view(vu), self._tbits, self._t > 0,
                   self._use_dir(m), self._dirs, self._dk, self._dv.view(vu), self._dn, self._order, self._dmax,
                   st, flat, values.view(vu), found)
        if exact is not None:
            found &= exact
        if forced is not None:
            found &= ~forced
        return values, found, arr.shape

    @_serialized
    def contains(self, queries) -> np.ndarray:
        """Boolean array: is each query a key. Applies the write buffer first."""
        _, found, shape = self._lookup(queries)
        return found.reshape(shape)

    @_serialized
    def get_batch(self, queries, default=0):
        """``(values, found)`` for every query (shape of ``queries``); ``default`` where absent.

        Applies the write buffer first. Complexity: one batch RMI search (interleaved, on every
        Numba thread for large batches), then O(1) per main hit and, for the other queries, a
        search of the few delta keys between two main keys (through a directory over main).
        """
        checked_default(default, self._vdtype)
        values, found, shape = self._lookup(queries)
        if not found.all():
            values[~found] = default
        return values.reshape(shape), found.reshape(shape)

    @_serialized
    def range(self, lo, hi):
        """``(keys, values)`` of the entries with ``lo <= key < hi``, as read-only copies.

        Complexity: two rank searches plus O(k) for k entries. Raises as :meth:`lower_bound`.
        """
        if isinstance(lo, np.ndarray) or isinstance(hi, np.ndarray):
            if np.ndim(lo) or np.ndim(hi):
                raise TypeError("range(lo, hi) takes scalar bounds; use lower_bound for arrays")
        if self._log_set or self._log_del:
            self._flush()
        n, d = len(self._keys), int(self._st[K.D_KEYS])
        bounds = []
        for q in (lo, hi):
            value, status, _ = coerce_scalar(q, self._kdtype, LEFT)
            if status == ANSWER_N:
                bounds.append((n, d))
                continue
            if status == ANSWER_ZERO:
                bounds.append((0, 0))
                continue
            qa = np.array([value], dtype=self._kdtype)
            main = int(self._rmi._search_array(qa, LEFT)[0])
            if d:
                r = np.zeros(1, dtype=np.int64)
                K.rank_post(r, qa, False, 0, self._tbits, self._tcum, False, self._dirs, self._dk, self._dn,
                            self._order, self._dmax, self._dcum, self._st, r)
                bounds.append((main, int(r[0])))
            else:
                bounds.append((main, 0))
        (i0, r0), (i1, r1) = bounds
        i1, r1 = max(i0, i1), max(r0, r1)
        size = (i1 - i0) + (r1 - r0)
        keys = np.empty(size, dtype=self._kdtype)
        values = np.empty(size, dtype=self._vdtype)
        vu = self._vu
        w = K.materialize(self._keys, self._values.view(vu), self._tbits, i0, i1, self._dk, self._dv.view(vu),
                          self._dn, self._order, self._dcum, self._st[K.K_CHUNKS], r0, r1, keys, values.view(vu))
        keys, values = keys[:w], values[:w]
        keys.flags.writeable = False
        values.flags.writeable = False
        return keys, values

    # --- size and invariants ------------------------------------------------------------------

    @_serialized
    def size_in_bytes(self) -> int:
        """Bytes held beyond the main key and value arrays: the RMI, runs, tombstones, the
        directory, the whole delta pool (its keys and values included), main's spare capacity
        and an estimate of the write buffer (100 bytes per buffered write)."""
        arrays = (self._rmi._meta, self._rmi._params, self._run_start, self._run_leaf, self._tbits, self._tcum,
                  self._dk, self._dv, self._dn, self._order, self._dmax, self._dcum, self._free, self._st, self._h,
                  self._samples, self._dirs, self._scratch_k, self._scratch_v)
        n = len(self._keys)
        slack = 0
        if self._kbuf is not None:
            slack += (len(self._kbuf) - n) * self._kdtype.itemsize
        if self._vbuf is not None:
            slack += (len(self._vbuf) - n) * self._vdtype.itemsize
        buffered = len(self._log_set) + len(self._log_del)
        return int(sum(a.nbytes for a in arrays)) + slack + 100 * buffered

    @_serialized
    def _check(self) -> None:
        """Assert every invariant (see the module docstring); AssertionError names the broken one.

        Does not apply the write buffer. Complexity O(n * stages).
        """
        keys, values = self._keys, self._values
        n = len(keys)
        assert keys.ndim == 1 and keys.flags.c_contiguous and not keys.flags.writeable, "main keys layout"
        assert keys.dtype == self._kdtype, f"main keys dtype {keys.dtype} != {self._kdtype}"
        assert n < 2 or bool((keys[1:] > keys[:-1]).all()), "main keys are not strictly increasing"
        if keys.dtype.kind == "f":
            assert not np.isnan(keys).any(), "main keys hold NaN"
        assert values.shape == (n,) and values.dtype == self._vdtype, f"main values {values.shape} {values.dtype}"
        assert not self._values_owned or values.flags.writeable, "owned values must be writable"
        assert self._rmi._keys.__array_interface__["data"][0] == keys.__array_interface__["data"][0], \
            "the RMI indexes another key array"
        self._rmi._check()
        # Runs: every main key's leaf, as the RMI routes it.
        start, leaf = K.leaf_runs(self._rmi._meta, self._rmi._params, keys)
        assert np.array_equal(start, self._run_start) and np.array_equal(leaf, self._run_leaf), \
            f"leaf runs are stale: {len(self._run_leaf)} stored, {len(leaf)} routed"
        # Tombstones.
        assert self._tbits.shape == ((n >> 6) + 1,) and self._tcum.shape == ((n >> K.BLOCK_SHIFT) + 2,), \
            "tombstone arrays have the wrong size"
        tomb = K.t_positions(self._tbits, n)
        assert len(tomb) == self._t, f"{len(tomb)} tombstone bits, count says {self._t}"
        assert len(tomb) == 0 or tomb[-1] < n, f"tombstone at {tomb[-1]} beyond main ({n})"
        tcum = self._tcum.copy()
        K.t_fix(self._tbits, tcum, 0)
        assert np.array_equal(tcum, self._tcum), "tombstone block counts are stale"
        # Delta.
        st = self._st
        k, d, nfree = int(st[K.K_CHUNKS]), int(st[K.D_KEYS]), int(st[K.N_FREE])
        cap, c = self._dk.shape
        assert st[K.DIRTY] == k, f"delta counts dirty from chunk {st[K.DIRTY]} of {k}"
        used = self._order[:k]
        ids = np.concatenate([used, self._free[:nfree]])
        assert k + nfree == cap and np.array_equal(np.sort(ids), np.arange(cap)), \
            f"chunk ids: {k} in use + {nfree} free != pool of {cap}"
        counts = self._dn[used]
        assert ((counts >= 1) & (counts <= c)).all(), f"chunk sizes {counts.tolist()} outside [1, {c}]"
        assert int(counts.sum()) == d, f"chunks hold {int(counts.sum())} keys, count says {d}"
        assert np.array_equal(self._dcum[:k + 1], np.concatenate([[0], np.cumsum(counts)])), "delta cumulative counts"
        flat_k, flat_v = self._delta_flat()
        assert d < 2 or bool((flat_k[1:] > flat_k[:-1]).all()), "delta keys are not strictly increasing"
        if k:
            last = np.array([self._dk[ch, self._dn[ch] - 1] for ch in used], dtype=self._kdtype)
            assert np.array_equal(last, self._dmax[:k]), "chunk maxima are stale"
        if d:
            where = self._rmi._search_array(flat_k, 2)
            assert (where == -1).all(), f"delta key {flat_k[where >= 0][0]!r} is also in main"
        # Write buffer.
        both = set(self._log_set).intersection(self._log_del)
        assert not both, f"keys both written and deleted in the buffer: {sorted(both)[:5]}"
        for key in list(self._log_set)[:1000] + list(self._log_del)[:1000]:
            assert type(key) is (float if self._kdtype.kind == "f" else int), f"buffered key {key!r} not canonical"
            assert self._read_key(key) == key, f"buffered key {key!r} not representable"
        # Buffers and the directory.
        if self._kbuf is not None:
            assert address(self._kbuf) == address(keys) and len(self._kbuf) >= n, "main keys are not our buffer"
        if self._vbuf is not None and self._values_owned:
            assert address(self._vbuf) == address(values) and len(self._vbuf) >= n, "main values are not our buffer"
        assert np.array_equal(self._samples, keys[::1 << K.DIR_SHIFT]), "directory samples are stale"
        assert self._dirs.shape == ((n >> K.DIR_SHIFT) + 2,), "directory has the wrong size"
        if self._dir_valid:
            dirs = np.empty_like(self._dirs)
            K.dir_build(self._samples, n, self._dk, self._dn, self._order, k, dirs)
            assert np.array_equal(dirs, self._dirs), "directory is stale but marked valid"
        # Scalar kernels' header.
        h = self._h
        assert h[K.H_MK] == address(keys) and h[K.H_N] == n and h[K.H_CAP] == cap and h[K.H_C] == c, "stale header"
        assert h[K.H_DK] == address(self._dk) and h[K.H_TBITS] == address(self._tbits), "stale header addresses"

    # --- saving, loading, pickling --------------------------------------------------------------

    @_serialized
    def save(self, path) -> None:
        """Write the index to ``path`` atomically, as :meth:`KeyValueIndex.save`; writes from
        other threads wait until the file is written."""
        super().save(path)

    def _state(self):
        """Main arrays, the RMI, runs, tombstone positions and the flat delta (after applying
        the write buffer). Loading rebuilds without training: O(d + n / 64)."""
        if self._log_set or self._log_del:
            self._flush()
        flat_k, flat_v = self._delta_flat()
        config = {
            "build_time_ns": int(self.build_time_ns),
            "positions": False,
            "options": self.config.as_dict(),
            "rmi_options": dataclasses.asdict(self._rmi.config),
            "rmi_stats": dict(self._rmi._stats),
            "trained": {"n": int(self._trained_n), "avg_log2_error": float(self._trained_log2)},
        }
        arrays = {
            "keys": self._keys,
            "values": self._values,
            "meta": self._rmi._meta,
            "params": self._rmi._params,
            "run_start": self._run_start,
            "run_leaf": self._run_leaf,
            "tombstones": K.t_positions(self._tbits, len(self._keys)),
            "delta_keys": flat_k,
            "delta_values": flat_v,
        }
        return config, arrays

    def _restore(self, config, arrays) -> None:
        """Rebuild from :meth:`_state` output, checking every layout a kernel relies on."""
        self.config = DynamicConfig.from_dict(config["options"])
        keys, values = self._keys, self._values
        n = len(keys)
        self._init_common(keys.dtype, values.dtype)
        self._values = values
        rmi = RMI._from_state(
            {"build_time_ns": 0, "positions": True, "options": config["rmi_options"], "stats": config["rmi_stats"]},
            {"keys": keys, "meta": arrays["meta"], "params": arrays["params"]},
        )
        run_start, run_leaf = arrays["run_start"], arrays["run_leaf"]
        leaves = rmi.model_counts[-1]
        if run_start.dtype != np.int64 or run_leaf.dtype != np.int64 or run_start.ndim != 1 or run_leaf.ndim != 1:
            raise ValueError("leaf runs must be 1-D int64 arrays")
        if len(run_start) != len(run_leaf) + 1 or run_start[0] != 0 or run_start[-1] != n:
            raise ValueError(f"leaf runs do not cover the {n} main keys")
        if len(run_leaf) and (not (np.diff(run_start) > 0).all() or run_leaf.min() < 0 or run_leaf.max() >= leaves):
            raise ValueError("leaf runs are not increasing or name a leaf that does not exist")
        tomb = arrays["tombstones"]
        if tomb.dtype != np.int64 or tomb.ndim != 1 or (len(tomb) and (tomb[0] < 0 or tomb[-1] >= n
                                                                      or not (np.diff(tomb) > 0).all())):
            raise ValueError("tombstones must be sorted unique int64 main positions")
        dkeys, dvals = arrays["delta_keys"], arrays["delta_values"]
        if dkeys.dtype != keys.dtype or dvals.dtype != values.dtype or dkeys.ndim != 1 or dkeys.shape != dvals.shape:
            raise ValueError("delta keys and values must match the main dtypes and each other")
        if len(dkeys) > 1 and not (dkeys[1:] > dkeys[:-1]).all():
            raise ValueError("delta keys are not strictly increasing")
        trained = config["trained"]
        self._trained_n = int(trained["n"])
        self._trained_log2 = float(trained["avg_log2_error"])
        self._merges = self._full_retrains = 0
        self._merge_seconds = self._max_merge_seconds = self._last_merge_seconds = 0.0
        self._install_main(keys, values, (rmi, run_start, run_leaf))
        if len(tomb):
            K.t_set_many(self._tbits, tomb)
            self._t = int(K.t_fix(self._tbits, self._tcum, 0))
        self._new_delta(_INITIAL_CHUNKS)
        if len(dkeys):
            self._delta_rebuild(np.ascontiguousarray(dkeys), np.ascontiguousarray(dvals))

    @_serialized
    def __reduce__(self):
        """Pickle as :meth:`_state` (applying the write buffer first); unpickling never trains."""
        config, arrays = self._state()
        return _unpickle, (type(self), config, arrays)

    @_serialized
    def __copy__(self):
        """An independent copy (merges rewrite main's buffers in place, so nothing is shared)."""
        config, arrays = self._state()
        return _unpickle(type(self), config, {name: np.array(a) for name, a in arrays.items()})


def _unpickle(cls, config, arrays):
    return cls._from_state(config, arrays)


register(DynamicRMI, "learnedidx.DynamicRMI")
