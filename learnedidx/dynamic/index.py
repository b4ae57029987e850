"""The :class:`DynamicRMI` class: validation, the write buffer and the calls into the kernels."""

from __future__ import annotations

import dataclasses
import math
import threading
import time
from typing import Any

import numpy as np
from numpy.typing import ArrayLike, DTypeLike

from . import _directory, _layout, _merge, _scalar, _tombstones
from .._coerce import key_dtype_for, prepare_keys_values
from .._pointers import address
from ..base import IndexBase, compiled_entry
from ..interface import StrPath
from ..persist import register
from ..arrays import Delta, RMIArrays, Tombstones
from ..models import no_hybrid
from ..rmi import RMI, RMIConfig
from ._common import INITIAL_CHUNKS, serialized, value_view_dtype
from .config import DynamicConfig, make_config
from .reading import Reading
from .writing import Writing

__all__ = ["DynamicRMI", "DynamicConfig"]

_FILL_BLOCK = 1 << 20  #: positions written into a new value buffer at a time
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
            slots[:] = [compiled_entry(_scalar.rank_at, (int64, sig_key, int64)),
                        compiled_entry(_scalar.find_at, (int64, sig_key))]

        def first_rank(h, q, right):
            compile_both()
            return slots[0](h, q, right)

        def first_find(h, q):
            compile_both()
            return slots[1](h, q)

        slots[:] = [first_rank, first_find]
    return slots


