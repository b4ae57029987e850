"""The RMI's batch kernels: every variant (loop, group, AMAC), every search ``top`` and slot
count, serial and parallel, against np.searchsorted; and the automatic variant choice."""

from __future__ import annotations

import numpy as np
import pytest

from learnedidx import RMI
from learnedidx import _rmi_kernels as K
from learnedidx._search import group_buffers

pytest.importorskip("hypothesis")
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.test_interleaved import MODES, expected, keys_and_queries


def _run(idx, queries, mode, variant, slots, top):
    """The variant's entry kernel over the index's arrays (the key array is not empty)."""
    out = np.full(len(queries), -7, dtype=np.int64)
    keys = idx.keys
    if variant == K.VARIANT_LOOP:
        K.lookup_loop(idx.arrays, keys, queries, out, mode, top)
    elif variant == K.VARIANT_GROUP:
        K.lookup_group(idx.arrays, keys, queries, out, mode, group_buffers(keys.dtype, K.GROUP))
    else:
        K.lookup_amac(idx.arrays, keys, queries, out, mode, top, group_buffers(keys.dtype, max(K.GROUP, slots)),
                      np.empty(slots, dtype=np.int64))
    return out


@settings(max_examples=60, deadline=None)
@given(data=keys_and_queries(), leaves=st.sampled_from([1, 3, 64]), slots=st.sampled_from([1, 3, 16]),
       top=st.sampled_from([0, 1, 4, 16, 128]), max_window=st.sampled_from([None, 1, 5, 256]))
def test_every_variant_matches_searchsorted(data, leaves, slots, top, max_window):
    """One leaf gives windows as wide as the keys (AMAC halves them step by step, lifting is
    skipped) unless a ``max_window`` makes it hybrid; many leaves give narrow ones. Any
    ``top`` must give the same answers."""
    keys, queries = data
    idx = RMI(keys, stages=("linear", "linear"), branching_factor=leaves, max_window=max_window)
    idx._check()
    for mode in MODES:
        want = expected(keys, queries, mode)
        for variant in K.VARIANTS.values():
            if len(keys):
                assert np.array_equal(_run(idx, queries, mode, variant, slots, top), want), variant


@pytest.mark.parametrize("m", [0, 1, 31, 32, 33, 4095, 4101, 12305])
def test_batch_sizes_across_groups_slots_and_threads(m):
    """Every variant, in one thread and split over threads (``parallel_threshold=1``)."""
    rng = np.random.default_rng(m)
    keys = np.sort(rng.lognormal(0, 2, 5000) * 1e6).astype(np.int64)
    queries = np.concatenate([keys, keys + 1, [np.iinfo(np.int64).min, np.iinfo(np.int64).max]])
    queries = rng.choice(queries, m).astype(np.int64)
    for options in (dict(), dict(keys_per_leaf=2048)):
        for variant in ("loop", "group", "amac"):
            for threshold in (1 << 14, 1):
                fields = dict(interleaved=False) if variant == "loop" else dict(variant=variant)
                idx = RMI(keys, slots=16, parallel_threshold=threshold, **fields, **options)
                for mode in MODES:
                    got = idx._search_array(queries, mode)
                    assert np.array_equal(got, expected(keys, queries, mode)), (options, mode, variant, threshold)


def test_lift_top_covers_the_window():
    assert [K.lift_top(w) for w in (0, 1, 2, 3, 31, 32, 255)] == [1, 1, 2, 2, 16, 32, 128]
    assert K.lift_top(K.LIFT_MAX + 1) == 0


def test_auto_variant_follows_window_widths():
    rng = np.random.default_rng(0)
    keys = np.sort(rng.lognormal(0, 2, 200_000) * 1e9).astype(np.uint64)
    narrow = RMI(keys)
    wide = RMI(keys, keys_per_leaf=8192, max_window=None)
    assert narrow.batch_variant == "group x32"
    assert wide.batch_variant == "group x32"  # cache resident: see test_rmi's auto-variant test
    assert RMI(keys, variant="amac", slots=4).batch_variant == "amac x4"
    assert RMI(keys, interleaved=False).batch_variant == "loop"
    queries = keys[rng.integers(0, len(keys), 50_000)]
    for idx in (narrow, wide, RMI(keys, keys_per_leaf=8192, variant="amac"), RMI(keys, keys_per_leaf=8192)):
        assert np.array_equal(idx._search_loop(queries, 0), idx._search_array(queries, 0))
