"""The pictures: bench's Pareto plot (labels, 0 B, legend, axes, re-drawing) and the datasets CDF plot."""

from __future__ import annotations

import csv
from itertools import combinations

import numpy as np
import pytest

pytest.importorskip("matplotlib")

from matplotlib.backends.backend_agg import FigureCanvasAgg  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402
from matplotlib.text import Text  # noqa: E402

from bench.harness import Result  # noqa: E402
from bench.report import _pareto_figure, main, pareto_plot  # noqa: E402
from datasets.plot import log_keys, plot_cdf, zoom_window  # noqa: E402


def _result(dataset: str, index: str, size: int, ns: float, family: str = "learned") -> Result:
    return Result(dataset=dataset, index=index, family=family, variant="", n_keys=1000, key_bytes=8000,
                  index_bytes=size, key_copy_bytes=0, batch_ns=ns)


def _crowded(seed: int = 7) -> list[Result]:
    """Ten indexes packed within a factor 1.3 in size and time, plus two 0 B ones and an outlier."""
    rng = np.random.default_rng(seed)
    rows = [_result("crowded", f"RMI-variant-{i}", int(40_000 * rng.uniform(1, 1.3)), 30 * rng.uniform(1, 1.3))
            for i in range(10)]
    return rows + [_result("crowded", "BinarySearch", 0, 20, "classic"),
                   _result("crowded", "NumpySearchsorted", 0, 300, "classic"),
                   _result("crowded", "SortedDictIndex", 9_000_000, 3000, "python")]


def _label_boxes(ax, renderer):
    """Display boxes of the texts of the point labels (their leader lines left out), as last drawn."""
    return [Text.get_window_extent(t, renderer) for t in ax.texts if t.get_gid() == "pareto-label"]


def _overlapping(boxes) -> list:
    return [(a, b) for a, b in combinations(boxes, 2) if a.overlaps(b)]


def test_pareto_labels_do_not_overlap_in_a_crowded_panel():
    fig = _pareto_figure(_crowded())
    fig.canvas.draw()
    renderer = fig.canvas.get_renderer()
    ax = fig.axes[0]
    boxes = _label_boxes(ax, renderer)
    assert len(boxes) == 13
    assert not _overlapping(boxes)
    frame = ax.get_window_extent(renderer)
    assert all(frame.x0 <= b.x0 and b.x1 <= frame.x1 and frame.y0 <= b.y0 and b.y1 <= frame.y1 for b in boxes)
    # The old placement (every label 3 points up and right of its point) collides on the same panel.
    naive = Figure(figsize=fig.get_size_inches(), dpi=fig.dpi)
    FigureCanvasAgg(naive)
    nax = naive.add_axes(ax.get_position())
    nax.set(xscale=ax.get_xscale(), yscale=ax.get_yscale(), xlim=ax.get_xlim(), ylim=ax.get_ylim())
    for r in _crowded():
        nax.annotate(r.index, (max(r.total_bytes, 1), r.batch_ns), xytext=(3, 3), textcoords="offset points",
                     fontsize=7, gid="pareto-label")
    naive.canvas.draw()
    assert _overlapping(_label_boxes(nax, naive.canvas.get_renderer()))


def test_pareto_zero_bytes_get_their_own_tick_left_of_real_sizes():
    fig = _pareto_figure(_crowded())
    ax = fig.axes[0]
    ticks = dict(zip((t.get_text() for t in ax.get_xticklabels()), ax.get_xticks()))
    assert "0 B" in ticks  # the old plot put 0 B silently at x = 1 (labelled 10^0)
    xs = ax.collections[0].get_offsets()[:, 0]
    assert sorted(xs)[:2] == [ticks["0 B"]] * 2
    assert ticks["0 B"] < min(x for x in xs if x != ticks["0 B"]) / 10
    assert "10 kB" in ticks and "1 MB" in ticks  # byte units, not powers of ten


