"""Key sets for learned-index benchmarks and tests: SOSD files, generators, real data, workloads.

Repository tooling (importable from the repository root), not part of the
learnedidx wheel. Submodules:

* ``sosd``: SOSD binary format, validated memory-mapped reads, atomic writes;
* ``generators``: seeded synthetic distributions (``GENERATORS``, ``generate``;
  ``ADVERSARIAL`` names the shapes built to hurt a learned index);
* ``real``: the shared real key sets, SOSD's published data sets, package recipes;
* ``s2``: vectorised S2 cell ids of latitude/longitude points;
* ``workloads``: SOSD-style lookup workloads with expected answers;
* ``stats`` / ``plot``: summary and difficulty figures, CDF plots (matplotlib, lazily);
* ``catalog``: ``resolve``/``load``/``make`` for any name or path;
* ``cache``: the cache directory (``$LEARNEDIDX_DATA_DIR``) and JSON sidecars.

Command line: ``python -m datasets --help``.
"""

from .cache import data_dir, read_sidecar
from .catalog import DEFAULT_N, load, make, resolve
from .generators import ADVERSARIAL, GENERATORS, UNIQUE_GENERATORS, generate
from .plot import plot_cdf
from .real import (
    RECIPES,
    SOSD_DATASETS,
    build_recipe,
    find_sosd,
    load_real,
    real_dataset_path,
    real_datasets,
    shared_datasets_dir,
)
from .sosd import (
    SUPPORTED_DTYPES,
    format_size,
    parse_size,
    parse_sosd_name,
    read_sosd,
    read_sosd_header,
    sosd_name,
    write_sosd,
)
from .stats import describe, line_fit_error
from .workloads import load_workload, make_workload, save_workload, verify_workload, workload_name

__all__ = [
    "ADVERSARIAL",
    "DEFAULT_N",
    "GENERATORS",
    "RECIPES",
    "SOSD_DATASETS",
    "SUPPORTED_DTYPES",
    "UNIQUE_GENERATORS",
    "build_recipe",
    "data_dir",
    "describe",
    "find_sosd",
    "format_size",
    "generate",
    "line_fit_error",
    "load",
    "load_real",
    "load_workload",
    "make",
    "make_workload",
    "parse_size",
    "parse_sosd_name",
    "plot_cdf",
    "read_sidecar",
    "read_sosd",
    "read_sosd_header",
    "real_dataset_path",
    "real_datasets",
    "resolve",
    "save_workload",
    "shared_datasets_dir",
    "sosd_name",
    "verify_workload",
    "workload_name",
    "write_sosd",
]
