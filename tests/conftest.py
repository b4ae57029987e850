"""Test-session set-up.

Under pytest-xdist (``-n 2`` in pyproject's addopts) each worker process keeps its own Numba
cache: two processes compiling the same kernel into one ``__pycache__`` raced (a worker
loaded another's half-written index and failed to type a call). Set before Numba is imported;
an explicit ``NUMBA_CACHE_DIR`` wins.
"""

import os
import tempfile

_worker = os.environ.get("PYTEST_XDIST_WORKER")
if _worker and "NUMBA_CACHE_DIR" not in os.environ:
    os.environ["NUMBA_CACHE_DIR"] = os.path.join(tempfile.gettempdir(), f"learnedidx-numba-cache-{_worker}")
