"""Saving and loading indexes: one self-describing file per index, opened without retraining.

>>> import os, tempfile, numpy as np, learnedidx
>>> idx = learnedidx.RMI(np.array([10, 20, 30], dtype=np.uint64))
>>> path = os.path.join(tempfile.mkdtemp(), "idx.lidx")
>>> idx.save(path)
>>> learnedidx.load(path).lower_bound(25)
2

An index declares its state as a JSON-able ``config`` dict and named numpy arrays
(:meth:`learnedidx.IndexBase._state`), and rebuilds itself from them without training
(:meth:`learnedidx.IndexBase._from_state`). A class joins by :func:`register`-ing a stable type name,
which the file records; :func:`load` rebuilds any registered class.

File layout (format version 1; every integer little-endian):

======================  ======================================================================
bytes 0-7               magic ``\\x89LIX\\r\\n\\x1a\\n`` (the PNG trick: text-mode transfers and
                        truncation to 7 bits break it)
bytes 8-11              format version (uint32)
bytes 12-15             header length H (uint32)
bytes 16-19             CRC-32 of the header
bytes 20-23             CRC-32 of bytes 0-19
bytes 24 .. 24+H        header: UTF-8 JSON ``{"format", "type", "writer", "file_size", "config",
                        "sections": [{"name", "dtype", "shape", "offset", "nbytes", "crc32"}]}``
then                    the sections, in header order, each starting on a 64-byte boundary
                        (so mapped arrays are cache-line aligned), zero padding between them and
                        up to the end of the file (``file_size`` is a multiple of 64)
======================  ======================================================================

``dtype`` is an explicit little-endian numpy type string (``"<u8"``, ``"<f8"``, ``"<U12"``...),
from an allow-list: booleans, integers, floats, complex, datetimes and fixed-width strings.
Object arrays cannot be saved: loading a file never unpickles or executes anything. Values that
are the positions 0..n-1 (``values=None``) are not written: the config says so.

**Checksums.** Every section has a CRC-32 (zlib), and so has the header. CRC-32 detects every
error burst of up to 32 bits, so any one flipped byte, with certainty; it runs at about
1.7 GB/s here, against 0.3 GB/s for BLAKE2b (``hashlib.blake2b``), and it is not meant to
resist forgery (no checksum that ships inside the file can be). Checking the key and value
sections costs a pass over them, about 0.5 s per GB, which would defeat the point of
mapping, so :func:`load` always verifies the preamble, the header, the zero padding and the
model sections (the arrays a subclass adds, such as the RMI's ``meta`` and ``params``: 32 MB
for 100M keys, about 20 ms), and verifies the sections a class lists in ``_lazy_arrays`` (the
keys and values) only with ``verify=True``: the default when ``mmap=False``, which reads them
anyway. With ``mmap=True, verify=False`` a flipped byte inside
the keys or values goes unnoticed (answers near it may be wrong), but never crashes: every
structural field lives in a verified section or in the header, and the kernels stay inside
``[0, n]`` whatever the keys hold. Call ``load(path, verify=True)`` or ``index._check()`` to be
sure.

**Mapping.** ``mmap=True`` maps the file: the keys and values are read-only views of a shared
mapping, so opening costs no reads of them and no resident memory until pages are touched, and
processes that map the same file share its pages. Every other section (headers, ``meta``,
model records, directories: whatever sizes a loop or an address) is copied into private memory
and checked there, so bytes written into the file later can change at worst keys and values
(answers near them, never a crash). Truncating a mapped file or copying another over it in
place makes the next access to the lost pages fault (SIGBUS), as with every mmap-based store
(numpy memmap, LMDB): replace a live file by writing a new one and renaming it over the old,
as :meth:`learnedidx.IndexBase.save` does (the mapping keeps the old file's pages).

**Atomic saves.** :meth:`learnedidx.IndexBase.save` writes a temporary file in the target directory,
flushes and fsyncs it, then renames it over the target: a crash leaves the old file or the new
one, never half of one. A process killed mid-save leaves its temporary file behind
(``.{name}.{pid}.{random}.tmp`` beside the target); the next save of the same target deletes
those whose process is gone.
"""

