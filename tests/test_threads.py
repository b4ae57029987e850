"""Threads hammering one index: a static RMI read from several threads answers every call
exactly; a DynamicRMI serializes writes, and its reads never see a write half done.

DynamicRMI writers own disjoint keys, so the final contents are known whatever the interleaving.
Pairs of keys ``(2k, 2k + 1)`` are only ever written together (one ``update`` or ``delete``
call), so every single read call must see both or neither: a torn state shows as a lone half.
"""

from __future__ import annotations

import sys
import threading

import numba
import numpy as np
import pytest

from learnedidx import RMI, DynamicRMI

PAIRS = 4096  #: pair keys 0 .. 2 * PAIRS - 1, written by the pair writers
SINGLE_BASE = 1 << 20  #: keys from here on are written one at a time by the single writers


def _pair_writer(idx, seed, owner, writers, rounds, final):
    """Upsert and delete whole pairs among those with ``k % writers == owner``."""
    rng = np.random.default_rng(seed)
    mine = np.arange(owner, PAIRS, writers)
    for _ in range(rounds):
        ks = rng.choice(mine, size=int(rng.integers(1, 64)), replace=False)
        keys = np.sort(np.concatenate([2 * ks, 2 * ks + 1])).astype(np.int64)
        if rng.random() < 0.7:
            v = rng.integers(0, 1 << 40, len(ks))
            vals = np.repeat(v[np.argsort(ks)], 2)  # both halves of a pair share a value
            idx.update(keys, vals)
            for key, value in zip(keys.tolist(), vals.tolist()):
                final[key] = value
        else:
            idx.delete(keys, missing="ignore")
            for key in keys.tolist():
                final.pop(key, None)


def _single_writer(idx, seed, owner, rounds, final):
    """``idx[k] = v``, ``del idx[k]`` and ``pop`` on keys ``SINGLE_BASE + 2 j + owner``."""
    rng = np.random.default_rng(seed)
    for _ in range(rounds):
        key = SINGLE_BASE + 2 * int(rng.integers(0, 5000)) + owner
        if rng.random() < 0.75:
            value = int(rng.integers(0, 1 << 40))
            idx[key] = value
            final[key] = value
        elif rng.random() < 0.5:
            if key in final:
                del idx[key]
                del final[key]
        else:
            assert idx.pop(key, -1) == final.pop(key, -1)


def _reader(idx, seed, stop, errors, counts):
    """Batch reads whose answers must be pair-consistent within one call."""
    rng = np.random.default_rng(seed)
    while not stop.is_set():
        ks = rng.integers(0, PAIRS, 256)
        q = np.empty(512, dtype=np.int64)
        q[0::2], q[1::2] = 2 * ks, 2 * ks + 1
        found = idx.contains(q)
        values, hit = idx.get_batch(q)
        lo = int(rng.integers(0, 2 * PAIRS - 200)) & ~1
        keys, _ = idx.range(lo, lo + 200)
        ranks = idx.lower_bound(np.array([lo, lo + 200], dtype=np.int64))
        counts["reads"] += 1
        if (found[0::2] != found[1::2]).any():
            errors.append("contains saw half a pair")
        if (hit[0::2] != hit[1::2]).any() or (values[0::2][hit[0::2]] != values[1::2][hit[1::2]]).any():
            errors.append("get_batch saw half a pair")
        if len(keys) % 2 or (keys[0::2] + 1 != keys[1::2]).any():
            errors.append("range saw half a pair")
        if (ranks[1] - ranks[0]) % 2:
            errors.append("lower_bound saw half a pair")
        if errors:
            return


