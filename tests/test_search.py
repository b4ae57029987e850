"""The shared last-mile search of a lock-step group (``_search.search_group``) against
``np.searchsorted``, for any window: bracketing the answer or not, narrow or wider than
``WIDE_KEYS``, empty, at the array's ends, or a lookup the group skips."""

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st
from bench.kernels import GROUP
from bench.kernels import windows_lockstep as _search_groups
from learnedidx import _search as S
from learnedidx._modes import FIND, LEFT, NOT_FOUND

def _windows(draw, n, answers):
    """Per query: a window around its answer (most), one that misses it, a wide one, or a skip."""
    lo, hi = [], []
    for a in answers:
        kind = draw(st.sampled_from(["bracket", "bracket", "miss", "wide", "skip"]))
        if kind == "skip":
            lo.append(-1)
            hi.append(0)
            continue
        if kind == "bracket":
            left = draw(st.integers(0, min(a, S.WIDE_KEYS)))
            right = draw(st.integers(0, S.WIDE_KEYS - left))
            a_lo, a_hi = a - left, min(a + right, n)
        elif kind == "wide":
            a_lo = draw(st.integers(0, a))
            a_hi = draw(st.integers(max(a, min(n, a_lo + S.WIDE_KEYS + 1)), n))
        else:
            a_lo = draw(st.integers(0, n))
            a_hi = draw(st.integers(a_lo, min(n, a_lo + 2 * S.WIDE_KEYS)))
        lo.append(a_lo)
        hi.append(a_hi)
    return np.array(lo, np.int64), np.array(hi, np.int64)


@st.composite
def _cases(draw):
    n = draw(st.integers(1, 3000))
    seed = draw(st.integers(0, 2**32 - 1))
    rng = np.random.default_rng(seed)
    spread = draw(st.sampled_from([3, 50, 10**6]))  # many duplicates .. few
    keys = np.sort(rng.integers(0, spread, n)).astype(np.int64)
    m = draw(st.integers(1, 100))
    queries = rng.integers(-1, spread + 1, m).astype(np.int64)
    answers = np.searchsorted(keys, queries)
    lo, hi = _windows(draw, n, answers)
    return keys, queries, lo, hi


@settings(max_examples=150, deadline=None)
@given(case=_cases(), method=st.sampled_from(sorted(S.SEARCHES.values())))
def test_search_group_answers_like_searchsorted_for_any_window(case, method):
    keys, queries, lo, hi = case
    live = lo >= 0
    left = np.searchsorted(keys, queries)
    for mode in (LEFT, FIND):
        out = np.full(len(queries), -7, np.int64)
        _search_groups(keys, queries, lo, hi, out, mode, method)
        want = left
        if mode == FIND:
            found = (left < len(keys)) & (keys[np.minimum(left, len(keys) - 1)] == queries)
            want = np.where(found, left, NOT_FOUND)
        assert np.array_equal(out[live], want[live]), mode
        assert (out[~live] == -7).all()  # skipped lookups are left alone


def test_one_wide_window_does_not_change_its_groups_narrow_answers():
    keys = np.arange(0, 20_000, 2, dtype=np.int64)
    queries = keys[np.random.default_rng(3).integers(0, len(keys), GROUP)] + 1
    answers = np.searchsorted(keys, queries)
    lo = np.maximum(answers - 3, 0)
    hi = np.minimum(answers + 3, len(keys))
    lo[5], hi[5] = 0, len(keys)  # one window over every key
    out = np.empty(GROUP, np.int64)
    _search_groups(keys, queries, lo, hi, out, LEFT, S.SEARCH_BINARY)
    assert np.array_equal(out, answers)


def test_a_missed_window_at_the_end_is_left_for_the_answer():
    """A narrow window near the array's end is searched over the group's common length from
    before its start; an answer before that start must still be found."""
    keys = np.arange(1000, dtype=np.int64)
    queries = np.array([500, 3], np.int64)
    lo = np.array([300, 998], np.int64)  # the first sets the length; the second misses
    hi = np.array([300 + S.WIDE_KEYS, 1000], np.int64)
    out = np.empty(2, np.int64)
    _search_groups(keys, queries, lo, hi, out, LEFT, S.SEARCH_BINARY)
    assert out.tolist() == [500, 3]
