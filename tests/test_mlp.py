"""The ``"mlp"`` root (a ReLU network trained with torch, evaluated in Numba): exact answers,
deterministic training, the kernel against a reference, and loading without torch."""

from __future__ import annotations

import subprocess
import sys
import textwrap

import numpy as np
import pytest

from learnedidx import RMI, DynamicRMI, RMIConfig, tune
from learnedidx import _rmi_kernels as K
from learnedidx.testing import check_conformance

torch = pytest.importorskip("torch")

# torch hidden from a child process: ``import torch`` then raises ImportError.
HIDE_TORCH = "import sys; sys.modules['torch'] = None\n"


def _lognormal(n, seed):
    rng = np.random.default_rng(seed)
    return np.unique((rng.lognormal(0, 2, n) * 1e9).astype(np.uint64))


def _reference_output(record, t):
    """The network of an MLP record written out in numpy: the layout of mlp_output."""
    h1, h2 = int(record[2]), int(record[3])
    p1, p2 = (-(-h // K.MLP_LANES) * K.MLP_LANES for h in (h1, h2))
    w = record[K.MLP_HEADER:]
    w1, b1, rest = w[:p1], w[p1:2 * p1], w[2 * p1:]
    units = np.maximum(np.outer(t, w1) + b1, 0.0)
    if h2:
        w2, b2, rest = rest[:p1 * p2].reshape(p1, p2), rest[p1 * p2:p1 * p2 + p2], rest[p1 * p2 + p2:]
        units = np.maximum(units @ w2 + b2, 0.0)
    return units @ rest[:-1] + rest[-1]


@pytest.mark.parametrize("hidden", [(1,), (5,), (32,), (3, 1), (4, 9), (32, 32)])
def test_kernel_matches_the_network_written_in_numpy(hidden):
    rng = np.random.default_rng(len(hidden) * 100 + hidden[0])
    record = rng.normal(size=K.mlp_width(hidden))
    record[2:4] = (hidden + (0,))[:2]
    t = np.concatenate([rng.random(200), [0.0, 1.0, -3.0, 7.5]])
    got = np.array([K.mlp_output(record, 0, x) for x in t])
    np.testing.assert_allclose(got, _reference_output(record, t), rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("options", [dict(stages=("mlp", "linear"), mlp_hidden=(6,)),
                                     dict(stages=("mlp", "linear", "linear"), mlp_hidden=(3, 5), max_window=4)],
                         ids=["one-layer", "two-layer-hybrid"])
def test_conformance(options):
    check_conformance(lambda keys, values: RMI(keys, values, **options), max_examples=20)


def test_exact_on_hard_key_sets():
    """Every present key lies in its window; every query answers as np.searchsorted."""
    rng = np.random.default_rng(4)
    sets = {
        "lognormal": _lognormal(30_000, 1),
        "steps": np.repeat(np.arange(50, dtype=np.int64) * 10**15, rng.integers(1, 400, 50)),
        "int64_extremes": np.sort(np.concatenate([rng.integers(-(2**63), 2**63 - 1, 5000, endpoint=True),
                                                  [-(2**63), 2**63 - 1]])).astype(np.int64),
        "floats_with_infinities": np.sort(np.concatenate([rng.normal(0, 1e6, 5000), [-np.inf, np.inf, np.inf]])),
    }
    for name, keys in sets.items():
        for hidden in ((8,), (8, 8)):
            idx = RMI(keys, stages=("mlp", "linear", "linear"), mlp_hidden=hidden)
            idx._check()
            queries = np.concatenate([keys, rng.choice(keys, 2000) + keys.dtype.type(1)])
            assert np.array_equal(idx.lower_bound(queries), np.searchsorted(keys, queries)), name
            assert np.array_equal(idx.upper_bound(queries), np.searchsorted(keys, queries, "right")), name


def test_the_network_learns_the_cdf():
    """The exported weights are the trained network's: on lognormal keys the MLP root's
    windows are far smaller than a line's and a cubic's, as a wrong export's would not be."""
    keys = _lognormal(200_000, 2)
    errors = {root: RMI(keys, stages=(root, "linear"), branching_factor=1024).avg_log2_error
              for root in ("linear", "cubic", "mlp")}
    assert errors["mlp"] < errors["cubic"] - 1.0 < errors["linear"] - 1.0, errors


def test_training_improves_on_its_closed_form_start():
    """L-BFGS, not only the least-squares start, shapes the network: a lower squared error."""
    from learnedidx import _mlp_training as M
    from learnedidx.models import _normalized_sample

    keys = _lognormal(100_000, 3)
    idx, _, t, _ = _normalized_sample(keys, M.SAMPLE)
    y = idx / len(keys)
    for hidden in ((6,), (4, 4)):
        record = np.zeros(K.mlp_width(hidden))
        record[2:4] = (hidden + (0,))[:2]

        def mse(weights):
            record[K.MLP_HEADER:] = M.record_weights(weights, hidden, 1.0)
            return np.mean((_reference_output(record, t) - y) ** 2)

        assert mse(M.fit_mlp(t, y, hidden)) < 0.98 * mse(M._start(t, y, hidden)), hidden


def test_same_keys_give_the_same_index_byte_for_byte(tmp_path):
    """Builds in two processes (torch's default thread counts) and in this one give equal bytes."""
    script = textwrap.dedent("""
        import sys, numpy as np, learnedidx
        rng = np.random.default_rng(5)
        keys = np.unique((rng.lognormal(0, 2, 50_000) * 1e9).astype(np.uint64))
        idx = learnedidx.RMI(keys, stages=("mlp", "linear"), mlp_hidden=(8, 8))
        np.save(sys.argv[1], idx.arrays.params)
    """)
    runs = []
    for i in range(2):
        path = tmp_path / f"params{i}.npy"
        subprocess.run([sys.executable, "-c", script, str(path)], check=True)
        runs.append(np.load(path))
    keys = np.unique((np.random.default_rng(5).lognormal(0, 2, 50_000) * 1e9).astype(np.uint64))
    here = RMI(keys, stages=("mlp", "linear"), mlp_hidden=(8, 8))
    assert runs[0].tobytes() == runs[1].tobytes() == here.arrays.params.tobytes()


def test_saved_index_loads_and_answers_without_torch(tmp_path):
    keys = _lognormal(20_000, 6)
    path = tmp_path / "mlp.lidx"
    RMI(keys, stages=("mlp", "linear", "linear"), mlp_hidden=(8, 4)).save(path)
    queries = np.concatenate([keys[::7], keys[::7] + np.uint64(1)])
    np.save(tmp_path / "q.npy", queries)
    script = HIDE_TORCH + textwrap.dedent(f"""
        import numpy as np, learnedidx
        idx = learnedidx.load({str(path)!r}, verify=True)
        assert "torch" not in {{m for m in sys.modules if sys.modules[m] is not None}}
        q = np.load({str(tmp_path / "q.npy")!r})
        np.save({str(tmp_path / "a.npy")!r}, idx.lower_bound(q))
        print(idx.lower_bound(int(q[3])), idx.config.stages)
    """)
    out = subprocess.run([sys.executable, "-c", script], check=True, capture_output=True, text=True).stdout
    assert np.array_equal(np.load(tmp_path / "a.npy"), np.searchsorted(keys, queries))
    assert "('mlp', 'linear', 'linear')" in out


def test_training_without_torch_names_the_extra():
    script = HIDE_TORCH + textwrap.dedent("""
        import numpy as np, learnedidx
        try:
            learnedidx.RMI(np.arange(100, dtype=np.uint64), stages=("mlp", "linear"))
        except ImportError as e:
            print(e)
    """)
    out = subprocess.run([sys.executable, "-c", script], check=True, capture_output=True, text=True).stdout
    assert 'pip install "learnedidx[torch]"' in out


def test_a_file_whose_layers_differ_from_its_config_is_refused(tmp_path):
    keys = _lognormal(5000, 7)
    idx = RMI(keys, stages=("mlp", "linear"), mlp_hidden=(8,))
    config, arrays = idx._state()
    params = arrays["params"].copy()
    params[2] = 31.0  # the kernel would read 31 units' weights past the record
    with pytest.raises(ValueError, match="MLP root's layers"):
        idx._restore(config, dict(arrays, params=params))
    config["options"]["mlp_hidden"] = [8, 8]
    with pytest.raises(ValueError, match="stage 0 record"):
        idx._restore(config, arrays)


@pytest.mark.parametrize("hidden", [(), (0,), (33,), (8, 8, 8), (True,), ("8",), 2.5])
def test_bad_mlp_hidden(hidden):
    with pytest.raises(ValueError, match="mlp_hidden"):
        RMIConfig(stages=("mlp", "linear"), mlp_hidden=hidden)


def test_mlp_is_a_root_only():
    with pytest.raises(ValueError, match="can only be the root"):
        RMIConfig(stages=("linear", "mlp"))


def test_a_dynamic_index_retrains_its_mlp_root_on_merge():
    keys = _lognormal(50_000, 8)
    idx = DynamicRMI(keys, stages=("mlp", "linear"), mlp_hidden=(8,))
    new = np.random.default_rng(8).integers(0, 10**12, 20_000).astype(np.uint64)
    idx.update(new, np.arange(len(new)))
    idx.merge()
    idx._check()
    every = np.unique(np.concatenate([keys, new]))
    queries = np.concatenate([every[::3], every[::3] + np.uint64(1)])
    assert np.array_equal(idx.lower_bound(queries), np.searchsorted(every, queries))


def test_the_tuner_tries_mlp_roots_where_torch_is(monkeypatch):
    from learnedidx import tuning

    keys = _lognormal(30_000, 9)
    report = tune(keys, max_bytes=1 << 20, time_budget=120).tune_report
    mlp = [c for c in report.candidates if c.options.get("stages", ("",))[0] == "mlp"]
    assert len(mlp) == 2 and all(c.batch_ns > 0 and c.build_s > 0 for c in mlp), report
    monkeypatch.setattr(tuning, "_have_torch", lambda: False)
    assert not [o for _, o in tuning.candidates(len(keys)) if o.get("stages", ("",))[0] == "mlp"]
