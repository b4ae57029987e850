"""PGM: conformance, the optimal segments' error guarantee, every lookup path, files and errors."""

from __future__ import annotations

import itertools
import pickle
from fractions import Fraction

import numba
import numpy as np
import pytest

import datasets
import learnedidx
from learnedidx import PGM, PGMConfig
from learnedidx import _pgm_kernels as K
from learnedidx.testing import check_conformance

CONFIGS = [{}, dict(epsilon=1, epsilon_recursive=1), dict(epsilon=3, interleaved=False)]


@pytest.mark.parametrize("options", CONFIGS, ids=lambda o: ",".join(f"{k}={v}" for k, v in o.items()) or "default")
def test_conformance(options):
    check_conformance(lambda keys, values: PGM(keys, values, **options), max_examples=30)


def _shapes():
    rng = np.random.default_rng(5)
    yield "lognormal", datasets.generate("lognormal", 100_000, 1)
    for name in datasets.ADVERSARIAL:
        yield name, datasets.generate(name, 60_000, 2)
    yield "runs", np.repeat(np.sort(rng.integers(0, 10**9, 3000)), rng.integers(1, 60, 3000)).astype(np.uint64)
    yield "near-2**64", (np.uint64(2**64 - 1) - np.sort(rng.integers(0, 10**7, 50_000).astype(np.uint64))[::-1])
    yield "int64-negative", np.sort(rng.integers(-(2**62), 2**40, 50_000))
    yield "float64", np.sort(rng.standard_cauchy(50_000))
    yield "float32", np.sort(rng.lognormal(0, 3, 50_000).astype(np.float32))


def _queries(keys, rng):
    n = len(keys)
    picks = keys[rng.integers(0, n, 4000)]
    if keys.dtype.kind == "f":
        absent = rng.uniform(float(keys[0]) - 1, float(keys[-1]) + 1, 4000).astype(keys.dtype)
        return np.concatenate([picks, absent, np.nextafter(picks, keys.dtype.type(np.inf))])
    info = np.iinfo(keys.dtype)
    absent = rng.integers(info.min, info.max, 4000, dtype=keys.dtype, endpoint=True)
    return np.concatenate([picks, absent, picks + (picks < info.max), keys[:50], keys[-50:]])


@pytest.mark.parametrize("name,keys", list(_shapes()), ids=lambda x: x if isinstance(x, str) else "")
@pytest.mark.parametrize("epsilon", [2, 64])
def test_every_path_matches_searchsorted(name, keys, epsilon):
    rng = np.random.default_rng(7)
    idx = PGM(keys, epsilon=epsilon)
    idx._check()
    queries = _queries(keys, rng)
    parallel = PGM(keys, epsilon=epsilon, parallel_threshold=1)
    threads = numba.get_num_threads()
    numba.set_num_threads(min(2, numba.config.NUMBA_NUM_THREADS))
    try:
        for mode, side in ((learnedidx.LEFT, "left"), (learnedidx.RIGHT, "right")):
            expected = np.searchsorted(keys, queries, side)
            assert np.array_equal(idx._search_array(queries, mode), expected), side
            assert np.array_equal(idx._search_loop(queries, mode), expected), side
            assert np.array_equal(parallel._search_array(queries, mode), expected), side
    finally:
        numba.set_num_threads(threads)
    for q in queries[::97].tolist():
        assert idx.lower_bound(q) == np.searchsorted(keys, keys.dtype.type(q), "left")
        assert idx.upper_bound(q) == np.searchsorted(keys, keys.dtype.type(q), "right")
    found = idx.contains(queries)
    assert np.array_equal(found, np.isin(queries, keys))


def _optimal_segment_count(xs, ys, eps):
    """Fewest segments covering the points with a line within eps of each, exactly (Fractions).

    Feasibility is hereditary, so taking the longest feasible segment from each start is
    optimal; a range fits a line iff some slope a makes max(y - a x) - min(y - a x) <= 2 eps,
    a convex function of a whose minimum lies at the slope of some pair of points."""
    def fits(i, j):
        pts = list(zip(xs[i:j], ys[i:j]))
        if len(pts) < 2:
            return True
        slopes = {Fraction(y2 - y1, x2 - x1) for (x1, y1), (x2, y2) in itertools.combinations(pts, 2)}
        return any(max(y - a * x for x, y in pts) - min(y - a * x for x, y in pts) <= 2 * eps for a in slopes)

    count, i = 0, 0
    while i < len(xs):
        j = i + 1
        while j < len(xs) and fits(i, j + 1):
            j += 1
        count += 1
        i = j
    return count


@pytest.mark.parametrize("seed", range(6))
@pytest.mark.parametrize("eps", [1, 2, 4])
def test_segments_are_optimal(seed, eps):
    """As few segments as any line cover can have: a greedy shrinking cone, which pins each
    segment's line on its first point, needs more on these points."""
    rng = np.random.default_rng(seed)
    keys = np.cumsum(rng.integers(1, 40, 28)).astype(np.int64)
    starts, _, _ = K.fit_segments(keys, eps, 0)
    assert len(starts) == _optimal_segment_count(keys.tolist(), list(range(len(keys))), eps)


def test_error_guarantee_on_every_key():
    keys = datasets.generate("staircase", 200_000, 3)
    for eps in (1, 8, 64, 512):
        idx = PGM(keys, epsilon=eps)
        pos, lo, hi = idx.predict(keys)
        lb = np.searchsorted(keys, keys)
        assert np.abs(lb - pos).max() <= eps + 1
        assert (lo <= lb).all() and (lb < hi).all()
        assert idx.max_error <= eps + 1
        assert idx.size_in_bytes() == 24 * len(idx.arrays.seg_keys) + 8 * len(idx.arrays.meta)


