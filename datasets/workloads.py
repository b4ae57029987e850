"""SOSD-style lookup workloads: seeded queries with their expected lower-bound answers.

``make_workload(keys, n_lookups, seed, negative_ratio)`` returns
``(queries, answers)``:

* present lookups (a share ``1 - negative_ratio``) are drawn uniformly, with
  replacement, from the DISTINCT keys, so heavily duplicated keys are not
  over-represented;
* absent lookups (``round(n_lookups * negative_ratio)`` of them) are values not
  in the key set. The candidate "gaps" are every open interval between
  neighbouring distinct keys that contains at least one representable value,
  plus the range below the minimum and the range above the maximum when
  representable (for float64 keys those two are limited to one key-span beyond
  the extremes). A query picks a gap uniformly, then a value uniformly inside
  it, so absent lookups follow the key distribution rather than the gap sizes;
* queries are shuffled (seeded) and ``answers`` equal ``np.searchsorted(keys,
  queries, "left")`` as int64: the position of the first key >= the query.

Saved workloads are counted files like SOSD's: a little-endian uint64 count,
then 16-byte records ``(key, answer)``: the key (of the data set's dtype,
zero-padded to 8 bytes) and the answer as a little-endian int64 (SOSD's own
files store a payload-derived result there instead). Names follow
``{dataset}_equality_lookups_{N}`` with N formatted like data set sizes (``10M``),
plus ``_neg{P}pct`` when a share P% of lookups is absent.
"""

from __future__ import annotations

import errno
import os
import re
from pathlib import Path

import numpy as np

from .sosd import SUPPORTED_DTYPES, dtype_name, format_size, read_counted, write_counted

_WORKLOAD_NAME = re.compile(rf"_(?P<dtype>{'|'.join(SUPPORTED_DTYPES)})_equality_lookups_\d+[KM]?(?:_neg[0-9.]+pct)?$")
_SIGN_BIT = np.uint64(1 << 63)
_CHUNK = 1 << 20  # gap slots per streaming step


def lookup_record_dtype(key_dtype: str | np.dtype) -> np.dtype:
    """On-disk record of a workload file: key at offset 0, int64 answer at offset 8, 16 bytes.

    Raises ValueError for an unsupported key dtype.
    """
    key = SUPPORTED_DTYPES[dtype_name(key_dtype)]
    return np.dtype({"names": ["key", "answer"], "formats": [key, "<i8"], "offsets": [0, 8], "itemsize": 16})


def workload_name(dataset: str, n_lookups: int, negative_ratio: float = 0.0) -> str:
    """File name of a workload for the data set file ``dataset`` (e.g. ``books_200M_uint64_equality_lookups_10M``)."""
    name = f"{Path(dataset).name}_equality_lookups_{format_size(n_lookups)}"
    if negative_ratio:
        name += f"_neg{negative_ratio * 100:g}pct"
    return name


def _to_ordered_u64(values: np.ndarray) -> np.ndarray:
    """Map integers to uint64 preserving order (signed: flip the sign bit)."""
    if values.dtype.kind == "u":
        return values.astype(np.uint64)
    return values.astype(np.int64).view(np.uint64) ^ _SIGN_BIT


def _from_ordered_u64(values: np.ndarray, dtype: np.dtype) -> np.ndarray:
    if dtype.kind == "u":
        return values.astype(dtype)
    return (values ^ _SIGN_BIT).view(np.int64).astype(dtype)


