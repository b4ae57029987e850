"""DynamicRMI: the stateful machine against SortedDict, every error, edge cases, persistence."""

from __future__ import annotations

import copy
import math
import pickle
from itertools import product

import numba
import numpy as np
import pytest
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis.stateful import run_state_machine_as_test

import learnedidx
from learnedidx._threads import run_sliced
from learnedidx import DynamicConfig, DynamicRMI, IndexFileError, RMIConfig
from learnedidx.testing import UpdatableIndexMachine, check_index, interesting_queries, key_arrays

#: Thresholds small enough that buffer flushes, merges and full retrainings happen in a few steps.
SMALL = dict(merge_min=3, merge_fraction=0.3, buffer_size=3, chunk_size=4, keys_per_leaf=4)


def small(keys=None, values=None, **options):
    return DynamicRMI(keys, values, **{**SMALL, **options})


def reference_check(idx, model: dict):
    """The index holds exactly ``model`` (a dict), and its invariants hold."""
    keys = sorted(model)
    assert len(idx) == len(keys)
    assert idx.keys.tolist() == keys
    assert idx.values.tolist() == [model[k] for k in keys]
    idx._check()


# --- the state machine ------------------------------------------------------------------------

MACHINE_SETTINGS = settings(max_examples=80, stateful_step_count=50, deadline=None, derandomize=True,
                            suppress_health_check=[HealthCheck.too_slow])


class DynamicRMIMachine(UpdatableIndexMachine):
    """Writes buffered three at a time, merges every few writes, delta chunks of four keys."""

    index_factory = staticmethod(lambda keys, values: DynamicRMI(keys, values, **SMALL))


class UnbufferedRetrainingMachine(UpdatableIndexMachine):
    """Every write applied at once, and every merge followed by a full retraining."""

    index_factory = staticmethod(lambda keys, values: DynamicRMI(
        keys, values, **{**SMALL, "buffer_size": 1, "retrain_bits": 0.0, "merge_fraction": 0.1}))


class ParallelMachine(UpdatableIndexMachine):
    """Every batch search, merge and refit takes its parallel path (two halves, two threads)."""

    index_factory = staticmethod(lambda keys, values: DynamicRMI(keys, values, **{**SMALL, "parallel_threshold": 1}))


TestDynamicRMIMachine = DynamicRMIMachine.TestCase
TestDynamicRMIMachine.settings = MACHINE_SETTINGS
TestParallelMachine = ParallelMachine.TestCase
TestParallelMachine.settings = settings(MACHINE_SETTINGS, max_examples=30)
TestUnbufferedRetrainingMachine = UnbufferedRetrainingMachine.TestCase
TestUnbufferedRetrainingMachine.settings = settings(MACHINE_SETTINGS, max_examples=40)


class ForgetfulDelete(DynamicRMI):
    """A wrong implementation: deleting a main key forgets its tombstone."""

    def _set_tombstones(self, positions):
        pass


class ForgetfulMachine(UpdatableIndexMachine):
    index_factory = staticmethod(lambda keys, values: ForgetfulDelete(keys, values, **SMALL))


def test_machine_catches_a_forgotten_tombstone():
    with pytest.raises(AssertionError):
        run_state_machine_as_test(ForgetfulMachine, settings=settings(
            MACHINE_SETTINGS, max_examples=200, phases=[Phase.generate], report_multiple_bugs=False))


def test_machine_needs_a_factory():
    class NoFactory(UpdatableIndexMachine):
        pass

    with pytest.raises(TypeError, match="index_factory"):
        NoFactory()


# --- construction -----------------------------------------------------------------------------


def test_empty_index_defaults():
    idx = DynamicRMI()
    assert len(idx) == 0 and idx.keys.dtype == np.int64 and idx.values.dtype == np.int64
    assert idx.lower_bound(5) == 0 and idx.upper_bound(np.array([1, 2])).tolist() == [0, 0]
    assert idx.get(1) is None and 1 not in idx
    assert idx.range(-10, 10)[0].size == 0
    idx._check()
    idx[-5] = 7
    assert idx[-5] == 7 and len(idx) == 1


def test_empty_uint64_index():
    idx = DynamicRMI(dtype=np.uint64, value_dtype=np.float64)
    idx[2**64 - 1] = 0.5
    idx[0] = 1.5
    assert idx.keys.tolist() == [0, 2**64 - 1] and idx.values.dtype == np.float64
    assert idx.lower_bound(-1) == 0 and idx.lower_bound(2**64) == 2 and idx.upper_bound(2**64 - 1) == 2
    with pytest.raises(ValueError, match="uint64"):
        idx[-1] = 1.0


def test_duplicate_keys_last_value_wins():
    idx = DynamicRMI(np.array([3, 1, 3, 2, 1]), values=np.array([10, 20, 30, 40, 50]))
    assert idx.keys.tolist() == [1, 2, 3] and idx.values.tolist() == [50, 40, 30]
    idx._check()


def test_values_default_to_ranks():
    idx = DynamicRMI(np.array([30, 10, 20]))
    assert idx.values.tolist() == [0, 1, 2] and idx.values.dtype == np.int64


def test_value_dtype_conversion():
    idx = DynamicRMI(np.array([1, 2]), values=np.array([1, 2]), value_dtype=np.float32)
    assert idx.values.dtype == np.float32
    with pytest.raises(ValueError, match="300.*uint8"):
        DynamicRMI(np.array([1]), values=np.array([300]), value_dtype=np.uint8)


