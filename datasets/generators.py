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
of n keys; ``uniform_dense``, ``zipf``, ``clustered`` and the ADVERSARIAL shapes
but ``loguniform64`` need no sort of n keys: they lay out segments (runs,
clusters, bands, pieces) in key order and fill each with uniform keys.

ADVERSARIAL names the shapes built to hurt a learned index (the last six rows);
each function's first docstring line says why.

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
loguniform64    ``floor(2**(64 * u))``: log-uniform over the whole uint64 range
exp_gaps        gaps ``s_i * e``, log10(s_i) a Brownian path over the positions
                (8 decades per unit time): density drifts over ~13 decades
staircase       runs of 1 to n/16 keys (log-uniform) at gaps of 1-3, between
                jumps sharing the key space in proportions ``2**(24 * u)``
outliers        a bulk of ~89% of the keys at 2**63, up to 6 bands each side,
                1000x farther out and 10x fewer keys each (5%, 0.5%, ...)
geo_clusters    ~4.5 ln(n) tight clusters at uniform random places, holding
                20%, 16%, 13%, ... (ratio 0.8) of the keys
fractal         every piece of > 16 keys cut at a width share U(0.2, 0.8), its
                left part getting 5-25% or 75-95% of its keys
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
_EXP_GAPS_DECADES = 8.0  # drift of log10(gap scale) per unit of Brownian time (the whole key set)
_STAIRCASE_LONGEST_SHARE = 16  # the longest run holds n/16 keys
_STAIRCASE_JUMP_OCTAVES = 24.0
_OUTLIER_MAX_BANDS = 6  # 1000**7 > 2**63: no seventh band fits
_GEO_CLUSTER_SHARE = 0.2  # the largest cluster's expected share of the keys; each next one 0.8 times that
_FRACTAL_LEAF_KEYS = 16  # pieces this small are filled uniformly: 8 costs 1.6x the time, same shape

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


# --------------------------------------------------------------------------- adversarial shapes
# Shapes built to hurt a learned index (ADVERSARIAL). Most are laid out as segments
# (runs, clusters, bands, pieces) placed in key order and filled by _spread, which
# needs no sort; loguniform64 is the one drawn and sorted.


def _spread(rng: np.random.Generator, counts: np.ndarray, lo: np.ndarray, width: np.ndarray) -> np.ndarray:
    """counts[s] unique keys uniform in [lo[s], lo[s] + width[s]) per segment s, concatenated (O(n), no sort).

    Segments must be in key order, disjoint, with counts <= width. A segment's
    k-th key is lo + floor(x_k * (width - count)) + k, where x_k are the
    normalised partial sums of count + 1 exponential spacings (the order
    statistics of count uniforms): non-decreasing, so the + k makes them unique.
    """
    keep = counts > 0
    counts, lo, width = counts[keep].astype(np.int64), lo[keep], width[keep]
    total, segments = int(counts.sum()), counts.size
    if total == 0:
        return np.empty(0, dtype=np.uint64)
    cum = rng.standard_exponential(total + segments)
    np.cumsum(cum, out=cum)
    closing = np.cumsum(counts + 1) - 1  # index of each segment's last spacing (it follows the last key)
    ends = cum[closing]
    starts = np.concatenate(([0.0], ends[:-1]))
    mask = np.ones(cum.size, dtype=bool)
    mask[closing] = False
    x = cum[mask]
    del cum, mask
    seg = np.repeat(np.arange(segments), counts)
    x -= starts[seg]
    x /= (ends - starts)[seg]
    free = width - counts.astype(np.uint64)
    x *= free.astype(np.float64)[seg]
    keys = _uint64_from_floats(x)
    del x
    np.minimum(keys, free[seg], out=keys)  # float rounding never takes a key past its segment
    keys += lo[seg]
    rank = np.arange(total, dtype=np.uint64)
    rank -= (np.cumsum(counts) - counts).astype(np.uint64)[seg]
    keys += rank
    return keys


def _lay_out(widths: np.ndarray, jump_weights: np.ndarray) -> np.ndarray:
    """Starts of runs of the given widths placed in order in [0, 2**64), the room left shared out by jumps.

    Jump j comes before run j and one more after the last run, in proportion to
    ``jump_weights`` (len(widths) + 1 of them); the slack of 2**-20 of the room
    keeps the float shares from adding up past 2**64.
    """
    room = 2**64 - int(widths.sum(dtype=np.uint64))
    share = jump_weights * (room * (1.0 - 2.0**-20) / float(jump_weights.sum()))
    jumps = share[:-1].astype(np.uint64)
    return np.cumsum(jumps, dtype=np.uint64) + (np.cumsum(widths, dtype=np.uint64) - widths)


def _runs_of(counts: np.ndarray, mean_gap: np.ndarray) -> np.ndarray:
    """Widths of runs holding ``counts`` keys with the given mean key gaps (>= 1, so each run fits its keys)."""
    widths = np.ceil(counts * mean_gap).astype(np.uint64)
    return np.maximum(widths, counts.astype(np.uint64))


