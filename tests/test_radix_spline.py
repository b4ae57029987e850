"""RadixSpline: conformance, exact answers on every path, the error bound, files and bad input."""

from __future__ import annotations

import json
import pickle
import struct
import zlib

import numba
import numpy as np
import pytest

import learnedidx
from learnedidx import IndexFileError, persist
from learnedidx import _radix_spline_kernels as K
from learnedidx._search import lift_top
from learnedidx.radix_spline import RadixSpline, RadixSplineConfig, default_radix_bits
from learnedidx.testing import check_conformance

CONFIGS = [
    dict(),
    dict(epsilon=1),
    dict(epsilon=2, radix_bits=0),  # one bit: segment searches span half the spline
    dict(radix_bits=20, interleaved=False),  # a table far larger than the spline
]


@pytest.mark.parametrize("options", CONFIGS, ids=lambda o: ",".join(f"{k}={v}" for k, v in o.items()) or "default")
def test_conformance(options):
    check_conformance(lambda keys, values: RadixSpline(keys, values, **options), max_examples=30)


# --- medium sets against np.searchsorted on every path --------------------------------------


def _lognormal(n=100_000, seed=1):
    rng = np.random.default_rng(seed)
    return np.sort((rng.lognormal(0, 2, n) * 1e9).astype(np.uint64))


