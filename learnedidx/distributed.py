"""`ShardedIndex`: sorted keys range-sharded over Dask workers, one learned index a shard.

The keys are cut into ``shards`` ranges of equal count. Each shard is a learned index of this
project (``kind``: ``"RMI"`` by default, or ``"tune"`` for the tuner's choice) built on a worker
and kept there as a Dask future; a query batch is split per shard in the client, each part
sent to its shard, and the answers put back in order. Positions are global: a shard's answer
plus the keys of the shards before it.

Routing is exact for duplicates that straddle a shard boundary: ``lower_bound(q)`` asks the
first shard whose last key is ``>= q`` (the first position of q's run is there), and
``upper_bound(q)`` the first whose last key is ``> q``; beyond every shard the answer is n.
The router is an RMI over the shards' last keys (W keys), so queries of any numeric type are
compared exactly, as every index compares them.

Out of core: :meth:`ShardedIndex.from_sosd` builds each shard on a worker from its slice of
an SOSD key file, mapped rather than read (``copy=False``), so no process holds all the keys.
After training, a shard drops the mapped pages from its resident set and reads the mapping
at random (:func:`random_access`): its keys stay on disk until lookups touch them.

Each shard lives in a Dask actor (:class:`_Shard`). The client calls it straight on its worker
(the actor proxy of a client without ``direct_to_workers`` relays every call through the
scheduler), all of a batch's calls in flight at once and awaited in one hand-off to the
client's event loop. A shard answers small calls on its worker's event loop and big ones on its
own thread, and sends positions as int32 when it has fewer than 2**31 keys. Faults: a
call that fails because a worker died rebuilds the shards that failed, from the file or from
the client's keys, on the workers left, and is retried once; if it fails again,
:class:`ShardError` names the shard. No call returns a partial answer.

Needs ``dask.distributed`` (``pip install "learnedidx[distributed]"``).
"""

from __future__ import annotations

import asyncio
import mmap
import os
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import numpy as np

from ._coerce import as_query_array, prepare_keys_values

SOSD_HEADER = 8  #: bytes of an SOSD file's key count


CHUNK = 1 << 20  #: most queries in one call to a shard (:meth:`ShardedIndex._calls`)
INLINE = 1 << 12  #: a shard answers calls of at most this many queries without a thread hop
_POSITIONS = ("lower_bound", "upper_bound")


def _joined(parts: list):
    """One call's answer from its chunks' answers (arrays, or tuples of arrays)."""
    if len(parts) == 1:
        return parts[0]
    if isinstance(parts[0], tuple):
        return tuple(np.concatenate(column) for column in zip(*parts))
    return np.concatenate(parts)


class ShardError(RuntimeError):
    """A shard could not answer, even after being rebuilt: the message names it."""


def _distributed():
    try:
        import distributed
    except ImportError as e:
        raise ImportError('ShardedIndex runs on Dask: pip install "learnedidx[distributed]" '
                          f"(dask.distributed): {e}") from None
    return distributed


def aligned(a: np.ndarray) -> np.ndarray:
    """``a``, or a contiguous copy when it is not aligned to its item size: arrays Dask
    deserializes may start at any byte (seen: an 80 MB key array at an address 6 mod 8), and
    then every lookup on them copies them whole (13.5 ms against 0.97 for 1K lookups)."""
    if a.flags.c_contiguous and a.ctypes.data % max(a.itemsize, 1) == 0:
        return a
    out = np.empty(a.shape, dtype=a.dtype)
    out[...] = a
    return out


def _index_class(kind: str):
    from .tuning import families

    classes = families()
    if kind not in classes and kind != "tune":
        raise ValueError(f"kind must be one of {sorted(classes) + ['tune']}, got {kind!r}")
    return classes.get(kind)


def _build(keys, values, kind, options):
    """A shard's index over its keys."""
    keys = aligned(keys)
    values = None if values is None else aligned(values)
    if kind == "tune":
        from . import tune

        return tune(keys, values, assume_sorted=True, copy=False, **options)
    return _index_class(kind)(keys, values, assume_sorted=True, copy=False, **options)


