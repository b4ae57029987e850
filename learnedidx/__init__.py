"""learnedidx: learned index structures for sorted numeric keys, with Numba kernels.

>>> import numpy as np, learnedidx
>>> idx = learnedidx.RMI(np.array([3, 1, 2], dtype=np.int64), values=np.array([30, 10, 20]))
>>> idx[2], idx.lower_bound(2), 5 in idx
(np.int64(20), 1, False)
"""

from ._compile_notice import CompileWarning
from ._modes import FIND, LEFT, RIGHT
from .arrays import Delta, PGMArrays, RadixSplineArrays, RMIArrays, Tombstones
from .base import IndexBase, KeyValueIndex
from .models import MODELS
from .rmi import RMI, RMIConfig
from .pgm import PGM, PGMConfig
from .radix_spline import RadixSpline, RadixSplineConfig
from .dynamic import DynamicConfig, DynamicRMI
from .persist import IndexFileError, load
from .tuning import TuneReport, tune
from .interface import SortedIndex, UpdatableIndex
from .warmup import warmup
# matplotlib is imported only when a picture is drawn: this import costs nothing more.
from .explain import explain

__all__ = [
    "IndexBase",
    "KeyValueIndex",
    "RMI",
    "RMIConfig",
    "RMIArrays",
    "PGMArrays",
    "RadixSplineArrays",
    "Delta",
    "Tombstones",
    "PGM",
    "PGMConfig",
    "RadixSpline",
    "RadixSplineConfig",
    "DynamicRMI",
    "DynamicConfig",
    "MODELS",
    "LEFT",
    "RIGHT",
    "FIND",
    "load",
    "IndexFileError",
    "tune",
    "TuneReport",
    "SortedIndex",
    "UpdatableIndex",
    "CompileWarning",
    "warmup",
    "explain",
]
__version__ = "0.1.0"
