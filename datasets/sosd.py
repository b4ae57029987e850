"""SOSD binary key files: validated (memory-mapped) reading and atomic writing.

Format: a little-endian uint64 count ``n``, then ``n`` little-endian keys of one
dtype. The dtype is not stored; it comes from the file name's suffix
(``_uint32``, ``_uint64``, ``_int32``, ``_int64``, ``_float64``) or is given
explicitly.

File names follow ``{name}_{size}_{dtype}``, e.g. ``lognormal_100M_uint64``.
``size`` is written as ``{n // 10**6}M`` when n is a positive whole number of
millions, ``{n // 1000}K`` when it is a positive whole number of thousands, and
as the plain decimal number otherwise (``uniform_dense_1234_uint64``,
``normal_0_uint64``). Names without a size (``words_prefix8_uint64``) are valid
too; their n comes from the header.
"""

from __future__ import annotations

import contextlib
import errno
import mmap as _mmap
import os
import re
import secrets
import struct
from pathlib import Path
from typing import NamedTuple

import numpy as np

HEADER_BYTES = 8

# Supported key dtypes by suffix; all stored little-endian.
SUPPORTED_DTYPES: dict[str, np.dtype] = {
    "uint32": np.dtype("<u4"),
    "uint64": np.dtype("<u8"),
    "int32": np.dtype("<i4"),
    "int64": np.dtype("<i8"),
    "float64": np.dtype("<f8"),
}

_DTYPE_ALT = "|".join(SUPPORTED_DTYPES)
_SIZED_NAME = re.compile(rf"^(?P<base>.+)_(?P<size>\d+[KM]?)_(?P<dtype>{_DTYPE_ALT})$")
_UNSIZED_NAME = re.compile(rf"^(?P<base>.+)_(?P<dtype>{_DTYPE_ALT})$")
_SIZE = re.compile(r"^(\d+)([KM]?)$")
_SIZE_UNITS = {"": 1, "K": 1_000, "M": 1_000_000}


class SosdName(NamedTuple):
    """Parts of a SOSD-style file name: base name, key count (or None) and dtype name (or None)."""

    base: str
    n: int | None
    dtype: str | None


def format_size(n: int) -> str:
    """Size part of a file name: ``200M``, ``200K`` or the plain number (see module doc).

    Raises ValueError for negative n.
    """
    if n < 0:
        raise ValueError(f"n: a key count cannot be negative, got {n}")
    if n and n % 1_000_000 == 0:
        return f"{n // 1_000_000}M"
    if n and n % 1_000 == 0:
        return f"{n // 1_000}K"
    return str(n)


def parse_size(text: str) -> int:
    """Key count from a size such as ``200M``, ``12K`` or ``1234``.

    Raises ValueError if the text is not of that form.
    """
    m = _SIZE.match(text.strip())
    if not m:
        raise ValueError(f"size {text!r}: expected digits with an optional K or M suffix, e.g. 200M, 12K or 1234")
    return int(m.group(1)) * _SIZE_UNITS[m.group(2)]


def sosd_name(base: str, n: int, dtype: str | np.dtype = "uint64") -> str:
    """File name ``{base}_{size}_{dtype}``, e.g. ``sosd_name("lognormal", 10**8)`` -> ``lognormal_100M_uint64``.

    Raises ValueError for an unsupported dtype or negative n.
    """
    return f"{base}_{format_size(n)}_{dtype_name(dtype)}"


def parse_sosd_name(name: str | os.PathLike) -> SosdName:
    """Split a file name (a path's last part) into base, n and dtype name; missing parts are None."""
    text = Path(name).name
    m = _SIZED_NAME.match(text)
    if m:
        return SosdName(m.group("base"), parse_size(m.group("size")), m.group("dtype"))
    m = _UNSIZED_NAME.match(text)
    if m:
        return SosdName(m.group("base"), None, m.group("dtype"))
    return SosdName(text, None, None)