from __future__ import annotations

import errno
import json
import mmap as _mmap
import os
import re
import secrets
import stat
import struct
import sys
import zlib

import numpy as np

from .base import IndexBase
from .interface import SortedIndex, StrPath

__all__ = ["IndexFileError", "load", "save", "register", "registered", "FORMAT_VERSION", "MAGIC"]

MAGIC = b"\x89LIX\r\n\x1a\n"
FORMAT_VERSION = 1
ALIGN = 64  #: sections start on multiples of this many bytes
_PREAMBLE = struct.Struct("<8sIIII")  # magic, version, header length, header crc, preamble crc
_MAX_HEADER = 1 << 26  # 64 MiB: a header is a few hundred bytes; refuse to read absurd claims
_MAX_SECTIONS = 256
_MAX_NDIM = 32
_CHUNK = 1 << 24  # bytes written (and checksummed) per system call
_SHARED = ("keys", "values")  #: sections mapped read-only and shared (the others: copied)
#: numpy type strings a section may have; no objects, no structured or void types.
_DTYPE_RE = re.compile(r"\A(?:\|b1|\|[iu]1|<[iu][248]|<f[248]|<c(?:8|16)|<[mM]8(?:\[[0-9]{0,6}[a-zA-Z]{1,2}\])?"
                       r"|<U[1-9][0-9]{0,8}|\|S[1-9][0-9]{0,8})\Z")
_TYPE_NAME_RE = re.compile(r"\A[A-Za-z_][A-Za-z0-9_]*(?:\.[A-Za-z_][A-Za-z0-9_]*)*\Z")

_TYPES: dict = {}  # type name -> class
_NAMES: dict = {}  # class -> type name


class IndexFileError(ValueError):
    """A file is not a valid index file: not one at all, truncated, corrupt, or too new.

    ``path`` and ``problem`` hold the file and what is wrong with it.
    """

    def __init__(self, path, problem: str):
        self.path = os.fspath(path) if path is not None else None
        self.problem = problem
        super().__init__(f"{self.path}: {problem}" if path is not None else problem)

    def __reduce__(self):
        return type(self), (self.path, self.problem)


# --- the registry of index types ------------------------------------------------------------


def register(cls_or_name, name: str | None = None):
    """Let :func:`load` rebuild ``cls`` from files whose header names it ``name``.

    ``register(BTree, "baselines.BTree")``, or as a decorator ``@register("baselines.BTree")``.
    The name is written in every file and must never change; the default is
    ``"<top-level package>.<class name>"``. The class must implement
    :meth:`learnedidx.IndexBase._restore` (and extend :meth:`learnedidx.IndexBase._state` when it has state
    beyond its keys and values). Returns the class.

    Raises:
        TypeError: cls is not an IndexBase subclass or does not implement ``_restore``.
        ValueError: a malformed name, or a name already taken by another class.
    """
    if isinstance(cls_or_name, str):
        return lambda cls: register(cls, cls_or_name)
    cls = cls_or_name
    from .base import IndexBase

    if not (isinstance(cls, type) and issubclass(cls, IndexBase)):
        raise TypeError(f"register() takes an IndexBase subclass (KeyValueIndex for a static index), got {cls!r}")
    if cls._restore is IndexBase._restore:
        raise TypeError(f"{cls.__name__} must implement _restore(config, arrays) to be loadable")
    if name is None:
        name = f"{cls.__module__.split('.')[0]}.{cls.__name__}"
    if not isinstance(name, str) or not _TYPE_NAME_RE.match(name) or len(name) > 200:
        raise ValueError(f"a type name is dotted identifiers such as 'baselines.BTree', got {name!r}")
    old = _TYPES.get(name)
    if old is not None and old is not cls and (old.__module__, old.__qualname__) != (cls.__module__, cls.__qualname__):
        raise ValueError(f"type name {name!r} is already registered for {old.__module__}.{old.__qualname__}")
    _TYPES[name] = cls
    _NAMES[cls] = name
    return cls


