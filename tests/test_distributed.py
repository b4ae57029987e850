"""`ShardedIndex` on a local Dask cluster (two worker processes started here): exact global
answers against np.searchsorted and a single-process index, duplicates straddling shard
boundaries, ranges across shards, SOSD files mapped by the workers, a killed worker."""

from __future__ import annotations

import os
import signal
import time

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

distributed = pytest.importorskip("distributed")

from learnedidx import RMI  # noqa: E402
from learnedidx.distributed import ShardedIndex, ShardError, aligned  # noqa: E402


@pytest.fixture(scope="module")
def client():
    cluster = distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None)
    c = distributed.Client(cluster)
    yield c
    c.close()
    cluster.close()


def _kill_worker_of(client, idx, shard):
    """SIGKILL the worker process that holds ``idx``'s ``shard`` (its nanny starts a new one)."""
    address = idx._workers[shard]
    pid = client.run(os.getpid, workers=[address])[address]
    os.kill(pid, signal.SIGKILL)
    time.sleep(0.5)


def _assert_exact(idx, keys, queries):
    for mode, side in (("lower_bound", "left"), ("upper_bound", "right")):
        assert np.array_equal(getattr(idx, mode)(queries), np.searchsorted(keys, queries, side)), mode
    values, found = idx.get_batch(queries, default=-1)
    assert np.array_equal(found, np.isin(queries, keys))
    assert np.array_equal(values[found], np.searchsorted(keys, queries[found]))
    assert (values[~found] == -1).all()


def test_runs_of_duplicates_across_shard_boundaries(client):
    keys = np.repeat(np.arange(6, dtype=np.int64) * 10, [1, 7, 2, 9, 1, 4])  # 24 keys, runs cut by 5 shards
    idx = ShardedIndex(keys, client=client, shards=5)
    queries = np.arange(-5, 65, dtype=np.int64)
    _assert_exact(idx, keys, queries)
    for lo, hi in ((0, 60), (10, 11), (15, 45), (30, 30), (-100, 100)):
        got, values = idx.range(lo, hi)
        a, b = np.searchsorted(keys, [lo, hi])
        assert np.array_equal(got, keys[a:b]) and np.array_equal(values, np.arange(a, b))
    assert len(idx) == 24 and 30 in idx and 31 not in idx
    assert idx.lower_bound(30) == 10 and idx.upper_bound(30) == 19


@settings(max_examples=15, deadline=None, derandomize=True, suppress_health_check=[HealthCheck.too_slow])
@given(keys=st.lists(st.integers(-(2**63), 2**63 - 1), max_size=300), shards=st.integers(1, 7),
       queries=st.lists(st.integers(-(2**63), 2**63 - 1), max_size=50))
def test_matches_one_index_over_the_same_keys(client, keys, shards, queries):
    keys = np.sort(np.array(keys, dtype=np.int64))
    dup = np.repeat(keys, 2) if len(keys) % 2 else keys  # half the sets hold every key twice
    q = np.concatenate([np.array(queries, dtype=np.int64), dup, dup[dup < 2**63 - 1] + 1])
    idx = ShardedIndex(dup, client=client, shards=shards)
    single = RMI(dup)
    assert np.array_equal(idx.lower_bound(q), single.lower_bound(q))
    assert np.array_equal(idx.upper_bound(q), single.upper_bound(q))
    _assert_exact(idx, dup, q)


def test_values_and_float_queries(client):
    rng = np.random.default_rng(3)
    keys = np.sort(rng.integers(0, 10**12, 5000)).astype(np.uint64)
    values = rng.normal(size=5000)
    idx = ShardedIndex(keys, values, client=client, shards=3)
    single = RMI(keys, values)
    q = np.concatenate([keys[::3].astype(np.float64) + 0.5, keys[::5].astype(np.float64)])
    assert np.array_equal(idx.lower_bound(q), single.lower_bound(q))
    got, found = idx.get_batch(keys[::7])
    want, want_found = single.get_batch(keys[::7])
    assert found.all() and want_found.all() and np.array_equal(got, want)
    assert idx.size_in_bytes() > 0


