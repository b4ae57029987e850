"""RMI: conformance across configurations, edge cases, and every bad-input error."""

from __future__ import annotations

import importlib.util
import pickle

import numpy as np
import pytest

from learnedidx import RMI, RMIConfig
from learnedidx.testing import check_conformance, check_index

CONFIGS = [
    dict(),
    dict(stages=("linear", "linear")),
    dict(stages=("linear_spline", "linear_spline"), search="linear"),
    dict(stages=("radix", "linear"), search="exponential"),
    dict(stages=("cubic", "linear", "linear_spline"), branching_factor=(4, 64)),
    dict(stages=("radix", "linear", "linear"), search="linear"),
    # Four stages: routing past the third stage reads meta (learnedidx._rmi_kernels.plan_route).
    dict(stages=("cubic", "linear", "linear", "linear"), branching_factor=(4, 16, 64)),
    # More leaves than keys: most leaves are empty.
    dict(stages=("linear", "linear"), branching_factor=4096, search="exponential", interleaved=False),
    # One leaf: windows are wide and absent keys are often outside them.
    dict(stages=("cubic", "linear"), branching_factor=1, max_window=None),
    # Hybrid leaves: most leaves (stride 1), and one leaf under a cubic root (stride 2).
    dict(max_window=2),
    dict(stages=("cubic", "linear"), branching_factor=1, max_window=4, variant="amac"),
]


@pytest.mark.parametrize("options", CONFIGS, ids=lambda o: ",".join(f"{k}={v}" for k, v in o.items()) or "default")
def test_conformance(options):
    check_conformance(lambda keys, values: RMI(keys, values, **options), max_examples=40)


def _lognormal(n, seed):
    rng = np.random.default_rng(seed)
    return np.unique((rng.lognormal(0, 2, n) * 1e9).astype(np.uint64))


