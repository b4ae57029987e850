"""Registry of RMI stage models, and the runs of keys they are fitted to.

A fit function takes ``(keys, meta, params, stage, m, target_scale, runs, config)``: the keys,
the RMI arrays with every earlier stage already trained, the number of models of this stage,
the factor that turns positions into this stage's targets (``models in the next stage / n``
for inner stages, 1 for the leaves), the stage's ``runs`` and the ``RMIConfig``. It returns a
float64 array of shape ``(m, width)`` of model records (see :mod:`learnedidx._rmi_kernels`).
Training is closed form, but for the ``"mlp"`` root's (torch: :mod:`learnedidx._mlp_training`).

Keys are sorted, so the keys that the stages above route to one model form a few *runs* of
consecutive positions: ``runs = (bounds, owner)``, run r being ``keys[bounds[r]:bounds[r + 1]]``
and ``owner[r]`` its model (:func:`root_runs`, :func:`stage_runs`). Fits and the error pass
(:func:`leaf_errors`) read the keys run by run, in blocks, on every Numba thread.
"""

from __future__ import annotations

import math
import warnings
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Callable

import numba
import numpy as np

from . import _rmi_kernels as K
from . import _rmi_training as T

#: Sample size for fitting a root polynomial: enough for a smooth CDF, constant time to fit.
_ROOT_SAMPLE = 1 << 20
#: Key arrays from this size train on every Numba thread: below, starting the threads costs about
#: what they save (2-vCPU VM, lognormal keys: 1M built in 24 ms on one thread, 28 on two; 4M, 92 and 73).
PARALLEL_KEYS = 1 << 22
#: ``log2(e + 1)`` for the errors e most keys have (:func:`learnedidx._rmi_kernels.errors_range`).
_LOG2 = np.log2(np.arange(4096) + 1.0)


@dataclass(frozen=True)
class StageModel:
    """One registry entry: the model kind the kernels evaluate, and how to fit it. ``width``:
    the slots of one record, or a function of the ``RMIConfig`` giving them."""

    kind: int
    width: int | Callable
    fit: Callable
    root_only: bool
    summary: str

    def record_width(self, config) -> int:
        """Slots of one record of this model under ``config`` (an ``RMIConfig``)."""
        return self.width(config) if callable(self.width) else self.width


def anchor_slots(anchors: np.ndarray) -> np.ndarray:
    """Anchors as the float64 slot values the kernels read (bit patterns for integer keys)."""
    if anchors.dtype.kind == "f":
        return anchors.astype(np.float64)
    wide = np.uint64 if anchors.dtype.kind == "u" else np.int64
    return anchors.astype(wide).view(np.float64)


def _exact_offsets(keys: np.ndarray, anchor) -> np.ndarray:
    """``keys - anchor`` as float64, subtracting in 64-bit integers first (keys >= anchor)."""
    if keys.dtype.kind == "f":
        return keys.astype(np.float64) - np.float64(anchor)
    wide = np.uint64 if keys.dtype.kind == "u" else np.int64
    diff = keys.astype(wide).view(np.uint64) - np.array(anchor, dtype=wide).view(np.uint64)
    return diff.astype(np.float64)


def _linear_records(n, anchors, slopes, intercepts, counts, starts, target_scale):
    records = np.zeros((len(slopes), K.LINEAR_WIDTH))
    records[:, 0] = anchor_slots(anchors)
    records[:, 1] = slopes
    records[:, 2] = intercepts
    _fill_empty(records, n, counts, starts, target_scale)
    return records


def _fill_empty(records, n, counts, starts, target_scale):
    """Empty models predict the position where their keys would start: a constant (n, the
    end of the n keys, when no model after them has keys)."""
    empty = counts == 0
    if not empty.any():
        return
    # Position of the next non-empty model's first key.
    nxt = np.where(empty, n, starts)
    nxt = np.minimum.accumulate(nxt[::-1])[::-1]
    records[empty, 1] = 0.0
    records[empty, 2] = nxt[empty] * target_scale
    records[empty, 0] = 0.0


