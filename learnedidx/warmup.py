"""Compile the kernels ahead of their first use: ``python -m learnedidx warmup [DTYPES]``.

Numba compiles each kernel at its first call for each key dtype and keeps it in its on-disk
cache (``NUMBA_CACHE_DIR``, else ``__pycache__`` beside the package), so the first process on a
machine waits and every later one loads the kernels in milliseconds. :func:`warmup` makes the
calls that compile them on a small index of each family: build, batch and scalar lookups of
every batch variant, ``get``, sorted batches, ``predict``, and a DynamicRMI's writes and merge.
Run it once after installing, or in a container image's build step.
"""

from __future__ import annotations

import difflib
import time
from collections.abc import Callable, Iterable

import numpy as np

from . import _compile_notice
from ._coerce import KEY_DTYPES

FAMILIES = ("RMI", "PGM", "RadixSpline", "DynamicRMI")
DTYPE_NAMES = tuple(str(d) for d in KEY_DTYPES)


def _sample_keys(dtype: np.dtype, n: int = 4000) -> np.ndarray:
    """Sorted distinct keys of ``dtype`` spread over its range (integers) or a normal (floats)."""
    rng = np.random.default_rng(0)
    if dtype.kind == "f":
        return np.unique(rng.normal(0, 1000, n).astype(dtype))
    lo, hi = int(np.iinfo(dtype).min), int(np.iinfo(dtype).max)
    return np.unique(np.array([lo + (hi - lo) * i // (n - 1) for i in range(n)], dtype=dtype))


def _static_calls(idx, keys: np.ndarray) -> None:
    """The read calls of a static index: batches (random and sorted), scalars, get, predict."""
    rng = np.random.default_rng(1)
    queries = rng.choice(keys, 3000)
    idx.lower_bound(queries)
    idx.upper_bound(queries)
    idx.get_batch(queries)
    idx.lower_bound(np.sort(queries))  # the galloping path of sorted batches
    idx.lower_bound_loop(queries[:100])
    idx.predict(queries[:100])
    q = queries[0].item()
    idx.lower_bound(q), idx.upper_bound(q), idx.get(q)


def _family_calls(name: str, keys: np.ndarray) -> None:
    from . import PGM, RMI, DynamicRMI, RadixSpline

    if name == "RMI":
        for variant in ("group", "amac"):
            _static_calls(RMI(keys, variant=variant), keys)
        _static_calls(RMI(keys, interleaved=False), keys)
    elif name in ("PGM", "RadixSpline"):
        cls = PGM if name == "PGM" else RadixSpline
        for interleaved in (True, False):
            _static_calls(cls(keys, interleaved=interleaved), keys)
    else:
        dyn = DynamicRMI(keys[::2])
        new = keys[1::2][:500]
        dyn.update(new, np.arange(len(new)))
        dyn[new[-1].item()] = 1
        dyn.get_batch(new)
        dyn.get(new[0].item())
        dyn.lower_bound(keys[:300]), dyn.lower_bound(new[1].item())
        dyn.delete(new[:100])
        dyn.merge()


def warmup(dtypes: Iterable[str] = ("uint64",), indexes: Iterable[str] = FAMILIES,
           progress: Callable[[str], None] | None = None) -> dict[tuple[str, str], float]:
    """Compile (or load from the cache) the kernels of ``indexes`` for keys of each of ``dtypes``.

    Returns the seconds each (index, dtype) took: its compile time on a cold cache, a few
    milliseconds on a warm one. ``progress`` gets one line per pair as it finishes. Defaults:
    uint64 keys, every family. No :class:`learnedidx.CompileWarning` is issued meanwhile.
    Raises ValueError naming an unknown dtype or index (with the valid names).
    """
    dtypes, indexes = [str(np.dtype(d)) if d in DTYPE_NAMES else str(d) for d in dtypes], list(indexes)
    for given, valid, what in ((dtypes, DTYPE_NAMES, "key dtype"), (indexes, FAMILIES, "index")):
        for name in given:
            if name not in valid:
                by_lower = {v.lower(): v for v in valid}
                close = difflib.get_close_matches(name.lower(), list(by_lower), n=1)
                hint = f" (did you mean {by_lower[close[0]]!r}?)" if close else ""
                raise ValueError(f"unknown {what} {name!r}{hint}; choose from {', '.join(valid)}")
    seconds = {}
    with _compile_notice.quiet():
        for dtype in dtypes:
            keys = _sample_keys(np.dtype(dtype))
            for name in indexes:
                t = time.perf_counter()
                _family_calls(name, keys)
                seconds[(name, dtype)] = time.perf_counter() - t
                if progress is not None:
                    progress(f"{name:12s} {dtype:8s} {seconds[(name, dtype)]:6.1f} s")
    return seconds
