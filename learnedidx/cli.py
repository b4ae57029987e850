"""The command line, ``python -m learnedidx {warmup,explain} ...`` (see ``--help``): parsing only;
the work is :func:`learnedidx.warmup` and :func:`learnedidx.explain`.

Exit status 0 on success; 2 on bad input (an unknown name, option or file, a missing optional
package: one line on stderr, ``python -m learnedidx: error: ...``); 1 when writing fails.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from typing import Any

from .explain import FILES, SAMPLE, explain, require_matplotlib
from .persist import MAGIC, load
from .tuning import families
from .warmup import DTYPE_NAMES, FAMILIES, warmup
from .warmup import __doc__ as _WARMUP_DOC

INDEXES = tuple(families())  #: what ``explain`` builds over a key set


class _Parser(argparse.ArgumentParser):
    def error(self, message):  # one line and status 2, as every CLI of the project
        self.exit(2, f"{self.prog}: error: {message}\n")


def _run_warmup(args: argparse.Namespace, parser: argparse.ArgumentParser) -> int:
    dtypes = list(DTYPE_NAMES) if args.dtypes == ["all"] else args.dtypes
    indexes = [s.strip() for s in args.indexes.split(",") if s.strip()]
    t = time.perf_counter()
    try:
        warmup(dtypes, indexes, progress=lambda line: print(line, flush=True))
    except ValueError as exc:
        parser.error(str(exc))
    print(f"compiled or loaded in {time.perf_counter() - t:.1f} s; later processes load the kernels from the cache")
    return 0


def _is_index_file(path: Path) -> bool:
    with open(path, "rb") as f:
        return f.read(len(MAGIC)) == MAGIC


def _key_set(args: argparse.Namespace) -> tuple[Any, str]:
    """``(keys, label)`` of a key file or data set name, through the repository's ``datasets``
    (not in the wheel): its names, files, generators and one-line errors."""
    try:
        from datasets.catalog import resolve
        from datasets.cli_args import INPUT_ERRORS, check_dataset, error_text, parse_count
        from datasets.sosd import read_sosd
    except ImportError:  # an installed wheel; or another package named datasets
        raise ModuleNotFoundError(f"{args.source!r} is not a saved index, and key files and data set names need "
                                  "the datasets package of a learnedidx checkout: run from its root") from None
    try:
        n = None if args.n is None else parse_count(args.n, minimum=1)
    except ValueError as exc:
        raise ValueError(f"--n: {exc}") from None
    try:
        check_dataset(args.source)
        path = resolve(args.source, n=n, seed=args.seed)
        return read_sosd(path, dtype=args.dtype), path.name
    except INPUT_ERRORS as exc:
        raise ValueError(error_text(exc)) from exc


def _index(args: argparse.Namespace) -> tuple[Any, str]:
    """``(index, label)``: a saved index as it is, else the ``--index`` family built over the keys."""
    path = Path(args.source).expanduser()
    if path.is_file() and _is_index_file(path):
        given = [f"--{name}" for name in ("index", "stages", "n", "dtype") if getattr(args, name) is not None]
        if given:
            raise ValueError(f"{' '.join(given)}: for building an index over a key set, but {path} is a saved index")
        return load(path), path.name
    keys, label = _key_set(args)
    family = args.index or "RMI"
    if args.stages is not None and family != "RMI":
        raise ValueError(f"--stages: the RMI's stage models; {family} has none")
    options = {} if args.stages is None else {"stages": tuple(s.strip() for s in args.stages.split(","))}
    return families()[family](keys, copy=False, **options), label


def _run_explain(args: argparse.Namespace, parser: argparse.ArgumentParser) -> int:
    try:
        require_matplotlib()  # before a build that can take a while
        idx, label = _index(args)
        paths = explain(idx, args.out, sample=args.sample, name=label)
    except (ValueError, TypeError, ModuleNotFoundError) as exc:  # the library's checks of names, files, options
        parser.error(" ".join(str(exc).split()))
    except OSError as exc:
        where = f"{exc.filename}: " if exc.filename else ""
        print(f"{parser.prog}: error: {where}{exc.strerror or exc}", file=sys.stderr)
        return 1
    print(*paths, sep="\n")
    return 0


def _positive(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"{text!r}: expected a whole number of at least 1")
    return value


def build_parser() -> argparse.ArgumentParser:
    """The parser of ``python -m learnedidx``."""
    parser = _Parser(prog="python -m learnedidx",
                     description="Compile learnedidx's kernels ahead of first use; draw where a learned index errs.")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)
    w = sub.add_parser("warmup", help="compile the kernels for some key dtypes (default uint64)",
                       description=_WARMUP_DOC.split("\n\n")[1])
    w.add_argument("dtypes", nargs="*", default=["uint64"], metavar="DTYPE",
                   help=f"key dtypes (default uint64; any of {', '.join(DTYPE_NAMES)}, or all)")
    w.add_argument("--indexes", default=",".join(FAMILIES),
                   help=f"comma-separated families (default all: {','.join(FAMILIES)})")
    w.set_defaults(run=_run_warmup)

    e = sub.add_parser("explain", help="draw where a learned index errs, as PNGs",
                       description=f"Draw where a learned index errs: {', '.join(FILES)} in the folder --out "
                                   "(see learnedidx.explain). Prints their paths.")
    e.add_argument("source", metavar="FILE_OR_DATASET",
                   help="a saved index (learnedidx.load), a SOSD key file, or a data set name "
                        "(`python -m datasets list`; key files and names need a learnedidx checkout)")
    e.add_argument("--out", required=True, metavar="DIR", help="folder for the pictures (created if missing)")
    e.add_argument("--index", choices=INDEXES, help="family to build over a key set (default RMI)")
    e.add_argument("--stages", metavar="MODELS", help="the RMI's stage models, comma-separated, e.g. cubic,linear")
    e.add_argument("--n", metavar="COUNT", help="keys for a bare generator name (e.g. 200K, 1e6; default 1M)")
    e.add_argument("--seed", type=int, default=42, help="generator seed (default 42)")
    e.add_argument("--dtype", help="key dtype of a key file whose name has no dtype suffix, e.g. uint64")
    e.add_argument("--sample", type=_positive, default=SAMPLE,
                   help=f"keys whose windows make the percentiles and histogram (default {SAMPLE:,})")
    e.set_defaults(run=_run_explain)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Run ``python -m learnedidx``; return the exit status (bad input exits with status 2)."""
    parser = build_parser()
    args = parser.parse_args(argv)
    return args.run(args, parser)