def registered() -> dict:
    """The registered type names and their classes (a copy)."""
    return dict(_TYPES)


# --- saving ---------------------------------------------------------------------------------


def _storable_dtype(dtype: np.dtype, what: str) -> np.dtype:
    """The little-endian dtype a section of ``dtype`` is written as; TypeError when none."""
    if dtype.kind == "O":
        raise TypeError(
            f"{what} has dtype object, which an index file cannot hold (a file never contains "
            "pickled objects, so loading one never runs code); convert it to a fixed-width dtype "
            "first, e.g. values.astype('U32') or .astype('S32'), or store codes into a table"
        )
    le = dtype.newbyteorder("<") if dtype.byteorder != "|" else dtype
    if not _DTYPE_RE.match(le.str) or dtype.fields is not None or dtype.subdtype is not None:
        raise TypeError(
            f"{what} has dtype {dtype}, which an index file cannot hold; allowed are booleans, "
            "integers, floats, complex numbers, datetimes and fixed-width strings ('U', 'S')"
        )
    return le


def _align(x: int) -> int:
    return -(-x // ALIGN) * ALIGN


def _layout(index_type: str, config: dict, specs: list) -> tuple:
    """``(header_json_template, offsets, file_size)``; the CRCs are written as 8 hex digits so
    the header's length does not depend on them."""
    header_end = ALIGN
    for _ in range(16):
        offsets, pos = [], header_end
        for _, _, nbytes in specs:
            offsets.append(pos)
            pos = _align(pos + nbytes)
        header = {
            "format": "learnedidx index",
            "type": index_type,
            "writer": f"learnedidx {_version()}",
            "file_size": pos,
            "config": config,
            "sections": [
                {"name": name, "dtype": dtype.str, "shape": list(shape), "offset": off, "nbytes": nbytes,
                 "crc32": "00000000"}
                for (name, (dtype, shape), nbytes), off in zip(specs, offsets)
            ],
        }
        text = json.dumps(header, separators=(",", ":"), allow_nan=True)
        end = _align(_PREAMBLE.size + len(text.encode()))
        if end == header_end:
            return header, offsets, pos
        header_end = end
    raise AssertionError("the header layout did not converge")  # pragma: no cover


def _version() -> str:
    from . import __version__

    return __version__


def _jsonable(value, what: str):
    """A deep copy of ``value`` with numpy scalars and tuples turned into JSON types."""
    if isinstance(value, dict):
        out = {}
        for k, v in value.items():
            if not isinstance(k, str):
                raise TypeError(f"{what}: config keys must be strings, got {k!r}")
            out[k] = _jsonable(v, what)
        return out
    if isinstance(value, (list, tuple)):
        return [_jsonable(v, what) for v in value]
    if value is None or isinstance(value, (bool, str)):
        return value
    if isinstance(value, (int, np.integer)):
        return int(value)
    if isinstance(value, (float, np.floating)):
        return float(value)
    if isinstance(value, np.bool_):
        return bool(value)
    raise TypeError(f"{what}: config value {value!r} of type {type(value).__name__} is not JSON-able")


def _write_all(fd: int, data) -> None:
    view = memoryview(data).cast("B")
    while len(view):
        written = os.write(fd, view[:_CHUNK])
        view = view[written:]


def save(index: IndexBase, path: StrPath) -> None:
    """Write ``index`` to ``path`` atomically; see :meth:`learnedidx.IndexBase.save`."""
    path = os.fspath(path)
    cls = type(index)
    index_type = _NAMES.get(cls)
    if index_type is None:
        raise TypeError(
            f"{cls.__name__} cannot be saved: it is not registered; call "
            f"learnedidx.persist.register({cls.__name__}, 'package.{cls.__name__}') after defining it"
        )
    config, arrays = index._state()
    config = _jsonable(config, f"{cls.__name__}._state()")
    specs, payloads = [], []
    for name, array in arrays.items():
        if not isinstance(name, str) or not name or len(name) > 100:
            raise TypeError(f"{cls.__name__}._state(): array names must be short strings, got {name!r}")
        array = np.asarray(array)
        what = "values" if name == "values" else f"{cls.__name__} array {name!r}"
        dtype = _storable_dtype(array.dtype, what)
        if array.ndim > _MAX_NDIM:
            raise TypeError(f"{what} has {array.ndim} dimensions; at most {_MAX_NDIM} can be saved")
        data = np.ascontiguousarray(array, dtype=dtype)
        specs.append((name, (dtype, data.shape), data.nbytes))
        payloads.append(data.reshape(-1).view(np.uint8))
    if len(specs) > _MAX_SECTIONS:
        raise TypeError(f"{cls.__name__}._state() returned {len(specs)} arrays; at most {_MAX_SECTIONS}")
    header, offsets, file_size = _layout(index_type, config, specs)

    directory, base = os.path.split(os.path.abspath(path))
    _remove_stale_temps(directory, base)
    tmp = os.path.join(directory, f".{base}.{os.getpid()}.{secrets.token_hex(4)}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_CLOEXEC", 0), 0o666)
    try:
        # Placeholder preamble and header (same length as the final ones), then the sections,
        # each checksummed as it is written; then the real header over the placeholder.
        head = _encode_head(header)
        _write_all(fd, head)
        pos = len(head)
        for section, offset, payload in zip(header["sections"], offsets, payloads):
            _write_all(fd, bytes(offset - pos))
            crc = 0
            for start in range(0, len(payload), _CHUNK):
                chunk = payload[start:start + _CHUNK]
                crc = zlib.crc32(chunk, crc)
                _write_all(fd, chunk)
            section["crc32"] = f"{crc:08x}"
            pos = offset + len(payload)
        _write_all(fd, bytes(file_size - pos))
        final = _encode_head(header)
        assert len(final) == len(head)
        os.lseek(fd, 0, os.SEEK_SET)
        _write_all(fd, final)
        os.fsync(fd)
        os.close(fd)
        fd = -1
        os.replace(tmp, path)
    except BaseException:
        if fd >= 0:
            os.close(fd)
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise
    _fsync_directory(directory)


