"""`tune`: build the learned indexes worth trying over a key set and keep the fastest that fits.

In the spirit of CDFShop and the RMI optimizer, but measured rather than estimated: every
candidate is built over the real keys and timed on sample lookups with its real kernels.
"""

from __future__ import annotations

import importlib.util
import time
from dataclasses import dataclass, field
from typing import Literal

import numpy as np
from numpy.typing import ArrayLike

from ._coerce import prepare_keys_values
from .base import KeyValueIndex
from .pgm import PGM
from .rmi import RMI, RMIConfig

#: Share of the key bytes an index may take when ``max_bytes`` is not given, and the least
#: budget then (small key sets still get an index).
DEFAULT_BUDGET = 0.05
MIN_DEFAULT_BUDGET = 4096
#: Candidates within this factor of the fastest time count as tied; the smallest of them wins
#: when it takes at most ``TIE_BYTES`` of the fastest's bytes (else the fastest does), so that
#: timing noise does not flip the choice between near-equal indexes for a few bytes.
TIE_BAND = 1.10
TIE_BYTES = 0.5
#: Sample lookups timed per candidate and mode (fewer when the keys are fewer).
SAMPLE_LOOKUPS = 100_000
#: The fastest candidates of the first pass, timed again in alternating rounds (a candidate
#: timed alone during a burst of machine load otherwise loses or wins by that burst).
FINALISTS = 6
FINAL_ROUNDS = 5


@dataclass
class Candidate:
    """One row of a :class:`TuneReport`: a candidate index and what it measured."""

    kind: str
    options: dict
    bytes: int = 0
    avg_log2_error: float = float("nan")
    batch_ns: float = float("nan")
    loop_ns: float = float("nan")
    build_s: float = float("nan")
    note: str = ""

    @property
    def label(self) -> str:
        """The candidate as a call, e.g. ``PGM(epsilon=32)``."""
        return f"{self.kind}({', '.join(f'{k}={v}' for k, v in self.options.items())})"


@dataclass
class TuneReport:
    """What :func:`tune` tried: every candidate, the budget, the winner and the time taken."""

    candidates: list = field(default_factory=list)
    max_bytes: int = 0
    objective: str = "batch"
    seconds: float = 0.0
    winner: int = -1

    @property
    def chosen(self) -> Candidate:
        """The winning candidate."""
        return self.candidates[self.winner]

    def __str__(self) -> str:
        head = (f"{'kind':12} {'options':34} {'bytes':>11} {'avg log2':>8} {'batch ns':>9} {'loop ns':>8} "
                f"{'build s':>7}  note")
        lines = [f"budget {self.max_bytes:,} bytes, objective {self.objective}, {self.seconds:.1f} s", head]
        for i, c in enumerate(self.candidates):
            options = ", ".join(f"{k}={v}" for k, v in c.options.items()) or "defaults"
            mark = "chosen" if i == self.winner else c.note
            lines.append(f"{c.kind:12} {options:34.34} {c.bytes:>11,} {c.avg_log2_error:>8.2f} "
                         f"{c.batch_ns:>9.1f} {c.loop_ns:>8.1f} {c.build_s:>7.2f}  {mark}")
        return "\n".join(lines)


def candidates(n: int) -> list:
    """``(class, options)`` pairs tried for n keys, each family from its largest error bound
    (smallest index) down: a family stops at its first candidate over the budget. RMIs with
    an ``"mlp"`` root are among them where torch is installed."""
    from .radix_spline import RadixSpline

    out = [(PGM, dict(epsilon=e)) for e in (128, 64, 32, 16, 8)]
    out += [(RadixSpline, dict(epsilon=e)) for e in (64, 32, 16, 8)]
    out += [(RMI, dict(keys_per_leaf=k)) for k in (2048, 512, 128)]
    out += [(RMI, dict(keys_per_leaf=k, max_window=None)) for k in (512, 128)]  # lines only, no hybrid leaves
    out += [(RMI, dict(stages=("cubic", "linear", "linear"), keys_per_leaf=k)) for k in (512, 128)]
    if _have_torch():  # a neural root trains with torch; without it the others still compete
        out += [(RMI, dict(stages=("mlp", "linear", "linear"), keys_per_leaf=k)) for k in (512, 128)]
    return out


def families() -> dict:
    """The static learned index classes by name, ``{"RMI": RMI, "PGM": PGM, "RadixSpline":
    RadixSpline}``: the families :func:`tune` chooses among, and what a ``kind`` or ``--index``
    name stands for."""
    from .radix_spline import RadixSpline

    return {"RMI": RMI, "PGM": PGM, "RadixSpline": RadixSpline}