def sosd_slice(path, start: int, stop: int, dtype) -> tuple[np.ndarray, mmap.mmap | None]:
    """``(keys[start:stop], mapping)`` of an SOSD file: the keys mapped, not read, and the
    ``mmap`` behind them (None for no keys)."""
    dtype = np.dtype(dtype)
    if stop <= start:
        return np.empty(0, dtype=dtype), None
    begin = SOSD_HEADER + start * dtype.itemsize
    base = begin - begin % mmap.ALLOCATIONGRANULARITY
    with open(path, "rb") as f:
        mapping = mmap.mmap(f.fileno(), begin - base + (stop - start) * dtype.itemsize, access=mmap.ACCESS_READ,
                            offset=base)
    return np.frombuffer(mapping, dtype=dtype, count=stop - start, offset=begin - base), mapping


def random_access(mapping: mmap.mmap, release: bool = False) -> None:
    """Tell the OS that ``mapping`` will be read at random: no read-ahead, which otherwise
    reads 128 KB around every page a lookup faults in and fills the page cache with keys no
    lookup asked for. ``release`` also unmaps its resident pages (they stay in the page cache),
    so that the process's resident memory counts only the pages lookups touch afterwards. A
    no-op where ``madvise`` is missing."""
    if not hasattr(mapping, "madvise"):
        return
    if release and hasattr(mmap, "MADV_DONTNEED"):
        mapping.madvise(mmap.MADV_DONTNEED)
    if hasattr(mmap, "MADV_RANDOM"):
        mapping.madvise(mmap.MADV_RANDOM)


class _Shard:
    """A Dask actor holding one shard's index on its worker.

    Calls of at most INLINE queries run on the worker's event loop: a thread hop costs more than
    they do. Bigger ones run on the shard's own thread (the kernels release the GIL), so the
    loop goes on receiving the next chunk meanwhile."""

    def __init__(self, keys, values, path, start, stop, dtype, kind, options):
        mapping = None
        if path is not None:
            keys, mapping = sosd_slice(path, start, stop, dtype)
        self.index = _build(keys, values, kind, options)
        if mapping is not None:
            random_access(mapping, release=True)
        self.narrow = len(self.index) < 2**31
        self.thread = ThreadPoolExecutor(1, thread_name_prefix="learnedidx-shard")

    def answer(self, method, queries, *args):
        out = getattr(self.index, method)(queries, *args)
        return out.astype(np.int32) if self.narrow and method in _POSITIONS else out

    async def call(self, method, queries, *args):
        queries = aligned(queries)
        if len(queries) <= INLINE:
            return self.answer(method, queries, *args)
        return await asyncio.get_running_loop().run_in_executor(self.thread, self.answer, method, queries, *args)

    async def range(self, lo, hi):
        keys, values = self.index.range(lo, hi)
        return np.array(keys), np.array(values)

    async def size(self):
        return self.index.size_in_bytes()


async def _execute(rpc, actor_key, method, args):
    """One actor method's result, asked of its worker directly; the worker's exception if it raised."""
    from distributed.protocol import to_serialize

    reply = await rpc.actor_execute(function=method, actor=actor_key, args=[to_serialize(a) for a in args],
                                    kwargs={})
    if reply["status"] != "OK":
        raise reply["exception"]
    return reply["result"]