def _remove_stale_temps(directory: str, base: str) -> None:
    """Delete the temporary files that saves of ``base`` left in ``directory`` when their
    process died mid-save (``kill -9``): ``.{base}.{pid}.{hex}.tmp`` whose pid is no live
    process here. A live pid's file may be a save in progress and is kept."""
    pattern = re.compile(re.escape(f".{base}.") + r"(\d+)\.[0-9a-f]{8}\.tmp")
    try:
        names = os.listdir(directory)
    except OSError:
        return
    for name in names:
        match = pattern.fullmatch(name)
        if match is None or _alive(int(match.group(1))):
            continue
        try:
            os.unlink(os.path.join(directory, name))
        except OSError:
            pass


def _alive(pid: int) -> bool:
    """Whether a process with this id runs here (True when that cannot be told)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except (OverflowError, OSError):  # another user's process, or no such id on this OS
        return True
    return True


def _encode_head(header: dict) -> bytes:
    text = json.dumps(header, separators=(",", ":"), allow_nan=True).encode()
    crc = zlib.crc32(text)
    pre = _PREAMBLE.pack(MAGIC, FORMAT_VERSION, len(text), crc, 0)[:20]
    pre += struct.pack("<I", zlib.crc32(pre))
    raw = pre + text
    return raw + bytes(_align(len(raw)) - len(raw))


def _fsync_directory(directory: str) -> None:
    """Make the rename durable (best effort: some systems cannot open a directory)."""
    try:
        dfd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(dfd)
    except OSError:
        pass
    finally:
        os.close(dfd)


# --- loading --------------------------------------------------------------------------------


def load(path: StrPath, mmap: bool = True, verify: bool | None = None) -> SortedIndex:
    """Open an index saved with :meth:`learnedidx.IndexBase.save`; it answers exactly as the saved one.

    Args:
        path: the file.
        mmap: map the file instead of reading it: opening then costs a few page reads whatever
            the size (keys and values are read from disk only when lookups touch them, and
            processes share the pages). False reads every array into memory. While mapped,
            the file must not be truncated or copied over in place (the OS then raises
            SIGBUS on the next lookup, as for any mapped file): replace it by writing a new
            file and renaming it over the old one, as ``save`` does.
        verify: also check the CRC-32 of the key and value sections, a pass over the whole
            file (about 0.5 s per GB), and every invariant of the loaded index (its
            ``_check()``: keys sorted, a DynamicRMI's delta disjoint from its main keys, counts
            consistent, error bounds that hold), which a file with valid checksums but
            inconsistent content fails. None means ``not mmap``. The header and the model
            sections are always verified (see the module docstring for why and what is left).

    Complexity: O(header + model sections) with ``mmap=True, verify=False``; O(file size)
    otherwise. Never retrains. Milliseconds when Numba's cache holds the kernels for the key
    dtype (any earlier process on this machine used them, or ``python -m learnedidx warmup``);
    on a cold cache the first lookups compile them first, seconds each.

    Raises:
        OSError: the file is missing (FileNotFoundError), a directory, or unreadable.
        IndexFileError: (a ValueError) naming the file and the problem: not an index file,
            truncated or extended, a checksum mismatch, a format version newer than this
            learnedidx reads, a malformed or inconsistent header, or an unknown index type
            (import the module that registers it first, e.g. ``import baselines``).
    """
    path = os.fspath(path)
    if verify is None:
        verify = not mmap
    with _open_regular(path) as f:
        size = os.fstat(f.fileno()).st_size
        header, header_end = _read_header(f, path, size)
        index_type, config, sections = _parse_header(header, path, size, header_end)
        cls = _TYPES.get(index_type)
        if cls is None:
            raise IndexFileError(
                path, f"unknown index type {index_type!r} (registered: {sorted(_TYPES)}); import the "
                "module that defines and registers it before loading"
            )
        lazy = frozenset(() if verify else cls._lazy_arrays)
        if mmap:
            arrays = _map_sections(f, path, sections, size, lazy)
        else:
            arrays = _read_sections(f, path, sections, size, lazy)
    try:
        index = cls._from_state(config, arrays)
        if verify:
            index._check()
    except (ValueError, TypeError, KeyError, IndexError, AssertionError, OverflowError, MemoryError) as exc:
        raise IndexFileError(path, f"inconsistent {index_type} state: {exc or type(exc).__name__}") from exc
    return index


def _open_regular(path):
    """The file opened for reading; a FIFO or device is refused rather than waited on."""
    fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_CLOEXEC", 0))
    try:
        mode = os.fstat(fd).st_mode
        if stat.S_ISDIR(mode):
            raise IsADirectoryError(errno.EISDIR, os.strerror(errno.EISDIR), path)
        if not stat.S_ISREG(mode):
            raise IndexFileError(path, "not a regular file")
        return open(fd, "rb")
    except BaseException:
        os.close(fd)
        raise


def _read_exact(f, n: int) -> bytes:
    data = f.read(n)
    return data if data is not None else b""


def _read_header(f, path, size: int):
    pre = _read_exact(f, _PREAMBLE.size)
    if pre[:len(MAGIC)] != MAGIC[:len(pre)] or (len(pre) == 0):
        problem = "empty file" if size == 0 else "not a learnedidx index file (wrong magic bytes)"
        raise IndexFileError(path, problem)
    if len(pre) < _PREAMBLE.size:
        raise IndexFileError(path, f"truncated: {size} bytes, shorter than the {_PREAMBLE.size}-byte preamble")
    magic, version, hlen, hcrc, pcrc = _PREAMBLE.unpack(pre)
    if zlib.crc32(pre[:20]) != pcrc:
        raise IndexFileError(path, "corrupt preamble (checksum mismatch in bytes 0-23)")
    if version > FORMAT_VERSION:
        raise IndexFileError(
            path, f"written by a newer learnedidx (file format version {version}; this learnedidx "
            f"{_version()} reads up to version {FORMAT_VERSION}): upgrade learnedidx to open it"
        )
    if version < 1:
        raise IndexFileError(path, f"unsupported file format version {version}")
    if hlen > _MAX_HEADER:
        raise IndexFileError(path, f"corrupt preamble: header length {hlen} exceeds {_MAX_HEADER}")
    if _PREAMBLE.size + hlen > size:
        raise IndexFileError(
            path, f"truncated: the header claims {hlen} bytes but the file has {size} bytes in all"
        )
    text = _read_exact(f, hlen)
    if len(text) != hlen:
        raise IndexFileError(path, "truncated while reading the header (the file shrank?)")
    if zlib.crc32(text) != hcrc:
        raise IndexFileError(path, "corrupt header (checksum mismatch)")
    header_end = _align(_PREAMBLE.size + hlen)
    if header_end > size:
        raise IndexFileError(path, f"truncated: the header's padding ends at byte {header_end}, the file has {size}")
    padding = _read_exact(f, header_end - _PREAMBLE.size - hlen)
    if padding.count(0) != len(padding):
        raise IndexFileError(path, "corrupt padding after the header (nonzero bytes)")
    try:
        header = json.loads(text)
    except (ValueError, RecursionError) as exc:
        raise IndexFileError(path, f"corrupt header: not valid JSON ({exc})") from None
    return header, header_end


def _is_int(x) -> bool:
    return type(x) is int


def _parse_header(header, path, size: int, header_end: int):
    """``(type, config, sections)``, every section validated against the file's size."""
    def bad(problem):
        return IndexFileError(path, f"malformed header: {problem}")

    if not isinstance(header, dict):
        raise bad("not a JSON object")
    if header.get("format") != "learnedidx index":
        raise bad(f"format is {header.get('format')!r}, expected 'learnedidx index'")
    index_type, config, sections = header.get("type"), header.get("config"), header.get("sections")
    file_size = header.get("file_size")
    if not isinstance(index_type, str):
        raise bad(f"type must be a string, got {index_type!r}")
    if not isinstance(config, dict):
        raise bad("config must be an object")
    if not isinstance(sections, list) or len(sections) > _MAX_SECTIONS:
        raise bad(f"sections must be a list of at most {_MAX_SECTIONS}")
    if not _is_int(file_size) or file_size < 0:
        raise bad(f"file_size must be a non-negative integer, got {file_size!r}")
    if file_size != size:
        what = "truncated" if size < file_size else "has trailing bytes"
        raise IndexFileError(path, f"{what}: the header says {file_size} bytes, the file has {size}")
    out = []
    names = set()
    pos = header_end
    for i, s in enumerate(sections):
        if not isinstance(s, dict) or set(s) != {"name", "dtype", "shape", "offset", "nbytes", "crc32"}:
            raise bad(f"section {i} must have exactly name, dtype, shape, offset, nbytes and crc32")
        name, dstr, shape, offset, nbytes, crc = (s[k] for k in ("name", "dtype", "shape", "offset", "nbytes", "crc32"))
        if not isinstance(name, str) or not name or name in names:
            raise bad(f"section {i} has a missing or repeated name {name!r}")
        names.add(name)
        if not isinstance(dstr, str) or not _DTYPE_RE.match(dstr):
            raise bad(f"section {name!r} has dtype {dstr!r}, which is not allowed in an index file")
        try:
            dtype = np.dtype(dstr)
        except TypeError:
            raise bad(f"section {name!r} has dtype {dstr!r}, which numpy does not know") from None
        if not isinstance(shape, list) or len(shape) > _MAX_NDIM or not all(_is_int(d) and d >= 0 for d in shape):
            raise bad(f"section {name!r} has shape {shape!r}; expected a list of non-negative integers")
        if not _is_int(offset) or not _is_int(nbytes) or nbytes < 0:
            raise bad(f"section {name!r} has offset {offset!r} and nbytes {nbytes!r}")
        if not isinstance(crc, str) or not re.fullmatch(r"[0-9a-f]{8}", crc):
            raise bad(f"section {name!r} has checksum {crc!r}; expected 8 hex digits")
        count = 1
        for d in shape:
            count *= d  # Python ints: no overflow
        if count * dtype.itemsize != nbytes:
            raise bad(f"section {name!r}: shape {shape} of {dstr} is {count * dtype.itemsize} bytes, "
                      f"the header says {nbytes}")
        if offset != pos:
            raise bad(f"section {name!r} starts at byte {offset}, expected {pos}")
        if offset + nbytes > size:
            raise IndexFileError(
                path, f"truncated: section {name!r} ends at byte {offset + nbytes}, the file has {size} bytes"
            )
        pos = _align(offset + nbytes)
        out.append((name, dtype, tuple(shape), offset, nbytes, int(crc, 16)))
    if pos != size:
        raise bad(f"the sections end at byte {pos}, the file at {size}")
    return index_type, config, out


