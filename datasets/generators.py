"""Synthetic key generators: ``GENERATORS[name](n, seed) -> sorted uint64 keys``.

Every generator is a pure function of ``(n, seed)``: it draws only from
``np.random.default_rng(seed)`` (never global random state), so the same seed
gives the same keys on every machine with the same numpy version. (numpy does
not promise identical Generator streams across its own versions; transcendental
functions could in principle differ by one ulp across platforms, which might
move a rare key by one.)

All return exactly ``n`` sorted uint64 keys. All except ``zipf`` return unique
keys: draws are sorted, duplicates dropped, and the shortfall topped up with
further draws from the same distribution merged in (O(n) per round, rarely more
than a couple of rounds). Cost is dominated by drawing and by at most one sort
of n keys; ``uniform_dense``, ``zipf`` and ``clustered`` need no sort of n keys.

=============== ==============================================================
name            keys (u: uniform, z: standard normal, e: standard exponential)
=============== ==============================================================
uniform_dense   ``offset + 0..n-1``, offset drawn uniformly from [0, 2**32)
uniform_sparse  uniform over the whole uint64 range [0, 2**64)
normal          ``2**63 + floor(2**50 * z)``
lognormal       ``floor(1e9 * exp(2 * z))``: lognormal mu=0, sigma=2 scaled by
                1e9 (the "learned index" paper's setting; SOSD's own files use
                quantiles min-max scaled to [0, 2**63) instead)
exponential     ``floor(2**50 * e)``
zipf            with duplicates: n draws from ceil(n/16) distinct uniform
                random keys whose popularity follows a power law with exponent
                1.3 (the most popular key gets about 19% of all draws)
clustered       dense runs (about 1000 keys each; each run's mean in-run gap is
                lognormal with median 4) separated by gaps of about 2**63/runs:
                a step-shaped CDF like map cell ids
piecewise       up to 32 key-range slices, each linear (easy), lognormal or
                clustered (hard)
=============== ==============================================================
"""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np

_U64_MAX_FLOAT = float(2**64 - 2**11)  # largest float64 below 2**64
_ZIPF_EXPONENT = 1.3
_ZIPF_DRAWS_PER_KEY = 16
_RUN_MEAN_KEYS = 1_000
_PIECEWISE_SLICES = 32
_MAX_TOPUP_ROUNDS = 64

Draw = Callable[[np.random.Generator, int], np.ndarray]


def _start(n: int, seed: int) -> np.random.Generator:
    """Check n and make the generator's random stream."""
    if isinstance(n, bool) or not isinstance(n, (int, np.integer)):
        raise ValueError(f"n: expected an integer key count, got {n!r}")
    if n < 0:
        raise ValueError(f"n: the key count must be >= 0, got {n}")
    return np.random.default_rng(seed)


def _first_of_runs(keys: np.ndarray) -> np.ndarray:
    """Mask of the first element of each run of equal values in a sorted array (O(n))."""
    mask = np.empty(keys.size, dtype=bool)
    mask[:1] = True
    np.not_equal(keys[1:], keys[:-1], out=mask[1:])
    return mask


def _drop_sorted_duplicates(keys: np.ndarray) -> np.ndarray:
    """Unique keys of a sorted array, without copying when there are none (O(n)).

    (Sort-based on purpose: np.unique on uint64 is hash-based and far slower in numpy 2.4.)
    """
    mask = _first_of_runs(keys)
    return keys if mask.all() else keys[mask]


