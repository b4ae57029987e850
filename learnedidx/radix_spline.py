"""`RadixSpline`: a single-pass learned index (Kipf et al., "RadixSpline", aiDM 2020)."""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import ArrayLike

from . import _radix_spline_kernels as K
from .arrays import RadixSplineArrays
from ._pointers import address
from ._search import lift_top
from .base import LearnedIndex, compile_scalar_entry, config_from
from .persist import register

#: Epsilons the default tries in turn, smallest (fastest) first.
EPSILON_LADDER = (32, 64, 128, 256)
MAX_RADIX_BITS = 28  #: largest table a config may ask for: 2**28 uint32 entries, 1 GiB
DEFAULT_MAX_RADIX_BITS = 24  #: largest table the default picks: 64 MiB
#: The defaults (``epsilon`` and ``radix_bits`` None) keep the whole index (spline, table,
#: header) within this share of the key bytes wherever an epsilon of the ladder allows.
SIZE_BUDGET = 0.01
_MAX_EPSILON = 1 << 40


def _whole(name, value, low, high, hint):
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        raise TypeError(f"{name} must be an int, got {value!r} of type {type(value).__name__}; {hint}")
    if not low <= value <= high:
        raise ValueError(f"{name} must be in [{low}, {high}], got {value!r}; {hint}")
    return int(value)


@dataclass(frozen=True)
class RadixSplineConfig:
    """Hyperparameters of a :class:`RadixSpline`. None of them changes any answer: only speed and size.

    Attributes:
        epsilon: the spline's error bound in positions (an int >= 1): every distinct key's first
            position lies within ``epsilon`` of the line between the spline points around it, so
            a lookup searches a window of at most ``2 * epsilon + 2`` keys. Smaller means fewer
            search steps and cache lines but more spline points (16 bytes each); on smooth CDFs
            the point count falls roughly as ``1 / sqrt(epsilon)``, on noisy real keys about as
            ``1 / epsilon``. None (the default): the first of ``EPSILON_LADDER`` (32, 64, 128,
            256) whose spline fits :data:`SIZE_BUDGET` (1%) of the key bytes, else 256; a fit
            that outgrows the budget stops there, so a rung that fails costs a fraction of a
            pass. Wider windows (``2 * epsilon + 2`` keys, every line prefetched) cost time,
            and so does a spline that leaves the cache: 16 beat 32 at 10M lognormal keys but
            was 2.2x slower at 100M (a 4.9 MB spline), hence 32 first. Lognormal keys take 32;
            the real sets of ``../shared/datasets`` 32 to 128.
        radix_bits: bits of the radix table (``2**radix_bits + 1`` uint32 entries) over the
            keys' range, an int in [0, 28]. More bits narrow the binary search among spline
            points but cost 4 bytes a bucket. None (the default): ``round(log2(points)) + 1``
            capped at 24 and reduced while the index would exceed 1% of the key bytes; a
            spline over the budget on its own still gets up to a quarter of its bytes
            (:func:`default_radix_bits`). Never more bits than the keys' range has, and at
            least one (0 acts as 1). Skewed keys (lognormal) crowd most points into the first
            buckets, where the segment search is a binary search over them.
        parallel_threshold: batches of at least this many queries use every Numba thread;
            smaller ones run in the calling thread (starting threads costs microseconds).
        interleaved: batches run 32 lookups in lock-step phases, prefetching each phase's
            reads (radix bucket, spline points, window) one phase ahead, so the lookups wait on
            memory together; False runs one lookup after another (SOSD's loop).
    """

    epsilon: int | None = None
    radix_bits: int | None = None
    parallel_threshold: int = 1 << 14
    interleaved: bool = True

    def __post_init__(self):
        if self.epsilon is not None:
            _whole("epsilon", self.epsilon, 1, _MAX_EPSILON,
                   "e.g. epsilon=32 (smaller: faster, larger index), or None to fit the size budget")
        if self.radix_bits is not None:
            _whole("radix_bits", self.radix_bits, 0, MAX_RADIX_BITS,
                   "or None to derive it from the number of spline points")
        _whole("parallel_threshold", self.parallel_threshold, 1, 2**62, "e.g. parallel_threshold=16384")
        if not isinstance(self.interleaved, bool):
            raise TypeError(f"interleaved must be True or False, got {self.interleaved!r}")
        for name in ("epsilon", "radix_bits", "parallel_threshold"):
            value = getattr(self, name)
            if value is not None:
                object.__setattr__(self, name, int(value))