def _fit_linear(keys, meta, params, stage, m, target_scale, runs, config):
    return _linear_records(len(keys), *fit_lines(keys, runs, m, target_scale, False), target_scale)


def _fit_linear_spline(keys, meta, params, stage, m, target_scale, runs, config):
    return _linear_records(len(keys), *fit_lines(keys, runs, m, target_scale, True), target_scale)


def fit_lines(keys, runs, m, target_scale, spline):
    """Fit ``m`` lines, model ``owner[r]`` to the keys of run r: least squares, or the line
    through the first and last key (``spline``). A run of duplicates is one point, its first
    position; targets are positions times ``target_scale``; x is the key minus the model's
    anchor, its first key.

    Least squares from each block's moments (:func:`learnedidx._rmi_kernels.moments_range`),
    combined per model as ``M2 = sum(M2_b) + sum(n_b * (mean_b - mean)**2)``: every term is
    non-negative, so no cancellation. Complexity O(n / threads + runs).

    Returns:
        ``(anchors, slopes, intercepts, counts, starts)``: ``counts[j]`` distinct keys, the
        first at position ``starts[j]`` (-1 when none), ``anchors[j]`` its key.
    """
    bounds, owner = runs
    first_run = np.full(m, len(owner), dtype=np.int64)
    np.minimum.at(first_run, owner, np.arange(len(owner)))
    has = first_run < len(owner)
    starts = np.full(m, -1, dtype=np.int64)
    starts[has] = bounds[first_run[has]]
    anchors = np.zeros(m, dtype=keys.dtype)
    anchors[has] = keys[starts[has]]
    start, end, run = _blocks(bounds)
    model = owner[run]
    moments = np.zeros((len(run), 5))
    _in_ranges(T.moments_range, len(run), len(keys), keys, start, end, anchors[model], moments)
    n_b, mean_xb, mean_yb, m2_b, c_b = moments.T
    counts = np.bincount(model, weights=n_b, minlength=m)
    slopes = np.zeros(m)
    intercepts = np.zeros(m)
    # Float keys of infinite span give NaN lines: they route to model 0 (clamp_index in
    # learnedidx._rmi_kernels), and the error bounds, measured afterwards, still hold.
    with np.errstate(all="ignore"):
        if spline:
            last_run = np.full(m, -1, dtype=np.int64)
            np.maximum.at(last_run, owner, np.arange(len(owner)))
            last = keys[bounds[last_run[has] + 1] - 1]
            last_x = _exact_offsets(last, anchors[has])
            first_y = starts[has] * target_scale
            rise = np.searchsorted(keys, last) * target_scale - first_y  # to the last key's first position
            slopes[has] = np.divide(rise, last_x, out=np.zeros(len(last_x)), where=last_x > 0.0)
            intercepts[has] = first_y
        else:
            mean_x = np.bincount(model, weights=n_b * mean_xb, minlength=m) / counts
            mean_y = np.bincount(model, weights=n_b * mean_yb, minlength=m) / counts
            dx = mean_xb - mean_x[model]
            dy = mean_yb - mean_y[model]
            m2 = np.bincount(model, weights=m2_b + n_b * dx * dx, minlength=m)
            cov = np.bincount(model, weights=c_b + n_b * dx * dy, minlength=m)
            line = has & (m2 > 0.0)
            slopes[line] = cov[line] * target_scale / m2[line]
            intercepts[line] = mean_y[line] * target_scale - slopes[line] * mean_x[line]
            flat = has & ~line
            intercepts[flat] = starts[flat] * target_scale
    return anchors, slopes, intercepts, counts.astype(np.int64), starts


def root_runs(n: int) -> tuple:
    """The root's runs: one of every key (none when there are no keys)."""
    if n == 0:
        return np.zeros(1, dtype=np.int64), np.zeros(0, dtype=np.int64)
    return np.array([0, n], dtype=np.int64), np.zeros(1, dtype=np.int64)