def _have_torch() -> bool:
    return importlib.util.find_spec("torch") is not None


def tune(keys: ArrayLike, values: ArrayLike | None = None, *, max_bytes: int | None = None, seed: int | None = 0,
         objective: Literal["batch", "loop"] = "batch", time_budget: float = 30.0, assume_sorted: bool = False,
         copy: bool = True) -> KeyValueIndex:
    """The fastest learned index over ``keys`` whose structure takes at most ``max_bytes``.

    Builds each candidate of :func:`candidates` (PGM epsilons, RadixSpline epsilons, RMI stage
    models, leaf sizes and hybrid leaves or none) over the keys, times ``SAMPLE_LOOKUPS`` random present keys
    (drawn with ``seed``) through its batch kernel and its one-at-a-time loop, median of three
    runs each; then times the ``FINALISTS`` fastest under ``objective`` (``"batch"`` or
    ``"loop"``) again in ``FINAL_ROUNDS`` alternating rounds and returns the fastest by their
    medians, or the smallest candidate within ``TIE_BAND`` of it if that takes at most
    ``TIE_BYTES`` of its bytes. The returned index carries the whole comparison as
    ``tune_report`` (a :class:`TuneReport`; ``print`` it).

    The same keys and seed give the same candidates, sample and structures; the winner follows
    the timings, so it can differ between runs only among candidates that time within about
    ``TIE_BAND`` of each other. Compile time is kept out of the timings and out of
    ``time_budget``: every family's kernels are compiled (or loaded from Numba's cache) on a
    slice of the keys before the clock starts. Candidates stop once ``time_budget`` seconds
    have passed (the best so far wins). Complexity: a few builds and ``6 * SAMPLE_LOOKUPS``
    lookups per candidate.

    Args:
        keys, values, assume_sorted, copy: as for every index (:class:`KeyValueIndex`); the
            keys are validated and sorted once and shared by every candidate.
        max_bytes: the structure's budget (``size_in_bytes()``); default 5% of the key bytes,
            at least 4 KiB.
        seed: seed of the sample lookups.

    Raises:
        ValueError: ``objective`` is not ``"batch"`` or ``"loop"``, ``max_bytes`` or
            ``time_budget`` is negative, no candidate fits the budget, or invalid keys/values.
        TypeError: as for every index.
    """
    if objective not in ("batch", "loop"):
        raise ValueError(f"objective must be 'batch' or 'loop', got {objective!r}")
    if time_budget is None or not time_budget >= 0:
        raise ValueError(f"time_budget must be a number of seconds >= 0, got {time_budget!r}")
    began = time.perf_counter()
    keys, values = prepare_keys_values(keys, values, assume_sorted=assume_sorted, copy=copy)
    n = len(keys)
    if max_bytes is None:
        max_bytes = max(MIN_DEFAULT_BUDGET, int(DEFAULT_BUDGET * keys.nbytes))
    if isinstance(max_bytes, bool) or not isinstance(max_bytes, (int, np.integer)) or max_bytes < 0:
        raise ValueError(f"max_bytes must be a whole number of bytes >= 0, got {max_bytes!r}")
    report = TuneReport(max_bytes=int(max_bytes), objective=objective)
    rng = np.random.default_rng(seed)
    sample = keys[rng.integers(0, n, min(SAMPLE_LOOKUPS, 10 * n))] if n else keys[:0]
    _compile(keys, values, sample)
    started = time.perf_counter()
    finalists = []  # (score, row, index): the FINALISTS fastest so far
    over_budget = set()
    for cls, options in candidates(n):
        row = Candidate(cls.name, dict(options))
        report.candidates.append(row)
        family = (cls, tuple(k for k in options if k != "epsilon" and k != "keys_per_leaf"),
                  options.get("stages"))
        if family in over_budget:
            row.note = "skipped: a larger sibling was over budget"
            continue
        if time.perf_counter() - started > time_budget and finalists:
            row.note = "skipped: time budget"
            continue
        if cls is RMI and _rmi_bytes(n, options) > max_bytes:
            row.note = "over budget"
            over_budget.add(family)
            continue
        start = time.perf_counter()
        index = cls(keys, values, assume_sorted=True, copy=False, **options)
        row.build_s = time.perf_counter() - start
        row.bytes = index.size_in_bytes()
        row.avg_log2_error = float(index.avg_log2_error)
        if row.bytes > max_bytes:
            row.note = "over budget"
            over_budget.add(family)
            continue
        row.batch_ns = _time(index.lower_bound, sample)
        row.loop_ns = _time(index.lower_bound_loop, sample)
        finalists.append((_score(row, objective), len(report.candidates) - 1, index))
        finalists.sort(key=lambda f: f[0])
        del finalists[FINALISTS:]
    if not finalists:
        raise ValueError(f"no learned index fits in max_bytes={max_bytes:,} bytes "
                         f"({n:,} keys); the smallest candidates need {_smallest(report):,}")
    best = _final_round(report, finalists, sample)
    best = _smallest_within_band(report, best, keys, values)
    report.seconds = time.perf_counter() - began
    best.tune_report = report
    return best


