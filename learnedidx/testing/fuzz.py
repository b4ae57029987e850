"""A fuzzer any user can run: every index, every query type, updates, and the file loader.

``python -m learnedidx.testing.fuzz --seconds 1200`` runs worker processes one after another
until the time is up, each drawing key sets (every key dtype; uniform, lognormal, duplicate
runs, extremes, clusters, staircases, huge gaps, 0-3 keys and up to 600K keys, so the batch
kernels' in-cache and out-of-cache paths both run) and checking against exact references:

- every learned index (RMI with random stages, leaf sizes, hybrid windows and searches; PGM;
  RadixSpline; the tuner's choice) and, from a source checkout, the baselines: the
  conformance check (:func:`learnedidx.testing.check_index`: scalars of every Python and numpy
  number type, long doubles, arrays of several dtypes, ``get``/``contains``/``range``, NaN and
  non-number errors), then large same-dtype batches against ``np.searchsorted``;
- ``DynamicRMI`` after random single-key and batch writes and deletes, against a dict;
- files: each index saved and loaded (mapped and read, verified and not), then copies with
  flipped bytes, truncated, extended or with a rewritten header loaded: each must raise
  ``IndexFileError``/``OSError`` or load and answer (exactly, when it loaded verified).

A worker that dies (abort, SIGSEGV) counts as a crash and the run goes on with the next seed.
It prints the counts (query values checked, batch queries checked, wrong answers, files, files
refused, crashes) and exits 1 when anything was wrong or crashed. ``--seed`` makes a run
repeatable: worker k uses seed ``seed + k``.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
import traceback

import numpy as np

DTYPES = ("int8", "int16", "int32", "int64", "uint8", "uint16", "uint32", "uint64", "float32", "float64")
SHAPES = ("uniform", "lognormal", "runs", "extremes", "clusters", "staircase", "gaps", "tiny")


def draw_keys(rng: np.random.Generator) -> np.ndarray:
    """An unsorted key array of a random dtype and shape."""
    dtype = np.dtype(rng.choice(DTYPES))
    shape = rng.choice(SHAPES)
    big = rng.random() < 0.15
    n = int(rng.integers(300_000, 600_000)) if big else int(rng.integers(2, 5000))
    if dtype.kind == "f":
        info = np.finfo(dtype)
        low, high = -float(info.max), float(info.max)
    else:
        info = np.iinfo(dtype)
        low, high = int(info.min), int(info.max)
    if shape == "tiny":
        n = int(rng.integers(0, 4))
    if shape == "uniform" or shape == "tiny":
        if dtype.kind == "f":
            x = rng.uniform(-1e6, 1e6, n)
        else:
            x = rng.integers(low, high, n, dtype=dtype, endpoint=True)
    elif shape == "lognormal":
        x = rng.lognormal(0, 2, n) * (1e6 if dtype.kind == "f" else max(1, high // 10_000))
    elif shape == "runs":
        pool = rng.integers(0, 100, int(rng.integers(1, 20)))
        x = pool[rng.integers(0, len(pool), n)]
    elif shape == "extremes":
        special = [low, high, 0, 1, -1]
        if dtype.kind == "f":
            special += [np.inf, -np.inf, -0.0, float(info.tiny), float(np.nextafter(dtype.type(info.max), 0))]
        else:
            special += [low + 1, high - 1]
        x = np.array(special, dtype=object)[rng.integers(0, len(special), n)]
        x = np.array([v for v in x if dtype.kind == "f" or low <= v <= high], dtype=dtype)
    elif shape == "clusters":
        centers = rng.uniform(0, 1, int(rng.integers(1, 50))) * min(high, 2**62)
        x = centers[rng.integers(0, len(centers), n)] + rng.integers(0, 64, n)
    elif shape == "staircase":
        x = np.cumsum(rng.integers(0, 2, n) * rng.integers(1, 2**20, n))
    else:  # gaps: exponentially spread
        x = np.cumsum(np.exp(rng.uniform(0, 40, n)))
    with np.errstate(over="ignore", invalid="ignore"):
        if dtype.kind == "f":
            keys = np.asarray(x, dtype=np.float64).astype(dtype)
        else:
            clipped = np.clip(np.nan_to_num(np.asarray(x, dtype=np.float64)), low, high)
            keys = np.asarray(x) if np.asarray(x).dtype == dtype else clipped.astype(dtype)
    return np.ascontiguousarray(keys, dtype=dtype)


def draw_queries(rng, keys: np.ndarray, count: int) -> list:
    """Query values: present keys, their neighbours, the dtype's ends, other types' values."""
    from .strategies import interesting_queries

    qs = list(interesting_queries(np.sort(keys)))
    if len(keys):
        for k in keys[rng.integers(0, len(keys), count)]:
            v = k.item()
            qs += [v, v + 1, v - 1] if keys.dtype.kind in "iu" else [v, v / 2, float(np.nextafter(k, np.inf))]
            qs.append(np.longdouble(v) / 3)
    qs += [2**64 + 5, -(2**64), 0.5, -0.5, float("inf"), float("-inf"), np.float32(1.5), np.int8(-3),
           np.uint64(2**63 + 1), np.longdouble(2**63) + np.longdouble(0.5), True]
    rng.shuffle(qs)
    return qs[:count + 40]


def factories(rng) -> dict:
    """Index constructors with random configurations, by name."""
    from learnedidx import PGM, RMI, RadixSpline

    stages = [("linear", "linear"), ("cubic", "linear"), ("radix", "linear"), ("linear", "linear", "linear"),
              ("linear_spline", "linear")]
    rmi = dict(stages=stages[int(rng.integers(0, len(stages)))], keys_per_leaf=int(rng.choice([1, 4, 64, 512])),
               max_window=[None, 4, 64, 256][int(rng.integers(0, 4))],
               search=str(rng.choice(["binary", "linear", "exponential"])),
               variant=str(rng.choice(["auto", "group", "amac"])))
    pgm = dict(epsilon=int(rng.choice([1, 4, 16, 64, 256])), epsilon_recursive=int(rng.choice([1, 4, 16])))
    spline = dict(epsilon=int(rng.choice([1, 4, 16, 64])), radix_bits=int(rng.choice([0, 4, 10, 18])))
    out = {
        f"RMI{rmi}": lambda k, v: RMI(k, v, **rmi),
        f"PGM{pgm}": lambda k, v: PGM(k, v, **pgm),
        f"RadixSpline{spline}": lambda k, v: RadixSpline(k, v, **spline),
    }
    try:
        import baselines

        out["BTree"] = lambda k, v: baselines.BTree(k, v)
        out["BinarySearch"] = lambda k, v: baselines.BinarySearch(k, v)
    except ImportError:
        pass
    return out


class Counts(dict):
    def add(self, key, n=1):
        self[key] = self.get(key, 0) + n


def check_batches(idx, keys, rng, counts, name):
    """Large same-dtype batches against ``np.searchsorted`` (exact for one dtype)."""
    sorted_keys = np.sort(keys, kind="stable")
    if len(keys) == 0:
        return
    m = 20_000
    q = sorted_keys[rng.integers(0, len(keys), m)]
    if keys.dtype.kind in "iu":
        q = q + rng.integers(-1, 2, m).astype(keys.dtype)  # wraps at the ends: still a valid query
    for side, method in (("left", idx.lower_bound), ("right", idx.upper_bound)):
        got = method(q)
        expected = np.searchsorted(sorted_keys, q, side=side)
        bad = np.flatnonzero(got != expected)
        counts.add("batch queries", m)
        if len(bad):
            counts.add("wrong answers", len(bad))
            raise AssertionError(f"{name}.{side} bound of {q[bad[0]]!r}: {got[bad[0]]}, expected {expected[bad[0]]}")


def check_dynamic(rng, keys, counts):
    """Random writes on a DynamicRMI, then its contents and answers against a dict."""
    from learnedidx import DynamicRMI

    if keys.dtype.kind == "f":
        keys = keys[np.isfinite(keys)]
    uniq = np.unique(keys)
    idx = DynamicRMI(uniq, values=np.arange(len(uniq)), buffer_size=int(rng.choice([1, 8, 65536])),
                     merge_min=int(rng.choice([1, 64, 4096])), chunk_size=int(rng.choice([2, 16, 128])))
    ref = dict(zip(uniq.tolist(), range(len(uniq))))
    if uniq.dtype.kind == "f":
        fresh = rng.uniform(-1e6, 1e6, 500).astype(uniq.dtype)
    else:
        info = np.iinfo(uniq.dtype)
        fresh = rng.integers(info.min, info.max, 500, dtype=uniq.dtype, endpoint=True)
    pool = np.concatenate([uniq, fresh])
    for _ in range(int(rng.integers(1, 30))):
        op = rng.random()
        batch = pool[rng.integers(0, len(pool), int(rng.integers(1, 300)))]
        if op < 0.4:
            vals = rng.integers(0, 1000, len(batch))
            idx.update(batch, vals)
            for k, v in zip(batch.tolist(), vals.tolist()):
                ref[k] = v
        elif op < 0.6:
            idx.delete(batch, missing="ignore")
            for k in set(batch.tolist()):
                ref.pop(k, None)
        else:
            batch = batch[:20]  # one key a call
            for k in batch.tolist():
                if rng.random() < 0.7:
                    idx[k] = 7
                    ref[k] = 7
                elif k in ref:
                    del idx[k]
                    del ref[k]
        counts.add("writes", len(batch))  # keys this round offered to writes
    order = sorted(ref)
    expected_keys = np.array(order, dtype=uniq.dtype)
    if not np.array_equal(idx.keys, expected_keys) or idx.values.tolist() != [ref[k] for k in order]:
        counts.add("wrong answers")
        raise AssertionError("DynamicRMI contents differ from the reference after writes")
    idx._check()
    check_batches(idx, expected_keys, rng, counts, "DynamicRMI")
    return idx


def check_files(idx, rng, counts, name, directory):
    """Save, load every way, then load corrupted copies: refused or answering."""
    from learnedidx import IndexFileError, load

    path = os.path.join(directory, "fuzz.lidx")
    idx.save(path)
    probe = np.asarray(idx.keys)[:: max(1, len(idx) // 200)]
    expected = idx.lower_bound(probe)
    for mmap in (True, False):
        for verify in (True, False):
            got = load(path, mmap=mmap, verify=verify).lower_bound(probe)
            counts.add("files")
            if not np.array_equal(got, expected):
                counts.add("wrong answers")
                raise AssertionError(f"{name}: loaded (mmap={mmap}, verify={verify}) answers differ")
    data = open(path, "rb").read()
    for _ in range(6):
        bad = bytearray(data)
        kind = rng.integers(0, 4)
        if kind == 0:
            for _ in range(int(rng.integers(1, 4))):
                bad[int(rng.integers(0, len(bad)))] ^= int(rng.integers(1, 256))
        elif kind == 1:
            bad = bad[:int(rng.integers(0, len(bad)))]
        elif kind == 2:
            bad += bytes(int(rng.integers(1, 200)))
        else:
            at = int(rng.integers(24, min(len(bad), 400)))
            bad[at:at + 8] = str(int(rng.integers(-2**40, 2**40))).encode()[:8].ljust(8, b"0")
        corrupt = os.path.join(directory, "corrupt.lidx")
        with open(corrupt, "wb") as f:
            f.write(bad)
        mmap, verify = bool(rng.integers(0, 2)), bool(rng.integers(0, 2))
        counts.add("files")
        try:
            loaded = load(corrupt, mmap=mmap, verify=verify)
        except (IndexFileError, OSError):
            counts.add("files refused")
            continue
        got = loaded.lower_bound(probe)  # must not crash, whatever the bytes
        if verify and not np.array_equal(got, expected):
            counts.add("wrong answers")
            raise AssertionError(f"{name}: a corrupted file loaded with verify=True answers differently")
        del loaded


def worker(seed: int, seconds: float, out_path: str) -> None:
    """Fuzz until ``seconds`` pass; write the counts to ``out_path`` after every round."""
    from .conformance import check_index

    from ..persist import registered

    rng = np.random.default_rng(seed)
    counts = Counts()
    failures = []
    deadline = time.monotonic() + seconds
    with tempfile.TemporaryDirectory() as directory:
        while time.monotonic() < deadline:
            keys = draw_keys(rng)
            values = np.arange(len(keys), dtype=np.int64) * 3 + 1
            builders = factories(rng)
            saveable = set(registered().values())
            qs = draw_queries(rng, keys, 60)
            for name, factory in builders.items():
                try:
                    check_index(factory, keys, values, qs if len(keys) <= 5000 else qs[:80])
                    counts.add("query values", len(qs) if len(keys) <= 5000 else 80)
                    idx = factory(keys, values)
                    check_batches(idx, keys, rng, counts, name)
                    if rng.random() < 0.3 and len(keys) <= 50_000 and type(idx) in saveable:
                        check_files(idx, rng, counts, name, directory)
                except AssertionError as exc:
                    counts.add("wrong answers")
                    failures.append(f"seed {seed} {name} {keys.dtype}[{len(keys)}]: {exc}")
                except Exception as exc:  # an unexpected exception is a finding too
                    counts.add("unexpected errors")
                    failures.append(f"seed {seed} {name}: {traceback.format_exception_only(exc)[-1].strip()}")
            try:
                idx = check_dynamic(rng, keys, counts)
                if idx is not None and rng.random() < 0.3 and len(keys) <= 50_000:
                    check_files(idx, rng, counts, "DynamicRMI", directory)
            except AssertionError as exc:
                failures.append(f"seed {seed} DynamicRMI {keys.dtype}[{len(keys)}]: {exc}")
            except Exception as exc:
                counts.add("unexpected errors")
                failures.append(f"seed {seed} DynamicRMI: {traceback.format_exception_only(exc)[-1].strip()}")
            counts.add("key sets")
            with open(out_path, "w") as f:
                json.dump({"counts": counts, "failures": failures[:20]}, f)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="python -m learnedidx.testing.fuzz", description=__doc__.splitlines()[0])
    p.add_argument("--seconds", type=float, default=60.0, help="total run time (default 60)")
    p.add_argument("--seed", type=int, default=0, help="first worker's seed (default 0)")
    p.add_argument("--worker-seconds", type=float, default=300.0, help="time per worker process (default 300)")
    p.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    p.add_argument("--out", help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.worker:
        worker(args.seed, args.seconds, args.out)
        return 0
    total = Counts()
    failures = []
    crashes = 0
    seed = args.seed
    deadline = time.monotonic() + args.seconds
    with tempfile.TemporaryDirectory() as directory:
        while time.monotonic() < deadline:
            out = os.path.join(directory, f"worker{seed}.json")
            span = max(1.0, min(args.worker_seconds, deadline - time.monotonic()))
            proc = subprocess.run([sys.executable, "-m", "learnedidx.testing.fuzz", "--worker", "--seed", str(seed),
                                   "--seconds", str(span), "--out", out], capture_output=True, text=True)
            if os.path.exists(out):
                with open(out) as f:
                    report = json.load(f)
                for key, n in report["counts"].items():
                    total.add(key, n)
                failures += report["failures"]
            if proc.returncode != 0:
                crashes += 1
                failures.append(f"seed {seed}: worker exited with {proc.returncode}: {proc.stderr[-500:]}")
            print(f"worker seed {seed}: exit {proc.returncode}; totals so far {dict(total)}", flush=True)
            seed += 1
    total["crashes"] = crashes
    print(json.dumps(total, indent=1))
    for failure in failures[:20]:
        print("FAIL", failure)
    return 1 if failures or crashes else 0


if __name__ == "__main__":
    sys.exit(main())