def routes_in_order(meta, params, keys, stage) -> bool:
    """True when every model of ``stage`` (trained) routes the sorted keys of each of its runs
    in order: its models are lines with finite, non-negative slopes and finite intercepts, and
    every ``key - anchor`` is finite (any integer keys; float keys of finite span). IEEE
    rounding is monotonic, so ``floor(slope * x + intercept)``, clamped, never decreases as
    the key grows. Complexity O(models)."""
    rec = K.META_HEADER + K.META_STRIDE * stage
    kind, m, offset, width = (int(v) for v in meta[rec:rec + 4])
    if kind != K.KIND_LINEAR:
        return False
    if len(keys):
        with np.errstate(over="ignore", invalid="ignore"):
            if not np.isfinite(np.float64(keys[-1]) - np.float64(keys[0])):
                return False
    lines = params[offset:offset + m * width].reshape(m, width)
    slopes, intercepts = lines[:, 1], lines[:, 2]
    return bool((slopes >= 0.0).all() and np.isfinite(slopes).all() and np.isfinite(intercepts).all())


def stage_runs(meta, params, keys, stage, runs, split=True) -> tuple:
    """``(runs, searched)``: the runs of the models of ``stage`` (>= 1), given the runs of
    ``stage - 1``, which must be trained. When that stage routes in order
    (:func:`routes_in_order`) and ``split``, each of its runs splits at positions found by
    searching on its model's line (``searched``); else every key is routed (``split=False``:
    the same runs, slower). Complexity O(runs * log(keys per run)), or O(n * stage) routing
    every key."""
    if split and routes_in_order(meta, params, keys, stage - 1):
        return _split_runs(meta, params, keys, stage, runs), True
    return _route_runs(meta, params, keys, stage), False


def _split_runs(meta, params, keys, stage, runs):
    bounds, owner = runs
    nr = len(owner)
    if nr == 0:
        return runs
    rec = K.META_HEADER + K.META_STRIDE * (stage - 1)
    base0 = int(meta[rec + 2])
    limit = int(meta[rec + K.META_STRIDE + 1]) - 1
    pbits = params.view(np.int64)
    first = np.empty(nr, dtype=np.int64)
    last = np.empty(nr, dtype=np.int64)
    none = np.zeros(0, dtype=np.int64)
    T.split_range(params, pbits, keys, bounds, owner, base0, limit, True, none, first, last, none, 0, nr)
    room = np.minimum(np.maximum(last - first + 1, 1), np.diff(bounds))
    slot = np.zeros(nr + 1, dtype=np.int64)
    np.cumsum(room, out=slot[1:])
    out_start = np.empty(slot[-1], dtype=np.int64)
    out_owner = np.empty(slot[-1], dtype=np.int64)
    used = np.zeros(nr, dtype=np.int64)
    _in_ranges(T.split_range, nr, len(keys), params, pbits, keys, bounds, owner, base0, limit, False, slot,
               out_start, out_owner, used)
    of = np.repeat(np.arange(nr), room)
    filled = np.arange(slot[-1]) - slot[of] < used[of]
    # A parent run's last child and the next one's first child may be one model: one run.
    return _joined_runs(out_start[filled], out_owner[filled], len(keys))


def _joined_runs(starts, owners, n):
    """``(bounds, owner)`` of runs given by their starts and models, neighbours of one model
    joined into one run; n closes the last."""
    new = np.ones(len(owners), dtype=bool)
    np.not_equal(owners[1:], owners[:-1], out=new[1:])
    return np.append(starts[new], n), owners[new]


