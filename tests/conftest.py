"""Test-session set-up.

Under pytest-xdist (``-n auto`` in pyproject's addopts) each worker process keeps its own
Numba cache: with one shared ``__pycache__``, a worker failed to type a call to a kernel that
the other worker was compiling and caching at the same moment. Set before Numba is imported;
an explicit ``NUMBA_CACHE_DIR`` wins.

Tests go to workers a file at a time (``--dist loadgroup``, one group per file), except that
the files building RMIs over every key dtype share one group: on a cold cache each worker would
otherwise compile all RMI kernels for every dtype (measured: ``test_persist.py`` took 443 s on
the worker that had not run ``test_rmi.py``, against seconds after it).
"""

import os
import tempfile

import pytest

_SHARED_GROUPS = {"test_rmi.py": "rmi", "test_persist.py": "rmi", "test_rmi_kernels.py": "rmi",
                  "test_sorted.py": "rmi"}

_worker = os.environ.get("PYTEST_XDIST_WORKER")
if _worker and "NUMBA_CACHE_DIR" not in os.environ:
    os.environ["NUMBA_CACHE_DIR"] = os.path.join(tempfile.gettempdir(), f"learnedidx-numba-cache-{_worker}")


def pytest_collection_modifyitems(items):
    for item in items:
        name = item.path.name
        item.add_marker(pytest.mark.xdist_group(_SHARED_GROUPS.get(name, name)))
