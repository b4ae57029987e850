"""The README's examples run, and every ``# -> output`` comment in them is what its line gives.

A statement whose last line ends in ``# -> expected`` must be an expression: ``repr`` of its
value must match ``expected``, as doctest matches output (``...`` stands for any text,
whitespace runs compare equal), or, when it raises, ``ExceptionType: message`` must. The
sections' code blocks run in order in one namespace per section, in a temporary directory.
"""

from __future__ import annotations

import ast
import doctest
import io
import re
import tokenize
from pathlib import Path

import pytest

README = Path(__file__).resolve().parents[1] / "README.md"
#: The README sections whose python blocks run here.
SECTIONS = ("Quick start", "Testing your own index", "Updatable index: `DynamicRMI`", "Pictures: where a model errs",
            "Beyond one process: `ShardedIndex` on Dask")
ARROW = "# -> "
_CHECKER = doctest.OutputChecker()
_FLAGS = doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE


def python_blocks(title: str, text: str | None = None) -> list[str]:
    """The ```python blocks of the README section headed ``## title`` (up to the next ``## ``)."""
    text = README.read_text(encoding="utf-8") if text is None else text
    start = text.find(f"\n## {title}\n")
    assert start >= 0, f"README.md has no section '## {title}'"
    end = text.find("\n## ", start + 1)
    section = text[start:end if end >= 0 else len(text)]
    return re.findall(r"^```python\n(.*?)^```$", section, flags=re.M | re.S)


def _expected_outputs(code: str) -> dict:
    """``{line number: expected text}`` of the lines whose comment starts with the arrow."""
    out = {}
    for tok in tokenize.generate_tokens(io.StringIO(code).readline):
        if tok.type == tokenize.COMMENT and tok.string.startswith(ARROW):
            out[tok.start[0]] = tok.string[len(ARROW):].strip()
    return out


def _matches(expected: str, got: str) -> bool:
    return _CHECKER.check_output(expected + "\n", got + "\n", _FLAGS)


def run_checked(code: str, namespace: dict) -> int:
    """Run ``code`` one top-level statement at a time, checking each ``# -> expected`` comment
    (see the module doc); returns how many were checked. Raises AssertionError naming the line
    on a mismatch, on an arrow after a statement that is not an expression, and on an arrow
    that ends no statement's last line."""
    expected = _expected_outputs(code)
    lines = code.splitlines()
    checked = 0
    for stmt in ast.parse(code).body:
        want = expected.pop(stmt.end_lineno, None)
        where = f"README line {lines[stmt.end_lineno - 1].strip()!r}"
        if want is None:
            exec(compile(ast.Module([stmt], []), "README.md", "exec"), namespace)
            continue
        assert isinstance(stmt, ast.Expr), f"{where}: only an expression can have an output comment"
        try:
            got = repr(eval(compile(ast.Expression(stmt.value), "README.md", "eval"), namespace))
        except Exception as exc:  # noqa: BLE001 - compared with the comment below
            got = f"{type(exc).__name__}: {exc}"
        assert _matches(want, got), f"{where}: gives {got}"
        checked += 1
    assert not expected, f"output comments inside a statement, lines {sorted(expected)}: put them on its last line"
    return checked


@pytest.mark.parametrize("title", SECTIONS)
def test_readme_section_outputs_are_true(title, tmp_path, monkeypatch):
    blocks = python_blocks(title)
    assert blocks, f"'## {title}' has no python block"
    monkeypatch.chdir(tmp_path)  # examples that save files write them here
    namespace: dict = {"__name__": "__readme__"}
    checked = sum(run_checked(block, namespace) for block in blocks)
    assert checked > 0, f"'## {title}' shows no output comment"


def test_a_wrong_output_comment_fails():
    assert run_checked("x = [3, 1]\nsorted(x)  # -> [1, 3]\nlen(x) / 3  # -> 0.66...", {}) == 2
    assert run_checked("[].pop()  # -> IndexError: pop from empty list", {}) == 1
    for wrong in ("sorted([3, 1])  # -> [3, 1]", "[].pop()  # -> IndexError: another message",
                  "x = 1  # -> 1", "max(1,\n    2)  # -> 2\n(1,  # -> 1\n 2)"):
        with pytest.raises(AssertionError):
            run_checked(wrong, {})


def test_sections_are_found_by_their_heading():
    text = "# t\n## A\n```python\n1  # -> 1\n```\n## B\n```python\n2\n```\n```bash\nls\n```\n"
    assert python_blocks("A", text) == ["1  # -> 1\n"]
    assert python_blocks("B", text) == ["2\n"]
    with pytest.raises(AssertionError, match="no section"):
        python_blocks("C", text)
