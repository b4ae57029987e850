"""`PGM`: the piecewise geometric model index (Ferragina and Vinciguerra, VLDB 2020)."""

from __future__ import annotations

import dataclasses
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

import numba
import numpy as np
from numpy.typing import ArrayLike

from . import _pgm_kernels as K
from ._pointers import address
from ._search import lift_top
from .arrays import PGMArrays
from .base import LearnedIndex, compile_scalar_entry, config_from
from .persist import register

_MAX_EPSILON = 1 << 20
#: Levels of at least this many points are built in slices on every Numba thread.
_PARALLEL_BUILD_MIN = 1 << 20


def _whole(name: str, value, low: int, high: int) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or not low <= value <= high:
        raise ValueError(f"{name} must be a whole number in [{low}, {high}], got {value!r}")
    return int(value)


@dataclass(frozen=True)
class PGMConfig:
    """Hyperparameters of a :class:`PGM`. None of them changes any answer: only speed and size.

    Attributes:
        epsilon: largest distance, in positions, between a key's position and its segment's
            prediction (before float rounding, which the measured window absorbs). The last-mile
            search covers about ``2 * epsilon + 2`` keys; a smaller epsilon means shorter
            searches and more segments (24 bytes each). Default 64: the PGM paper's default,
            a window of about two cache-line groups of 8-byte keys.
        epsilon_recursive: the same bound for the levels above, which index the segments'
            first keys; they are small and cache resident. Default 4.
        parallel_threshold: batches of at least this many queries use every Numba thread.
        interleaved: batch lookups walk 32 queries through the levels in lock-step, each
            window prefetched a phase before it is searched (True), or one after another.
    """

    epsilon: int = 64
    epsilon_recursive: int = 4
    parallel_threshold: int = 1 << 14
    interleaved: bool = True

    def __post_init__(self):
        object.__setattr__(self, "epsilon", _whole("epsilon", self.epsilon, 1, _MAX_EPSILON))
        object.__setattr__(self, "epsilon_recursive",
                           _whole("epsilon_recursive", self.epsilon_recursive, 1, _MAX_EPSILON))
        object.__setattr__(self, "parallel_threshold",
                           _whole("parallel_threshold", self.parallel_threshold, 1, 1 << 62))
        if not isinstance(self.interleaved, bool):
            raise TypeError(f"interleaved must be True or False, got {self.interleaved!r}")


def train(keys: np.ndarray, config: PGMConfig):
    """Build every level of a PGM over sorted keys; return ``(meta, seg_keys, params, stats)``.

    Level 0 fits segments to the keys with ``epsilon``; each level above fits the first keys of
    the one below with ``epsilon_recursive``, up to a level of one segment. Every level's
    window bounds are then measured with the lookup's own arithmetic
    (:func:`learnedidx._pgm_kernels.level_errors`). Large levels are fitted and measured in
    slices on every Numba thread (the kernels release the GIL); a slice boundary costs at most
    one segment more. Complexity O(n).
    """
    n = len(keys)
    levels = []  # (seg_keys, params, err_lo, err_hi) bottom first
    stats = {"max_error": 0, "avg_log2_error": 0.0, "segments": 0}
    points = keys
    eps = config.epsilon
    threads = numba.get_num_threads() if n >= _PARALLEL_BUILD_MIN else 1
    log2_table = np.log2(np.arange(1, max(config.epsilon, config.epsilon_recursive) + 3, dtype=np.float64))
    with ThreadPoolExecutor(threads) as pool:
        while n:
            starts, slopes, intercepts = _fit_level(pool, threads, points, eps)
            seg_keys = points[starts]
            params = np.empty(2 * len(starts))
            params[0::2] = slopes
            params[1::2] = intercepts
            parts = len(starts) if len(points) >= _PARALLEL_BUILD_MIN else 1
            cuts = np.linspace(0, len(starts), min(threads, parts) + 1).astype(np.int64)
            measured = list(pool.map(
                lambda c: K.level_errors(points, starts, seg_keys, params, cuts[c], cuts[c + 1], keys[-1],
                                         points is not keys, log2_table),
                range(len(cuts) - 1)))
            lo = min(m[0] for m in measured)
            hi = max(m[1] for m in measured)
            if points is keys:
                stats = {"max_error": int(max(m[2] for m in measured)),
                         "avg_log2_error": float(sum(m[3] for m in measured) / n), "segments": len(starts)}
            levels.append((seg_keys, params, lo, hi))
            if len(starts) == 1:
                break
            points = seg_keys
            eps = config.epsilon_recursive
    meta = np.zeros(K.META_HEADER + K.META_STRIDE * len(levels), dtype=np.int64)
    meta[K.META_N] = n
    meta[K.META_LEVELS] = len(levels)
    meta[K.META_EPSILON] = config.epsilon
    meta[K.META_EPSILON_RECURSIVE] = config.epsilon_recursive
    offset = 0
    for level, (seg_keys, _, lo, hi) in enumerate(levels):
        rec = K.META_HEADER + K.META_STRIDE * level
        meta[rec:rec + 4] = (offset, len(seg_keys), lo, hi)
        offset += len(seg_keys)
    seg_keys = np.concatenate([lv[0] for lv in levels]) if levels else keys[:0].copy()
    params = np.concatenate([lv[1] for lv in levels]) if levels else np.zeros(0)
    return meta, seg_keys, params, stats


