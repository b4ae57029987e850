"""`RMI`: a recursive-model index over sorted keys (Kraska et al., SIGMOD 2018)."""

from __future__ import annotations

import dataclasses
import time
from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import ArrayLike

from . import _rmi_kernels as K
from ._coerce import KEY_DTYPES, prepare_keys_values
from ._pointers import address
from ._search import SEARCHES, group_buffers
from ._threads import batch_answers
from .arrays import RMIArrays
from .base import LearnedIndex, compile_scalar_entry, config_from, read_only_views
from .models import no_hybrid, stage_model
from .persist import register

_MAX_MODELS = 1 << 28
_MAX_INNER = 4096
_MAX_WINDOW = 1 << 30
_INT32 = (-(2**31), 2**31 - 1)
#: Key arrays up to this size take the group variant whatever their search (``RMIConfig.variant``):
#: their searches hit cache, where AMAC's per-step dispatch costs more than the misses it overlaps.
CACHE_RESIDENT_BYTES = 4 << 20


@dataclass(frozen=True)
class RMIConfig:
    """Hyperparameters of an :class:`RMI`. None of them changes any answer: only speed and size.

    Attributes:
        stages: model of each stage, root first; at least two. The root may be ``"linear"``,
            ``"linear_spline"``, ``"cubic"``, ``"radix"`` or ``"mlp"`` (a small neural network,
            trained with torch: ``pip install "learnedidx[torch]"``; loading and answering need
            no torch); later stages ``"linear"`` or ``"linear_spline"``. The default, three
            linear stages, gave the smallest windows on most synthetic and real sets measured
            (docs/design.md): the inner stage (at most 4096 models, cache resident) balances the
            leaves at almost no lookup cost. A cubic root follows curved CDFs better than a
            linear one in two-stage RMIs; a radix root is the cheapest on uniform keys; an MLP
            root follows CDFs with several bends (``python -m bench.models`` compares them).
        branching_factor: number of models in the last stage (an int, at most one per key),
            or a tuple with the number of models of each stage after the root. None: ``n / keys_per_leaf`` rounded
            down to a power of two, with ``min(4096, leaves / 4)`` models in an inner
            stage. More leaves mean smaller errors (fewer search steps) but 32 bytes more
            index per leaf.
        keys_per_leaf: most keys per leaf, on average, for the default branching factor. The
            default 128 keeps the models within 32 / (128 * 8) = 3.1% of 8-byte keys, 3.9% with
            the inner stage, 4.7% with every leaf hybrid (see ``max_window``).
        search: last-mile search inside the predicted window: ``"binary"`` (branch-free, the
            default: steady cost log2(window)), ``"linear"`` (fastest for windows of a few keys)
            or ``"exponential"`` (gallops from the prediction: fast when most errors are small
            but a few leaves are bad).
        parallel_threshold: batches of at least this many queries use every Numba thread;
            smaller ones run in the calling thread (starting threads costs microseconds).
        interleaved: batch kernels interleave independent lookups and prefetch each one's
            leaf record and key lines before they are needed, so the lookups wait on memory
            together instead of one after another (3-5x faster on key sets larger than the
            cache). False runs one lookup after another, as a scalar loop would.
        variant: how batches interleave (see :mod:`learnedidx._rmi_kernels`): ``"group"``
            (32 lookups in lock-step phases, their windows searched in lock-step too),
            ``"amac"`` (``slots`` independent state machines; wide windows halved one
            prefetched step at a time) or ``"auto"`` (the default): ``"group"``, except that
            a ``"linear"`` or ``"exponential"`` search over keys beyond ``CACHE_RESIDENT_BYTES``
            takes ``"amac"`` (the group searches those windows one after another). With the
            binary search the group was level with AMAC or faster on every set measured, up to 2.5x
            (``python -m bench.kernels rmi --dataset NAME --threads 1``; docs/design.md).
        slots: state machines of the ``"amac"`` variant. 8, 16 and 32 came within 15% of each
            other (``bench.kernels rmi``): enough misses in flight, few enough to stay in L1.
        max_window: widest window, in keys, that a leaf's line may leave to the last-mile
            search (None: no bound). A leaf whose measured window is wider (a step, a cluster
            or a gap inside it) becomes *hybrid* (Kraska et al. 2018, section 3.3): a sorted
            sample of every ``s``-th key of its runs (``s``: max_window rounded down to a power
            of two), with their positions, is searched by binary search, and the two samples
            around a query give its window. Every present key's window is then at most
            ``max_window`` keys, and a leaf the model cannot follow costs a binary search of
            1/s of its keys. The samples take 16 bytes per ``s`` keys of the hybrid leaves.
            Default 256 (at most 0.8% of 8-byte keys); docs/design.md has the thresholds
            measured.
        mlp_hidden: units of each hidden layer of an ``"mlp"`` root: one or two layers of
            1-32 ReLU units. Default ``(16,)``. Each unit is a bend the root's CDF can follow;
            a second layer costs ``h1 * h2`` multiplications a lookup. The network costs only
            its ``8 * (3 h1 + 2)`` bytes (``h1 h2 + 2 h2`` more slots with a second layer).
    """

    stages: tuple = ("linear", "linear", "linear")
    branching_factor: int | tuple | None = None
    keys_per_leaf: int = 128
    search: str = "binary"
    parallel_threshold: int = 1 << 14
    interleaved: bool = True
    variant: str = "auto"
    slots: int = 16
    max_window: int | None = 256
    mlp_hidden: tuple = (16,)

    def __post_init__(self):
        stages = self.stages
        if isinstance(stages, str) or not isinstance(stages, (tuple, list)):
            raise TypeError(f"stages must be a tuple of model names such as ('cubic', 'linear'), got {stages!r}")
        if len(stages) < 2:
            raise ValueError(f"an RMI needs at least two stages, got {tuple(stages)!r}; e.g. ('cubic', 'linear')")
        object.__setattr__(self, "stages", tuple(stages))
        for i, name in enumerate(self.stages):
            stage_model(name, "root" if i == 0 else ("leaves" if i == len(stages) - 1 else "inner stages"))
        bf = self.branching_factor
        if bf is not None:
            counts = (bf,) if not isinstance(bf, (tuple, list)) else tuple(bf)
            if isinstance(bf, (tuple, list)) and len(counts) != len(self.stages) - 1:
                raise ValueError(
                    f"branching_factor as a tuple needs one count per stage after the root "
                    f"({len(self.stages) - 1}), got {bf!r}"
                )
            for c in counts:
                if isinstance(c, bool) or not isinstance(c, (int, np.integer)) or not 1 <= c <= _MAX_MODELS:
                    raise ValueError(f"branching_factor must be whole numbers in [1, {_MAX_MODELS}], got {bf!r}")
            if isinstance(bf, (list, tuple)):
                object.__setattr__(self, "branching_factor", tuple(int(c) for c in counts))
        if isinstance(self.keys_per_leaf, bool) or not isinstance(self.keys_per_leaf, (int, np.integer)) or self.keys_per_leaf < 1:
            raise ValueError(f"keys_per_leaf must be a positive int, got {self.keys_per_leaf!r}")
        if self.search not in SEARCHES:
            raise ValueError(f"unknown search {self.search!r}; choose from {sorted(SEARCHES)}")
        if not isinstance(self.interleaved, bool):
            raise TypeError(f"interleaved must be True or False, got {self.interleaved!r}")
        if self.variant not in ("auto", "group", "amac"):
            raise ValueError(f"unknown variant {self.variant!r}; choose from ['amac', 'auto', 'group']")
        if isinstance(self.slots, bool) or not isinstance(self.slots, (int, np.integer)) or not 1 <= self.slots <= 256:
            raise ValueError(f"slots must be an int in [1, 256], got {self.slots!r}")
        if isinstance(self.parallel_threshold, bool) or not isinstance(self.parallel_threshold, (int, np.integer)) or self.parallel_threshold < 1:
            raise ValueError(f"parallel_threshold must be a positive int, got {self.parallel_threshold!r}")
        w = self.max_window
        if w is not None:
            if isinstance(w, bool) or not isinstance(w, (int, np.integer)) or not 1 <= w <= _MAX_WINDOW:
                raise ValueError(f"max_window must be None or a whole number in [1, {_MAX_WINDOW}], got {w!r}")
            object.__setattr__(self, "max_window", int(w))
        hidden = self.mlp_hidden
        if isinstance(hidden, (int, np.integer)) and not isinstance(hidden, bool):
            hidden = (hidden,)
        if not isinstance(hidden, (tuple, list)) or not 1 <= len(hidden) <= 2 or any(
                isinstance(h, bool) or not isinstance(h, (int, np.integer)) or not 1 <= h <= K.MLP_MAX_UNITS
                for h in hidden):
            raise ValueError(f"mlp_hidden must be one or two layer sizes in [1, {K.MLP_MAX_UNITS}] such as (16,) "
                             f"or (16, 16), got {self.mlp_hidden!r}")
        object.__setattr__(self, "mlp_hidden", tuple(int(h) for h in hidden))

    @property
    def hybrid_shift(self) -> int:
        """log2 of a hybrid leaf's sample stride: ``max_window`` rounded down to a power of two."""
        return (self.max_window or 1).bit_length() - 1

    def model_counts(self, n: int) -> tuple:
        """Number of models in each stage, root first, for n keys."""
        depth = len(self.stages)
        bf = self.branching_factor
        if isinstance(bf, tuple):
            return (1,) + bf
        if bf is None:
            leaves = max(1, int(n) // int(self.keys_per_leaf))
            bf = 1 << (leaves.bit_length() - 1)  # rounded down: the size stays within its bound
        bf = min(bf, max(1, int(n)))  # more leaves than keys only cost memory
        if depth == 2:
            return (1, bf)
        # Inner stages route keys to leaves; more of them balance the leaves better (measured:
        # gains flatten past 4096 models, 128 KB, which still fits in L2 cache).
        inner = min(_MAX_INNER, max(1, bf // 4))
        steps = depth - 2
        return (1,) + tuple(max(1, round(inner ** (s / steps))) for s in range(1, steps + 1)) + (bf,)


def train(keys: np.ndarray, config: RMIConfig, *, split: bool = True):
    """Fit every stage of an RMI over sorted keys; return ``(RMIArrays, stats)``.

    Closed form. Each stage is fitted to the runs of keys that the stages above route to its
    models (:mod:`learnedidx.models`): found by searching on the lines of the stage above when
    they route in order (non-negative slopes), else by routing every key; ``split=False``
    always routes every key (the same models, slower). Then one pass measures the leaves'
    errors with the very kernels inference uses, so the bounds hold bit for bit, and checks
    that the keys route to their runs' leaves: should one not, the stages are fitted again
    routing every key. Leaves whose windows are wider than ``config.max_window`` become hybrid
    and are measured again. Fits and the error pass use every Numba thread. Complexity
    O(n * stages / threads).
    """
    from .models import leaf_errors, no_hybrid, root_runs, stage_runs

    n = len(keys)
    counts = config.model_counts(n)
    models = [stage_model(name, "root" if i == 0 else "leaves") for i, name in enumerate(config.stages)]
    meta = np.zeros(K.META_HEADER + K.META_STRIDE * len(counts), dtype=np.int64)
    meta[0] = len(counts)
    meta[1] = n
    meta[2] = SEARCHES[config.search]
    offset = 0
    for s, (m, model) in enumerate(zip(counts, models)):
        rec = K.META_HEADER + K.META_STRIDE * s
        meta[rec:rec + 4] = (model.kind, m, offset, model.record_width(config))
        offset += m * model.record_width(config)
    params = np.zeros(offset, dtype=np.float64)
    runs = root_runs(n)
    for s, (m, model) in enumerate(zip(counts, models)):
        rec = K.META_HEADER + K.META_STRIDE * s
        last = s == len(counts) - 1
        target_scale = 1.0 if last else (counts[s + 1] / n if n else 0.0)
        if s > 0:
            runs, _ = stage_runs(meta, params, keys, s, runs, split)
        records = model.fit(keys, meta, params, s, m, target_scale, runs, config)
        start = int(meta[rec + 2])
        params[start:start + records.size] = records.ravel()
    # Each run is exact, routed key by key or split on lines that route in order, so the error
    # pass checks the ends of each block only (every key: 100M keys under an mlp root, one
    # thread, 4.4 s against 2.1).
    lo, hi, max_abs, log2_sum, routed = leaf_errors(meta, params, keys, runs, False, no_hybrid(keys.dtype))
    if not routed:  # never seen: a safety net, should a search on a line ever disagree with plan_route
        if not split:
            raise RuntimeError("runs found by routing every key disagree with plan_route: a bug in learnedidx")
        return train(keys, config, split=False)
    rec = K.META_HEADER + K.META_STRIDE * (len(counts) - 1)
    start = int(meta[rec + 2])
    errors = params[start:].reshape(-1, K.LINEAR_WIDTH)[:, K.ERROR_SLOT:].view(np.int32)
    # A bound outside int32 is clamped: the window then may not bracket, and the search widens it.
    errors[:, 0] = np.clip(lo, *_INT32)
    errors[:, 1] = np.clip(hi, *_INT32)
    hybrid = no_hybrid(keys.dtype)
    bad = np.zeros(len(lo), dtype=bool)
    if config.max_window is not None:
        bad = (hi - lo > config.max_window) | (lo < _INT32[0]) | (hi > _INT32[1])
        if bad.any():
            hybrid = _make_hybrid(params, start, keys, runs, bad, config.hybrid_shift)
            measured = leaf_errors(meta, params, keys, runs, False, hybrid, bad)
            for whole, part in zip((lo, hi, max_abs, log2_sum), measured):
                whole[bad] = part[bad]
    stats = {
        "max_error": int(max_abs.max()) if n else 0,
        "avg_log2_error": float(log2_sum.sum() / n) if n else 0.0,
        "mean_window": float(np.mean(hi - lo)) if len(lo) else 0.0,
        "hybrid_leaves": int(bad.sum()),
    }
    return RMIArrays(meta, params, *hybrid), stats


def _make_hybrid(params, leaf_base, keys, runs, bad, shift):
    """Turn the ``bad`` leaves into hybrid ones (see :mod:`learnedidx._rmi_kernels`): each
    gets a sample of every ``2**shift``-th key of each of its runs, from the run's first, and
    its record is rewritten. Returns ``(hybrid_keys, hybrid_pos)``, leaf after leaf.
    Complexity O(runs + samples)."""
    bounds, owner = runs
    mine = np.flatnonzero(bad[owner])
    mine = mine[np.argsort(owner[mine], kind="stable")]  # a leaf's runs together, in key order
    starts = bounds[mine]
    counts = (bounds[mine + 1] - starts + (1 << shift) - 1) >> shift
    first = np.cumsum(counts) - counts
    total = int(counts.sum())
    hpos = np.repeat(starts, counts) + ((np.arange(total) - np.repeat(first, counts)) << shift)
    leaves = np.flatnonzero(bad)
    per_leaf = np.bincount(owner[mine], counts, minlength=len(bad)).astype(np.int64)[leaves]
    records = params.view(np.int64)[leaf_base:].reshape(-1, K.LINEAR_WIDTH)
    records[leaves] = np.stack([np.cumsum(per_leaf) - per_leaf, per_leaf, np.full(len(leaves), shift),
                                np.full(len(leaves), K.HYBRID)], axis=1)
    hkeys = keys[hpos]
    for a in (hkeys, hpos):
        a.flags.writeable = False
    return hkeys, hpos


class RMI(LearnedIndex):
    """A recursive-model index: learned models predict each key's position within error bounds.

    ``RMI(keys, values=None, *, config=None, assume_sorted=False, copy=True, **config_fields)``

    The root model routes a key to a leaf model, which predicts its position; the leaf's
    recorded error bounds give a window that a last-mile search narrows to the exact answer.
    A leaf whose window would be wider than ``max_window`` keys searches a sample of its keys
    instead (a hybrid leaf).
    See :class:`RMIConfig` for the hyperparameters, which can be passed as a config or as
    keyword arguments (``RMI(keys, stages=("radix", "linear"), branching_factor=2**16)``).

    Lookups cost O(stages + log2(window)); building costs O(n * stages) after sorting.
    Batch calls run in Numba without a Python loop and on every thread above
    ``parallel_threshold`` queries.

    Raises:
        TypeError: a config and config keywords together, or unknown keywords.
        ValueError: an invalid hyperparameter, or invalid keys/values (see KeyValueIndex).

    >>> import numpy as np
    >>> idx = RMI(np.array([10, 20, 20, 40], dtype=np.uint64))
    >>> idx.lower_bound(20), idx.upper_bound(20), idx.lower_bound(-1), idx.get(40)
    (1, 3, 0, np.int64(3))
    """

    name = "RMI"
    _native_find = True

    def __init__(self, keys: ArrayLike, values: ArrayLike | None = None, *, config: RMIConfig | None = None,
                 assume_sorted: bool = False, copy: bool = True, **config_fields: Any) -> None:
        super().__init__(keys, values, assume_sorted=assume_sorted, copy=copy, config=config, **config_fields)

    def _build(self, config=None, **fields):
        self.config = config_from(RMIConfig, config, fields)
        self._arrays, self._stats = train(self._keys, self.config)
        self._choose_kernels()

    @classmethod
    def from_arrays(cls, keys: ArrayLike, arrays: RMIArrays, config: RMIConfig, stats: dict,
                    values: ArrayLike | None = None, *, assume_sorted: bool = False, copy: bool = True,
                    verify: bool = True) -> RMI:
        """An RMI over ``keys`` from trained arrays (another RMI's :attr:`arrays` and :attr:`stats`,
        refitted or loaded), without training.

        Complexity O(n) to check the keys as the constructor does, then O(stages) to check the
        arrays' layout against ``config`` and ``len(keys)``: every offset a kernel reads is
        checked, so no lookup leaves the arrays whatever they hold; wrong models only widen
        searches. ``verify=False`` skips the keys' O(n) check for keys this library produced
        sorted and read-only (as ``load(verify=False)``); ``_check()`` verifies everything.

        Raises:
            TypeError/ValueError: invalid keys or values (see the constructor).
            ValueError: arrays of the wrong dtype or layout, or stats missing a field.
        """
        start = time.perf_counter_ns()
        self = cls.__new__(cls)
        if verify:
            self._keys, self._values = prepare_keys_values(keys, values, assume_sorted=assume_sorted, copy=copy)
        else:
            if not isinstance(keys, np.ndarray) or keys.ndim != 1 or keys.dtype not in KEY_DTYPES \
                    or not keys.flags.c_contiguous:
                raise ValueError("with verify=False keys must be a contiguous 1-D array of a key dtype")
            if values is not None and (not isinstance(values, np.ndarray) or values.shape != keys.shape):
                raise ValueError("with verify=False values must be an array of one value per key")
            self._keys, self._values = read_only_views(keys, values)
        self._positions = None
        self._install(config, stats, arrays, copy)
        self.build_time_ns = time.perf_counter_ns() - start
        self._bind_fast_paths()
        return self

    @property
    def arrays(self) -> RMIArrays:
        """The trained models as :class:`learnedidx.arrays.RMIArrays` (read-only arrays)."""
        return self._arrays

    @property
    def stats(self) -> dict:
        """Training statistics: ``max_error``, ``avg_log2_error``, ``mean_window``, ``hybrid_leaves``."""
        return dict(self._stats)

    # --- searches -----------------------------------------------------------------------------

    def _search_array(self, queries, mode):
        variant = self._variant if self.config.interleaved else K.VARIANT_LOOP
        return self._run_batch(queries, mode, variant)

    def _search_loop(self, queries, mode):
        return self._run_batch(queries, mode, K.VARIANT_LOOP)

    def _run_batch(self, queries, mode, variant):
        if variant != K.VARIANT_AMAC:
            return self._loop_or_group(K, queries, mode, variant == K.VARIANT_GROUP)
        arrays, keys, top, slots = self._arrays, self._keys, self._top, int(self.config.slots)

        def run(q, o):
            K.lookup_amac(arrays, keys, q, o, mode, top, group_buffers(keys.dtype, max(K.GROUP, slots)),
                              np.empty(slots, dtype=np.int64))

        return batch_answers(queries, mode, len(keys), self.config.parallel_threshold, run)

    @property
    def batch_variant(self) -> str:
        """The batch kernel used for large batches: ``"group x32"``, ``"amac x16"`` or ``"loop"``."""
        if not self.config.interleaved:
            return "loop"
        if self._variant == K.VARIANT_AMAC:
            return f"amac x{self.config.slots}"
        return f"group x{K.GROUP}"

    def _choose_kernels(self) -> None:
        """Set the batch variant, the scalar kernel's address table, and reset the lifting
        search's ``top`` (computed at first use, see :attr:`_top`)."""
        for array in self._arrays:
            array.flags.writeable = False  # one Numba type for every index's kernels
        self._addresses = np.array([address(a) for a in self._arrays], dtype=np.int64)
        self._top_value = None  # see _top
        variant = self.config.variant
        if variant == "auto":
            turn = self.config.search != "binary"
            variant = "amac" if turn and self._keys.nbytes > CACHE_RESIDENT_BYTES else "group"
        self._variant = K.VARIANTS[variant]

    @property
    def _top(self) -> int:
        """The loop and AMAC kernels' lifting ``top`` (:func:`_search_top`), computed at their
        first use: a build then does not compile the model's batch kernel for the group
        kernel's and the scalar path's sake, which never read it."""
        if self._top_value is None:
            self._top_value = _search_top(self._arrays, self._keys)
        return self._top_value

    def _scalar_kernel(self):
        args = (address(self._addresses), address(self._keys), np.int64(len(self._arrays.hybrid_keys)))
        return (compile_scalar_entry(K.lookup_scalar_at, *args, self._keys.dtype),) + args

    def _predict(self, values: np.ndarray) -> tuple:
        return _windows(self._arrays, values)

    # --- statistics ---------------------------------------------------------------------------

    @property
    def mean_window(self) -> float:
        """Mean width ``hi - lo`` of the leaves' windows (a search costs about log2 of it)."""
        return self._stats["mean_window"]

    @property
    def hybrid_leaves(self) -> int:
        """Leaves searched through a sample of their keys (``RMIConfig.max_window``)."""
        return self._stats["hybrid_leaves"]

    @property
    def model_counts(self) -> tuple:
        """Number of models in each stage, root first."""
        meta = self._arrays.meta
        return tuple(int(meta[K.META_HEADER + K.META_STRIDE * s + 1]) for s in range(int(meta[0])))

    def size_in_bytes(self) -> int:
        """Bytes of the models, error bounds and hybrid leaves' samples (``meta``, ``params``,
        ``hybrid_keys``, ``hybrid_pos``)."""
        return int(sum(a.nbytes for a in self._arrays))

    def _check(self) -> None:
        super()._check()
        meta, params, hkeys, hpos = self._arrays
        keys = self._keys
        n = len(keys)
        assert meta[1] == n, f"meta says {meta[1]} keys, the index holds {n}"
        stages = int(meta[0])
        assert stages == len(self.config.stages), "stage count differs from the config"
        end = 0
        for s in range(stages):
            kind, m, offset, width = meta[K.META_HEADER + K.META_STRIDE * s:][:4]
            assert offset == end, f"stage {s} starts at {offset}, expected {end}"
            end = offset + m * width
        assert end == len(params), f"params holds {len(params)} slots, the stages need {end}"
        if n == 0:
            return
        _check_hybrid(meta, params, hkeys)
        assert not len(hpos) or (hpos.min() >= 0 and hpos.max() < n), "a sample position leaves the keys"
        assert np.array_equal(hkeys, keys[hpos]), "a hybrid sample differs from the key at its position"
        pos, lo, hi = _windows(self._arrays, keys)
        lb = np.searchsorted(keys, keys, side="left")
        w = self.config.max_window
        if w is not None:
            assert (hi - lo).max() <= w, f"a window is {(hi - lo).max()} keys wide, max_window is {w}"
        assert (lo >= 0).all() and (lo <= hi).all() and (hi <= n).all(), "a window leaves [0, n]"
        bad = np.flatnonzero((lb < lo) | (lb + 1 > hi))
        if len(bad):
            b = bad[0]
            raise AssertionError(
                f"{len(bad)} keys outside their predicted window, first keys[{b}]={keys[b]!r}: "
                f"lower bound {lb[b]}, window [{lo[b]}, {hi[b]}] must hold it and the next position"
            )

    # --- saving and loading (see learnedidx.persist) ------------------------------------------

    def _state(self):
        """Base state plus ``options`` (the RMIConfig), ``stats`` and the arrays meta, params,
        hybrid_keys, hybrid_pos."""
        config, arrays = super()._state()
        config["options"] = dataclasses.asdict(self.config)
        config["stats"] = dict(self._stats)
        arrays.update(self._arrays._asdict())
        return config, arrays

    _derived = ("_addresses",)  # addresses of this process's arrays

    def __setstate__(self, state):
        if "_meta" in state:  # pickled before the arrays were one RMIArrays
            state["_arrays"] = RMIArrays(state.pop("_meta"), state.pop("_params"), *state.pop("_hybrid"))
        super().__setstate__(state)

    def _derive(self) -> None:
        self._choose_kernels()

    def _restore(self, config, arrays):
        """Install saved models (see :meth:`_install`). Raises ValueError."""
        options = dict(config["options"])
        options.setdefault("max_window", None)  # files from before hybrid leaves have none
        empty = no_hybrid(self._keys.dtype)
        hybrid = (arrays.get("hybrid_keys", empty[0]), arrays.get("hybrid_pos", empty[1]))
        self._install(RMIConfig(**options), config["stats"], RMIArrays(arrays["meta"], arrays["params"], *hybrid))

    def _install(self, config, stats, arrays, copy=False) -> None:
        """Adopt trained arrays (copies, or read-only views) after checking their layout in
        O(stages), as train() lays it out.

        Every offset and count the kernels read from ``meta`` is checked, so no lookup can
        leave ``params`` or the keys whatever the parameters hold. Raises ValueError.
        """
        if not isinstance(config, RMIConfig):
            raise TypeError(f"config must be an RMIConfig, got {type(config).__name__}")
        self.config = config
        try:
            self._stats = {"max_error": int(stats["max_error"]), "avg_log2_error": float(stats["avg_log2_error"]),
                           "mean_window": float(stats["mean_window"]),
                           "hybrid_leaves": int(stats.get("hybrid_leaves", 0))}
        except (KeyError, TypeError) as e:
            raise ValueError(f"stats must map max_error, avg_log2_error and mean_window to numbers: {e!r}") from None
        if not isinstance(arrays, tuple) or len(arrays) != len(RMIArrays._fields) \
                or not all(isinstance(a, np.ndarray) for a in arrays):
            raise TypeError("arrays must be an RMIArrays of four numpy arrays (an RMI's .arrays)")
        meta, params, *hybrid = (np.array(a, order="C") if copy else np.ascontiguousarray(a).view() for a in arrays)
        if hybrid[0].dtype != self._keys.dtype or hybrid[1].dtype != np.int64 or hybrid[0].ndim != 1 \
                or hybrid[0].shape != hybrid[1].shape:
            raise ValueError(f"hybrid_keys and hybrid_pos must be 1-D {self._keys.dtype} and int64 of one length")
        if meta.dtype != np.int64 or meta.ndim != 1 or params.dtype != np.float64 or params.ndim != 1:
            raise ValueError(f"meta must be 1-D int64 and params 1-D float64, got {meta.dtype}, {params.dtype}")
        n = len(self._keys)
        counts = self.config.model_counts(n)
        if len(meta) != K.META_HEADER + K.META_STRIDE * len(counts):
            raise ValueError(f"meta has {len(meta)} slots, {len(counts)} stages need {K.META_HEADER + K.META_STRIDE * len(counts)}")
        if tuple(int(x) for x in meta[:K.META_HEADER]) != (len(counts), n, SEARCHES[self.config.search]):
            raise ValueError(f"meta header {meta[:K.META_HEADER].tolist()} does not match {n} keys and the config")
        end = 0
        for s, (name, m) in enumerate(zip(self.config.stages, counts)):
            model = stage_model(name, "root" if s == 0 else "leaves")
            rec = tuple(int(x) for x in meta[K.META_HEADER + K.META_STRIDE * s:][:4])
            width = model.record_width(self.config)
            if rec != (model.kind, m, end, width):
                raise ValueError(f"stage {s} record {rec} differs from {(model.kind, m, end, width)}")
            end += m * width
        if len(params) != end:
            raise ValueError(f"params holds {len(params)} slots, the stages need {end}")
        if meta[K.META_HEADER] == K.KIND_MLP:
            hidden = self.config.mlp_hidden
            layers = (hidden + (0,))[:2]
            if tuple(params[2:4]) != layers:  # the kernel reads the layer sizes from here
                raise ValueError(f"the MLP root's layers {params[2:4].tolist()} differ from mlp_hidden {hidden}")
        try:
            _check_hybrid(meta, params, hybrid[0])
        except AssertionError as e:
            raise ValueError(f"corrupt hybrid leaves: {e}") from None
        self._arrays = RMIArrays(meta, params, *hybrid)
        self._choose_kernels()


def _check_hybrid(meta: np.ndarray, params: np.ndarray, hkeys: np.ndarray) -> None:
    """Assert that every hybrid leaf's record stays inside ``hybrid_keys`` (what the kernels
    read without checking; sample positions only bound windows, which are clamped to the keys).
    Complexity O(leaves)."""
    rec = K.META_HEADER + K.META_STRIDE * (int(meta[0]) - 1)
    records = params.view(np.int64)[int(meta[rec + 2]):].reshape(-1, K.LINEAR_WIDTH)
    off, count, shift = records[records[:, K.ERROR_SLOT] == K.HYBRID][:, :3].T
    assert ((count >= 1) & (count <= len(hkeys)) & (off >= 0) & (off <= len(hkeys) - count)).all(), \
        "a hybrid leaf's sample leaves hybrid_keys"
    assert ((shift >= 0) & (shift <= 30)).all(), "a hybrid leaf's stride is not 2**0 .. 2**30"


def _windows(arrays: RMIArrays, queries: np.ndarray) -> tuple:
    """``(pos, lo, hi)``: the model's guesses for contiguous key-dtype queries, as int64 arrays.

    The kernel always gets a read-only view: writable and read-only arrays are different
    Numba types, and each would compile the kernel again. Complexity O(m * stages).
    """
    frozen = queries.view()
    frozen.flags.writeable = False
    pos, lo, hi = (np.empty(len(queries), dtype=np.int64) for _ in range(3))
    K.predict_batch(arrays, frozen, pos, lo, hi)
    return pos, lo, hi


def _search_top(arrays: RMIArrays, keys: np.ndarray) -> int:
    """The ``top`` of the loop kernels' fixed-step search (:func:`learnedidx._search.lift_top`)
    that fits the 99th percentile of the window widths lookups of the keys see (measured on
    up to 4096 evenly spaced keys, so leaves weigh by their keys: a radix root puts most keys
    in a few wide leaves); wider windows take a binary search sized to them.
    Complexity O(stages * 4096)."""
    n = len(keys)
    if n == 0:
        return 0
    sample = keys[np.linspace(0, n - 1, min(n, 4096)).astype(np.int64)]
    pos, lo, hi = _windows(arrays, sample)
    return K.lift_top(int(np.percentile(hi - lo, 99)))


register(RMI, "learnedidx.RMI")