def _sorted_unique(draw: Draw, rng: np.random.Generator, n: int) -> np.ndarray:
    """n sorted unique keys from ``draw``: one sort of n keys, then one O(n) top-up merge.

    The shortfall m left by duplicates is refilled from a pool of fresh distinct
    draws that clash with no key (over-drawn by 25% so one round usually
    suffices); a random m of the pool are merged in.
    Raises RuntimeError if the distribution cannot supply n distinct keys.
    """
    keys = draw(rng, n)
    keys.sort()
    keys = _drop_sorted_duplicates(keys)
    missing = n - keys.size
    if missing == 0:
        return keys
    pool = np.empty(0, dtype=keys.dtype)
    pool_at = np.empty(0, dtype=np.intp)  # insertion positions of pool values in keys
    for _ in range(_MAX_TOPUP_ROUNDS):
        want = missing - pool.size
        if want <= 0:
            break
        fresh = draw(rng, want + want // 4 + 16)
        fresh.sort()
        fresh = _drop_sorted_duplicates(fresh)
        at = np.searchsorted(keys, fresh)
        clash = at < keys.size
        clash[clash] = keys[at[clash]] == fresh[clash]
        pool = np.concatenate((pool, fresh[~clash]))
        pool_at = np.concatenate((pool_at, at[~clash]))
        order = np.argsort(pool, kind="stable")
        pool, pool_at = pool[order], pool_at[order]
        fresh_mask = _first_of_runs(pool)
        pool, pool_at = pool[fresh_mask], pool_at[fresh_mask]
    if pool.size < missing:
        raise RuntimeError(f"could not draw {n} distinct keys: the distribution is too narrow for that many")
    if pool.size > missing:
        pick = np.sort(rng.choice(pool.size, size=missing, replace=False))
        pool, pool_at = pool[pick], pool_at[pick]
    return np.insert(keys, pool_at, pool)


def _uint64_from_floats(values: np.ndarray) -> np.ndarray:
    """floor() of non-negative floats as uint64, saturating at the top of the range (in place where possible)."""
    np.minimum(values, _U64_MAX_FLOAT, out=values)
    return values.astype(np.uint64)  # truncation == floor for values >= 0


def uniform_dense(n: int, seed: int = 42) -> np.ndarray:
    """Consecutive integers offset..offset+n-1, offset uniform in [0, 2**32) (O(n)).

    Raises ValueError for n < 0.
    """
    rng = _start(n, seed)
    offset = int(rng.integers(0, 2**32))
    return np.arange(offset, offset + n, dtype=np.uint64)


def _uniform_draw(rng: np.random.Generator, k: int) -> np.ndarray:
    return rng.integers(0, 2**64 - 1, size=k, dtype=np.uint64, endpoint=True)


def uniform_sparse(n: int, seed: int = 42) -> np.ndarray:
    """Unique keys uniform over the whole uint64 range (O(n log n): one sort).

    Raises ValueError for n < 0.
    """
    rng = _start(n, seed)
    return _sorted_unique(_uniform_draw, rng, n)


def _normal_draw(rng: np.random.Generator, k: int) -> np.ndarray:
    scaled = rng.standard_normal(k)
    scaled *= 2.0**50
    np.floor(scaled, out=scaled)
    # |z| < 8192 always, so the int64 is exact; flipping the sign bit adds 2**63.
    return scaled.astype(np.int64).view(np.uint64) ^ np.uint64(1 << 63)


def normal(n: int, seed: int = 42) -> np.ndarray:
    """Unique keys 2**63 + floor(2**50 * z), z standard normal (O(n log n): one sort).

    Raises ValueError for n < 0.
    """
    rng = _start(n, seed)
    return _sorted_unique(_normal_draw, rng, n)


def _lognormal_draw(rng: np.random.Generator, k: int) -> np.ndarray:
    values = rng.lognormal(0.0, 2.0, k)
    values *= 1e9
    return _uint64_from_floats(values)


def lognormal(n: int, seed: int = 42) -> np.ndarray:
    """Unique keys floor(1e9 * X), X lognormal with mu=0, sigma=2 (O(n log n): one sort).

    About 2% of first draws collide at n=10**8; they are topped up (module doc).
    Raises ValueError for n < 0.
    """
    rng = _start(n, seed)
    return _sorted_unique(_lognormal_draw, rng, n)


def _exponential_draw(rng: np.random.Generator, k: int) -> np.ndarray:
    values = rng.standard_exponential(k)
    values *= 2.0**50
    return _uint64_from_floats(values)


def exponential(n: int, seed: int = 42) -> np.ndarray:
    """Unique keys floor(2**50 * e), e standard exponential (O(n log n): one sort).

    Raises ValueError for n < 0.
    """
    rng = _start(n, seed)
    return _sorted_unique(_exponential_draw, rng, n)


def zipf(n: int, seed: int = 42) -> np.ndarray:
    """Keys WITH MANY DUPLICATES: n draws from ceil(n/16) distinct keys with power-law popularity.

    The distinct keys are uniform over uint64. Popularity ranks are assigned to
    them by a random permutation and drawn from a discretised power law with
    exponent 1.3 truncated to the number of distinct keys (inverse-CDF sampling).
    Keys come out sorted by counting, not sorting: O(n + d log d) for d distinct keys.
    Raises ValueError for n < 0.
    """
    rng = _start(n, seed)
    if n == 0:
        return np.empty(0, dtype=np.uint64)
    distinct = -(-n // _ZIPF_DRAWS_PER_KEY)
    universe = _sorted_unique(_uniform_draw, rng, distinct)
    # Inverse CDF of density ~ x**-s on [1, distinct + 1); floor gives rank 1..distinct.
    a = 1.0 - _ZIPF_EXPONENT
    x = rng.random(n)
    x *= (distinct + 1.0) ** a - 1.0
    x += 1.0
    np.power(x, 1.0 / a, out=x)
    ranks = np.minimum(x.astype(np.int64) - 1, distinct - 1)
    del x
    counts = np.bincount(ranks, minlength=distinct)
    del ranks
    per_key = np.empty(distinct, dtype=np.int64)
    per_key[rng.permutation(distinct)] = counts  # which key gets which popularity rank
    return np.repeat(universe, per_key)


def _clustered_keys(rng: np.random.Generator, n: int, span: int) -> np.ndarray:
    """n unique sorted keys in [0, span): runs of ~1000 keys with per-run density, huge gaps between (O(n))."""
    starts_run = rng.random(n) < 1.0 / _RUN_MEAN_KEYS
    starts_run[0] = True
    run_of_key = np.cumsum(starts_run) - 1
    runs = int(run_of_key[-1]) + 1
    # Mean in-run gap per run: lognormal, median 4 -> runs from nearly contiguous to sparse.
    run_gap = rng.lognormal(math.log(4.0), 1.0, runs)
    step = rng.standard_exponential(n)
    step *= run_gap[run_of_key]
    del run_of_key
    steps = step.astype(np.uint64)
    del step
    steps += np.uint64(1)  # >= 1 keeps keys unique
    inner = int(steps.sum(dtype=np.uint64)) - int(steps[starts_run].sum(dtype=np.uint64))
    # Gaps before each run share what is left of the span; each is < 2 * room / runs.
    room = (span - 1 - inner) // 2
    if room < runs:
        raise RuntimeError(f"clustered: span {span} too small for {n} keys")
    steps[starts_run] = rng.integers(0, 2 * room // runs, size=runs, dtype=np.uint64)
    return np.cumsum(steps, dtype=np.uint64)


def clustered(n: int, seed: int = 42) -> np.ndarray:
    """Unique step-shaped keys: dense runs separated by gaps of about 2**63 / runs (O(n), no sort).

    Runs hold about 1000 keys (geometric); each run has its own density
    (mean in-run gap lognormal, median 4). Raises ValueError for n < 0.
    """
    rng = _start(n, seed)
    if n == 0:
        return np.empty(0, dtype=np.uint64)
    return _clustered_keys(rng, n, 2**63)


def _squeezed_lognormal_draw(width: int) -> Draw:
    """Draw function for lognormal (sigma 1.5) keys scaled into [0, width), clipped beyond 7 sigma."""
    scale = width / math.exp(1.5 * 7.0)
    top = np.nextafter(float(width), 0.0)  # the largest float below width: keys stay < width

    def draw(rng: np.random.Generator, k: int) -> np.ndarray:
        values = rng.lognormal(0.0, 1.5, k)
        values *= scale
        np.minimum(values, top, out=values)
        return values.astype(np.uint64)

    return draw


def piecewise(n: int, seed: int = 42) -> np.ndarray:
    """Unique keys from up to 32 disjoint key-range slices of mixed difficulty (O(n log n) at worst).

    The slices (min(32, ceil(n / 256)) of them, sizes drawn from a Dirichlet
    split) each own 1/slices of [0, 2**63) and are, with probabilities 1/2,
    1/4, 1/4: linear (evenly spaced keys with a random step, easy for a
    learned model), lognormal (sigma 1.5, squeezed into the slice) or
    clustered (as ``clustered``). Raises ValueError for n < 0.
    """
    rng = _start(n, seed)
    if n == 0:
        return np.empty(0, dtype=np.uint64)
    slices = min(_PIECEWISE_SLICES, -(-n // 256))
    sizes = rng.multinomial(n, rng.dirichlet(np.full(slices, 2.0)))
    kinds = rng.choice(3, size=slices, p=[0.5, 0.25, 0.25])
    width = 2**63 // slices
    parts = []
    for s, (m, kind) in enumerate(zip(sizes.tolist(), kinds.tolist(), strict=True)):
        if m == 0:
            continue
        base = np.uint64(s * width)
        if kind == 0:
            step = int(rng.integers(1, max(2, (width - 1) // m), dtype=np.uint64))
            start = int(rng.integers(0, width - step * (m - 1), dtype=np.uint64))
            part = np.arange(m, dtype=np.uint64) * np.uint64(step) + np.uint64(start)
        elif kind == 1:
            part = _sorted_unique(_squeezed_lognormal_draw(width), rng, m)
        else:
            part = _clustered_keys(rng, m, width)
        part += base
        parts.append(part)
    return np.concatenate(parts)


GENERATORS: dict[str, Callable[[int, int], np.ndarray]] = {
    "uniform_dense": uniform_dense,
    "uniform_sparse": uniform_sparse,
    "normal": normal,
    "lognormal": lognormal,
    "exponential": exponential,
    "zipf": zipf,
    "clustered": clustered,
    "piecewise": piecewise,
}

# Generators promising unique keys (all but zipf).
UNIQUE_GENERATORS = frozenset(GENERATORS) - {"zipf"}


def generate(name: str, n: int, seed: int = 42) -> np.ndarray:
    """Keys from the generator ``name`` (see GENERATORS) with n keys and the given seed.

    Raises ValueError for an unknown name (listing the choices) or n < 0.
    """
    try:
        gen = GENERATORS[name]
    except KeyError:
        raise ValueError(f"generator {name!r}: unknown; choose one of {', '.join(GENERATORS)}") from None
    return gen(n, seed)