def _route_runs(meta, params, keys, stage):
    """Runs of the models of ``stage`` from every key's route: the keys cut into one chunk per
    Numba thread from PARALLEL_KEYS keys (a neural root costs tens of ns a key: 1.0 s serial
    for 30M keys), each scanned by :func:`learnedidx._rmi_training.route_scan`, joined where
    a chunk's last run and the next one's first have one model. Complexity O(n * stage / threads)."""
    n = len(keys)
    threads = numba.get_num_threads() if n >= PARALLEL_KEYS else 1
    edges = [n * c // threads for c in range(threads + 1)]
    with ThreadPoolExecutor(threads) as pool:
        chunks = list(pool.map(lambda c: _route_chunk(meta, params, keys[:edges[c + 1]], stage, edges[c]),
                               range(threads)))
    return _joined_runs(np.concatenate([b for b, _ in chunks]), np.concatenate([o for _, o in chunks]), n)


def _route_chunk(meta, params, keys, stage, start):
    """``(starts, owner)`` of the runs of ``keys[start:]``, every key routed."""
    pbits = params.view(np.int64)
    cap = int(meta[K.META_HEADER + K.META_STRIDE * stage + 1]) + 16
    bounds = np.empty(cap, dtype=np.int64)
    owner = np.empty(cap, dtype=np.int64)
    i, r, cur = T.route_scan(meta, params, pbits, keys, stage, start, bounds, owner, 0, -1)
    while i < len(keys):
        cap *= 2
        bounds = np.concatenate([bounds[:r], np.empty(cap - r, dtype=np.int64)])
        owner = np.concatenate([owner[:r], np.empty(cap - r, dtype=np.int64)])
        i, r, cur = T.route_scan(meta, params, pbits, keys, stage, i, bounds, owner, r, cur)
    return bounds[:r].copy(), owner[:r].copy()


def no_hybrid(dtype) -> tuple:
    """``(hybrid_keys, hybrid_pos)`` of an RMI without hybrid leaves: empty and read-only, as
    every RMI's are (one Numba type for the kernels)."""
    empty = (np.empty(0, dtype=dtype), np.empty(0, dtype=np.int64))
    for a in empty:
        a.flags.writeable = False
    return empty


def leaf_errors(meta, params, keys, runs, every_key=True, hybrid=None, leaves=None) -> tuple:
    """Error bounds of every leaf, from the trained models, exactly as inference computes them
    (:func:`learnedidx._rmi_kernels.errors_range`), the leaves' ``runs`` read block by block on
    every Numba thread. Each block's keys are checked to route to its run's leaf: every key's
    route with ``every_key``, else only its ends', enough when each run was found exactly: by
    routing every key, or by searching on lines that route in order (:func:`stage_runs`). ``hybrid``: ``(hybrid_keys, hybrid_pos)``, the
    samples of hybrid leaves (default :func:`no_hybrid`); ``leaves``: a boolean mask of the
    leaves to measure (all by default; the others report zeros). Complexity O(keys measured *
    stages / threads).

    Returns:
        ``(lo, hi, max_abs, log2_sum, routed)``, per leaf j: its window is
        ``[pos + lo[j], pos + hi[j]]`` (0, 0 without keys), ``max_abs[j]`` and ``log2_sum[j]``
        the largest ``|lb(k) - pos|`` and the sum of ``log2(|lb(k) - pos| + 1)`` over its keys
        (duplicates count); ``routed`` is False when a key routes to another leaf than its run
        says (the runs were wrong, and so are the bounds).
    """
    bounds, owner = runs
    m = int(meta[K.META_HEADER + K.META_STRIDE * (int(meta[0]) - 1) + 1])
    start, end, run = _blocks(bounds)
    leaf = owner[run]
    if leaves is not None:
        keep = leaves[leaf]
        start, end, leaf = start[keep], end[keep], leaf[keep]
    hkeys, hpos = no_hybrid(keys.dtype) if hybrid is None else hybrid
    out = np.zeros((len(leaf), 4), dtype=np.int64)
    log2_sums = np.zeros(len(leaf))
    _in_ranges(T.errors_range, len(leaf), len(keys), meta, params, params.view(np.int64), hkeys, hpos, keys, start,
               end, leaf, every_key, _LOG2, out, log2_sums)
    unset = np.int64(1) << 62
    lo = np.full(m, unset, dtype=np.int64)
    hi = np.full(m, -unset, dtype=np.int64)
    max_abs = np.zeros(m, dtype=np.int64)
    np.minimum.at(lo, leaf, out[:, 0])
    np.maximum.at(hi, leaf, out[:, 1])
    np.maximum.at(max_abs, leaf, out[:, 2])
    empty = lo == unset
    lo[empty] = 0
    hi[empty] = 0
    return lo, hi, max_abs, np.bincount(leaf, log2_sums, minlength=m), not out[:, 3].any()


def _blocks(bounds):
    """``(start, end, run)`` of every block: each run cut into pieces of at most FIT_BLOCK
    positions (the units the kernels take, a run's one by one)."""
    lengths = np.diff(bounds)
    if len(lengths) == 0 or lengths.max() <= T.FIT_BLOCK:
        return bounds[:-1], bounds[1:], np.arange(len(lengths))
    per_run = (lengths + T.FIT_BLOCK - 1) // T.FIT_BLOCK
    run = np.repeat(np.arange(len(lengths)), per_run)
    first = np.cumsum(per_run) - per_run
    start = bounds[run] + (np.arange(len(run)) - first[run]) * T.FIT_BLOCK
    return start, np.minimum(start + T.FIT_BLOCK, bounds[run + 1]), run


def _in_ranges(kernel, count, n, *args):
    """``kernel(*args, lo, hi)`` over ``[0, count)``: in ranges on every Numba thread (the
    kernels release the GIL) when there are at least PARALLEL_KEYS keys n, else in one call."""
    threads = numba.get_num_threads() if n >= PARALLEL_KEYS else 1
    if threads == 1 or count < 2:
        kernel(*args, 0, count)
        return
    tasks = min(count, 4 * threads)
    edges = [count * t // tasks for t in range(tasks + 1)]
    with ThreadPoolExecutor(threads) as pool:
        for done in [pool.submit(kernel, *args, edges[t], edges[t + 1]) for t in range(tasks)]:
            done.result()


def finite_positions(keys):
    """``[first, last)`` positions of the finite keys (infinities sit at the ends)."""
    if keys.dtype.kind != "f":
        return 0, len(keys)
    return int(np.searchsorted(keys, -np.inf, "right")), int(np.searchsorted(keys, np.inf, "left"))


def _distinct_sorted(a):
    """``np.unique`` of a sorted array, in one pass (np.unique hashes: 0.7 s for 1M int64)."""
    if len(a) == 0:
        return a
    keep = np.empty(len(a), dtype=bool)
    keep[0] = True
    np.not_equal(a[1:], a[:-1], out=keep[1:])
    return a[keep]


def _root_sample(keys, size):
    """Positions and keys of up to ``size`` evenly spaced finite keys."""
    first, last = finite_positions(keys)
    if last - first <= size:
        idx = np.arange(first, last)
    else:
        idx = _distinct_sorted(np.linspace(first, last - 1, size).astype(np.int64))
    return idx, keys[idx]


def _normalized_sample(keys, size):
    """``(idx, sample, t, scale)``: positions and keys of up to ``size`` evenly spaced finite
    keys, and their offsets from the first, ``t = (key - sample[0]) * scale`` in [0, 1]."""
    idx, sample = _root_sample(keys, size)
    if len(sample) == 0:
        return idx, sample, np.zeros(0), 0.0
    x = _exact_offsets(sample, sample[0])
    span = float(x[-1])
    scale = 1.0 / span if span > 0 else 0.0
    if not math.isfinite(scale):
        scale = 0.0  # a span of subnormal floats: 1 / span overflows; a constant root still works
    return idx, sample, x * scale, scale


def _fit_cubic(keys, meta, params, stage, m, target_scale, runs, config):
    records = np.zeros((1, K.CUBIC_WIDTH))
    idx, sample, t, scale = _normalized_sample(keys, _ROOT_SAMPLE)
    if len(sample) == 0:
        return records
    y = idx * target_scale
    records[0, 0] = anchor_slots(sample[:1])[0]
    records[0, 1] = scale
    coefs = (float(y[0]), 0.0, 0.0, 0.0)
    if len(_distinct_sorted(t)) >= 4:
        with warnings.catch_warnings():
            # Clustered keys condition the fit badly; a poor root costs speed, never answers.
            warnings.simplefilter("ignore", np.exceptions.RankWarning)
            try:
                fitted = np.polynomial.polynomial.polyfit(t, y, 3)
            except np.linalg.LinAlgError:
                fitted = np.array(coefs)
        if np.isfinite(fitted).all():
            coefs = tuple(fitted)
    records[0, 2:6] = coefs
    return records


def _fit_radix(keys, meta, params, stage, m, target_scale, runs, config):
    """The top bits of ``key - min``: slope a power of two, intercept zero."""
    records = np.zeros((1, K.LINEAR_WIDTH))
    first, last = finite_positions(keys)
    if last <= first:
        return records
    span = float(_exact_offsets(keys[last - 1:last], keys[first])[0])
    outputs = max(1, round(target_scale * len(keys)))  # models in the next stage
    shift = 0
    if span >= outputs:
        shift = math.frexp(span / outputs)[1]  # smallest power with span / 2**shift < outputs
    records[0, 0] = anchor_slots(keys[first:first + 1])[0]
    records[0, 1] = math.ldexp(1.0, -shift)
    return records


def _fit_mlp(keys, meta, params, stage, m, target_scale, runs, config):
    """A ReLU network of ``config.mlp_hidden`` units trained with torch on a sample of the keys
    (:func:`learnedidx._mlp_training.fit_mlp`), its output scaled to the stage's targets."""
    from ._mlp_training import SAMPLE, fit_mlp, import_torch, record_weights

    import_torch()  # the error names the extra even when there is nothing to train
    hidden = tuple(config.mlp_hidden)
    records = np.zeros((1, K.mlp_width(hidden)))
    records[0, 2] = hidden[0]
    records[0, 3] = hidden[1] if len(hidden) > 1 else 0
    idx, sample, t, scale = _normalized_sample(keys, SAMPLE)
    n = len(keys)
    if len(sample) == 0:
        return records
    records[0, 0] = anchor_slots(sample[:1])[0]
    records[0, 1] = scale
    # Trained on positions normalised to [0, 1], scaled to the stage's targets on export.
    records[0, K.MLP_HEADER:] = record_weights(fit_mlp(t, idx / n, hidden), hidden, n * target_scale)
    return records


MODELS: dict[str, StageModel] = {
    "linear": StageModel(K.KIND_LINEAR, K.LINEAR_WIDTH, _fit_linear, False,
                         "least-squares line; the default leaf: small, fast and accurate"),
    "linear_spline": StageModel(K.KIND_LINEAR, K.LINEAR_WIDTH, _fit_linear_spline, False,
                                "line through the first and last key; cheaper to fit, "
                                "never overshoots the ends"),
    "cubic": StageModel(K.KIND_CUBIC, K.CUBIC_WIDTH, _fit_cubic, True,
                        "least-squares cubic over the whole CDF; follows curved CDFs "
                        "(lognormal) better than a line"),
    "radix": StageModel(K.KIND_LINEAR, K.LINEAR_WIDTH, _fit_radix, True,
                        "the top bits of key - min; free to fit, good on uniform keys"),
    "mlp": StageModel(K.KIND_MLP, lambda config: K.mlp_width(config.mlp_hidden), _fit_mlp, True,
                      "a small ReLU network (RMIConfig.mlp_hidden) trained with torch on a sample; "
                      "follows CDFs with several bends, at tens of ns a lookup"),
}


def stage_model(name: str, position: str) -> StageModel:
    """Look a model up by name. Raises ValueError for unknown names or root-only leaves."""
    try:
        model = MODELS[name]
    except (KeyError, TypeError):
        raise ValueError(f"unknown stage model {name!r}; choose from {sorted(MODELS)}") from None
    if model.root_only and position != "root":
        inner = sorted(k for k, v in MODELS.items() if not v.root_only)
        raise ValueError(f"stage model {name!r} can only be the root; for the {position} use one of {inner}")
    return model
