"""`DynamicRMI`: an updatable map over a static RMI, a sorted delta, tombstones and a write buffer.

The parts:

* **Main**: sorted unique keys and their values, indexed by a static :class:`~learnedidx.RMI`.
  Overwriting a main key writes its value in place.
* **Tombstones**: one bit per main position marks a deleted key, plus a count per 512 bits, so
  ``tombstones below p`` costs one load and at most 8 popcounts.
* **Delta**: the live keys that are not in main, sorted, in chunks of ``chunk_size`` keys (a
  two-level sorted list): a key inserts by shifting one chunk, a batch by merging into the
  chunks it touches. A *directory* (one entry per 64 main keys) tells which delta chunk lies
  between two main keys, so a batch lookup that misses main searches a handful of delta keys.
* **Write buffer**: ``idx[k] = v`` and ``del idx[k]`` only touch a Python dict and a set; the
  buffer applies as one sorted batch when ``buffer_size`` writes are pending, or before any read
  that needs ranks (``lower_bound``, ``range``, ``len``, ``keys``, batch reads). Point reads
  (``get``, ``[]``, ``in``) look at it first. So every read sees every earlier write, exactly.
* **Merge**: when the delta plus the tombstones pass ``merge_fraction`` of main, one Numba pass
  merges them into main from the back: in place when main's buffers have room (no fresh memory,
  whose page faults cost more than the merge itself here), else reading old main and writing new
  buffers with room to grow. Past ``parallel_threshold`` keys the pass runs as two independent
  halves on two threads: the delta is cut at main's middle key, and in place the few keys the
  lower half overwrites before the upper half reads them are copied aside first. A second pass
  refits every leaf of the RMI on its new keys (least squares, then exact error bounds with the
  inference expression; a leaf is fitted and checked in one visit, its keys still in cache; the
  leaves shared out between the threads), keeping the upper stages. The leaf of every old key
  comes from stored *runs* (routing is almost monotone), so only the delta keys are routed. A
  full retraining happens only when the refitted leaves lose more than ``retrain_bits`` of mean
  search precision (estimated on every 16th key), or main has doubled or halved since the
  last one.
* **Write batches** sort as packed uint64 words (integer keys: the key's offset in the batch's
  span, then its index in the batch, so repeats keep batch order and the last value wins), then
  find their keys in main without the RMI: the sorted batch walks the directory's samples
  (every 64th main key) to each key's block of 64 keys, interpolates between the block's two
  samples, and searches the 17 keys around that guess (three lines, requested 16 keys
  earlier; the whole block when the key lies outside them); one contiguous part of the batch
  per thread. The new keys then
  merge into the delta's chunks, the lower and the upper half of the chunks on two threads
  (each half taking the new chunks it may need from its own share of the free stack).

``rank(q) = main_rank(q) - tombstones_below(main_rank(q)) + delta_rank(q)``: a key in main is
never in the delta, dead or alive (writing a deleted main key clears its tombstone).

The arrays (the kernels work on them; each concept is one module, imports pointing one way:
``_layout`` <- ``_tombstones`` <- ``_delta`` <- ``_directory`` <- ``_reads``, and ``_batches``,
``_merge`` and ``_scalar`` on the first three):

**Main**: sorted unique keys ``mk`` and their values ``mv``, indexed by a static RMI
(:mod:`learnedidx._rmi_kernels`), plus the leaf *runs*: ``run_start[r] <= i < run_start[r + 1]``
means main key i is routed to leaf ``run_leaf[r]``. Sorted keys are routed to leaves in
nondecreasing order almost everywhere (inner models disagree near their borders, so a leaf may
own a few runs), so there are about as many runs as leaves; the runs let a merge refit every
leaf without routing every key again.

**Tombstones**: one bit per main position, ``tbits`` (uint64 words), and ``tcum[b]``, the number
of set bits in the 512-bit blocks before block b, so ``tombstones below p`` costs one load and at
most 8 popcounts.

**Delta**: the live keys that are not in main, sorted, in chunks of ``C`` slots (a two-level
sorted list, like sortedcontainers' ``SortedList``): chunk c holds ``dn[c]`` keys in
``dk[c, :dn[c]]`` and their values in ``dv``; ``order[o]`` is the chunk at order position o,
``dmax[o]`` its largest key and ``dcum[o]`` the number of delta keys before it. Unused chunks
sit on the ``free`` stack. ``st`` holds the counters (:data:`K_CHUNKS` ...). An *order slot*
``o * C + j`` names slot j of the chunk at order position o. The *directory* ``dirs[b]`` is the
order slot of the first delta key >= main key ``b * 64``: the delta keys between main keys
``p - 1`` and ``p`` lie between two directory entries, a few keys to search.

A key in main is never in the delta, dead (tombstoned) or alive: writing a dead main key clears
its tombstone. So ``rank(q) = main_rank(q) - tombstones_below(main_rank(q)) + delta_rank(q)``.

Values are passed as unsigned-integer views of their bytes (``values.view(np.uint64)`` for
8-byte values): kernels only move them, so one compilation serves every 8-byte value dtype.
Scalar entry points (:func:`rank_at`, :func:`find_at`) take one int64 *header* array by address
(slots ``H_*``) that holds the addresses and sizes of the others (see
:mod:`learnedidx._pointers`).
"""

from .config import DynamicConfig
from .index import DynamicRMI, _unpickle  # noqa: F401  (_unpickle: pickles made before the package)

__all__ = ["DynamicRMI", "DynamicConfig"]
