"""The API reference builds without warnings, and the public API is annotated.

The reference is what README's "API reference" command builds (pdoc, Google-style docstrings):
this test runs the same build with pdoc's Python API into a temporary folder, with every
warning an error, and checks that the main pages and members are there and that every
``:class:``/``:meth:``/``:func:``... reference in a rendered docstring names something that
exists. It imports the package but runs no lookup, so no kernel compiles (a few seconds).
"""

from __future__ import annotations

import importlib
import inspect
import re
import sys
import typing
import warnings
from pathlib import Path

import pytest

import learnedidx
from learnedidx import KeyValueIndex, DynamicRMI, PGM, RMI, RadixSpline
from learnedidx.base import IndexBase, LearnedIndex
from learnedidx.interface import SortedIndex, UpdatableIndex

#: The modules of the reference, as README's command lists them. ``learnedidx.base`` and the DynamicRMI
#: mixins are there so that a class's inherited methods show (pdoc lists only those of documented modules).
MODULES = ["learnedidx", "learnedidx.base", "learnedidx.dynamic.reading", "learnedidx.dynamic.writing",
           "learnedidx.interface", "learnedidx.persist", "learnedidx.tuning", "learnedidx.toolkit",
           "learnedidx.testing"]
README = Path(__file__).resolve().parents[1] / "README.md"

_ROLE = re.compile(r"(?::py)?:(?:mod|func|data|const|class|meth|attr|exc|obj):`([^`]+)`")


@pytest.fixture(scope="module")
def pdoc():
    pdoc = pytest.importorskip("pdoc")
    pytest.importorskip("hypothesis")  # learnedidx.testing needs it
    # Without the source views, which take half the time and cannot warn.
    pdoc.render.configure(docformat="google", show_source=False)
    yield pdoc
    pdoc.render.configure()  # back to pdoc's defaults


def test_readme_command_builds_these_modules():
    text = README.read_text(encoding="utf-8")
    section = text[text.index("\n## API reference\n"):]
    command = re.search(r"^```bash\n(python -m pdoc .*?)^```$", section, re.M | re.S).group(1)
    words = command.replace("\\\n", " ").split()
    assert words[:7] == ["python", "-m", "pdoc", "-d", "google", "-o", "build/api"]
    assert words[7:] == MODULES


def test_reference_builds_without_warnings(pdoc, tmp_path):
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        pdoc.pdoc(*MODULES, output_directory=tmp_path)
    messages = [f"{w.category.__name__}: {w.message}" for w in caught]
    assert not messages, "\n".join(messages)
    page = (tmp_path / "learnedidx.html").read_text(encoding="utf-8")
    for anchor in ("RMI", "PGM", "RadixSpline", "DynamicRMI", "KeyValueIndex", "tune", "load", "RMI.lower_bound",
                   "KeyValueIndex.lower_bound", "DynamicRMI.lower_bound", "RMI.predict", "DynamicRMI.update"):
        assert f'id="{anchor}"' in page, anchor
    for name in MODULES[1:]:
        assert (tmp_path / (name.replace(".", "/") + ".html")).exists(), name


def _resolves(name: str, scopes: list) -> bool:
    parts = name.removesuffix("()").split(".")
    for scope in scopes:
        obj = scope
        for part in parts:
            obj = getattr(obj, part, _MISSING)
            if obj is _MISSING:
                break
        else:
            return True
    for i in range(len(parts), 0, -1):  # absolute: the longest importable module prefix
        try:
            obj = importlib.import_module(".".join(parts[:i]))
        except ImportError:
            continue
        for part in parts[i:]:
            obj = getattr(obj, part, _MISSING)
            if obj is _MISSING:
                return False
        return True
    return False


_MISSING = object()


def _docs(doc):
    """``doc`` and its members as the reference shows them (no ``_private`` names)."""
    yield doc
    for member in getattr(doc, "own_members", ()):
        if not member.name.startswith("_") or member.name.endswith("__"):
            yield from _docs(member)