def _clustered(n=100_000, seed=2):
    rng = np.random.default_rng(seed)
    starts = np.sort(rng.integers(0, 2**62, 40, dtype=np.uint64))
    return np.sort(np.concatenate([s + np.arange(n // 40, dtype=np.uint64) * rng.integers(1, 5) for s in starts]))


def _duplicates(n=100_000, seed=3):
    rng = np.random.default_rng(seed)
    return np.sort(rng.integers(0, 3000, n).astype(np.uint32))


def _near_2_64(n=100_000, seed=4):
    # dense keys where float64 cannot tell neighbours apart: the interpolation must stay exact
    rng = np.random.default_rng(seed)
    offsets = np.sort(rng.choice(10**7, n, replace=False)).astype(np.uint64)
    return np.uint64(2**64 - 1) - offsets[::-1]


def _int64_negatives(n=100_000, seed=5):
    rng = np.random.default_rng(seed)
    return np.sort(np.concatenate([rng.integers(-(2**63), -(2**62), n // 2), rng.integers(-1000, 10**15, n // 2)]))


def _float64(n=100_000, seed=6):
    rng = np.random.default_rng(seed)
    return np.sort(np.concatenate([rng.normal(0, 1e6, n // 2), rng.lognormal(0, 3, n // 2), [0.0, -0.0, -np.inf]]))


SETS = {f.__name__[1:]: f for f in (_lognormal, _clustered, _duplicates, _near_2_64, _int64_negatives, _float64)}


def _queries(keys, seed=7):
    """Present keys, their neighbours and random values of the key dtype, shuffled (a sorted
    batch would take the galloping path instead of the kernels)."""
    rng = np.random.default_rng(seed)
    dtype = keys.dtype
    if dtype.kind == "f":
        near = np.concatenate([np.nextafter(keys, np.inf), np.nextafter(keys, -np.inf)])
        other = rng.normal(0, 1e7, 20_000)
    else:
        info = np.iinfo(dtype)
        with np.errstate(over="ignore"):
            near = np.concatenate([keys + dtype.type(1), keys - dtype.type(1)])
        other = rng.integers(info.min, info.max, 20_000, dtype=dtype, endpoint=True)
    queries = np.concatenate([keys, near, other, keys[:1], keys[-1:]]).astype(dtype)
    return queries[rng.permutation(len(queries))]


@pytest.mark.parametrize("options", [dict(), dict(epsilon=4, radix_bits=16)], ids=["default", "eps4"])
@pytest.mark.parametrize("name", list(SETS))
def test_medium_sets_against_searchsorted(name, options):
    keys = SETS[name]()
    idx = RadixSpline(keys, **options)
    idx._check()
    q = _queries(idx.keys)
    expected = {0: np.searchsorted(keys, q, "left"), 1: np.searchsorted(keys, q, "right")}
    found = expected[0] < len(keys)
    found[found] = keys[expected[0][found]] == q[found]
    expected[2] = np.where(found, expected[0], -1)
    for mode in (0, 1, 2):
        assert np.array_equal(idx._search_array(q, mode), expected[mode]), f"batch mode {mode}"
        assert np.array_equal(idx._search_loop(q, mode), expected[mode]), f"loop mode {mode}"
    assert np.array_equal(idx.lower_bound(q), expected[0]) and np.array_equal(idx.upper_bound(q), expected[1])
    assert np.array_equal(idx.contains(q), found)
    values, got = idx.get_batch(q, default=-1)
    assert np.array_equal(got, found) and np.array_equal(values, np.where(found, expected[0], -1))
    for i in range(0, len(q), len(q) // 500):  # the scalar kernel
        x = q[i].item()
        assert idx.lower_bound(x) == expected[0][i] and idx.upper_bound(x) == expected[1][i]
        assert (x in idx) == found[i]


@pytest.mark.parametrize("name", ["lognormal", "float64"])
def test_parallel_batches(name):
    if numba.config.NUMBA_NUM_THREADS < 2:
        pytest.skip("Numba has one thread")
    keys = SETS[name]()
    idx = RadixSpline(keys, parallel_threshold=1)
    q = _queries(keys)
    before = numba.get_num_threads()
    numba.set_num_threads(2)
    try:
        for mode, side in ((0, "left"), (1, "right")):
            assert np.array_equal(idx._search_array(q, mode), np.searchsorted(keys, q, side))
            assert np.array_equal(idx._search_loop(q, mode), np.searchsorted(keys, q, side))
    finally:
        numba.set_num_threads(before)


def test_dense_keys_beyond_2_53_are_exact():
    keys = np.uint64(2**63) + np.arange(0, 3000, 3, dtype=np.uint64)
    idx = RadixSpline(keys, epsilon=1)
    idx._check()
    assert idx.num_spline_points == 2  # one line: keys 3 apart, positions 1 apart
    assert idx.max_error <= 1  # t = dx / w rounds just below an integer at some keys: floor takes 1 off
    for k in keys[::37].tolist():
        assert idx.lower_bound(k) == int(np.searchsorted(keys, np.uint64(k)))
        assert idx.lower_bound(k + 1) == idx.upper_bound(k) == int(np.searchsorted(keys, np.uint64(k))) + 1
        assert k in idx and (k + 1) not in idx
    assert idx.lower_bound(2**63 + 1) == 1 and idx.upper_bound(float(2**63)) == 1


def test_signed_zero_and_infinities():
    keys = np.array([-np.inf, -1.0, -0.0, 0.0, -0.0, 5e-324, 1.0, np.inf])
    idx = RadixSpline(keys, epsilon=1)
    idx._check()
    q = np.array([-np.inf, -2.0, -0.0, 0.0, 5e-324, 0.5, np.inf])
    for side in ("left", "right"):
        method = idx.lower_bound if side == "left" else idx.upper_bound
        assert np.array_equal(method(q), np.searchsorted(idx.keys, q, side))
        assert [method(float(x)) for x in q] == np.searchsorted(idx.keys, q, side).tolist()


def test_key_images_preserve_order():
    values = {
        np.int8: [-128, -1, 0, 1, 127],
        np.int64: [-(2**63), -5, 0, 2**63 - 1],
        np.uint64: [0, 1, 2**63, 2**64 - 1],
        np.float32: [-np.inf, -3.5, -1e-45, 0.0, 1e-45, 2.0, np.inf],
        np.float64: [-np.inf, -1e300, -5e-324, 0.0, 5e-324, 1.0, np.inf],
    }
    image = numba.njit(lambda x: K.key_image(x))
    for dtype, xs in values.items():
        images = [int(image(dtype(x))) for x in xs]
        assert images == sorted(set(images)), dtype
    assert image(np.float64(-0.0)) == image(np.float64(0.0)) == 2**63


# --- the model: error bound, windows, statistics --------------------------------------------


@pytest.mark.parametrize("epsilon", [1, 8, 64])
@pytest.mark.parametrize("name", ["lognormal", "duplicates", "near_2_64", "float64"])
def test_error_bound_holds_for_every_key(name, epsilon):
    keys = SETS[name]()
    idx = RadixSpline(keys, epsilon=epsilon)
    pos, lo, hi = idx.predict(keys)
    lb = np.searchsorted(keys, keys)
    assert ((lo <= lb) & (lb + 1 <= hi)).all(), "a key outside its window"
    assert (lb - pos >= -epsilon).all() and (lb - pos <= epsilon + 1).all(), "the spline breaks epsilon"
    assert hi.max() - lo.min() > 0 and (hi - lo).max() <= 2 * epsilon + 2
    err = np.abs(lb - pos)
    assert idx.max_error == err.max()
    assert idx.avg_log2_error == pytest.approx(np.log2(err + 1.0).mean())
    # spline points: first and last distinct keys, each at its first position, interpolated exactly
    images, positions = idx.arrays.spline[0::2], idx.arrays.spline[1::2]
    assert positions[0] == 0 and positions[-1] == lb[-1]
    assert idx.num_spline_points == len(images) and (np.diff(images) > 0).all()


def test_smaller_epsilon_means_more_points_and_narrower_windows():
    keys = _lognormal()
    small, large = RadixSpline(keys, epsilon=4), RadixSpline(keys, epsilon=128)
    assert small.num_spline_points > 4 * large.num_spline_points
    assert small.max_error <= 5 < large.max_error <= 129
    assert small.avg_log2_error < large.avg_log2_error
    assert small.epsilon == 4 and large.epsilon == 128


def test_default_stays_within_one_percent_of_the_keys():
    keys = _lognormal(400_000)
    idx = RadixSpline(keys)
    assert idx.size_in_bytes() <= 0.01 * keys.nbytes
    assert idx.size_in_bytes() == idx.arrays.meta.nbytes + idx.arrays.spline.nbytes
    assert idx.radix_bits == default_radix_bits(idx.num_spline_points, keys.nbytes) > 0
    # the rule: round(log2(points)) + 1 bits, fewer when the budget is short
    assert default_radix_bits(1000, 10**9) == 11
    assert default_radix_bits(2**30, 10**15) == 24
    assert default_radix_bits(1000, 10**6) == 9  # over budget: a quarter of the spline's bytes
    assert default_radix_bits(1, 10**9) == 0


def test_default_epsilon_is_the_first_that_fits_the_budget():
    keys = np.cumsum((np.random.default_rng(9).pareto(1.0, 200_000) * 1000).astype(np.uint64) + np.uint64(1))
    idx = RadixSpline(keys)  # heavy-tailed gaps: epsilon 32 needs too many points
    idx._check()
    assert idx.epsilon == 64 and idx.config.epsilon is None
    assert idx.size_in_bytes() <= 0.01 * keys.nbytes < RadixSpline(keys, epsilon=32).size_in_bytes()
    assert idx.max_error <= 65
    assert RadixSpline(_lognormal(400_000)).epsilon == 32
    assert RadixSpline(keys[:50]).epsilon == 256  # no spline fits 1% of 400 bytes: the last rung


def test_radix_table_narrows_segment_searches():
    keys = np.unique(np.random.default_rng(8).integers(0, 2**50, 100_000, dtype=np.uint64))
    idx = RadixSpline(keys, epsilon=2, radix_bits=10)
    table = idx._table.astype(np.int64)
    assert len(table) == 2**10 + 1 and table[0] == 0 and table[-1] == idx.num_spline_points
    assert np.diff(table).max() < idx.num_spline_points // 4  # no bucket holds most points
    assert np.array_equal(idx.lower_bound(keys), np.arange(len(keys)))


def test_predict_scalar_array_and_beyond_the_keys():
    keys = _lognormal(20_000)
    idx = RadixSpline(keys)
    p, a, b = idx.predict(int(keys[100]))
    assert all(isinstance(x, int) for x in (p, a, b)) and a <= 100 < b
    assert idx.predict(-1)[:2] == (0, 0)  # below the keys: predicted as the first key
    assert idx.predict(2**64) == (len(keys),) * 3
    pos, lo, hi = idx.predict(np.array([[0, 2**64 - 1]], dtype=np.uint64))
    assert pos.shape == (1, 2) and (0 <= lo).all() and (hi <= len(keys)).all()


def test_empty_one_key_and_one_value():
    empty = RadixSpline(np.zeros(0, dtype=np.uint64))
    empty._check()
    assert empty.lower_bound(5) == 0 and 5 not in empty and empty.num_spline_points == 0
    assert empty.predict(3) == (0, 0, 0) and empty.lower_bound(np.arange(3)).tolist() == [0, 0, 0]
    one = RadixSpline(np.array([7], dtype=np.int8))
    one._check()
    assert [one.lower_bound(q) for q in (6, 7, 8)] == [0, 0, 1] and one.num_spline_points == 1
    same = RadixSpline(np.full(1000, 3.5))
    same._check()
    assert same.num_spline_points == 1 and same.upper_bound(3.5) == 1000 and same.lower_bound(3.5) == 0
    assert same.predict(np.array([3.0, 4.0]))[0].tolist() == [0, 1000]


def test_batch_variant():
    keys = _lognormal(10_000)
    idx = RadixSpline(keys, epsilon=8)
    width = int(idx.arrays.meta[K.ERR_HI] - idx.arrays.meta[K.ERR_LO])
    assert 8 < width <= 18 and idx._top == lift_top(width) and idx.batch_variant == "group x32"
    assert RadixSpline(keys, interleaved=False).batch_variant == "loop"


def test_check_detects_a_broken_window_and_table():
    keys = _lognormal(50_000)
    idx = RadixSpline(keys, epsilon=16)
    idx._check()
    idx.arrays.meta[K.ERR_LO] = 0
    idx.arrays.meta[K.ERR_HI] = 1
    with pytest.raises(AssertionError, match="outside their predicted window"):
        idx._check()
    q = _queries(keys)
    for mode, side in ((0, "left"), (1, "right")):  # the search gallops out: answers stay exact
        assert np.array_equal(idx._search_array(q, mode), np.searchsorted(keys, q, side))
        assert np.array_equal(idx._search_loop(q, mode), np.searchsorted(keys, q, side))

    idx = RadixSpline(keys, epsilon=16)
    rises = np.flatnonzero(np.diff(idx._table.astype(np.int64)) > 0) + 1
    step = rises[len(rises) // 2]
    idx._table[step] = idx._table[step - 1]  # still a valid, rising table, but wrong
    with pytest.raises(AssertionError, match="radix table entry"):
        idx._check()

    idx = RadixSpline(keys, epsilon=16)
    idx.arrays.spline[3] += 1  # a spline point off its key's position
    with pytest.raises(AssertionError, match="first position"):
        idx._check()


# --- saving, loading, pickling ---------------------------------------------------------------


@pytest.mark.parametrize("mmap", [True, False], ids=["mmap", "read"])
@pytest.mark.parametrize("name", ["lognormal", "int64_negatives", "float64"])
def test_save_load_round_trip(tmp_path, name, mmap):
    keys = SETS[name]()[::10]
    idx = RadixSpline(keys, np.arange(len(keys)) * 3, epsilon=8, radix_bits=12)
    path = tmp_path / "rs.lidx"
    idx.save(path)
    loaded = learnedidx.load(path, mmap=mmap)
    assert type(loaded) is RadixSpline and loaded.config == idx.config and loaded._stats == idx._stats
    assert np.array_equal(loaded.arrays.meta, idx.arrays.meta) and np.array_equal(loaded.arrays.spline, idx.arrays.spline)
    loaded._check()
    q = _queries(keys)
    for mode in (0, 1, 2):
        assert np.array_equal(loaded._search_array(q, mode), idx._search_array(q, mode))
    assert loaded.get(keys[5].item()) == idx.get(keys[5].item())
    assert loaded.lower_bound(q[0].item()) == idx.lower_bound(q[0].item())


@pytest.mark.parametrize("keys", [np.zeros(0, np.uint64), np.array([7], np.int8), np.full(5, 2.0)],
                         ids=["empty", "one", "one-value"])
def test_save_load_tiny(tmp_path, keys):
    idx = RadixSpline(keys)
    idx.save(tmp_path / "t.lidx")
    for mmap in (True, False):
        loaded = learnedidx.load(tmp_path / "t.lidx", mmap=mmap)
        loaded._check()
        assert loaded.lower_bound(2.0) == idx.lower_bound(2.0) and len(loaded) == len(keys)


def test_pickle_round_trip():
    keys = _lognormal(30_000)
    idx = RadixSpline(keys, epsilon=8)
    idx.lower_bound(5)  # install the scalar fast path: it must not travel
    clone = pickle.loads(pickle.dumps(idx))
    clone._check()
    assert np.shares_memory(clone._table, clone.arrays.meta)
    q = _queries(keys)
    assert np.array_equal(clone.lower_bound(q), idx.lower_bound(q))
    assert clone.lower_bound(int(keys[10])) == 10 and clone.config == idx.config


def _forge_section(path, name, edit):
    """Apply ``edit`` to section ``name`` of a saved index and fix every checksum, as someone
    crafting a file would: the file stays well-formed, only its content lies."""
    raw = bytearray(path.read_bytes())
    hlen = struct.unpack_from("<I", raw, 12)[0]
    header = json.loads(raw[24:24 + hlen])
    (section,) = [s for s in header["sections"] if s["name"] == name]
    start, end = section["offset"], section["offset"] + section["nbytes"]
    array = np.frombuffer(bytes(raw[start:end]), dtype=section["dtype"]).copy()
    edit(array)
    raw[start:end] = array.tobytes()
    section["crc32"] = f"{zlib.crc32(array.tobytes()):08x}"
    text = json.dumps(header, separators=(",", ":")).encode()
    assert len(text) == hlen
    pre = persist.MAGIC + struct.pack("<III", persist.FORMAT_VERSION, hlen, zlib.crc32(text))
    raw[:24 + hlen] = pre + struct.pack("<I", zlib.crc32(pre)) + text
    path.write_bytes(bytes(raw))


def _set(slot, value):
    def edit(meta):
        meta[slot] = value
    return edit


def _table_entry(i, value):
    def edit(meta):
        meta[K.HEADER:].view(np.uint32)[i] = value
    return edit


def _spline_slot(i, value):
    def edit(spline):
        spline[i] = value
    return edit


FORGERIES = [
    ("meta", _set(K.N, 10**6), "keys"),
    ("meta", _set(K.POINTS, 10**6), "spline points"),
    ("meta", _set(K.POINTS, 1), "spline points"),
    ("meta", _set(K.RADIX_BITS, 40), "radix bits"),
    ("meta", _set(K.RADIX_BITS, 4), "table needs"),
    ("meta", _set(K.SHIFT, 64), "shift"),
    ("meta", _set(K.SHIFT, 0), "does not fit"),
    ("meta", _set(K.MIN_IMAGE, 12345), "key range"),
    ("meta", _set(K.RANGE, -1), "key range"),
    ("meta", _set(K.ERR_HI, 2**62), "window bounds"),
    ("meta", _set(K.ERR_LO, 1), "window bounds"),
    ("meta", _table_entry(5, 2**31), "radix table"),
    ("meta", _table_entry(2**10, 0), "radix table"),  # the last entry (the sentinel)
    ("meta", lambda m: m.__setitem__(slice(K.HEADER, None), 0), "radix table"),
    ("spline", _spline_slot(4, 0), "strictly increasing"),
    ("spline", _spline_slot(5, 10**9), "positions"),
    ("spline", _spline_slot(0, 0), "key range"),
]


@pytest.mark.parametrize("section, edit, match", FORGERIES,
                         ids=[f"{s}-{m}-{i}" for i, (s, _, m) in enumerate(FORGERIES)])
def test_forged_files_are_refused(tmp_path, section, edit, match):
    keys = _lognormal(5000)
    RadixSpline(keys, epsilon=8, radix_bits=10).save(tmp_path / "rs.lidx")
    _forge_section(tmp_path / "rs.lidx", section, edit)
    for mmap in (True, False):
        with pytest.raises(IndexFileError, match=match):
            learnedidx.load(tmp_path / "rs.lidx", mmap=mmap)


def test_forged_but_consistent_file_answers_exactly(tmp_path):
    """A file whose model lies within the checked layout (windows too narrow, a wrong spline
    position) loads; the search gallops out of the wrong windows and answers stay exact."""
    keys = _lognormal(5000)
    RadixSpline(keys, epsilon=8, radix_bits=10).save(tmp_path / "rs.lidx")
    _forge_section(tmp_path / "rs.lidx", "meta", lambda m: m.__setitem__(slice(K.ERR_LO, K.ERR_HI + 1), (0, 1)))
    _forge_section(tmp_path / "rs.lidx", "spline", lambda spline: spline.__setitem__(5, spline[3]))
    loaded = learnedidx.load(tmp_path / "rs.lidx")
    with pytest.raises(AssertionError):
        loaded._check()
    q = _queries(keys)
    assert np.array_equal(loaded.lower_bound(q), np.searchsorted(keys, q))
    assert all(loaded.upper_bound(x) == np.searchsorted(keys, x, "right") for x in q[:300].tolist())


# --- configuration ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    "options, error, match",
    [
        (dict(epsilon=0), ValueError, r"epsilon must be in \[1, "),
        (dict(epsilon=2.5), TypeError, "epsilon must be an int"),
        (dict(epsilon=True), TypeError, "epsilon must be an int"),
        (dict(radix_bits=29), ValueError, r"radix_bits must be in \[0, 28\]"),
        (dict(radix_bits=-1), ValueError, "radix_bits"),
        (dict(radix_bits="8"), TypeError, "radix_bits must be an int"),
        (dict(parallel_threshold=0), ValueError, "parallel_threshold"),
        (dict(interleaved="yes"), TypeError, "interleaved must be True or False"),
        (dict(eps=4), TypeError, "unknown options"),
        (dict(config=RadixSplineConfig(), epsilon=4), TypeError, "not both"),
        (dict(config=dict(epsilon=4)), TypeError, "RadixSplineConfig"),
    ],
)
def test_bad_config_errors(options, error, match):
    with pytest.raises(error, match=match):
        RadixSpline(np.arange(10), **options)


def test_config_object_and_numpy_ints():
    config = RadixSplineConfig(epsilon=np.int64(4), radix_bits=np.int32(6))
    assert type(config.epsilon) is int and config.radix_bits == 6
    idx = RadixSpline(np.arange(100, dtype=np.int16) ** 2, config=config)
    idx._check()
    assert idx.config is config and idx.epsilon == 4
    with pytest.raises(AttributeError):
        config.epsilon = 8