@pytest.mark.parametrize("values, value_dtype", [
    (np.array(["a", "b"]), None),
    (np.array([1, 2]), object),
    (np.array([1 + 2j, 3j]), None),
])
def test_unsupported_value_dtypes(values, value_dtype):
    with pytest.raises(TypeError, match="values must have a numeric dtype"):
        DynamicRMI(np.array([1, 2]), values=values, value_dtype=value_dtype)


def test_datetime_values():
    stamps = np.array(["2024-01-01", "2024-06-01"], dtype="datetime64[ns]")
    idx = small(np.array([5, 1]), stamps)
    idx[3] = np.datetime64("2024-03-01", "ns")
    assert idx[3] == np.datetime64("2024-03-01") and idx[5] == stamps[0] and idx.values.dtype == stamps.dtype
    with pytest.raises(TypeError, match="datetime64"):
        idx[4] = 17


def test_key_dtype_conversion_is_exact():
    assert DynamicRMI(np.array([2.0, 1.0]), dtype=np.int64).keys.tolist() == [1, 2]
    with pytest.raises(ValueError, match=r"1\.5.*int64"):
        DynamicRMI(np.array([1.0, 1.5]), dtype=np.int64)
    with pytest.raises(ValueError, match="NaN"):
        DynamicRMI(np.array([1.0, np.nan]))
    with pytest.raises(ValueError, match="without keys"):
        DynamicRMI(values=np.array([1]))


def test_options():
    idx = DynamicRMI(np.arange(100), keys_per_leaf=8, merge_fraction=0.5, chunk_size=16)
    assert idx.config.merge_fraction == 0.5 and idx.config.rmi.keys_per_leaf == 8
    assert idx._rmi.config.keys_per_leaf == 8
    cfg = DynamicConfig(merge_min=10, rmi=RMIConfig(stages=("linear", "linear")))
    assert DynamicRMI(np.arange(10), config=cfg).config is cfg
    with pytest.raises(TypeError, match="unknown options"):
        DynamicRMI(np.arange(10), bogus=1)
    with pytest.raises(TypeError, match="not both"):
        DynamicRMI(np.arange(10), config=cfg, merge_min=3)
    for bad in (dict(merge_fraction=0), dict(merge_min=0), dict(chunk_size=1), dict(retrain_bits=-1.0),
                dict(buffer_size=True)):
        with pytest.raises(ValueError):
            DynamicRMI(np.arange(10), **bad)


# --- write errors -------------------------------------------------------------------------


@pytest.mark.parametrize("dtype, key, error, match", [
    (np.int64, 2.5, ValueError, r"2\.5.*int64"),
    (np.uint64, -1, ValueError, r"-1.*uint64"),
    (np.uint64, 2**64, ValueError, r"18446744073709551616.*uint64"),
    (np.int64, 2**63, ValueError, r"9223372036854775808.*int64"),
    pytest.param(np.int8, 128, ValueError, r"128.*int8", marks=pytest.mark.slow),  # a dtype more to compile
    (np.float32, 0.1, ValueError, r"0\.1.*float32"),
    (np.int64, math.nan, ValueError, "NaN"),
    (np.float64, math.nan, ValueError, "NaN"),
    (np.int64, "7", TypeError, "real number"),
    (np.int64, None, TypeError, "real number"),
    (np.int64, np.array([1, 2]), TypeError, "scalar"),
])
def test_write_key_errors(dtype, key, error, match):
    idx = small(np.array([1, 2], dtype=dtype))
    with pytest.raises(error, match=match):
        idx[key] = 1
    if not isinstance(key, np.ndarray):
        with pytest.raises(error):
            idx.update(np.array([key], dtype=object), np.array([1]))
    assert len(idx) == 2
    idx._check()


@pytest.mark.parametrize("value_dtype, value, error, match", [
    (np.int64, 2**63, ValueError, r"9223372036854775808.*int64"),
    (np.int64, 1.5, ValueError, r"1\.5.*int64"),
    (np.uint8, -1, ValueError, r"-1.*uint8"),
    (np.int64, math.nan, ValueError, "NaN"),
    (np.bool_, 2, ValueError, "bool"),
    (np.float32, 1e300, ValueError, "overflows"),
    (np.int64, "x", TypeError, "not a number"),
    (np.int64, None, TypeError, "not a number"),
])
def test_write_value_errors(value_dtype, value, error, match):
    idx = small(np.array([1, 2]), value_dtype=value_dtype)
    with pytest.raises(error, match=match):
        idx[3] = value
    assert 3 not in idx and len(idx) == 2


def test_values_that_fit_are_converted():
    idx = small(np.array([1]), np.array([0.5]), value_dtype=np.float32)
    idx[2] = 1  # an int into float values
    idx[3] = math.nan  # NaN is a float value
    idx[4] = np.float64(0.1)
    assert idx[2] == 1.0 and math.isnan(idx[3]) and idx[4] == np.float32(0.1)
    flags = small(np.array([1]), np.array([True]))
    flags[2] = 0
    flags[3] = np.True_
    assert flags.values.tolist() == [True, False, True]


def test_batch_shape_errors():
    idx = small(np.array([1, 2]))
    with pytest.raises(ValueError, match="length"):
        idx.update(np.array([1, 2, 3]), np.array([1, 2]))
    with pytest.raises(ValueError, match="1-D"):
        idx.update(np.array([[1, 2]]), np.array([[1, 2]]))
    with pytest.raises(TypeError):
        idx.update("12", np.array([1, 2]))
    with pytest.raises(TypeError, match="booleans"):
        idx.update(np.array([True]), np.array([1]))
    with pytest.raises(ValueError, match="missing"):
        idx.delete(np.array([1]), missing="maybe")
    with pytest.raises(ValueError, match="NaN"):
        idx.delete(np.array([1.0, math.nan]))
    assert len(idx) == 2


