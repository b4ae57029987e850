"""`BTree`: a static, cache-optimized B+tree whose leaves are the sorted key array itself."""

from __future__ import annotations

import numpy as np

from learnedidx.toolkit import address
from learnedidx.base import KeyValueIndex, compile_scalar_entry
from learnedidx.persist import register

from . import _btree_kernels as K
from ._common import PARALLEL_THRESHOLD, check_options, flag, use_threads, whole_number

DEFAULT_NODE_KEYS = 16
MAX_NODE_KEYS = 1 << 12
_OPTIONS = ("node_keys", "parallel_threshold", "interleaved")


class BTree(KeyValueIndex):
    """A static B+tree over the sorted keys, with cache-line nodes and no Python objects.

    ``BTree(keys, values=None, *, node_keys=16, parallel_threshold=16384, interleaved=True,
    assume_sorted=False, copy=True)``

    Bulk-loaded from the sorted keys. The leaves are the key array itself, cut into blocks of
    ``node_keys`` keys (never copied); above them, flat arrays of separator keys (each the
    largest key of a node below), one level per ``log_B`` of the key count, all in one array
    that starts on a cache line. A lookup counts, in each node, the separators before the query
    with ``node_keys`` branch-free comparisons that LLVM turns into SIMD compares, then counts
    again in one leaf block (binary search in the shorter last block). Batch lookups walk 32
    queries through the levels in lockstep, prefetching each query's next node, so their cache
    misses overlap; batches of ``parallel_threshold`` queries or more use every Numba thread.

    Args:
        node_keys: keys per node (2..4096). Never changes any answer, only speed and size: the
            inner levels take about ``n / node_keys`` keys' worth of memory and a lookup reads
            ``ceil(log_node_keys(n))`` nodes. 8 keys of 8 bytes fill one 64-byte cache line, 16
            fill two (an adjacent-line pair), 32 four.
            The default 16 came within 3-10% of 8's batch speed for half the memory
            (docs/design.md, "BTree node size"; ``python -m baselines.measure --n 100M
            --sweep-node-keys 4,8,16,32,64``).
        parallel_threshold: batches of at least this many queries use every Numba thread.
        interleaved: batches walk 32 queries in lockstep with prefetches (True, the default) or
            one query at a time (False; what the bench's loop mode times). Same answers.

    Lookups cost O(log_B(n) * B) comparisons in O(log_B(n)) cache-line groups; building costs
    O(n / B) after sorting, and the inner levels take ``8 * n / (B - 1)`` bytes or so for
    8-byte keys.

    Raises:
        TypeError: unknown options, or ``interleaved`` not a bool. ValueError: an invalid
            option, or invalid keys/values (see :class:`learnedidx.KeyValueIndex`).

    >>> import numpy as np
    >>> t = BTree(np.array([10, 20, 20, 20, 40], dtype=np.uint64), node_keys=2)
    >>> t.lower_bound(20), t.upper_bound(20), t.lower_bound(-1), t.get(40), t.height
    (1, 4, 0, 4, 2)
    """

    name = "BTree"
    _native_find = True
    batch_variant = f"interleaved x{K.INTERLEAVE} + prefetch"

    def _build(self, **options):
        check_options(type(self).__name__, options, _OPTIONS)
        self.node_keys = whole_number(
            "node_keys", options.get("node_keys", DEFAULT_NODE_KEYS), 2, MAX_NODE_KEYS
        )
        self._set_search_options(options)
        self._inner, self._meta = K.build(self._keys, self.node_keys)

    def _set_search_options(self, options):
        self.parallel_threshold = whole_number(
            "parallel_threshold", options.get("parallel_threshold", PARALLEL_THRESHOLD), 1
        )
        self.interleaved = flag("interleaved", options.get("interleaved", True))
        if not self.interleaved:
            self.batch_variant = "loop"

    # --- searches -----------------------------------------------------------------------------

    def _search_array(self, queries, mode):
        if not self.interleaved:
            return self._search_loop(queries, mode)
        out = np.empty(len(queries), dtype=np.int64)
        if use_threads(len(queries), self.parallel_threshold):
            K.lookup_batch_parallel(self._inner, self._meta, self._keys, queries, out, mode)
        else:
            K.lookup_batch(self._inner, self._meta, self._keys, queries, out, mode)
        return out

    def _search_loop(self, queries, mode):
        """One query at a time through the levels (no lockstep, no prefetch), on every Numba
        thread from ``parallel_threshold`` queries as the batch path. O(m log_B(n) B)."""
        out = np.empty(len(queries), dtype=np.int64)
        if use_threads(len(queries), self.parallel_threshold):
            K.lookup_batch_plain_parallel(self._inner, self._meta, self._keys, queries, out, mode)
        else:
            K.lookup_batch_plain(self._inner, self._meta, self._keys, queries, out, mode)
        return out

    def _scalar_kernel(self):
        # By array addresses: one compilation per dtype, not one more for read-only arrays' types.
        addresses = tuple(address(a) for a in (self._inner, self._meta, self._keys))
        return (compile_scalar_entry(K.lookup_scalar_at, *addresses, self._keys.dtype), *addresses)

    # --- structure ----------------------------------------------------------------------------

    @property
    def height(self) -> int:
        """Number of inner levels above the leaf blocks (0 when the keys fit in one block)."""
        return int(self._meta[K.META_LEVELS])

    @property
    def level_sizes(self) -> tuple:
        """Number of separator keys in each inner level, root first (padding excluded)."""
        levels = self.height
        return tuple(int(x) + 1 for x in self._meta[K.META_HEADER + levels:K.META_HEADER + 2 * levels])

    def size_in_bytes(self) -> int:
        """Bytes of the inner levels (padding and cache-line alignment included) and ``meta``.

        The leaves are the key array, which every index holds, so they are not counted.
        """
        inner = self._inner.base if self._inner.base is not None else self._inner
        return int(inner.nbytes + self._meta.nbytes)

    def key_copy_bytes(self) -> int:
        """Bytes of keys the structure copies beyond the key array: none."""
        return 0

    def __setstate__(self, state):
        # Unpickled arrays lose the cache-line alignment of the inner levels: restore it.
        inner, meta = state["_inner"], state["_meta"]
        aligned = np.empty(len(inner) + K.CACHE_LINE // inner.itemsize, dtype=inner.dtype)
        skip = (-aligned.ctypes.data % K.CACHE_LINE) // inner.itemsize
        aligned = aligned[skip:skip + len(inner)]
        aligned[:] = inner
        aligned.flags.writeable = False
        state = dict(state, _inner=aligned, _meta=np.ascontiguousarray(meta))
        super().__setstate__(state)

    # --- saving and loading (see learnedidx.persist) ------------------------------------------

    def _state(self):
        """Base state plus the options and the arrays ``inner`` and ``meta``."""
        config, arrays = super()._state()
        config["options"] = {"node_keys": self.node_keys, "parallel_threshold": self.parallel_threshold,
                             "interleaved": self.interleaved}
        arrays["inner"], arrays["meta"] = self._inner, self._meta
        return config, arrays

    def _restore(self, config, arrays):
        """Install saved levels after checking ``meta`` against the keys and options in O(levels).

        Every offset the kernels read comes from ``meta``, which must equal what :func:`K.build`
        lays out for these keys, so no lookup can leave the arrays. Raises ValueError.
        """
        options = config["options"]
        check_options(type(self).__name__, options, _OPTIONS)
        b = self.node_keys = whole_number("node_keys", options["node_keys"], 2, MAX_NODE_KEYS)
        self._set_search_options(options)  # files from before ``interleaved`` get its default
        inner, meta = arrays["inner"], arrays["meta"]
        if inner.dtype != self._keys.dtype or inner.ndim != 1 or meta.dtype != np.int64 or meta.ndim != 1:
            raise ValueError(f"inner must be 1-D {self._keys.dtype} and meta 1-D int64")
        n = len(self._keys)
        sizes = K.level_sizes(n, b)
        padded = [-(-m // b) * b for m in sizes]
        starts = np.concatenate(([0], np.cumsum(padded)[:-1])).tolist() if sizes else []
        expected = [b, len(sizes), n, sum(padded), *starts, *(m - 1 for m in sizes)]
        if meta.tolist() != expected:
            raise ValueError("meta does not describe these keys and node_keys")
        if len(inner) != sum(padded):
            raise ValueError(f"inner holds {len(inner)} keys, the levels need {sum(padded)}")
        inner = inner.view()
        inner.flags.writeable = False  # as built: the kernels were compiled for read-only levels
        self._inner, self._meta = inner, meta

    def _check(self) -> None:
        super()._check()
        keys, inner, meta = self._keys, self._inner, self._meta
        n, b = len(keys), self.node_keys
        assert meta[K.META_B] == b, f"meta says nodes of {meta[K.META_B]} keys, the option is {b}"
        assert meta[K.META_KEYS] == n, f"meta says {meta[K.META_KEYS]} keys, the index holds {n}"
        assert meta[K.META_INNER] == len(inner), f"meta says {meta[K.META_INNER]} separators, inner holds {len(inner)}"
        sizes = K.level_sizes(n, b)
        levels = len(sizes)
        assert meta[K.META_LEVELS] == levels, f"{meta[K.META_LEVELS]} inner levels, {n} keys need {levels}"
        assert len(meta) == K.META_HEADER + 2 * levels, f"meta has {len(meta)} slots for {levels} levels"
        assert inner.dtype == keys.dtype, f"inner levels of {inner.dtype} for keys of {keys.dtype}"
        assert not inner.flags.writeable, "the inner levels must be read-only"
        assert levels == 0 or sizes[0] <= b, f"the root has {sizes[0]} entries, more than one node"
        start = 0
        for lvl in range(levels):
            assert meta[K.META_HEADER + lvl] == start, (
                f"level {lvl} starts at {meta[K.META_HEADER + lvl]}, expected {start}"
            )
            assert meta[K.META_HEADER + levels + lvl] == sizes[lvl] - 1, (
                f"level {lvl} ends at entry {meta[K.META_HEADER + levels + lvl]}, expected {sizes[lvl] - 1}"
            )
            start += -(-sizes[lvl] // b) * b
        assert len(inner) == start, f"inner holds {len(inner)} keys, the levels need {start}"
        below = keys
        for lvl in range(levels - 1, -1, -1):
            s, m = int(meta[K.META_HEADER + lvl]), sizes[lvl]
            level = inner[s:s + m]
            maxima = below[np.minimum(np.arange(1, m + 1) * b, len(below)) - 1]
            bad = np.flatnonzero(level != maxima)
            if len(bad):
                i = bad[0]
                raise AssertionError(
                    f"level {lvl} entry {i} is {level[i]!r}, the largest key of its node below is {maxima[i]!r}"
                )
            padding = inner[s + m:s + (-(-m // b) * b)]
            assert (padding == keys[n - 1]).all(), f"level {lvl} is padded with other than the largest key"
            below = level


register(BTree, "baselines.BTree")
