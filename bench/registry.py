"""What the benchmark can build: every index variant, each with a name, a family and limits."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

from datasets.cli_args import unknown
from learnedidx import PGM, RMI, RadixSpline, tune

#: Object-based structures build one Python object per key: above this many keys they take
#: minutes and gigabytes, so the bench skips them with a note.
OBJECT_MAX_KEYS = 10_000_000


@dataclass(frozen=True)
class IndexSpec:
    """One row of the benchmark: how to build an index and when not to."""

    name: str
    family: str  #: "learned", "classic" (arrays, Numba) or "python" (what Python users have)
    factory: Callable
    variant: str = ""
    max_keys: int | None = None  #: skip with a note above this many keys
    default: bool = True  #: part of the run when no --indexes are named


def _copy_free(cls, **options):
    return lambda keys: cls(keys, copy=False, **options)


RMI_VARIANTS = [
    IndexSpec("RMI", "learned", _copy_free(RMI), "default: linear,linear,linear; 128 keys/leaf"),
    IndexSpec("RMI-compact", "learned", _copy_free(RMI, keys_per_leaf=2048), "linear x3; 2048 keys/leaf"),
    IndexSpec("RMI-fast", "learned", _copy_free(RMI, keys_per_leaf=32), "linear x3; 32 keys/leaf"),
    IndexSpec("RMI-2stage", "learned", _copy_free(RMI, stages=("linear", "linear")), "linear,linear; 128 keys/leaf"),
    IndexSpec("RMI-cubic", "learned", _copy_free(RMI, stages=("cubic", "linear", "linear")), "cubic,linear,linear",
              default=False),
    IndexSpec("RMI-radix", "learned", _copy_free(RMI, stages=("radix", "linear")), "radix,linear; 128 keys/leaf"),
]


#: The error-bounded learned indexes and the tuner's choice among every learned kind.
BOUNDED_VARIANTS = [
    IndexSpec("PGM", "learned", _copy_free(PGM), "epsilon 64, recursive 4"),
    IndexSpec("PGM-16", "learned", _copy_free(PGM, epsilon=16), "epsilon 16, recursive 4"),
    IndexSpec("RadixSpline", "learned", _copy_free(RadixSpline), "default epsilon and radix bits"),
    IndexSpec("auto", "learned", lambda keys: tune(keys, copy=False),
              "learnedidx.tune: fastest learned index within 5% of the key bytes"),
]


def baseline_specs() -> tuple[list[IndexSpec], list[str]]:
    """Specs of the baselines whose packages import, and a note for each one that does not."""
    notes = []
    try:
        import baselines
    except ImportError as exc:  # pragma: no cover - the repo always has baselines/
        return [], [f"baselines not importable: {exc}"]
    families = {
        "BTree": ("classic", None, "cache-optimized B+tree (Numba)"),
        "BinarySearch": ("classic", None, "branch-free binary search (Numba)"),
        "NumpySearchsorted": ("classic", None, "np.searchsorted"),
        "PGMIndex": ("python", None, "PyGM (pygm.SortedList)"),
        "SortedDictIndex": ("python", OBJECT_MAX_KEYS, "sortedcontainers"),
        "BTreesIndex": ("python", OBJECT_MAX_KEYS, "BTrees QQBTree/LLBTree"),
    }
    available = getattr(baselines, "available_indexes", dict)()
    specs = []
    for name, (family, max_keys, variant) in families.items():
        cls = available.get(name)
        if cls is None:
            notes.append(f"{name} skipped: its package is not installed")
            continue
        specs.append(IndexSpec(name, family, _copy_free(cls), variant, max_keys))
    return specs, notes


def all_specs() -> tuple[list[IndexSpec], list[str]]:
    """Every index the bench knows, RMI variants first, and notes on the missing ones."""
    specs, notes = baseline_specs()
    return RMI_VARIANTS + BOUNDED_VARIANTS + specs, notes


def select(names: list[str] | None) -> tuple[list[IndexSpec], list[str]]:
    """The specs named, ignoring case (all defaults when None).

    Raises ValueError for an unknown name, naming the closest known ones.
    """
    specs, notes = all_specs()
    if not names:
        return [s for s in specs if s.default], notes
    by_name = {s.name.lower(): s for s in specs}
    known = [s.name for s in specs]
    chosen = []
    for name in names:
        spec = by_name.get(name.lower())
        if spec is None:
            raise ValueError(unknown("index", name, known))
        chosen.append(spec)
    return chosen, notes
