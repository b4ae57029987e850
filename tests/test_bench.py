"""The benchmark harness: a --quick smoke run, answer validation, and its output files."""

from __future__ import annotations

import csv
import json

import numba
import numpy as np
import pytest

from baselines import BinarySearch, BTree, NumpySearchsorted
from bench import registry
from bench.cli import main
from bench.harness import _read_byte, measure, scalar_floor_ns
from bench.registry import IndexSpec
from learnedidx import RMI


def test_quick_run_writes_every_output(tmp_path, capsys):
    code = main(["--quick", "--n", "50K", "--lookups", "5000", "--out", str(tmp_path)])
    assert code == 0
    out = capsys.readouterr().out
    assert "lognormal_50K_uint64" in out and "RMI" in out
    header = next(line for line in out.splitlines() if line.startswith("index "))
    assert header.index("loop ns") < header.index("batch ns") < header.index("variant")
    rows = list(csv.DictReader(open(tmp_path / "results.csv")))
    names = {r["index"] for r in rows}
    default_names = {s.name for s in registry.select(None)[0]}
    assert names == default_names
    for r in rows:
        assert not r["note"].startswith("WRONG"), r
        if r["batch_ns"]:  # both modes timed on the same runs, and what the batch path does
            assert float(r["loop_ns"]) > 0 and int(r["loop_runs"]) == int(r["batch_runs"]) > 0, r
            assert r["batch_variant"], r
        if r["index"] in ("BTree", "BinarySearch"):
            assert r["batch_variant"].startswith("interleaved x32"), r
        if r["index"] == "NumpySearchsorted":
            assert r["batch_variant"] == "loop", r
        if r["index"].startswith("RMI"):
            assert float(r["batch_ns"]) > 0 and float(r["scalar_ns"]) > 0 and int(r["index_bytes"]) > 0
            assert float(r["load_ms"]) > 0 and float(r["first_lookup_after_load_us"]) > 0
    meta = json.load(open(tmp_path / "results.json"))
    assert meta["machine"]["numba"] and meta["settings"]["quick"] is True
    assert meta["machine"]["git"] is None or len(meta["machine"]["git"]["commit"]) == 40
    assert meta["settings"]["scalar_floor_ns"]["lognormal_50K_uint64"] > 0
    assert "scalar floor:" in out
    assert {"loop_ns", "batch_ns", "batch_variant"} <= set(meta["results"][0])
    assert (tmp_path / "pareto.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_scalar_floor_reads_the_answers_keys():
    keys = np.arange(10, 20, dtype=np.int16)
    assert _read_byte(keys.ctypes.data, keys.nbytes, 2 * 3) == 13  # low byte of keys[3]
    assert scalar_floor_ns(keys, np.array([0, 9, 10]), 3) > 0  # position n (an answer past the end) is read as n - 1
    assert scalar_floor_ns(keys[:0], np.array([0]), 1) is None
    assert scalar_floor_ns(keys, np.array([], dtype=np.int64), 5) is None


def test_a_wrong_index_gets_no_time():
    class Wrong(RMI):
        def _search_array(self, queries, mode):
            return super()._search_array(queries, mode) + 1

    keys = np.arange(0, 3000, 3, dtype=np.uint64)
    queries = np.random.default_rng(1).permutation(keys[::7])  # unsorted: the batch kernels answer
    expected = np.searchsorted(keys, queries)
    result = measure(IndexSpec("Wrong", "learned", Wrong), "tiny", keys, queries, expected, repeats=2)
    assert result.batch_ns is None and result.note.startswith("WRONG ANSWERS")
    good = measure(IndexSpec("RMI", "learned", RMI), "tiny", keys, queries, expected, repeats=2)
    assert good.batch_ns > 0 and good.note == "" and good.batch_runs == 2
    assert good.loop_ns > 0 and good.loop_runs == 2


def test_a_wrong_loop_mode_gets_no_time():
    class WrongLoop(BinarySearch):
        def _search_loop(self, queries, mode):
            return super()._search_loop(queries, mode)[::-1].copy()

    keys = np.arange(0, 3000, 3, dtype=np.int64)
    queries = keys[::7].copy()
    expected = np.searchsorted(keys, queries)
    result = measure(IndexSpec("WrongLoop", "classic", WrongLoop), "tiny", keys, queries, expected, repeats=2)
    assert result.batch_ns is None and result.loop_ns is None
    assert result.note.startswith("WRONG ANSWERS: lower_bound_loop(")


def test_loop_mode_gets_the_coerced_queries_and_forced_answers():
    # int64 queries on uint8 keys: coerced once to uint8, those above 255 answered n unsearched.
    keys = np.arange(0, 250, 5, dtype=np.uint8)
    queries = np.array([-3, 0, 7, 249, 250, 300, 10**12], dtype=np.int64)
    expected = np.array([0, 0, 2, 50, 50, 50, 50])
    for spec in (IndexSpec("BTree", "classic", BTree), IndexSpec("RMI", "learned", RMI)):
        result = measure(spec, "tiny", keys, queries, expected, repeats=1, persist=False)
        assert result.note == "" and result.loop_ns > 0 and result.batch_ns > 0, result


def test_an_index_without_a_loop_kernel_is_timed_once():
    calls = []

    class Counted(NumpySearchsorted):
        def _search_array(self, queries, mode):
            calls.append(len(queries))
            return super()._search_array(queries, mode)

    keys = np.arange(0, 3000, 3, dtype=np.int64)
    probe = np.random.default_rng(5).permutation(keys)[:150]  # unsorted: no sorted-batch path
    runs = {}
    for repeats in (1, 3):
        calls.clear()
        result = measure(IndexSpec("Counted", "classic", Counted), "tiny", keys, probe, np.searchsorted(keys, probe),
                         repeats=repeats, persist=False)
        assert result.note == "" and result.loop_ns == result.batch_ns > 0 and result.loop_runs == repeats
        runs[repeats] = calls.count(len(probe))
    assert runs[3] - runs[1] == 2  # one call per timed repeat: no second, identical loop run


def test_object_structures_are_skipped_with_a_note():
    spec = IndexSpec("Huge", "python", RMI, max_keys=10)
    keys = np.arange(100, dtype=np.uint64)
    result = measure(spec, "tiny", keys, keys, np.arange(100), repeats=1)
    assert result.batch_ns is None and result.note.startswith("skipped: 100 keys > 10")


def test_unknown_index_name():
    with pytest.raises(ValueError, match="unknown index 'nope'"):
        registry.select(["nope"])
    with pytest.raises(ValueError, match="unknown index 'rmi-fats'; did you mean 'RMI-fast'"):
        registry.select(["rmi-fats"])
    assert [s.name for s in registry.select(["btree", "rmi"])[0]] == ["BTree", "RMI"]


@pytest.mark.slow
def test_coldstart_times_every_step_on_a_new_cache(capsys):
    """``python -m bench.coldstart``: both child processes answer right (checked inside
    ``run_steps``) and every step gets a cold and a warm time."""
    from bench import coldstart

    rows = coldstart.main(["--n", "3000"])
    assert list(rows) == list(coldstart.STEPS)
    assert all(cold > 0 and warm > 0 for cold, warm in rows.values())
    assert "first use on a fresh Numba cache" in capsys.readouterr().out


def test_scaling_times_every_index_at_every_thread_count(capsys):
    """``python -m bench.scaling``: a row per index and thread count, the first count the
    reference (speed-up 1 by construction), and bad thread counts refused."""
    from bench import scaling

    counts = sorted({1, numba.config.NUMBA_NUM_THREADS})
    rows = scaling.main(["--n", "20K", "--lookups", "20K", "--rounds", "2", "--indexes", "RMI", "BinarySearch"])
    assert [(r["index"], r["threads"]) for r in rows] == [(i, t) for i in ("RMI", "BinarySearch") for t in counts]
    assert all(r["ns"] > 0 and r["speedup"] > 0 for r in rows)
    assert rows[0]["speedup"] == 1.0 and rows[len(counts)]["speedup"] == 1.0
    assert "speed-up" in capsys.readouterr().out
    with pytest.raises(SystemExit) as refused:
        scaling.main(["--n", "1K", "--threads", "0"])
    assert refused.value.code == 2
    assert f"--threads: '0': expected a whole number from 1 to {numba.config.NUMBA_NUM_THREADS}" in \
        capsys.readouterr().err


def test_kernels_search_checks_both_strategies(capsys):
    """``bench.kernels search`` answers every lookup exactly with both window searches (it
    exits naming a wrong one) and prints each index's two rows."""
    from bench import kernels

    assert kernels.main(["search", "--n", "30000", "--lookups", "3000", "--rounds", "1"]) == 0
    out = capsys.readouterr().out
    for name in ("RMI", "PGM", "RadixSpline"):
        assert f"{name} in turn" in out and f"{name} lock-step" in out


def test_updates_shows_no_10m_targets_beside_a_small_run(capsys):
    """``bench.updates`` below the targets' 10M keys says so once and prints no "(target ...)" beside
    its figures; the figures themselves are still printed."""
    from bench import updates

    updates.main(["--n", "20K", "--batch", "2K", "--update-keys", "6K", "--fractions", "0.05", "--skip-mixes"])
    out = capsys.readouterr().out
    assert f"the targets are set for {updates.TARGET_N:,} keys" in out
    assert "(target" not in out
    assert "update() at merge_fraction 0.05:" in out and "bytes/key at most" in out
