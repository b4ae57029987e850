"""The write side of a DynamicRMI: coercing written keys and values exactly, the write buffer,
batch upserts and deletes into main, the delta and the tombstones, and merging."""

from __future__ import annotations

import dataclasses
import time
from typing import Any

import numpy as np
from numpy.typing import ArrayLike

from . import _batches, _delta, _layout, _merge, _tombstones
from .._coerce import (
    IN_RANGE,
    LEFT,
    _check_number,
    as_number_array,
    as_query_array,
    coerce_array,
    coerce_scalar,
    reject_nan,
)
from .._threads import run_sliced, threads_for
from ..interface import Number
from ..rmi import RMI
from ._common import INITIAL_CHUNKS, MISSING, describe_key, serialized, value_view_dtype

#: log2(e + 1) for small errors e in fixed point: the merge's statistics without a log per key.
_LOG2_FIXED = np.rint(np.log2(np.arange(1, 1025, dtype=np.float64)) * _merge.LOG2_SCALE).astype(np.int64)

_NAN_KEYS = "keys contain NaN (first at position {position}), which cannot be a key; drop NaNs first"


def _last_of_each(keys: np.ndarray, vals: np.ndarray):
    """Sorted keys whose repeats sit in batch order: each key once, with its last value."""
    keep = np.empty(len(keys), dtype=bool)
    np.not_equal(keys[1:], keys[:-1], out=keep[:-1])
    keep[-1] = True
    return keys[keep], vals[keep]


def _sort_batch(keys: np.ndarray, vals: np.ndarray, unique: bool):
    """A write batch sorted by key with each key's last value (``unique``: no key repeats).

    Integer keys sort as packed uint64 words (:func:`learnedidx.dynamic._batches.pack_batch`),
    which keep equal keys in batch order, keys that shared their packed top bits mended by
    insertion; when that would move too many keys, and for float keys, a stable argsort.
    ``vals`` is in the index's value dtype. Complexity O(m log m).
    """
    vu = value_view_dtype(vals.dtype)
    if keys.dtype.kind in "iu":
        packed = np.empty(len(keys), dtype=np.uint64)
        b = _batches.pack_batch(keys, packed)
        packed.sort()
        sk = np.empty_like(keys)
        sv = np.empty_like(vals)
        ordered, repeats = _batches.unpack_batch(packed, b, keys, vals.view(vu), sk, sv.view(vu))
        if ordered:
            return _last_of_each(sk, sv) if repeats and not unique else (sk, sv)
    order = np.argsort(keys)
    sk = keys[order]
    if not unique and (sk[1:] == sk[:-1]).any():
        order = np.argsort(keys, kind="stable")
        return _last_of_each(keys[order], vals[order])
    return sk, vals[order]


def _first_inexact(n: int, forced, exact) -> int:
    """Position of the first of n coerced numbers that is out of range (``forced``) or not
    exact, or -1 (the masks as :func:`learnedidx._coerce.coerce_array` returns them)."""
    bad = np.zeros(n, dtype=bool)
    if forced is not None:
        bad |= forced
    if exact is not None:
        bad |= ~exact
    return int(np.flatnonzero(bad)[0]) if bad.any() else -1


