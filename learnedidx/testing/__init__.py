"""Property-based testing helpers for sorted-key indexes (needs the ``testing`` extra: hypothesis).

- :func:`check_conformance` runs any ``KeyValueIndex`` factory against an exact reference on
  key sets drawn by Hypothesis; :func:`check_index` does it for one key set.
- :func:`key_arrays`, :func:`query_arrays` and :func:`interesting_queries` are the strategies
  and query sets behind it, for your own tests.
- :class:`UpdatableIndexMachine` (in :mod:`learnedidx.testing.stateful`) is a Hypothesis state
  machine checking any updatable index against ``SortedDict``; subclass it per index.
"""

from .conformance import check_conformance, check_index
from .stateful import UpdatableIndexMachine
from .strategies import ALL_KEY_DTYPES, SHAPES, interesting_queries, key_arrays, query_arrays

__all__ = [
    "check_conformance",
    "check_index",
    "UpdatableIndexMachine",
    "key_arrays",
    "query_arrays",
    "interesting_queries",
    "ALL_KEY_DTYPES",
    "SHAPES",
]