# --- semantics ----------------------------------------------------------------------------


def test_reads_see_buffered_writes():
    idx = DynamicRMI(np.array([10, 20, 30]), np.array([1, 2, 3]), buffer_size=1000)
    idx[15] = 7
    idx[20] = 8
    del idx[30]
    assert idx.merge_stats["buffered_writes"] == 3
    assert idx.get(15) == 7 and idx[20] == 8 and 30 not in idx and idx.get(30, "-") == "-"
    assert idx.pop(15) == 7 and 15 not in idx
    assert idx.merge_stats["buffered_writes"] > 0
    assert idx.lower_bound(25) == 2 and idx.upper_bound(20) == 2 and len(idx) == 2
    assert idx.merge_stats["buffered_writes"] == 0
    reference_check(idx, {10: 1, 20: 8})


def test_delete_and_pop_absent():
    idx = small(np.array([1, 2, 3]))
    for key in (4, 2.5, -(2**70)):
        with pytest.raises(KeyError):
            del idx[key]
        with pytest.raises(KeyError):
            idx.pop(key)
        assert idx.pop(key, "d") == "d"
    del idx[2]
    with pytest.raises(KeyError):
        del idx[2]
    with pytest.raises(ValueError):
        del idx[math.nan]
    reference_check(idx, {1: 0, 3: 2})


def test_delete_batch_raise_names_absent_keys_and_changes_nothing():
    idx = small(np.array([1, 2, 3]))
    with pytest.raises(KeyError, match=r"2 keys are not in the index: 7, 8") as exc:
        idx.delete(np.array([2, 7, 8]))
    assert "nothing was deleted" in str(exc.value)
    with pytest.raises(KeyError, match="2.5"):
        idx.delete(np.array([2.5]))
    reference_check(idx, {1: 0, 2: 1, 3: 2})
    assert idx.delete(np.array([2, 7, 2, 2.5]), missing="ignore") == 1
    assert idx.delete([], missing="raise") == 0
    reference_check(idx, {1: 0, 3: 2})


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_update_rejects_nan_keys_of_the_key_dtype(dtype):
    idx = DynamicRMI(np.array([1.0, 2.0, 3.0], dtype=dtype), np.array([10, 20, 30]))
    with pytest.raises(ValueError, match="NaN"):
        idx.update(np.array([2.5, np.nan], dtype=dtype), np.array([25, 99]))
    reference_check(idx, {1.0: 10, 2.0: 20, 3.0: 30})
    idx._check()


def test_python_int_lists_write_exactly():
    idx = DynamicRMI(np.array([5], dtype=np.uint64))
    idx.update([0, 2**63 + 1], [10, 20])
    assert idx.keys.tolist() == [0, 5, 2**63 + 1]
    assert idx.delete([0, 2**63 + 1]) == 2 and idx.keys.tolist() == [5]
    idx[2**63] = 7
    assert idx.delete([0, 2**63 + 1], missing="ignore") == 0 and idx.keys.tolist() == [5, 2**63]
    assert idx.get_batch([2**63, 2**63 + 1])[1].tolist() == [True, False]
    values = DynamicRMI(np.array([1, 2], dtype=np.uint64), np.array([0, 0], dtype=np.uint64))
    values.update(np.array([1, 2], dtype=np.uint64), [0, 2**63 + 1])
    assert values.values.tolist() == [0, 2**63 + 1]
    with pytest.raises(ValueError, match="does not fit the value dtype"):
        values.get_batch([3], default=-1)


def test_corrupt_main_raises_a_clear_error_at_retraining():
    idx = DynamicRMI(np.arange(0, 20_000, 2, dtype=np.uint64), merge_min=100)
    keys = idx._keys
    keys.flags.writeable = True
    keys[5000] = 3  # what a changed file loaded with verify=False would hold
    with pytest.raises(ValueError, match="data is corrupt"):
        idx._train(keys)


def test_update_last_value_wins_within_a_batch():
    idx = small(np.array([5]))
    idx.update(np.array([3, 5, 3, 9, 3]), np.array([1, 2, 3, 4, 5]))
    reference_check(idx, {3: 5, 5: 2, 9: 4})
    idx.update(np.array([], dtype=np.int64), np.array([], dtype=np.int64))
    reference_check(idx, {3: 5, 5: 2, 9: 4})


def _last_values(keys, values):
    """Sorted unique keys and each one's last value: what a batch upsert must leave."""
    model = dict(zip(keys.tolist(), values.tolist()))
    order = sorted(model)
    return np.array(order, dtype=keys.dtype), np.array([model[k] for k in order], dtype=values.dtype)