def dtype_name(dtype: str | np.dtype | type) -> str:
    """Canonical suffix name (``uint64`` ...) of a supported dtype of any byte order.

    Raises ValueError for an unsupported dtype.
    """
    try:
        dt = np.dtype(dtype)
    except TypeError as exc:
        raise ValueError(f"dtype {dtype!r}: not a numpy dtype; use one of {', '.join(SUPPORTED_DTYPES)}") from exc
    name = dt.name  # independent of byte order
    if name not in SUPPORTED_DTYPES:
        raise ValueError(f"dtype {dt}: unsupported for SOSD files; use one of {', '.join(SUPPORTED_DTYPES)}")
    return name


def file_dtype(path: str | os.PathLike, dtype: str | np.dtype | None = None) -> np.dtype:
    """Little-endian key dtype of a file: ``dtype`` if given, else from the name's suffix.

    Raises ValueError for an unsupported dtype or a name without a dtype suffix
    when ``dtype`` is None.
    """
    if dtype is not None:
        return SUPPORTED_DTYPES[dtype_name(dtype)]
    suffix = parse_sosd_name(path).dtype
    if suffix is None:
        raise ValueError(
            f"{os.fspath(path)}: the file name has no dtype suffix "
            f"({', '.join('_' + k for k in SUPPORTED_DTYPES)}); pass dtype= explicitly or rename the file"
        )
    return SUPPORTED_DTYPES[suffix]


def _checked_count(path: Path, f, dt: np.dtype, what: str) -> int:
    """Validate an open counted file's header against its size; return the record count (O(1))."""
    size = os.fstat(f.fileno()).st_size
    if size == 0:
        raise ValueError(f"{path}: empty file; a SOSD file starts with an 8-byte count (re-create or re-download it)")
    if size < HEADER_BYTES:
        raise ValueError(f"{path}: {size} bytes is shorter than the 8-byte count header (truncated; re-create it)")
    body = size - HEADER_BYTES
    if body % dt.itemsize:
        raise ValueError(
            f"{path}: {body} bytes after the header is not a multiple of the {what} size "
            f"({dt.itemsize} bytes): truncated file or wrong dtype"
        )
    (count,) = struct.unpack("<Q", f.read(HEADER_BYTES))
    expected = count * dt.itemsize  # Python int: no overflow for huge claimed counts
    if expected > body:
        raise ValueError(
            f"{path}: header claims {count} {what}s ({expected} bytes) but only {body} bytes follow "
            f"(truncated file, or wrong dtype)"
        )
    if expected < body:
        raise ValueError(
            f"{path}: {body - expected} trailing bytes after the {count} {what}s the header claims "
            f"(corrupt file, or wrong dtype)"
        )
    return count


def read_sosd_header(path: str | os.PathLike, dtype: str | np.dtype | None = None) -> tuple[int, np.dtype]:
    """Key count and dtype of a SOSD file, validated against its size, without reading keys (O(1)).

    Raises FileNotFoundError/OSError if the file cannot be opened and ValueError
    as read_sosd does.
    """
    path = Path(path)
    with open(path, "rb") as f:  # first, so that a missing file reports as such
        dt = file_dtype(path, dtype)
        return _checked_count(path, f, dt, f"{dt.name} key"), dt


def read_counted(path: str | os.PathLike, dt: np.dtype, mmap: bool = True, what: str = "record") -> np.ndarray:
    """Records of dtype ``dt`` after an 8-byte little-endian count, as a read-only array.

    The header is checked against the file size before anything is mapped or
    allocated. ``mmap=True`` maps the file without copying; otherwise it is read
    into memory (O(n)). Raises OSError if the file cannot be opened, ValueError
    naming it if it is corrupt (see read_sosd).
    """
    path = Path(path)
    with open(path, "rb") as f:
        count = _checked_count(path, f, dt, what)
        if count == 0:
            records = np.empty(0, dtype=dt)
        elif mmap:
            # The array keeps the map alive; closing the file does not unmap it.
            mapped = _mmap.mmap(f.fileno(), 0, access=_mmap.ACCESS_READ)
            records = np.frombuffer(mapped, dtype=dt, count=count, offset=HEADER_BYTES)
        else:
            records = np.empty(count, dtype=dt)
            got = f.readinto(records.view(np.uint8))
            if got != records.nbytes:  # the file shrank while we read it
                raise ValueError(f"{path}: read {got} of {records.nbytes} bytes (file changed while reading)")
    records.flags.writeable = False
    return records


