"""learnedidx.explain: the numbers behind the pictures (checked against numpy), the PNGs for every
learned index, the command line, and the message when matplotlib is missing.

The numbers need no matplotlib; the pictures skip without it.
"""

from __future__ import annotations

import importlib
import importlib.util
import os
import struct
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import learnedidx
from learnedidx import PGM, RMI, CompileWarning, DynamicRMI, KeyValueIndex, RadixSpline
from learnedidx.explain import FILES, error_profile, explain, log_keys

ROOT = Path(__file__).resolve().parents[1]
EXPLAIN = importlib.import_module("learnedidx.explain")  # the module: learnedidx.explain is the function
#: Small leaves make an RMI whose p99 window is not its widest (39 and 40 keys).
FAMILIES = {"RMI": RMI, "RMI-32": lambda k: RMI(k, keys_per_leaf=32), "PGM": lambda k: PGM(k, epsilon=16),
            "RadixSpline": RadixSpline}
needs_matplotlib = pytest.mark.skipif(importlib.util.find_spec("matplotlib") is None,
                                      reason="matplotlib (the explain extra) is not installed")


@pytest.fixture(scope="module")
def keys() -> np.ndarray:
    """About 20K lognormal keys, with runs of 31 copies of every 500th: a repeated key's lower
    bound is its run's first position, not its own."""
    rng = np.random.default_rng(7)
    base = np.unique((rng.lognormal(0, 2, 20_000) * 1e6).astype(np.uint64))
    keys = np.sort(np.concatenate([base, np.repeat(base[::500], 30)]))
    assert (truth(keys) != np.arange(len(keys))).sum() > 1000
    return keys


@pytest.fixture(scope="module")
def indexes(keys) -> dict:
    return {name: make(keys) for name, make in FAMILIES.items()}


def truth(keys: np.ndarray) -> np.ndarray:
    """Each key's lower bound, from its run's start (not by a binary search)."""
    positions = np.arange(len(keys))
    starts = np.where(np.concatenate(([True], keys[1:] != keys[:-1])), positions, 0)
    return np.maximum.accumulate(starts)