def test_cross_references_resolve(pdoc):
    broken = []
    for name in MODULES:
        for doc in _docs(pdoc.doc.Module.from_name(name)):
            # Relative to the enclosing classes, the module that defines the object, the page's module.
            module = importlib.import_module(doc.modulename)
            scopes, owner, defining = [module], module, module
            for part in doc.qualname.split(".") if doc.qualname else ():
                owner = getattr(owner, part, None)
                if isinstance(owner, type):
                    scopes.insert(0, owner)
                defining = sys.modules.get(getattr(owner, "__module__", None) or "", defining)
            scopes.insert(-1, defining)
            for ref in _ROLE.findall(doc.docstring):
                if ref.startswith("~") or not _resolves(ref, scopes):  # pdoc shows a "~" as it is
                    broken.append(f"{doc.fullname}: {ref}")
    assert not broken, "references to nothing:\n" + "\n".join(broken)


_EXCEPTION = re.compile(r"\b[A-Z]\w*(?:Error|Exception|Warning):")


def test_docstring_sections_render(pdoc):
    """Google-style sections read as meant: pdoc makes an item's first ``Name:`` its term, so a
    second exception inside a ``Raises:`` item is run into the first one's text, and a
    ``**options:`` item turns into stray Markdown bold."""
    bad = []
    for name in MODULES:
        for doc in _docs(pdoc.doc.Module.from_name(name)):
            markdown = pdoc.docstrings.convert(doc.docstring, "google", None)
            if "****" in markdown:
                bad.append(f"{doc.fullname}: an item named **...")
            for section in re.findall(r"^###### Raises:\n(.*?)(?:\n\n|\Z)", markdown, re.S | re.M):
                for item in section.split("\n - "):
                    if len(_EXCEPTION.findall(item)) > 1:
                        bad.append(f"{doc.fullname}: two exceptions in one item: {' '.join(item.split())}")
    assert not bad, "\n".join(bad)


# --- annotations -----------------------------------------------------------------------------

#: The public methods every index class must annotate completely (parameters and return).
METHODS = ["lower_bound", "upper_bound", "get", "get_batch", "contains", "range", "save", "count", "bisect_left",
           "bisect_right", "irange", "items", "find_lt", "find_le", "find_gt", "find_ge", "size_in_bytes",
           "__iter__", "__reversed__", "__getitem__", "__contains__", "__len__", "__init__"]
LEARNED = ["predict", "lower_bound_loop", "from_arrays"]
WRITES = ["__setitem__", "__delitem__", "pop", "update", "delete", "merge"]


def _targets():
    for cls in (KeyValueIndex, RMI, PGM, RadixSpline):
        for name in METHODS + (LEARNED if issubclass(cls, LearnedIndex) else []):
            if name != "from_arrays" or cls is RMI:
                yield cls, name
    for name in METHODS + WRITES:
        yield DynamicRMI, name
    for name in METHODS[:-1] + WRITES[:-1]:  # the Protocols have no __init__ and no merge
        yield (SortedIndex if name in METHODS else UpdatableIndex), name
    yield learnedidx, "load"
    yield learnedidx, "tune"
    yield learnedidx.persist, "save"


@pytest.mark.parametrize("owner, name", list(_targets()), ids=lambda x: getattr(x, "__name__", x))
def test_public_api_is_annotated(owner, name):
    fn = getattr(owner, name)
    if isinstance(fn, classmethod):
        fn = fn.__func__
    hints = typing.get_type_hints(fn)  # raises when an annotation does not resolve
    params = [p for p in inspect.signature(fn).parameters.values() if p.name not in ("self", "cls")]
    missing = [p.name for p in params if p.name not in hints]
    assert missing == [], f"{owner.__name__}.{name}: parameters without annotation: {missing}"
    assert "return" in hints, f"{owner.__name__}.{name}: no return annotation"


@pytest.mark.parametrize("owner", [KeyValueIndex, DynamicRMI, IndexBase, SortedIndex])
def test_scalar_or_batch_methods_are_overloaded(owner):
    """A scalar query returns an int, a batch an int64 array: two overloads say so."""
    for name in ("lower_bound", "upper_bound", "bisect_left", "bisect_right"):
        fn = getattr(owner, name, None)
        if fn is None:
            continue
        overloads = typing.get_overloads(fn)
        assert len(overloads) == 2, f"{owner.__name__}.{name}"
        returns = [typing.get_type_hints(o)["return"] for o in overloads]
        assert returns[0] is int, f"{owner.__name__}.{name}: {returns}"
