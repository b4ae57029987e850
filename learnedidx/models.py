"""Registry of RMI stage models: each fits the models of one stage and returns their records.

A fit function takes ``(keys, meta, params, stage, m, target_scale)``: the keys, the RMI arrays
with every earlier stage already trained (keys are routed through them), the number of models of
this stage, and the factor that turns positions into this stage's targets (``models in the next
stage / n`` for inner stages, 1 for the leaves). It returns a float64 array of shape
``(m, width)`` of model records (see :mod:`learnedidx._rmi_kernels`). Training is closed form and
one pass over the keys per stage.
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass
from typing import Callable

import numpy as np

from . import _rmi_kernels as K

#: Sample size for fitting a root polynomial: enough for a smooth CDF, constant time to fit.
_ROOT_SAMPLE = 1 << 20


@dataclass(frozen=True)
class StageModel:
    """One registry entry: the model kind the kernels evaluate, and how to fit it."""

    kind: int
    width: int
    fit: Callable
    root_only: bool
    summary: str


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


def _linear_records(anchors, slopes, intercepts, counts, starts, target_scale):
    records = np.zeros((len(slopes), K.LINEAR_WIDTH))
    records[:, 0] = anchor_slots(anchors)
    records[:, 1] = slopes
    records[:, 2] = intercepts
    _fill_empty(records, counts, starts, target_scale)
    return records


def _fill_empty(records, counts, starts, target_scale):
    """Empty models predict the position where their keys would start: a constant."""
    empty = counts == 0
    if not empty.any():
        return
    # Position of the next non-empty model's first key; the end of the array when none follows.
    n_total = int(counts.sum())
    nxt = np.where(empty, n_total, starts)
    nxt = np.minimum.accumulate(nxt[::-1])[::-1]
    records[empty, 1] = 0.0
    records[empty, 2] = nxt[empty] * target_scale
    records[empty, 0] = 0.0


def _fit_linear(keys, meta, params, stage, m, target_scale):
    anchors, slopes, intercepts, counts, starts = K.fit_linear_stage(
        meta, params, keys, stage, m, target_scale, False
    )
    return _linear_records(anchors, slopes, intercepts, counts, starts, target_scale)


def _fit_linear_spline(keys, meta, params, stage, m, target_scale):
    anchors, slopes, intercepts, counts, starts = K.fit_linear_stage(
        meta, params, keys, stage, m, target_scale, True
    )
    return _linear_records(anchors, slopes, intercepts, counts, starts, target_scale)


def _finite_range(keys):
    """``[first, last)`` positions of the finite keys (infinities sit at the ends)."""
    if keys.dtype.kind != "f":
        return 0, len(keys)
    return int(np.searchsorted(keys, -np.inf, "right")), int(np.searchsorted(keys, np.inf, "left"))


def _root_sample(keys):
    """Positions and keys of up to ``_ROOT_SAMPLE`` evenly spaced finite keys."""
    first, last = _finite_range(keys)
    if last - first <= _ROOT_SAMPLE:
        idx = np.arange(first, last)
    else:
        idx = np.unique(np.linspace(first, last - 1, _ROOT_SAMPLE).astype(np.int64))
    return idx, keys[idx]


def _fit_cubic(keys, meta, params, stage, m, target_scale):
    records = np.zeros((1, K.CUBIC_WIDTH))
    idx, sample = _root_sample(keys)
    if len(sample) == 0:
        return records
    x = _exact_offsets(sample, sample[0])
    span = float(x[-1])
    scale = 1.0 / span if span > 0 else 0.0
    if not math.isfinite(scale):
        scale = 0.0  # a span of subnormal floats: 1 / span overflows; a constant root still works
    y = idx * target_scale
    records[0, 0] = anchor_slots(sample[:1])[0]
    records[0, 1] = scale
    coefs = (float(y[0]), 0.0, 0.0, 0.0)
    t = x * scale
    if len(np.unique(t)) >= 4:
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


def _fit_radix(keys, meta, params, stage, m, target_scale):
    """The top bits of ``key - min``: slope a power of two, intercept zero."""
    records = np.zeros((1, K.LINEAR_WIDTH))
    first, last = _finite_range(keys)
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