class Writing:
    """The write methods of :class:`learnedidx.DynamicRMI` (a mixin: the class owns the state)."""

    # --- coercion of written keys and values --------------------------------------------------

    @staticmethod
    def _exact_keys(arr: np.ndarray, dtype: np.dtype) -> np.ndarray:
        """``arr`` in the key dtype, every element exactly; ValueError naming the first that is not."""
        values, forced, exact = coerce_array(arr, dtype, LEFT, nan_message=_NAN_KEYS)
        i = _first_inexact(len(arr), forced, exact)
        if i >= 0:
            raise ValueError(
                f"key {describe_key(arr[i])} (position {i}) is not exactly representable in the "
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
                f"key {describe_key(key)} is not exactly representable in the key dtype "
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
                raise ValueError(f"value {describe_key(arr[i])} (position {i}) overflows the value dtype {dtype}")
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
                raise ValueError(f"value {describe_key(arr[i])} (position {i}) does not fit the value dtype bool")
            return arr.astype(dtype)
        src = arr.astype(np.uint8) if kind == "b" else arr
        values, forced, exact = coerce_array(src, dtype, LEFT)
        i = _first_inexact(len(arr), forced, exact)
        if i >= 0:
            raise ValueError(f"value {describe_key(arr[i])} (position {i}) does not fit the value dtype {dtype}")
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

    def __setitem__(self, key: Number, value: Any) -> None:
        """Insert or overwrite ``key``. O(1): the write waits in the buffer (see the class doc).

        Raises:
            ValueError: the key is NaN or not exactly representable in the key dtype, or the
                value does not fit the value dtype.
            TypeError: a non-number.
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

    @serialized
    def __delitem__(self, key: Number) -> None:
        """Delete ``key``. Raises KeyError when it is absent (ValueError for NaN, TypeError for
        non-numbers). O(1) when the key waits in the buffer, else one lookup."""
        k = self._read_key(key)
        if k is None:
            raise KeyError(key)
        if self._log_set.pop(k, MISSING) is MISSING:
            if k in self._log_del or self._entries[1](self._haddr, k) == -1:
                raise KeyError(key)
        self._log_del.add(k)
        if len(self._log_del) >= self._log_max:
            self._flush()

    @serialized
    def pop(self, key: Number, default: Any = MISSING) -> Any:
        """Remove ``key`` and return its value; ``default`` when absent, else KeyError."""
        k = self._read_key(key)
        value = MISSING
        if k is not None:
            value = self._log_set.pop(k, MISSING)
            if value is not MISSING:
                value = self._vtype(value)
            elif k not in self._log_del:
                value = self._value_at_location(self._entries[1](self._haddr, k), MISSING)
        if value is MISSING:
            if default is MISSING:
                raise KeyError(key)
            return default
        self._log_del.add(k)
        if len(self._log_del) >= self._log_max:
            self._flush()
        return value

    @serialized
    def update(self, keys: ArrayLike, values: ArrayLike) -> None:
        """Insert or overwrite every key (a batch upsert); within the batch the last value wins.

        Complexity O(b log b) to sort b keys, O(b log(n / b)) to find them in main, O(b C) or
        O(d + b) to insert the new ones into the delta, plus any merge.

        Raises:
            ValueError: keys and values of different lengths or not 1-D, a NaN key, a key not
                exactly representable in the key dtype, a value that does not fit the value
                dtype.
            TypeError: non-numbers.

        Nothing is written when it raises.
        """
        k = self._write_keys(keys)
        v = self._write_values(values, len(k))
        self._flush()
        self._upsert(k, v, unique=False)

    @serialized
    def delete(self, keys: ArrayLike, missing: str = "raise") -> int:
        """Delete every key of a batch; returns how many were deleted.

        ``missing="raise"`` raises KeyError naming the absent keys and deletes nothing;
        ``missing="ignore"`` skips them. Keys that no key can equal (2.5 for integer keys) are
        absent. Complexity O(b log b + b log(n / b) + d), plus any merge.

        Raises:
            KeyError: absent keys with ``missing="raise"``.
            ValueError: a NaN key, a bad ``missing``.
            TypeError: non-numbers.
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
        shown = [describe_key(x) for x in absent[:5]]
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
            if self._t and _tombstones.t_clear_many(self._tomb.bits, p):
                self._t = int(_tombstones.t_fix(self._tomb, int(p[0]) >> _layout.BLOCK_SHIFT))
            new = ~hit
            keys = keys[new]
            vals = vals[new]
        if len(keys):
            self._delta_upsert(keys, vals)
        self._after_write()

    def _find_main(self, keys: np.ndarray) -> np.ndarray:
        """Main position of every key of a sorted batch, or -1 (a walk of the directory samples:
        see :func:`learnedidx.dynamic._batches.find_sorted`)."""
        m = len(keys)
        out = np.empty(m, dtype=np.int64)
        mk, samples = self._keys, self._samples
        run_sliced(lambda a, b: _batches.find_sorted(mk, samples, keys[a:b], out[a:b]), m, self._threads(m))
        return out

    def _threads(self, m: int) -> int:
        """Threads that work over m keys or queries uses (every one from the RMI's
        ``parallel_threshold`` on)."""
        return threads_for(m, self._rmi.config.parallel_threshold)

    def _parallel(self, m: int) -> bool:
        """Whether work over m keys or queries runs on every thread."""
        return self._threads(m) > 1

    def _small(self, b: int) -> bool:
        """Whether a batch of b keys goes into the delta key by key rather than chunk by chunk."""
        return b <= 8 or b * 64 <= int(self._delta.state[_layout.K_CHUNKS])

    def _delta_upsert(self, keys, vals) -> None:
        """Upsert sorted unique keys (none of them in main) into the delta."""
        st, vu = self._delta.state, self._vu
        self._dir_valid = False
        if self._small(len(keys)):
            self._grow_delta(len(keys))
            _delta.d_upsert_sorted(self._delta, keys, vals.view(vu))
        else:
            c = self._delta.keys.shape[1]
            fill = max(1, (3 * c) // 4)
            need = int(_delta.d_bulk_chunks(self._delta, keys, fill))
            self._grow_delta(need - int(st[_layout.K_CHUNKS]))
            if len(self._scratch_k) < len(keys) + 2 * c:  # each half of a parallel insert: C + its keys
                self._scratch_k = np.empty(2 * (len(keys) + c), dtype=self._kdtype)
                self._scratch_v = np.empty(2 * (len(keys) + c), dtype=vu)
            cap = self._delta.keys.shape[0]
            scratch = (np.empty(cap, dtype=np.int64), np.empty(cap, dtype=self._kdtype), self._scratch_k, self._scratch_v)
            _delta.d_bulk_upsert(self._delta, keys, vals.view(vu), fill, scratch, self._parallel(len(keys)))
        _delta.d_fix(self._delta)

    def _delta_flat(self):
        d = int(self._delta.state[_layout.D_KEYS])
        flat_k = np.empty(d, dtype=self._kdtype)
        flat_v = np.empty(d, dtype=self._vdtype)
        _delta.d_flatten(self._delta, flat_k, flat_v.view(self._vu))
        return flat_k, flat_v

    def _delta_rebuild(self, keys, vals) -> None:
        """Replace the delta by sorted unique ``keys``/``vals``, chunks 3/4 full."""
        c = self._delta.keys.shape[1]
        fill = max(1, (3 * c) // 4)
        chunks = -(-len(keys) // fill)
        if chunks > self._delta.keys.shape[0]:
            self._new_delta(max(chunks + chunks // 2, INITIAL_CHUNKS))
        _delta.d_rebuild(self._delta, np.ascontiguousarray(keys), np.ascontiguousarray(vals).view(self._vu), fill)
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
            dead = ((self._tomb.bits[p >> 6] >> (p & 63).astype(np.uint64)) & np.uint64(1)).astype(bool)
            live[in_main] = ~dead
        rest = ~in_main
        st = self._delta.state
        slots = np.full(len(keys), -1, dtype=np.int64)
        if rest.any() and st[_layout.D_KEYS]:
            sub = np.empty(int(rest.sum()), dtype=np.int64)
            _delta.d_find_many(self._delta, keys[rest], sub)
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
                _delta.d_remove_many(self._delta, gone)
            else:
                _delta.d_bulk_remove(self._delta, gone)
            _delta.d_fix(self._delta)
        self._after_write()
        return count

    def _set_tombstones(self, positions: np.ndarray) -> None:
        """Mark sorted live main positions deleted."""
        _tombstones.t_set_many(self._tomb.bits, positions)
        self._t = int(_tombstones.t_fix(self._tomb, int(positions[0]) >> _layout.BLOCK_SHIFT))

    def _after_write(self) -> None:
        """Merge when the pending changes pass the threshold."""
        pending = int(self._delta.state[_layout.D_KEYS]) + self._t
        cfg = self.config
        if pending > max(cfg.merge_min, cfg.merge_fraction * len(self._keys)):
            self.merge()

    # --- merging ------------------------------------------------------------------------------

    @serialized
    def merge(self) -> None:
        """Apply the write buffer, then merge the delta and tombstones into main (refitting the
        leaves, or retraining fully when they degrade). Answers never change.

        Called automatically (see :class:`learnedidx.DynamicConfig`); call it to pay the pause now.
        Complexity O(n + d * stages), plus a full training when one is due.
        """
        if self._log_set or self._log_del:
            self._flush()
        st = self._delta.state
        d = int(st[_layout.D_KEYS])
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
        nr = _merge.merge_delta((src_k, src_v), n, self._tomb.bits, self._t > 0, self._delta, rmi.arrays,
                                (self._run_start, self._run_leaf), (kbuf, vbuf.view(vu)), in_place, parallel,
                                (out_start, out_leaf))
        keys = kbuf[:total]
        keys.flags.writeable = False
        values = vbuf[:total]
        trained = None
        if self._trained_n and total and 0.5 <= total / self._trained_n <= 2.0:
            meta = rmi.arrays.meta.copy()
            meta[1] = total
            refitted = rmi.arrays._replace(meta=meta, params=rmi.arrays.params.copy())
            max_err, sum_log2, sum_window = _merge.refit_leaves(refitted, keys, (out_start, out_leaf), nr, _LOG2_FIXED,
                                                                parallel)
            avg_log2 = float(sum_log2 / total)
            if avg_log2 <= self._trained_log2 + self.config.retrain_bits:
                counts = rmi.model_counts
                config = dataclasses.replace(rmi.config, branching_factor=tuple(counts[1:]))
                stats = {"max_error": int(max_err), "avg_log2_error": avg_log2,
                         "mean_window": float(sum_window / counts[-1])}
                new_rmi = RMI.from_arrays(keys, refitted, config, stats, copy=False, verify=False)
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
        st = self._delta.state
        cap = self._delta.keys.shape[0]
        self._delta.counts[:] = 0
        self._delta.free[:] = np.arange(cap - 1, -1, -1)
        st[_layout.K_CHUNKS] = 0
        st[_layout.D_KEYS] = 0
        st[_layout.N_FREE] = cap
        st[_layout.DIRTY] = 0
        self._dir_valid = False

    @property
    @serialized
    def merge_stats(self) -> dict:
        """Counters: merges, full trainings, merge seconds (total, last, max), pending sizes."""
        return {
            "merges": self._merges,
            "full_retrains": self._full_retrains,
            "merge_seconds": self._merge_seconds,
            "last_merge_seconds": self._last_merge_seconds,
            "max_merge_seconds": self._max_merge_seconds,
            "main_keys": len(self._keys),
            "delta_keys": int(self._delta.state[_layout.D_KEYS]),
            "tombstones": self._t,
            "buffered_writes": len(self._log_set) + len(self._log_del),
            "avg_log2_error": self._rmi.avg_log2_error,
            "trained_avg_log2_error": self._trained_log2,
        }