def read_sosd(path: str | os.PathLike, dtype: str | np.dtype | None = None, mmap: bool = True) -> np.ndarray:
    """Keys of a SOSD file as a read-only 1-D array.

    With ``mmap=True`` the array is a zero-copy memory map of the file (pages
    load on access); otherwise the keys are read into memory (O(n)). The header
    is checked against the file size before anything is mapped or allocated.

    Raises FileNotFoundError/OSError if the file cannot be opened, and
    ValueError naming the file for: an empty file, a file shorter than the
    header, a body that is not a whole number of keys, a count that does not
    match the file size (truncated or trailing bytes), a name without a dtype
    suffix when ``dtype`` is None, or an unsupported dtype.
    """
    path = Path(path)
    if not path.exists():  # report a missing file as such, before judging its name
        raise FileNotFoundError(errno.ENOENT, "no such SOSD file", str(path))
    dt = file_dtype(path, dtype)
    return read_counted(path, dt, mmap, f"{dt.name} key")


def write_counted(path: str | os.PathLike, records: np.ndarray) -> Path:
    """Write an 8-byte little-endian count and the records' bytes atomically; return the path (O(n)).

    The data goes to a temporary file in the same directory, which is flushed,
    fsync-ed and then renamed over ``path``; on any error the temporary file is
    removed and ``path`` is left as it was. The caller fixes the byte order.
    Raises FileNotFoundError if the directory does not exist.
    """
    path = Path(path)
    records = np.ascontiguousarray(records)
    directory = path.parent
    if not directory.is_dir():
        message = f"directory for {path.name} does not exist (create it first)"
        raise FileNotFoundError(errno.ENOENT, message, str(directory))
    tmp = directory / f".{path.name}.{secrets.token_hex(6)}.tmp"
    # O_EXCL: never clobber another writer's temporary file; mode 0o666 lets the umask apply.
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0), 0o666)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(struct.pack("<Q", records.size))
            f.write(records.view(np.uint8))
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise
    _fsync_directory(directory)
    return path


def write_sosd(path: str | os.PathLike, keys) -> Path:
    """Write keys as a SOSD file atomically (see write_counted) and return its path (O(n)).

    Keys are written little-endian whatever the host. Sortedness is the
    caller's business. Raises ValueError if keys are not 1-D, have an
    unsupported dtype, or the file name's dtype suffix (if any) differs from the
    keys' dtype; FileNotFoundError if the directory does not exist.
    """
    path = Path(path)
    keys = np.asarray(keys)
    if keys.ndim != 1:
        raise ValueError(f"keys for {path}: expected a 1-D array, got shape {keys.shape}")
    name = dtype_name(keys.dtype)
    suffix = parse_sosd_name(path).dtype
    if suffix is not None and suffix != name:
        raise ValueError(
            f"{path}: the name says {suffix} but the keys are {name}; "
            f"rename the file or convert with keys.astype(np.{suffix})"
        )
    # No copy on little-endian hosts.
    return write_counted(path, np.ascontiguousarray(keys, dtype=SUPPORTED_DTYPES[name]))


def _fsync_directory(directory: Path) -> None:
    """Make a rename durable where the platform allows fsync on directories (POSIX)."""
    with contextlib.suppress(OSError):
        fd = os.open(directory, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
