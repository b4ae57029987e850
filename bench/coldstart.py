"""``python -m bench.coldstart``: what the first use of each index costs on a fresh machine.

Numba compiles a kernel at its first call for each key dtype and keeps it in its cache
(``cache=True``), so a user waits once, at the first build, lookup or write of each kind; later
processes load the kernels. Each run here starts a child process with a new, empty cache folder
(nothing compiled earlier counts), times the first uses one after another, then runs the same
steps in a second child process over that cache: the warm column is what every later start
costs. Medians of ``--rounds`` cold runs; the machine's other load moves single runs by 10-30%.

    python -m bench.coldstart                  # 100K uint64 keys, one round
    python -m bench.coldstart --dtype float64 --rounds 3
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import tempfile

import numpy as np

from datasets.cli_args import ArgumentParser, count_type, positive_count

#: Key dtypes the steps run on: 64-bit, since their keys go up to 2**40.
DTYPES = ("uint64", "int64", "float64")
STEPS = (
    "import learnedidx",
    "RMI(keys)",
    "RMI batch lower_bound",
    "RMI scalar lower_bound",
    "DynamicRMI(keys)",
    "DynamicRMI update",
    "DynamicRMI batch get",
    "DynamicRMI scalar get",
    "DynamicRMI merge",
)


def run_steps(n: int, dtype: str) -> dict:
    """Time each step of :data:`STEPS` once, in this process; ``{step: seconds}``.

    Raises AssertionError when an answer differs from ``np.searchsorted`` or the inserted values.
    """
    import time

    t = time.perf_counter()
    from learnedidx import RMI, DynamicRMI

    times = {STEPS[0]: time.perf_counter() - t}
    rng = np.random.default_rng(1)
    keys = np.unique(rng.integers(0, 2**40, n)).astype(dtype)
    queries = rng.choice(keys, n // 2)
    new = np.setdiff1d(np.unique(rng.integers(0, 2**40, 1000)).astype(dtype), keys)
    found = {}

    def timed(step, work):
        t = time.perf_counter()
        found[step] = work()
        times[step] = time.perf_counter() - t

    timed("RMI(keys)", lambda: RMI(keys))
    rmi = found["RMI(keys)"]
    timed("RMI batch lower_bound", lambda: rmi.lower_bound(queries))
    timed("RMI scalar lower_bound", lambda: rmi.lower_bound(queries[0].item()))
    timed("DynamicRMI(keys)", lambda: DynamicRMI(keys))
    dyn = found["DynamicRMI(keys)"]
    timed("DynamicRMI update", lambda: dyn.update(new, np.arange(len(new))))
    timed("DynamicRMI batch get", lambda: dyn.get_batch(new))
    timed("DynamicRMI scalar get", lambda: dyn.get(new[-1].item()))
    timed("DynamicRMI merge", dyn.merge)
    assert np.array_equal(found["RMI batch lower_bound"], np.searchsorted(keys, queries))
    assert found["RMI scalar lower_bound"] == np.searchsorted(keys, queries[0])
    values, hit = found["DynamicRMI batch get"]
    assert hit.all() and np.array_equal(values, np.arange(len(new)))
    assert found["DynamicRMI scalar get"] == len(new) - 1
    return times


def _child(cache: str, n: int, dtype: str) -> dict:
    """:func:`run_steps` in a new interpreter whose Numba cache is ``cache``."""
    env = dict(os.environ, NUMBA_CACHE_DIR=cache)
    code = f"import json; from bench.coldstart import run_steps; print(json.dumps(run_steps({n}, {dtype!r})))"
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    out = subprocess.run([sys.executable, "-c", code], env=env, cwd=root, check=True, capture_output=True, text=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def main(argv=None) -> dict:
    """Print a table of cold and warm seconds per step; returns ``{step: (cold, warm)}``.

    Bad input raises SystemExit(2) after one line on stderr.
    """
    p = ArgumentParser(prog="python -m bench.coldstart", description=__doc__.split("\n\n")[0])
    p.add_argument("--n", type=count_type(1000), default=100_000, help="keys, at least 1000 (default 100K)")
    p.add_argument("--dtype", default="uint64", choices=DTYPES, help="key dtype (default uint64)")
    p.add_argument("--rounds", type=positive_count, default=1, help="cold runs, each on a new cache (default 1)")
    args = p.parse_args(argv)
    colds, warm = [], None
    for _ in range(args.rounds):
        with tempfile.TemporaryDirectory(prefix="learnedidx-coldstart-") as cache:
            colds.append(_child(cache, args.n, args.dtype))
            warm = _child(cache, args.n, args.dtype)
    rows = {s: (statistics.median(c[s] for c in colds), warm[s]) for s in STEPS}
    print(f"first use on a fresh Numba cache, {args.n} {args.dtype} keys, median of {args.rounds} cold run(s)")
    print(f"{'step':26s} {'cold s':>8s} {'warm s':>8s}")
    for step, (cold, hot) in rows.items():
        print(f"{step:26s} {cold:8.2f} {hot:8.2f}")
    print(f"{'total':26s} {sum(c for c, _ in rows.values()):8.2f} {sum(h for _, h in rows.values()):8.2f}")
    return rows


if __name__ == "__main__":
    main()
