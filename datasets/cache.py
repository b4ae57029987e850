"""Where generated and derived data files go: the dataset cache directory.

Nothing is ever written into the package folder. The cache is
``$LEARNEDIDX_DATA_DIR`` when that is set and non-empty, otherwise the user's
cache directory for "learnedidx" (platformdirs), e.g. ``~/.cache/learnedidx``.
"""

from __future__ import annotations

import json
import os
import secrets
from datetime import datetime, UTC
from pathlib import Path

ENV_DATA_DIR = "LEARNEDIDX_DATA_DIR"


def data_dir() -> Path:
    """The dataset cache directory (not created here; writers create what they need).

    Raises ModuleNotFoundError when LEARNEDIDX_DATA_DIR is unset and the
    platformdirs package is missing.
    """
    configured = os.environ.get(ENV_DATA_DIR, "").strip()
    if configured:
        return Path(configured).expanduser()
    try:
        import platformdirs
    except ModuleNotFoundError as exc:
        raise ModuleNotFoundError(
            f"the dataset cache needs platformdirs (pip install platformdirs) "
            f"or the environment variable {ENV_DATA_DIR} pointing to a directory"
        ) from exc
    return Path(platformdirs.user_cache_dir("learnedidx"))


def synthetic_dir(seed: int) -> Path:
    """Cache folder for generated key sets of one seed: ``<cache>/synthetic/seed<seed>``."""
    return data_dir() / "synthetic" / f"seed{seed}"


def real_cache_dir() -> Path:
    """Cache folder for key sets derived from installed packages: ``<cache>/real``."""
    return data_dir() / "real"


def sosd_cache_dir() -> Path:
    """Default folder for downloaded SOSD files: ``<cache>/sosd``."""
    return data_dir() / "sosd"


def plots_dir() -> Path:
    """Default folder for CDF plots: ``<cache>/plots``."""
    return data_dir() / "plots"


def sidecar_path(data_path: str | os.PathLike) -> Path:
    """The JSON sidecar beside a data file: ``<file>.json``."""
    data_path = Path(data_path)
    return data_path.with_name(data_path.name + ".json")


def write_sidecar(data_path: str | os.PathLike, meta: dict) -> Path:
    """Write ``meta`` as the data file's JSON sidecar atomically (temp file + os.replace).

    Raises TypeError if meta is not JSON-serialisable, OSError on I/O failure.
    """
    path = sidecar_path(data_path)
    text = json.dumps({**meta, "created_utc": datetime.now(UTC).isoformat(timespec="seconds")}, indent=2)
    tmp = path.with_name(f".{path.name}.{secrets.token_hex(6)}.tmp")
    try:
        tmp.write_text(text + "\n", encoding="utf-8")
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return path


def read_sidecar(data_path: str | os.PathLike) -> dict | None:
    """The data file's JSON sidecar as a dict, or None if it has none.

    Raises ValueError naming the sidecar if it is not valid JSON.
    """
    path = sidecar_path(data_path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return None
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise ValueError(f"{path}: invalid JSON sidecar ({exc}); delete it and re-create the data file") from exc