def _clustered(n, seed):
    rng = np.random.default_rng(seed)
    starts = np.sort(rng.integers(0, 2**62, 50, dtype=np.uint64))
    runs = [s + np.arange(n // 50, dtype=np.uint64) * rng.integers(1, 4) for s in starts]
    return np.sort(np.concatenate(runs))


@pytest.mark.parametrize("make", [_lognormal, _clustered], ids=["lognormal", "clustered"])
@pytest.mark.parametrize("options", CONFIGS[:5] + [dict(interleaved=False), dict(variant="amac", slots=5),
                                                   dict(keys_per_leaf=4096)], ids=range(8))
def test_medium_sets_against_searchsorted(make, options):
    """Many leaves and the parallel batch path (more queries than parallel_threshold)."""
    keys = make(60_000, seed=3)
    idx = RMI(keys, **options)
    idx._check()
    rng = np.random.default_rng(4)
    queries = np.concatenate([keys, keys + np.uint64(1), keys - np.uint64(1),
                              rng.integers(0, 2**64 - 1, 20_000, dtype=np.uint64, endpoint=True)])
    for side, method in (("left", idx.lower_bound), ("right", idx.upper_bound)):
        assert np.array_equal(method(queries), np.searchsorted(keys, queries, side=side))
    assert idx.contains(keys).all()


def test_cubic_root_over_subnormal_floats():
    """1 / span overflows for a span of subnormals (hypothesis found it): the root degrades to
    a constant instead of failing to fit."""
    keys = np.array([0.0, 5e-324, 1e-323, 1.5e-323])
    idx = RMI(keys, stages=("cubic", "linear"))
    idx._check()
    queries = np.array([-1.0, 0.0, 5e-324, 7e-324, 1.5e-323, 1.0])
    assert np.array_equal(idx.lower_bound(queries), np.searchsorted(keys, queries))
    assert np.array_equal(idx.upper_bound(queries), np.searchsorted(keys, queries, side="right"))


def test_dense_keys_beyond_2_53_are_exact():
    keys = np.uint64(2**63) + np.arange(0, 3000, 3, dtype=np.uint64)
    idx = RMI(keys)
    idx._check()
    for k in keys[::37].tolist():
        assert idx.lower_bound(k) == idx.lower_bound(np.uint64(k)) == int(np.searchsorted(keys, np.uint64(k)))
        assert idx.lower_bound(k + 1) == int(np.searchsorted(keys, np.uint64(k + 1)))
        assert k in idx and (k + 1) not in idx
    # float64 cannot tell 2**63 + 1 from 2**63: an exact index must.
    assert idx.lower_bound(2**63 + 1) == 1
    assert idx.upper_bound(float(2**63)) == 1
    assert idx.lower_bound(np.int64(-1)) == 0
    assert idx.lower_bound(-(10**30)) == 0 and idx.lower_bound(10**30) == len(keys)


def test_python_int_outside_dtype():
    idx = RMI(np.array([0, 5, 2**64 - 1], dtype=np.uint64))
    assert idx.lower_bound(-1) == 0
    assert idx.upper_bound(-1) == 0
    assert idx.lower_bound(2**64) == 3
    assert idx.upper_bound(2**64 - 1) == 3
    assert -1 not in idx and 2**64 not in idx
    assert np.array_equal(idx.lower_bound(np.array([-1, 6], dtype=np.int64)), [0, 2])


def test_values_follow_keys_and_first_duplicate_wins():
    keys = np.array([3, 1, 2, 1, 3], dtype=np.int32)
    values = np.array(["c0", "a0", "b", "a1", "c1"])
    idx = RMI(keys, values)
    assert idx.keys.tolist() == [1, 1, 2, 3, 3]
    assert idx.values.tolist() == ["a0", "a1", "b", "c0", "c1"]
    assert idx[1] == "a0" and idx[3] == "c0"
    assert idx.get(4, "none") == "none"
    with pytest.raises(KeyError):
        idx[4]
    found_values, found = idx.get_batch(np.array([1, 4, 3]), default="-")
    assert found.tolist() == [True, False, True]
    assert found_values.tolist() == ["a0", "-", "c0"]
    k, v = idx.range(1, 3)
    assert k.tolist() == [1, 1, 2] and v.tolist() == ["a0", "a1", "b"]
    assert not k.flags.writeable


def test_positions_are_default_values():
    idx = RMI(np.array([10.5, 2.0, 7.25]))
    assert idx.values.tolist() == [0, 1, 2]
    assert idx[10.5] == 2 and idx.get(7.25) == 1
    values, found = idx.get_batch([2.0, 3.0])
    assert values.dtype == np.int64 and values[0] == 0 and found.tolist() == [True, False]


def test_empty_and_single_key():
    empty = RMI(np.array([], dtype=np.uint64))
    assert len(empty) == 0 and empty.lower_bound(5) == 0 and empty.upper_bound(5) == 0
    assert 5 not in empty and empty.get(5) is None
    assert empty.lower_bound(np.arange(3)).tolist() == [0, 0, 0]
    one = RMI(np.array([7], dtype=np.int8))
    assert [one.lower_bound(q) for q in (6, 7, 8)] == [0, 0, 1]
    assert [one.upper_bound(q) for q in (6, 7, 8)] == [0, 1, 1]
    assert 7 in one and 7.0 in one and 7.5 not in one


def test_float_queries_on_integer_keys_and_back():
    idx = RMI(np.array([1, 2, 3], dtype=np.int64))
    assert idx.lower_bound(1.5) == 1 and idx.upper_bound(1.5) == 1
    assert idx.lower_bound(float("inf")) == 3 and idx.upper_bound(float("-inf")) == 0
    assert 2.0 in idx and 2.5 not in idx
    f = RMI(np.array([0.5, 1.0, 2**53], dtype=np.float64))
    assert f.lower_bound(2**53 + 1) == 3  # an int that float64 would round down to 2**53
    assert f.upper_bound(2**53 + 1) == 3
    assert (2**53 + 1) not in f and 2**53 in f
    f32 = RMI(np.array([0.7, 0.8], dtype=np.float32))
    assert float(np.float32(0.7)) < 0.7
    assert f32.lower_bound(0.7) == 1 and f32.upper_bound(0.7) == 1
    assert 0.7 not in f32 and float(np.float32(0.7)) in f32


def test_array_shapes_and_types():
    idx = RMI(np.arange(0, 100, 2, dtype=np.uint16))
    q = np.arange(12).reshape(3, 4)
    out = idx.lower_bound(q)
    assert out.shape == (3, 4) and out.dtype == np.int64
    assert np.array_equal(out, np.searchsorted(idx.keys, q))
    assert idx.lower_bound([1, 2, 3]).tolist() == [1, 1, 2]
    assert idx.contains(np.array([[0, 1]])).tolist() == [[True, False]]
    assert isinstance(idx.lower_bound(np.uint16(4)), int)
    zero_d = idx.lower_bound(np.array(4))
    assert zero_d.shape == () and int(zero_d) == 2


def test_predict_brackets_present_keys():
    keys = _lognormal(20_000, seed=5)
    idx = RMI(keys)
    pos, lo, hi = idx.predict(keys)
    lb = np.searchsorted(keys, keys)
    assert ((lo <= lb) & (lb <= hi)).all()
    p, a, b = idx.predict(int(keys[100]))
    assert isinstance(p, int) and a <= 100 <= b
    assert idx.max_error >= 0 and idx.avg_log2_error >= 0 and idx.build_time_ns > 0
    assert idx.size_in_bytes() == sum(a.nbytes for a in idx.arrays)
    assert idx.model_counts[0] == 1


def test_check_detects_a_broken_window():
    idx = RMI(_lognormal(5000, seed=6), stages=("linear", "linear"), branching_factor=16)
    idx._check()
    params = idx.arrays.params.copy()
    errors = params[-16 * 4:].reshape(16, 4)[:, 3:].view(np.int32)
    errors[:, 0] = 0
    errors[:, 1] = 0
    idx = RMI.from_arrays(idx.keys, idx.arrays._replace(params=params), idx.config, idx.stats)
    with pytest.raises(AssertionError, match="outside their predicted window"):
        idx._check()
    # Answers stay exact even with a wrong model: the search widens the window.
    keys = idx.keys
    assert np.array_equal(idx.lower_bound(keys), np.searchsorted(keys, keys))


def test_pickle_round_trip():
    keys = _lognormal(3000, seed=7)
    idx = RMI(keys, stages=("radix", "linear"))
    clone = pickle.loads(pickle.dumps(idx))
    clone._check()
    assert np.array_equal(clone.lower_bound(keys + np.uint64(1)), idx.lower_bound(keys + np.uint64(1)))
    assert clone.lower_bound(int(keys[10])) == 10


def test_caller_arrays_untouched_and_copied():
    keys = np.array([5, 3, 9], dtype=np.int64)
    values = np.array([50, 30, 90])
    idx = RMI(keys, values)
    assert keys.tolist() == [5, 3, 9] and values.tolist() == [50, 30, 90]
    assert keys.flags.writeable and values.flags.writeable
    sorted_keys = np.array([1, 2, 3], dtype=np.int64)
    idx = RMI(sorted_keys)
    sorted_keys[0] = 100  # the default copy protects the index
    assert idx.keys.tolist() == [1, 2, 3]
    shared = RMI(sorted_keys[1:], copy=False)
    assert np.shares_memory(shared.keys, sorted_keys) and sorted_keys.flags.writeable


@pytest.mark.parametrize(
    "keys, values, options, error, match",
    [
        (np.zeros((2, 2)), None, {}, ValueError, "keys must be 1-D"),
        (np.array([1.0, np.nan]), None, {}, ValueError, "NaN"),
        (np.array(["a", "b"]), None, {}, TypeError, "keys must have an integer or float dtype"),
        (np.array([1, 2], dtype=object), None, {}, TypeError, "keys"),
        (np.array([True, False]), None, {}, TypeError, "booleans"),
        (np.array([1 + 1j]), None, {}, TypeError, "keys"),
        (np.array(["2020-01-01"], dtype="datetime64[D]"), None, {}, TypeError, "view"),
        ("abc", None, {}, TypeError, "keys"),
        (np.array([2, 1]), None, {"assume_sorted": True}, ValueError, "not sorted"),
        (np.array([1, 2]), np.array([1]), {}, ValueError, "values has length 1"),
        (np.array([1, 2]), np.zeros((2, 2)), {}, ValueError, "values must be 1-D"),
        (np.array([1, 2]), None, {"stages": ("nope", "linear")}, ValueError, "unknown stage model 'nope'"),
        (np.array([1, 2]), None, {"stages": ("linear", "cubic")}, ValueError, "can only be the root"),
        (np.array([1, 2]), None, {"stages": ("linear",)}, ValueError, "at least two stages"),
        (np.array([1, 2]), None, {"stages": "linear"}, TypeError, "tuple of model names"),
        (np.array([1, 2]), None, {"branching_factor": 0}, ValueError, "branching_factor"),
        (np.array([1, 2]), None, {"branching_factor": (2, 3, 4)}, ValueError, "one count per stage"),
        (np.array([1, 2]), None, {"search": "magic"}, ValueError, "unknown search"),
        (np.array([1, 2]), None, {"keys_per_leaf": 0}, ValueError, "keys_per_leaf"),
        (np.array([1, 2]), None, {"parallel_threshold": -1}, ValueError, "parallel_threshold"),
        (np.array([1, 2]), None, {"variant": "pipeline"}, ValueError, "unknown variant"),
        (np.array([1, 2]), None, {"slots": 0}, ValueError, "slots"),
        (np.array([1, 2]), None, {"slots": 2.5}, ValueError, "slots"),
        (np.array([1, 2]), None, {"leaves": 4}, TypeError, "unknown options"),
        (np.array([1, 2]), None, {"config": RMIConfig(), "search": "linear"}, TypeError, "not both"),
        (np.array([1, 2]), None, {"config": {"search": "linear"}}, TypeError, "RMIConfig"),
    ],
)
def test_bad_input_errors(keys, values, options, error, match):
    with pytest.raises(error, match=match):
        RMI(keys, values, **options)


@pytest.mark.parametrize(
    "query, error",
    [
        (float("nan"), ValueError),
        (np.float32("nan"), ValueError),
        (np.array([1.0, np.nan]), ValueError),
        ("5", TypeError),
        (None, TypeError),
        (np.array(["a"]), TypeError),
        (1 + 2j, TypeError),
        ([1, "a"], TypeError),
    ],
)
def test_bad_query_errors(query, error):
    idx = RMI(np.array([1, 2, 3], dtype=np.uint64))
    for method in (idx.lower_bound, idx.upper_bound, idx.contains, idx.get_batch):
        with pytest.raises(error):
            method(query)
    if np.ndim(query) == 0 and not isinstance(query, list):
        with pytest.raises(error):
            idx.get(query)
        with pytest.raises(error):
            query in idx  # noqa: B015


def test_check_index_catches_a_wrong_index():
    """The conformance check itself must fail on an index that is off by one."""

    class OffByOne(RMI):
        def _search_array(self, queries, mode):
            out = super()._search_array(queries, mode)
            return np.minimum(out + (queries == queries.max()), len(self.keys))

    with pytest.raises(AssertionError):
        check_index(OffByOne, np.array([1, 2, 3], dtype=np.int64))


def test_lists_of_python_ints_stay_exact():
    """numpy types [0, 2**63 + 1] as float64 (rounding the big int) and [2**70, -inf] as
    objects: lists are converted exactly, and infinities on integer keys get their answers."""
    keys = np.array([1, 2**63 + 1], dtype=np.uint64)
    idx = RMI(keys)
    assert idx.upper_bound([0, 2**63 + 1]).tolist() == [0, 2]
    assert idx.lower_bound([0, 2**63 + 1, 2**63]).tolist() == [0, 1, 1]
    assert idx.contains([0, 2**63 + 1]).tolist() == [False, True]
    assert RMI(np.array([2**62 + 1], dtype=np.int64)).upper_bound([2**62 + 1, 0.5]).tolist() == [1, 0]
    small = RMI(np.array([1, 2, 3], dtype=np.int64))
    assert small.lower_bound([2**70, float("-inf")]).tolist() == [3, 0]
    assert small.upper_bound(np.array([float("inf"), -(2**70)], dtype=object)).tolist() == [3, 0]
    assert small.lower_bound(np.array([float("inf"), float("-inf")], dtype=object)).tolist() == [3, 0]
    assert small.lower_bound(float("-inf")) == 0 and small.upper_bound(float("inf")) == 3
    built = RMI([0, 2**63 + 1])
    assert built.keys.dtype == np.uint64 and built.keys.tolist() == [0, 2**63 + 1]
    assert RMI([-5, 2**62 + 1]).keys.dtype == np.int64
    with pytest.raises(TypeError, match="mix floats with ints beyond 2"):
        RMI([0.5, 2**63 + 1])
    with pytest.raises(TypeError, match="do not fit one numpy integer dtype"):
        RMI([-1, 2**64 - 1])


def test_batch_get_default_must_fit_integer_values():
    idx = RMI(np.array([1, 2, 3]), np.array([10, 20, 30], dtype=np.uint8))
    for bad in (2.5, -1, 256, float("inf")):
        with pytest.raises(ValueError, match="does not fit the value dtype uint8"):
            idx.get_batch([1, 9], default=bad)
    values, found = idx.get_batch([1, 9], default=7)
    assert values.tolist() == [10, 7] and found.tolist() == [True, False]
    assert RMI(np.array([1.0]), np.array([0.5])).get_batch([2.0], default=2.5)[0].tolist() == [2.5]


@pytest.mark.parametrize("bounds", [(-(2**31), -(2**31)), (0, -(2**31)), (2**31 - 1, 2**31 - 1), (5, -5)])
def test_any_leaf_error_bounds_keep_answers_exact(bounds):
    """Whatever the leaves' stored error bounds say (a leaf whose keys all lie below its
    predictions, a crafted file), the window stays inside [0, n] and every answer is exact."""
    from learnedidx import _rmi_kernels as K

    rng = np.random.default_rng(31)
    keys = np.sort(rng.integers(0, 10**6, 3000)).astype(np.uint64)
    queries = np.concatenate([keys, rng.integers(0, 10**6 + 10, 500).astype(np.uint64), [0, 2**64 - 1]])
    for options in ({}, dict(stages=("linear", "linear"), branching_factor=8, search="exponential")):
        idx = RMI(keys, **options)
        params = idx.arrays.params.copy()
        rec = K.META_HEADER + K.META_STRIDE * (int(idx.arrays.meta[0]) - 1)
        start = int(idx.arrays.meta[rec + 2])
        errors = params[start:].reshape(-1, K.LINEAR_WIDTH)[:, K.ERROR_SLOT:].view(np.int32)
        errors[:, 0], errors[:, 1] = bounds
        idx = RMI.from_arrays(keys, idx.arrays._replace(params=params), idx.config, idx.stats)
        for side in ("left", "right"):
            expected = np.searchsorted(keys, queries, side)
            bound = idx.lower_bound if side == "left" else idx.upper_bound
            assert np.array_equal(bound(queries), expected)
            assert [bound(int(q)) for q in queries[::7]] == expected[::7].tolist()


@pytest.mark.parametrize("dtype", [np.uint64, np.float64])
def test_scalar_methods_taken_before_the_first_query_use_the_fast_path(monkeypatch, dtype):
    """``lb = idx.lower_bound`` taken before any query: its first call installs the fast path
    and later calls skip the general (coercing) path; queries of other types still take it."""
    from learnedidx.base import KeyValueIndex

    keys = np.arange(0, 3000, 3).astype(dtype)
    idx = RMI(keys)
    lb, ub, contains = idx.lower_bound, idx.upper_bound, idx.__contains__
    number = int if dtype == np.uint64 else float
    assert lb(number(6)) == 2
    general = []
    monkeypatch.setattr(KeyValueIndex, "_answer", lambda self, q, mode: general.append(q) or 0)
    monkeypatch.setattr(KeyValueIndex, "_find_general", lambda self, q: general.append(q) or -1)
    assert (lb(number(7)), ub(number(9)), contains(number(9)), contains(number(10))) == (3, 4, True, False)
    assert general == []
    other = 7.5 if number is int else 7  # a float on integer keys, an int on float keys
    lb(other), contains(other)
    assert general == [other, other]


def test_auto_variant_takes_group_with_the_binary_search_and_amac_for_other_searches_beyond_cache():
    """``variant="auto"``: the group variant searches every binary window in lock-step, level
    with AMAC or faster at any size; other searches go one window after another in a group, so
    out of cache they take AMAC."""
    from learnedidx.rmi import CACHE_RESIDENT_BYTES

    rng = np.random.default_rng(5)
    big = np.unique(rng.lognormal(0, 2, CACHE_RESIDENT_BYTES // 8 + 200_000) * 1e9).astype(np.uint64)
    small = big[:: len(big) // 50_000]
    assert big.nbytes > CACHE_RESIDENT_BYTES >= small.nbytes
    for keys, other_search in ((small, "group"), (big, "amac")):
        wide = RMI(keys, keys_per_leaf=4096, max_window=None)
        assert np.percentile(np.subtract(*wide.predict(keys[::97])[2:0:-1]), 99) >= 32
        assert wide.batch_variant.startswith("group"), (len(keys), wide.batch_variant)
        gallop = RMI(keys, keys_per_leaf=4096, search="exponential")
        assert gallop.batch_variant.startswith(other_search), (len(keys), gallop.batch_variant)
        assert RMI(keys, keys_per_leaf=4096, variant="amac").batch_variant.startswith("amac")
        q = keys[rng.integers(0, len(keys), 5000)]
        for idx in (wide, gallop):
            assert np.array_equal(idx.lower_bound(q), np.searchsorted(keys, q))


# --- training: runs found by searching on the lines above, against routing every key --------


def _keys_near_top(n, seed):
    rng = np.random.default_rng(seed)
    return np.sort(np.uint64(2**64 - 1) - rng.integers(0, 10**6, n).astype(np.uint64))


def _long_runs(n, seed):
    """Runs of duplicates longer than a fit block (learnedidx._rmi_training.FIT_BLOCK)."""
    rng = np.random.default_rng(seed)
    runs = [np.full(n // 3, 7), np.full(n // 4, 2**40), rng.integers(0, 2**50, n - n // 3 - n // 4)]
    return np.sort(np.concatenate(runs)).astype(np.uint64)


TRAINING_SETS = {
    "duplicates": lambda n, seed: np.sort(np.random.default_rng(seed).integers(0, 1000, n)).astype(np.uint64),
    "long_runs": _long_runs,
    "clustered": _clustered,
    "near_2_64": _keys_near_top,
    "int64_negative": lambda n, seed: np.sort(np.concatenate([
        np.random.default_rng(seed).integers(-(2**63), 2**63 - 1, n, endpoint=True),
        [-(2**63), -(2**63), 2**63 - 1]])).astype(np.int64),
    "float64": lambda n, seed: np.sort(np.random.default_rng(seed).normal(0, 1e6, n)),
    "float32_lognormal": lambda n, seed: np.sort(np.random.default_rng(seed).lognormal(0, 3, n)).astype(np.float32),
    "float_infinities": lambda n, seed: np.sort(np.concatenate([
        [-np.inf, -np.inf, np.inf], np.random.default_rng(seed).normal(0, 1e3, n)])),
}
TRAINING_CONFIGS = [
    dict(),
    dict(stages=("linear", "linear")),
    dict(stages=("cubic", "linear", "linear")),
    dict(stages=("linear", "linear", "linear", "linear"), branching_factor=(8, 64, 512)),
    dict(stages=("linear_spline", "linear_spline")),
    dict(stages=("radix", "linear")),
    # A root that is not a line: its runs come from routing every key.
    *([dict(stages=("mlp", "linear", "linear"), mlp_hidden=(8,))] if importlib.util.find_spec("torch") else []),
]


def _queries_around(keys, seed):
    """The keys, their neighbours, random values over the dtype and its extremes."""
    rng = np.random.default_rng(seed)
    if keys.dtype.kind == "f":
        info = np.finfo(keys.dtype)
        near = [np.nextafter(keys, keys.dtype.type(-np.inf)), np.nextafter(keys, keys.dtype.type(np.inf))]
        spread = rng.normal(0, 1e6, 2000).astype(keys.dtype)
        ends = np.array([-np.inf, info.min, 0.0, info.max, np.inf], dtype=keys.dtype)
    else:
        info = np.iinfo(keys.dtype)
        near = [keys ^ keys.dtype.type(1)]
        spread = rng.integers(info.min, info.max, 2000, endpoint=True, dtype=keys.dtype)
        ends = np.array([info.min, info.min + 1, info.max - 1, info.max], dtype=keys.dtype)
    return np.concatenate([keys, *near, spread, ends])


def _assert_trains_exactly(keys, options):
    """The index brackets every key and answers as np.searchsorted; routing every key while
    training (``split=False``) gives the very same models, bit for bit; the error pass's two
    route checks (every key's, and each block's ends') agree and find no stray key (training
    did not have to start over)."""
    from learnedidx import models
    from learnedidx.rmi import train

    idx = RMI(keys, assume_sorted=True, **options)
    runs = models.root_runs(len(keys))
    for stage in range(1, len(idx.config.stages)):
        runs, _ = models.stage_runs(idx.arrays.meta, idx.arrays.params, idx.keys, stage, runs)
    checks = [models.leaf_errors(idx.arrays.meta, idx.arrays.params, idx.keys, runs, every_key, idx.arrays[2:])
              for every_key in (True, False)]
    for lo, hi, max_error, sum_log2, routed in checks:
        assert routed and max_error.max() == idx.max_error
        assert np.array_equal(lo, checks[0][0]) and np.array_equal(hi, checks[0][1])
    idx._check()
    queries = _queries_around(keys, seed=len(keys))
    assert np.array_equal(idx.lower_bound(queries), np.searchsorted(keys, queries, "left"))
    assert np.array_equal(idx.upper_bound(queries), np.searchsorted(keys, queries, "right"))
    arrays, stats = train(idx.keys, idx.config, split=False)
    assert np.array_equal(arrays.meta, idx.arrays.meta)
    assert np.array_equal(arrays.params.view(np.int64), idx.arrays.params.view(np.int64))
    assert stats == idx.stats
    if len(keys):
        pos = idx.predict(keys)[0]
        err = np.abs(np.searchsorted(keys, keys) - pos)
        assert idx.max_error == err.max()
        assert idx.avg_log2_error == pytest.approx(np.log2(err + 1.0).mean(), rel=1e-9)


@pytest.mark.parametrize("options", TRAINING_CONFIGS, ids=lambda o: ",".join(o.get("stages", ("default",))))
@pytest.mark.parametrize("name", sorted(TRAINING_SETS))
def test_training_is_exact_on_hard_key_sets(name, options):
    _assert_trains_exactly(TRAINING_SETS[name](20_000, seed=11), options)


@pytest.mark.parametrize("options", TRAINING_CONFIGS, ids=lambda o: ",".join(o.get("stages", ("default",))))
@pytest.mark.parametrize("keys", [[], [5], [5, 5], [3, 9], [0, 2**64 - 1]], ids=["n0", "n1", "n2_same", "n2", "ends"])
def test_training_on_zero_one_and_two_keys(keys, options):
    _assert_trains_exactly(np.array(keys, dtype=np.uint64), options)


def test_training_on_every_thread_in_blocks(monkeypatch):
    """Training on threads (from models.PARALLEL_KEYS keys, lowered here), with runs of many
    fit blocks and a block starting inside a run of duplicates."""
    from learnedidx import models

    monkeypatch.setattr(models, "PARALLEL_KEYS", 1000)
    keys = np.sort(np.concatenate([_lognormal(50_000, seed=12), np.full(9000, 10**12, dtype=np.uint64)]))
    for options in (dict(), dict(stages=("linear", "linear"), branching_factor=8), dict(stages=("cubic", "linear"))):
        _assert_trains_exactly(keys, options)


def test_a_wrong_split_is_caught_and_training_routes_every_key(monkeypatch):
    """Should a search on a line ever disagree with plan_route, the error pass notices a key
    outside its run's leaf and training starts over routing every key."""
    from learnedidx import _rmi_training as T
    from learnedidx import models
    from learnedidx.rmi import train

    keys = _lognormal(30_000, seed=13)
    expected = train(keys, RMIConfig(), split=False)
    real = T.split_range

    def off_by_one(params, pbits, keys, bounds, owner, base0, limit, ends_only, slot, out_start, out_owner, used,
                   r0, r1):
        real(params, pbits, keys, bounds, owner, base0, limit, ends_only, slot, out_start, out_owner, used, r0, r1)
        if not ends_only:
            for r in range(r0, r1):
                if used[r] > 1:
                    out_start[slot[r] + 1] += 1  # the run's second child starts one key late

    routed = []
    route_runs = models._route_runs
    monkeypatch.setattr(T, "split_range", off_by_one)
    monkeypatch.setattr(models, "_route_runs", lambda *args: routed.append(args[3]) or route_runs(*args))
    arrays, stats = train(keys, RMIConfig())
    assert routed == [1, 2]  # the second attempt routed every key, at both stages below the root
    assert np.array_equal(arrays.params.view(np.int64), expected[0].params.view(np.int64)) and stats == expected[1]


def test_routes_in_order_needs_lines_of_non_negative_slope_and_finite_offsets():
    from learnedidx import _rmi_kernels as K
    from learnedidx.models import routes_in_order

    keys = _lognormal(5000, seed=14)
    idx = RMI(keys)
    meta, params = idx.arrays.meta, idx.arrays.params.copy()
    assert routes_in_order(meta, params, keys, 0) and routes_in_order(meta, params, keys, 1)
    mid = int(meta[K.META_HEADER + K.META_STRIDE + 2])
    params[mid + K.LINEAR_WIDTH + 1] = -1e-9  # the second inner model's slope
    assert routes_in_order(meta, params, keys, 0) and not routes_in_order(meta, params, keys, 1)
    params[mid + K.LINEAR_WIDTH + 1] = np.inf
    assert not routes_in_order(meta, params, keys, 1)
    cubic = RMI(keys, stages=("cubic", "linear"))
    assert not routes_in_order(cubic.arrays.meta, cubic.arrays.params, keys, 0)
    floats = np.array([-np.inf, 0.0, 1.0])
    linear = RMI(floats, stages=("linear", "linear"))
    assert not routes_in_order(linear.arrays.meta, linear.arrays.params, floats, 0)
    huge = np.array([-1e308, 1e308])  # the span overflows float64
    assert not routes_in_order(RMI(huge).arrays.meta, RMI(huge).arrays.params, huge, 0)


@pytest.mark.parametrize("every_key", [True, False])
def test_leaf_errors_check_routes_of_every_key_or_of_block_ends(every_key):
    """Both checks give the same bounds, and both notice a run boundary one key off: with
    every stage routing in order, a wrong key always sits at an end of its block."""
    from learnedidx import models

    keys = _lognormal(30_000, seed=15)
    idx = RMI(keys, max_window=None)
    runs = models.root_runs(len(keys))
    for stage in (1, 2):
        runs, searched = models.stage_runs(idx.arrays.meta, idx.arrays.params, keys, stage, runs)
        assert searched
    lo, hi, max_err, sum_log2, routed = models.leaf_errors(idx.arrays.meta, idx.arrays.params, keys, runs, every_key)
    assert routed and max_err.max() == idx.max_error and sum_log2.sum() / len(keys) == pytest.approx(idx.avg_log2_error)
    errors = idx.arrays.params[-4 * len(lo):].reshape(-1, 4)[:, 3:].view(np.int32)
    assert np.array_equal(errors[:, 0], lo) and np.array_equal(errors[:, 1], hi)
    bounds, owner = runs[0].copy(), runs[1]
    wide = np.flatnonzero(np.diff(bounds)[:-1] > 2)  # runs with a next run: move their last bound
    for r in wide[[0, len(wide) // 2, -1]]:
        for shift in (-1, 1):
            moved = bounds.copy()
            moved[r + 1] += shift
            assert not models.leaf_errors(idx.arrays.meta, idx.arrays.params, keys, (moved, owner), every_key)[4]


# --- hybrid leaves (RMIConfig.max_window) --------------------------------------------------------

def _adversarial(name, n=60_000):
    import datasets

    return np.sort(datasets.generate(name, n, seed=7))


def _queries_of(keys, seed):
    rng = np.random.default_rng(seed)
    info = np.iinfo(keys.dtype)
    return np.concatenate([keys[rng.integers(0, len(keys), 3000)], keys + 1, keys - 1,
                           rng.integers(info.min, info.max, 3000, endpoint=True, dtype=keys.dtype),
                           np.array([info.min, info.max], dtype=keys.dtype)])


@pytest.mark.parametrize("name", ["loguniform64", "exp_gaps", "staircase", "outliers", "fractal"])
def test_hybrid_leaves_bound_every_window_on_adversarial_keys(name):
    """Without a bound some window passes 256 keys; with the default one none does (``_check``
    asserts it for every key), and every path answers as np.searchsorted."""
    from learnedidx import _rmi_kernels as K

    keys = _adversarial(name)
    lines = RMI(keys, max_window=None)
    assert (np.diff(np.stack(lines.predict(keys)[1:]), axis=0) > 256).any()
    idx = RMI(keys)
    assert idx.hybrid_leaves > 0 and idx.config.max_window == 256
    idx._check()
    pos, lo, hi = idx.predict(keys)
    lb = np.searchsorted(keys, keys)
    assert (hi - lo).max() <= 256 and ((lo <= lb) & (lb + 1 <= hi)).all()
    assert idx.max_error == np.abs(lb - pos).max() < 256
    assert len(idx.arrays[2:][0]) <= len(keys) / 256 + 8 * idx.hybrid_leaves  # a sample every 256 keys of a run
    queries = _queries_of(keys, seed=len(name))
    for mode, side in ((0, "left"), (1, "right")):
        want = np.searchsorted(keys, queries, side)
        for variant in K.VARIANTS.values():
            assert np.array_equal(idx._run_batch(queries, mode, variant), want), (mode, variant)
    some = queries[::97]
    assert [idx.lower_bound(int(q)) for q in some] == np.searchsorted(keys, some).tolist()
    assert np.array_equal(idx._run_batch(queries, 2, K.VARIANT_AMAC),
                          np.where(np.isin(queries, keys), np.searchsorted(keys, queries), -1))
    assert np.array_equal(idx.contains(queries), np.isin(queries, keys))


@pytest.mark.parametrize("max_window", [1, 2, 3, 64, 1000])
def test_hybrid_windows_across_scattered_runs(max_window):
    """A leaf fed by several inner models holds several runs of keys with other leaves' keys
    between them; its sample covers only its own runs and every window still holds."""
    from learnedidx import models

    keys = _adversarial("loguniform64", 40_000)
    idx = RMI(keys, max_window=max_window)
    runs = models.root_runs(len(keys))
    for stage in (1, 2):
        runs, _ = models.stage_runs(idx.arrays.meta, idx.arrays.params, keys, stage, runs)
    assert np.bincount(runs[1]).max() > 1  # some leaf has several runs
    idx._check()
    assert (np.diff(np.stack(idx.predict(keys)[1:]), axis=0) <= max_window).all()
    queries = _queries_of(keys, seed=max_window)
    assert np.array_equal(idx.lower_bound(queries), np.searchsorted(keys, queries))
    assert np.array_equal(idx.upper_bound(queries), np.searchsorted(keys, queries, "right"))


def test_hybrid_leaves_with_duplicates_and_floats():
    rng = np.random.default_rng(3)
    ints = np.sort(np.repeat(rng.integers(0, 1 << 40, 3000), rng.integers(1, 300, 3000)).astype(np.int64))
    floats = np.sort(np.concatenate([rng.normal(0, 1, 20_000), rng.normal(1e9, 1e-3, 20_000)]))
    for keys in (ints, floats):
        idx = RMI(keys, max_window=16)
        assert idx.hybrid_leaves > 0
        idx._check()
        queries = np.concatenate([keys, keys[::3] + keys.dtype.type(1), keys[::5] - keys.dtype.type(1)])
        assert np.array_equal(idx.lower_bound(queries), np.searchsorted(keys, queries))
        assert np.array_equal(idx.upper_bound(queries), np.searchsorted(keys, queries, "right"))


def test_hybrid_leaves_survive_save_load_mmap_and_pickle(tmp_path):
    import learnedidx

    keys = _adversarial("exp_gaps", 30_000)
    idx = RMI(keys, values=np.arange(len(keys)) * 3)
    assert idx.hybrid_leaves > 0
    path = tmp_path / "h.lidx"
    idx.save(path)
    queries = _queries_of(keys, seed=2)
    want = np.searchsorted(keys, queries)
    for clone in (learnedidx.load(path), learnedidx.load(path, mmap=True), pickle.loads(pickle.dumps(idx))):
        clone._check()
        assert clone.hybrid_leaves == idx.hybrid_leaves and clone.size_in_bytes() == idx.size_in_bytes()
        assert np.array_equal(clone.lower_bound(queries), want)
        assert clone.lower_bound(int(keys[77])) == int(np.searchsorted(keys, keys[77]))


def test_corrupt_hybrid_records_are_refused():
    """Every field a kernel reads without checking is checked on loading."""
    from learnedidx import _rmi_kernels as K

    keys = _adversarial("exp_gaps", 30_000)
    idx = RMI(keys)
    config, arrays = idx._state()
    rec = K.META_HEADER + K.META_STRIDE * (int(arrays["meta"][0]) - 1)
    records = arrays["params"].view(np.int64)[int(arrays["meta"][rec + 2]):].reshape(-1, K.LINEAR_WIDTH)
    hybrid = np.flatnonzero(records[:, K.ERROR_SLOT] == K.HYBRID)[0]
    size = len(arrays["hybrid_keys"])
    for slot, value, message in ((0, size, "hybrid_keys"), (0, -1, "hybrid_keys"), (1, 0, "hybrid_keys"),
                                 (1, size + 1, "hybrid_keys"), (2, 31, "stride"), (2, -1, "stride")):
        params = arrays["params"].copy()
        bad = params.view(np.int64)[int(arrays["meta"][rec + 2]):].reshape(-1, K.LINEAR_WIDTH)
        bad[hybrid, slot] = value
        with pytest.raises(ValueError, match=message):
            RMI._from_state(config, dict(arrays, params=params))
    with pytest.raises(ValueError, match="one length"):
        RMI._from_state(config, dict(arrays, hybrid_pos=arrays["hybrid_pos"][1:]))
    with pytest.raises(ValueError, match="hybrid_keys"):  # a hybrid index's file without its samples
        RMI._from_state(config, {k: v for k, v in arrays.items() if not k.startswith("hybrid")})
    # Wrong sample positions only bound windows (clamped to the keys): answers stay exact.
    positions = arrays["hybrid_pos"].copy()
    positions[::2] = len(keys) + 5
    wrong = RMI._from_state(config, dict(arrays, hybrid_pos=positions))
    with pytest.raises(AssertionError, match="sample position"):
        wrong._check()
    queries = _queries_of(keys, seed=4)
    assert np.array_equal(wrong.lower_bound(queries), np.searchsorted(keys, queries))


def test_files_from_before_hybrid_leaves_load_without_a_bound():
    keys = _lognormal(20_000, seed=9)
    config, arrays = RMI(keys, max_window=None)._state()
    config = dict(config, options={k: v for k, v in config["options"].items() if k != "max_window"})
    loaded = RMI._from_state(config, {k: v for k, v in arrays.items() if not k.startswith("hybrid")})
    assert loaded.config.max_window is None and loaded.hybrid_leaves == 0
    loaded._check()
    assert np.array_equal(loaded.lower_bound(keys), np.arange(len(keys)))


def test_max_window_is_validated_and_dynamic_rmi_keeps_lines():
    from learnedidx import DynamicRMI

    for bad in (0, -1, True, 1.5, "256", 1 << 31):
        with pytest.raises(ValueError, match="max_window"):
            RMIConfig(max_window=bad)
    assert RMIConfig(max_window=256).hybrid_shift == 8 and RMIConfig(max_window=255).hybrid_shift == 7
    assert RMIConfig(max_window=1).hybrid_shift == 0
    keys = _adversarial("exp_gaps", 30_000)
    dyn = DynamicRMI(keys)
    assert dyn._rmi.hybrid_leaves == 0 and dyn._rmi.config.max_window is None
    assert np.array_equal(dyn.lower_bound(keys[::7]), np.arange(0, len(keys), 7))


def test_from_arrays_checks_copies_and_answers():
    keys = _lognormal(4000, seed=21)
    idx = RMI(keys, max_window=4)
    queries = _queries_around(keys, seed=21)
    meta, params = idx.arrays.meta.copy(), idx.arrays.params.copy()
    arrays = idx.arrays._replace(meta=meta, params=params)
    same = RMI.from_arrays(keys, arrays, idx.config, idx.stats)
    same._check()
    assert np.array_equal(same.lower_bound(queries), np.searchsorted(keys, queries))
    assert same.stats == idx.stats and same.hybrid_leaves == idx.hybrid_leaves
    assert meta.flags.writeable and params.flags.writeable  # the caller's arrays keep their flags
    params[:] = np.nan  # copy=True (the default): later changes cannot reach the index
    assert np.array_equal(same.upper_bound(queries), np.searchsorted(keys, queries, "right"))
    bad_meta = idx.arrays.meta.copy()
    bad_meta[-2] += 8  # the leaf stage's offset now leaves params
    with pytest.raises(ValueError, match="stage"):
        RMI.from_arrays(keys, idx.arrays._replace(meta=bad_meta), idx.config, idx.stats)
    with pytest.raises(ValueError, match="hybrid_keys"):
        RMI.from_arrays(keys.astype(np.int64), idx.arrays, idx.config, idx.stats)
    with pytest.raises(ValueError, match="meta header"):
        RMI.from_arrays(keys[:-1], idx.arrays, idx.config, idx.stats)
    with pytest.raises(TypeError, match="RMIArrays"):
        RMI.from_arrays(keys, idx.arrays[:2], idx.config, idx.stats)
    with pytest.raises(TypeError, match="RMIConfig"):
        RMI.from_arrays(keys, idx.arrays, {"stages": ("linear", "linear")}, idx.stats)
    with pytest.raises(ValueError, match="stats"):
        RMI.from_arrays(keys, idx.arrays, idx.config, {"max_error": 1})
    with pytest.raises(ValueError, match="verify=False"):
        RMI.from_arrays(keys[::2], idx.arrays, idx.config, idx.stats, verify=False)
    with pytest.raises(ValueError, match="not sorted"):
        RMI.from_arrays(keys[::-1].copy(), idx.arrays, idx.config, idx.stats, assume_sorted=True)
