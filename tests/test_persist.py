"""Saving and loading indexes: round trips, pickling, atomic saves, and every kind of bad file."""

from __future__ import annotations

import itertools
import json
import mmap
import multiprocessing
import operator
import os
import pickle
import struct
import zlib

import numpy as np
import pytest

import learnedidx
from learnedidx import RMI, IndexFileError, KeyValueIndex
from learnedidx import persist
from learnedidx.testing import check_conformance, check_index


def _align(x):
    return -(-x // 64) * 64


def _round_trip(idx, path, mmap_=True, verify=None):
    idx.save(path)
    return learnedidx.load(path, mmap=mmap_, verify=verify)


def _assert_same(loaded, idx, queries):
    """The loaded index holds the same arrays and answers like the saved one."""
    assert type(loaded) is type(idx)
    assert loaded.keys.dtype == idx.keys.dtype and np.array_equal(loaded.keys, idx.keys)
    assert loaded.values.dtype == idx.values.dtype.newbyteorder("=") and loaded.values.dtype.isnative
    assert np.array_equal(loaded.values, idx.values)
    assert not loaded.keys.flags.writeable and not loaded.values.flags.writeable
    for q in (queries, idx.keys):
        for method in ("lower_bound", "upper_bound", "contains"):
            assert np.array_equal(getattr(loaded, method)(q), getattr(idx, method)(q)), method
        assert all(np.array_equal(a, b) for a, b in zip(loaded.get_batch(q), idx.get_batch(q)))
    for q in queries[:20].tolist():
        assert loaded.lower_bound(q) == idx.lower_bound(q) and loaded.get(q, "-") == idx.get(q, "-")
    assert loaded.config == idx.config and loaded.stats == idx.stats
    assert loaded.build_time_ns == idx.build_time_ns
    # params hold integer anchors as bit patterns (some are NaNs): compare the bits.
    assert np.array_equal(loaded.arrays.meta, idx.arrays.meta) and loaded.arrays.params.tobytes() == idx.arrays.params.tobytes()
    loaded._check()


def _lognormal(n, seed, dtype=np.uint64):
    rng = np.random.default_rng(seed)
    return np.sort((rng.lognormal(0, 2, n) * 1e6).astype(dtype))


# --- round trips ----------------------------------------------------------------------------

KEY_CASES = {
    "int8": np.arange(-128, 128, 3, dtype=np.int8),
    "int16": np.arange(-3000, 3000, 7, dtype=np.int16),
    "int32": np.arange(-(2**31), 2**31 - 1, 2**21, dtype=np.int64).astype(np.int32),
    "int64": np.array([-(2**63), -5, 0, 5, 2**62, 2**63 - 1], dtype=np.int64),
    "uint8": np.arange(0, 256, 5, dtype=np.uint8),
    "uint16": np.arange(0, 65535, 99, dtype=np.uint16),
    "uint32": np.arange(0, 2**32 - 1, 2**22, dtype=np.uint64).astype(np.uint32),
    "uint64": np.uint64(2**63) + np.arange(0, 3000, 3, dtype=np.uint64),  # above 2**63
    "float16": np.array([-1.5, 0.0, 0.25, 3.0, 65504.0], dtype=np.float16),  # stored as float32
    "float32": np.array([-np.inf, -2.5, 0.7, 0.8, 1e30, np.inf], dtype=np.float32),
    "float64": np.array([-1e300, -0.0, 1e-300, 0.5, 2.0**53, 2.0**53 + 2], dtype=np.float64),
}


@pytest.mark.parametrize("mmap_", [True, False], ids=["mmap", "read"])
@pytest.mark.parametrize("dtype", list(KEY_CASES))
def test_round_trip_every_key_dtype(tmp_path, dtype, mmap_):
    keys = KEY_CASES[dtype]
    idx = RMI(keys[::-1], stages=("linear", "linear"), branching_factor=4)
    loaded = _round_trip(idx, tmp_path / "i.lidx", mmap_)
    wide = idx.keys.astype(np.float64)
    _assert_same(loaded, idx, np.concatenate([wide - 0.5, wide + 0.5, [-np.inf, 0.0, np.inf]]))


VALUE_CASES = {
    "positions": None,
    "int32": lambda n: np.arange(n, dtype=np.int32) * -3,
    "uint64": lambda n: np.uint64(2**64 - 1) - np.arange(n, dtype=np.uint64),
    "float64": lambda n: np.linspace(-1, 1, n),
    "float32": lambda n: np.linspace(-1, 1, n, dtype=np.float32),
    "bool": lambda n: np.arange(n) % 3 == 0,
    "unicode": lambda n: np.array([f"v{i}-é" for i in range(n)]),
    "bytes": lambda n: np.array([b"x" * (i % 7) for i in range(n)], dtype="S6"),
    "datetime": lambda n: np.arange(n).astype("datetime64[ns]"),
    "big-endian": lambda n: np.arange(n, dtype=">i8"),
}


@pytest.mark.parametrize("mmap_", [True, False], ids=["mmap", "read"])
@pytest.mark.parametrize("values", list(VALUE_CASES))
def test_round_trip_every_value_kind(tmp_path, values, mmap_):
    keys = _lognormal(500, seed=1)
    make = VALUE_CASES[values]
    vals = None if make is None else make(len(keys))
    idx = RMI(keys, vals)
    loaded = _round_trip(idx, tmp_path / "i.lidx", mmap_)
    _assert_same(loaded, idx, np.concatenate([keys, keys + np.uint64(1)]))
    if vals is not None:
        assert loaded.get(int(keys[7])) == vals[np.searchsorted(keys, keys[7])]


@pytest.mark.parametrize("keys", [np.zeros(0, np.uint64), np.array([7], np.int8), np.zeros(0, np.float32)],
                         ids=["empty", "one", "empty-float"])
@pytest.mark.parametrize("mmap_", [True, False], ids=["mmap", "read"])
def test_empty_and_one_key(tmp_path, keys, mmap_):
    for values in (None, np.array(["a"] * len(keys))):
        idx = RMI(keys, values)
        loaded = _round_trip(idx, tmp_path / "i.lidx", mmap_)
        assert len(loaded) == len(keys)
        _assert_same(loaded, idx, np.array([-1, 0, 6, 7, 8], dtype=np.float64))


@pytest.mark.parametrize("options", [
    dict(),
    dict(stages=("cubic", "linear", "linear_spline"), branching_factor=(4, 64), search="linear"),
    dict(stages=("radix", "linear"), search="exponential", interleaved=False, keys_per_leaf=np.int64(16)),
])
def test_round_trip_configurations(tmp_path, options):
    keys = _lognormal(20_000, seed=2)
    idx = RMI(keys, **options)
    for mmap_, verify in itertools.product((True, False), (True, False)):
        loaded = _round_trip(idx, tmp_path / "i.lidx", mmap_, verify)
        _assert_same(loaded, idx, np.concatenate([keys, keys + np.uint64(1), keys - np.uint64(1)]))


@pytest.mark.filterwarnings("ignore:overflow encountered in nextafter:RuntimeWarning")
def test_conformance_of_loaded_indexes(tmp_path):
    counter = itertools.count()

    def factory(keys, values):
        i = next(counter)
        path = tmp_path / f"c{i}.lidx"
        RMI(keys, values).save(path)
        loaded = learnedidx.load(path, mmap=bool(i % 2))
        path.unlink()  # mapped arrays outlive the name (POSIX)
        return loaded

    check_conformance(factory, max_examples=30)


def test_mmap_maps_keys_copies_structure_and_positions_are_not_written(tmp_path):
    keys = _lognormal(50_000, seed=3)
    idx = RMI(keys)
    path = tmp_path / "i.lidx"
    idx.save(path)
    assert os.path.getsize(path) < keys.nbytes + idx.size_in_bytes() + 4096  # no positions array
    loaded = learnedidx.load(path)

    def base_mmap(a):
        while a is not None and not isinstance(a, mmap.mmap):
            a = a.obj if isinstance(a, memoryview) else a.base
        return a

    assert isinstance(base_mmap(loaded.keys), mmap.mmap)
    # Structure is copied out of the mapping (a later write to the file cannot reach it).
    assert base_mmap(loaded.arrays.params) is None and base_mmap(loaded.arrays.meta) is None
    assert loaded.keys.ctypes.data % 64 == 0 and loaded.arrays.params.ctypes.data % 64 == 0
    # Model arrays keep the writable flag of built ones (same compiled kernels).
    assert loaded.arrays.meta.flags.writeable == idx.arrays.meta.flags.writeable
    read = learnedidx.load(path, mmap=False)
    assert base_mmap(read.keys) is None and read.keys.ctypes.data % 64 == 0
    check_index(lambda k, v: loaded, keys, np.arange(len(keys), dtype=np.int64))


# --- pickling -------------------------------------------------------------------------------


def test_pickle_by_arrays(tmp_path):
    keys = _lognormal(30_000, seed=4)
    idx = RMI(keys, np.arange(len(keys), dtype=np.float32))
    loaded = _round_trip(idx, tmp_path / "i.lidx", mmap_=True)
    blob = pickle.dumps(loaded, protocol=pickle.HIGHEST_PROTOCOL)
    assert b"numba" not in blob and b"CPUDispatcher" not in blob
    clone = pickle.loads(blob)
    assert clone.keys.base is None or not isinstance(clone.keys.base, mmap.mmap)
    _assert_same(clone, idx, keys + np.uint64(1))
    # Cached positions are derived: not pickled.
    plain = RMI(keys)
    plain.values
    assert len(pickle.dumps(plain)) < keys.nbytes + plain.size_in_bytes() + 10_000


def test_pickle_to_spawned_worker(tmp_path):
    keys = _lognormal(20_000, seed=5)
    idx = RMI(keys, np.arange(len(keys), dtype=np.int64) * 2)
    loaded = _round_trip(idx, tmp_path / "i.lidx", mmap_=True)
    queries = np.concatenate([keys[::7], keys[::7] + np.uint64(1)])
    with multiprocessing.get_context("spawn").Pool(1) as pool:
        got = pool.apply(operator.methodcaller("lower_bound", queries), (loaded,))
        value = pool.apply(operator.methodcaller("get", int(keys[100])), (loaded,))
    assert np.array_equal(got, idx.lower_bound(queries))
    assert value == idx.get(int(keys[100]))


# --- atomic saves and save errors -----------------------------------------------------------


def _listing(path):
    return sorted(p.name for p in path.iterdir())


@pytest.mark.parametrize("fail", ["replace", "write", "fsync"])
def test_failed_save_leaves_the_old_file_and_no_temporary(tmp_path, monkeypatch, fail):
    path = tmp_path / "i.lidx"
    old = RMI(np.arange(10, dtype=np.uint64))
    old.save(path)
    before = path.read_bytes()
    new = RMI(np.arange(5000, dtype=np.uint64))
    calls = itertools.count()

    def boom(*args, real={"replace": os.replace, "write": persist._write_all, "fsync": os.fsync}[fail]):
        if fail == "write" and next(calls) < 2:  # fail in the middle of the sections
            return real(*args)
        raise OSError(28, "No space left on device (simulated)")

    target = os if fail in ("replace", "fsync") else persist
    monkeypatch.setattr(target, {"replace": "replace", "write": "_write_all", "fsync": "fsync"}[fail], boom)
    with pytest.raises(OSError, match="simulated"):
        new.save(path)
    monkeypatch.undo()
    assert path.read_bytes() == before and _listing(tmp_path) == ["i.lidx"]
    assert len(learnedidx.load(path)) == 10
    new.save(path)
    assert len(learnedidx.load(path)) == 5000 and _listing(tmp_path) == ["i.lidx"]


def test_save_errors(tmp_path):
    keys = np.arange(5, dtype=np.int64)
    with pytest.raises(TypeError, match="dtype object"):
        RMI(keys, np.array([1, "a", None, 2.5, 3], dtype=object)).save(tmp_path / "o.lidx")
    with pytest.raises(TypeError, match="cannot hold"):
        RMI(keys, np.zeros(5, dtype=[("a", "i4"), ("b", "f8")])).save(tmp_path / "s.lidx")
    with pytest.raises(IsADirectoryError):
        RMI(keys).save(tmp_path)
    with pytest.raises(FileNotFoundError):
        RMI(keys).save(tmp_path / "missing" / "i.lidx")

    class Unregistered(RMI):
        pass

    with pytest.raises(TypeError, match="not registered"):
        Unregistered(keys).save(tmp_path / "u.lidx")
    assert _listing(tmp_path) == []


def test_register(tmp_path):
    with pytest.raises(TypeError):
        persist.register(int, "x.Int")
    with pytest.raises(TypeError, match="_restore"):
        persist.register(type("Bare", (KeyValueIndex,), {}), "x.Bare")
    with pytest.raises(ValueError, match="already registered"):
        persist.register(type("Other", (RMI,), {}), "learnedidx.RMI")
    with pytest.raises(ValueError, match="dotted identifiers"):
        persist.register(type("Bad", (RMI,), {}), "no spaces allowed")
    assert persist.registered()["learnedidx.RMI"] is RMI

    @persist.register("tests.SubRMI")
    class SubRMI(RMI):
        pass

    sub = SubRMI(np.arange(100, dtype=np.int32))
    loaded = _round_trip(sub, tmp_path / "s.lidx")
    assert type(loaded) is SubRMI and loaded.lower_bound(50) == 50


# --- bad files ------------------------------------------------------------------------------


def _read_header(path):
    raw = path.read_bytes()
    hlen = struct.unpack_from("<I", raw, 12)[0]
    return json.loads(raw[24:24 + hlen]), _align(24 + hlen), raw


def _forge(path, edit=None, version=persist.FORMAT_VERSION):
    """Rewrite path's header with ``edit(header)`` and valid checksums, keeping the layout."""
    header, start, raw = _read_header(path)
    hlen = struct.unpack_from("<I", raw, 12)[0]
    body = raw[start:]
    if edit:
        edit(header)
    end = start
    while True:  # a longer header moves every section: shift the offsets along
        text = json.dumps(header, separators=(",", ":")).encode()
        text += b" " * max(0, hlen - len(text))  # a shorter one is padded (JSON whitespace)
        new_end = _align(24 + len(text))
        if new_end == end:
            break
        for s in header["sections"]:
            s["offset"] += new_end - end
        header["file_size"] += new_end - end
        end = new_end
    pre = persist.MAGIC + struct.pack("<III", version, len(text), zlib.crc32(text))
    pre += struct.pack("<I", zlib.crc32(pre))
    path.write_bytes(pre + text + bytes(end - 24 - len(text)) + body)


@pytest.fixture
def saved(tmp_path):
    """A small index with values, saved: ``(index, path, original bytes)``."""
    keys = _lognormal(2000, seed=6)
    idx = RMI(keys, np.arange(len(keys), dtype=np.int32), branching_factor=(4, 16))
    path = tmp_path / "i.lidx"
    idx.save(path)
    return idx, path, path.read_bytes()


def _loads_all_ways(path):
    for mmap_, verify in itertools.product((True, False), (True, False)):
        learnedidx.load(path, mmap=mmap_, verify=verify)


def test_forge_helper_keeps_a_good_file_good(saved):
    idx, path, raw = saved
    _forge(path)
    assert path.read_bytes() == raw
    _loads_all_ways(path)


def test_missing_directory_and_not_an_index(tmp_path, saved):
    with pytest.raises(FileNotFoundError):
        learnedidx.load(tmp_path / "nope.lidx")
    with pytest.raises(IsADirectoryError):
        learnedidx.load(tmp_path)
    os.mkfifo(tmp_path / "fifo")
    with pytest.raises(IndexFileError, match="not a regular file"):  # not a hang waiting for a writer
        learnedidx.load(tmp_path / "fifo")
    cases = {
        b"": "empty file",
        b"hello, world\n" * 10: "not a learnedidx index file",
        b"\x89PNG\r\n\x1a\n" + bytes(100): "not a learnedidx index file",
        persist.MAGIC[:5]: "truncated",
        persist.MAGIC + bytes(16): "corrupt preamble",
        np.arange(1000, dtype=np.uint64).tobytes(): "not a learnedidx index file",  # a SOSD file
    }
    for i, (content, match) in enumerate(cases.items()):
        bad = tmp_path / f"bad{i}"
        bad.write_bytes(content)
        for mmap_ in (True, False):
            with pytest.raises(IndexFileError, match=match) as info:
                learnedidx.load(bad, mmap=mmap_)
            assert str(bad) in str(info.value) and isinstance(info.value, ValueError)
    again = pickle.loads(pickle.dumps(info.value))  # crosses process boundaries too
    assert type(again) is IndexFileError and str(again) == str(info.value)


def test_truncation_at_every_boundary(saved):
    idx, path, raw = saved
    header, header_end, _ = _read_header(path)
    cuts = {1, 7, 8, 12, 16, 20, 23, 24, 25, 24 + 10, header_end - 1, header_end, len(raw) - 1}
    for s in header["sections"]:
        off, n = s["offset"], s["nbytes"]
        cuts |= {off, off + 1, off + n // 2, off + n - 1, off + n, off + n + 1}
    for cut in sorted(c for c in cuts if 0 < c < len(raw)):
        path.write_bytes(raw[:cut])
        for mmap_, verify in itertools.product((True, False), (True, False)):
            with pytest.raises(IndexFileError, match="truncated|corrupt|not a learnedidx") as info:
                learnedidx.load(path, mmap=mmap_, verify=verify)
            assert str(path) in str(info.value), cut
    path.write_bytes(raw + bytes(64))
    with pytest.raises(IndexFileError, match="trailing bytes"):
        learnedidx.load(path)
    path.write_bytes(raw)
    _loads_all_ways(path)


def test_random_byte_flips(saved):
    idx, path, raw = saved
    header, _, _ = _read_header(path)
    bulk = np.zeros(len(raw), dtype=bool)  # bytes of the key and value sections
    for s in header["sections"]:
        if s["name"] in ("keys", "values"):
            bulk[s["offset"]:s["offset"] + s["nbytes"]] = True
    rng = np.random.default_rng(20240611)
    # Half the flips anywhere, half outside the keys and values (the header and model are small).
    positions = np.concatenate([rng.integers(0, len(raw), 100), rng.choice(np.flatnonzero(~bulk), 100)])
    queries = np.concatenate([idx.keys, idx.keys + np.uint64(1)])
    undetected = 0
    for pos in positions.tolist():
        flipped = bytearray(raw)
        flipped[pos] ^= int(rng.integers(1, 256))
        path.write_bytes(flipped)
        for mmap_ in (True, False):
            with pytest.raises(IndexFileError) as info:
                learnedidx.load(path, mmap=mmap_, verify=True)
            assert str(path) in str(info.value)
        if not bulk[pos]:
            with pytest.raises(IndexFileError):
                learnedidx.load(path, mmap=True, verify=False)
            continue
        # Inside the keys or values without verification: undetected, but never a crash.
        loaded = learnedidx.load(path, mmap=True, verify=False)
        loaded.lower_bound(queries), loaded.get_batch(queries), loaded.lower_bound(int(idx.keys[5]))
        undetected += 1
    assert undetected > 10
    path.write_bytes(raw)
    _loads_all_ways(path)


def test_newer_version_is_refused(saved):
    idx, path, raw = saved
    _forge(path, version=persist.FORMAT_VERSION + 1)
    with pytest.raises(IndexFileError, match="written by a newer learnedidx"):
        learnedidx.load(path)
    _forge(path, version=0)
    with pytest.raises(IndexFileError, match="unsupported file format version 0"):
        learnedidx.load(path)


def _section(header, name):
    return next(s for s in header["sections"] if s["name"] == name)


def _set(name, **fields):
    return lambda h: _section(h, name).update(fields)


@pytest.mark.parametrize("edit, match", [
    # A header claiming more than the file holds: refused before any allocation.
    (_set("keys", shape=[2**59], nbytes=2**62), "truncated: section 'keys' ends at byte"),
    (_set("params", shape=[2**61], nbytes=2**64), "truncated"),
    (lambda h: h.update(file_size=2**50), "truncated: the header says"),
    (_set("keys", shape=[3000]), "is 24000 bytes, the header says 16000"),
    (_set("keys", shape=[-1], nbytes=-8), "non-negative"),
    (_set("keys", shape=[2000, 1.5]), "non-negative integers"),
    (_set("keys", dtype="|O"), "not allowed"),
    (_set("keys", dtype=">u8"), "not allowed"),
    (_set("values", dtype="<V4"), "not allowed"),
    (_set("values", dtype="<U99999999999"), "not allowed"),
    (lambda h: _section(h, "values").update(offset=_section(h, "values")["offset"] + 64), "'values' starts at byte"),
    (_set("meta", crc32=7), "8 hex digits"),
    (_set("meta", crc32="00000000"), "corrupt section 'meta'"),
    (lambda h: h["sections"].append(dict(h["sections"][0])), "repeated name"),
    (lambda h: h["sections"][0].pop("crc32"), "exactly name"),
    (lambda h: h.update(sections={"keys": 1}), "sections must be a list"),
    (lambda h: h.update(format="something else"), "format is"),
    (lambda h: h.update(type="baselines.NoSuchIndex"), "unknown index type 'baselines.NoSuchIndex'"),
    (lambda h: h.update(type=["learnedidx.RMI"]), "type must be a string"),
    (lambda h: h["config"].pop("stats"), "inconsistent learnedidx.RMI state"),
    (lambda h: h["config"]["options"].update(branching_factor=[8, 16]), "stage 1 record"),
    (lambda h: h["config"]["options"].update(branching_factor=[4, 32]), "stage 2 record"),
    (lambda h: h["config"]["options"].update(stages=["linear", "cubic"]), "inconsistent"),
    (lambda h: h["config"]["options"].update(search="linear"), "meta header"),
    (lambda h: h["config"]["options"].update(bogus=1), "unexpected keyword"),
    (lambda h: h["config"].update(positions=True), "positions"),
    (lambda h: h["config"].update(build_time_ns="soon"), "build_time_ns"),
    (lambda h: h.clear(), "format is None"),
])
def test_forged_headers_are_refused(saved, edit, match):
    idx, path, raw = saved
    _forge(path, edit)
    for mmap_ in (True, False):
        with pytest.raises(IndexFileError, match=match) as info:
            learnedidx.load(path, mmap=mmap_)
        assert str(path) in str(info.value)


def test_bad_json_and_padding(saved):
    idx, path, raw = saved
    header, header_end, _ = _read_header(path)
    hlen = struct.unpack_from("<I", raw, 12)[0]
    for text in (b"{" * hlen, b"[" * 100_000, b"\xff" * hlen, b"1" * hlen):
        text = text[:hlen].ljust(hlen)
        pre = persist.MAGIC + struct.pack("<III", 1, hlen, zlib.crc32(text))
        pre += struct.pack("<I", zlib.crc32(pre))
        path.write_bytes(pre + text + raw[24 + hlen:])
        with pytest.raises(IndexFileError, match="not valid JSON|malformed"):
            learnedidx.load(path)
    # Nonzero padding (checksummed by nothing else) is corruption too.
    meta = _section(header, "meta")
    pad_at = meta["offset"] + meta["nbytes"]
    assert pad_at % 64
    for at in (header_end - 1, pad_at, len(raw) - 1):
        bad = bytearray(raw)
        bad[at] = 1
        path.write_bytes(bad)
        with pytest.raises(IndexFileError, match="padding|corrupt"):
            learnedidx.load(path, verify=False)


def test_verify_covers_keys_and_values(saved):
    idx, path, raw = saved
    header, _, _ = _read_header(path)
    keys = _section(header, "keys")
    bad = bytearray(raw)
    bad[keys["offset"] + 8 * 1000 + 7] ^= 0x80  # the top byte of keys[1000]
    path.write_bytes(bad)
    loaded = learnedidx.load(path)  # mmap, verify=False: the key sections are not read
    with pytest.raises(AssertionError, match="not sorted"):
        loaded._check()
    for mmap_, verify in ((True, True), (False, None), (False, True)):
        with pytest.raises(IndexFileError, match="corrupt section 'keys'"):
            learnedidx.load(path, mmap=mmap_, verify=verify)
    assert len(learnedidx.load(path, mmap=False, verify=False)) == len(idx)


@pytest.mark.parametrize("mmap", [True, False])
@pytest.mark.parametrize("dtype", [np.uint64, np.float64, np.int32])
def test_btree_round_trip(tmp_path, mmap, dtype):
    """The B+tree saves and loads like the RMI: same answers, _check() holds, no rebuild."""
    baselines = pytest.importorskip("baselines")
    rng = np.random.default_rng(11)
    keys = np.sort(rng.integers(0, 10**6, 5000).astype(dtype))
    tree = baselines.BTree(keys, node_keys=8)
    path = tmp_path / "tree.lidx"
    tree.save(path)
    loaded = learnedidx.load(path, mmap=mmap)
    assert type(loaded) is baselines.BTree and loaded.node_keys == 8
    loaded._check()
    queries = np.concatenate([keys[::7], keys[::11] + dtype(1)])
    for side in ("lower_bound", "upper_bound"):
        assert np.array_equal(getattr(loaded, side)(queries), getattr(tree, side)(queries))
    assert loaded.lower_bound(int(keys[100])) == tree.lower_bound(int(keys[100]))


def test_btree_file_with_a_wrong_meta_is_refused(tmp_path):
    baselines = pytest.importorskip("baselines")
    tree = baselines.BTree(np.arange(1000, dtype=np.uint64), node_keys=4)
    config, arrays = tree._state()
    arrays = dict(arrays, meta=arrays["meta"].copy())
    arrays["meta"][-1] += 1
    with pytest.raises(ValueError, match="meta does not describe"):
        baselines.BTree._from_state(config, arrays)