def _check_padding(path, data, name: str) -> None:
    if len(data) and bytes(data).count(0) != len(data):
        raise IndexFileError(path, f"corrupt padding after section {name!r} (nonzero bytes)")


def _check_crc(path, name: str, data, expected: int) -> None:
    if zlib.crc32(data) != expected:
        raise IndexFileError(path, f"corrupt section {name!r} (checksum mismatch)")


def _native(array: np.ndarray) -> np.ndarray:
    """The array in native byte order (a copy only on big-endian hosts)."""
    if array.dtype.byteorder == "<" and sys.byteorder != "little":  # pragma: no cover
        return array.astype(array.dtype.newbyteorder("="))
    return array


def _map_sections(f, path, sections, size: int, lazy) -> dict:
    """Keys and values as read-only views of a shared mapping of the file (not checksummed
    when named in ``lazy``); every other section copied into private memory, then checked."""
    shared = _mmap.mmap(f.fileno(), 0, access=_mmap.ACCESS_READ)
    view = memoryview(shared)
    arrays = {}
    for i, (name, dtype, shape, offset, nbytes, crc) in enumerate(sections):
        end = sections[i + 1][3] if i + 1 < len(sections) else size
        _check_padding(path, view[offset + nbytes:end], name)
        count = nbytes // dtype.itemsize
        if nbytes == 0:
            _check_crc(path, name, b"", crc)
            array = np.empty(shape, dtype=dtype)
        elif name in _SHARED:
            if name not in lazy:
                _check_crc(path, name, view[offset:offset + nbytes], crc)
            array = np.frombuffer(shared, dtype=dtype, count=count, offset=offset)
        else:
            # Structure a kernel trusts (sizes, offsets, model records) is copied out of the
            # mapping before it is checked: a later write to the file cannot reach it.
            data = _aligned(nbytes)
            data[:] = np.frombuffer(shared, dtype=np.uint8, count=nbytes, offset=offset)
            _check_crc(path, name, data, crc)
            array = data.view(dtype)
        arrays[name] = _native(array.reshape(shape))
    del view
    return arrays


