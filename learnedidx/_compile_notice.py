"""Say once, as a warning, that a first call is compiling kernels rather than hung.

Numba compiles a kernel at its first call for each key dtype and keeps it in its on-disk cache
(``NUMBA_CACHE_DIR``, else ``__pycache__`` beside the package), so only the first process on
a machine waits. A listener on Numba's ``numba:compile`` event (sent on a cache miss only,
never when a kernel loads from the cache) issues one :class:`CompileWarning` per key dtype
and process, at the caller's line.
"""

from __future__ import annotations

import sys
import threading
import warnings

from numba.core import event, types


class CompileWarning(UserWarning):
    """A learnedidx call is compiling Numba kernels (first use on this machine only).

    Silence it with ``warnings.simplefilter("ignore", learnedidx.CompileWarning)``, or compile
    ahead with ``python -m learnedidx warmup``."""


_INTERNAL = ("learnedidx", "numba", "llvmlite", "concurrent.futures", "threading", "contextlib")
_told: set = set()
_lock = threading.Lock()
_quiet = [0]  #: depth of :class:`quiet` blocks (process-wide: a batch compiles in pool threads)


def _key_dtype(args) -> str:
    """The dtype of the first array argument of a kernel's signature, or ``"key"``."""
    for a in args:
        if isinstance(a, types.Array):
            return str(a.dtype)
        if isinstance(a, types.BaseTuple):
            for t in a:
                if isinstance(t, types.Array):
                    return str(t.dtype)
    return "key"


def _caller_stacklevel() -> int:
    """The ``stacklevel`` of the first frame outside this package and Numba (2 if none)."""
    frame, level = sys._getframe(1), 1
    while frame is not None:
        if not frame.f_globals.get("__name__", "").startswith(_INTERNAL):
            return level
        frame, level = frame.f_back, level + 1
    return 2


class _Listener(event.Listener):
    def on_start(self, ev):
        module = getattr(getattr(ev.data.get("dispatcher"), "py_func", None), "__module__", "") or ""
        if not module.startswith("learnedidx.") or _quiet[0]:
            return
        dtype = _key_dtype(ev.data.get("args", ()))
        with _lock:
            if dtype in _told:
                return
            _told.add(dtype)
        warnings.warn(
            f"learnedidx: compiling Numba kernels for {dtype} keys, first use on this machine only "
            f"(a few seconds per kind of call, cached for later processes); "
            f"`python -m learnedidx warmup {dtype}` compiles them ahead of time",
            CompileWarning, stacklevel=_caller_stacklevel())

    def on_end(self, ev):
        pass


class quiet:
    """Context manager: no :class:`CompileWarning` while inside it, from any thread (the
    warm-up reports its own progress)."""

    def __enter__(self):
        with _lock:
            _quiet[0] += 1
        return self

    def __exit__(self, *exc):
        with _lock:
            _quiet[0] -= 1
        return False


event.register("numba:compile", _Listener())