class PGM(LearnedIndex):
    """A piecewise geometric model index: optimal error-bounded linear segments, recursively.

    ``PGM(keys, values=None, *, config=None, assume_sorted=False, copy=True, **config_fields)``

    Level 0 cuts the keys into the fewest segments whose lines place every key within
    ``epsilon`` positions (the streaming convex-hull construction); each level above indexes the
    first keys of the one below the same way with ``epsilon_recursive``, up to one segment.
    A lookup descends the levels, each a search of about ``2 * epsilon_recursive`` segment
    keys, then searches about ``2 * epsilon`` keys. See :class:`PGMConfig`; fields may be
    passed as keywords (``PGM(keys, epsilon=32)``).

    Lookups cost O(levels log eps_rec + log eps); building costs O(n) after sorting; the index
    takes 24 bytes a segment (its first key, slope and intercept) plus 32 a level.

    Raises:
        TypeError: a config and config keywords together, or unknown keywords.
        ValueError: an invalid hyperparameter, or invalid keys/values (see KeyValueIndex).

    >>> import numpy as np
    >>> idx = PGM(np.array([10, 20, 20, 40], dtype=np.uint64))
    >>> idx.lower_bound(20), idx.upper_bound(20), idx.lower_bound(-1), idx.get(40)
    (1, 3, 0, np.int64(3))
    """

    name = "PGM"
    _native_find = True

    def __init__(self, keys: ArrayLike, values: ArrayLike | None = None, *, config: PGMConfig | None = None,
                 assume_sorted: bool = False, copy: bool = True, **config_fields: Any) -> None:
        super().__init__(keys, values, assume_sorted=assume_sorted, copy=copy, config=config, **config_fields)

    def _build(self, config=None, **fields):
        self.config = config_from(PGMConfig, config, fields)
        meta, seg_keys, params, self._stats = train(self._keys, self.config)
        self._arrays = PGMArrays(meta, seg_keys, params)
        self._finish()

    def _finish(self) -> None:
        """Derived state: the lifting search's ``top`` and the scalar kernel's address table."""
        meta, seg_keys, params = self._arrays
        width = int(meta[K.META_HEADER + 3] - meta[K.META_HEADER + 2]) if meta[K.META_LEVELS] else 0
        self._top = lift_top(width)
        seg_keys.flags.writeable = False
        params.flags.writeable = False
        self._addresses = np.array([address(a) for a in self._arrays], dtype=np.int64)

    @property
    def arrays(self) -> PGMArrays:
        """The levels as :class:`learnedidx.arrays.PGMArrays` (``seg_keys`` and ``params`` read-only)."""
        return self._arrays

    # --- searches -----------------------------------------------------------------------------

    def _search_array(self, queries, mode):
        return self._run_batch(queries, mode, self.config.interleaved)

    def _search_loop(self, queries, mode):
        return self._run_batch(queries, mode, False)

    def _run_batch(self, queries, mode, interleaved):
        return self._loop_or_group(K, queries, mode, interleaved)

    @property
    def batch_variant(self) -> str:
        """The batch kernel used for large batches."""
        return f"group x{K.GROUP}, {self.height} levels" if self.config.interleaved else "loop"

    def _scalar_kernel(self):
        entry = compile_scalar_entry(K.lookup_scalar_at, address(self._addresses), address(self._keys),
                                     np.int64(self._top), self._keys.dtype)
        return entry, address(self._addresses), address(self._keys), np.int64(self._top)

    def _predict(self, queries: np.ndarray) -> tuple:
        m = len(queries)
        pos, lo, hi = (np.zeros(m, dtype=np.int64) for _ in range(3))
        if len(self._keys):
            frozen = queries.view()
            frozen.flags.writeable = False  # one compiled type for every caller
            K.predict_batch(self._arrays, frozen, pos, lo, hi)
        return pos, lo, hi

    # --- statistics ---------------------------------------------------------------------------

    @property
    def epsilon(self) -> int:
        """The error bound of level 0 (see :class:`PGMConfig`)."""
        return self.config.epsilon

    @property
    def height(self) -> int:
        """Number of levels, level 0 (over the keys) included; 0 for an empty index."""
        return int(self._arrays.meta[K.META_LEVELS])

    @property
    def segments_count(self) -> int:
        """Number of level-0 segments."""
        return self._stats["segments"]

    def size_in_bytes(self) -> int:
        """Bytes of the segments (first keys, slopes, intercepts) and ``meta``."""
        return int(sum(a.nbytes for a in self._arrays))

    def _check(self) -> None:
        super()._check()
        meta, seg_keys, params = self._arrays
        keys = self._keys
        n = len(keys)
        levels = int(meta[K.META_LEVELS])
        assert meta[K.META_N] == n, f"meta says {meta[K.META_N]} keys, the index holds {n}"
        assert (meta[K.META_EPSILON], meta[K.META_EPSILON_RECURSIVE]) == (
            self.config.epsilon, self.config.epsilon_recursive), "meta's epsilons differ from the config"
        assert len(meta) == K.META_HEADER + K.META_STRIDE * levels, f"meta has {len(meta)} slots for {levels} levels"
        assert (levels == 0) == (n == 0), f"{levels} levels for {n} keys"
        assert len(params) == 2 * len(seg_keys), f"{len(params)} params for {len(seg_keys)} segments"
        # Lines hold the epsilon guarantee where the fit's float products stay finite (not with
        # infinite keys, or float64 keys spanning over 1e300): there only the window holds.
        bounded = n == 0 or keys.dtype.kind != "f" or bool(abs(np.float64(keys[-1]) - np.float64(keys[0])) < 1e300)
        below = keys
        offset = 0
        for level in range(levels):
            off, cnt, lo, hi = (int(x) for x in meta[K.META_HEADER + K.META_STRIDE * level:][:4])
            assert off == offset, f"level {level} starts at {off}, expected {offset}"
            level_keys = seg_keys[off:off + cnt]
            assert cnt >= 1 and len(level_keys) == cnt, f"level {level} has {cnt} segments"
            assert level_keys[0] == keys[0], f"level {level} does not start at the first key"
            assert (level_keys[1:] > level_keys[:-1]).all(), f"level {level}'s first keys are not increasing"
            assert np.isin(level_keys, below).all(), f"level {level} holds a first key absent below"
            eps = self.config.epsilon if level == 0 else self.config.epsilon_recursive
            assert lo <= 0 <= hi, f"level {level}'s window [{lo}, {hi}] misses the prediction"
            # The error guarantee (floors and float rounding allowed a position each side),
            # widened by the longest run of equal keys, whose window reaches past its end.
            run = int(np.diff(np.flatnonzero(np.r_[True, below[1:] != below[:-1], True])).max())
            assert not bounded or hi - lo <= 2 * eps + 3 + run, f"level {level}'s window [{lo}, {hi}] is wider than epsilon {eps} allows"
            offset += cnt
            below = level_keys
        assert levels == 0 or meta[K.META_HEADER + K.META_STRIDE * (levels - 1) + 1] == 1, "the top level has several segments"
        assert offset == len(seg_keys), f"seg_keys holds {len(seg_keys)} keys, the levels {offset}"
        if n == 0:
            return
        pos, lo, hi = self._predict(keys)
        lb = np.searchsorted(keys, keys, side="left")
        ub = np.searchsorted(keys, keys, side="right")
        assert not bounded or (np.abs(lb - pos) <= self.config.epsilon + 1).all(), "a key is farther than epsilon from its prediction"
        bad = np.flatnonzero((lb < lo) | (ub > hi))
        if len(bad):
            b = bad[0]
            raise AssertionError(
                f"{len(bad)} keys outside their predicted window, first keys[{b}]={keys[b]!r}: "
                f"bounds [{lb[b]}, {ub[b]}], window [{lo[b]}, {hi[b]}]"
            )

    # --- saving and loading (see learnedidx.persist) ------------------------------------------

    _derived = ("_addresses",)  # addresses of this process's arrays

    def __setstate__(self, state):
        if "_meta" in state:  # pickled before the arrays were one PGMArrays
            state["_arrays"] = PGMArrays(state.pop("_meta"), state.pop("_seg_keys"), state.pop("_params"))
        super().__setstate__(state)

    def _derive(self) -> None:
        self._finish()

    def _state(self):
        """Base state plus ``options`` (the PGMConfig), ``stats`` and the arrays meta,
        seg_keys, params."""
        config, arrays = super()._state()
        config["options"] = dataclasses.asdict(self.config)
        config["stats"] = dict(self._stats)
        arrays.update(self._arrays._asdict())
        return config, arrays

    def _restore(self, config, arrays):
        """Install saved levels after checking their layout in O(levels + segments), so that no
        lookup can leave the arrays whatever they hold. Raises ValueError."""
        self.config = PGMConfig(**config["options"])
        stats = config["stats"]
        self._stats = {"max_error": int(stats["max_error"]), "avg_log2_error": float(stats["avg_log2_error"]),
                       "segments": int(stats["segments"])}
        meta, seg_keys, params = arrays["meta"], arrays["seg_keys"], arrays["params"]
        n = len(self._keys)
        if meta.dtype != np.int64 or meta.ndim != 1 or len(meta) < K.META_HEADER:
            raise ValueError(f"meta must be 1-D int64 with a {K.META_HEADER}-slot header")
        if seg_keys.dtype != self._keys.dtype or seg_keys.ndim != 1 or params.dtype != np.float64 or params.ndim != 1:
            raise ValueError(f"seg_keys must be 1-D {self._keys.dtype} and params 1-D float64")
        levels = int(meta[K.META_LEVELS])
        header = (n, self.config.epsilon, self.config.epsilon_recursive)
        if (int(meta[K.META_N]), int(meta[K.META_EPSILON]), int(meta[K.META_EPSILON_RECURSIVE])) != header:
            raise ValueError(f"meta header {meta[:K.META_HEADER].tolist()} does not match {n} keys and the config")
        if (levels == 0) != (n == 0) or not 0 <= levels <= 64 or len(meta) != K.META_HEADER + K.META_STRIDE * levels:
            raise ValueError(f"meta describes {levels} levels in {len(meta)} slots for {n} keys")
        offset = 0
        below = n
        for level in range(levels):
            off, cnt, lo, hi = (int(x) for x in meta[K.META_HEADER + K.META_STRIDE * level:][:4])
            if off != offset or not 1 <= cnt <= below:
                raise ValueError(f"level {level} record {(off, cnt)} does not follow the level below")
            if not -below - 1 <= lo <= 0 <= hi <= below + 1:
                raise ValueError(f"level {level}'s window bounds {(lo, hi)} are out of range")
            offset += cnt
            below = cnt
        if levels and below != 1:
            raise ValueError("the top level must have one segment")
        if len(seg_keys) != offset or len(params) != 2 * offset:
            raise ValueError(f"{len(seg_keys)} segment keys and {len(params)} params for {offset} segments")
        self._arrays = PGMArrays(meta, seg_keys.view(), params.view())
        self._finish()


def _fit_level(pool, threads: int, points: np.ndarray, eps: int) -> tuple:
    """``fit_segments`` over ``points`` in ``threads`` slices, each starting at a run's first
    point, concatenated."""
    if threads == 1 or len(points) < _PARALLEL_BUILD_MIN:
        return K.fit_segments(points, eps, 0)
    cuts = np.searchsorted(points, points[np.linspace(0, len(points), threads + 1).astype(np.int64)[1:-1]])
    bounds = np.unique(np.concatenate(([0], cuts, [len(points)])))
    parts = list(pool.map(lambda c: K.fit_segments(points[:bounds[c + 1]], eps, bounds[c]), range(len(bounds) - 1)))
    return tuple(np.concatenate([p[i] for p in parts]) for i in range(3))


register(PGM, "learnedidx.PGM")