def test_levels_shrink_to_one_segment():
    keys = datasets.generate("fractal", 100_000, 1)
    idx = PGM(keys, epsilon=4, epsilon_recursive=2)
    counts = [int(idx.arrays.meta[K.META_HEADER + K.META_STRIDE * lv + 1]) for lv in range(idx.height)]
    assert idx.height >= 3 and counts[-1] == 1 and all(a > b for a, b in zip(counts, counts[1:]))
    assert counts[0] == idx.segments_count


def test_empty_one_key_and_predict():
    empty = PGM(np.zeros(0, dtype=np.uint64))
    assert empty.height == 0 and empty.lower_bound(5) == 0 and empty.get(5) is None
    assert [a.tolist() for a in empty.predict(np.array([1, 2]))] == [[0, 0], [0, 0], [0, 0]]
    one = PGM(np.array([7], dtype=np.int16))
    assert one.height == 1 and (one.lower_bound(7), one.upper_bound(7), one.lower_bound(8)) == (0, 1, 1)
    pos, lo, hi = one.predict(7)
    assert lo <= 0 < hi


def test_check_detects_a_broken_window():
    keys = datasets.generate("lognormal", 20_000, 2)
    idx = PGM(keys, epsilon=8)
    idx.arrays.meta[K.META_HEADER + 3] -= 3
    with pytest.raises(AssertionError, match="outside their predicted window"):
        idx._check()


@pytest.mark.parametrize("mmap", [True, False])
def test_save_load_and_pickle(tmp_path, mmap):
    keys = datasets.generate("geo_clusters", 30_000, 4)
    idx = PGM(keys, np.arange(len(keys), dtype=np.int32) * 3, epsilon=16)
    path = tmp_path / "pgm.lidx"
    idx.save(path)
    for other in (learnedidx.load(path, mmap=mmap), pickle.loads(pickle.dumps(idx))):
        assert type(other) is PGM and other.config == idx.config and other._stats == idx._stats
        other._check()
        queries = np.concatenate([keys[::13], keys[::17] + np.uint64(1)])
        for method in ("lower_bound", "upper_bound", "contains"):
            assert np.array_equal(getattr(other, method)(queries), getattr(idx, method)(queries))
        for q in queries[:50].tolist():  # the scalar kernel reads the new arrays' addresses
            assert other.lower_bound(q) == idx.lower_bound(q) and other.get(q) == idx.get(q)


@pytest.mark.parametrize("edit", [
    lambda m: m.__setitem__(K.META_LEVELS, 0),
    lambda m: m.__setitem__(K.META_LEVELS, 9),
    lambda m: m.__setitem__(K.META_HEADER + 1, 10**9),
    lambda m: m.__setitem__(K.META_HEADER + 2, -(2**62)),
    lambda m: m.__setitem__(K.META_HEADER + 3, 2**62),
    lambda m: m.__setitem__(K.META_HEADER + K.META_STRIDE, 1),
    lambda m: m.__setitem__(K.META_EPSILON, 3),
], ids=["no-levels", "levels", "count", "err-lo", "err-hi", "offset", "epsilon"])
def test_a_crafted_layout_is_refused(edit):
    idx = PGM(datasets.generate("exp_gaps", 5000, 1), epsilon=4, epsilon_recursive=2)
    config, arrays = idx._state()
    arrays = dict(arrays, meta=arrays["meta"].copy())
    edit(arrays["meta"])
    with pytest.raises(ValueError):
        PGM._from_state(config, arrays)


def test_config_errors():
    keys = np.arange(10, dtype=np.uint64)
    with pytest.raises(ValueError, match="epsilon must be a whole number"):
        PGM(keys, epsilon=0)
    with pytest.raises(ValueError, match="epsilon_recursive"):
        PGM(keys, epsilon_recursive=2.5)
    with pytest.raises(TypeError, match="interleaved"):
        PGMConfig(interleaved=1)
    with pytest.raises(TypeError, match="unknown options"):
        PGM(keys, eps=3)
    with pytest.raises(TypeError, match="not both"):
        PGM(keys, config=PGMConfig(), epsilon=3)
    with pytest.raises(TypeError, match="config must be a PGMConfig"):
        PGM(keys, config={"epsilon": 3})


def test_a_threaded_build_answers_like_a_serial_one(monkeypatch):
    """Levels built in slices on two threads: at most one more segment a slice, same answers."""
    from learnedidx import pgm
    keys = np.repeat(datasets.generate("fractal", 40_000, 3), 3)  # runs cross the slice cuts
    serial = PGM(keys, epsilon=8)
    monkeypatch.setattr(pgm, "_PARALLEL_BUILD_MIN", 1000)
    threads = numba.get_num_threads()
    numba.set_num_threads(min(2, numba.config.NUMBA_NUM_THREADS))
    try:
        sliced = PGM(keys, epsilon=8)
    finally:
        numba.set_num_threads(threads)
    sliced._check()
    assert serial.segments_count <= sliced.segments_count <= serial.segments_count + 1
    queries = np.concatenate([keys[::7], keys[::5] + np.uint64(1)])
    assert np.array_equal(sliced.lower_bound(queries), np.searchsorted(keys, queries))
    assert np.array_equal(sliced.upper_bound(queries), np.searchsorted(keys, queries, "right"))
