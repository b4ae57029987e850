"""The first-use notice (one CompileWarning per key dtype, never on a warm cache) and the
warm-up command that compiles ahead of time."""

from __future__ import annotations

import os
import subprocess
import sys
import warnings
from pathlib import Path

import numpy as np
import pytest

import learnedidx

ROOT = Path(__file__).resolve().parents[1]

# Compiles one small kernel for two dtypes (one of them inside quiet()), each twice.
NOTICE_SCRIPT = """
import numpy as np
from learnedidx import _compile_notice
from learnedidx._sorted import is_sorted
with _compile_notice.quiet():
    is_sorted(np.arange(5, dtype=np.int16))
is_sorted(np.arange(5, dtype=np.uint16))
is_sorted(np.arange(5, dtype=np.uint16)[::-1].copy())
is_sorted(np.arange(5, dtype=np.int16))
"""


def _python(code_or_args, cache: Path) -> subprocess.CompletedProcess:
    args = ["-c", code_or_args] if isinstance(code_or_args, str) else code_or_args
    env = dict(os.environ, NUMBA_CACHE_DIR=str(cache), PYTHONPATH=str(ROOT))
    return subprocess.run([sys.executable, *args], cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)


def test_compiling_warns_once_per_dtype_and_never_from_the_cache(tmp_path):
    cold = _python(NOTICE_SCRIPT, tmp_path)
    assert cold.returncode == 0, cold.stderr
    notices = [line for line in cold.stderr.splitlines() if "CompileWarning" in line]
    # uint16 once, though it compiled twice; int16 compiled inside quiet() only.
    assert len(notices) == 1, cold.stderr
    assert "uint16 keys" in notices[0] and "python -m learnedidx warmup uint16" in notices[0]
    assert notices[0].startswith("<string>:7:"), "the warning points at the caller's line"
    warm = _python(NOTICE_SCRIPT, tmp_path)
    assert warm.returncode == 0 and "CompileWarning" not in warm.stderr, warm.stderr


@pytest.mark.parametrize("argv, message", [
    (["warmup", "uint46"], "unknown key dtype 'uint46' (did you mean 'uint64'?)"),
    (["warmup", "--indexes", "RMI,pgm"], "unknown index 'pgm' (did you mean 'PGM'?)"),
    (["warmp"], "invalid choice: 'warmp'"),
])
def test_warmup_command_rejects_bad_names_in_one_line(tmp_path, argv, message):
    done = _python(["-m", "learnedidx", *argv], tmp_path)
    assert done.returncode == 2
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in done.stderr, done.stderr
    assert lines[0].startswith("python -m learnedidx: error: ") and message in lines[0]


def test_warmup_compiles_the_families_it_is_given():
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        lines = []
        seconds = learnedidx.warmup(["uint64", np.dtype("int64")], ["RadixSpline"], progress=lines.append)
    assert set(seconds) == {("RadixSpline", "uint64"), ("RadixSpline", "int64")}
    assert all(s >= 0 for s in seconds.values()) and len(lines) == 2 and lines[1].startswith("RadixSpline")
    assert not [w for w in caught if issubclass(w.category, learnedidx.CompileWarning)]


def test_warmup_function_names_what_is_unknown():
    with pytest.raises(ValueError, match=r"unknown index 'ALEX'; choose from RMI, PGM"):
        learnedidx.warmup(indexes=["ALEX"])
    with pytest.raises(ValueError, match=r"unknown key dtype 'float16'"):
        learnedidx.warmup(["float16"])
