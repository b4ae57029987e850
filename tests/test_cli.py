"""The repository's command lines: one count parser, and bad input as one line on stderr with exit status 2.

Each command runs in a subprocess as a user would start it; every case fails while its
arguments and data are checked, before any Numba kernel compiles.
"""

from __future__ import annotations

import argparse
import json
import os
import struct
import subprocess
import sys
from pathlib import Path

import numba
import pytest

from datasets import cli_args
from datasets.cli_args import count_type, parse_count, suggest, unknown

ROOT = Path(__file__).resolve().parent.parent
THREADS = numba.config.NUMBA_NUM_THREADS


# --------------------------------------------------------------------------- the count parser


@pytest.mark.parametrize("text, expected", [
    ("0", 0), ("1000", 1000), ("1_000_000", 1_000_000), ("1e6", 1_000_000), ("1E6", 1_000_000),
    ("1.5M", 1_500_000), ("200K", 200_000), ("200k", 200_000), ("2G", 2_000_000_000), ("1B", 1_000_000_000), ("1.5b", 1_500_000_000), (" 20M ", 20_000_000),
    ("2.5e3", 2500), ("0.5K", 500), (str(2**63 - 1), 2**63 - 1),
])
def test_count_parser_accepts(text, expected):
    value = parse_count(text)
    assert value == expected and type(value) is int


@pytest.mark.parametrize("text, problem", [
    ("-1", "at least 0"), ("-1K", "at least 0"), ("1.5", "not a whole number"), ("0.0005K", "not a whole number"),
    ("abc", "not a count"), ("", "not a count"), ("1e400", "too large"), (str(2**63), "too large"),
    ("nan", "not a count"), ("inf", "not a count"), ("1M5", "not a count"), ("K", "not a count"),
])
def test_count_parser_refuses_with_examples(text, problem):
    with pytest.raises(ValueError) as info:
        parse_count(text)
    message = str(info.value)
    assert problem in message and repr(text) in message and "1e6" in message and "200K" in message


def test_count_type_enforces_its_minimum_for_argparse():
    parse = count_type(1000)
    assert parse("1e3") == 1000
    with pytest.raises(argparse.ArgumentTypeError, match="at least 1000"):
        parse("999")
    assert cli_args.positive_count("1") == 1
    with pytest.raises(argparse.ArgumentTypeError, match="at least 1"):
        cli_args.positive_count("0")


def test_suggestions_name_the_closest_choice_only():
    assert suggest("lognormel", ["normal", "lognormal", "loguniform64"]) == ["lognormal"]
    assert suggest("rmi-fats", ["RMI", "RMI-fast", "RMI-compact"]) == ["RMI-fast"]  # case ignored, spelling kept
    assert suggest("zzz", ["RMI", "BTree"]) == []
    message = unknown("index", "btre", ["RMI", "BTree"])
    assert message == "unknown index 'btre'; did you mean 'BTree'? (choose from RMI, BTree)"
    assert unknown("dataset", "x", ["a"], hint="see the list") == "unknown dataset 'x' (see the list)"


def test_error_text_of_a_missing_file_says_how_to_get_one():
    exc = FileNotFoundError(2, "no such key file", "/nowhere/keys_uint64")
    text = cli_args.error_text(exc)
    assert text.startswith("/nowhere/keys_uint64: no such key file;") and "python -m datasets make" in text
    assert cli_args.error_text(KeyError("plain words")) == "plain words"
    assert cli_args.error_text(ValueError("two\nlines")) == "two lines"


# --------------------------------------------------------------------------- bad input, end to end


@pytest.fixture
def bad_files(tmp_path) -> Path:
    """A SOSD file whose header claims more keys than follow."""
    (tmp_path / "trunc_uint64").write_bytes(struct.pack("<Q", 10) + bytes(16))
    return tmp_path