def _batches(dtype, rng):
    """Unsorted batches of ``dtype`` with repeats: over the whole range, a narrow one, keys
    clustered on a wide span (so many share their packed top bits that the sort falls back),
    a few keys next to others (mended by insertion), reversed, and two keys."""
    m = 3000
    if np.dtype(dtype).kind == "f":
        return [rng.standard_normal(m), np.round(rng.standard_normal(m) * 3), np.array([np.inf, -0.0, 0.0, -np.inf, 1.5])]
    info = np.iinfo(dtype)
    wide = rng.integers(info.min, info.max, m, endpoint=True, dtype=dtype)
    narrow = rng.integers(0, 40, m).astype(dtype)
    bits = min(20, 8 * np.dtype(dtype).itemsize - 2)
    clustered = np.concatenate([np.array([info.min, info.max, info.max], dtype=dtype),
                                np.array(info.max // 2, dtype=dtype) + rng.integers(0, 1 << bits, m).astype(dtype)])
    mended = np.concatenate([wide, wide[:300] + dtype(1), wide[:40]])  # a few keys share top bits
    return [wide, narrow, clustered, mended, np.sort(wide)[::-1].copy(), wide[:2]]


# Each key dtype compiles DynamicRMI's kernels anew (over a minute on a cold cache): the default
# run builds indexes of uint64, int64 and float64 keys; narrower dtypes run the sort itself here
# and whole indexes under -m slow.
_NARROW = [np.int32, np.uint16, np.int8]


@pytest.mark.parametrize("dtype", _NARROW + [np.uint64, np.int64, np.float64])
def test_sort_batch_keeps_the_last_value_of_each_key(dtype):
    """The sort of a write batch: by key, each key with its last value in the batch, on both
    paths (packed words, and the stable argsort when packed keys collide or are floats)."""
    from learnedidx.dynamic.writing import _sort_batch

    rng = np.random.default_rng(21)
    for batch in _batches(dtype, rng):
        batch = batch.astype(dtype)
        values = rng.integers(-10**12, 10**12, len(batch))
        before = batch.copy(), values.copy()
        keys, last = _sort_batch(batch, values, unique=False)
        assert np.array_equal(batch, before[0]) and np.array_equal(values, before[1])
        want_keys, want_last = _last_values(batch, values)
        assert keys.dtype == batch.dtype and np.array_equal(keys, want_keys) and np.array_equal(last, want_last)


@pytest.mark.parametrize("dtype", [np.uint64, np.int64, np.float64] + [pytest.param(d, marks=pytest.mark.slow)
                                                                     for d in _NARROW])
def test_batch_sort_keeps_the_last_value_of_each_key(dtype):
    """Write batches sort by key, each key keeping its last value in the batch, on both paths
    of the sort (packed words, and the stable argsort when packed keys collide or are floats)."""
    rng = np.random.default_rng(21)
    for batch in _batches(dtype, rng):
        batch = batch.astype(dtype)
        values = rng.integers(-10**12, 10**12, len(batch))
        before = batch.copy(), values.copy()
        idx = DynamicRMI(np.array([], dtype=dtype), np.array([], dtype=np.int64))
        idx.update(batch, values)
        assert np.array_equal(batch, before[0]) and np.array_equal(values, before[1])
        keys, last = _last_values(batch, values)
        assert np.array_equal(idx.keys, keys) and np.array_equal(idx.values, last)
        idx._check()


def _unpacked(keys):
    from learnedidx.dynamic import _batches as K

    packed = np.empty(len(keys), dtype=np.uint64)
    b = K.pack_batch(keys, packed)
    packed.sort()
    out_k, out_v = np.empty_like(keys), np.empty(len(keys), dtype=np.uint64)
    ordered, repeats = K.unpack_batch(packed, b, keys, np.arange(len(keys), dtype=np.uint64), out_k, out_v)
    return b, ordered, repeats, out_k, out_v


def test_packed_sort_mends_or_reports_collisions():
    """A wide span packs only the keys' top bits: keys sharing them come out of the word sort
    unordered. A few such keys are put in order (stably); a cluster of thousands is reported,
    so the caller sorts another way."""
    rng = np.random.default_rng(22)
    wide = rng.integers(0, 2**64 - 1, 5000, dtype=np.uint64, endpoint=True)
    close = np.concatenate([wide, wide[:300] + np.uint64(1), wide[300:400] - np.uint64(1), wide[:50]])
    b, ordered, repeats, out_k, out_v = _unpacked(close)
    assert b == 13 and ordered and repeats
    assert np.array_equal(out_k, np.sort(close, kind="stable"))
    assert np.array_equal(out_v, np.argsort(close, kind="stable"))
    cluster = np.concatenate([np.array([0, 2**64 - 1], dtype=np.uint64),
                              np.uint64(2**63) + rng.integers(0, 1 << 20, 5000).astype(np.uint64)])
    assert _unpacked(cluster)[1:3] == (False, False)
    narrow = cluster[2:] - np.uint64(2**63)  # a span of 20 bits: packed exactly
    b, ordered, repeats, out_k, out_v = _unpacked(narrow)
    assert ordered and repeats and np.array_equal(out_v, np.argsort(narrow, kind="stable"))


@pytest.mark.parametrize("dtype", [np.uint64, np.int64, np.int32, np.float64])
def test_find_sorted_matches_numpy(dtype):
    """The write path's search (a walk of main's samples, then an interpolated guess in a block
    of 64) finds exactly the present keys, at every size around the block edges, serial and on
    two parts; also on clustered keys, where the guesses miss and the whole block is searched."""
    from learnedidx.dynamic import _batches as K

    rng = np.random.default_rng(23)
    for n, clustered in product((1, 2, 63, 64, 65, 128, 129, 1000, 4099), (False, True)):
        if np.dtype(dtype).kind == "f":
            pool = np.unique(np.concatenate([rng.standard_normal(3 * n) * 1e6, [-np.inf, np.inf]]))
        else:
            info = np.iinfo(dtype)
            pool = np.unique(np.concatenate([rng.integers(info.min, info.max, 3 * n, dtype=dtype),
                                             np.array([info.min, info.max], dtype=dtype)]))
        if clustered:  # a dense run below sparse keys: blocks across the run's end guess wrong
            step = 1e-3 if np.dtype(dtype).kind == "f" else 1
            dense = (pool[1] + step * np.arange(1, 2 * n + 1)).astype(dtype)
            pool = np.unique(np.concatenate([pool[::8], dense[dense < pool[2]]]))
        main = np.sort(rng.choice(pool, min(n, len(pool)), replace=False)).astype(dtype)
        samples = np.ascontiguousarray(main[::64])
        for m in (1, 7, 500):
            # Also every key at a block's first and last position (the walk's edges).
            queries = np.sort(np.concatenate([rng.choice(pool, m), main[::64], main[63::64], main[-1:]]))
            at = np.minimum(np.searchsorted(main, queries), len(main) - 1)
            expected = np.where(main[at] == queries, at, -1)
            for parts in (0, 2):
                out = np.full(len(queries), -7, dtype=np.int64)
                if parts:
                    run_sliced(lambda a, b: K.find_sorted(main, samples, queries[a:b], out[a:b]), len(queries),
                               parts)
                else:
                    K.find_sorted(main, samples, queries, out)
                assert np.array_equal(out, expected), (n, m, parts)


def test_merges_refit_in_place_and_retrain():
    rng = np.random.default_rng(1)
    model = {}
    idx = DynamicRMI(dtype=np.uint64, merge_min=16, merge_fraction=0.1, chunk_size=8, keys_per_leaf=8,
                     buffer_size=50)
    for step in range(3000):
        k = int(rng.integers(0, 5000))
        if step % 5 == 4 and model:
            k = int(rng.choice(list(model)))
            del idx[k]
            del model[k]
        else:
            idx[k] = step
            model[k] = step
    reference_check(idx, model)
    stats = idx.merge_stats
    assert stats["merges"] > 10
    assert stats["full_retrains"] < stats["merges"]  # most merges only refit the leaves
    assert idx._kbuf is not None  # merged into its own buffers
    # Random keys crowding into the first leaves of perfectly linear ones: refitting cannot match
    # the trained precision, so retrain_bits=0 forces a full retraining.
    forced = DynamicRMI(np.arange(0, 40000, 10), retrain_bits=0.0, merge_min=1, keys_per_leaf=16)
    crowd = np.unique(rng.integers(0, 2000, 1500))
    forced.update(crowd, np.arange(len(crowd)))
    forced.merge()
    assert forced.merge_stats["full_retrains"] >= 2
    forced._check()


def test_merge_with_only_tombstones_and_emptying():
    idx = small(np.arange(50))
    idx.delete(np.arange(0, 50, 2))
    idx.merge()
    reference_check(idx, {k: k for k in range(1, 50, 2)})
    idx.delete(np.arange(1, 50, 2))
    idx.merge()
    reference_check(idx, {})
    idx[3] = 3
    idx.merge()
    reference_check(idx, {3: 3})


def test_snapshots_do_not_change_with_later_writes():
    idx = small(np.array([1, 2, 3]), np.array([10, 20, 30]))
    keys, values = idx.keys, idx.values
    assert not keys.flags.writeable and not values.flags.writeable
    idx[2] = 99
    idx[0] = 5
    idx.merge()
    assert keys.tolist() == [1, 2, 3] and values.tolist() == [10, 20, 30]
    r_keys, r_values = idx.range(0, 3)
    idx[1] = -1
    assert r_keys.tolist() == [0, 1, 2] and r_values.tolist() == [5, 10, 99]
    assert list(idx) == [0, 1, 2, 3]


def test_callers_arrays_are_never_written():
    keys, values = np.array([1, 2, 3]), np.array([10, 20, 30])
    idx = DynamicRMI(keys, values, copy=False, merge_min=1)
    idx[2] = 99
    idx.merge()
    assert values.tolist() == [10, 20, 30] and idx[2] == 99


def test_float_keys():
    idx = small(np.array([-0.0, 1.5, math.inf]))
    assert len(idx) == 3 and 0.0 in idx
    idx[0.0] = 7
    assert len(idx) == 3 and idx[-0.0] == 7
    idx[-math.inf] = 1
    assert idx.lower_bound(-1e308) == 1 and idx.upper_bound(math.inf) == 4 and idx.lower_bound(1) == 2
    with pytest.raises(ValueError):
        idx.lower_bound(math.nan)
    assert idx.get(2**80) is None


def test_integer_extremes():
    top = 2**64 - 1
    idx = small(np.array([0, 2**63, top], dtype=np.uint64))
    idx[top - 1] = 5
    del idx[2**63]
    assert idx.keys.tolist() == [0, top - 1, top]
    assert idx.lower_bound(2**63) == 1 and idx.lower_bound(2.0**64) == 3 and idx.upper_bound(-1) == 0
    assert idx.contains(np.array([top, 2**63], dtype=np.uint64)).tolist() == [True, False]
    signed = small(np.array([-(2**63), 2**63 - 1]))
    signed[0] = 1
    assert signed.lower_bound(np.array([-(2**63), 0, 2**63 - 1])).tolist() == [0, 1, 2]


@pytest.mark.parametrize("dtype", [np.uint64, np.float64])
def test_large_batches_match_numpy(dtype):
    """Batches past the parallel threshold and the delta directory agree with numpy."""
    rng = np.random.default_rng(7)
    keys = np.unique(rng.integers(0, 2**40, 60_000)).astype(dtype)
    idx = DynamicRMI(keys, np.arange(len(keys)), merge_fraction=1.0, keys_per_leaf=64)
    new = np.unique(rng.integers(0, 2**40, 30_000)).astype(dtype)
    idx.update(new, np.arange(len(new)) + 10**6)
    gone = rng.choice(keys, 10_000, replace=False)
    idx.delete(gone, missing="ignore")
    assert idx.merge_stats["delta_keys"] > 0 and idx.merge_stats["tombstones"] > 0
    for merged in (False, True):
        if merged:
            idx.merge()
        ref_k, ref_v = idx.keys, idx.values
        queries = np.concatenate([rng.choice(ref_k, 20_000), rng.integers(0, 2**40, 20_000).astype(dtype)])
        assert np.array_equal(idx.lower_bound(queries), np.searchsorted(ref_k, queries, "left"))
        assert np.array_equal(idx.upper_bound(queries), np.searchsorted(ref_k, queries, "right"))
        pos = np.minimum(np.searchsorted(ref_k, queries), len(ref_k) - 1)
        present = ref_k[pos] == queries
        values, found = idx.get_batch(queries, default=-1)
        assert np.array_equal(found, present) and np.array_equal(idx.contains(queries), present)
        assert np.array_equal(values, np.where(present, ref_v[pos], -1))
        idx._check()


@pytest.mark.parametrize("dtype", [np.uint64, np.int64, np.float64])
def test_parallel_merges_match_serial(dtype):
    """Merges cut in two halves on two threads (in place, into new buffers, after tombstones),
    the parallel refit and the parallel batch search leave exactly what the serial ones leave."""
    if numba.get_num_threads() < 2:
        pytest.skip("one Numba thread: no parallel path")
    rng = np.random.default_rng(11)
    keys = np.unique(rng.integers(-2**30, 2**30, 20_000)).astype(dtype)
    options = dict(merge_fraction=0.1, merge_min=64, chunk_size=16, keys_per_leaf=32)
    start = np.arange(len(keys))
    serial = DynamicRMI(keys, start, **options, parallel_threshold=10**9)
    parallel = DynamicRMI(keys, start, **options, parallel_threshold=1)
    model = dict(zip(keys.tolist(), start.tolist()))
    for step in range(12):
        new = rng.integers(-2**30, 2**30, 1500).astype(dtype)
        values = np.arange(len(new)) + step * 10_000
        for idx in (serial, parallel):
            idx.update(new, values)
        model.update(zip(new.tolist(), values.tolist()))
        if step % 3 == 2:
            gone = rng.choice(np.array(sorted(model), dtype=dtype), 800, replace=False)
            for idx in (serial, parallel):
                idx.delete(gone)
            for k in gone.tolist():
                del model[k]
        if step % 4 == 3:
            for idx in (serial, parallel):
                idx.merge()
    assert parallel.merge_stats["merges"] >= 6
    for a, b in [(serial.keys, parallel.keys), (serial.values, parallel.values),
                 (serial._rmi.arrays.params.view(np.int64), parallel._rmi.arrays.params.view(np.int64)),
                 (serial._run_start, parallel._run_start), (serial._run_leaf, parallel._run_leaf)]:
        assert np.array_equal(a, b)
    reference_check(parallel, model)


def test_parallel_batch_inserts_into_the_delta_match_serial():
    """Batches merged into the delta's chunks by two threads (each half taking new chunks from
    its share of the free stack) hold what the serial insert holds, overwrites included."""
    if numba.get_num_threads() < 2:
        pytest.skip("one Numba thread: no parallel path")
    rng = np.random.default_rng(13)
    keys = np.unique(rng.integers(0, 2**40, 5000)).astype(np.uint64)
    options = dict(merge_fraction=1e6, chunk_size=8, keys_per_leaf=16)  # never merges
    serial = DynamicRMI(keys, np.arange(len(keys)), **options, parallel_threshold=10**9)
    parallel = DynamicRMI(keys, np.arange(len(keys)), **options, parallel_threshold=1)
    model = dict(zip(keys.tolist(), range(len(keys))))
    inserted = np.zeros(0, dtype=np.uint64)
    for step in range(8):
        new = rng.integers(0, 2**40, 3000).astype(np.uint64)
        if len(inserted):
            new[:600] = rng.choice(inserted, 600)  # overwrite keys in the delta
        new[600:700] = rng.choice(keys, 100)  # and keys in main
        values = np.arange(len(new)) + 10_000 * (step + 1)
        for idx in (serial, parallel):
            idx.update(new, values)
        model.update(zip(new.tolist(), values.tolist()))
        inserted = np.union1d(inserted, new[700:])
        parallel._check()
        for a, b in zip(serial._delta_flat(), parallel._delta_flat()):
            assert np.array_equal(a, b)
    assert parallel.merge_stats["merges"] == 0 and parallel.merge_stats["delta_keys"] > 10_000
    reference_check(parallel, model)


# --- conformance ----------------------------------------------------------------------------


def _built_by_writes(keys, values):
    """A DynamicRMI holding keys/values, reached through every kind of write."""
    half = len(keys) // 2
    idx = DynamicRMI(keys[:half], values[:half], **SMALL)
    for k, v in zip(keys[half:half + 5].tolist(), values[half:half + 5].tolist()):
        idx[k] = v
    idx.update(keys[half + 5:], values[half + 5:])
    extra = [q for q in interesting_queries(keys)[:40] if q not in set(keys.tolist())]
    for q in extra:
        try:
            idx[q] = 0
        except (ValueError, TypeError):
            continue
        del idx[q]
    return idx


def _conformance(dtypes, max_examples):
    @settings(max_examples=max_examples, deadline=None, derandomize=True, suppress_health_check=list(HealthCheck))
    @given(keys=key_arrays(dtypes=dtypes, max_size=120))
    def run(keys):
        keys = np.unique(keys)
        values = np.arange(len(keys), dtype=np.int64) * 10 + 7
        check_index(_built_by_writes, keys, values)

    run()


def test_conformance_after_writes():
    _conformance((np.int64, np.uint64, np.float64), 20)


@pytest.mark.slow
def test_conformance_after_writes_every_dtype():
    """Every other key dtype (each one compiles the kernels anew: minutes on a cold cache)."""
    from learnedidx._coerce import KEY_DTYPES

    _conformance(tuple(d for d in KEY_DTYPES if d not in (np.int64, np.uint64, np.float64)), 40)


# --- saving, loading, pickling ----------------------------------------------------------------


def _pending_index():
    rng = np.random.default_rng(3)
    idx = DynamicRMI(np.arange(0, 2000, 2, dtype=np.uint64), np.arange(1000), merge_fraction=1.0,
                     keys_per_leaf=16, buffer_size=100)
    idx.update(np.arange(1, 600, 2, dtype=np.uint64), np.arange(300) + 5000)
    idx.delete(np.arange(0, 400, 4, dtype=np.uint64))
    idx[10**6] = 1
    del idx[6]
    assert idx.merge_stats["delta_keys"] and idx.merge_stats["tombstones"]
    return idx, rng.integers(0, 2100, 500).astype(np.uint64)


def _same(a, b, queries):
    assert np.array_equal(a.keys, b.keys) and np.array_equal(a.values, b.values)
    assert np.array_equal(a.lower_bound(queries), b.lower_bound(queries))
    assert all(np.array_equal(x, y) for x, y in zip(a.get_batch(queries), b.get_batch(queries)))
    assert a.config == b.config and a.merge_stats["main_keys"] == b.merge_stats["main_keys"]


@pytest.mark.parametrize("mmap", [True, False])
def test_save_load_keeps_delta_and_tombstones(tmp_path, mmap):
    idx, queries = _pending_index()
    path = tmp_path / "dyn.lidx"
    idx.save(path)
    loaded = learnedidx.load(path, mmap=mmap)
    assert type(loaded) is DynamicRMI and loaded.merge_stats["delta_keys"] == idx.merge_stats["delta_keys"]
    loaded._check()
    _same(loaded, idx, queries)
    # Writes to a loaded (possibly mapped, read-only) index copy what they change.
    loaded[3] = 42
    del loaded[10]
    loaded.update(np.array([1, 5], dtype=np.uint64), np.array([-1, -5]))
    loaded.merge()
    loaded._check()
    assert loaded[3] == 42 and 10 not in loaded and loaded[1] == -1
    _same(learnedidx.load(path, mmap=mmap, verify=True), idx, queries)


def test_pickle_and_copy():
    idx, queries = _pending_index()
    copies = [pickle.loads(pickle.dumps(idx)), copy.copy(idx), copy.deepcopy(idx)]
    for copied in copies:
        copied._check()
        _same(copied, idx, queries)
        copied[12345] = 1
        copied.merge()
        assert 12345 in copied and 12345 not in idx
    idx.update(np.arange(2001, 2200, 2, dtype=np.uint64), np.arange(100))
    idx.merge()  # in place: the copies must not see it
    assert 2001 in idx and not any(2001 in c for c in copies)
    for copied in copies:
        copied._check()


def test_load_rejects_inconsistent_state(tmp_path, monkeypatch):
    idx, _ = _pending_index()
    state = idx._state

    def broken():
        config, arrays = state()
        arrays["tombstones"] = arrays["tombstones"] + 10**6
        return config, arrays

    monkeypatch.setattr(idx, "_state", broken)
    idx.save(tmp_path / "bad.lidx")
    with pytest.raises(IndexFileError, match="tombstones"):
        learnedidx.load(tmp_path / "bad.lidx")


def test_check_catches_corruption():
    idx, _ = _pending_index()
    idx._check()
    idx._delta.cum[1] += 1
    with pytest.raises(AssertionError, match="cumulative"):
        idx._check()
    idx._delta.cum[1] -= 1
    idx._tomb.bits[0] ^= np.uint64(1 << 5)
    with pytest.raises(AssertionError, match="tombstone"):
        idx._check()


# --- the benchmark, at toy size ---------------------------------------------------------------


def test_bench_updates_smoke(capsys):
    from bench import updates

    rows = updates.main(["--n", "20K", "--batch", "2K", "--single-ops", "5K", "--batch-ops", "4",
                         "--update-keys", "10K", "--fractions", "0.05", "--indexes", "DynamicRMI,SortedDict"])
    out = capsys.readouterr().out
    assert "DynamicRMI" in out and "read-heavy" in out
    assert any(r["index"] == "DynamicRMI" and r["ops_per_s"] > 0 for r in rows)


def test_scalar_entries_compile_once_per_dtype_even_for_a_get_taken_early(monkeypatch):
    """``g = idx.get`` taken before the entry points exist: its first call compiles them, later
    calls and other indexes of the dtype use them (an early get once looked the compiled entry
    up again on every call, ~140 us)."""
    from learnedidx.dynamic import index as dynamic

    monkeypatch.setattr(dynamic, "_ENTRY_SLOTS", {})
    calls = []
    compiled_entry = dynamic.compiled_entry
    monkeypatch.setattr(dynamic, "compiled_entry", lambda *a: calls.append(1) or compiled_entry(*a))
    keys = np.arange(0, 300, 3, dtype=np.int64)
    idx = DynamicRMI(keys, keys * 2)
    g = idx.get
    assert calls == []
    assert [g(k) for k in (0, 3, 4, 297, 300)] == [0, 6, None, 594, None]
    assert [g(k, -1) for k in (6, 7)] == [12, -1]
    other = DynamicRMI(keys + 1, keys)
    assert other.lower_bound(4) == 1 and other.get(4) == 3 and idx.upper_bound(3) == 2
    assert len(calls) == 2  # rank_at and find_at, once


#: A DynamicRMI pickled by commit f1fd273, when the class lived in the module learnedidx/dynamic.py:
#: keys 2, 3, 5, 7, 11 (int64) with values ten times them, then ``d[13] = 130; del d[3]``.
_PICKLE_BEFORE_PACKAGE = (
    "gASVjgUAAAAAAACMEmxlYXJuZWRpZHguZHluYW1pY5SMCV91bnBpY2tsZZSTlGgAjApEeW5hbWljUk1JlJOUfZQojA1idWls"
    "ZF90aW1lX25zlIoFB0YPZQKMCXBvc2l0aW9uc5SJjAdvcHRpb25zlH2UKIwObWVyZ2VfZnJhY3Rpb26URz+pmZmZmZmajAlt"
    "ZXJnZV9taW6UTQAQjAtidWZmZXJfc2l6ZZRKAAABAIwMcmV0cmFpbl9iaXRzlEc/8AAAAAAAAIwKY2h1bmtfc2l6ZZRLgIwD"
    "cm1plH2UKIwGc3RhZ2VzlIwGbGluZWFylGgSaBKHlIwQYnJhbmNoaW5nX2ZhY3RvcpROjA1rZXlzX3Blcl9sZWFmlEuAjAZz"
    "ZWFyY2iUjAZiaW5hcnmUjBJwYXJhbGxlbF90aHJlc2hvbGSUTQBAjAtpbnRlcmxlYXZlZJSIjAd2YXJpYW50lIwEYXV0b5SM"
    "BXNsb3RzlEsQjAptYXhfd2luZG93lE0AAXV1jAtybWlfb3B0aW9uc5R9lChoEWgSaBJoEoeUaBROaBVLgGgWaBdoGE0AQGgZ"
    "iGgaaBtoHEsQaB1OdYwJcm1pX3N0YXRzlH2UKIwJbWF4X2Vycm9ylEsBjA5hdmdfbG9nMl9lcnJvcpRHP+MzMzMzMzOMC21l"
    "YW5fd2luZG93lEdAAAAAAAAAAIwNaHlicmlkX2xlYXZlc5RLAHWMB3RyYWluZWSUfZQojAFulEsFaCRHP+MzMzMzMzN1dX2U"
    "KIwEa2V5c5SMFm51bXB5Ll9jb3JlLm11bHRpYXJyYXmUjAxfcmVjb25zdHJ1Y3SUk5SMBW51bXB5lIwHbmRhcnJheZSTlEsA"
    "hZRDAWKUh5RSlChLAUsFhZRoL4wFZHR5cGWUk5SMAmk4lImIh5RSlChLA4wBPJROTk5K/////0r/////SwB0lGKJQygCAAAA"
    "AAAAAAMAAAAAAAAABQAAAAAAAAAHAAAAAAAAAAsAAAAAAAAAlHSUYowGdmFsdWVzlGguaDFLAIWUaDOHlFKUKEsBSwWFlGg7"
    "iUMoFAAAAAAAAAAeAAAAAAAAADIAAAAAAAAARgAAAAAAAABuAAAAAAAAAJR0lGKMBG1ldGGUaC5oMUsAhZRoM4eUUpQoSwFL"
    "D4WUaDuJQ3gDAAAAAAAAAAUAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAEAAAAAAAAAAAAAAAAAAAAEAAAAAAAAAAAAAAAAAAAA"
    "AQAAAAAAAAAEAAAAAAAAAAQAAAAAAAAAAAAAAAAAAAABAAAAAAAAAAgAAAAAAAAABAAAAAAAAACUdJRijAZwYXJhbXOUaC5o"
    "MUsAhZRoM4eUUpQoSwFLDIWUaDiMAmY4lImIh5RSlChLA2g8Tk5OSv////9K/////0sAdJRiiUNgAgAAAAAAAAAAAAAAAAC2"
    "PzQzMzMzM7c/AAAAAAAAAAACAAAAAAAAAAAAAAAAALY/NDMzMzMztz8AAAAAAAAAAAIAAAAAAAAAAAAAAACA2z8AAAAAAADd"
    "PwAAAAACAAAAlHSUYowJcnVuX3N0YXJ0lGguaDFLAIWUaDOHlFKUKEsBSwKFlGg7iUMQAAAAAAAAAAAFAAAAAAAAAJR0lGKM"
    "CHJ1bl9sZWFmlGguaDFLAIWUaDOHlFKUKEsBSwGFlGg7iUMIAAAAAAAAAACUdJRijAp0b21ic3RvbmVzlGguaDFLAIWUaDOH"
    "lFKUKEsBSwGFlGg7iUMIAQAAAAAAAACUdJRijApkZWx0YV9rZXlzlGguaDFLAIWUaDOHlFKUKEsBSwGFlGg7iUMIDQAAAAAA"
    "AACUdJRijAxkZWx0YV92YWx1ZXOUaC5oMUsAhZRoM4eUUpQoSwFLAYWUaDuJQwiCAAAAAAAAAJR0lGJ1h5RSlC4="
)


def test_a_pickle_made_before_the_package_still_loads():
    import base64

    idx = pickle.loads(base64.b64decode("".join(_PICKLE_BEFORE_PACKAGE)))
    idx._check()
    assert isinstance(idx, DynamicRMI)
    assert idx.keys.tolist() == [2, 5, 7, 11, 13]
    assert idx.values.tolist() == [20, 50, 70, 110, 130]
    assert idx.lower_bound(6) == 2 and idx.get(3) is None
