"""Threads hammering one DynamicRMI: writes serialized, reads never see a write half done.

Writers own disjoint keys, so the final contents are known whatever the interleaving. Pairs
of keys ``(2k, 2k + 1)`` are only ever written together (one ``update`` or ``delete`` call),
so every single read call must see both or neither: a torn state shows as a lone half.
"""

from __future__ import annotations

import sys
import threading

import numba
import numpy as np
import pytest

from learnedidx import DynamicRMI

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