def loguniform64(n: int, seed: int = 42) -> np.ndarray:
    """Log-uniform keys over 64 bits: over 2/3 lie below 2**50, in a linear root's first of 2**14 slices.

    Keys floor(2**E), E uniform in [0, 64): every octave [2**k, 2**(k+1)) gets
    n/64 draws. Octaves with fewer integers than that (k below about
    log2(n/64)) come out filled completely and the shortfall is topped up from
    the others (module doc), so the wider octaves each get about
    n/(64 - log2(n/64)) keys. O(n log n): one sort. Raises ValueError for n < 0.
    """
    rng = _start(n, seed)
    return _sorted_unique(_loguniform_draw, rng, n)


def _loguniform_draw(rng: np.random.Generator, k: int) -> np.ndarray:
    exponent = rng.random(k)
    exponent *= 64.0
    return _uint64_from_floats(np.exp2(exponent, out=exponent))


def exp_gaps(n: int, seed: int = 42) -> np.ndarray:
    """Exponential gaps whose scale drifts over about 13 decades: no sizable stretch of the CDF is near a line.

    Gap i is scale_i * e_i (e standard exponential); log10(scale) is a Brownian
    path over the positions, 8 decades per unit time: a stretch of a fraction f
    of the keys drifts by about 8 * sqrt(f) decades (1000 of 100K keys: 0.8),
    so density changes at every scale and a model's error grows with the
    stretch it covers. Gaps are scaled to fill [0, 2**64), each at least 1.
    O(n), no sort. Raises ValueError for n < 0.
    """
    rng = _start(n, seed)
    if n == 0:
        return np.empty(0, dtype=np.uint64)
    log_scale = rng.standard_normal(n + 1)  # gap n follows the last key: the keys do not end at 2**64
    np.cumsum(log_scale, out=log_scale)
    log_scale *= _EXP_GAPS_DECADES * math.log(10.0) / math.sqrt(n + 1)
    log_scale -= log_scale.max()
    gaps = np.exp(log_scale, out=log_scale)
    gaps *= rng.standard_exponential(n + 1)
    gaps *= (2.0**64 - 1 - n) * (1.0 - 2.0**-20) / float(gaps.sum())
    steps = gaps[:n].astype(np.uint64)
    del gaps
    steps += np.uint64(1)  # >= 1 keeps keys unique; the slack above keeps the sum below 2**64
    keys = np.cumsum(steps, out=steps)
    keys -= np.uint64(1)
    return keys