class DynamicRMI(Writing, Reading, IndexBase):
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
    10M lognormal keys, docs/design.md and ``python -m bench.updates``):

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

    def __init__(self, keys: ArrayLike | None = None, values: ArrayLike | None = None, *,
                 dtype: DTypeLike | None = None, value_dtype: DTypeLike | None = None,
                 config: DynamicConfig | None = None, copy: bool = True, **options: Any) -> None:
        start = time.perf_counter_ns()
        self.config = make_config(config, options)
        if keys is None:
            if values is not None:
                raise ValueError("values were given without keys; pass keys too")
            kdtype = key_dtype_for(np.dtype(np.int64 if dtype is None else dtype), "dtype")
            vdtype = np.dtype(np.int64 if value_dtype is None else value_dtype)
            value_view_dtype(vdtype)
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
            value_view_dtype(vdtype)
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
        self._new_delta(INITIAL_CHUNKS)
        self.build_time_ns = time.perf_counter_ns() - start
        self._bind_fast_paths()

    def _init_common(self, kdtype, vdtype) -> None:
        self._lock = threading.RLock()
        self._kdtype = np.dtype(kdtype)
        self._vdtype = np.dtype(vdtype)
        self._vu = value_view_dtype(self._vdtype)
        self._vtype = self._vdtype.type
        self._log_set = {}
        self._log_del = set()
        self._snap = None
        self._h = np.zeros(_layout.H_SIZE, dtype=np.int64)
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
        run_start, run_leaf = _merge.leaf_runs(rmi.arrays, rmi.keys)
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
        self._keys = rmi.keys
        self._values = values
        self._kbuf, self._vbuf = kbuf, vbuf
        self._keys_shared = kbuf is None
        self._values_owned = vbuf is not None
        self._run_start = run_start
        self._run_leaf = run_leaf
        n = len(keys)
        self._tomb = Tombstones(np.zeros((n >> 6) + 1, dtype=np.uint64),
                                np.zeros((n >> _layout.BLOCK_SHIFT) + 2, dtype=np.int64))
        self._t = 0
        self._samples = np.ascontiguousarray(keys[::1 << _layout.DIR_SHIFT])
        self._dirs = np.zeros((n >> _layout.DIR_SHIFT) + 2, dtype=np.int64)
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
        state = np.zeros(_layout.ST_SIZE, dtype=np.int64)
        state[_layout.N_FREE] = cap
        self._delta = Delta(np.zeros((cap, c), dtype=self._kdtype), np.zeros((cap, c), dtype=self._vu),
                            np.zeros(cap, dtype=np.int64), np.zeros(cap, dtype=np.int64),
                            np.zeros(cap, dtype=self._kdtype), np.zeros(cap + 1, dtype=np.int64),
                            np.arange(cap - 1, -1, -1, dtype=np.int64), state)
        self._sync_header()

    def _grow_delta(self, chunks_needed: int) -> None:
        """Make room for ``chunks_needed`` more chunks than are in use (doubling the pool)."""
        st = self._delta.state
        cap = self._delta.keys.shape[0]
        if st[_layout.N_FREE] >= chunks_needed:
            return
        new_cap = max(2 * cap, int(st[_layout.K_CHUNKS]) + chunks_needed)
        k = int(st[_layout.K_CHUNKS])
        c = self._delta.keys.shape[1]
        dk = np.zeros((new_cap, c), dtype=self._kdtype)
        dv = np.zeros((new_cap, c), dtype=self._vu)
        dk[:cap] = self._delta.keys
        dv[:cap] = self._delta.values
        dn = np.zeros(new_cap, dtype=np.int64)
        dn[:cap] = self._delta.counts
        order = np.zeros(new_cap, dtype=np.int64)
        order[:k] = self._delta.order[:k]
        dmax = np.zeros(new_cap, dtype=self._kdtype)
        dmax[:k] = self._delta.max_keys[:k]
        dcum = np.zeros(new_cap + 1, dtype=np.int64)
        dcum[:cap + 1] = self._delta.cum
        nfree = int(st[_layout.N_FREE])
        free = np.zeros(new_cap, dtype=np.int64)
        free[:new_cap - cap] = np.arange(new_cap - 1, cap - 1, -1)
        free[new_cap - cap:new_cap - cap + nfree] = self._delta.free[:nfree]
        st[_layout.N_FREE] = nfree + new_cap - cap
        self._delta = Delta(dk, dv, dn, order, dmax, dcum, free, st)
        self._sync_header()

    def _sync_header(self) -> None:
        """Point the scalar kernels' header at the current arrays."""
        h = self._h
        h[_layout.H_MK] = address(self._keys)
        h[_layout.H_N] = len(self._keys)
        h[_layout.H_META] = address(self._rmi.arrays.meta)
        h[_layout.H_PARAMS] = address(self._rmi.arrays.params)
        h[_layout.H_TBITS] = address(self._tomb.bits)
        h[_layout.H_TCUM] = address(self._tomb.counts)
        if hasattr(self, "_delta"):
            h[_layout.H_ORDER] = address(self._delta.order)
            h[_layout.H_DMAX] = address(self._delta.max_keys)
            h[_layout.H_DK] = address(self._delta.keys)
            h[_layout.H_DN] = address(self._delta.counts)
            h[_layout.H_DCUM] = address(self._delta.cum)
            h[_layout.H_ST] = address(self._delta.state)
            h[_layout.H_C] = self._delta.keys.shape[1]
            h[_layout.H_CAP] = self._delta.keys.shape[0]
            self._dv_flat = self._delta.values.view(self._vdtype).reshape(-1)

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

    # --- size and invariants ------------------------------------------------------------------

    @serialized
    def size_in_bytes(self) -> int:
        """Bytes held beyond the main key and value arrays: the RMI, runs, tombstones, the
        directory, the whole delta pool (its keys and values included), main's spare capacity
        and an estimate of the write buffer (100 bytes per buffered write)."""
        arrays = (*self._rmi.arrays, self._run_start, self._run_leaf, self._tomb.bits, self._tomb.counts,
                  *self._delta, self._h,
                  self._samples, self._dirs, self._scratch_k, self._scratch_v)
        n = len(self._keys)
        slack = 0
        if self._kbuf is not None:
            slack += (len(self._kbuf) - n) * self._kdtype.itemsize
        if self._vbuf is not None:
            slack += (len(self._vbuf) - n) * self._vdtype.itemsize
        buffered = len(self._log_set) + len(self._log_del)
        return int(sum(a.nbytes for a in arrays)) + slack + 100 * buffered

    @serialized
    def _check(self) -> None:
        """Assert every invariant (see the package docstring); AssertionError names the broken one.

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
        assert self._rmi.keys.__array_interface__["data"][0] == keys.__array_interface__["data"][0], \
            "the RMI indexes another key array"
        self._rmi._check()
        # Runs: every main key's leaf, as the RMI routes it.
        start, leaf = _merge.leaf_runs(self._rmi.arrays, keys)
        assert np.array_equal(start, self._run_start) and np.array_equal(leaf, self._run_leaf), \
            f"leaf runs are stale: {len(self._run_leaf)} stored, {len(leaf)} routed"
        # Tombstones.
        assert self._tomb.bits.shape == ((n >> 6) + 1,) and self._tomb.counts.shape == ((n >> _layout.BLOCK_SHIFT) + 2,), \
            "tombstone arrays have the wrong size"
        tomb = _tombstones.t_positions(self._tomb.bits, n)
        assert len(tomb) == self._t, f"{len(tomb)} tombstone bits, count says {self._t}"
        assert len(tomb) == 0 or tomb[-1] < n, f"tombstone at {tomb[-1]} beyond main ({n})"
        tcum = self._tomb.counts.copy()
        _tombstones.t_fix(self._tomb._replace(counts=tcum), 0)
        assert np.array_equal(tcum, self._tomb.counts), "tombstone block counts are stale"
        # Delta.
        st = self._delta.state
        k, d, nfree = int(st[_layout.K_CHUNKS]), int(st[_layout.D_KEYS]), int(st[_layout.N_FREE])
        cap, c = self._delta.keys.shape
        assert st[_layout.DIRTY] == k, f"delta counts dirty from chunk {st[_layout.DIRTY]} of {k}"
        used = self._delta.order[:k]
        ids = np.concatenate([used, self._delta.free[:nfree]])
        assert k + nfree == cap and np.array_equal(np.sort(ids), np.arange(cap)), \
            f"chunk ids: {k} in use + {nfree} free != pool of {cap}"
        counts = self._delta.counts[used]
        assert ((counts >= 1) & (counts <= c)).all(), f"chunk sizes {counts.tolist()} outside [1, {c}]"
        assert int(counts.sum()) == d, f"chunks hold {int(counts.sum())} keys, count says {d}"
        assert np.array_equal(self._delta.cum[:k + 1], np.concatenate([[0], np.cumsum(counts)])), "delta cumulative counts"
        flat_k, flat_v = self._delta_flat()
        assert d < 2 or bool((flat_k[1:] > flat_k[:-1]).all()), "delta keys are not strictly increasing"
        if k:
            last = np.array([self._delta.keys[ch, self._delta.counts[ch] - 1] for ch in used], dtype=self._kdtype)
            assert np.array_equal(last, self._delta.max_keys[:k]), "chunk maxima are stale"
        if d:
            twice = self._rmi.contains(flat_k)
            assert not twice.any(), f"delta key {flat_k[twice][0]!r} is also in main"
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
        assert np.array_equal(self._samples, keys[::1 << _layout.DIR_SHIFT]), "directory samples are stale"
        assert self._dirs.shape == ((n >> _layout.DIR_SHIFT) + 2,), "directory has the wrong size"
        if self._dir_valid:
            dirs = np.empty_like(self._dirs)
            _directory.dir_build(self._samples, n, self._delta, dirs)
            assert np.array_equal(dirs, self._dirs), "directory is stale but marked valid"
        # Scalar kernels' header.
        h = self._h
        assert h[_layout.H_MK] == address(keys) and h[_layout.H_N] == n, "stale header"
        assert h[_layout.H_CAP] == cap and h[_layout.H_C] == c, "stale header"
        assert h[_layout.H_DK] == address(self._delta.keys), "stale header addresses"
        assert h[_layout.H_TBITS] == address(self._tomb.bits), "stale header addresses"

    # --- saving, loading, pickling --------------------------------------------------------------

    @serialized
    def save(self, path: StrPath) -> None:
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
            "rmi_stats": self._rmi.stats,
            "trained": {"n": int(self._trained_n), "avg_log2_error": float(self._trained_log2)},
        }
        arrays = {
            "keys": self._keys,
            "values": self._values,
            "meta": self._rmi.arrays.meta,
            "params": self._rmi.arrays.params,
            "run_start": self._run_start,
            "run_leaf": self._run_leaf,
            "tombstones": _tombstones.t_positions(self._tomb.bits, len(self._keys)),
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
        rmi = RMI.from_arrays(keys, RMIArrays(arrays["meta"], arrays["params"], *no_hybrid(keys.dtype)),
                              RMIConfig(**{"max_window": None, **config["rmi_options"]}), config["rmi_stats"], copy=False, verify=False)
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
            _tombstones.t_set_many(self._tomb.bits, tomb)
            self._t = int(_tombstones.t_fix(self._tomb, 0))
        self._new_delta(INITIAL_CHUNKS)
        if len(dkeys):
            self._delta_rebuild(np.ascontiguousarray(dkeys), np.ascontiguousarray(dvals))

    @serialized
    def __reduce__(self):
        """Pickle as :meth:`_state` (applying the write buffer first); unpickling never trains."""
        config, arrays = self._state()
        return _unpickle, (type(self), config, arrays)

    @serialized
    def __copy__(self):
        """An independent copy (merges rewrite main's buffers in place, so nothing is shared)."""
        config, arrays = self._state()
        return _unpickle(type(self), config, {name: np.array(a) for name, a in arrays.items()})


def _unpickle(cls, config, arrays):
    return cls._from_state(config, arrays)


register(DynamicRMI, "learnedidx.DynamicRMI")
