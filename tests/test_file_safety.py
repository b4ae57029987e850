"""Files that change under a live map, checksummed files with inconsistent content, crafted
headers and temporary files left by killed saves (issue 20, section 2)."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import numpy as np
import pytest

import baselines  # noqa: F401  (registers the baselines' file types)
from baselines import BTree
from learnedidx import PGM, RMI, DynamicRMI, IndexFileError, RadixSpline, load
from learnedidx import persist


def _keys():
    rng = np.random.default_rng(3)
    return np.unique(rng.lognormal(0, 2, 5000) * 1e9).astype(np.uint64)


def _dynamic(keys):
    idx = DynamicRMI(keys[::2], values=np.arange(len(keys[::2])), merge_min=1 << 30)
    idx.update(keys[1::2][:500], np.arange(500))
    idx.delete(keys[::2][:100])
    return idx


FACTORIES = {
    "RMI": lambda k: RMI(k),
    "RMI hybrid": lambda k: RMI(k, keys_per_leaf=512, max_window=8),
    "PGM": lambda k: PGM(k, epsilon=4),
    "RadixSpline": lambda k: RadixSpline(k, epsilon=4),
    "BTree": lambda k: BTree(k),
    "DynamicRMI": _dynamic,
}


def _sections(path):
    """``{name: (offset, nbytes)}`` of a saved file's sections, from its header."""
    with open(path, "rb") as f:
        data = f.read()
    length = int.from_bytes(data[12:16], "little")
    header = json.loads(data[24:24 + length])
    return {s["name"]: (s["offset"], s["nbytes"]) for s in header["sections"]}


@pytest.mark.parametrize("name", sorted(FACTORIES))
def test_structure_overwritten_under_a_live_map(tmp_path, name):
    """Garbage written in place over every section but the keys and values of a mapped file
    changes no answer: the structure was copied out of the mapping at load."""
    keys = _keys()
    idx = FACTORIES[name](keys)
    path = tmp_path / "idx.lidx"
    idx.save(path)
    loaded = load(path, mmap=True)
    queries = np.concatenate([keys[::7], keys[::11] + np.uint64(1), np.array([0, 2**64 - 1], dtype=np.uint64)])
    expected = idx.lower_bound(queries)
    rng = np.random.default_rng(5)
    with open(path, "r+b") as f:
        for section, (offset, nbytes) in _sections(path).items():
            if section not in ("keys", "values") and nbytes:
                f.seek(offset)
                f.write(rng.integers(0, 256, nbytes, dtype=np.uint8).tobytes())
    np.testing.assert_array_equal(loaded.lower_bound(queries), expected)
    assert [loaded.lower_bound(int(q)) for q in queries[:50]] == expected[:50].tolist()


def _save_state(idx, path, config=None, arrays=None):
    """Save ``idx`` with its ``_state()`` changed: valid checksums over inconsistent content."""
    real_config, real_arrays = type(idx)._state(idx)
    idx._state = lambda: ({**real_config, **(config or {})}, {**real_arrays, **(arrays or {})})
    try:
        persist.save(idx, path)
    finally:
        del idx._state


def test_unsorted_keys_fail_verify(tmp_path):
    keys = _keys()
    idx = RMI(keys)
    bad = keys.copy()
    bad[10], bad[11] = bad[11], bad[10]
    path = tmp_path / "unsorted.lidx"
    _save_state(idx, path, arrays={"keys": bad})
    with pytest.raises(IndexFileError, match="sorted"):
        load(path, verify=True)
    load(path, verify=False)  # the checksums hold: only the invariants tell


def test_dynamic_delta_repeating_main_fails_verify(tmp_path):
    keys = _keys()
    idx = _dynamic(keys)
    config, arrays = idx._state()
    main = arrays["keys"]
    delta = np.sort(np.concatenate([arrays["delta_keys"], main[5:6]]))
    values = np.zeros(len(delta), dtype=arrays["delta_values"].dtype)
    path = tmp_path / "overlap.lidx"
    _save_state(idx, path, arrays={"delta_keys": delta, "delta_values": values})
    with pytest.raises(IndexFileError, match="also in main"):
        load(path, verify=True)


def test_huge_chunk_size_is_a_file_error(tmp_path):
    idx = _dynamic(_keys())
    config, _ = idx._state()
    options = dict(config["options"], chunk_size=2**33)
    path = tmp_path / "chunk.lidx"
    _save_state(idx, path, config={"options": options})
    for verify in (False, True):
        with pytest.raises(IndexFileError, match="chunk_size"):
            load(path, verify=verify)


def test_stale_temporary_files_removed_on_next_save(tmp_path):
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True,
                          text=True, check=True)
    dead_pid = int(dead.stdout)
    path = tmp_path / "idx.lidx"
    stale = tmp_path / f".idx.lidx.{dead_pid}.0123abcd.tmp"
    live = tmp_path / f".idx.lidx.{os.getppid()}.0123abcd.tmp"  # a running process: kept
    other = tmp_path / f".other.lidx.{dead_pid}.0123abcd.tmp"  # another target's: kept
    for f in (stale, live, other):
        f.write_bytes(b"x" * 100)
    RMI(_keys()).save(path)
    assert not stale.exists()
    assert live.exists() and other.exists()
    assert load(path).lower_bound(0) == 0