@pytest.mark.parametrize("numba_threads", [1, 2])
def test_threads_hammering_one_index(numba_threads):
    if numba_threads > numba.config.NUMBA_NUM_THREADS:
        pytest.skip("needs 2 Numba threads")
    rng = np.random.default_rng(7)
    start = rng.choice(PAIRS, PAIRS // 2, replace=False)
    keys = np.sort(np.concatenate([2 * start, 2 * start + 1])).astype(np.int64)
    values = np.repeat(rng.integers(0, 1 << 40, len(start))[np.argsort(start)], 2)
    # Small buffer and merge thresholds: flushes, merges and delta growth happen all the time;
    # with 2 Numba threads, batches of 64 keys already take the parallel kernels.
    idx = DynamicRMI(keys, values, buffer_size=8, merge_min=64, merge_fraction=0.02, chunk_size=8,
                     rmi={"parallel_threshold": 64})
    # Each pair writer's reference starts with the pairs it owns.
    owners = {0: {}, 1: {}}
    for key, value in zip(keys.tolist(), values.tolist()):
        owners[(key // 2) % 2][key] = value
    finals = [owners[0], owners[1], {}, {}]
    stop = threading.Event()
    errors: list = []
    counts = {"reads": 0}
    interval = sys.getswitchinterval()
    sys.setswitchinterval(1e-5)  # switch threads often: more interleavings per second

    def thread(target, *args):
        def run():
            numba.set_num_threads(numba_threads)  # a per-thread setting
            try:
                target(idx, *args)
            except BaseException as exc:  # noqa: BLE001 - reported by the assertion below
                errors.append(f"{target.__name__}: {exc!r}")
                stop.set()
        return threading.Thread(target=run)

    try:
        writers = [thread(_pair_writer, 10 + w, w, 2, 300, finals[w]) for w in range(2)]
        writers += [thread(_single_writer, 20 + w, w, 3000, finals[2 + w]) for w in range(2)]
        readers = [thread(_reader, 30 + r, stop, errors, counts) for r in range(2)]
        for t in readers + writers:
            t.start()
        for t in writers:
            t.join()
        stop.set()
        for t in readers:
            t.join()
    finally:
        sys.setswitchinterval(interval)
    assert not errors, errors[:3]
    assert counts["reads"] > 0
    expected = {}
    for final in finals:
        expected.update(final)
    order = sorted(expected)
    idx._check()
    assert idx.keys.tolist() == order
    assert idx.values.tolist() == [expected[k] for k in order]
    assert idx.merge_stats["merges"] > 0


def _static_reader(idx, keys, seed, rounds):
    """Random and sorted batches, scalar bounds, ``get`` and ``in`` on one static index, each
    answer checked against ``np.searchsorted``; returns the first wrong answer, or None."""
    rng = np.random.default_rng(seed)
    top = int(keys[-1]) + 2
    for _ in range(rounds):
        m = int(rng.integers(1, 4096))
        q = np.where(rng.random(m) < 0.5, keys[rng.integers(0, len(keys), m)],
                     rng.integers(0, top, m, dtype=np.uint64))
        if rng.random() < 0.25:
            q.sort()  # dense sorted batches take the galloping path
        for side, method in (("left", idx.lower_bound), ("right", idx.upper_bound)):
            got, expected = method(q), np.searchsorted(keys, q, side=side)
            if not np.array_equal(got, expected):
                bad = int(np.flatnonzero(got != expected)[0])
                return f"{method.__name__}(batch of {m})[{bad}] = {got[bad]}, expected {expected[bad]}"
        at = np.searchsorted(keys, q)
        present = keys[np.minimum(at, len(keys) - 1)] == q
        values, found = idx.get_batch(q, default=-1)
        if not np.array_equal(found, present) or not np.array_equal(values, np.where(present, at, -1)):
            return f"get_batch(batch of {m}) disagrees"
        for x in q[:64].tolist():
            lo = int(np.searchsorted(keys, x))
            hit = lo < len(keys) and int(keys[lo]) == x
            answers = (idx.lower_bound(x), idx.upper_bound(x), idx.get(x), x in idx)
            if answers != (lo, int(np.searchsorted(keys, x, "right")), lo if hit else None, hit):
                return f"scalar answers for {x}: {answers}"
    return None


@pytest.mark.parametrize("variant", ["group", "amac"])
def test_threads_reading_one_static_rmi(variant):
    rng = np.random.default_rng(5)
    keys = np.sort(rng.integers(0, 1 << 40, 50_000, dtype=np.uint64))
    keys[1000:1100] = keys[1000]  # a run of duplicates
    # Batches of 256 queries and more are cut into slices run in the shared pool (2 Numba threads).
    idx = RMI(keys, variant=variant, parallel_threshold=256)
    results: dict = {}
    interval = sys.getswitchinterval()
    sys.setswitchinterval(1e-5)  # switch threads often: more interleavings per second

    def run(seed):
        numba.set_num_threads(min(2, numba.config.NUMBA_NUM_THREADS))  # a per-thread setting
        try:
            results[seed] = _static_reader(idx, keys, seed, 60)
        except BaseException as exc:  # noqa: BLE001 - reported by the assertion below
            results[seed] = repr(exc)

    try:
        threads = [threading.Thread(target=run, args=(40 + t,)) for t in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    finally:
        sys.setswitchinterval(interval)
    assert results == {40 + t: None for t in range(4)}


def test_composite_reads_of_a_dynamic_rmi_see_one_state():
    """``items``, ``irange``, ``count`` and ``find_*`` each read twice (a search, then keys or
    values): a writer between the two would show a value not twice its key, a key out of
    range, or a count that is not 0 or 1."""
    keys = np.arange(0, 20_000, 2, dtype=np.int64)
    idx = DynamicRMI(keys, keys * 2, buffer_size=1)
    stop = threading.Event()

    def writer():
        rng = np.random.default_rng(9)
        while not stop.is_set():
            k = int(rng.integers(0, 20_000))
            if rng.random() < 0.5:
                idx[k] = 2 * k  # every value stays twice its key
            else:
                idx.pop(k, None)

    interval = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)
    t = threading.Thread(target=writer)
    t.start()
    problems = []
    try:
        for i in range(150):
            if any(v != 2 * k for k, v in idx.items()):
                problems.append("items() paired a key with another state's value")
            part = list(idx.irange(100, 5000))
            if part and (part[0] < 100 or part[-1] > 5000):
                problems.append(f"irange(100, 5000) gave {part[0]}..{part[-1]}")
            if idx.count(2 * i) not in (0, 1):
                problems.append(f"count({2 * i}) = {idx.count(2 * i)}")
            below = idx.find_lt(5000)
            if below is not None and below >= 5000:
                problems.append(f"find_lt(5000) = {below}")
    finally:
        stop.set()
        t.join()
        sys.setswitchinterval(interval)
    assert problems == []