def _compile(keys: np.ndarray, values, sample: np.ndarray) -> None:
    """Compile (or load from Numba's cache) what every candidate family runs for these keys:
    training on a slice of them, the batch kernels on the whole sample (serial or parallel as
    its size asks), the loop kernel on a few lookups."""
    from .radix_spline import RadixSpline

    m = min(len(keys), 4096)
    for cls in (PGM, RadixSpline, RMI):
        index = cls(keys[:m], None if values is None else values[:m], assume_sorted=True, copy=False)
        index.lower_bound(sample)
        index.lower_bound_loop(sample[:64])


def _score(row: Candidate, objective: str) -> float:
    return row.batch_ns if objective == "batch" else row.loop_ns


def _final_round(report: TuneReport, finalists: list, sample: np.ndarray):
    """Time the finalists again under the objective, one after another in each of
    ``FINAL_ROUNDS`` rounds, keep each one's median in its row, and return the fastest
    (``report.winner`` set to its row)."""
    times = {row: [] for _, row, _ in finalists}
    for _ in range(FINAL_ROUNDS):
        for _, row, index in finalists:
            search = index.lower_bound if report.objective == "batch" else index.lower_bound_loop
            times[row].append(_time(search, sample))
    for _, row, _ in finalists:
        median = float(np.median(times[row]))
        if report.objective == "batch":
            report.candidates[row].batch_ns = median
        else:
            report.candidates[row].loop_ns = median
    _, report.winner, best = min(finalists, key=lambda f: _score(report.candidates[f[1]], report.objective))
    return best


def _smallest_within_band(report: TuneReport, best, keys, values):
    """The smallest candidate within ``TIE_BAND`` of the fastest if it takes at most
    ``TIE_BYTES`` of the fastest's bytes, rebuilt (only the fastest index is kept while
    timing); else the fastest."""
    scores = [(c.batch_ns if report.objective == "batch" else c.loop_ns) for c in report.candidates]
    fastest = scores[report.winner]
    tied = [i for i, s in enumerate(scores) if s <= fastest * TIE_BAND]
    pick = min(tied, key=lambda i: (report.candidates[i].bytes, scores[i]))
    if pick == report.winner or report.candidates[pick].bytes > TIE_BYTES * report.candidates[report.winner].bytes:
        return best
    report.winner = pick
    row = report.candidates[pick]
    return families()[row.kind](keys, values, assume_sorted=True, copy=False, **row.options)


def _rmi_bytes(n: int, options: dict) -> int:
    """Bytes an RMI of these options takes over n keys before any hybrid leaf's samples, known
    before building it (a lower bound of its size)."""
    from .models import stage_model

    config = RMIConfig(**options)
    counts = config.model_counts(n)
    slots = sum(m * stage_model(name, "root" if i == 0 else "leaves").record_width(config)
                for i, (m, name) in enumerate(zip(counts, config.stages)))
    return 8 * slots + 8 * (3 + 4 * len(counts))


def _smallest(report: TuneReport) -> int:
    sizes = [c.bytes for c in report.candidates if c.bytes]
    return min(sizes) if sizes else 0


def _time(search, sample: np.ndarray) -> float:
    """Median ns a lookup of three timed runs, after one untimed run on a few lookups."""
    if len(sample) == 0:
        return 0.0
    search(sample[:64])
    runs = []
    for _ in range(3):
        start = time.perf_counter_ns()
        search(sample)
        runs.append(time.perf_counter_ns() - start)
    return float(np.median(runs)) / len(sample)


__all__ = ["tune", "TuneReport", "Candidate", "candidates", "DEFAULT_BUDGET", "TIE_BAND", "TIE_BYTES",
           "SAMPLE_LOOKUPS"]
