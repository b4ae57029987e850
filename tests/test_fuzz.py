"""The fuzzer's own checks catch what they are for (the long run is ``python -m
learnedidx.testing.fuzz --seconds N``)."""

from __future__ import annotations

import numpy as np
import pytest

from learnedidx import RMI
from learnedidx.testing import fuzz


class OffByOne:
    """An index whose upper bounds are one too high past the middle key."""

    def __init__(self, keys):
        self.keys = np.sort(keys)

    def lower_bound(self, q):
        return np.searchsorted(self.keys, q, side="left")

    def upper_bound(self, q):
        r = np.searchsorted(self.keys, q, side="right")
        return r + (q > self.keys[len(self.keys) // 2])


def test_batches_catch_a_wrong_answer():
    keys = np.arange(0, 10_000, 3, dtype=np.int64)
    counts = fuzz.Counts()
    fuzz.check_batches(RMI(keys), keys, np.random.default_rng(0), counts, "RMI")
    assert counts["batch queries"] == 40_000 and "wrong answers" not in counts
    with pytest.raises(AssertionError, match="right bound"):
        fuzz.check_batches(OffByOne(keys), keys, np.random.default_rng(0), counts, "OffByOne")
    assert counts["wrong answers"] > 0


def test_files_round_trip_and_corruptions(tmp_path):
    keys = np.unique(np.random.default_rng(4).integers(0, 2**40, 3000))
    counts = fuzz.Counts()
    fuzz.check_files(RMI(keys), np.random.default_rng(1), counts, "RMI", str(tmp_path))
    assert counts["files"] == 10 and "wrong answers" not in counts


@pytest.mark.parametrize("seed", range(6))
def test_drawn_keys_are_valid(seed):
    keys = fuzz.draw_keys(np.random.default_rng(seed))
    assert keys.ndim == 1 and keys.dtype.name in fuzz.DTYPES
    assert not (keys.dtype.kind == "f" and np.isnan(keys).any())