def _aligned(nbytes: int) -> np.ndarray:
    """A fresh uint8 array of ``nbytes`` starting on an ALIGN-byte boundary."""
    raw = np.empty(nbytes + ALIGN, dtype=np.uint8)
    skip = -raw.ctypes.data % ALIGN
    return raw[skip:skip + nbytes]


def _read_sections(f, path, sections, size: int, lazy) -> dict:
    """Arrays read into fresh 64-byte-aligned memory; sections in ``lazy`` not checksummed."""
    arrays = {}
    for i, (name, dtype, shape, offset, nbytes, crc) in enumerate(sections):
        end = sections[i + 1][3] if i + 1 < len(sections) else size
        buf = _aligned(end - offset)
        f.seek(offset)
        got = 0
        view = memoryview(buf)
        while got < len(buf):
            r = f.readinto(view[got:])
            if not r:
                raise IndexFileError(path, f"truncated while reading section {name!r} (the file shrank?)")
            got += r
        view.release()
        _check_padding(path, buf[nbytes:], name)
        data = buf[:nbytes]
        if name not in lazy:
            _check_crc(path, name, data, crc)
        array = data.view(dtype) if nbytes else np.empty(0, dtype=dtype)
        arrays[name] = _native(array.reshape(shape))
    return arrays
