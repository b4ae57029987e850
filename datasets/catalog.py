"""One way to name any key set: generator, real data set, SOSD data set, recipe or file path.

``resolve(name_or_path)`` turns a name into a SOSD file on disk, in this order:

1. an existing file path;
2. a real data set (shared folder, or a recipe output in the cache), with or
   without its ``_uint64`` suffix;
3. a SOSD data set name (``books_200M_uint64``), looked up where downloads go;
4. a recipe name (``geonames_cities_s2``): built into the cache if its package
   is installed;
5. a generator, bare (``lognormal``: n defaults to 1M) or SOSD-style
   (``lognormal_200K_uint64``): generated into ``<cache>/synthetic/seed<seed>``
   on first use and reused afterwards.
"""

from __future__ import annotations

import errno
import os
from pathlib import Path

import numpy as np

from .cache import synthetic_dir, write_sidecar
from .generators import GENERATORS, generate
from .real import RECIPES, SOSD_DATASETS, build_recipe, find_sosd, real_datasets
from .sosd import parse_sosd_name, read_sosd, read_sosd_header, sosd_name, write_sosd

DEFAULT_N = 1_000_000


def generator_spec(name: str, n: int | None = None) -> tuple[str, int] | None:
    """(generator, n) for a generator name, bare or SOSD-style; None if ``name`` is not one.

    A bare name takes ``n`` (default 1M). Raises ValueError if a SOSD-style name
    has a dtype other than uint64 or a size that contradicts ``n``.
    """
    if name in GENERATORS:
        return name, DEFAULT_N if n is None else n
    parsed = parse_sosd_name(name)
    if parsed.base not in GENERATORS or parsed.n is None:
        return None
    if parsed.dtype != "uint64":
        raise ValueError(f"{name}: generators make uint64 keys; use {sosd_name(parsed.base, parsed.n)}")
    if n is not None and n != parsed.n:
        raise ValueError(f"{name}: the name says n={parsed.n} but n={n} was asked for; drop one of them")
    return parsed.base, parsed.n


def _recipe_name(name: str) -> str | None:
    for candidate in (name, f"{name}_uint64"):
        if candidate in RECIPES:
            return candidate
    return None


def make(name: str, n: int | None = None, seed: int = 42, directory: str | os.PathLike | None = None) -> Path:
    """Generate (or derive, for a recipe) a key set and write it as a SOSD file; return its path.

    Generators write ``{name}_{size}_uint64`` plus a JSON sidecar (generator, n,
    seed, numpy version) into ``directory`` (default
    ``<cache>/synthetic/seed<seed>``), always regenerating. Recipes go to
    ``directory`` or ``<cache>/real``. Raises ValueError for other names (listing
    the choices) or n < 0; ModuleNotFoundError for a recipe whose package is missing.
    """
    spec = generator_spec(name, n)
    if spec is None:
        recipe = _recipe_name(name)
        if recipe is None:
            raise ValueError(
                f"make {name!r}: not a generator ({', '.join(GENERATORS)}) or recipe ({', '.join(RECIPES)})"
            )
        return build_recipe(recipe, directory)
    base, count = spec
    keys = generate(base, count, seed)
    target = Path(directory) if directory is not None else synthetic_dir(seed)
    target.mkdir(parents=True, exist_ok=True)
    path = write_sosd(target / sosd_name(base, count), keys)
    write_sidecar(path, {"generator": base, "n": count, "seed": seed, "dtype": "uint64", "numpy": np.__version__})
    return path


def resolve(name_or_path: str | os.PathLike, *, n: int | None = None, seed: int = 42) -> Path:
    """Path of the SOSD file a name stands for, making generated/recipe data if needed (see module doc).

    Raises FileNotFoundError for a missing path (one containing a path
    separator) or an undownloaded SOSD data set, ValueError for an unknown name
    (listing the choices), ModuleNotFoundError for a recipe whose package is missing.
    """
    text = os.fspath(name_or_path)
    path = Path(text).expanduser()
    if path.is_file():
        return path
    if isinstance(name_or_path, os.PathLike) or "/" in text or os.sep in text or path.suffix:
        raise FileNotFoundError(errno.ENOENT, "no such key file (nor a known data set name)", text)
    real = real_datasets()
    for candidate in (text, f"{text}_uint64"):
        if candidate in real:
            return real[candidate]
    if text in SOSD_DATASETS:
        return find_sosd(text)
    recipe = _recipe_name(text)
    if recipe is not None:
        return build_recipe(recipe)
    spec = generator_spec(text, n)
    if spec is None:
        raise ValueError(
            f"{text!r}: not a file, real data set ({', '.join(real) or 'none available'}), "
            f"SOSD data set ({', '.join(SOSD_DATASETS)}), recipe ({', '.join(RECIPES)}) "
            f"or generator ({', '.join(GENERATORS)}, optionally as NAME_<size>_uint64)"
        )
    base, count = spec
    cached = synthetic_dir(seed) / sosd_name(base, count)
    if cached.is_file():
        try:
            if read_sosd_header(cached)[0] == count:
                return cached
        except ValueError:
            pass  # a corrupt cache entry is simply regenerated
    return make(base, count, seed)


def load(
    name_or_path: str | os.PathLike,
    *,
    n: int | None = None,
    seed: int = 42,
    dtype: str | np.dtype | None = None,
    mmap: bool = True,
) -> np.ndarray:
    """Keys for any name or path (see resolve) as a read-only array, memory-mapped by default.

    Raises what resolve and read_sosd raise.
    """
    return read_sosd(resolve(name_or_path, n=n, seed=seed), dtype=dtype, mmap=mmap)