def test_pareto_legend_and_better_arrow_sit_outside_every_panel():
    rows = [_result(f"set{d}", name, size, ns) for d in range(4)
            for name, size, ns in (("A", 1000, 50), ("B", 100_000, 20), ("C", 10_000_000, 900))]
    fig = _pareto_figure(rows)
    renderer = fig.canvas.get_renderer()
    panels = [ax.get_window_extent(renderer) for ax in fig.axes if ax.get_title()]
    assert len(panels) == 4
    legend = fig.legends[0].get_window_extent(renderer)
    assert not any(legend.overlaps(p) for p in panels)  # the old legend sat on the top-right panel
    better = [t for ax in fig.axes for t in ax.texts if "better" in t.get_text()]
    assert better and not any(better[0].get_window_extent(renderer).overlaps(p) for p in panels)


def test_pareto_axes_are_log_only_where_the_data_spans_a_decade():
    rows = [_result("narrow", n, s, ns) for n, s, ns in (("A", 1000, 50), ("B", 100_000, 60), ("C", 10**7, 70))]
    ax = _pareto_figure(rows).axes[0]
    assert ax.get_xscale() == "log"
    assert ax.get_yscale() == "linear"  # 50..70 ns: the old plot forced log here too
    assert ax.get_ylim()[0] == 0


def test_pareto_plot_redraws_from_a_results_csv(tmp_path, capsys):
    rows = [r.as_dict() for r in _crowded()]
    results = tmp_path / "results.csv"
    with open(results, "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    assert main([str(results)]) == 0
    png = tmp_path / "pareto.png"
    assert capsys.readouterr().out.strip() == str(png)
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    with pytest.raises(SystemExit) as exc:
        main([str(tmp_path / "missing.json")])
    assert exc.value.code == 2
    assert "missing.json" in capsys.readouterr().err
    assert pareto_plot([_result("x", "A", None, 10)], tmp_path / "none.png") is None


def _long_runs() -> np.ndarray:
    """Distinct keys, then one key repeated 50,000 times across the middle, then distinct keys again."""
    return np.concatenate([np.arange(5000), np.full(50_000, 5000), np.arange(5001, 10_000)]).astype(np.uint64)


def test_zoom_window_leaves_a_run_of_duplicates():
    keys = _long_runs()
    old = len(keys) // 2 - 500  # the old window: centred on position 0.5, inside the run
    assert np.unique(keys[old : old + 1000]).size == 1
    lo = zoom_window(keys, 1000, 0.5)
    assert np.unique(keys[lo : lo + 1000]).size >= 500
    # The nearest such window to the middle: 499 keys before the run and the run's first key.
    assert lo == 4501
    uniform = np.arange(10_000, dtype=np.uint64)
    assert zoom_window(uniform, 1000, 0.5) == 4999 - 500  # distinct everywhere: the requested position


def _saved_figure(monkeypatch, keys, tmp_path) -> Figure:
    saved = []
    original = Figure.savefig
    monkeypatch.setattr(Figure, "savefig", lambda self, *a, **k: (saved.append(self), original(self, *a, **k))[1])
    plot_cdf(keys, tmp_path / "cdf.png")
    return saved[0]


def test_cdf_key_axis_is_log_for_lognormal_keys_only(monkeypatch, tmp_path):
    rng = np.random.default_rng(3)
    lognormal = np.unique(np.floor(1e9 * rng.lognormal(0, 2, 20_000)).astype(np.uint64))
    uniform = np.unique(rng.integers(1, 2**63, 20_000, dtype=np.uint64))  # spans 10**5x but is even
    assert log_keys(lognormal) and not log_keys(uniform)
    assert _saved_figure(monkeypatch, lognormal, tmp_path).axes[0].get_xscale() == "log"
    assert _saved_figure(monkeypatch, uniform, tmp_path).axes[0].get_xscale() == "linear"


def test_cdf_zoom_panel_shows_many_distinct_keys(monkeypatch, tmp_path):
    fig = _saved_figure(monkeypatch, _long_runs(), tmp_path)
    assert "(500 distinct keys)" in fig.axes[1].get_title()