def default_radix_bits(points: int, key_bytes: int) -> int:
    """The default table size for ``points`` spline points over keys taking ``key_bytes``:
    ``round(log2(points)) + 1`` bits, at most 24, fewer while the table would take more than
    what :data:`SIZE_BUDGET` of the key bytes leaves after the spline. A spline over the budget
    on its own gets a table of up to a quarter of its bytes (without one, every segment search
    spans the whole spline: 1.8x slower on a 3M-key real set for 0.06% of the key bytes)."""
    if points < 2:
        return 0
    bits = min(DEFAULT_MAX_RADIX_BITS, round(math.log2(points)) + 1)
    room = SIZE_BUDGET * key_bytes - 16 * points - 8 * K.HEADER
    if room <= 0:
        room = 4 * points
    while bits > 0 and 4 * ((1 << bits) + 2) > room:
        bits -= 1
    return bits


def train(keys: np.ndarray, config: RadixSplineConfig):
    """Fit the spline and build the radix table over sorted keys; return ``(meta, spline, stats)``.

    One pass fits the spline, one measures the window bounds (:func:`K.fit`); the table costs
    O(points + 2**radix_bits). Complexity O(n).
    """
    n = len(keys)
    ladder = EPSILON_LADDER if config.epsilon is None else (config.epsilon,)
    epsilon = ladder[-1]
    if n == 0:
        spline = np.zeros(0, dtype=np.uint64)
        err_lo, err_hi, max_abs, sum_log2 = 0, 0, 0, 0.0
    else:
        # The spline's share of the budget leaves room for a 1-bit table and the header.
        fits = int((SIZE_BUDGET * keys.nbytes - 8 * K.HEADER - 16) // 16)
        if fits < 1:
            ladder = ladder[-1:]
        for epsilon in ladder:
            limit = n if epsilon == ladder[-1] else fits
            spline, err_lo, err_hi, max_abs, counts = K.fit(keys, epsilon, limit)
            if len(spline):
                break
        # Keys beyond the last slot (rounding past epsilon + 1, never seen) count at max_abs.
        errors = np.arange(len(counts), dtype=np.float64)
        errors[-1] = max(errors[-1], max_abs)
        sum_log2 = float(np.dot(counts, np.log2(errors + 1.0)))
    points = len(spline) // 2
    if points >= 2**32:
        raise ValueError(f"{points} spline points exceed the radix table's uint32 entries; raise epsilon")
    images = spline[0::2]
    span = int(images[-1] - images[0]) if points else 0
    bits = config.radix_bits
    if bits is None:
        bits = default_radix_bits(points, keys.nbytes)
    # At least one bit when the keys differ: a shift must stay below 64 (a 64-bit shift is
    # undefined in LLVM), and no bucket needs more bits than the range has.
    bits = min(max(bits, 1), span.bit_length())
    shift = span.bit_length() - bits
    size = (1 << bits) + 1
    meta = np.zeros(K.HEADER + (size + 1) // 2, dtype=np.int64)
    meta[K.N] = n
    meta[K.POINTS] = points
    meta[K.RADIX_BITS] = bits
    meta[K.SHIFT] = shift
    unsigned = meta[:K.HEADER].view(np.uint64)
    unsigned[K.MIN_IMAGE] = images[0] if points else 0
    unsigned[K.RANGE] = span
    meta[K.ERR_LO] = err_lo
    meta[K.ERR_HI] = err_hi
    table = meta[K.HEADER:].view(np.uint32)
    if points:
        prefixes = ((images - images[0]) >> np.uint64(shift)).astype(np.int64)
        table[1:size] = np.cumsum(np.bincount(prefixes, minlength=size - 1))
    stats = {"epsilon": int(epsilon), "max_error": int(max_abs), "avg_log2_error": float(sum_log2 / n) if n else 0.0}
    return meta, spline, stats


class RadixSpline(LearnedIndex):
    """A radix table over a linear spline with an error bound: built in one pass over the keys.

    ``RadixSpline(keys, values=None, *, config=None, assume_sorted=False, copy=True, **config_fields)``

    A greedy spline corridor picks points of the CDF so that every distinct key's position is
    within ``epsilon`` of the interpolation between its enclosing points; a radix table on the
    top bits of the keys narrows the search for a query's segment to a few points. A lookup
    interpolates on the segment and searches the measured window around the guess. See
    :class:`RadixSplineConfig` for the hyperparameters (``RadixSpline(keys, epsilon=16)``).

    Lookups cost O(log bucket + log epsilon); building O(n) after sorting, in one pass to fit
    and one to measure the window bounds. Batch calls run in Numba without a Python loop and on
    every thread from ``parallel_threshold`` queries.

    Raises:
        TypeError: a config and config keywords together, unknown keywords, or a wrongly typed
            hyperparameter.
        ValueError: an invalid hyperparameter, or invalid keys/values (see KeyValueIndex).

    >>> import numpy as np
    >>> idx = RadixSpline(np.array([10, 20, 20, 40], dtype=np.uint64))
    >>> idx.lower_bound(20), idx.upper_bound(20), idx.lower_bound(-1), idx.get(40)
    (1, 3, 0, np.int64(3))
    """

    name = "RadixSpline"
    _native_find = True

    def __init__(self, keys: ArrayLike, values: ArrayLike | None = None, *, config: RadixSplineConfig | None = None,
                 assume_sorted: bool = False, copy: bool = True, **config_fields: Any) -> None:
        super().__init__(keys, values, assume_sorted=assume_sorted, copy=copy, config=config, **config_fields)

    def _build(self, config=None, **fields):
        self.config = config_from(RadixSplineConfig, config, fields)
        meta, spline, self._stats = train(self._keys, self.config)
        self._arrays = RadixSplineArrays(meta, spline)
        self._install()

    def _install(self) -> None:
        """Derived state: the table view into ``meta`` and the window search's ``top``."""
        meta = self._arrays.meta
        size = (1 << int(meta[K.RADIX_BITS])) + 1
        self._table = meta[K.HEADER:].view(np.uint32)[:size]
        self._top = lift_top(int(meta[K.ERR_HI] - meta[K.ERR_LO]))

    @property
    def arrays(self) -> RadixSplineArrays:
        """The spline and radix table as :class:`learnedidx.arrays.RadixSplineArrays`."""
        return self._arrays

    # --- searches -----------------------------------------------------------------------------

    def _search_array(self, queries, mode):
        variant = K.VARIANT_GROUP if self.config.interleaved else K.VARIANT_LOOP
        return self._run_batch(queries, mode, variant)

    def _search_loop(self, queries, mode):
        return self._run_batch(queries, mode, K.VARIANT_LOOP)

    def _run_batch(self, queries, mode, variant):
        return self._loop_or_group(K, _frozen(queries), mode, variant == K.VARIANT_GROUP)

    @property
    def batch_variant(self) -> str:
        """The batch kernel: ``"group x32"`` (lookups in lock-step) or ``"loop"``."""
        return f"group x{K.GROUP}" if self.config.interleaved else "loop"

    def _scalar_kernel(self):
        arrays = (*self._arrays, self._keys)
        entry = compile_scalar_entry(K.lookup_scalar_at, *(address(a) for a in arrays), self._keys.dtype)
        return (entry,) + tuple(address(a) for a in arrays)

    def _predict(self, values: np.ndarray) -> tuple:
        """``(pos, lo, hi)`` int64 arrays for contiguous key-dtype queries. O(m log bucket)."""
        if self.num_spline_points < 2:  # no segment: every key is one value
            pos = np.searchsorted(self._keys, values, side="left").astype(np.int64)
            return pos, pos.copy(), np.minimum(pos + 1, len(self._keys))
        pos, lo, hi = (np.empty(len(values), dtype=np.int64) for _ in range(3))
        K.predict_batch(self._arrays, _frozen(values), pos, lo, hi)
        return pos, lo, hi

    # --- statistics ---------------------------------------------------------------------------

    @property
    def epsilon(self) -> int:
        """The spline's error bound in positions: ``RadixSplineConfig.epsilon``, or the one the
        default chose."""
        return self._stats["epsilon"]

    @property
    def num_spline_points(self) -> int:
        """Number of spline points."""
        return int(self._arrays.meta[K.POINTS])

    @property
    def radix_bits(self) -> int:
        """Bits of the radix table actually used (at most the keys' range needs)."""
        return int(self._arrays.meta[K.RADIX_BITS])

    def size_in_bytes(self) -> int:
        """Bytes of the spline points, the radix table and the header (``meta`` and ``spline``)."""
        return int(sum(a.nbytes for a in self._arrays))

    def _check(self) -> None:
        super()._check()
        (meta, spline), table, keys = self._arrays, self._table, self._keys
        n = len(keys)
        points = self.num_spline_points
        assert meta.dtype == np.int64 and spline.dtype == np.uint64, "meta must be int64 and spline uint64"
        assert meta[K.N] == n, f"meta says {meta[K.N]} keys, the index holds {n}"
        assert len(spline) == 2 * points, f"spline holds {len(spline)} slots for {points} points"
        bits = self.radix_bits
        assert len(meta) == K.HEADER + ((1 << bits) + 2) // 2, "meta's length does not fit its radix bits"
        if n == 0:
            assert points == 0, "an empty index has spline points"
            return
        images, positions = spline[0::2], spline[1::2].astype(np.int64)
        assert (images[1:] > images[:-1]).all(), "spline keys are not strictly increasing"
        distinct = np.flatnonzero(np.r_[True, keys[1:] != keys[:-1]])
        expected = _images(keys[distinct])
        assert images[0] == expected[0] and images[-1] == expected[-1], "first/last key is no spline point"
        at = np.searchsorted(expected, images)
        assert (at < len(expected)).all() and (expected[np.minimum(at, len(expected) - 1)] == images).all(), (
            "a spline point is no key")
        assert (positions == distinct[at]).all(), "a spline point's position is not its key's first position"
        span = int(images[-1] - images[0])
        unsigned = meta[:K.HEADER].view(np.uint64)
        assert int(unsigned[K.MIN_IMAGE]) == int(images[0]) and int(unsigned[K.RANGE]) == span, "meta's key range"
        assert 0 < bits <= span.bit_length() or bits == span == 0, "radix bits outside [1, bits of the key range]"
        assert meta[K.SHIFT] == span.bit_length() - bits < 64, "meta's radix shift"
        rebuilt = np.zeros(len(table), dtype=np.int64)
        prefixes = ((images - images[0]) >> np.uint64(meta[K.SHIFT])).astype(np.int64)
        rebuilt[1:] = np.cumsum(np.bincount(prefixes, minlength=len(table) - 1))
        bad = np.flatnonzero(table != rebuilt)
        if len(bad):
            b = bad[0]
            raise AssertionError(f"radix table entry {b} is {table[b]}, the spline points need {rebuilt[b]}")
        if points < 2:
            return
        pos, lo, hi = self._predict(keys)
        lb = np.searchsorted(keys, keys, side="left")
        assert (lo >= 0).all() and (lo <= hi).all() and (hi <= n).all(), "a window leaves [0, n]"
        bad = np.flatnonzero((lb < lo) | (lb + 1 > hi))
        if len(bad):
            b = bad[0]
            raise AssertionError(
                f"{len(bad)} keys outside their predicted window, first keys[{b}]={keys[b]!r}: "
                f"lower bound {lb[b]}, window [{lo[b]}, {hi[b]}] must hold it and the next position"
            )
        # The corridor bounds |lb - interpolation| by epsilon up to float64 rounding (relative
        # 2**-52 of the positions); taking the floor turns that into -eps <= lb - pos <= eps + 1.
        eps = self.epsilon
        off = lb - pos
        bad = np.flatnonzero((off < -eps) | (off > eps + 1))
        if len(bad):
            b = bad[0]
            raise AssertionError(
                f"{len(bad)} keys break the error bound {eps}, first keys[{b}]={keys[b]!r}: lower bound "
                f"{lb[b]}, predicted {pos[b]}"
            )

    # --- saving and loading (see learnedidx.persist) ------------------------------------------

    _derived = ("_table",)  # a view into meta, not pickled as a copy

    def __setstate__(self, state):
        if "_meta" in state:  # pickled before the arrays were one RadixSplineArrays
            state["_arrays"] = RadixSplineArrays(state.pop("_meta"), state.pop("_spline"))
        super().__setstate__(state)

    def _derive(self) -> None:
        self._install()

    def _state(self):
        """Base state plus ``options`` (the RadixSplineConfig), ``stats`` and the arrays meta, spline."""
        config, arrays = super()._state()
        config["options"] = dataclasses.asdict(self.config)
        config["stats"] = dict(self._stats)
        arrays.update(self._arrays._asdict())
        return config, arrays

    def _restore(self, config, arrays):
        """Install a saved spline and table after checking their layout in O(points + table).

        Every size, offset and table entry a kernel reads is checked, so no lookup can leave the
        arrays whatever the file holds (the kernels clamp the rest). Never reads more than the
        first and last key. Raises ValueError.
        """
        self.config = RadixSplineConfig(**config["options"])
        stats = config["stats"]
        self._stats = {"epsilon": int(stats["epsilon"]), "max_error": int(stats["max_error"]),
                       "avg_log2_error": float(stats["avg_log2_error"])}
        if self.config.epsilon not in (None, self._stats["epsilon"]) or self._stats["epsilon"] < 1:
            raise ValueError(f"epsilon {self._stats['epsilon']} differs from the config's {self.config.epsilon}")
        meta, spline = arrays["meta"], arrays["spline"]
        if meta.dtype != np.int64 or meta.ndim != 1 or spline.dtype != np.uint64 or spline.ndim != 1:
            raise ValueError(f"meta must be 1-D int64 and spline 1-D uint64, got {meta.dtype}, {spline.dtype}")
        if len(meta) < K.HEADER:
            raise ValueError(f"meta has {len(meta)} slots, fewer than its {K.HEADER}-slot header")
        n, points, bits, shift = (int(meta[i]) for i in (K.N, K.POINTS, K.RADIX_BITS, K.SHIFT))
        if n != len(self._keys):
            raise ValueError(f"meta says {n} keys, the file holds {len(self._keys)}")
        if not (0 <= points <= n and (points > 0) == (n > 0)) or len(spline) != 2 * points:
            raise ValueError(f"{points} spline points in {len(spline)} slots for {n} keys")
        if not 0 <= bits <= MAX_RADIX_BITS or not 0 <= shift < 64 or bits + shift > 64:
            raise ValueError(f"radix bits {bits} and shift {shift} are out of range")
        size = (1 << bits) + 1
        if len(meta) != K.HEADER + (size + 1) // 2:
            raise ValueError(f"meta has {len(meta)} slots, a {bits}-bit table needs {K.HEADER + (size + 1) // 2}")
        unsigned = meta[:K.HEADER].view(np.uint64)
        low, span = int(unsigned[K.MIN_IMAGE]), int(unsigned[K.RANGE])
        if low + span >= 2**64 or span >> shift >= 1 << bits:
            raise ValueError(f"key range {span} from {low} does not fit {bits} radix bits after a shift of {shift}")
        err_lo, err_hi = int(meta[K.ERR_LO]), int(meta[K.ERR_HI])
        if not -n <= err_lo <= 0 <= err_hi <= n + 1:
            raise ValueError(f"window bounds [{err_lo}, {err_hi}] do not fit {n} keys")
        table = meta[K.HEADER:].view(np.uint32)[:size]
        if table[0] != 0 or table[-1] != points or (size > 1 and (table[1:] < table[:-1]).any()):
            raise ValueError("the radix table must rise from 0 to the number of spline points")
        if points:
            images, positions = spline[0::2], spline[1::2]
            if int(images[0]) != low or int(images[-1]) != low + span:
                raise ValueError("the first and last spline points do not span meta's key range")
            if (images[1:] <= images[:-1]).any():
                raise ValueError("spline keys are not strictly increasing")
            if positions[0] != 0 or (positions[1:] < positions[:-1]).any() or positions[-1] >= n:
                raise ValueError("spline positions must rise from 0 and stay below the number of keys")
            if points == 1 and self._keys[0] != self._keys[-1]:
                raise ValueError("one spline point for keys of more than one value")
        self._arrays = RadixSplineArrays(meta, spline)
        self._install()


def _frozen(array: np.ndarray) -> np.ndarray:
    """A read-only view: writable and read-only arrays are different Numba types, and each would
    compile the kernels again."""
    view = array.view()
    view.flags.writeable = False
    return view


def _images(keys: np.ndarray) -> np.ndarray:
    """:func:`K.key_image` of a key array, with numpy (for checks)."""
    if keys.dtype.kind == "u":
        return keys.astype(np.uint64)
    if keys.dtype.kind == "i":
        return keys.astype(np.int64).view(np.uint64) ^ np.uint64(1 << 63)
    bits = (keys.astype(np.float64) + 0.0).view(np.uint64)
    return np.where(bits >> np.uint64(63), ~bits, bits | np.uint64(1 << 63))


register(RadixSpline, "learnedidx.RadixSpline")
