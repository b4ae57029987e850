"""The hyperparameters of a :class:`~learnedidx.DynamicRMI`: one frozen config, documented defaults."""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field

import numpy as np

from ..rmi import RMIConfig


@dataclass(frozen=True)
class DynamicConfig:
    """Hyperparameters of a :class:`DynamicRMI`. None of them changes any answer.

    Attributes:
        merge_fraction: merge the delta and the tombstones into main when together they exceed
            this fraction of main (and ``merge_min``). Larger: fewer merges (each one two passes
            over main, 55-110 ms per 10M keys here) but a larger delta (lookups that miss main
            search it; batch inserts touch all its chunks) and more memory (main keeps room for
            ``min(0.2, 4 * merge_fraction)`` more keys, so that merges work in place). Default 0.05,
            measured at 10M keys (docs/design.md, ``python -m bench.updates``): 0.02 spends
            most of ``update()`` in merges (3.1-4.0 against 5.2-6.2 M keys/s in four runs); 0.1
            reached 5.7-6.8 M keys/s for more memory (7.8 against 6.1 bytes per key), merge
            pauses about 1.3x longer (79-100 against 62-73 ms) and a delta twice as large.
        merge_min: never merge for fewer pending keys than this (small indexes would merge all
            the time). Default 4096.
        buffer_size: single-key writes wait in a Python dict until this many are pending, then
            apply as one sorted batch. Larger amortizes better (a sorted batch of scattered keys
            is cheaper per key the denser it is), but a read that needs ranks applies the buffer
            first. Default 65536.
        retrain_bits: after a merge, retrain the whole RMI when the refitted leaves' mean
            ``log2(error + 1)`` exceeds the last full training's by this much (each bit is about
            one more search step per lookup). Default 1.0.
        chunk_size: keys per delta chunk: an insert shifts up to this many keys, a lookup does
            a binary search of this many. Default 128, at most 65536.
        rmi: the :class:`learnedidx.RMIConfig` of the main index, whose leaves stay lines
            (merges refit them in place; its ``max_window`` is not used). Its
            ``parallel_threshold`` also decides when a write batch's search and its insert into
            the delta, a merge and its refit use every thread (as two halves).
    """

    merge_fraction: float = 0.05
    merge_min: int = 4096
    buffer_size: int = 65536
    retrain_bits: float = 1.0
    chunk_size: int = 128
    rmi: RMIConfig = field(default_factory=RMIConfig)

    def __post_init__(self):
        f = self.merge_fraction
        if isinstance(f, bool) or not isinstance(f, (int, float)) or not 0 < f <= 1e6 or f != f:
            raise ValueError(f"merge_fraction must be a number > 0, got {f!r}")
        for name, low, high in (("merge_min", 1, 1 << 62), ("buffer_size", 1, 1 << 62), ("chunk_size", 2, 1 << 16)):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, (int, np.integer)) or not low <= v <= high:
                raise ValueError(f"{name} must be an int in [{low}, {high}], got {v!r}")
        r = self.retrain_bits
        if isinstance(r, bool) or not isinstance(r, (int, float)) or not r >= 0:
            raise ValueError(f"retrain_bits must be a number >= 0 (inf: never), got {r!r}")
        if isinstance(self.rmi, dict):
            object.__setattr__(self, "rmi", RMIConfig(**self.rmi))
        elif not isinstance(self.rmi, RMIConfig):
            raise TypeError(f"rmi must be an RMIConfig, got {type(self.rmi).__name__}")

    def as_dict(self) -> dict:
        """The fields as JSON-able types (``rmi`` as a dict)."""
        out = dataclasses.asdict(self)
        out["retrain_bits"] = float(self.retrain_bits) if math.isfinite(self.retrain_bits) else "inf"
        return out

    @classmethod
    def from_dict(cls, d: dict) -> "DynamicConfig":
        d = dict(d)
        if d.get("retrain_bits") == "inf":
            d["retrain_bits"] = math.inf
        return cls(**d)


def make_config(config, fields) -> DynamicConfig:
    """The config of a DynamicRMI call: ``config`` or one built from keyword ``fields``
    (DynamicConfig and RMIConfig fields); TypeError for both, an unknown field or a wrong type."""
    if config is not None and fields:
        raise TypeError("pass either config=DynamicConfig(...) or keywords, not both")
    if config is not None:
        if not isinstance(config, DynamicConfig):
            raise TypeError(f"config must be a DynamicConfig, got {type(config).__name__}")
        return config
    own = {f.name for f in dataclasses.fields(DynamicConfig)} - {"rmi"}
    rmi_fields = {f.name for f in dataclasses.fields(RMIConfig)}
    unknown = sorted(set(fields) - own - rmi_fields - {"rmi"})
    if unknown:
        raise TypeError(
            f"DynamicRMI got unknown options {unknown}; DynamicConfig fields are {sorted(own)}, "
            f"RMIConfig fields are {sorted(rmi_fields)}"
        )
    rmi = fields.pop("rmi", None)
    rmi_kw = {k: fields.pop(k) for k in list(fields) if k in rmi_fields}
    if rmi is not None and rmi_kw:
        raise TypeError("pass either rmi=RMIConfig(...) or RMIConfig keywords, not both")
    return DynamicConfig(rmi=rmi if rmi is not None else RMIConfig(**rmi_kw), **fields)