def _float_gap_usable(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Whether some float64 lies strictly between a and b (both finite)."""
    with np.errstate(over="ignore"):  # nextafter(max float) is inf: then no room anyway
        return np.isfinite(a) & np.isfinite(b) & (np.nextafter(a, np.inf) < b)


def _sample_gaps(distinct: np.ndarray, count: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Uniformly chosen usable gap slots and a value inside each (O(D) in two chunked passes, O(count) memory).

    Slot k is the gap just below distinct[k]; slot D (= distinct.size) is
    above the maximum. Returns (slots, values): a value strictly inside each
    chosen gap. Raises ValueError if no gap has room for a value.
    """
    d = distinct
    size = d.size
    is_float = d.dtype.kind == "f"
    if is_float:
        span = max(float(d[-1]) - float(d[0]), 1.0)
        with np.errstate(over="ignore"):  # an infinite end range is simply unusable
            outer_lo, outer_hi = np.float64(d[0]) - span, np.float64(d[-1]) + span
        ends_ok = bool(_float_gap_usable(outer_lo, d[0])), bool(_float_gap_usable(d[-1], outer_hi))
    else:
        info = np.iinfo(d.dtype)
        outer_lo, outer_hi = _to_ordered_u64(np.array([info.min, info.max], dtype=d.dtype))
        ends_ok = bool(_to_ordered_u64(d[:1])[0] > outer_lo), bool(_to_ordered_u64(d[-1:])[0] < outer_hi)

    def usable(lo: int, hi: int) -> np.ndarray:  # interior slots lo..hi-1 (1 <= lo)
        if is_float:
            return _float_gap_usable(d[lo - 1 : hi - 1], d[lo:hi])
        u = _to_ordered_u64(d[lo - 1 : hi])
        return u[1:] - u[:-1] >= np.uint64(2)

    chunks = [(lo, min(size, lo + _CHUNK)) for lo in range(1, size, _CHUNK)]
    counts = np.array([np.count_nonzero(usable(lo, hi)) for lo, hi in chunks], dtype=np.int64)
    ends = np.array([k for k, ok in zip((0, size), ends_ok, strict=True) if ok], dtype=np.int64)
    first_rank = np.concatenate(([0], np.cumsum(counts)))
    total = int(first_rank[-1]) + ends.size
    if total == 0:
        raise ValueError("keys: no value of their dtype lies between or beyond them, so none is absent")
    # Sorted ranks among usable slots map chunk by chunk onto slot numbers.
    ranks = np.sort(rng.integers(0, total, size=count))
    cut = np.searchsorted(ranks, first_rank)
    slots = np.empty(count, dtype=np.int64)
    for c, (lo, hi) in enumerate(chunks):
        if cut[c] < cut[c + 1]:
            slots[cut[c] : cut[c + 1]] = np.flatnonzero(usable(lo, hi))[ranks[cut[c] : cut[c + 1]] - first_rank[c]] + lo
    slots[cut[-1] :] = ends[ranks[cut[-1] :] - first_rank[-1]]

    below = d[np.maximum(slots - 1, 0)]
    above = d[np.minimum(slots, size - 1)]
    if is_float:
        a = np.where(slots == 0, outer_lo, below)
        b = np.where(slots == size, outer_hi, above)
        t = rng.random(count)
        values = a * (1.0 - t) + b * t  # interpolation cannot overflow
        return slots, np.clip(values, np.nextafter(a, np.inf), np.nextafter(b, -np.inf))
    # Bounds in the order-preserving uint64 space; wrapped values at the ends are discarded by where().
    low = np.where(slots == 0, outer_lo, _to_ordered_u64(below) + np.uint64(1))
    high = np.where(slots == size, outer_hi, _to_ordered_u64(above) - np.uint64(1))
    values = rng.integers(low, high, endpoint=True, dtype=np.uint64)
    return slots, _from_ordered_u64(values, d.dtype)


def make_workload(
    keys: np.ndarray, n_lookups: int, seed: int = 42, negative_ratio: float = 0.0
) -> tuple[np.ndarray, np.ndarray]:
    """Seeded lookup queries over sorted ``keys`` and their lower-bound answers (see module doc).

    Answers come from how each query was made (the first position of its key,
    or of the key just above its gap), which equals np.searchsorted(keys,
    query, "left") without its cache-missing binary searches: O(n) streaming
    passes over the keys plus O(m log m) for m lookups.
    Returns (queries of keys' dtype, int64 answers). Raises ValueError for
    unsorted, empty, non-1-D, NaN-containing or unsupported keys, negative
    n_lookups, or a negative_ratio outside [0, 1].
    """
    keys = np.asarray(keys)
    if keys.ndim != 1:
        raise ValueError(f"keys: expected a 1-D array, got shape {keys.shape}")
    dtype_name(keys.dtype)
    if n_lookups < 0:
        raise ValueError(f"n_lookups: must be >= 0, got {n_lookups}")
    if not 0.0 <= negative_ratio <= 1.0:
        raise ValueError(f"negative_ratio: must be in [0, 1], got {negative_ratio}")
    if keys.size == 0:
        raise ValueError("keys: empty; a workload needs at least one key")
    if keys.dtype.kind == "f" and np.isnan(keys).any():
        raise ValueError("keys: contain NaN; drop those entries first")
    if not (keys[1:] >= keys[:-1]).all():
        raise ValueError("keys: not sorted in non-decreasing order; sort them first (np.sort)")
    fresh = np.concatenate(([True], keys[1:] != keys[:-1]))
    if fresh.all():
        distinct, first_position = keys, None  # distinct key i sits at position i
    else:
        first_position = np.flatnonzero(fresh)
        distinct = keys[first_position]
    del fresh

    def position(k: np.ndarray) -> np.ndarray:  # position of distinct key k; k == D means past the end
        if first_position is None:
            return k
        return np.where(k < distinct.size, first_position[np.minimum(k, distinct.size - 1)], keys.size)

    rng = np.random.default_rng(seed)
    n_absent = int(round(n_lookups * negative_ratio))
    picked = rng.integers(0, distinct.size, size=n_lookups - n_absent)
    queries, answers = distinct[picked], position(picked)
    if n_absent:
        slots, absent = _sample_gaps(distinct, n_absent, rng)
        queries = np.concatenate((queries, absent.astype(keys.dtype)))
        answers = np.concatenate((answers, position(slots)))
    order = rng.permutation(n_lookups)
    return queries[order], answers[order].astype(np.int64, copy=False)


def verify_workload(keys: np.ndarray, queries: np.ndarray, answers: np.ndarray) -> None:
    """Check that answers are the lower bounds of queries in keys (O(m log n)).

    Raises ValueError naming the first wrong lookup.
    """
    if queries.shape != answers.shape:
        raise ValueError(f"queries {queries.shape} and answers {answers.shape} differ in shape")
    truth = np.searchsorted(keys, queries, side="left")
    wrong = np.flatnonzero(truth != answers)
    if wrong.size:
        i = int(wrong[0])
        raise ValueError(
            f"lookup {i}: query {queries[i]!r} expects position {int(truth[i])}, workload says {int(answers[i])} "
            f"({wrong.size} wrong in all; the workload belongs to other keys)"
        )


def save_workload(path: str | os.PathLike, queries: np.ndarray, answers: np.ndarray) -> Path:
    """Write (query, answer) records atomically to ``path`` and return it (O(m)).

    Raises ValueError for mismatched shapes, negative answers, an unsupported
    query dtype or a file name whose dtype part disagrees with the queries.
    """
    path = Path(path)
    queries, answers = np.asarray(queries), np.asarray(answers)
    if queries.ndim != 1 or queries.shape != answers.shape:
        raise ValueError(f"{path}: queries {queries.shape} and answers {answers.shape} must be 1-D of equal length")
    name = dtype_name(queries.dtype)
    m = _WORKLOAD_NAME.search(path.name)
    if m and m.group("dtype") != name:
        raise ValueError(f"{path}: the name says {m.group('dtype')} keys but the queries are {name}; rename it")
    if answers.size and answers.min() < 0:
        raise ValueError(f"{path}: answers are positions and cannot be negative")
    records = np.zeros(queries.size, dtype=lookup_record_dtype(name))  # zeros: deterministic padding
    records["key"] = queries
    records["answer"] = answers
    return write_counted(path, records)


def load_workload(path: str | os.PathLike, dtype: str | np.dtype | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Read a saved workload as contiguous read-only (queries, int64 answers) arrays (O(m)).

    The key dtype comes from the name (``..._uint64_equality_lookups_...``)
    unless given. Raises OSError if the file cannot be opened, ValueError naming
    it when the dtype is unknown, the header disagrees with the size (as in
    read_sosd) or an answer is negative.
    """
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(errno.ENOENT, "no such workload file", str(path))
    if dtype is None:
        m = _WORKLOAD_NAME.search(path.name)
        if m is None:
            raise ValueError(
                f"{path}: cannot tell the key dtype from the name "
                f"(expected '..._<dtype>_equality_lookups_<N>'); pass dtype= explicitly"
            )
        dtype = m.group("dtype")
    records = read_counted(path, lookup_record_dtype(dtype), mmap=False, what="lookup record")
    queries = np.ascontiguousarray(records["key"])
    answers = np.ascontiguousarray(records["answer"])
    if answers.size and answers.min() < 0:
        raise ValueError(f"{path}: negative answer positions: corrupt file or wrong dtype")
    queries.flags.writeable = False
    answers.flags.writeable = False
    return queries, answers