def test_sosd_file_mapped_by_the_workers(client, tmp_path):
    rng = np.random.default_rng(4)
    keys = np.sort(rng.integers(0, 2**64 - 1, 30_000, dtype=np.uint64))
    path = tmp_path / "keys_uint64"
    with open(path, "wb") as f:
        f.write(np.uint64(len(keys)).tobytes())
        f.write(keys.astype("<u8").tobytes())
    idx = ShardedIndex.from_sosd(path, client=client, shards=4)
    q = np.concatenate([keys[::11], keys[::13] + np.uint64(1), np.array([0, 2**64 - 1], dtype=np.uint64)])
    _assert_exact(idx, keys, q)
    bad = tmp_path / "short_uint64"
    bad.write_bytes(np.uint64(10).tobytes() + b"\0" * 8)
    with pytest.raises(ValueError, match="does not hold"):
        ShardedIndex.from_sosd(bad, client=client)


def test_a_killed_worker_is_survived_with_exact_answers(client):
    rng = np.random.default_rng(5)
    keys = np.sort(rng.integers(0, 10**9, 20_000)).astype(np.int64)
    idx = ShardedIndex(keys, client=client, shards=2)
    q = rng.integers(-10, 10**9 + 10, 3000)
    assert np.array_equal(idx.lower_bound(q), np.searchsorted(keys, q))
    _kill_worker_of(client, idx, 1)
    assert np.array_equal(idx.lower_bound(q), np.searchsorted(keys, q))  # rebuilt and retried
    client.wait_for_workers(2, timeout=60)


def test_a_shard_that_cannot_be_rebuilt_raises_shard_error(client, tmp_path):
    rng = np.random.default_rng(6)
    keys = np.sort(rng.integers(0, 10**9, 5000)).astype(np.uint64)
    path = tmp_path / "gone_uint64"
    path.write_bytes(np.uint64(len(keys)).tobytes() + keys.tobytes())
    idx = ShardedIndex.from_sosd(path, client=client, shards=2)
    path.unlink()  # the file a lost shard would be rebuilt from
    _kill_worker_of(client, idx, 0)
    with pytest.raises(ShardError, match="shard"):
        idx.lower_bound(keys)
    client.wait_for_workers(2, timeout=60)


def test_unaligned_arrays_are_copied_aligned():
    raw = np.zeros(8 * 100 + 6, dtype=np.uint8)
    odd = np.frombuffer(raw.data, dtype=np.uint64, count=100, offset=6)
    assert odd.ctypes.data % 8 != 0
    fixed = aligned(odd)
    assert fixed.ctypes.data % 8 == 0 and np.array_equal(fixed, odd)
    ok = np.arange(10, dtype=np.uint64)
    assert aligned(ok) is ok


def test_bad_arguments(client):
    with pytest.raises(ValueError, match="shards"):
        ShardedIndex(np.arange(10), client=client, shards=0)
    with pytest.raises(ValueError, match="kind"):
        ShardedIndex(np.arange(10), client=client, kind="BTree")
    with pytest.raises(ValueError, match="NaN"):
        ShardedIndex(np.arange(10.0), client=client).lower_bound([np.nan])


def test_the_benchmark_runs_and_checks_its_answers(tmp_path, monkeypatch):
    from bench import distributed as bench

    monkeypatch.setenv("LEARNEDIDX_DATA_DIR", str(tmp_path))
    rows = bench.main(["--n", "20000", "--workers", "1", "--big", "5000", "--small", "5", "--rounds", "1",
                       "--kind", "PGM"])
    assert [r["workers"] for r in rows] == [0, 1]
    assert rows[1]["big_mkeys_s"] > 0 and rows[1]["p99_ms"] >= rows[1]["p50_ms"] > 0
    assert rows[1]["workers_rss"] > 10**7  # a worker process holds at least numpy and numba
    if rows[1]["workers_anon"] is not None:
        assert rows[1]["workers_anon"] <= rows[1]["workers_rss"] <= rows[1]["workers_peak"]
    rows = bench.main(["--n", "20000", "--workers", "1", "--big", "5000", "--small", "5", "--rounds", "1",
                       "--no-local", "--shards-per-worker", "3"])
    assert len(rows) == 1 and rows[0]["shards"] == 3 and rows[0]["vs_local"] is None


