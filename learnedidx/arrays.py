"""The arrays each index is made of, one ``NamedTuple`` per structure, passed whole to its kernels.

An index owns its arrays through these tuples (``RMI.arrays``, ``PGM.arrays``,
``RadixSpline.arrays``); a kernel takes the tuple as one argument and unpacks what it reads.
Numba types a tuple by its fields' types, so a kernel compiles once per key dtype as with loose
arrays. The slot layouts are documented with the kernels that read them (named per field).
Every array an index hands out is read-only.

>>> import numpy as np, learnedidx
>>> idx = learnedidx.RMI(np.arange(0, 100, 10, dtype=np.uint64))
>>> type(idx.arrays).__name__, idx.arrays.meta.flags.writeable
('RMIArrays', False)
>>> same = learnedidx.RMI.from_arrays(idx.keys, idx.arrays, idx.config, idx.stats)  # no training
>>> same.lower_bound(35), same.find_gt(35)
(4, 40)
"""

# No ``from __future__ import annotations`` here: the ``__new__`` a NamedTuple generates could not
# resolve string annotations such as "np.ndarray" (typing.get_type_hints, the API reference).
from typing import NamedTuple

import numpy as np


class RMIArrays(NamedTuple):
    """A trained RMI (layout: :mod:`learnedidx._rmi_kernels`).

    ``meta``: int64 stage records; ``params``: float64 model records, error bounds in the last
    stage's; ``hybrid_keys``/``hybrid_pos``: key-dtype samples of the hybrid leaves and their
    int64 positions (both empty when no leaf is hybrid).
    """

    meta: np.ndarray
    params: np.ndarray
    hybrid_keys: np.ndarray
    hybrid_pos: np.ndarray


class PGMArrays(NamedTuple):
    """A trained PGM-index (layout: :mod:`learnedidx._pgm_kernels`).

    ``meta``: int64 header and one record per level; ``seg_keys``: each segment's first key, in
    the key dtype; ``params``: float64 ``(slope, intercept)`` per segment.
    """

    meta: np.ndarray
    seg_keys: np.ndarray
    params: np.ndarray


class RadixSplineArrays(NamedTuple):
    """A trained RadixSpline (layout: :mod:`learnedidx._radix_spline_kernels`).

    ``meta``: int64 header followed by the radix table (uint32 entries, two a slot);
    ``spline``: uint64 ``(image, position)`` pairs of the spline points.
    """

    meta: np.ndarray
    spline: np.ndarray


class Tombstones(NamedTuple):
    """Deleted main positions of a :class:`learnedidx.DynamicRMI` (:mod:`learnedidx.dynamic._tombstones`).

    ``bits``: uint64 words, bit ``i & 63`` of word ``i >> 6`` set when main position i is deleted;
    ``counts``: int64, deleted positions below each 512-position block (a prefix sum).
    """

    bits: np.ndarray
    counts: np.ndarray


class Delta(NamedTuple):
    """The sorted keys of a :class:`learnedidx.DynamicRMI` that are not in main, in a pool of
    fixed-size chunks (:mod:`learnedidx.dynamic._delta`).

    ``keys``/``values``: ``(chunks, C)`` arrays, chunk c holding ``counts[c]`` sorted keys;
    ``order``: chunk ids in key order (the first ``state[K_CHUNKS]`` in use); ``max_keys``: the
    largest key of each chunk in that order; ``cum``: keys before each order position (valid
    up to ``state[DIRTY]``); ``free``: the stack of unused chunk ids; ``state``: the counters
    (slots in :mod:`learnedidx.dynamic._layout`).
    """

    keys: np.ndarray
    values: np.ndarray
    counts: np.ndarray
    order: np.ndarray
    max_keys: np.ndarray
    cum: np.ndarray
    free: np.ndarray
    state: np.ndarray
