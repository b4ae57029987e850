"""What every command line of the repository shares: one-line errors, counts, name suggestions.

``python -m datasets`` and the ``python -m bench...`` commands build their parsers from
:class:`ArgumentParser`, so a bad input gives one line on stderr, ``prog: error: what is wrong
and what to do``, and exit status 2. Counts are read by :func:`parse_count` (``1e6``, ``1.5M``,
``200K``, ``1_000_000``); unknown names get the closest known ones suggested (:func:`unknown`).
``bench`` imports this module, never the reverse.
"""

from __future__ import annotations

import argparse
import difflib
import os
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Callable, Iterable, NoReturn

COUNT_EXAMPLES = "e.g. 1000, 1_000_000, 1e6, 1.5M, 200K, 1B"
MAX_COUNT = 2**63 - 1  #: the largest int64: no array can hold more
_UNITS = {"K": 10**3, "M": 10**6, "G": 10**9, "B": 10**9}

#: What the library raises for bad input (names, files, values, a missing optional package): a command
#: line turns these into one line and exit status 2 around its argument checks and data loading, not
#: around its real work, where they would be bugs.
INPUT_ERRORS = (ValueError, KeyError, FileNotFoundError, ModuleNotFoundError)

_MISSING_FILE_HINT = ("write a key file with `python -m datasets make NAME --out DIR`, "
                      "or name a data set that `python -m datasets list` shows")


class ArgumentParser(argparse.ArgumentParser):
    """An argparse parser whose errors are one line, ``prog: error: message``, and exit status 2.

    argparse's own prints the usage lines first. An invalid choice (a subcommand, a mode) names the
    closest choices. Subparsers made by ``add_subparsers`` are of this class too.
    """

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: error: {message}\n")

    def _check_value(self, action, value):
        # argparse's hook for ``choices``: the same test, with suggestions in the message.
        if action.choices is not None and value not in action.choices:
            raise argparse.ArgumentError(action, unknown("choice", value, action.choices, invalid=True))


def suggest(name: str, choices: Iterable[str]) -> list[str]:
    """The choices closest to ``name`` (``difflib.get_close_matches``, ignoring case): the best and
    any about as close, at most 3."""
    by_lower = {}
    for choice in choices:
        by_lower.setdefault(str(choice).lower(), str(choice))
    target = str(name).lower()
    close = difflib.get_close_matches(target, list(by_lower), n=3, cutoff=0.6)
    if not close:
        return []
    best = difflib.SequenceMatcher(None, close[0], target).ratio()
    # One clear winner reads better than three loose matches.
    return [by_lower[m] for m in close if difflib.SequenceMatcher(None, m, target).ratio() >= best - 0.05]


def unknown(what: str, name: str, choices: Iterable[str], hint: str | None = None, invalid: bool = False) -> str:
    """Message for a name that is not one of ``choices``: ``unknown index 'rmi-fats'; did you mean
    'RMI-fast'? (choose from ...)``.

    ``hint`` replaces the list of choices in the parentheses (for long lists); ``invalid`` says
    "invalid" instead of "unknown".
    """
    choices = [str(c) for c in choices]
    close = suggest(name, choices)
    text = f"{'invalid' if invalid else 'unknown'} {what} {name!r}"
    if close:
        text += f"; did you mean {' or '.join(repr(c) for c in close)}?"
    return f"{text} ({hint or 'choose from ' + ', '.join(choices)})"