def test_the_benchmark_check_catches_every_kind_of_wrong_position():
    from bench.distributed import is_lower_bound

    keys = np.array([3, 5, 5, 5, 9], dtype=np.uint64)
    q = np.array([0, 3, 4, 5, 6, 9, 10], dtype=np.uint64)
    right = np.searchsorted(keys, q)
    assert is_lower_bound(keys, q, right)
    for i in range(len(q)):
        for delta in (-1, 1):
            wrong = right.copy()
            wrong[i] += delta
            assert not is_lower_bound(keys, q, wrong), (i, delta)
    assert not is_lower_bound(keys, q, np.searchsorted(keys, q, "right"))
    assert not is_lower_bound(keys, q, right[:-1])


def test_sosd_slices_map_any_range_of_the_file(tmp_path):
    from learnedidx.distributed import random_access, sosd_slice

    keys = np.arange(5000, dtype=np.uint64) * 7
    path = tmp_path / "k_uint64"
    path.write_bytes(np.uint64(len(keys)).tobytes() + keys.tobytes())
    for start, stop in ((0, 5000), (511, 512), (1000, 4097), (4999, 5000), (7, 7)):
        got, mapping = sosd_slice(path, start, stop, "<u8")
        assert np.array_equal(got, keys[start:stop]) and got.ctypes.data % 8 == 0
        if mapping is not None:
            random_access(mapping, release=True)
            assert np.array_equal(got, keys[start:stop])  # released pages read back from the file


def test_resident_memory_counts_what_a_process_touches():
    from bench.distributed import resident

    before = resident()
    block = np.ones(64 << 20, dtype=np.uint8)  # 64 MiB, touched
    after = resident()
    assert after["rss"] - before["rss"] > 50 << 20
    if after["anon"] is not None:
        assert after["anon"] - before["anon"] > 50 << 20 and after["peak"] >= after["rss"]
    del block


def _set_inline(value):
    from learnedidx import distributed as sharded

    sharded.INLINE = value


def test_calls_on_the_shard_thread_and_on_the_event_loop_agree(client):
    rng = np.random.default_rng(8)
    keys = np.sort(rng.integers(0, 10**6, 4000)).astype(np.int64)
    idx = ShardedIndex(keys, np.arange(4000) * 3, client=client, shards=2)
    q = rng.integers(-5, 10**6 + 5, 2000)
    try:
        for inline in (0, 1 << 30):  # every call on the shard's thread; every call on the loop
            client.run(_set_inline, inline)
            assert np.array_equal(idx.lower_bound(q), np.searchsorted(keys, q))
            assert np.array_equal(idx.upper_bound(q), np.searchsorted(keys, q, "right"))
            values, found = idx.get_batch(q, default=-1)
            assert np.array_equal(values[found], 3 * np.searchsorted(keys, q[found]))
    finally:
        client.run(_set_inline, 1 << 12)


def test_shards_send_positions_as_int32_and_values_untouched():
    from learnedidx.distributed import _Shard

    keys = np.arange(0, 300, 3, dtype=np.uint64)
    shard = _Shard(keys, None, None, 0, 100, "<u8", "RMI", {})
    q = np.array([0, 4, 299, 300], dtype=np.uint64)
    for mode in ("lower_bound", "upper_bound"):
        got = shard.answer(mode, q)
        assert got.dtype == np.int32 and np.array_equal(got, getattr(shard.index, mode)(q))
    values, found = shard.answer("get_batch", q, 7)
    assert values.dtype == np.int64 and list(found) == [True, False, False, False] and values[1] == 7
    shard.narrow = False  # a shard of 2**31 keys or more keeps int64
    assert shard.answer("lower_bound", q).dtype == np.int64


def test_big_batches_go_in_chunks_with_exact_answers(client, monkeypatch):
    from learnedidx import distributed as sharded

    monkeypatch.setattr(sharded, "CHUNK", 7)
    rng = np.random.default_rng(7)
    keys = np.sort(rng.integers(0, 1000, 300)).astype(np.int64)
    for shards in (1, 3):
        idx = ShardedIndex(keys, client=client, shards=shards)
        _assert_exact(idx, keys, rng.integers(-5, 1005, 100))
