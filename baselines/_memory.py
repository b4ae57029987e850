"""Memory measurement of object-based structures, for honest ``size_in_bytes`` figures.

Python objects are measured with ``sys.getsizeof`` by each adapter, which knows its structure.
C extensions that call ``malloc`` directly (BTrees' bucket arrays) are invisible to both
``getsizeof`` and ``tracemalloc``: :class:`CHeap` reads glibc's ``mallinfo2()`` (bytes in use by
``malloc``) before and after a build instead. It gives None where glibc is not the allocator.
"""

from __future__ import annotations

import ctypes
import ctypes.util


class _MallInfo2(ctypes.Structure):
    _fields_ = [
        (name, ctypes.c_size_t)
        for name in ("arena", "ordblks", "smblks", "hblks", "hblkhd", "usmblks", "fsmblks",
                     "uordblks", "fordblks", "keepcost")
    ]


def _load_mallinfo2():
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        fn = libc.mallinfo2
    except (OSError, AttributeError):
        return None
    fn.restype = _MallInfo2
    fn.argtypes = []
    return fn


_mallinfo2 = _load_mallinfo2()


def c_heap_in_use() -> int | None:
    """Bytes ``malloc`` has handed out and not taken back (glibc), or None when unknown."""
    if _mallinfo2 is None:
        return None
    info = _mallinfo2()
    return int(info.uordblks + info.hblkhd)


class CHeap:
    """``with CHeap() as heap: build()`` then ``heap.grown``: bytes malloc'd and still held.

    Temporaries freed (by reference counting) inside the block do not count; ``grown`` is None
    when mallinfo2 is unavailable.
    """

    def __enter__(self):
        self._start = c_heap_in_use()
        self.grown = None
        return self

    def __exit__(self, *exc):
        end = c_heap_in_use()
        if self._start is not None and end is not None:
            self.grown = max(0, end - self._start)
        return False