def parse_count(text: str, minimum: int = 0) -> int:
    """A whole count from ``1000``, ``1_000_000``, ``1e6``, ``1.5M``, ``200K``, ``2G`` or ``1B``
    (K, M, G or B: 10**3, 6, 9).

    Minimum 0 by default. Raises ValueError, with examples, for text that is not a finite number,
    a fractional count, a count below ``minimum`` or above 2**63 - 1.
    """
    stripped = str(text).strip()
    scale = _UNITS.get(stripped[-1:].upper(), 1)
    try:
        value = Decimal(stripped[:-1] if scale > 1 else stripped) * scale
    except InvalidOperation:
        value = None
    if value is None or not value.is_finite():
        raise ValueError(f"{text!r} is not a count ({COUNT_EXAMPLES})")
    if value != value.to_integral_value():
        raise ValueError(f"{text!r} is not a whole number ({COUNT_EXAMPLES})")
    if value < minimum:
        raise ValueError(f"{text!r}: expected a count of at least {minimum} ({COUNT_EXAMPLES})")
    if value > MAX_COUNT:
        raise ValueError(f"{text!r} is too large: at most {MAX_COUNT:,} ({COUNT_EXAMPLES})")
    return int(value)


def count_type(minimum: int = 0) -> Callable[[str], int]:
    """argparse ``type=`` for a count of at least ``minimum`` (see parse_count).

    The callable raises argparse.ArgumentTypeError with parse_count's message.
    """

    def parse(text: str) -> int:
        try:
            return parse_count(text, minimum)
        except ValueError as exc:
            raise argparse.ArgumentTypeError(str(exc)) from None

    parse.__name__ = "count"
    return parse


count = count_type(0)
positive_count = count_type(1)


def int_range(low: int, high: int, what: str = "") -> Callable[[str], int]:
    """argparse ``type=`` for a whole number from ``low`` to ``high``; ``what`` explains the bounds.

    The callable raises argparse.ArgumentTypeError naming the allowed range.
    """

    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            value = None
        if value is None or not low <= value <= high:
            raise argparse.ArgumentTypeError(f"{text!r}: expected a whole number from {low} to {high}{what}")
        return value

    parse.__name__ = "int_range"
    return parse


def fraction(text: str) -> float:
    """argparse ``type=`` for a share in [0, 1]; raises argparse.ArgumentTypeError."""
    try:
        value = float(text)
    except ValueError:
        value = None
    if value is None or not 0.0 <= value <= 1.0:
        raise argparse.ArgumentTypeError(f"{text!r}: expected a share from 0 to 1, e.g. 0.1")
    return value


def error_text(exc: BaseException) -> str:
    """One line saying what a library error says; a missing file's also says how to get one."""
    if isinstance(exc, FileNotFoundError) and exc.filename is not None:
        return f"{exc.filename}: {exc.strerror}; {_MISSING_FILE_HINT}"
    if isinstance(exc, KeyError) and len(exc.args) == 1:
        text = str(exc.args[0])
    else:
        text = str(exc)
    return " ".join(text.split()) or type(exc).__name__


def dataset_names() -> list[str]:
    """Every name ``datasets.resolve`` knows without a file path: generators, real and SOSD data sets, recipes."""
    from .generators import GENERATORS
    from .real import RECIPES, SOSD_DATASETS, real_datasets

    real = list(real_datasets())
    bare = [name.removesuffix("_uint64") for name in [*real, *RECIPES]]
    return list(dict.fromkeys([*GENERATORS, *real, *bare, *SOSD_DATASETS, *RECIPES]))


def check_dataset(name: str, extra: Iterable[str] = ()) -> None:
    """Raise ValueError, naming the closest names, if ``name`` is neither a path nor a known data set name.

    ``extra`` adds names the caller accepts (``adversarial``). Anything that looks like a path passes:
    ``resolve`` and ``read_sosd`` report a missing or corrupt file better.
    """
    from .catalog import generator_spec

    path = Path(name).expanduser()
    if path.exists() or "/" in name or os.sep in name or path.suffix:
        return
    known = [*extra, *dataset_names()]
    if name in known:
        return
    try:
        if generator_spec(name) is not None:
            return
    except ValueError:
        return  # a generator's name with a wrong dtype or size: resolve says what is wrong
    raise ValueError(unknown("dataset", name, known, hint="not a key file either; `python -m datasets list` "
                                                          "shows every name"))