def reference(idx, sample: int, bins: int) -> dict:
    """What error_profile must return, computed another way: every key at once, bins by slicing."""
    keys = idx.keys
    n = len(keys)
    pos, lo, hi = idx.predict(np.array(keys))
    err, win = pos - truth(keys), hi - lo
    at = np.arange(n) if n <= sample else np.linspace(0, n - 1, sample).round().astype(np.int64)
    count = min(bins, len(at))
    edges = [i * n // count for i in range(count + 1)]
    parts = [slice(a, b) for a, b in zip(edges[:-1], edges[1:])]
    in_bin = [at[(at >= s.start) & (at < s.stop)] for s in parts]

    def zoom(p):
        half = 2 * max(abs(int(err[p])), int(win[p]), 8)
        return p, int(err[p]), int(win[p]), max(0, p - half), min(n, p + half + 1)

    def best(maxima, sums, candidates):  # the largest maximum, then sum, then the first bin
        return max(candidates, key=lambda b: (maxima[b], sums[b], -b))

    abs_err = np.abs(err)
    max_err = [abs_err[s].max() for s in parts]
    b = best(max_err, [abs_err[s].sum() for s in parts], range(count))
    worst = zoom(parts[b].start + int(np.argmax(abs_err[parts[b]])))
    away = [i for i, s in enumerate(parts) if s.stop <= worst[3] or s.start >= worst[4]] or list(range(count))
    max_win = [win[s].max() for s in parts]
    b = best(max_win, [win[s].sum() for s in parts], away)
    widest = zoom(parts[b].start + int(np.argmax(win[parts[b]])))
    return dict(positions=at, errors=err[at], windows=win[at], p50=np.percentile(win[at], 50),
                p99=np.percentile(win[at], 99), max_error=abs_err.max(), max_window=win.max(), bin_edges=edges,
                bin_max_window=max_win, bin_max_error=max_err,
                bin_median_window=[np.median(win[p]) if len(p) else np.nan for p in in_bin], worst=worst,
                widest=widest)


def assert_profile(idx, sample: int, bins: int) -> None:
    got = error_profile(idx, sample=sample, bins=bins)
    want = reference(idx, sample, bins)
    assert got.n == len(idx.keys)
    for name in ("positions", "errors", "windows", "bin_edges", "bin_max_window", "bin_max_error"):
        np.testing.assert_array_equal(getattr(got, name), want[name], err_msg=name)
    np.testing.assert_array_equal(got.bin_median_window, want["bin_median_window"])
    assert (got.p50, got.p99, got.max_error, got.max_window) == \
        (want["p50"], want["p99"], want["max_error"], want["max_window"])
    for name in ("worst", "widest"):
        z = getattr(got, name)
        assert (z.position, z.error, z.window, z.start, z.stop) == want[name], name


@pytest.mark.parametrize("family", FAMILIES)
def test_profile_numbers_match_numpy(indexes, family):
    idx = indexes[family]
    assert_profile(idx, sample=10**6, bins=200)  # every key sampled
    prof = error_profile(idx)
    assert prof.max_error == idx.max_error  # the index's own statistic agrees
    assert prof.log_keys  # lognormal keys


@pytest.mark.parametrize("family", FAMILIES)
def test_profile_samples_evenly_and_still_scans_every_key(indexes, family, monkeypatch):
    # Chunks that end inside bins, and fewer sampled keys than keys: maxima still over every key.
    monkeypatch.setattr(EXPLAIN, "_CHUNK", 3001)
    assert_profile(indexes[family], sample=997, bins=64)
    assert_profile(indexes[family], sample=50, bins=200)  # more bins asked for than sampled keys


def test_worst_and_widest_regions_are_apart_when_they_can_be(indexes):
    prof = error_profile(indexes["RMI"])
    assert prof.worst.stop <= prof.widest.start or prof.widest.stop <= prof.worst.start
    assert abs(prof.worst.error) == prof.max_error


def test_log_key_rule_is_the_datasets_rule():
    datasets_plot = pytest.importorskip("datasets.plot")
    rng = np.random.default_rng(3)
    sets = [np.unique(np.floor(1e9 * rng.lognormal(0, 2, 20_000)).astype(np.uint64)),
            np.unique(rng.integers(1, 2**63, 20_000, dtype=np.uint64)),
            np.arange(10**12, 10**12 + 5000, dtype=np.int64), np.arange(-50, 5000, dtype=np.int64),
            np.array([1.0, 2.0, np.inf])]
    assert [log_keys(k) for k in sets] == [datasets_plot.log_keys(k) for k in sets[:4]] + [False]
    assert log_keys(sets[0]) and not log_keys(sets[1])


def test_what_cannot_be_explained_says_why(tmp_path):
    with pytest.raises(TypeError, match=r"RMI, PGM or RadixSpline, got DynamicRMI .*learnedidx.RMI\(idx.keys\)"):
        error_profile(DynamicRMI(np.arange(10)))

    class Sorted(KeyValueIndex):
        def _search_array(self, queries, mode):
            return np.searchsorted(self._keys, queries, side="left" if mode == learnedidx.LEFT else "right")

        def size_in_bytes(self):
            return 0

    with pytest.raises(TypeError, match="got Sorted"):
        error_profile(Sorted(np.arange(10)))
    with pytest.raises(ValueError, match="at least one key; PGM is empty"):
        error_profile(PGM(np.array([], dtype=np.int64)))
    with pytest.raises(ValueError, match="sample and bins must be at least 1"):
        error_profile(PGM(np.arange(10)), sample=0)


# --- the pictures ------------------------------------------------------------------------------


def png_size(path: Path) -> tuple[int, int]:
    """Width and height from a PNG's header; AssertionError when it is not a PNG."""
    head = path.read_bytes()[:24]
    assert head[:8] == b"\x89PNG\r\n\x1a\n" and head[12:16] == b"IHDR", path
    return struct.unpack(">II", head[16:24])


def assert_pictures(paths, folder: Path) -> None:
    from matplotlib.image import imread

    assert paths == [folder / name for name in FILES]
    for path in paths:
        width, height = png_size(path)
        assert 800 <= width <= 2000 and 400 <= height <= 1000, (path.name, width, height)
        pixels = imread(path)
        assert pixels.shape[:2] == (height, width) and pixels.std() > 0.05, path.name  # not blank


@pytest.fixture
def figures(monkeypatch) -> list:
    """The figures explain saves, in order."""
    from matplotlib.figure import Figure

    saved = []
    original = Figure.savefig
    monkeypatch.setattr(Figure, "savefig", lambda self, *a, **k: (saved.append(self), original(self, *a, **k))[1])
    return saved


@needs_matplotlib
@pytest.mark.parametrize("family", ["RMI", "PGM", "RadixSpline"])
def test_pictures_of_every_learned_index(indexes, family, tmp_path, figures):
    idx = indexes[family]
    assert_pictures(explain(idx, tmp_path / "new" / "folder", name="lognormal_20K"), tmp_path / "new" / "folder")
    assert len(figures) == 3
    for fig in figures:
        title = fig.get_suptitle()
        assert f"lognormal_20K: {type(idx).__name__} over {len(idx.keys):,} uint64 keys" in title
        assert f"index {EXPLAIN._size(idx.size_in_bytes())}" in title
        for ax in fig.axes:  # a panel without an x label shares the one of the panel below it
            assert ax.get_ylabel() and ax.get_title(), (title, ax)
            assert ax.get_xlabel() or ax.get_shared_x_axes().joined(ax, fig.axes[-1]), (title, ax)
    cdf, windows, histogram = figures
    prof = error_profile(idx)
    assert cdf.axes[0].get_xscale() == "log"  # lognormal keys
    assert f"{prof.worst.error:+,} positions" in cdf.axes[1].get_title()
    assert windows.axes[1].get_xscale() == "log"
    marks = [t.get_text() for t in histogram.axes[0].texts]
    assert (marks == [f"p50 = p99 = {prof.p50:,.4g}"] if prof.p50 == prof.p99 else
            marks == [f"p50 = {prof.p50:,.4g}", f"p99 = {prof.p99:,.4g}"])


@needs_matplotlib
def test_scales_follow_the_data(tmp_path, figures):
    uniform = np.unique(np.random.default_rng(5).integers(1, 2**63, 20_000, dtype=np.uint64))
    explain(RMI(uniform), tmp_path)
    cdf, windows, histogram = figures
    assert cdf.axes[0].get_xscale() == "linear" and windows.axes[1].get_xscale() == "linear"
    # An RMI of lines only over stepped keys: windows over decades, so log windows and log bins.
    steps = np.unique(np.concatenate([np.arange(0, 10**6, 100), np.arange(5 * 10**5, 5 * 10**5 + 20_000)]))
    figures.clear()
    explain(RMI(steps, max_window=None, keys_per_leaf=4096), tmp_path)
    _, windows, histogram = figures
    assert windows.axes[0].get_yscale() == "log" and histogram.axes[0].get_xscale() == "log"


@needs_matplotlib
@pytest.mark.parametrize("keys", [np.array([5], dtype=np.uint64), np.full(1000, 3, dtype=np.int64),
                                  np.array([-np.inf, -1.5, 0.0, 2.5, np.inf] * 4), np.arange(-5000, 5000, 3)],
                         ids=["one key", "one value", "infinities", "negative"])
def test_small_and_odd_key_sets_get_pictures(keys, tmp_path):
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no division by zero, no NaN arithmetic, no empty slices
        warnings.simplefilter("ignore", CompileWarning)  # a cold Numba cache is not the picture's fault
        assert_pictures(explain(PGM(keys), tmp_path), tmp_path)


@needs_matplotlib
def test_only_infinite_keys_cannot_be_drawn(tmp_path):
    with pytest.raises(ValueError, match="every key is infinite"):
        explain(PGM(np.array([-np.inf, np.inf])), tmp_path)


def test_missing_matplotlib_names_the_extra(indexes, tmp_path, monkeypatch):
    for name in [m for m in sys.modules if m == "matplotlib" or m.startswith("matplotlib.")] + ["matplotlib"]:
        monkeypatch.setitem(sys.modules, name, None)  # an import of any of them now fails
    with pytest.raises(ModuleNotFoundError, match=r'pip install "learnedidx\[explain\]"'):
        explain(indexes["PGM"], tmp_path)
    assert not list(tmp_path.iterdir())


def test_importing_learnedidx_imports_no_matplotlib():
    code = "import sys, learnedidx; from learnedidx.explain import error_profile; " \
           "print('matplotlib' in sys.modules, learnedidx.explain.__name__)"
    done = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120,
                          env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert done.stdout.split() == ["False", "explain"], done.stderr  # still the function, not the module


# --- the command line ----------------------------------------------------------------------------


def cli(*args: str, tmp_path: Path, code: str | None = None) -> subprocess.CompletedProcess:
    """``python -m learnedidx ARGS`` (or ``code`` running the same main) in a subprocess."""
    env = {**os.environ, "PYTHONPATH": str(ROOT), "LEARNEDIDX_DATA_DIR": str(tmp_path / "cache")}
    command = ["-c", code, *args] if code else ["-m", "learnedidx", *args]
    return subprocess.run([sys.executable, *command], cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)


@needs_matplotlib
def test_cli_explains_a_saved_index(indexes, tmp_path):
    indexes["RMI"].save(tmp_path / "keys.lidx")
    done = cli("explain", str(tmp_path / "keys.lidx"), "--out", str(tmp_path / "pics"), tmp_path=tmp_path)
    assert done.returncode == 0, done.stderr
    paths = [Path(line) for line in done.stdout.splitlines()]
    assert_pictures(paths, tmp_path / "pics")


@needs_matplotlib
def test_cli_builds_the_index_asked_for_over_a_key_file(keys, tmp_path):
    from datasets import write_sosd

    path = write_sosd(tmp_path / "lognormal_keys_uint64", keys)
    done = cli("explain", str(path), "--out", str(tmp_path / "pics"), "--index", "RadixSpline", "--sample", "5000",
               tmp_path=tmp_path)
    assert done.returncode == 0, done.stderr
    assert_pictures([Path(line) for line in done.stdout.splitlines()], tmp_path / "pics")


BAD = [
    (["lognormel"], ["unknown dataset 'lognormel'", "did you mean 'lognormal'?"]),
    (["{saved}", "--index", "PGM"], ["--index: for building an index over a key set", "is a saved index"]),
    (["lognormal", "--n", "1.5"], ["--n: '1.5' is not a whole number"]),
    (["lognormal", "--index", "BTree"], ["argument --index: invalid choice: 'BTree'"]),
    (["lognormal", "--index", "PGM", "--stages", "linear"], ["--stages: the RMI's stage models; PGM has none"]),
    (["{dynamic}"], ["RMI, PGM or RadixSpline, got DynamicRMI"]),
]


@pytest.mark.parametrize("args, expected", BAD, ids=[" ".join(a) for a, _ in BAD])
def test_cli_bad_input_is_one_line_and_exit_status_2(args, expected, tmp_path):
    if "{saved}" in args or "{dynamic}" in args:
        (PGM if "{saved}" in args else DynamicRMI)(np.arange(100)).save(tmp_path / "saved.lidx")
    args = [str(tmp_path / "saved.lidx") if a in ("{saved}", "{dynamic}") else a for a in args]
    done = cli("explain", *args, "--out", str(tmp_path / "pics"), tmp_path=tmp_path)
    lines = done.stderr.strip().splitlines()
    assert done.returncode == 2 and len(lines) == 1 and "Traceback" not in done.stderr, done.stderr
    assert lines[0].startswith("python -m learnedidx") and ": error: " in lines[0]
    assert all(part in lines[0] for part in expected), lines[0]
    assert done.stdout == "" and not (tmp_path / "pics").exists()


def test_cli_without_matplotlib_names_the_extra_before_building(tmp_path):
    code = ("import sys; sys.modules['matplotlib'] = None; from learnedidx.cli import main; "
            "sys.exit(main(sys.argv[1:]))")
    done = cli("explain", "lognormal", "--out", str(tmp_path / "pics"), tmp_path=tmp_path, code=code)
    assert done.returncode == 2, done.stderr
    assert done.stderr.strip() == ('python -m learnedidx: error: learnedidx.explain draws with matplotlib: '
                                   'pip install "learnedidx[explain]"')
    assert not (tmp_path / "cache").exists()  # failed before generating the keys