class ShardedIndex:
    """Sorted keys range-sharded over a Dask cluster; answers as one index over all the keys.

    ``ShardedIndex(keys, values=None, *, client, shards=None, kind="RMI", assume_sorted=False,
    **index_options)``: ``keys`` validated and sorted as every index's are, then cut into
    ``shards`` ranges of equal count (default: one per worker), each built on a worker, in an actor, as
    ``kind`` (``"RMI"``, ``"PGM"``, ``"RadixSpline"`` or ``"tune"``) with ``index_options``.
    The client keeps the keys only to rebuild a lost shard. Complexity: a batch of m queries
    costs O(m log W) routing in the client plus a message each way for each shard it touches
    (and each further CHUNK queries).

    Raises:
        ImportError: dask.distributed is not installed.
        TypeError, ValueError: as every index for keys and values; ``shards`` not a positive
            int; an unknown ``kind``.
        ShardError: a shard failed and could not be rebuilt.
    """

    def __init__(self, keys: Any, values: Any = None, *, client, shards: int | None = None, kind: str = "RMI",
                 assume_sorted: bool = False, **index_options):
        _distributed()
        _index_class(kind)
        keys, values = prepare_keys_values(keys, values, assume_sorted=assume_sorted)
        self._keys, self._values = keys, values
        self._setup(client, len(keys), keys.dtype, shards, kind, index_options, path=None)
        self._launch(keys)

    @classmethod
    def from_sosd(cls, path: str | os.PathLike, *, client, shards: int | None = None, dtype: Any = np.uint64,
                  kind: str = "RMI", **index_options) -> "ShardedIndex":
        """Shards built by the workers from slices of an SOSD key file (a little-endian u64
        count, then the sorted keys), mapped rather than read: the client reads 8 bytes and the
        shards' last keys. ``path`` must be readable by every worker (a local cluster's, or a
        shared file system). A lost shard is rebuilt from the file. Each shard keeps in memory its
        model and the pages of keys lookups touch; with more ``shards`` than workers, a worker
        trains its shards one after another, which bounds the keys read at once where the
        file does not fit in memory.

        Raises:
            FileNotFoundError: no such file. ValueError: the size does not match the count, or
            the keys read at the shards' ends are not sorted.
        """
        _distributed()
        _index_class(kind)
        path = os.path.abspath(os.fspath(path))
        dtype = np.dtype(dtype).newbyteorder("<")
        with open(path, "rb") as f:
            count = int(np.frombuffer(f.read(SOSD_HEADER), dtype="<u8")[0]) if os.fstat(f.fileno()).st_size >= 8 \
                else -1
        size = os.path.getsize(path)
        if count < 0 or size != SOSD_HEADER + count * dtype.itemsize:
            raise ValueError(f"{path}: {size} bytes does not hold the 8-byte count and {max(count, 0):,} "
                             f"{dtype.name} keys it announces (truncated or not an SOSD file)")
        self = cls.__new__(cls)
        self._keys, self._values = None, None
        self._setup(client, count, dtype.newbyteorder("="), shards, kind, index_options, path=path)
        mapped, _ = sosd_slice(path, 0, count, dtype)
        if count and np.any(np.diff(mapped[self._ends - 1].astype(self.dtype)) < 0):
            raise ValueError(f"{path}: keys are not sorted (the shards' last keys decrease)")
        self._launch(mapped)
        return self

    def _setup(self, client, n, dtype, shards, kind, options, path):
        workers = max(1, len(client.scheduler_info().get("workers", {})))
        shards = workers if shards is None else shards
        if isinstance(shards, bool) or not isinstance(shards, (int, np.integer)) or shards < 1:
            raise ValueError(f"shards must be a positive int, got {shards!r}")
        shards = int(min(shards, max(n, 1)))
        self.client, self.kind, self.options, self.path = client, kind, dict(options), path
        self.dtype = np.dtype(dtype)
        self._n = int(n)
        self._starts = np.array([n * i // shards for i in range(shards)], dtype=np.int64)
        self._ends = np.append(self._starts[1:], n).astype(np.int64)

    def _submit(self, i):
        """Start building shard i on some worker; return the future of its actor."""
        start, stop = int(self._starts[i]), int(self._ends[i])
        keys = values = None
        if self.path is None:
            keys = self._keys[start:stop]
            values = None if self._values is None else self._values[start:stop]
        return self.client.submit(_Shard, keys, values, self.path, start, stop, self.dtype.str, self.kind,
                                  self.options, actor=True, pure=False)

    def _place(self, shards) -> None:
        """Build ``shards`` (indices) on the workers and note the worker each one lives on."""
        futures = [self._submit(i) for i in shards]
        for f in futures:
            f.result()  # a build's exception, raised here
        where = self.client.who_has(futures)
        for i, f in zip(shards, futures):
            self._futures[i], self._workers[i] = f, where[f.key][0]

    def _launch(self, keys):
        """Build every shard, and the router: an exact index over the shards' last keys, read
        from ``keys`` (the sorted keys, or their mapped file; empty shards have none)."""
        from . import RMI

        self._owners = np.flatnonzero(self._ends > self._starts)
        last = np.array(keys[self._ends[self._owners] - 1] if len(self._owners) else [], dtype=self.dtype)
        self._futures, self._workers = [None] * self.shards, [None] * self.shards
        self._place(range(self.shards))
        self._router = RMI(last, assume_sorted=True)

    @property
    def shards(self) -> int:
        """Number of shards."""
        return len(self._starts)

    def __len__(self) -> int:
        return self._n

    def __repr__(self) -> str:
        return f"ShardedIndex(n={self._n}, dtype={self.dtype}, shards={self.shards}, kind={self.kind!r})"

    # --- calls to the shards -----------------------------------------------------------------

    def _calls(self, i, method, args) -> list:
        """The calls (coroutines) of shard i's task; a query array of more than CHUNK queries
        goes in chunks, all in flight at once so that sending one overlaps work on another."""
        if self._futures[i].status != "finished":  # its worker is known to be gone
            raise ConnectionError(f"the worker of shard {i} is gone ({self._futures[i].status})")
        pieces = [args]
        if method == "call" and len(args[1]) > CHUNK:
            name, queries, *rest = args
            pieces = [(name, queries[c:c + CHUNK], *rest) for c in range(0, len(queries), CHUNK)]
        rpc = self.client.rpc(self._workers[i])
        return [_execute(rpc, self._futures[i].key, method, piece) for piece in pieces]

    async def _run(self, tasks: dict) -> dict:
        """``{shard: result, or the exception its calls raised}``, every call awaited at once."""
        calls, results = {}, {}
        for i, (method, *args) in tasks.items():
            try:
                calls[i] = self._calls(i, method, args)
            except Exception as e:  # noqa: BLE001
                results[i] = e
        done = iter(await asyncio.gather(*[c for shard in calls.values() for c in shard], return_exceptions=True))
        for i, shard in calls.items():
            parts = [next(done) for _ in shard]
            failure = next((p for p in parts if isinstance(p, BaseException)), None)
            results[i] = failure if failure is not None else _joined(parts)
        return results

    def _gather(self, tasks: dict) -> dict:
        """``{shard: result}`` of ``tasks`` (``{shard: (actor method, *args)}``); shards whose
        call fails (a dead worker) are rebuilt and their calls retried once."""
        for attempt in (0, 1):
            results = self.client.sync(self._run, tasks)
            failed = [i for i, r in results.items() if isinstance(r, BaseException)]
            if not failed:
                return results
            for i in failed:
                if isinstance(results[i], (TypeError, ValueError)):  # the query's fault, not the worker's
                    raise results[i]
            failure = results[failed[0]]
            if attempt == 0:
                try:
                    self._place(failed)
                except Exception as e:  # noqa: BLE001
                    failure = e
                    break
        i = failed[0]
        raise ShardError(f"shard {i} (keys {self._starts[i]:,}..{self._ends[i]:,}) failed after a rebuild: "
                         f"{failure!r}") from failure

    def _positions(self, queries, mode: str) -> np.ndarray:
        arr = as_query_array(queries)
        flat = arr.ravel()
        out = np.full(flat.shape, self._n, dtype=np.int64)
        if self._n == 0 or flat.size == 0:
            return out.reshape(arr.shape)
        parts = self._split(flat, mode)
        results = self._gather({i: ("call", mode, flat[sel]) for i, sel in parts.items()})
        for i, sel in parts.items():
            if isinstance(sel, slice):
                np.add(results[i], self._starts[i], out=out[sel])
            else:
                out[sel] = results[i] + self._starts[i]
        return out.reshape(arr.shape)

    def _split(self, flat: np.ndarray, mode: str) -> dict:
        """``{shard: selection}`` of the queries each shard answers, routed for ``mode``
        (``"lower_bound"`` or ``"upper_bound"``); one slice when a single shard takes them all."""
        if self.shards == 1:
            return {0: slice(None)}  # one shard answers everything, n past its keys
        route = (self._router.lower_bound if mode == "lower_bound" else self._router.upper_bound)(flat)
        first, last = int(route.min()), int(route.max())  # a route of W: past every shard's keys
        if first == last:
            return {int(self._owners[first]): slice(None)} if first < len(self._owners) else {}
        parts = {}
        for r in range(first, min(last, len(self._owners) - 1) + 1):
            selection = np.flatnonzero(route == r)
            if len(selection):
                parts[int(self._owners[r])] = selection
        return parts

    def lower_bound(self, q):
        """Global position of the first key ``>= q`` for each query (an int for a scalar),
        as ``np.searchsorted(all_keys, q, "left")``."""
        out = self._positions(q, "lower_bound")
        return int(out) if out.ndim == 0 else out

    def upper_bound(self, q):
        """Global position past the last key ``<= q`` (``np.searchsorted(..., "right")``)."""
        out = self._positions(q, "upper_bound")
        return int(out) if out.ndim == 0 else out

    def get_batch(self, queries, default: Any = 0) -> tuple[np.ndarray, np.ndarray]:
        """``(values, found)``: each query's first matching entry's value (the global position
        when the index has no values), or ``default``."""
        arr = as_query_array(queries)
        flat = arr.ravel()
        values = np.full(flat.shape, default, dtype=np.int64 if self._values is None else self._values.dtype)
        found = np.zeros(flat.shape, dtype=bool)
        if self._n and flat.size:
            parts = self._split(flat, "lower_bound")
            results = self._gather({i: ("call", "get_batch", flat[sel], default) for i, sel in parts.items()})
            for i, sel in parts.items():
                got, hit = results[i]
                if self._values is None:
                    got = np.where(hit, got + self._starts[i], got)
                values[sel] = got
                found[sel] = hit
        return values.reshape(arr.shape), found.reshape(arr.shape)

    def contains(self, queries) -> np.ndarray:
        """Does each query equal some key exactly."""
        return self.get_batch(queries)[1]

    def __contains__(self, key) -> bool:
        return bool(self.contains([key])[0])

    def range(self, lo, hi) -> tuple[np.ndarray, np.ndarray]:
        """``(keys, values)`` of the entries with ``lo <= key < hi``, across shards, in order."""
        a = self.lower_bound(lo)
        b = max(a, self.lower_bound(hi))
        touched = [i for i in range(self.shards) if self._starts[i] < b and self._ends[i] > a]
        results = self._gather({i: ("range", lo, hi) for i in touched})
        keys = [results[i][0] for i in touched]
        values = [results[i][1] + (self._starts[i] if self._values is None else 0) for i in touched]
        empty_values = np.zeros(0, dtype=np.int64 if self._values is None else self._values.dtype)
        return (np.concatenate(keys) if keys else np.zeros(0, dtype=self.dtype),
                np.concatenate(values) if values else empty_values)

    def size_in_bytes(self) -> int:
        """Bytes of every shard's index structure, summed (``size_in_bytes()`` of each)."""
        results = self._gather({i: ("size",) for i in range(self.shards)})
        return int(sum(results.values()))


__all__ = ["ShardedIndex", "ShardError", "aligned", "random_access", "sosd_slice"]
