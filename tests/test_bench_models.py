"""``python -m bench.models``: a row per (data set, root), figures that agree with the index
itself, a root that cannot be built skipped with a note, and one-line errors."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import datasets
from bench.models import RootRow, main, table
from learnedidx import RMI

REPO = Path(__file__).resolve().parent.parent
TINY = ["--sizes", "20K", "--lookups", "5000", "--repeats", "2", "--depths", "2"]


def _run(tmp_path, *args) -> tuple[dict, str]:
    """main() on tiny sets; returns (models.json, models.md) after checking the exit status."""
    assert main([*TINY, "--out", str(tmp_path), *args]) == 0
    return json.loads((tmp_path / "models.json").read_text()), (tmp_path / "models.md").read_text()


def _table_roots(markdown: str, dataset: str) -> list[str]:
    """The roots of the rows of ``dataset``'s table, in order."""
    section = markdown.split(f"### {dataset}:", 1)[1].split("###", 1)[0]
    rows = [line for line in section.splitlines() if line.startswith("| ")][2:]  # past header and rule
    return [line.split("|")[1].strip() for line in rows]


def test_a_row_per_set_and_root_agreeing_with_the_index(tmp_path, capsys):
    report, markdown = _run(tmp_path, "--datasets", "lognormal", "uniform_sparse", "--roots", "linear", "cubic")
    rows = report["results"]
    names = ("lognormal_20K_uint64", "uniform_sparse_20K_uint64")
    assert [(r["dataset"], r["root"]) for r in rows] == [(d, root) for d in names for root in ("linear", "cubic")]
    printed = capsys.readouterr().out
    for name in names:
        assert _table_roots(markdown, name) == ["linear", "cubic"]
        assert _table_roots(printed, name) == ["linear", "cubic"]  # the same tables, printed as they come
    for r in rows:
        assert r["note"] == "" and r["batch_ns"] > 0 and r["loop_ns"] > 0 and r["runs"] == 2, r
        assert len(r["build_s"]) == 1 and r["build_s"][0] > 0 and r["warmup_s"] >= 0, r
    assert report["machine"]["numba"] and report["settings"]["roots"] == ["linear", "cubic"]

    # The same index, built here: the bench's figures are its own.
    row = rows[0]
    keys = datasets.generate("lognormal", 20_000, 42)
    idx = RMI(keys, stages=("linear", "linear"))
    pos, lo, hi = idx.predict(keys)  # 20K keys: the bench's window sample is every key
    error = np.abs(np.searchsorted(keys, keys) - pos)
    assert row["avg_log2_error"] == pytest.approx(np.mean(np.log2(error + 1.0)), rel=1e-9)
    assert row["max_error"] == error.max()
    assert row["p99_window"] == np.percentile(hi - lo, 99)
    assert row["index_bytes"] == idx.size_in_bytes()
    assert row["models"] == [1, idx.model_counts[-1]]


def test_the_best_value_of_each_column_is_bold():
    rows = [RootRow("s", 10, "linear,linear", "linear", avg_log2_error=2.0, index_bytes=100, build_s=[0.5, 0.2]),
            RootRow("s", 10, "cubic,linear", "cubic", avg_log2_error=1.0, index_bytes=100, build_s=[0.3]),
            RootRow("s", 10, "mlp,linear", "mlp", note="skipped: no torch")]
    lines = table(rows).splitlines()
    linear, cubic, mlp = (line.split("|")[1:-1] for line in lines[2:5])
    assert cubic[1].strip() == "**1.00**" and linear[1].strip() == "2.00"
    assert linear[6].strip() == "**0.5 / 0.2**" and cubic[6].strip() == "0.3"  # the fastest of the builds
    assert linear[5].strip() == cubic[5].strip() == "100 B"  # a tie of every row: nothing marked
    assert all(cell.strip() == "-" for cell in mlp[1:])
    assert lines[-1] == "- mlp: skipped: no torch"


def test_mlp_root(tmp_path):
    pytest.importorskip("torch")
    report, markdown = _run(tmp_path, "--datasets", "lognormal", "--roots", "linear", "mlp", "--mlp-hidden", "8",
                            "--repeat-build", "2")
    mlp = report["results"][1]
    assert mlp["root"] == "mlp" and mlp["note"] == "" and mlp["batch_ns"] > 0 and mlp["avg_log2_error"] >= 0
    assert len(mlp["build_s"]) == 2 and report["settings"]["mlp_hidden"] == [8]
    assert _table_roots(markdown, "lognormal_20K_uint64") == ["linear", "mlp"]


def test_a_root_that_cannot_be_built_is_skipped_with_a_note(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "torch", None)  # import torch now raises ImportError
    report, markdown = _run(tmp_path, "--datasets", "uniform_sparse", "--roots", "mlp", "linear")
    mlp, linear = report["results"]
    assert mlp["note"].startswith("skipped:") and "torch" in mlp["note"] and mlp["batch_ns"] is None
    assert linear["note"] == "" and linear["batch_ns"] > 0
    assert "- mlp: skipped:" in markdown


def test_unknown_root_exits_2_with_one_line():
    env = dict(os.environ, PYTHONPATH=str(REPO))
    out = subprocess.run([sys.executable, "-m", "bench.models", "--roots", "lineer"], cwd=REPO, env=env,
                         capture_output=True, text=True, timeout=120)
    assert out.returncode == 2 and out.stdout == ""
    assert out.stderr.count("\n") == 1 and "invalid choice 'lineer'; did you mean 'linear'?" in out.stderr


@pytest.mark.parametrize("args, says", [
    (["--sizes", "10Q"], "'10Q' is not a count"),
    (["--datasets", "lognormel"], "did you mean 'lognormal'?"),
    (["--depths", "1"], "from 2 to 4"),
    (["--mlp-hidden", "99"], "mlp_hidden must be"),
    (["--max-window", "0"], "or none"),
])
def test_bad_input_exits_2_with_one_line(args, says, capsys):
    with pytest.raises(SystemExit) as exit_:
        main(args)
    err = capsys.readouterr().err
    assert exit_.value.code == 2 and err.count("\n") == 1 and says in err, err