def staircase(n: int, seed: int = 42) -> np.ndarray:
    """Random staircase of dense runs and huge jumps: a root model's slices are empty or hold whole runs.

    Runs hold 1 to n/16 keys (log-uniform length) at a mean gap uniform in
    [1, 3); the jumps before, between and after them share the rest of
    [0, 2**64) in proportions 2**U(0, 24), so a few jumps take most of the key
    space and every jump dwarfs every run. The steps recur at every scale of
    the jump sizes. O(n), no sort. Raises ValueError for n < 0.
    """
    rng = _start(n, seed)
    if n == 0:
        return np.empty(0, dtype=np.uint64)
    longest = max(2, n // _STAIRCASE_LONGEST_SHARE)
    lengths = np.empty(0, dtype=np.int64)
    while lengths.sum() < n:  # twice the expected number of runs: one round nearly always
        draws = 16 + 2 * n * max(1, int(math.log(longest))) // longest
        more = np.exp(rng.random(draws) * math.log(longest)).astype(np.int64)
        lengths = np.concatenate((lengths, more))
    ends = np.cumsum(lengths)
    runs = int(np.searchsorted(ends, n)) + 1
    counts = lengths[:runs]
    counts[-1] -= int(ends[runs - 1]) - n
    widths = _runs_of(counts, rng.uniform(1.0, 3.0, runs))
    jumps = np.exp2(rng.uniform(0.0, _STAIRCASE_JUMP_OCTAVES, runs + 1))
    return _spread(rng, counts, _lay_out(widths, jumps), widths)


def outliers(n: int, seed: int = 42) -> np.ndarray:
    """Dense bulk with nested outlier bands (1000x farther, 10x sparser each): a line sees the bulk as one step.

    Band j (j = 1..B, innermost first) holds n // (20 * 10**(j-1)) keys on
    each side (5%, 0.5%, ...), uniform at distances [h * 1000**j, 2h * 1000**j)
    from 2**63; the bulk, the remaining ~89%, is uniform within h of 2**63.
    h = 2**62 // 1000**B, B (at most 6) the most bands for which the bulk still
    has an integer per key: the outermost band reaches 0 and 2**64 - 1, and the
    bulk has 1 to 1000 integers per key. The outliers set the slope of any
    line fitted to all keys. O(n), no sort. Raises ValueError for n < 0.
    """
    rng = _start(n, seed)
    for bands in range(_OUTLIER_MAX_BANDS, -1, -1):
        per_side = [n // (20 * 10**j) for j in range(bands)]
        bulk = n - 2 * sum(per_side)
        half = 2**62 // 1000**bands
        if 2 * half >= bulk:
            break
    inner = [half * 1000 ** (j + 1) for j in range(bands)]  # distance of band j's inner edge from 2**63
    counts = [*per_side[::-1], bulk, *per_side]
    lo = [*(2**63 - 2 * d for d in inner[::-1]), 2**63 - half, *(2**63 + d for d in inner)]
    width = [*inner[::-1], 2 * half, *inner]
    return _spread(rng, np.array(counts), np.array(lo, dtype=np.uint64), np.array(width, dtype=np.uint64))


def geo_clusters(n: int, seed: int = 42) -> np.ndarray:
    """Tight clusters of geometric sizes at random centres: a few tall steps, far from any line or root model.

    Cluster k = 0, 1, ... holds a multinomial share p * (1 - p)**k of the keys
    (p = 0.2: 20%, 16%, 13%, ...; about 4.5 * ln(n) clusters, until
    (1 - p)**k < 1/n), in random order at uniformly random places in
    [0, 2**64); keys in a cluster have a mean gap lognormal with median 2
    (at least 1). O(n), no sort. Raises ValueError for n < 0.
    """
    rng = _start(n, seed)
    if n == 0:
        return np.empty(0, dtype=np.uint64)
    clusters = max(1, math.ceil(math.log(n + 1) / -math.log1p(-_GEO_CLUSTER_SHARE)))
    share = _GEO_CLUSTER_SHARE * (1.0 - _GEO_CLUSTER_SHARE) ** np.arange(clusters)
    counts = rng.permutation(rng.multinomial(n, share / share.sum()))
    widths = _runs_of(counts, np.maximum(1.0, rng.lognormal(math.log(2.0), 0.5, clusters)))
    return _spread(rng, counts, _lay_out(widths, rng.standard_exponential(clusters + 1)), widths)


def fractal(n: int, seed: int = 42) -> np.ndarray:
    """Self-similar (devil's-staircase-like) CDF: density jumps at every scale, so no finer model is linear.

    Starting from [0, 2**64 - 1), every piece with more than 16 keys is cut at
    a share q ~ U(0.2, 0.8) of its width, and its left part gets a binomial
    share p of its keys, p = 0.5 +- U(0.25, 0.45) (in [0.05, 0.25] or
    [0.75, 0.95]); pieces of 16 keys or fewer are filled uniformly. A line over
    any stretch, from all keys down to 100 of them, is typically off by 30% of
    the stretch. O(n) (about n/7 cuts; one sort of the pieces, not of the keys).
    Raises ValueError for n < 0.
    """
    rng = _start(n, seed)
    lo = np.zeros(1, dtype=np.uint64)
    width = np.array([2**64 - 1], dtype=np.uint64)
    count = np.array([n], dtype=np.int64)
    leaves: list[tuple[np.ndarray, np.ndarray, np.ndarray]] = []
    while count.size:
        leaf = count <= _FRACTAL_LEAF_KEYS
        leaves.append((lo[leaf], width[leaf], count[leaf]))
        lo, width, count = lo[~leaf], width[~leaf], count[~leaf]
        if not count.size:
            break
        q = rng.uniform(0.2, 0.8, count.size)
        w_left = np.minimum((width.astype(np.float64) * q).astype(np.uint64), width)
        w_right = width - w_left
        p = rng.uniform(0.25, 0.45, count.size)
        p *= rng.integers(0, 2, count.size) * 2 - 1
        p += 0.5
        c_left = rng.binomial(count, p)
        cap = np.uint64(2**62)  # far above any count; keeps the clip in int64
        np.clip(
            c_left,
            count - np.minimum(w_right, cap).astype(np.int64),
            np.minimum(w_left, cap).astype(np.int64),
            out=c_left,
        )  # each part must have room for its keys (unique integers)
        lo = np.column_stack((lo, lo + w_left)).ravel()
        width = np.column_stack((w_left, w_right)).ravel()
        count = np.column_stack((c_left, count - c_left)).ravel()
    lo, width, count = (np.concatenate(part) for part in zip(*leaves, strict=True))
    order = np.argsort(lo, kind="stable")
    return _spread(rng, count[order], lo[order], width[order])


GENERATORS: dict[str, Callable[[int, int], np.ndarray]] = {
    "uniform_dense": uniform_dense,
    "uniform_sparse": uniform_sparse,
    "normal": normal,
    "lognormal": lognormal,
    "exponential": exponential,
    "zipf": zipf,
    "clustered": clustered,
    "piecewise": piecewise,
    "loguniform64": loguniform64,
    "exp_gaps": exp_gaps,
    "staircase": staircase,
    "outliers": outliers,
    "geo_clusters": geo_clusters,
    "fractal": fractal,
}

# Shapes built to hurt a learned index: the benchmark's adversarial group.
ADVERSARIAL = ("loguniform64", "exp_gaps", "staircase", "outliers", "geo_clusters", "fractal")

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
