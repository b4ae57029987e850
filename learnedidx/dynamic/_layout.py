"""Array layouts shared by the DynamicRMI kernels: the slots of the delta's counters and of the
scalar entry points' header, the tombstone blocks, the directory's stride, the jit options."""

from __future__ import annotations

#: Options of the kernels that allocate, run in parallel or call one that does; the others are
#: lean (``learnedidx._intrinsics.LEAN_JIT``). A kernel without ``_nrt`` set inherits its
#: caller's setting: called from a lean kernel, its allocation fails to compile.
JIT = dict(nogil=True, cache=True)

# Slots of the delta counter array ``st``.
K_CHUNKS = 0  #: chunks in use (order positions 0..K_CHUNKS-1)
D_KEYS = 1  #: keys in the delta
N_FREE = 2  #: chunk ids on the free stack
DIRTY = 3  #: dcum is valid up to this order position (inclusive); fix with ``_delta.d_fix``
ST_SIZE = 4

BLOCK_SHIFT = 9  #: tombstone counts per 512-bit block (8 words)
WORDS_PER_BLOCK = 8
DIR_SHIFT = 6  #: one directory entry per 64 main positions

FIT_STRIDE = 4  #: a merge fits each leaf's line on every 4th key of its runs (measured: same windows)
#: a merge's mean log2 error samples every 16th key of a run (10M lognormal keys: 1.606
#: against 1.594 at every 4th; the refit 25-35% faster)
LOG2_STRIDE = 16

# Slots of the header array that the scalar entry points read (addresses and sizes).
H_MK, H_N, H_META, H_PARAMS, H_TBITS, H_TCUM = 0, 1, 2, 3, 4, 5
H_ORDER, H_DMAX, H_DK, H_DN, H_DCUM, H_ST, H_C, H_CAP = 6, 7, 8, 9, 10, 11, 12, 13
H_SIZE = 14
