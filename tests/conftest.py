"""Test-session set-up.

Under pytest-xdist (``-n auto`` in pyproject's addopts) each worker process keeps its own
Numba cache: with one shared ``__pycache__``, a worker failed to type a call to a kernel that
the other worker was compiling and caching at the same moment. Set before Numba is imported;
an explicit ``NUMBA_CACHE_DIR`` wins.
"""

import os
import tempfile

_worker = os.environ.get("PYTEST_XDIST_WORKER")
if _worker and "NUMBA_CACHE_DIR" not in os.environ:
    os.environ["NUMBA_CACHE_DIR"] = os.path.join(tempfile.gettempdir(), f"learnedidx-numba-cache-{_worker}")
