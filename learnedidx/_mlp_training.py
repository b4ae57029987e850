"""Training of the RMI's neural root (stage model ``"mlp"``) with torch, on CPU.

The network maps a key's normalized offset ``t`` in [0, 1] to its normalized position in [0, 1]
(the keys' CDF); :func:`fit_mlp` returns its weights as float64 arrays, in the order of the
record :func:`learnedidx._rmi_kernels.mlp_output` evaluates. torch is imported here only: an
index trained with it answers, saves and loads without it.

Training, deterministic: the same sample gives the same weights, bit for bit, on one machine
(nothing is random; float64, one torch thread, ``torch.use_deterministic_algorithms``):

1. Closed-form start. The first layer's units are hinges ``max(0, t - k_i)`` with knots ``k_i``
   at evenly spaced quantiles of the keys (equal numbers of keys between knots), and the output
   layer is their least-squares fit: a linear spline, already a fair CDF model. A second layer's
   units are hinges on that spline's output at quantiles of the positions, again fitted by least
   squares.
2. L-BFGS on the whole sample's mean squared error moves every weight, knots included. The
   weights with the lower error, the start's or the result's, are kept.

Measured on 1M lognormal keys (``python -m bench.models`` compares roots): the start gets most
of the way; L-BFGS took the error 2.65e-5 -> 2.32e-5 with 16 units. Adam on mini-batches
(1500 steps, three rates) never beat the start. Cost is bounded whatever the key count: at most
``SAMPLE`` keys, and iterations capped by ``WORK`` multiply-adds.
"""

from __future__ import annotations

import contextlib

import numpy as np

from ._rmi_kernels import MLP_LANES

SAMPLE = 1 << 15  #: most keys the network is trained on, evenly spaced by position
ITERATIONS = 200  #: most L-BFGS iterations
WORK = 2e9  #: most multiply-adds of the network's evaluations, forward, over all iterations


def import_torch():
    """torch, or an ImportError naming the extra that installs it."""
    try:
        import torch
    except ImportError as e:
        raise ImportError('the "mlp" stage model trains with torch: pip install "learnedidx[torch]" '
                          f"(the CPU build; an index trained with it loads and answers without torch): {e}") from None
    return torch


@contextlib.contextmanager
def _deterministic(torch):
    """One torch thread and deterministic algorithms, restored afterwards."""
    threads = torch.get_num_threads()
    strict = torch.are_deterministic_algorithms_enabled()
    torch.set_num_threads(1)
    torch.use_deterministic_algorithms(True)
    try:
        yield
    finally:
        torch.use_deterministic_algorithms(strict)
        torch.set_num_threads(threads)


def _hinges(x: np.ndarray, knots: np.ndarray) -> np.ndarray:
    return np.maximum(x[:, None] - knots[None, :], 0.0)


def _least_squares(features: np.ndarray, y: np.ndarray) -> tuple:
    """``(w, b)`` minimising ``|features @ w + b - y|``; zeros where the fit is degenerate."""
    a = np.hstack([features, np.ones((len(y), 1))])
    coef = np.linalg.lstsq(a, y, rcond=None)[0]
    coef[~np.isfinite(coef)] = 0.0
    return coef[:-1], coef[-1]


def _start(t: np.ndarray, y: np.ndarray, hidden: tuple) -> list:
    """Closed-form weights (step 1 of the module docstring)."""
    h1 = hidden[0]
    knots = np.quantile(t, np.arange(h1) / h1)
    w1, b1 = np.ones(h1), -knots
    first = _hinges(t, knots)
    wo, bo = _least_squares(first, y)
    if len(hidden) == 1:
        return [w1, b1, wo, bo]
    h2 = hidden[1]
    levels = np.quantile(y, np.arange(h2) / h2)
    w2 = np.repeat(wo[:, None], h2, axis=1)
    b2 = bo - levels
    spline = first @ wo + bo
    wo2, bo2 = _least_squares(_hinges(spline, levels), y)
    return [w1, b1, w2, b2, wo2, bo2]


def fit_mlp(t: np.ndarray, y: np.ndarray, hidden: tuple) -> list:
    """Weights of a ReLU network with ``hidden`` units per layer (one or two layers of at most
    ``MLP_MAX_UNITS``) fitted to ``y(t)``: ``[w1, b1, wo, bo]`` or ``[w1, b1, w2, b2, wo, bo]``,
    float64 (``w2`` of shape ``(h1, h2)``, ``bo`` a 0-d array). ``t`` sorted in [0, 1], at most
    SAMPLE values. Complexity O(min(ITERATIONS * len(t) * h1 * h2, WORK)).

    Raises:
        ImportError: torch is not installed.
    """
    torch = import_torch()
    weights = [np.asarray(w, dtype=np.float64) for w in _start(t, y, hidden)]
    per_pass = len(t) * hidden[0] * (1 + (hidden[1] if len(hidden) > 1 else 0))
    iterations = int(min(ITERATIONS, WORK // max(per_pass, 1)))
    if len(t) < 2 or iterations < 1:
        return weights
    with _deterministic(torch):
        params = [torch.tensor(w, requires_grad=True) for w in weights]
        tt = torch.from_numpy(np.ascontiguousarray(t, dtype=np.float64))
        yy = torch.from_numpy(np.ascontiguousarray(y, dtype=np.float64))

        def error():
            h = torch.relu(tt[:, None] * params[0] + params[1])
            if len(hidden) == 2:
                h = torch.relu(h @ params[2] + params[3])
            return torch.mean((h @ params[-2] + params[-1] - yy) ** 2)

        def closure():
            optimizer.zero_grad()
            loss = error()
            loss.backward()
            return loss

        optimizer = torch.optim.LBFGS(params, max_iter=iterations, max_eval=iterations * 5 // 4, history_size=50,
                                      line_search_fn="strong_wolfe", tolerance_grad=0.0, tolerance_change=0.0)
        with torch.no_grad():
            start = float(error())
        optimizer.step(closure)
        with torch.no_grad():
            end = float(error())
        if not end < start:  # NaN included
            return weights
        return [p.detach().numpy().copy() for p in params]


def record_weights(weights: list, hidden: tuple, out_scale: float) -> np.ndarray:
    """The weights of :func:`fit_mlp` as the flat tail of an MLP record
    (:func:`learnedidx._rmi_kernels.mlp_output`): each layer padded with zero-weight units to
    a multiple of MLP_LANES, the output multiplied by ``out_scale``. Complexity O(h1 * h2)."""
    pad = [-h % MLP_LANES for h in hidden]
    w1, b1 = (np.pad(w, (0, pad[0])) for w in weights[:2])
    wo = np.pad(weights[-2], (0, pad[-1])) * out_scale
    bo = np.atleast_1d(weights[-1]) * out_scale
    middle = []
    if len(hidden) == 2:
        middle = [np.pad(weights[2], ((0, pad[0]), (0, pad[1]))), np.pad(weights[3], (0, pad[1]))]
    return np.concatenate([np.ravel(w) for w in [w1, b1, *middle, wo, bo]])