CASES = [
    # (command, arguments, substrings of the one stderr line)
    ("bench", ["--datasets", "lognormel"], ["unknown dataset 'lognormel'", "did you mean 'lognormal'?"]),
    ("bench", ["--datasets", "{tmp}/missing_uint64"], ["{tmp}/missing_uint64", "python -m datasets make"]),
    ("bench", ["--datasets", "{tmp}/trunc_uint64"], ["{tmp}/trunc_uint64", "claims 10 uint64 keys", "truncated"]),
    ("bench", ["--indexes", "RMI", "btre"], ["unknown index 'btre'", "did you mean 'BTree'?"]),
    ("bench", ["--threads", "99"], ["--threads", "'99'", f"from 1 to {THREADS}", "NUMBA_NUM_THREADS"]),
    ("bench", ["--threads", "0"], ["--threads", f"from 1 to {THREADS}"]),
    ("bench", ["--n", "1.5"], ["--n", "'1.5' is not a whole number", "1e6"]),
    ("bench", ["--lookups", "abc"], ["--lookups", "'abc' is not a count", "200K"]),
    ("bench", ["--negative-ratio", "2"], ["--negative-ratio", "from 0 to 1"]),
    ("bench.updates", ["--indexes", "DynamicRMI,Btrees"], ["unknown index 'Btrees'", "did you mean 'BTrees'?"]),
    ("bench.updates", ["--n", "-5"], ["--n", "at least 1"]),
    ("bench.coldstart", ["--dtype", "uint32"], ["invalid choice 'uint32'", "did you mean 'uint64'?"]),
    ("bench.kernels", ["binar"], ["invalid choice 'binar'", "did you mean 'binary'?"]),
    ("bench.kernels", ["search", "--dataset", "lognormel"], ["unknown dataset 'lognormel'", "'lognormal'"]),
    ("bench.scaling", ["--threads", "1", "99"], ["--threads", f"from 1 to {THREADS}"]),
    ("bench.scaling", ["--dataset", "lognormel"], ["invalid choice 'lognormel'", "did you mean 'lognormal'?"]),
    ("datasets", ["mak", "x"], ["invalid choice 'mak'", "did you mean 'make'?"]),
    ("datasets", ["info", "lognormel"], ["unknown dataset 'lognormel'", "did you mean 'lognormal'?"]),
    ("datasets", ["make", "lognormel"], ["unknown generator or recipe 'lognormel'", "'lognormal'"]),
    ("datasets", ["info", "{tmp}/trunc_uint64"], ["{tmp}/trunc_uint64", "truncated"]),
    ("datasets", ["make", "lognormal", "--n", "1.5"], ["--n", "not a whole number"]),
]


@pytest.mark.parametrize("command, args, expected", CASES, ids=[f"{c} {' '.join(a)}" for c, a, _ in CASES])
def test_bad_input_is_one_line_and_exit_status_2(bad_files, command, args, expected):
    env = {**os.environ, "PYTHONPATH": str(ROOT), "LEARNEDIDX_DATA_DIR": str(bad_files / "cache")}
    args = [a.replace("{tmp}", str(bad_files)) for a in args]
    done = subprocess.run([sys.executable, "-m", command, *args], cwd=ROOT, env=env, capture_output=True,
                          text=True, timeout=120)
    lines = [line for line in done.stderr.splitlines() if line.strip()]
    assert done.returncode == 2, done.stderr
    assert len(lines) == 1 and "Traceback" not in done.stderr, done.stderr
    assert lines[0].startswith(f"python -m {command}") and ": error: " in lines[0]
    for part in expected:
        assert part.replace("{tmp}", str(bad_files)) in lines[0]
    assert done.stdout == ""


# --------------------------------------------------------------------------- results.json


def test_results_json_records_the_git_commit(tmp_path, monkeypatch):
    from bench import report

    monkeypatch.setattr(report, "pareto_plot", lambda results, path: None)  # no figure without results
    report.write_files([], tmp_path, {"seed": 1}, [])
    git = json.loads((tmp_path / "results.json").read_text())["machine"]["git"]
    head = subprocess.run(["git", "rev-parse", "HEAD"], cwd=ROOT, capture_output=True, text=True)
    if head.returncode != 0:
        assert git is None
    else:
        assert git["commit"] == head.stdout.strip() and len(git["commit"]) == 40
        assert isinstance(git["dirty"], bool)


def test_git_commit_is_null_without_git(monkeypatch, tmp_path):
    from bench import report

    monkeypatch.setenv("PATH", str(tmp_path))  # no git executable to be found
    assert report.git_commit() is None
    assert report.machine_info()["git"] is None
